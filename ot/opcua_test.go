package ot

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
	"github.com/passivesensor/sensor/internal/testcorpus"
)

var opcuaCorpus = []string{
	"Malcolm-PCAP__pcaps__protocols__OPCUA-Binary.pcap",
	"icsnpp-opcua-binary__tests__traces__opcua_with-gap_with-handshake.pcap",
}

// TestOPCUATshark compares Hello endpoint URLs (opcua.transport.endpoint),
// OpenSecureChannel policies (opcua.security.spu) and the application
// descriptions of CreateSession requests and answers (opcua.ApplicationUri,
// opcua.ProductUri, opcua.SecurityPolicyUri) with tshark's; the sender of
// Hello is the client.
func TestOPCUATshark(t *testing.T) {
	for _, name := range opcuaCorpus {
		path := testcorpus.File(t, name)
		got := obsSet(runFile(t, path, NewOPCUA()))
		all := strings.Join(keys(got), "\n")
		n := 0
		for _, r := range testcorpus.Tshark(t, path, "opcua.transport.type==\"HEL\" || opcua.transport.type==\"OPN\" || opcua.servicenodeid.numeric==461 || opcua.servicenodeid.numeric==464 || opcua.servicenodeid.numeric==431",
			"ip.src", "ipv6.src", "ip.dst", "ipv6.dst", "opcua.transport.type", "opcua.transport.endpoint", "opcua.security.spu", "opcua.servicenodeid.numeric", "opcua.ApplicationUri", "opcua.ProductUri", "opcua.SecurityPolicyUri") {
			src, dst := r[0]+r[1], r[2]+r[3]
			var want []string
			switch {
			case r[4] == "HEL":
				want = []string{dst + " " + AttrOPCUAEndpointURL + "=" + r[5], src + " role=" + RoleOPCUAClient, dst + " role=" + RoleOPCUAServer}
			case r[4] == "OPN" && r[6] != "":
				srv := dst
				if got[src+" role="+RoleOPCUAServer] && !got[dst+" role="+RoleOPCUAServer] {
					srv = src
				}
				want = []string{srv + " " + AttrOPCUASecurityPolicy + "=" + r[6]}
			case r[7] != "":
				if r[8] != "" {
					want = append(want, src+" "+AttrOPCUAAppURI+"="+strings.Split(r[8], ",")[0])
				}
				if r[9] != "" {
					want = append(want, src+" "+AttrOPCUAProductURI+"="+strings.Split(r[9], ",")[0])
				}
				for _, pol := range strings.Split(r[10], ",") {
					if pol != "" && !strings.Contains(all, src+" "+AttrOPCUAEndpoint+"=") || pol != "" && !strings.Contains(all, " "+pol+" tokens") {
						t.Errorf("%s: endpoint with policy %s of %s not read", name, pol, src)
					}
				}
			}
			for _, w := range want {
				if !got[w] {
					t.Errorf("%s: %s missing", name, w)
				}
				n++
			}
		}
		if n == 0 {
			t.Errorf("%s: nothing compared", name)
		}
	}
}

func opcuaStr(s string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(s)))
	return append(b, s...)
}

func opcuaMsg(typ string, body ...[]byte) []byte {
	b := []byte(typ + "F\x00\x00\x00\x00")
	for _, x := range body {
		b = append(b, x...)
	}
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)))
	return b
}

// opcuaExchange builds, from OPC 10000-6 (7.1.2 Hello, 6.7.2 OPN, 5.2
// encoding) and 10000-4 (5.4.4 GetEndpoints), a Hello, its
// Acknowledge, an OpenSecureChannel with policy None, and a GetEndpoints
// response offering one endpoint.
func opcuaExchange() (cli, srv [][]byte) {
	none := "http://opcfoundation.org/UA/SecurityPolicy#None"
	hel := opcuaMsg("HEL", make([]byte, 20), opcuaStr("opc.tcp://10.1.1.20:4840/plant"))
	ack := opcuaMsg("ACK", make([]byte, 20))
	u32 := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	null := u32(0xffffffff)
	opn := opcuaMsg("OPN", u32(0), opcuaStr(none), null, null, u32(1), u32(1),
		[]byte{0x01, 0x00, 0xbe, 0x01},                                // OpenSecureChannelRequest 446
		[]byte{0, 0}, make([]byte, 16), null, u32(0), []byte{0, 0, 0}, // request header
		u32(0), u32(0), u32(1), null, u32(600000))
	resp := opcuaMsg("MSG", u32(1), u32(1), u32(2), u32(2),
		[]byte{0x01, 0x00, 0xaf, 0x01},                       // GetEndpointsResponse 431
		make([]byte, 16), []byte{0}, u32(0), []byte{0, 0, 0}, // response header
		u32(1), opcuaStr("opc.tcp://10.1.1.20:4840/plant"),
		opcuaStr("urn:plant:opcua:server"), opcuaStr("urn:vendor:product"), []byte{2}, opcuaStr("Line 1 OPC UA Server"), u32(0), null, null, u32(0),
		null, u32(3), opcuaStr("http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256"),
		u32(2), opcuaStr("anon"), u32(0), null, null, null, opcuaStr("user"), u32(1), null, null, null,
		opcuaStr("http://opcfoundation.org/UA-Profile/Transport/uatcp-uasc-uabinary"), []byte{3})
	return [][]byte{hel, opn}, [][]byte{ack, resp}
}

