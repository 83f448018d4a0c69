package it

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/internal/testcorpus"
)

// ndpFiles hold Windows, PROFINET and phone hosts' solicitations, DAD
// probes and advertisements, and (in UDP tunnels, not decoded) routers'.
var ndpFiles = []string{
	"suricata-verify__tests__smb2-ntlmssp-negotiateflags__input.pcap",
	"ct-samples__Protocols__DLMS-COSEM__Matousp-PCAPs__DLMSDirector.pcap",
	"icsnpp-profinet-io-cm__testing__traces__profinet_io_cm_mixed_2.pcapng",
	"Malcolm-PCAP__pcaps__protocols__Tunnels.pcap",
}

// ndpFilter selects what the sensor decodes: Neighbor Discovery not
// carried in UDP tunnels (Teredo, AYIYA, GTP), which it leaves as payload.
const ndpFilter = "icmpv6.type>=133 && icmpv6.type<=136 && ipv6.hlim==255 && !udp"

// ndpBound reports whether out binds ip to mac.
func ndpBound(out collect, ip, mac string) bool {
	for _, o := range out {
		if o.Attr == dissect.AttrIP && o.IP.String() == ip && o.MAC.String() == mac {
			return true
		}
	}
	return false
}

// TestNDPCorpus compares the bindings learnt from real captures with
// tshark: ipv6.src and icmpv6.opt.src_linkaddr of solicitations,
// icmpv6.nd.ns.target_address and eth.src of DAD probes,
// icmpv6.nd.na.target_address, icmpv6.opt.target_linkaddr and
// icmpv6.nd.na.flag.o of advertisements, icmpv6.opt.prefix of router
// advertisements. Addresses of other link layers (14-byte tunnel
// addresses) are not MACs and bind nothing.
func TestNDPCorpus(t *testing.T) {
	for _, name := range ndpFiles {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := testcorpus.File(t, name)
			out := discRun(t, path, NewNDP())
			discCheckObs(t, "ndp", out)
			rows := testcorpus.Tshark(t, path, ndpFilter, "eth.src", "ipv6.src", "icmpv6.type",
				"icmpv6.nd.ns.target_address", "icmpv6.nd.na.target_address", "icmpv6.opt.src_linkaddr", "icmpv6.opt.target_linkaddr", "icmpv6.nd.na.flag.o", "icmpv6.opt.prefix", "icmpv6.opt.prefix.length")
			if len(rows) == 0 && len(testcorpus.Tshark(t, path, "icmpv6.type>=133 && icmpv6.type<=136", "frame.number")) == 0 {
				t.Fatal("tshark shows no neighbor discovery")
			}
			want := map[string]bool{}
			for _, r := range rows {
				isMAC := func(s string) bool { return len(s) == 17 && strings.Count(s, ":") == 5 }
				switch r[2] {
				case "133", "135":
					if r[1] == "::" && r[2] == "135" {
						want[r[3]+" "+r[0]] = true
					} else if isMAC(r[5]) {
						want[r[1]+" "+r[5]] = true
					}
				case "136":
					if isMAC(r[6]) && (r[4] == r[1] || r[7] == "1" || r[7] == "True") {
						want[r[4]+" "+r[6]] = true
					}
				case "134":
					if !discHas(out, r[1], dissect.AttrRole, RoleIPv6Router) {
						t.Errorf("%s: advertises, not a router", r[1])
					}
					if r[8] != "" && !discHas(out, r[1], AttrNDPPrefixes, r[8]+"/"+r[9]) {
						t.Errorf("%s: prefix %s/%s not learnt: %v", r[1], r[8], r[9], discFind(out, r[1], AttrNDPPrefixes))
					}
					if isMAC(r[5]) {
						want[r[1]+" "+r[5]] = true
					}
				}
			}
			for k := range want {
				ip, mac, _ := strings.Cut(k, " ")
				if !ndpBound(out, ip, mac) {
					t.Errorf("%s not bound to %s", ip, mac)
				}
			}
			for _, o := range out {
				if o.Attr == dissect.AttrIP && !want[o.IP.String()+" "+o.MAC.String()] {
					t.Errorf("%s bound to %s, which tshark does not show", o.IP, o.MAC)
				}
			}
		})
	}
}

