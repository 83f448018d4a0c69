package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/passivesensor/sensor/internal/testcorpus"
	"io"
	"net/netip"
	"path/filepath"
	"testing"
)

// Frame builders for hand-made test frames. Each returns a new slice.

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

var (
	macA = MAC{0x00, 0x11, 0x22, 0x33, 0x44, 0x55}
	macB = MAC{0x00, 0x66, 0x77, 0x88, 0x99, 0xaa}
	macX = MAC{0x02, 0xee, 0xee, 0xee, 0xee, 0x01} // outer (mirror) MACs
	macY = MAC{0x02, 0xee, 0xee, 0xee, 0xee, 0x02}

	ipA  = netip.MustParseAddr("10.1.2.3")
	ipB  = netip.MustParseAddr("192.168.7.9")
	ipX  = netip.MustParseAddr("172.16.0.1") // outer tunnel endpoints
	ipY  = netip.MustParseAddr("172.16.0.2")
	ip6A = netip.MustParseAddr("2001:db8::1")
	ip6B = netip.MustParseAddr("2001:db8::2")
)

func eth(dst, src MAC, et uint16, rest ...[]byte) []byte {
	return cat(dst[:], src[:], u16(et), cat(rest...))
}

// ipv4 builds an IPv4 header (with opts, a multiple of 4 bytes) and payload.
func ipv4(src, dst netip.Addr, proto uint8, fragWord uint16, opts []byte, payload []byte) []byte {
	ihl := 20 + len(opts)
	h := make([]byte, 20)
	h[0] = 0x40 | byte(ihl/4)
	binary.BigEndian.PutUint16(h[2:], uint16(ihl+len(payload)))
	binary.BigEndian.PutUint16(h[4:], 0x1234)
	binary.BigEndian.PutUint16(h[6:], fragWord)
	h[8] = 64
	h[9] = proto
	s, d := src.As4(), dst.As4()
	copy(h[12:], s[:])
	copy(h[16:], d[:])
	return cat(h, opts, payload)
}

// ipv6 builds an IPv6 header whose payload starts with next header nh.
func ipv6(src, dst netip.Addr, nh uint8, payload []byte) []byte {
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(payload)))
	h[6] = nh
	h[7] = 255
	s, d := src.As16(), dst.As16()
	copy(h[8:], s[:])
	copy(h[24:], d[:])
	return cat(h, payload)
}

func udp(sport, dport uint16, payload []byte) []byte {
	return cat(u16(sport), u16(dport), u16(uint16(8+len(payload))), u16(0), payload)
}

// tcp builds a TCP header with options (a multiple of 4 bytes).
func tcp(sport, dport uint16, flags uint8, opts []byte, payload []byte) []byte {
	h := cat(u16(sport), u16(dport), u32(1000), u32(2000),
		[]byte{byte((20 + len(opts)) / 4 << 4), flags}, u16(4096), u16(0), u16(0))
	return cat(h, opts, payload)
}

// gre builds a GRE header with the optional fields given (nil: absent).
func gre(proto uint16, csum, key, seq []byte, payload []byte) []byte {
	var flags byte
	if csum != nil {
		flags |= 0x80
	}
	if key != nil {
		flags |= 0x20
	}
	if seq != nil {
		flags |= 0x10
	}
	return cat([]byte{flags, 0}, u16(proto), csum, key, seq, payload)
}

// erspan2 builds an ERSPAN type II header (version 1).
func erspan2(vlan, session uint16) []byte {
	return cat(u16(0x1000|vlan), u16(session&0x3ff), u32(7))
}

// erspan3 builds an ERSPAN type III header (version 2), frame type
// Ethernet, with the O bit and an 8-byte platform subheader if platform.
func erspan3(session uint16, platform bool) []byte {
	h := cat(u16(0x2000|10), u16(session&0x3ff), u32(0xdeadbeef), u16(0x0042), []byte{0x00, 0x00})
	if platform {
		h[11] |= 1
		h = cat(h, []byte{0x08, 0, 0, 1, 0, 0, 0, 2})
	}
	return h
}

var payload = []byte("hello, mirror")

// innerTCP is the frame a mirror session carries in most cases below:
// 10.1.2.3:40000 > 192.168.7.9:502, VLAN 42.
func innerTCP() []byte {
	return eth(macB, macA, 0x8100, u16(42), u16(0x0800),
		ipv4(ipA, ipB, ProtoTCP, 0x4000, nil, tcp(40000, 502, TCPPsh|TCPAck, []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2}, payload)))
}

