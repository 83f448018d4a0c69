package it

import (
	"encoding/binary"
	"fmt"
	"github.com/passivesensor/sensor/internal/testcorpus"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
)

// dhcpCorpus are captures the corpus README marks "dhcp-host" or
// "dhcp-vendor" (Ethernet ones; NBTokenRing is Token Ring, which the test
// decoder does not read).
var dhcpCorpus = []string{
	"ICS-Pcaps__DHCP__dhcp-relay-serverside.pcap",
	"ICS-Pcaps__DHCP__dhcp_client.pcap",
	"ICS-Pcaps__DHCP__dhcp_server.pcap",
	"ICS-Pcaps__BOOTP__packet.pcap",
	"ICS-Pcaps__COTP__cotp.pcap",
	"ICS-Pcaps__COTP__cip_cotp_proces.pcap",
	"ICS-Pcaps__LocalPCAP__ModbusFloat.pcap",
	"ICS-Pcaps__LocalPCAP__modbusAnalog.pcap",
	"ICS-Pcaps__LocalPCAP__similator.pcap",
	"ICS-Pcaps__Mergecap__kokteyl.pcap",
	"ICS-Pcaps__Zigbee__zigbee3.pcap",
	"Malcolm-PCAP__pcaps__protocols__DHCP.pcap",
	"Malcolm-PCAP__pcaps__protocols__TFTP.pcap",
}

// dhcpFields are the tshark fields TestDHCPParseCorpus compares, in the
// order of the columns of dhcpRow.
var dhcpFields = []string{
	"frame.number", "dhcp.type", "dhcp.hw.mac_addr", "dhcp.option.dhcp",
	"dhcp.option.hostname", "dhcp.option.vendor_class_id", "dhcp.option.request_list_item",
	"dhcp.option.requested_ip_address", "dhcp.option.dhcp_server_id", "dhcp.option.ip_address_lease_time",
	"dhcp.ip.client", "dhcp.ip.your", "dhcp.ip.relay", "dhcp.option.dhcp_max_message_size",
	"dhcp.option.domain_name", "dhcp.option.router", "dhcp.option.domain_name_server",
	"_ws.malformed",
}

// dhcpRow renders a parsed message as tshark renders dhcpFields (after the
// frame number), so that the two can be compared column by column.
func dhcpRow(m *DHCPMessage) []string {
	mac := ""
	if a, ok := m.MAC(); ok && m.HType == 1 {
		mac = a.String()
	}
	text := func(b []byte) string {
		if b == nil {
			return ""
		}
		return string(cleanText(nil, b, maxText))
	}
	ipOpt := func(a netip.Addr) string {
		if !a.IsValid() {
			return ""
		}
		return a.String()
	}
	num := func(v uint64, ok bool) string {
		if !ok {
			return ""
		}
		return strconv.FormatUint(v, 10)
	}
	var params []string
	for _, c := range m.Params {
		params = append(params, strconv.Itoa(int(c)))
	}
	return []string{
		strconv.Itoa(int(m.Op)), mac, num(uint64(m.Type), m.Type != 0),
		text(m.Hostname), text(m.VendorClass), strings.Join(params, ","),
		ipOpt(m.RequestedIP), ipOpt(m.ServerID), num(uint64(m.Lease), m.HasLease),
		m.CIAddr.String(), m.YIAddr.String(), m.GIAddr.String(), num(uint64(m.MaxSize), m.MaxSize != 0),
		text(m.Domain), addrList(m.Routers), addrList(m.DNS),
	}
}

