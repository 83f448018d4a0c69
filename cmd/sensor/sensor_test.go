package main

import (
	"encoding/binary"
	"github.com/passivesensor/sensor/internal/dissecttest"
	"github.com/passivesensor/sensor/internal/testcorpus"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/passivesensor/sensor/asset"
	"github.com/passivesensor/sensor/capture"
)

// runFile runs the capture at path through a sensor with the default
// classes and returns its report.
func runFile(t testing.TB, path string) Report {
	t.Helper()
	return runFileWith(t, path, asset.DefaultClasses())
}

// runFileWith is runFile with the operator's classes c.
func runFileWith(t testing.TB, path string, c asset.Classes) Report {
	t.Helper()
	src, err := capture.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	s := New(c)
	if err := s.RunFile(src); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return s.Report()
}

// pairs returns the (IP, MAC) pairs of the inventoried assets that carry
// their own MAC.
func pairs(r Report) map[string]bool {
	m := map[string]bool{}
	for _, a := range r.Assets {
		if a.MAC.IsZero() || a.Kind != asset.Inventoried {
			continue
		}
		for _, ip := range a.IPs {
			m[ip.String()+" "+a.MAC.String()] = true
		}
	}
	return m
}

// oraclePairs reads (IP, MAC) pairs the way the product's rules define a
// device's own address, from what tshark says the frames carry: the source
// MAC and source address of TCP/UDP frames from inventoried addresses
// (private IPv4, IPv6 link-local and ULA), the sender of ARP messages and
// the address a DHCP server acknowledged for a client's hardware address,
// the management address LLDP states for its chassis;
// except that a MAC seen with more than asset.RouterIPs addresses of a
// family, or with a source address outside those ranges, is a router's and
// binds only what ARP and DHCP state.
func oraclePairs(t testing.TB, file string) map[string]bool {
	inv := func(s string) bool {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return false
		}
		if a.Is4() {
			return a.IsPrivate()
		}
		return a.IsLinkLocalUnicast() || a.IsPrivate()
	}
	byMAC := map[string]map[string]bool{}
	router := map[string]bool{}
	stated := map[string]bool{}
	frames := testcorpus.TsharkLast(t, file, "(ip || ipv6) && !icmp && !icmpv6 && !(ip.flags.mf == 1 || ip.frag_offset > 0) && (tcp || udp)", "eth.src", "ip.src", "ipv6.src")
	for _, r := range frames {
		if len(r) < 3 || r[0] == "" {
			continue
		}
		src := r[1]
		if src == "" {
			src = r[2]
		}
		if src == "" || src == "0.0.0.0" || src == "::" {
			continue
		}
		if !inv(src) {
			router[r[0]] = true
			continue
		}
		if byMAC[r[0]] == nil {
			byMAC[r[0]] = map[string]bool{}
		}
		byMAC[r[0]][src] = true
	}
	for _, r := range testcorpus.TsharkLast(t, file, "arp && arp.src.proto_ipv4 != 0.0.0.0", "arp.src.hw_mac", "arp.src.proto_ipv4") {
		if len(r) == 2 && inv(r[1]) {
			stated[r[1]+" "+r[0]] = true
		}
	}
	for _, r := range testcorpus.TsharkLast(t, file, "dhcp.option.dhcp == 5 && dhcp.ip.your != 0.0.0.0", "dhcp.hw.mac_addr", "dhcp.ip.your") {
		if len(r) == 2 && inv(r[1]) {
			stated[r[1]+" "+r[0]] = true
		}
	}
	// LLDP states a management address for the chassis; the chassis is
	// the frame's sender when its id is not a MAC.
	for _, r := range testcorpus.TsharkLast(t, file, "lldp.mgn.addr.ip4", "lldp.chassis.id.mac", "eth.src", "lldp.mgn.addr.ip4") {
		if len(r) == 3 && inv(r[2]) {
			m := r[0]
			if m == "" {
				m = r[1]
			}
			stated[r[2]+" "+m] = true
		}
	}
	out := map[string]bool{}
	for m, ips := range byMAC {
		if router[m] {
			continue
		}
		n4, n6 := 0, 0
		for ip := range ips {
			if strings.Contains(ip, ":") {
				n6++
			} else {
				n4++
			}
		}
		for ip := range ips {
			if strings.Contains(ip, ":") && n6 <= asset.RouterIPs || !strings.Contains(ip, ":") && n4 <= asset.RouterIPs {
				out[ip+" "+m] = true
			}
		}
	}
	for k := range stated {
		out[k] = true
	}
	return out
}