// outerIPv4 wraps a GRE packet in Ethernet and IPv4 between the mirror's
// endpoints.
func outerIPv4(grePkt []byte) []byte {
	return eth(macY, macX, 0x0800, ipv4(ipX, ipY, ProtoGRE, 0, nil, grePkt))
}

type decodeCase struct {
	name  string
	frame []byte
	link  LinkType
	check func(t *testing.T, p *Packet)
}

// wantFlow checks the innermost addresses, protocol and ports.
func wantFlow(t *testing.T, p *Packet, src, dst netip.Addr, proto uint8, sport, dport uint16) {
	t.Helper()
	if p.SrcIP != src || p.DstIP != dst || p.IPProto != proto || p.SrcPort != sport || p.DstPort != dport {
		t.Errorf("got %v:%d > %v:%d proto %d, want %v:%d > %v:%d proto %d",
			p.SrcIP, p.SrcPort, p.DstIP, p.DstPort, p.IPProto, src, sport, dst, dport, proto)
	}
}

// wantInnerTCP checks what innerTCP holds, as seen through tunnel tun.
func wantInnerTCP(tun Tunnel) func(t *testing.T, p *Packet) {
	return func(t *testing.T, p *Packet) {
		t.Helper()
		wantFlow(t, p, ipA, ipB, ProtoTCP, 40000, 502)
		if p.Tunnel != tun {
			t.Errorf("tunnel %d, want %d", p.Tunnel, tun)
		}
		if !p.HasEth || p.SrcMAC != macA || p.DstMAC != macB {
			t.Errorf("MACs %v > %v (HasEth %v), want the inner %v > %v", p.SrcMAC, p.DstMAC, p.HasEth, macA, macB)
		}
		if p.NumVLANs != 1 || p.VLANs[0] != 42 {
			t.Errorf("VLANs %v (%d), want the inner tag 42 only", p.VLANs, p.NumVLANs)
		}
		if string(p.Payload) != string(payload) {
			t.Errorf("payload %q, want %q", p.Payload, payload)
		}
		if len(p.TCPOptions) != 12 || p.TCPFlags != TCPPsh|TCPAck || p.TCPSeq != 1000 || p.TCPAck != 2000 || p.TCPWindow != 4096 {
			t.Errorf("tcp options % x flags %#x seq %d ack %d win %d", p.TCPOptions, p.TCPFlags, p.TCPSeq, p.TCPAck, p.TCPWindow)
		}
		if !p.IPDF || p.Fragment || p.TTL != 64 || p.IPID != 0x1234 {
			t.Errorf("DF %v fragment %v TTL %d ID %#x", p.IPDF, p.Fragment, p.TTL, p.IPID)
		}
	}
}