// TestDHCPParseCorpus checks, frame by frame, that ParseDHCP reads what
// tshark reads from every DHCP message of the corpus, and finds no DHCP
// where tshark finds none.
func TestDHCPParseCorpus(t *testing.T) {
	total := 0
	for _, name := range dhcpCorpus {
		t.Run(name, func(t *testing.T) {
			pkts := readCorpus(t, name)
			rows := testcorpus.Tshark(t, testcorpus.File(t, name), "dhcp", dhcpFields...)
			if len(rows) == 0 {
				t.Fatalf("tshark reads no DHCP in %s", name)
			}
			seen := map[int]bool{}
			for _, row := range rows {
				n, err := strconv.Atoi(row[0])
				if err != nil || n < 1 || n > len(pkts) {
					t.Fatalf("tshark frame number %q out of 1..%d", row[0], len(pkts))
				}
				seen[n] = true
				p := pkts[n-1]
				if p.Packet == nil || p.Flow == nil {
					t.Errorf("frame %d: the test decoder found no UDP", n)
					continue
				}
				var m DHCPMessage
				if err := ParseDHCP(p.Payload, &m); err != nil {
					if row[len(row)-1] == "" {
						t.Errorf("frame %d: %v", n, err)
					}
					continue // malformed for tshark too
				}
				if !NewDHCP().Probe(&p) {
					t.Errorf("frame %d: Probe refused a message ParseDHCP reads", n)
				}
				want := row[1 : len(row)-1]
				// tshark repeats the MAC when option 61 holds one.
				want[1], _, _ = strings.Cut(want[1], ",")
				got := dhcpRow(&m)
				for i := range want {
					if got[i] != want[i] {
						if row[len(row)-1] != "" && m.Truncated {
							continue // malformed: tshark stops at a different place
						}
						t.Errorf("frame %d: %s = %q, tshark says %q", n, dhcpFields[i+1], got[i], want[i])
					}
				}
				total++
			}
			d := NewDHCP()
			for i := range pkts {
				p := &pkts[i]
				if p.Flow == nil || seen[i+1] || (p.SrcPort != 67 && p.SrcPort != 68 && p.DstPort != 67 && p.DstPort != 68) {
					continue
				}
				if d.Probe(p) {
					t.Errorf("frame %d: Probe accepts what tshark does not read as DHCP", i+1)
				}
			}
		})
	}
	t.Logf("%d DHCP messages compared with tshark", total)
}

// TestDHCPCorpus checks the observations the dissector emits on the corpus
// against what tshark reads: the client's hostname, vendor class and
// parameter list from its own messages, the address an ACK binds to
// chaddr, and the servers and relays named.
func TestDHCPCorpus(t *testing.T) {
	for _, name := range dhcpCorpus {
		t.Run(name, func(t *testing.T) {
			pkts := readCorpus(t, name)
			rows := testcorpus.Tshark(t, testcorpus.File(t, name), "dhcp", "dhcp.type", "dhcp.hw.mac_addr", "dhcp.option.dhcp",
				"dhcp.option.hostname", "dhcp.option.vendor_class_id", "dhcp.option.request_list_item",
				"dhcp.ip.your", "dhcp.option.dhcp_server_id", "dhcp.ip.relay", "_ws.malformed", "dhcp.fqdn.name")
			compared := []string{dissect.AttrHostname, AttrDHCPVendorClass, AttrDHCPParams, dissect.AttrIP, RoleDHCPServer, RoleDHCPRelay}
			want := map[string]map[string]bool{}
			got := map[string]map[string]bool{}
			for _, attr := range compared {
				want[attr], got[attr] = map[string]bool{}, map[string]bool{}
			}
			add := func(attr, key string) { want[attr][key] = true }
			total := 0
			for _, r := range rows {
				if r[9] != "" {
					continue // malformed
				}
				mac, _, _ := strings.Cut(r[1], ",")
				usableMAC := mac != "" && mac != "00:00:00:00:00:00"
				switch {
				case r[0] == "1" && (r[2] == "" || r[2] == "1" || r[2] == "3" || r[2] == "8") && usableMAC:
					for _, name := range []string{r[3], r[10]} {
						if host, _, _ := strings.Cut(name, "."); host != "" {
							add(dissect.AttrHostname, mac+" "+host)
						}
					}
					if r[4] != "" {
						add(AttrDHCPVendorClass, mac+" "+r[4])
					}
					if r[5] != "" {
						add(AttrDHCPParams, mac+" "+r[5])
					}
				case r[0] == "2" && (r[2] == "" || r[2] == "5") && usableMAC && r[6] != "0.0.0.0":
					add(dissect.AttrIP, mac+" "+r[6])
				}
				if r[7] != "" && r[2] != "4" && r[2] != "7" {
					add(RoleDHCPServer, r[7])
				}
				if r[8] != "0.0.0.0" {
					add(RoleDHCPRelay, r[8])
				}
			}
			for _, o := range run(NewDHCP(), pkts) {
				if o.Protocol != "dhcp" {
					t.Errorf("observation of protocol %q", o.Protocol)
				}
				switch o.Attr {
				case dissect.AttrHostname, AttrDHCPVendorClass, AttrDHCPParams, dissect.AttrIP:
					if !o.MAC.IsZero() && got[o.Attr] != nil {
						got[o.Attr][o.MAC.String()+" "+o.Value] = true
					}
				case dissect.AttrRole:
					if got[o.Value] != nil {
						got[o.Value][o.IP.String()] = true
					}
				}
			}
			var counts []string
			for _, attr := range compared {
				if diff := setDiff(want[attr], got[attr]); diff != "" {
					t.Errorf("%s differs from tshark:\n%s", attr, diff)
				}
				total += len(want[attr])
				counts = append(counts, fmt.Sprintf("%s %d", attr, len(want[attr])))
			}
			if total == 0 {
				t.Fatalf("tshark reads nothing to compare in %s", name)
			}
			t.Log(strings.Join(counts, ", "))
		})
	}
}