func diff(want, got map[string]bool) string {
	var b strings.Builder
	var keys []string
	for k := range want {
		if !got[k] {
			keys = append(keys, "missing "+k)
		}
	}
	for k := range got {
		if !want[k] {
			keys = append(keys, "extra   "+k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteString(k + "\n")
	}
	return b.String()
}

var pairFiles = []string{
	"ICS-Pcaps__ARP__arp.pcap",
	"ICS-Pcaps__DHCP__dhcp_client.pcap",
	"ICS-Pcaps__LocalPCAP__ModbusFloat.pcap",
	"ICS-Pcaps__COTP__cotp.pcap",
	"ICS-Pcaps__IEC60870-104__58_59.pcap",
	"ICS-Pcaps__LLDP__simens.pcap",
	"Malcolm-PCAP__pcaps__protocols__DHCP.pcap",
	"Malcolm-PCAP__pcaps__protocols__Telnet.pcap",
	"ICS-Security-Tools__pcaps__openics__EIP-LockPLCAttempt.pcap",
}

// The (IP, MAC) pairs the sensor reports are the ones Wireshark reads from
// the same frames, under the rule that a router's MAC is not its hosts'.
func TestIPMACPairsMatchWireshark(t *testing.T) {
	testcorpus.NeedTshark(t)
	for _, name := range pairFiles {
		t.Run(name, func(t *testing.T) {
			f := testcorpus.File(t, name)
			got := pairs(runFile(t, f))
			want := oraclePairs(t, f)
			if d := diff(want, got); d != "" {
				t.Errorf("(IP, MAC) pairs differ from tshark's:\n%s", d)
			}
		})
	}
}

// DHCP hostnames reported per MAC are the ones the clients sent.
func TestDHCPHostnamesMatchWireshark(t *testing.T) {
	testcorpus.NeedTshark(t)
	for _, name := range []string{
		"ICS-Pcaps__DHCP__dhcp_client.pcap",
		"ICS-Pcaps__BOOTP__packet.pcap",
		"Malcolm-PCAP__pcaps__protocols__DHCP.pcap",
		"ICS-Pcaps__LocalPCAP__ModbusFloat.pcap",
	} {
		t.Run(name, func(t *testing.T) {
			f := testcorpus.File(t, name)
			want := map[string]map[string]bool{}
			for _, r := range testcorpus.TsharkLast(t, f, "dhcp.option.hostname", "dhcp.hw.mac_addr", "dhcp.option.hostname") {
				if len(r) == 2 {
					if want[r[0]] == nil {
						want[r[0]] = map[string]bool{}
					}
					want[r[0]][r[1]] = true
				}
			}
			if len(want) == 0 {
				t.Fatalf("tshark finds no DHCP hostname in %s", name)
			}
			got := map[string]string{}
			for _, a := range runFile(t, f).Assets {
				if !a.MAC.IsZero() && a.Hostname != "" {
					got[a.MAC.String()] = a.Hostname
				}
			}
			for m, names := range want {
				if !names[got[m]] {
					t.Errorf("MAC %s: hostname %q, tshark reads %v", m, got[m], names)
				}
			}
			for m, h := range got {
				if want[m] == nil {
					t.Errorf("MAC %s: hostname %q that no DHCP message carried", m, h)
				}
			}
		})
	}
}

// The built-in plant: every device is found with its own MAC, the office
// PCs behind the router stay separate assets, and the DHCP names are read.
func TestPlantInventory(t *testing.T) {
	src, err := openDemo()
	if err != nil {
		t.Fatal(err)
	}
	s := New(asset.DefaultClasses())
	if err := s.RunFile(src); err != nil {
		t.Fatal(err)
	}
	r := s.Report()
	byIP := map[string]asset.Asset{}
	for _, a := range r.Assets {
		for _, ip := range a.IPs {
			byIP[ip.String()] = a
		}
	}
	for ip, mac := range map[string]string{
		"10.10.0.2": "00:1b:1b:10:00:02", "10.10.0.11": "00:80:f4:10:00:11", "10.10.0.12": "00:00:bc:10:00:12",
		"10.10.0.21": "00:90:e8:10:00:21", "10.10.0.31": "00:14:22:10:00:31", "10.10.0.1": "00:1e:bd:10:00:01",
	} {
		a, ok := byIP[ip]
		if !ok {
			t.Errorf("%s missing from the inventory", ip)
			continue
		}
		if a.MAC.String() != mac {
			t.Errorf("%s: MAC %s, want %s", ip, a.MAC, mac)
		}
	}
	for _, ip := range []string{"10.10.1.101", "10.10.1.102"} {
		a, ok := byIP[ip]
		if !ok {
			t.Errorf("office PC %s behind the router missing", ip)
			continue
		}
		if !a.MAC.IsZero() {
			t.Errorf("office PC %s merged with MAC %s: it is behind the router", ip, a.MAC)
		}
	}
	if a := byIP["10.10.0.21"]; a.Hostname != "HMI-LINE1" {
		t.Errorf("HMI hostname %q, want HMI-LINE1", a.Hostname)
	}
	if a := byIP["10.10.0.11"]; a.Vendor != "Schneider Electric" || a.Firmware != "v3.20" || !strings.Contains(a.Attrs["role"], "modbus-server") {
		t.Errorf("PLC 10.10.0.11: vendor %q firmware %q role %q, want Schneider Electric, v3.20 and modbus-server from its device identification", a.Vendor, a.Firmware, a.Attrs["role"])
	}
	if a := byIP["10.10.0.21"]; !strings.Contains(a.Attrs["role"], "modbus-client") {
		t.Errorf("HMI role %q, want modbus-client", a.Attrs["role"])
	}
	if a := byIP["10.10.0.11"]; !hasPort(a, 502) {
		t.Errorf("PLC 10.10.0.11 open ports %v, want 502/tcp", a.OpenPorts)
	}
	found := false
	for _, tr := range r.Traffic {
		if tr.Src.String() == "10.10.0.21" && tr.Dst.String() == "10.10.0.11" && tr.DPort == 502 && tr.Proto == capture.ProtoTCP {
			found = tr.PacketsOut > 20 && tr.PacketsIn > 20
		}
	}
	if !found {
		t.Errorf("no HMI -> PLC Modbus traffic record with both directions counted: %+v", r.Traffic)
	}
}

func hasPort(a asset.Asset, p uint16) bool {
	for _, x := range a.OpenPorts {
		if x.Port == p && x.Proto == capture.ProtoTCP {
			return true
		}
	}
	return false
}

// wrap rewrites an Ethernet capture with each frame encapsulated by enc.
func wrap(t testing.TB, in string, enc func(frame []byte) []byte) string {
	var out []capture.Frame
	dissecttest.Frames(t, in, func(fr capture.Frame) {
		if fr.LinkType != capture.LinkEthernet {
			t.Fatalf("%s is not Ethernet", in)
		}
		d := enc(slices.Clone(fr.Data))
		fr.WireLen += len(d) - len(fr.Data)
		fr.Data = d
		out = append(out, fr)
	})
	return dissecttest.WritePcap(t, out)
}

func vlan(frame []byte, tpids ...uint16) []byte {
	out := append([]byte(nil), frame[:12]...)
	for i, tp := range tpids {
		out = binary.BigEndian.AppendUint16(out, tp)
		out = binary.BigEndian.AppendUint16(out, uint16(100+i))
	}
	return append(out, frame[12:]...)
}

// tunnel puts frame in GRE (with the given protocol and header) inside an
// outer Ethernet/IPv4 packet from the mirroring switch to the sensor.
func tunnel(frame []byte, greProto uint16, hdr []byte) []byte {
	gre := []byte{0x10, 0x00} // S bit: a sequence number follows, as ERSPAN sends
	gre = binary.BigEndian.AppendUint16(gre, greProto)
	gre = append(gre, 0, 0, 0, 1)
	gre = append(gre, hdr...)
	gre = append(gre, frame...)
	if greProto == 0x6558 {
		gre[0] = 0 // plain transparent Ethernet bridging, no sequence number
		gre = append(gre[:4], gre[8:]...)
	}
	sb := gopacket.NewSerializeBuffer()
	eth := &layers.Ethernet{SrcMAC: []byte{2, 0, 0, 0, 0, 1}, DstMAC: []byte{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolGRE, SrcIP: []byte{192, 0, 2, 1}, DstIP: []byte{192, 0, 2, 2}}
	gopacket.SerializeLayers(sb, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, gopacket.Payload(gre))
	return sb.Bytes()
}

// A mirror that arrives tagged or tunnelled gives the same inventory and
// traffic as the frames it carries.
func TestEncapsulationGivesSameInventory(t *testing.T) {
	base := testcorpus.File(t, "ICS-Pcaps__COTP__cotp.pcap")
	want := runFile(t, base)
	erspan2 := []byte{0x10, 0x64, 0x00, 0x01, 0, 0, 0, 0}             // ver 1, VLAN 100, session 1
	erspan3 := []byte{0x20, 0x64, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0} // ver 2, no platform subheader
	erspan3p := []byte{0x20, 0x64, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 1, 0x0c, 0, 0, 0, 0, 0, 0, 0}
	cases := map[string]func([]byte) []byte{
		"802.1Q":              func(f []byte) []byte { return vlan(f, 0x8100) },
		"QinQ":                func(f []byte) []byte { return vlan(f, 0x88a8, 0x8100) },
		"GRE":                 func(f []byte) []byte { return tunnel(f, 0x6558, nil) },
		"ERSPAN-II":           func(f []byte) []byte { return tunnel(f, 0x88be, erspan2) },
		"ERSPAN-III":          func(f []byte) []byte { return tunnel(f, 0x22eb, erspan3) },
		"ERSPAN-III-platform": func(f []byte) []byte { return tunnel(f, 0x22eb, erspan3p) },
		"ERSPAN-II-over-QinQ": func(f []byte) []byte { return vlan(tunnel(f, 0x88be, erspan2), 0x88a8, 0x8100) },
	}
	for name, enc := range cases {
		t.Run(name, func(t *testing.T) {
			got := runFile(t, wrap(t, base, enc))
			if d := diff(pairs(want), pairs(got)); d != "" {
				t.Errorf("(IP, MAC) pairs differ from the plain capture's:\n%s", d)
			}
			if len(got.Traffic) != len(want.Traffic) {
				t.Errorf("%d traffic records, the plain capture gives %d", len(got.Traffic), len(want.Traffic))
			}
			for i := range want.Traffic {
				if i < len(got.Traffic) && got.Traffic[i] != want.Traffic[i] {
					t.Errorf("traffic record %d: %+v, plain capture %+v", i, got.Traffic[i], want.Traffic[i])
				}
			}
		})
	}
}

// A monitored-external FQDN takes the addresses DNS answers gave it on the
// wire: the web traffic that follows the lookup is the group's, and an
// address nobody looked up stays External.
func TestMonitoredFQDNFromDNSAnswers(t *testing.T) {
	f := testcorpus.File(t, "Malcolm-PCAP__pcaps__protocols__DNS.pcap")
	cfg := filepath.Join(t.TempDir(), "classes.json")
	os.WriteFile(cfg, []byte(`{"inventoried":[{"prefix":"192.168.0.0/16"},{"prefix":"172.16.0.0/12"},{"prefix":"10.0.0.0/8"}],
		"monitored_external":[{"name":"wireshark","fqdns":["wireshark.org"]}]}`), 0o644)
	classes, err := asset.LoadClasses(cfg)
	if err != nil {
		t.Fatal(err)
	}
	src, err := capture.OpenFile(f)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	s := New(classes)
	if err := s.RunFile(src); err != nil {
		t.Fatal(err)
	}
	var group, other bool
	for _, tr := range s.Report().Traffic {
		switch tr.Dst.String() {
		case "128.121.50.122": // answered for wireshark.org
			group = true
			if tr.DstAsset != "group:wireshark" {
				t.Errorf("traffic to wireshark.org's address is %q, want group:wireshark", tr.DstAsset)
			}
		case "208.113.140.24": // answered for chrissanders.org, not monitored
			other = true
			if tr.DstAsset != "external" {
				t.Errorf("traffic to an unmonitored name's address is %q, want external", tr.DstAsset)
			}
		}
	}
	if !group || !other {
		t.Fatalf("expected traffic to both addresses (wireshark.org %v, other %v)", group, other)
	}
}