// ndpFrame builds an Ethernet/IPv6/ICMPv6 frame; body starts with the
// four bytes after the checksum.
func ndpFrame(t testing.TB, src, dst capture.MAC, sip, dip string, typ uint8, hlim uint8, body []byte) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr(src[:]), DstMAC: net.HardwareAddr(dst[:]), EthernetType: layers.EthernetTypeIPv6}
	ip := &layers.IPv6{Version: 6, HopLimit: hlim, NextHeader: layers.IPProtocolICMPv6, SrcIP: net.ParseIP(sip), DstIP: net.ParseIP(dip)}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, 0)}
	if err := icmp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, icmp, gopacket.Payload(body)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ndpBuilt returns messages built from RFC 4861 sections 4.2 to 4.6 and
// RFC 8106 section 5.1: a router's advertisement (M flag, prefix, MTU,
// DNS), its answer as a router to a solicitation, a proxy advertisement
// (O clear, for another address) and a hop-limit-64 one, both to be
// ignored, and a DAD probe.
func ndpBuilt(t testing.TB) [][]byte {
	rtr := capture.MAC{0x00, 0x0e, 0x8c, 0x01, 0x02, 0x03} // Siemens
	host := capture.MAC{0x00, 0x1b, 0x1b, 0x10, 0x20, 0x30}
	all := capture.MAC{0x33, 0x33, 0, 0, 0, 1}
	ra := []byte{64, 0x80, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0}
	ra = append(ra, 1, 1, rtr[0], rtr[1], rtr[2], rtr[3], rtr[4], rtr[5])
	ra = append(ra, 5, 1, 0, 0, 0, 0, 0x05, 0xdc)
	ra = append(ra, 3, 4, 64, 0xc0, 0, 0, 0x1c, 0x20, 0, 0, 0x0e, 0x10, 0, 0, 0, 0)
	ra = append(ra, net.ParseIP("2001:db8:10::")...)
	ra = append(ra, 25, 3, 0, 0, 0, 0, 0x0e, 0x10)
	ra = append(ra, net.ParseIP("2001:db8:10::53")...)
	na := []byte{0xe0, 0, 0, 0}
	na = append(na, net.ParseIP("fe80::20e:8cff:fe01:203")...)
	na = append(na, 2, 1, rtr[0], rtr[1], rtr[2], rtr[3], rtr[4], rtr[5])
	proxy := []byte{0x40, 0, 0, 0}
	proxy = append(proxy, net.ParseIP("2001:db8:10::99")...)
	proxy = append(proxy, 2, 1, rtr[0], rtr[1], rtr[2], rtr[3], rtr[4], rtr[5])
	dad := append([]byte{0, 0, 0, 0}, net.ParseIP("2001:db8:10::42")...)
	return [][]byte{
		ndpFrame(t, rtr, all, "fe80::20e:8cff:fe01:203", "ff02::1", NDRouterAdvert, 255, ra),
		ndpFrame(t, rtr, host, "fe80::20e:8cff:fe01:203", "fe80::21b:1bff:fe10:2030", NDNeighborAdvert, 255, na),
		ndpFrame(t, rtr, host, "fe80::20e:8cff:fe01:203", "fe80::21b:1bff:fe10:2030", NDNeighborAdvert, 255, proxy),
		ndpFrame(t, host, all, "fe80::21b:1bff:fe10:2030", "ff02::1", NDNeighborAdvert, 64, na),
		ndpFrame(t, host, capture.MAC{0x33, 0x33, 0xff, 0, 0, 0x42}, "::", "ff02::1:ff00:42", NDNeighborSolicit, 255, dad),
	}
}