// opt builds one DHCP option.
func opt(code byte, data ...byte) []byte {
	return append([]byte{code, byte(len(data))}, data...)
}

// dhcpMsg builds a DHCP message with the given options (an end option is
// appended).
func dhcpMsg(op byte, chaddr capture.MAC, ciaddr, yiaddr, giaddr string, opts ...[]byte) []byte {
	b := make([]byte, 240, 548)
	b[0], b[1], b[2] = op, 1, 6
	binary.BigEndian.PutUint32(b[4:], 0x3903f326)
	for i, s := range []string{ciaddr, yiaddr, "0.0.0.0", giaddr} {
		a := netip.MustParseAddr(s).As4()
		copy(b[12+4*i:], a[:])
	}
	copy(b[28:], chaddr[:])
	binary.BigEndian.PutUint32(b[236:], dhcpMagic)
	for _, o := range opts {
		b = append(b, o...)
	}
	return append(b, 255)
}

// dhcpPacket wraps a DHCP payload as the registry hands it over.
func dhcpPacket(payload []byte, fromClient bool) *dissect.Packet {
	cli := netip.MustParseAddrPort("0.0.0.0:68")
	srv := netip.MustParseAddrPort("255.255.255.255:67")
	p := &capture.Packet{Time: t0, HasEth: true, EtherType: 0x0800, IPProto: capture.ProtoUDP, Payload: payload}
	if fromClient {
		p.SrcIP, p.DstIP, p.SrcPort, p.DstPort = cli.Addr(), srv.Addr(), 68, 67
	} else {
		p.SrcIP, p.DstIP, p.SrcPort, p.DstPort = netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.50"), 67, 68
	}
	dir := flow.FromClient
	if !fromClient {
		dir = flow.FromServer
	}
	return &dissect.Packet{Packet: p, Flow: &flow.Flow{Proto: capture.ProtoUDP, Client: cli, Server: srv}, Dir: dir}
}

func handleDHCP(t *testing.T, payload []byte, fromClient bool) collect {
	t.Helper()
	d := NewDHCP()
	p := dhcpPacket(payload, fromClient)
	if !d.Probe(p) {
		t.Fatalf("Probe refused the message")
	}
	var out collect
	d.Handle(p, &out)
	return out
}

