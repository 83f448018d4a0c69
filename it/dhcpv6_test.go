package it

import (
	"encoding/binary"
	"encoding/hex"
	"net"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/internal/testcorpus"
)

// dhcpv6Files hold Windows, dhcpcd and relayed clients, Advertise and
// Reply with IA_NA addresses, and Information-requests.
var dhcpv6Files = []string{
	"Malcolm-PCAP__pcaps__protocols__DHCP.pcap",
	"suricata-verify__tests__smb2-ntlmssp-negotiateflags__input.pcap",
	"icsnpp-profinet-io-cm__testing__traces__profinet_io_cm_mixed_2.pcapng",
	"nDPI__tests__cfgs__default__pcap__1kxun.pcap",
}

// TestDHCPv6Corpus compares what DHCPv6 learns from real captures with
// tshark: dhcpv6.duid.bytes (the client's DUID), dhcpv6.client_domain
// (hostname), dhcpv6.vendorclass.enterprise and .data,
// dhcpv6.requested_option_code (ORO), dhcpv6.peeraddr (the client of a
// relayed message), dhcpv6.duidllt/duidll.link_layer_addr against
// eth.src (the MAC bound), and dhcpv6.iaaddr.ip of a Reply.
func TestDHCPv6Corpus(t *testing.T) {
	for _, name := range dhcpv6Files {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := testcorpus.File(t, name)
			out := discRun(t, path, NewDHCPv6())
			discCheckObs(t, "dhcpv6", out)
			rows := testcorpus.Tshark(t, path, "dhcpv6", "eth.src", "eth.dst", "ipv6.src", "dhcpv6.msgtype", "dhcpv6.peeraddr", "dhcpv6.duid.bytes",
				"dhcpv6.client_domain", "dhcpv6.vendorclass.enterprise", "dhcpv6.vendorclass.data", "dhcpv6.requested_option_code",
				"dhcpv6.duidllt.link_layer_addr", "dhcpv6.duidll.link_layer_addr", "dhcpv6.iaaddr.ip")
			if len(rows) == 0 {
				t.Fatal("tshark shows no DHCPv6")
			}
			clients := 0
			for _, r := range rows {
				types := strings.Split(r[3], ",")
				inner := types[len(types)-1]
				duids := strings.Split(r[5], ",")
				switch inner {
				case "1", "3", "4", "5", "6", "11":
					clients++
					ip := r[2]
					if r[4] != "" {
						ip = r[4]
					}
					got := discFind(out, ip, AttrDHCPv6DUID)
					if len(got) == 0 || !strings.Contains(","+r[5]+",", ","+got[0]+",") {
						t.Errorf("%s: DUID %q not among %q", ip, got, r[5])
					}
					if r[6] != "" {
						host, _, _ := strings.Cut(strings.TrimSuffix(r[6], "."), ".")
						if !discHas(out, ip, dissect.AttrHostname, host) || (strings.Contains(strings.TrimSuffix(r[6], "."), ".") && !discHas(out, ip, dissect.AttrFQDN, strings.TrimSuffix(r[6], "."))) {
							t.Errorf("%s: no hostname %q", ip, host)
						}
					}
					if r[7] != "" && !discHas(out, ip, AttrDHCPv6VendorClass, r[7]+":"+r[8]) {
						t.Errorf("%s: no vendor class %q", ip, r[7]+":"+r[8])
					}
					if r[9] != "" && !discHas(out, ip, AttrDHCPv6ORO, r[9]) {
						t.Errorf("%s: no ORO %q: %v", ip, r[9], discFind(out, ip, AttrDHCPv6ORO))
					}
					duidMAC := ""
					if len(got) > 0 {
						if m, ok := DUIDMAC(mustHex(t, got[0])); ok {
							duidMAC = m.String()
						}
						if duidMAC != "" && !strings.Contains(r[10]+","+r[11], duidMAC) {
							t.Errorf("%s: DUID MAC %s, tshark %q %q", ip, duidMAC, r[10], r[11])
						}
					}
					bound := false
					for _, o := range out {
						bound = bound || (o.Attr == dissect.AttrIP && o.IP.String() == ip && o.MAC.String() == duidMAC)
					}
					if r[4] == "" && duidMAC == r[0] && !bound {
						t.Errorf("%s: DUID MAC %s is the sender's, not bound", ip, duidMAC)
					}
					if duidMAC != r[0] && bound {
						t.Errorf("%s: DUID MAC %s bound though the sender is %s", ip, duidMAC, r[0])
					}
					if duidMAC != "" && duidMAC != r[0] && !discHas(out, ip, AttrDHCPv6DUIDMAC, duidMAC) {
						t.Errorf("%s: DUID MAC %s not kept", ip, duidMAC)
					}
				case "2", "7":
					if !discHas(out, r[2], dissect.AttrRole, RoleDHCPv6Server) {
						t.Errorf("%s: no server role", r[2])
					}
					if inner != "7" || r[12] == "" {
						continue
					}
					for _, a := range strings.Split(r[12], ",") {
						got := discFind(out, a, AttrDHCPv6DUID)
						if len(got) == 0 || got[0] != duids[0] && (len(duids) < 2 || got[0] != duids[1]) {
							t.Errorf("assigned %s: DUID %q, tshark %q", a, got, r[5])
						}
					}
				}
			}
			if clients == 0 {
				t.Fatal("no client message compared")
			}
		})
	}
}