// TestOPCUASegments: split, merged, retransmitted and mid-way streams.
func TestOPCUASegments(t *testing.T) {
	cli, srv := opcuaExchange()
	streamCase{
		newD: func() dissect.Dissector { return NewOPCUA() }, probe: true, cliMsgs: cli, srvMsgs: srv,
		cli: netip.MustParseAddrPort("10.1.1.10:50000"), srv: netip.MustParseAddrPort("10.1.1.20:4840"),
		must: []string{"10.1.1.20 " + AttrOPCUAEndpoint + "=opc.tcp://10.1.1.20:4840/plant SignAndEncrypt http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256 tokens anonymous,username",
			"10.1.1.20 name=Line 1 OPC UA Server", "10.1.1.20 " + AttrOPCUAProductURI + "=urn:vendor:product",
			"10.1.1.20 " + AttrOPCUAAppType + "=Server"},
	}.check(t)
	d := NewOPCUA()
	var out collect
	f := tcpFlow(netip.MustParseAddrPort("10.1.1.10:50000"), netip.MustParseAddrPort("10.1.1.20:4840"))
	d.Handle(pkt(f, flow.FromClient, 0, cli[0]), &out)
	d.Handle(pkt(f, flow.FromClient, uint32(len(cli[0])), cli[1]), &out)
	got := obsSet(out)
	for _, w := range []string{"10.1.1.20 opcua.endpoint_url=opc.tcp://10.1.1.20:4840/plant", "10.1.1.20 opcua.security_mode=None", "10.1.1.10 role=opcua-client"} {
		if !got[w] {
			t.Errorf("%s missing: %v", w, keys(got))
		}
	}
}

// TestOPCUAHeuristic: a Hello claims a flow on another port; text does not.
func TestOPCUAHeuristic(t *testing.T) {
	cli, _ := opcuaExchange()
	d := NewOPCUA()
	f := tcpFlow(netip.MustParseAddrPort("10.1.1.10:50000"), netip.MustParseAddrPort("10.1.1.20:48010"))
	if !d.Probe(pkt(f, flow.FromClient, 0, cli[0])) {
		t.Error("Hello on another port not claimed")
	}
	if d.Probe(pkt(f, flow.FromClient, 0, []byte("HELO mail.example.com\r\n"))) {
		t.Error("SMTP HELO claimed")
	}
}

// TestOPCUATruncated offers every prefix of the messages, with the size
// field claiming the prefix, so every bounded read is tried.
func TestOPCUATruncated(t *testing.T) {
	cli, srv := opcuaExchange()
	for _, s := range append(cli, srv...) {
		for n := 8; n <= len(s); n++ {
			b := append([]byte(nil), s[:n]...)
			binary.LittleEndian.PutUint32(b[4:], uint32(n))
			d := NewOPCUA()
			f := tcpFlow(netip.MustParseAddrPort("10.1.1.10:50000"), netip.MustParseAddrPort("10.1.1.20:4840"))
			for _, dir := range []flow.Dir{flow.FromClient, flow.FromServer} {
				d.Handle(pkt(f, dir, 0, b), dissect.SinkFunc(func(dissect.Observation) {}))
			}
		}
	}
}

// FuzzOPCUA feeds arbitrary segments both ways.
func FuzzOPCUA(f *testing.F) {
	cli, srv := opcuaExchange()
	for _, s := range append(cli, srv...) {
		f.Add(s, uint8(1))
	}
	f.Fuzz(func(t *testing.T, b []byte, mode uint8) {
		d := NewOPCUA()
		fl := tcpFlow(netip.MustParseAddrPort("10.1.1.10:50000"), netip.MustParseAddrPort("10.1.1.20:4840"))
		p := pkt(fl, flow.Dir(mode&1), 0, b)
		d.Probe(p)
		d.Handle(p, dissect.SinkFunc(func(o dissect.Observation) {
			if len(o.Value) > 16*maxText {
				t.Fatalf("unbounded value %d bytes", len(o.Value))
			}
		}))
	})
}

// BenchmarkOPCUAHandle measures MSG chunks on a claimed flow (a service
// the dissector does not read, as most of a session's traffic is).
func BenchmarkOPCUAHandle(b *testing.B) {
	d := NewOPCUA()
	f := tcpFlow(netip.MustParseAddrPort("10.1.1.10:50000"), netip.MustParseAddrPort("10.1.1.20:4840"))
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	u32 := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	read := opcuaMsg("MSG", u32(1), u32(1), u32(9), u32(9), []byte{0x01, 0x00, 0x77, 0x02}, make([]byte, 60)) // ReadRequest 631
	p := pkt(f, flow.FromClient, 0, read)
	b.ReportAllocs()
	for b.Loop() {
		d.Handle(p, sink)
		p.TCPSeq += uint32(len(read))
	}
}

// TestOPCUAAllocs: MSG chunks of a session allocate nothing.
func TestOPCUAAllocs(t *testing.T) {
	d := NewOPCUA()
	f := tcpFlow(netip.MustParseAddrPort("10.1.1.10:50000"), netip.MustParseAddrPort("10.1.1.20:4840"))
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	read := opcuaMsg("MSG", make([]byte, 16), []byte{0x01, 0x00, 0x77, 0x02}, make([]byte, 60))
	p := pkt(f, flow.FromClient, 0, read)
	d.Handle(p, sink)
	if n := testing.AllocsPerRun(500, func() { p.TCPSeq += uint32(len(read)); d.Handle(p, sink) }); n != 0 {
		t.Errorf("%v allocations per MSG, want 0", n)
	}
}