func decodeCases() []decodeCase {
	udpPkt := udp(5353, 53, payload)
	frag1 := ipv6(ip6A, ip6B, 44, cat([]byte{ProtoUDP, 0}, u16(0x0001), u32(0xabcd0077), udpPkt))  // offset 0, M
	frag2 := ipv6(ip6A, ip6B, 44, cat([]byte{ProtoUDP, 0}, u16(185<<3), u32(0xabcd0077), payload)) // offset 1480
	return []decodeCase{
		{"ethernet tcp", innerTCP(), LinkEthernet, wantInnerTCP(TunnelNone)},
		{"qinq 88a8+8100", eth(macB, macA, 0x88a8, u16(100), u16(0x8100), u16(200), u16(0x0800),
			ipv4(ipA, ipB, ProtoUDP, 0, nil, udpPkt)), LinkEthernet, func(t *testing.T, p *Packet) {
			wantFlow(t, p, ipA, ipB, ProtoUDP, 5353, 53)
			if p.NumVLANs != 2 || p.VLANs != [2]uint16{100, 200} || p.EtherType != EtherTypeIPv4 {
				t.Errorf("VLANs %v (%d) ethertype %#x, want [100 200] IPv4", p.VLANs, p.NumVLANs, p.EtherType)
			}
		}},
		{"qinq 9100+8100", eth(macB, macA, 0x9100, u16(0x2000|7), u16(0x8100), u16(8), u16(0x86dd),
			ipv6(ip6A, ip6B, ProtoUDP, udpPkt)), LinkEthernet, func(t *testing.T, p *Packet) {
			wantFlow(t, p, ip6A, ip6B, ProtoUDP, 5353, 53)
			if p.NumVLANs != 2 || p.VLANs != [2]uint16{7, 8} {
				t.Errorf("VLANs %v, want [7 8] (priority bits masked)", p.VLANs)
			}
		}},
		{"ipv4 options", eth(macB, macA, 0x0800, ipv4(ipA, ipB, ProtoUDP, 0, []byte{0x94, 4, 0, 0, 1, 0, 0, 0}, udpPkt)),
			LinkEthernet, func(t *testing.T, p *Packet) {
				wantFlow(t, p, ipA, ipB, ProtoUDP, 5353, 53)
				if string(p.Payload) != string(payload) {
					t.Errorf("payload %q", p.Payload)
				}
			}},
		{"ipv4 first fragment", eth(macB, macA, 0x0800, ipv4(ipA, ipB, ProtoUDP, 0x2000, nil, udpPkt)),
			LinkEthernet, func(t *testing.T, p *Packet) {
				wantFlow(t, p, ipA, ipB, ProtoUDP, 5353, 53)
				if !p.Fragment {
					t.Error("first fragment not marked Fragment")
				}
			}},
		{"ipv4 later fragment", eth(macB, macA, 0x0800, ipv4(ipA, ipB, ProtoUDP, 185, nil, udpPkt)),
			LinkEthernet, func(t *testing.T, p *Packet) {
				wantFlow(t, p, ipA, ipB, ProtoUDP, 0, 0)
				if !p.Fragment || len(p.Payload) != len(udpPkt) {
					t.Errorf("fragment %v payload %d bytes, want the whole %d", p.Fragment, len(p.Payload), len(udpPkt))
				}
			}},
		{"ipv6 first fragment", eth(macB, macA, 0x86dd, frag1), LinkEthernet, func(t *testing.T, p *Packet) {
			wantFlow(t, p, ip6A, ip6B, ProtoUDP, 5353, 53)
			if !p.Fragment || p.IPID != 0x0077 {
				t.Errorf("fragment %v id %#x", p.Fragment, p.IPID)
			}
		}},
		{"ipv6 later fragment", eth(macB, macA, 0x86dd, frag2), LinkEthernet, func(t *testing.T, p *Packet) {
			wantFlow(t, p, ip6A, ip6B, ProtoUDP, 0, 0)
			if !p.Fragment || string(p.Payload) != string(payload) {
				t.Errorf("fragment %v payload %q", p.Fragment, p.Payload)
			}
		}},
		{"ipv6 hop-by-hop and destination options", eth(macB, macA, 0x86dd, ipv6(ip6A, ip6B, 0,
			cat([]byte{60, 0, 5, 2, 0, 0, 1, 0}, []byte{ProtoTCP, 1, 1, 4, 0, 0, 0, 0, 1, 4, 0, 0, 0, 0, 0, 0},
				tcp(40000, 502, TCPSyn, nil, nil)))), LinkEthernet, func(t *testing.T, p *Packet) {
			wantFlow(t, p, ip6A, ip6B, ProtoTCP, 40000, 502)
			if p.TCPFlags != TCPSyn || p.Fragment {
				t.Errorf("flags %#x fragment %v", p.TCPFlags, p.Fragment)
			}
		}},
		{"icmpv6", eth(macB, macA, 0x86dd, ipv6(ip6A, ip6B, ProtoICMPv6, cat([]byte{135, 0, 0, 0, 0, 0, 0, 0}, payload))),
			LinkEthernet, func(t *testing.T, p *Packet) {
				wantFlow(t, p, ip6A, ip6B, ProtoICMPv6, 0, 0)
				if p.ICMPType != 135 || string(p.Payload) != string(payload) {
					t.Errorf("icmp type %d payload %q", p.ICMPType, p.Payload)
				}
			}},
		{"gre transparent ethernet, key and seq", outerIPv4(gre(0x6558, nil, u32(99), u32(1), innerTCP())),
			LinkEthernet, wantInnerTCP(TunnelGRE)},
		{"gre checksum, key and seq", outerIPv4(gre(0x6558, u32(0), u32(99), u32(1), innerTCP())),
			LinkEthernet, wantInnerTCP(TunnelGRE)},
		{"gre ipv4 over ipv6", eth(macY, macX, 0x86dd, ipv6(ip6A, ip6B, ProtoGRE,
			gre(0x0800, nil, u32(5), nil, ipv4(ipA, ipB, ProtoUDP, 0, nil, udpPkt)))), LinkEthernet, func(t *testing.T, p *Packet) {
			wantFlow(t, p, ipA, ipB, ProtoUDP, 5353, 53)
			if p.Tunnel != TunnelGRE || p.HasEth || !p.SrcMAC.IsZero() {
				t.Errorf("tunnel %d HasEth %v src MAC %v: the outer MACs are not the inner hosts'", p.Tunnel, p.HasEth, p.SrcMAC)
			}
		}},
		{"erspan I", outerIPv4(gre(0x88be, nil, nil, nil, innerTCP())), LinkEthernet, wantInnerTCP(TunnelERSPAN2)},
		{"erspan II", outerIPv4(gre(0x88be, nil, nil, u32(3), cat(erspan2(42, 7), innerTCP()))),
			LinkEthernet, wantInnerTCP(TunnelERSPAN2)},
		{"erspan III", outerIPv4(gre(0x22eb, nil, nil, u32(3), cat(erspan3(7, false), innerTCP()))),
			LinkEthernet, wantInnerTCP(TunnelERSPAN3)},
		{"erspan III platform subheader", outerIPv4(gre(0x22eb, nil, nil, u32(3), cat(erspan3(7, true), innerTCP()))),
			LinkEthernet, wantInnerTCP(TunnelERSPAN3)},
		{"erspan II in gre in gre", outerIPv4(gre(0x0800, nil, nil, nil, ipv4(ipX, ipY, ProtoGRE, 0, nil,
			gre(0x88be, nil, nil, u32(3), cat(erspan2(42, 7), innerTCP()))))), LinkEthernet, wantInnerTCP(TunnelERSPAN2)},
		{"vxlan", eth(macY, macX, 0x0800, ipv4(ipX, ipY, ProtoUDP, 0, nil, udp(12345, 4789,
			cat([]byte{0x08, 0, 0, 0, 0, 0, 1, 0}, innerTCP())))), LinkEthernet, wantInnerTCP(TunnelVXLAN)},
		{"ipv6 in ipv4", eth(macY, macX, 0x0800, ipv4(ipX, ipY, 41, 0, nil, ipv6(ip6A, ip6B, ProtoUDP, udpPkt))),
			LinkEthernet, func(t *testing.T, p *Packet) {
				wantFlow(t, p, ip6A, ip6B, ProtoUDP, 5353, 53)
				if p.Tunnel != TunnelIPIP || p.HasEth {
					t.Errorf("tunnel %d HasEth %v", p.Tunnel, p.HasEth)
				}
			}},
		{"arp", eth(MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, macA, 0x0806, []byte{0, 1, 8, 0, 6, 4, 0, 1}),
			LinkEthernet, func(t *testing.T, p *Packet) {
				if p.HasIP() || p.EtherType != 0x0806 || len(p.Payload) != 8 || p.SrcMAC != macA {
					t.Errorf("ARP: HasIP %v EtherType %#x payload % x", p.HasIP(), p.EtherType, p.Payload)
				}
			}},
		{"802.3 llc with padding", eth(macB, macA, 6, []byte{0x42, 0x42, 0x03, 0, 0, 0}, make([]byte, 40)),
			LinkEthernet, func(t *testing.T, p *Packet) {
				if p.HasIP() || p.EtherType != 0 || len(p.Payload) != 6 {
					t.Errorf("LLC: EtherType %#x payload %d bytes, want 0 and the 6 LLC bytes", p.EtherType, len(p.Payload))
				}
			}},
		{"linux sll", cat(u16(0), u16(1), u16(6), macA[:], []byte{0, 0}, u16(0x0800), ipv4(ipA, ipB, ProtoUDP, 0, nil, udpPkt)),
			LinkLinuxSLL, func(t *testing.T, p *Packet) {
				wantFlow(t, p, ipA, ipB, ProtoUDP, 5353, 53)
				if p.SrcMAC != macA {
					t.Errorf("source MAC %v, want %v from the cooked header", p.SrcMAC, macA)
				}
			}},
		{"linux sll2", cat(u16(0x86dd), u16(0), u32(2), u16(1), []byte{4, 6}, macA[:], []byte{0, 0}, ipv6(ip6A, ip6B, ProtoUDP, udpPkt)),
			LinkLinuxSLL2, func(t *testing.T, p *Packet) {
				wantFlow(t, p, ip6A, ip6B, ProtoUDP, 5353, 53)
				if p.SrcMAC != macA {
					t.Errorf("source MAC %v, want %v from the cooked header", p.SrcMAC, macA)
				}
			}},
		{"cisco hdlc", cat([]byte{0x0f, 0}, u16(0x0800), ipv4(ipA, ipB, ProtoUDP, 0, nil, udpPkt)), LinkCHDLC, func(t *testing.T, p *Packet) {
			wantFlow(t, p, ipA, ipB, ProtoUDP, 5353, 53)
		}},
		{"raw ipv6", ipv6(ip6A, ip6B, ProtoUDP, udpPkt), LinkRaw, func(t *testing.T, p *Packet) {
			wantFlow(t, p, ip6A, ip6B, ProtoUDP, 5353, 53)
		}},
		{"raw ipv4 (228)", ipv4(ipA, ipB, ProtoUDP, 0, nil, udpPkt), LinkIPv4, func(t *testing.T, p *Packet) {
			wantFlow(t, p, ipA, ipB, ProtoUDP, 5353, 53)
		}},
		{"null, little endian", cat([]byte{2, 0, 0, 0}, ipv4(ipA, ipB, ProtoUDP, 0, nil, udpPkt)), LinkNull, func(t *testing.T, p *Packet) {
			wantFlow(t, p, ipA, ipB, ProtoUDP, 5353, 53)
		}},
		{"loop ipv6", cat(u32(24), ipv6(ip6A, ip6B, ProtoUDP, udpPkt)), LinkLoop, func(t *testing.T, p *Packet) {
			wantFlow(t, p, ip6A, ip6B, ProtoUDP, 5353, 53)
		}},
	}
}