// TestNDPBuilt checks built messages with tshark, then what NDP learns.
func TestNDPBuilt(t *testing.T) {
	path := discPcap(t, ndpBuilt(t))
	if w := discExpert(t, path); w != "" {
		t.Fatalf("tshark warns: %s", w)
	}
	rows := testcorpus.Tshark(t, path, "icmpv6", "icmpv6.nd.ra.flag.m", "icmpv6.opt.prefix", "icmpv6.opt.mtu", "icmpv6.opt.rdnss", "icmpv6.nd.na.flag.r", "icmpv6.nd.na.flag.o")
	if len(rows) != 5 || rows[0][0] != "1" && rows[0][0] != "True" || rows[0][1] != "2001:db8:10::" || rows[0][2] != "1500" || rows[0][3] != "2001:db8:10::53" || rows[1][4] != "1" || rows[2][5] != "0" && rows[2][5] != "False" {
		t.Fatalf("tshark reads %q", rows)
	}
	out := discRun(t, path, NewNDP())
	discCheckObs(t, "ndp", out)
	r := "fe80::20e:8cff:fe01:203"
	for _, w := range [][2]string{{dissect.AttrRole, RoleIPv6Router}, {AttrNDPPrefixes, "2001:db8:10::/64"}, {AttrNDPMTU, "1500"}, {AttrNDPRAFlags, "M"}, {AttrNDPDNS, "2001:db8:10::53"}} {
		if !discHas(out, r, w[0], w[1]) {
			t.Errorf("no %s %q in %v", w[0], w[1], out)
		}
	}
	if !ndpBound(out, r, "00:0e:8c:01:02:03") || !ndpBound(out, "2001:db8:10::42", "00:1b:1b:10:20:30") {
		t.Errorf("bindings missing: %v", out)
	}
	if ndpBound(out, "2001:db8:10::99", "00:0e:8c:01:02:03") {
		t.Error("a proxy advertisement bound another address to the router")
	}
	if n := len(discFind(out, "", dissect.AttrIP)); n != 2 {
		t.Errorf("%d bindings, want 2 (the hop-limit-64 one is dropped)", n)
	}
}

func ndpSeeds(t testing.TB) []capture.Packet {
	var seeds []capture.Packet
	discEach(t, discPcap(t, ndpBuilt(t)), func(p *dissect.Packet, _ *dissect.Registry) {
		c := *p.Packet
		c.Payload = append([]byte(nil), c.Payload...)
		seeds = append(seeds, c)
	})
	seeds = append(seeds, discCorpusPackets(t, ndpFiles[0], func(p *capture.Packet) bool { return p.IPProto == capture.ProtoICMPv6 })...)
	return seeds
}

func TestNDPAllocs(t *testing.T) {
	d := NewNDP()
	var out collect
	for _, s := range ndpSeeds(t) {
		p := &dissect.Packet{Packet: &s}
		d.Handle(p, &out)
		if n := testing.AllocsPerRun(100, func() {
			if d.Probe(p) {
				d.Handle(p, &out)
			}
		}); n != 0 {
			t.Errorf("repeated type %d: %v allocations", s.ICMPType, n)
		}
	}
}

func BenchmarkNDP(b *testing.B) {
	d := NewNDP()
	s := ndpSeeds(b)[0]
	p := &dissect.Packet{Packet: &s}
	var out collect
	b.ReportAllocs()
	for b.Loop() {
		if d.Probe(p) {
			d.Handle(p, &out)
		}
	}
}

// FuzzNDP fuzzes the ICMPv6 type, the NA flags and the message body.
func FuzzNDP(f *testing.F) {
	for _, s := range ndpSeeds(f) {
		f.Add(s.ICMPType, s.ICMPRest, s.Payload)
	}
	f.Fuzz(func(t *testing.T, typ uint8, rest uint32, b []byte) {
		d := NewNDP()
		p := discPacket("fe80::1", "ff02::1", 0, 0, capture.ProtoICMPv6, b)
		p.ICMPType, p.ICMPRest = typ, rest
		d.Probe(p)
		var out collect
		d.Handle(p, &out)
		discCheckObs(t, "ndp", out)
		p.SrcIP = netip.IPv6Unspecified() // duplicate address detection
		var out2 collect
		d.Handle(p, &out2)
		discCheckObs(t, "ndp", out2)
	})
}