// find returns the values of attr in c.
func find(c collect, attr string) []string {
	var v []string
	for _, o := range c {
		if o.Attr == attr {
			v = append(v, o.Value)
		}
	}
	return v
}

func TestDHCPClient(t *testing.T) {
	msg := dhcpMsg(1, macA, "0.0.0.0", "0.0.0.0", "0.0.0.0",
		opt(53, DHCPRequest),
		opt(61, 1, 0x00, 0x1d, 0xe0, 0x8c, 0xcf, 0xf3),
		opt(50, 192, 168, 130, 7),
		opt(57, 0x05, 0xdc),
		opt(12, []byte("plc-7.plant.example\x00")...),
		opt(60, []byte("MSFT 5.0")...),
		opt(77, 3, 'a', 'b', 'c', 2, 'd', 'e'),
		opt(55, 1, 3, 6, 15, 119, 252),
	)
	out := handleDHCP(t, msg, true)
	for _, o := range out {
		if o.MAC != macA || o.IP != netip.MustParseAddr("192.168.130.7") {
			t.Errorf("%s=%q about %v/%v, want chaddr and the requested IP", o.Attr, o.Value, o.MAC, o.IP)
		}
	}
	checks := map[string]string{
		AttrDHCPMsgType:      "request",
		AttrDHCPClientID:     "01001de08ccff3",
		AttrDHCPMaxSize:      "1500",
		dissect.AttrHostname: "plc-7",
		dissect.AttrFQDN:     "plc-7.plant.example",
		dissect.AttrDomain:   "plant.example",
		AttrDHCPVendorClass:  "MSFT 5.0",
		AttrDHCPUserClass:    "abc,de",
		AttrDHCPParams:       "1,3,6,15,119,252",
	}
	for attr, want := range checks {
		if got := find(out, attr); len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want [%q]", attr, got, want)
		}
	}
	// A DISCOVER's requested IP is only a wish: no IP.
	msg[242] = DHCPDiscover
	for _, o := range handleDHCP(t, msg, true) {
		if o.IP.IsValid() {
			t.Errorf("DISCOVER: %s about IP %v", o.Attr, o.IP)
			break
		}
	}
}

func TestDHCPServerAck(t *testing.T) {
	msg := dhcpMsg(2, macA, "0.0.0.0", "192.168.130.7", "10.2.99.99",
		opt(53, DHCPAck),
		opt(54, 192, 168, 130, 1),
		opt(51, 0, 0, 0x0e, 0x10), // 3600 s
		opt(3, 192, 168, 130, 1),
		opt(6, 8, 8, 8, 8, 1, 1, 1, 1),
		opt(15, []byte("UU.Local\x00")...),
		opt(12, []byte("should-not-count")...),
	)
	out := handleDHCP(t, msg, false)
	var roles []string
	for _, o := range out {
		if o.Attr == dissect.AttrRole {
			roles = append(roles, o.IP.String()+"="+o.Value)
			continue
		}
		if o.MAC != macA || o.IP != netip.MustParseAddr("192.168.130.7") {
			t.Errorf("%s=%q about %v/%v, want chaddr and yiaddr", o.Attr, o.Value, o.MAC, o.IP)
		}
	}
	wantRoles := "10.2.99.99=dhcp-relay 192.168.130.1=dhcp-server 192.168.130.1=router 8.8.8.8=dns-server 1.1.1.1=dns-server"
	if s := strings.Join(roles, " "); s != wantRoles {
		t.Errorf("roles %s\nwant  %s", s, wantRoles)
	}
	checks := map[string]string{
		dissect.AttrIP:   "192.168.130.7",
		AttrDHCPLease:    "3600",
		AttrDHCPLeaseEnd: t0.Add(time.Hour).Format(time.RFC3339),
		AttrDHCPRouter:   "192.168.130.1",
		AttrDHCPDNS:      "8.8.8.8,1.1.1.1",
		AttrDHCPDomain:   "UU.Local",
	}
	for attr, want := range checks {
		if got := find(out, attr); len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want [%q]", attr, got, want)
		}
	}
	if got := find(out, dissect.AttrHostname); len(got) != 0 {
		t.Errorf("a server's option 12 gave hostnames %q", got)
	}
	// An OFFER binds nothing.
	msg[242] = DHCPOffer
	for _, o := range handleDHCP(t, msg, false) {
		if o.Attr != dissect.AttrRole {
			t.Errorf("OFFER: emitted %s=%q", o.Attr, o.Value)
		}
	}
}