func TestDecodeHandBuilt(t *testing.T) {
	for _, c := range decodeCases() {
		t.Run(c.name, func(t *testing.T) {
			var d Decoder
			var p Packet
			if err := d.Decode(Frame{Data: c.frame, LinkType: c.link, WireLen: len(c.frame)}, &p); err != nil {
				t.Fatalf("decode: %v\n% x", err, c.frame)
			}
			c.check(t, &p)
		})
	}
}

// TestDecodeTruncated cuts every hand-built frame at every length: no
// panic; an error whenever the cut falls inside a header; the same result
// once the headers are whole.
func TestDecodeTruncated(t *testing.T) {
	for _, c := range decodeCases() {
		if c.name == "arp" || c.name == "802.3 llc with padding" {
			continue // no header beyond Ethernet to cut
		}
		t.Run(c.name, func(t *testing.T) {
			var d Decoder
			var full, p Packet
			if err := d.Decode(Frame{Data: c.frame, LinkType: c.link}, &full); err != nil {
				t.Fatal(err)
			}
			headers := len(c.frame) - len(full.Payload)
			if full.IPProto == ProtoICMPv6 {
				headers = len(c.frame) - len(full.Payload) - 4 // the ICMP header's last 4 bytes are optional
			}
			for n := 0; n < len(c.frame); n++ {
				err := d.Decode(Frame{Data: c.frame[:n], LinkType: c.link}, &p)
				if n < headers {
					var de *DecodeError
					if !errors.As(err, &de) || !errors.Is(err, ErrTruncated) {
						t.Errorf("cut at %d of %d header bytes: error %v, want a truncation *DecodeError", n, headers, err)
					}
					continue
				}
				if err != nil {
					t.Errorf("cut at %d, after the %d header bytes: %v", n, headers, err)
				}
				if p.SrcIP != full.SrcIP || p.DstPort != full.DstPort || p.Tunnel != full.Tunnel {
					t.Errorf("cut at %d: %v:%d tunnel %d, whole frame says %v:%d tunnel %d",
						n, p.SrcIP, p.DstPort, p.Tunnel, full.SrcIP, full.DstPort, full.Tunnel)
				}
			}
			if st := d.Stats(); st.DecodeErrors == 0 && headers > 0 {
				t.Errorf("no decode error counted")
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, c := range []struct {
		name  string
		frame []byte
		link  LinkType
		kind  error
	}{
		{"unknown link type", []byte{1, 2, 3}, 9999, ErrUnsupported},
		{"ipv4 ihl 4", eth(macB, macA, 0x0800, []byte{0x44}, make([]byte, 30)), LinkEthernet, ErrMalformed},
		{"ip version 5", eth(macB, macA, 0x0800, []byte{0x55}, make([]byte, 30)), LinkEthernet, ErrMalformed},
		{"tcp data offset 3", eth(macB, macA, 0x0800, ipv4(ipA, ipB, ProtoTCP, 0, nil,
			cat(make([]byte, 12), []byte{0x30}, make([]byte, 7)))), LinkEthernet, ErrMalformed},
		{"gre version 2", outerIPv4([]byte{0, 2, 0x08, 0x00}), LinkEthernet, ErrMalformed},
		{"erspan II version 2", outerIPv4(gre(0x88be, nil, nil, u32(1), cat(erspan3(1, false)[:8], innerTCP()))), LinkEthernet, ErrMalformed},
	} {
		var d Decoder
		var p Packet
		err := d.Decode(Frame{Data: c.frame, LinkType: c.link}, &p)
		if !errors.Is(err, c.kind) {
			t.Errorf("%s: error %v, want %v", c.name, err, c.kind)
		}
	}
}

func TestDecodeNoAllocs(t *testing.T) {
	cases := decodeCases()
	var d Decoder
	var p Packet
	allocs := testing.AllocsPerRun(100, func() {
		for _, c := range cases {
			d.Decode(Frame{Data: c.frame, LinkType: c.link}, &p)
			d.Decode(Frame{Data: c.frame[:len(c.frame)/2], LinkType: c.link}, &p)
		}
	})
	if allocs != 0 {
		t.Errorf("Decode allocates %.1f times per run of %d frames", allocs, 2*len(cases))
	}
}

func FuzzDecode(f *testing.F) {
	for _, c := range decodeCases() {
		f.Add(c.frame, uint16(c.link))
	}
	f.Fuzz(func(t *testing.T, data []byte, link uint16) {
		var d Decoder
		var p Packet
		err := d.Decode(Frame{Data: data, LinkType: LinkType(link)}, &p)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is not a *DecodeError", err)
			}
		}
		// Every slice must lie within the frame.
		for _, s := range [][]byte{p.Payload, p.TCPOptions} {
			if len(s) > 0 && !within(s, data) {
				t.Fatalf("slice of %d bytes outside the frame", len(s))
			}
		}
	})
}

// within reports whether s is a subslice of b.
func within(s, b []byte) bool {
	if len(s) > len(b) {
		return false
	}
	for i := 0; i+len(s) <= len(b); i++ {
		if &b[i] == &s[0] {
			return true
		}
	}
	return false
}

func BenchmarkDecode(b *testing.B) {
	path := testcorpus.File(b, "Malcolm-PCAP__pcaps__protocols__Tunnels.pcap")
	src, err := OpenFile(path)
	if err != nil {
		b.Fatal(err)
	}
	var frames []Frame
	var size int64
	for {
		f, err := src.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		f.Data = append([]byte(nil), f.Data...)
		frames = append(frames, f)
		size += int64(len(f.Data))
	}
	src.Close()
	var d Decoder
	var p Packet
	b.ReportAllocs()
	b.SetBytes(size / int64(len(frames)))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		d.Decode(frames[i%len(frames)], &p)
	}
}

// BenchmarkReadDecode reads a whole file and decodes it, as `sensor -r` does.
func BenchmarkReadDecode(b *testing.B) {
	path := testcorpus.File(b, "ct-samples__Protocols__S7comm__Plant1_S7comm.pcap")
	var d Decoder
	var p Packet
	frames := 0
	b.ReportAllocs()
	for b.Loop() {
		src, err := OpenFile(path)
		if err != nil {
			b.Fatal(err)
		}
		for {
			f, err := src.Next()
			if err != nil {
				break
			}
			d.Decode(f, &p)
			frames++
		}
		src.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(frames), "ns/frame")
	b.ReportMetric(float64(frames)/float64(b.N), "frames/op")
}

// TestHandBuiltMatchesTshark writes the hand-built frames to capture files,
// one per link type, so that Wireshark confirms both the frames (ERSPAN III
// with its platform subheader, QinQ, ...) and what the decoder reads.
func TestHandBuiltMatchesTshark(t *testing.T) {
	testcorpus.NeedTshark(t)
	byLink := map[LinkType][][]byte{}
	for _, c := range decodeCases() {
		byLink[c.link] = append(byLink[c.link], c.frame)
	}
	dir := t.TempDir()
	for lt, frames := range byLink {
		path := filepath.Join(dir, fmt.Sprintf("link%d.pcap", lt))
		writePcap(t, path, lt, frames)
		t.Run(fmt.Sprintf("link type %d", lt), func(t *testing.T) {
			if st := compareWithTshark(t, path); st.DecodeErrors != 0 {
				t.Errorf("%d decode errors", st.DecodeErrors)
			}
		})
	}
}