// dhcpv6Opt builds one option (RFC 8415 section 21.1).
func dhcpv6Opt(code uint16, v ...byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, code)
	b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	return append(b, v...)
}

// TestDHCPv6Built checks a Solicit and Reply built from RFC 8415 (DUID-LL
// 11.4, FQDN RFC 4704 section 4, vendor class 21.16, IA_NA 21.4, IAADDR
// 21.6) with tshark and the dissector.
func TestDHCPv6Built(t *testing.T) {
	mac := capture.MAC{0x00, 0x1b, 0x1b, 0x10, 0x20, 0x30} // Siemens OUI
	duid := append([]byte{0, 3, 0, 1}, mac[:]...)
	fqdn := append([]byte{0x01}, 5, 'h', 'm', 'i', '-', '2', 5, 'p', 'l', 'a', 'n', 't', 0)
	vc := append([]byte{0, 0, 0x10, 0x6b}, 0, 4, 'S', 'I', 'M', 'A') // enterprise 4203
	sol := append([]byte{DHCPv6Solicit, 1, 2, 3}, dhcpv6Opt(1, duid...)...)
	sol = append(sol, dhcpv6Opt(39, fqdn...)...)
	sol = append(sol, dhcpv6Opt(16, vc...)...)
	sol = append(sol, dhcpv6Opt(6, 0, 23, 0, 24, 0, 39)...)
	addr := net.ParseIP("2001:db8:10::42")
	ia := append([]byte(addr), 0, 0, 0x0e, 0x10, 0, 0, 0x1c, 0x20)
	iana := append([]byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}, dhcpv6Opt(5, ia...)...)
	srvDUID := []byte{0, 1, 0, 1, 0x2a, 0x2b, 0x2c, 0x2d, 0x00, 0x1b, 0x1b, 0x99, 0x99, 0x99}
	rep := append([]byte{DHCPv6Reply, 1, 2, 3}, dhcpv6Opt(3, iana...)...)
	rep = append(rep, dhcpv6Opt(1, duid...)...)
	rep = append(rep, dhcpv6Opt(2, srvDUID...)...)
	srvMAC := capture.MAC{0x00, 0x1b, 0x1b, 0x99, 0x99, 0x99}
	frames := [][]byte{
		udp6Frame(t, mac, capture.MAC{0x33, 0x33, 0, 1, 0, 2}, "fe80::21b:1bff:fe10:2030", "ff02::1:2", 546, 547, sol),
		udp6Frame(t, srvMAC, mac, "fe80::21b:1bff:fe99:9999", "fe80::21b:1bff:fe10:2030", 547, 546, rep),
	}
	path := discPcap(t, frames)
	if w := discExpert(t, path); w != "" {
		t.Fatalf("tshark warns: %s", w)
	}
	rows := testcorpus.Tshark(t, path, "dhcpv6", "dhcpv6.duidll.link_layer_addr", "dhcpv6.client_domain", "dhcpv6.vendorclass.enterprise", "dhcpv6.vendorclass.data", "dhcpv6.requested_option_code", "dhcpv6.iaaddr.ip")
	if len(rows) != 2 || rows[0][0] != mac.String() || rows[0][1] != "hmi-2.plant." || rows[0][2] != "4203" || rows[0][3] != "SIMA" || rows[0][4] != "23,24,39" || rows[1][5] != "2001:db8:10::42" {
		t.Fatalf("tshark reads %q", rows)
	}
	out := discRun(t, path, NewDHCPv6())
	discCheckObs(t, "dhcpv6", out)
	for _, w := range [][3]string{
		{"fe80::21b:1bff:fe10:2030", dissect.AttrHostname, "hmi-2"},
		{"fe80::21b:1bff:fe10:2030", dissect.AttrFQDN, "hmi-2.plant"},
		{"fe80::21b:1bff:fe10:2030", AttrDHCPv6VendorClass, "4203:SIMA"},
		{"fe80::21b:1bff:fe10:2030", AttrDHCPv6ORO, "23,24,39"},
		{"fe80::21b:1bff:fe10:2030", dissect.AttrIP, "fe80::21b:1bff:fe10:2030"},
		{"2001:db8:10::42", dissect.AttrIP, "2001:db8:10::42"},
		{"2001:db8:10::42", AttrDHCPv6Lifetime, "7200"},
		{"fe80::21b:1bff:fe99:9999", dissect.AttrRole, RoleDHCPv6Server},
	} {
		if !discHas(out, w[0], w[1], w[2]) {
			t.Errorf("no %s %q about %s in %v", w[1], w[2], w[0], out)
		}
	}
	for _, o := range out {
		if o.Attr == dissect.AttrIP && o.MAC != mac {
			t.Errorf("%s bound to %s", o.Value, o.MAC)
		}
	}
}

func mustHex(t *testing.T, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return b
}