func TestDHCPOverload(t *testing.T) {
	msg := dhcpMsg(1, macB, "10.0.0.9", "0.0.0.0", "0.0.0.0", opt(53, DHCPInform), opt(52, 3))
	// file (108..236) holds the hostname, sname (44..108) the vendor class.
	copy(msg[108:], append(opt(12, []byte("from-file")...), 255))
	copy(msg[44:], append(opt(60, []byte("from-sname")...), 255))
	out := handleDHCP(t, msg, true)
	if got := find(out, dissect.AttrHostname); len(got) != 1 || got[0] != "from-file" {
		t.Errorf("hostname %q, want from-file", got)
	}
	if got := find(out, AttrDHCPVendorClass); len(got) != 1 || got[0] != "from-sname" {
		t.Errorf("vendor class %q, want from-sname", got)
	}
	for _, o := range out {
		if o.IP != netip.MustParseAddr("10.0.0.9") {
			t.Errorf("INFORM: %s about %v, want ciaddr", o.Attr, o.IP)
		}
	}
	// Without option 52, sname and file are not options.
	msg = dhcpMsg(1, macB, "10.0.0.9", "0.0.0.0", "0.0.0.0", opt(53, DHCPInform))
	copy(msg[108:], append(opt(12, []byte("from-file")...), 255))
	if got := find(handleDHCP(t, msg, true), dissect.AttrHostname); len(got) != 0 {
		t.Errorf("hostname %q read from a file field not overloaded", got)
	}
}

// fqdnCases are option 81 encodings (RFC 4702), with the names the
// dissector should report.
var fqdnCases = []struct {
	name               string
	data               []byte
	host, fqdn, domain string
}{
	{"ascii", append([]byte{0x01, 0, 0}, "ws12.corp.example.com"...), "ws12", "ws12.corp.example.com", "corp.example.com"},
	{"ascii trailing dot", append([]byte{0x00, 255, 255}, "ws12.corp.example."...), "ws12", "ws12.corp.example", "corp.example"},
	{"ascii single label", append([]byte{0x00, 0, 0}, "ws12"...), "ws12", "", ""},
	{"wire", append([]byte{0x05, 0, 0}, "\x04ws12\x04corp\x07example\x03com\x00"...), "ws12", "ws12.corp.example.com", "corp.example.com"},
	{"wire partial", append([]byte{0x05, 0, 0}, "\x04ws12"...), "ws12", "", ""},
	{"wire label past end", append([]byte{0x04, 0, 0}, "\x04ws12\x09corp"...), "ws12", "", ""},
	{"wire compression pointer", append([]byte{0x04, 0, 0}, "\x04ws12\xc0\x0c"...), "ws12", "", ""},
	{"wire control bytes", append([]byte{0x04, 0, 0}, "\x05w\x01s12\x03lan\x00"...), "ws12", "ws12.lan", "lan"},
	{"empty name", []byte{0x01, 0, 0}, "", "", ""},
}

