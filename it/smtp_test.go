package it

import (
	"net/netip"
	"testing"

	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
)

const smtpCorpus = "zeek__testing__btest__Traces__smtp__rfc3030-bdat-multipart-chunked.pcap"

// TestSMTPCorpus compares the server's greeting (smtp.rsp.parameter of
// code 220) and the client's EHLO/HELO argument (smtp.req.parameter) read
// through the pipeline with tshark's.
func TestSMTPCorpus(t *testing.T) {
	path, out := appCorpus(t, smtpCorpus, NewSMTP())
	appSameSet(t, "smtp.banner", appObserved(out, AttrSMTPBanner),
		appTsharkSet(t, path, "smtp.response.code == 220", "ip.src", "smtp.rsp.parameter", false))
	appSameSet(t, "smtp.helo", appObserved(out, AttrSMTPHelo),
		appTsharkSet(t, path, `smtp.req.command == "EHLO" || smtp.req.command == "HELO"`, "ip.src", "smtp.req.parameter", false))
}

// TestSMTPNotSMTP: a port nominates, the payload decides.
func TestSMTPNotSMTP(t *testing.T) {
	d := NewSMTP()
	f := &flow.Flow{Proto: 6, Client: netip.MustParseAddrPort("10.0.0.1:1234"), Server: netip.MustParseAddrPort("10.0.0.2:25")}
	for _, c := range []struct {
		dir flow.Dir
		s   string
	}{{flow.FromServer, "2200 ok\r\n"}, {flow.FromClient, "EHLO\r\n"}, {flow.FromClient, "220 x\r\n"}, {flow.FromServer, "220 no line end"}} {
		if d.Probe(appTCPPkt(f, c.dir, 1, []byte(c.s))) {
			t.Errorf("Probe(%q) = true", c.s)
		}
	}
}

func FuzzSMTP(f *testing.F) {
	f.Add([]byte("\x02220 mail.example.com ESMTP Postfix\r\n"))
	f.Add([]byte("\x00EHLO client.example.com\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) { appFuzz(t, NewSMTP(), data, 25) })
}

func BenchmarkSMTPHandle(b *testing.B) {
	d := NewSMTP()
	out := dissect.SinkFunc(func(dissect.Observation) {})
	f := &flow.Flow{Proto: 6, Client: netip.MustParseAddrPort("10.0.0.1:1234"), Server: netip.MustParseAddrPort("10.0.0.2:25")}
	p := appTCPPkt(f, flow.FromServer, 1, []byte("220 mail.example.com ESMTP Postfix (Debian/GNU)\r\n"))
	b.ReportAllocs()
	for b.Loop() {
		f.State = nil
		d.Handle(p, out)
	}
}
