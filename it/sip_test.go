package it

import (
	"net/netip"
	"testing"

	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
)

const sipCorpus = "nDPI__tests__cfgs__default__pcap__sip.pcap"

// TestSIPCorpus compares the User-Agent and Server headers of each sender
// (sip.User-Agent, sip.Server) and the From and Contact URIs of requests
// (sip.from.user/host, sip.contact.uri) read through the pipeline with
// tshark's.
func TestSIPCorpus(t *testing.T) {
	path, out := appCorpus(t, sipCorpus, NewSIP())
	appSameSet(t, "sip.user_agent", appObserved(out, AttrSIPUserAgent), appTsharkSet(t, path, "sip", "ip.src", "sip.User-Agent", false))
	appSameSet(t, "sip.server", appObserved(out, AttrSIPServer), appTsharkSet(t, path, "sip", "ip.src", "sip.Server", false))
	from := appTsharkSet(t, path, "sip.Method", "ip.src", "sip.from.addr", false)
	for k := range from { // sip:user@host -> user@host
		delete(from, k)
		ip, v, _ := cutSIP(k)
		from[ip+" "+v] = true
	}
	appSameSet(t, "sip.from", appObserved(out, AttrSIPFrom), from)
}

// cutSIP turns "ip sip:user@host" into ip and "user@host".
func cutSIP(k string) (string, string, bool) {
	for i := 0; i < len(k); i++ {
		if k[i] == ' ' {
			v := k[i+1:]
			if len(v) > 4 && v[:4] == "sip:" {
				v = v[4:]
			}
			return k[:i], v, true
		}
	}
	return k, "", false
}

// TestSIPRegister: a phone's REGISTER (RFC 3261 section 10.2, compact
// headers of section 7.3.3) and the registrar's 200 OK.
func TestSIPRegister(t *testing.T) {
	d := NewSIP()
	f := &flow.Flow{Proto: 17, Client: netip.MustParseAddrPort("10.0.0.70:5060"), Server: netip.MustParseAddrPort("10.0.0.2:5060")}
	reg := "REGISTER sip:pbx.plant.example SIP/2.0\r\nv: SIP/2.0/UDP 10.0.0.70:5060;branch=z9hG4bK776\r\nf: \"Ext 201\" <sip:201@pbx.plant.example>;tag=1\r\nt: <sip:201@pbx.plant.example>\r\ni: a84b4c76e66710\r\nCSeq: 1 REGISTER\r\nm: <sip:201@10.0.0.70:5060;transport=udp>\r\nUser-Agent: Yealink SIP-T46S 66.86.0.15\r\nl: 0\r\n\r\n"
	ok := "SIP/2.0 200 OK\r\nv: SIP/2.0/UDP 10.0.0.70:5060;branch=z9hG4bK776\r\nCSeq: 1 REGISTER\r\nServer: Asterisk PBX 18.10.0\r\nl: 0\r\n\r\n"
	p := appTCPPkt(f, flow.FromClient, 0, []byte(reg))
	if !d.Probe(p) {
		t.Fatal("Probe refused a REGISTER")
	}
	var out collect
	d.Handle(p, &out)
	d.Handle(appTCPPkt(f, flow.FromServer, 0, []byte(ok)), &out)
	got := map[string]string{}
	for _, o := range out {
		got[o.IP.String()+" "+o.Attr] = o.Value
	}
	want := map[string]string{
		"10.0.0.70 " + AttrSIPUserAgent: "Yealink SIP-T46S 66.86.0.15", "10.0.0.70 " + AttrSIPFrom: "201@pbx.plant.example",
		"10.0.0.70 " + AttrSIPContact: "201@10.0.0.70:5060", "10.0.0.70 " + dissect.AttrRole: RoleSIPUA,
		"10.0.0.2 " + AttrSIPServer: "Asterisk PBX 18.10.0", "10.0.0.2 " + dissect.AttrRole: RoleSIPRegistrar,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func FuzzSIP(f *testing.F) {
	f.Add([]byte("\x01REGISTER sip:x SIP/2.0\r\nf: <sip:1@x>\r\nm: <sip:1@1.2.3.4>\r\nUser-Agent: y\r\n\r\n"))
	f.Add([]byte("\x03SIP/2.0 200 OK\r\nCSeq: 1 REGISTER\r\nServer: z\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) { appFuzz(t, NewSIP(), data, 5060) })
}

func BenchmarkSIPHandle(b *testing.B) {
	d := NewSIP()
	out := dissect.SinkFunc(func(dissect.Observation) {})
	f := &flow.Flow{Proto: 17, Client: netip.MustParseAddrPort("10.0.0.1:5060"), Server: netip.MustParseAddrPort("10.0.0.2:5060")}
	p := appTCPPkt(f, flow.FromClient, 0, []byte("REGISTER sip:pbx SIP/2.0\r\nFrom: <sip:201@pbx>;tag=1\r\nCSeq: 1 REGISTER\r\nContact: <sip:201@10.0.0.1>\r\nUser-Agent: Yealink SIP-T46S\r\n\r\n"))
	b.ReportAllocs()
	for b.Loop() {
		f.State = nil
		d.Handle(p, out)
	}
}