func TestDHCPFQDN(t *testing.T) {
	for _, c := range fqdnCases {
		t.Run(c.name, func(t *testing.T) {
			msg := dhcpMsg(1, macA, "0.0.0.0", "0.0.0.0", "0.0.0.0", opt(53, DHCPDiscover), opt(81, c.data...))
			out := handleDHCP(t, msg, true)
			for attr, want := range map[string]string{dissect.AttrHostname: c.host, dissect.AttrFQDN: c.fqdn, dissect.AttrDomain: c.domain} {
				got := find(out, attr)
				if (want == "" && len(got) != 0) || (want != "" && (len(got) != 1 || got[0] != want)) {
					t.Errorf("%s = %q, want %q", attr, got, want)
				}
			}
		})
	}
}

// TestDHCPFQDNTshark writes the option 81 cases in a capture and checks
// that the names decoded are the ones tshark decodes.
func TestDHCPFQDNTshark(t *testing.T) {
	testcorpus.NeedTshark(t)
	path := filepath.Join(t.TempDir(), "fqdn.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	var cases []int
	for i, c := range fqdnCases {
		switch c.name {
		case "wire control bytes", "empty name":
			continue // tshark shows escapes, or nothing
		case "wire label past end":
			continue // tshark gives up on the name; we keep the labels read
		}
		msg := dhcpMsg(1, macA, "0.0.0.0", "0.0.0.0", "0.0.0.0", opt(53, DHCPDiscover), opt(81, c.data...))
		frame := udpFrame(t, macA, "0.0.0.0", "255.255.255.255", 68, 67, msg)
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: t0, CaptureLength: len(frame), Length: len(frame)}, frame); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, i)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	rows := testcorpus.Tshark(t, path, "dhcp", "dhcp.fqdn.name")
	if len(rows) != len(cases) {
		t.Fatalf("tshark reads %d messages, wrote %d", len(rows), len(cases))
	}
	for i, row := range rows {
		c := fqdnCases[cases[i]]
		got := string(cleanText(nil, decodeFQDN(nil, c.data), maxText))
		// tshark keeps a trailing dot; so does decodeFQDN (names drops it).
		if got != row[0] {
			t.Errorf("%s: decoded %q, tshark %q", c.name, got, row[0])
		}
	}
}

// udpFrame builds an Ethernet/IPv4/UDP frame.
func udpFrame(t *testing.T, src capture.MAC, sip, dip string, sport, dport uint16, payload []byte) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr(src[:]), DstMAC: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.ParseIP(sip).To4(), DstIP: net.ParseIP(dip).To4()}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, eth, ip, udp, gopacket.Payload(payload)); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	return buf.Bytes()
}

func TestCleanText(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	cases := []struct{ in, want string }{
		{"host\x00junk", "host"},
		{"  ho\x01st\r\n ", "host"},
		{"caf\xc3\xa9", "café"},
		{"bad\xff\xfeutf8", "badutf8"},
		{"c1\xc2\x85ctl", "c1ctl"},
		{"\x00", ""},
		{long, strings.Repeat("é", maxText/2)},
	}
	for _, c := range cases {
		got := string(cleanText(nil, []byte(c.in), maxText))
		if got != c.want {
			t.Errorf("cleanText(%q) = %q, want %q", c.in, got, c.want)
		}
		if !utf8.ValidString(got) || len(got) > maxText {
			t.Errorf("cleanText(%q) = %q: invalid or too long", c.in, got)
		}
	}
	if got := string(userClass(nil, []byte("MSFT 5.0"))); got != "MSFT 5.0" {
		t.Errorf("userClass of plain text = %q", got)
	}
}