// udp6Frame builds an Ethernet/IPv6/UDP frame.
func udp6Frame(t testing.TB, src, dst capture.MAC, sip, dip string, sport, dport uint16, payload []byte) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr(src[:]), DstMAC: net.HardwareAddr(dst[:]), EthernetType: layers.EthernetTypeIPv6}
	ip := &layers.IPv6{Version: 6, HopLimit: 1, NextHeader: layers.IPProtocolUDP, SrcIP: net.ParseIP(sip), DstIP: net.ParseIP(dip)}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func dhcpv6Seeds(t testing.TB) [][]byte {
	seeds := [][]byte{
		append([]byte{1, 0, 0, 1}, dhcpv6Opt(1, 0, 3, 0, 1, 1, 2, 3, 4, 5, 6)...),
		append([]byte{12, 0}, make([]byte, 32)...),
	}
	seeds[1] = append(seeds[1], dhcpv6Opt(9, seeds[0]...)...)
	seeds[1] = append(seeds[1], dhcpv6Opt(79, 0, 1, 1, 2, 3, 4, 5, 6)...)
	for _, f := range dhcpv6Files[:2] {
		for _, p := range discCorpusPackets(t, f, discUDP(DHCPv6ServerPort)) {
			seeds = append(seeds, p.Payload)
		}
	}
	return seeds
}

// TestDHCPv6Relayed checks a Solicit relayed with the client's
// link-layer address (RFC 8415 section 9, RFC 6939): the client is the
// peer address, its MAC the one the relay states, and the relay is one.
func TestDHCPv6Relayed(t *testing.T) {
	d := NewDHCPv6()
	var out collect
	sol := append([]byte{DHCPv6Solicit, 0, 0, 1}, dhcpv6Opt(1, 0, 1, 0, 1, 1, 2, 3, 4, 0x00, 0x1b, 0x1b, 0x77, 0x77, 0x77)...)
	relay := append([]byte{DHCPv6RelayForw, 0}, net.ParseIP("2001:db8:20::1")...)
	relay = append(relay, net.ParseIP("fe80::21b:1bff:fe55:5555")...)
	relay = append(relay, dhcpv6Opt(79, 0, 1, 0x00, 0x1b, 0x1b, 0x55, 0x55, 0x55)...)
	relay = append(relay, dhcpv6Opt(9, sol...)...)
	p := discPacket("2001:db8:20::1", "2001:db8::547", 547, 547, capture.ProtoUDP, relay)
	if !d.Probe(p) {
		t.Fatal("probe refused a relay-forward")
	}
	d.Handle(p, &out)
	discCheckObs(t, "dhcpv6", out)
	if !discHas(out, "2001:db8:20::1", dissect.AttrRole, RoleDHCPv6Relay) {
		t.Errorf("no relay role: %v", out)
	}
	client := "fe80::21b:1bff:fe55:5555"
	bound := false
	for _, o := range out {
		bound = bound || (o.Attr == dissect.AttrIP && o.IP.String() == client && o.MAC.String() == "00:1b:1b:55:55:55")
	}
	if !bound || !discHas(out, client, AttrDHCPv6DUIDMAC, "00:1b:1b:77:77:77") {
		t.Errorf("client not bound to the relay's link-layer address, or DUID MAC lost: %v", out)
	}
}

func TestDHCPv6Truncated(t *testing.T) {
	d := NewDHCPv6()
	for _, full := range dhcpv6Seeds(t) {
		for n := range len(full) {
			b := append([]byte(nil), full[:n]...)
			p := discPacket("fe80::1", "ff02::1:2", 546, 547, capture.ProtoUDP, b)
			d.Probe(p)
			var out collect
			d.Handle(p, &out)
			discCheckObs(t, "dhcpv6", out)
		}
	}
}

func TestDHCPv6Allocs(t *testing.T) {
	d := NewDHCPv6()
	var out collect
	for _, s := range dhcpv6Seeds(t) {
		p := discPacket("fe80::1", "ff02::1:2", 546, 547, capture.ProtoUDP, s)
		d.Handle(p, &out)
		if n := testing.AllocsPerRun(100, func() {
			d.Probe(p)
			d.Handle(p, &out)
		}); n != 0 {
			t.Errorf("repeated message type %d: %v allocations", s[0], n)
		}
	}
}

func BenchmarkDHCPv6(b *testing.B) {
	d := NewDHCPv6()
	seeds := dhcpv6Seeds(b)
	p := discPacket("fe80::1", "ff02::1:2", 546, 547, capture.ProtoUDP, seeds[len(seeds)-1])
	var out collect
	b.ReportAllocs()
	for b.Loop() {
		if d.Probe(p) {
			d.Handle(p, &out)
		}
	}
}

func FuzzDHCPv6(f *testing.F) {
	for _, s := range dhcpv6Seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d := NewDHCPv6()
		p := discPacket("fe80::1", "ff02::1:2", 546, 547, capture.ProtoUDP, b)
		d.Probe(p)
		var out collect
		d.Handle(p, &out)
		discCheckObs(t, "dhcpv6", out)
	})
}