// dhcpSeeds returns valid messages: hand-built ones and, when the corpus is
// there, the first messages of a few captures.
func dhcpSeeds(t testing.TB) [][]byte {
	seeds := [][]byte{
		dhcpMsg(1, macA, "0.0.0.0", "0.0.0.0", "0.0.0.0", opt(53, 1), opt(12, 'h'), opt(55, 1, 3, 6), opt(81, 0x05, 0, 0, 2, 'a', 'b', 0), opt(77, 1, 'x')),
		dhcpMsg(2, macA, "0.0.0.0", "10.0.0.7", "10.0.0.254", opt(53, 5), opt(51, 0xff, 0xff, 0xff, 0xff), opt(3, 10, 0, 0, 1), opt(6, 10, 0, 0, 2), opt(52, 3), opt(15, 'x')),
	}
	if corpusDirOrEmpty() == "" {
		return seeds
	}
	for _, name := range []string{"ICS-Pcaps__DHCP__dhcp_client.pcap", "ICS-Pcaps__DHCP__dhcp-relay-serverside.pcap", "Malcolm-PCAP__pcaps__protocols__DHCP.pcap"} {
		for _, p := range readCorpus(t, name) {
			if p.Flow != nil && checkDHCP(p.Payload) == nil {
				seeds = append(seeds, p.Payload)
			}
		}
	}
	return seeds
}

// TestDHCPTruncated offers every prefix of hand-built and real messages:
// no panic, and no observation from less than the fixed header.
func TestDHCPTruncated(t *testing.T) {
	msgs := dhcpSeeds(t)
	d := NewDHCP()
	for _, full := range msgs {
		for n := range len(full) + 1 {
			b := append([]byte(nil), full[:n]...)
			p := dhcpPacket(b[:n:n], full[0] == 1)
			ok := d.Probe(p)
			var out collect
			d.Handle(p, &out)
			if n < 240 && (ok || len(out) > 0) {
				t.Fatalf("length %d: probe %v, %d observations", n, ok, len(out))
			}
			if n >= 240 && !ok {
				t.Fatalf("length %d: Probe refused a header that is whole", n)
			}
		}
	}
}

// corpusDirOrEmpty returns the corpus directory, or "" when there is none.
func corpusDirOrEmpty() string {
	dir, _ := os.Getwd()
	for {
		c := filepath.Join(dir, "shared", "corpus")
		if fi, err := os.Stat(c); err == nil && fi.IsDir() {
			return c
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// TestDHCPAllocs checks that parsing, and handling what is not DHCP,
// allocate nothing.
func TestDHCPAllocs(t *testing.T) {
	msg := dhcpSeeds(t)[0]
	var m DHCPMessage
	if n := testing.AllocsPerRun(1000, func() { _ = ParseDHCP(msg, &m) }); n != 0 {
		t.Errorf("ParseDHCP: %v allocations, want 0", n)
	}
	d := NewDHCP()
	p := dhcpPacket(make([]byte, 300), true)
	var out collect
	if n := testing.AllocsPerRun(1000, func() {
		if d.Probe(p) {
			t.Fatal("Probe accepted zeros")
		}
		d.Handle(p, &out)
	}); n != 0 {
		t.Errorf("Probe+Handle of zeros: %v allocations, want 0", n)
	}
}

func BenchmarkParseDHCP(b *testing.B) {
	msg := dhcpSeeds(b)[0]
	var m DHCPMessage
	b.ReportAllocs()
	for b.Loop() {
		_ = ParseDHCP(msg, &m)
	}
}

func FuzzDHCP(f *testing.F) {
	for _, s := range dhcpSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m DHCPMessage
		err := ParseDHCP(b, &m)
		d := NewDHCP()
		for _, fromClient := range []bool{true, false} {
			p := dhcpPacket(b, fromClient)
			if d.Probe(p) != (err == nil) {
				t.Fatalf("Probe and ParseDHCP disagree (err %v)", err)
			}
			var out collect
			d.Handle(p, &out)
			for _, o := range out {
				if o.Protocol != "dhcp" || o.Attr == "" || o.Value == "" {
					t.Fatalf("bad observation %+v", o)
				}
				if !utf8.ValidString(o.Value) || len(o.Value) > 1100 {
					t.Fatalf("%s value invalid or too long: %q", o.Attr, o.Value)
				}
				if !o.IP.IsValid() && o.MAC.IsZero() {
					t.Fatalf("observation about no device: %+v", o)
				}
			}
		}
	})
}
