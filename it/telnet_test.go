package it

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
	"github.com/passivesensor/sensor/internal/testcorpus"
)

const telnetCorpus = "Malcolm-PCAP__pcaps__protocols__Telnet.pcap"

// TestTelnetCorpus compares the banner of each Telnet server read through
// the pipeline with the printable text of tshark's telnet.data from the
// server, up to the login prompt.
func TestTelnetCorpus(t *testing.T) {
	path, out := appCorpus(t, telnetCorpus, NewTelnet())
	text := map[string]string{}
	var order []string
	for _, r := range testcorpus.Tshark(t, path, "telnet.data && tcp.srcport == 23", "tcp.stream", "ip.src", "telnet.data") {
		k := r[0] + " " + r[1]
		if _, ok := text[k]; !ok {
			order = append(order, k)
		}
		text[k] += r[2]
	}
	// tshark escapes CR and LF and joins a packet's pieces with ",":
	// commas are dropped on both sides.
	unescape := strings.NewReplacer(`\r`, " ", `\n`, " ", `\t`, " ", ",", "")
	want := map[string]bool{}
	for _, k := range order {
		s := unescape.Replace(text[k])
		if i := strings.Index(s, ":"); i >= 0 {
			s = s[:i+1]
		}
		if strings.ContainsFunc(s, func(r rune) bool { return r > 0x7e || r < 0x20 || r == '\ufffd' }) {
			continue // not text: the dissector does not take such a flow
		}
		_, ip, _ := strings.Cut(k, " ")
		want[ip+" "+strings.Join(strings.Fields(s), " ")] = true
	}
	got := map[string]bool{}
	for k := range appObserved(out, AttrTelnetBanner) {
		got[strings.ReplaceAll(k, ",", "")] = true
	}
	appSameSet(t, "telnet.banner", got, want)
}

// TestTelnetNegotiation: option negotiation (RFC 855) is taken out of the
// banner, subnegotiation included.
func TestTelnetNegotiation(t *testing.T) {
	d := NewTelnet()
	f := &flow.Flow{Proto: 6, Client: netip.MustParseAddrPort("10.0.0.1:1234"), Server: netip.MustParseAddrPort("10.0.0.2:23")}
	var out collect
	neg := []byte{255, 253, 24, 255, 251, 1, 255, 250, 24, 1, 'x', 't', 255, 240}
	p := appTCPPkt(f, flow.FromServer, 1, neg)
	if !d.Probe(p) {
		t.Fatal("Probe refused IAC DO")
	}
	d.Handle(p, &out)
	d.Handle(appTCPPkt(f, flow.FromServer, 15, []byte("\r\nMOXA NPort 5110\r\n\r\nlogin: ")), &out)
	if len(out) != 2 || out[0].Value != "MOXA NPort 5110 login:" {
		t.Errorf("got %v", out)
	}
}

func FuzzTelnet(f *testing.F) {
	f.Add([]byte{2, 255, 253, 24, 255, 250, 24, 1, 255, 240, 'h', 'i', ':'})
	f.Add([]byte("\x02\r\nUser Access Verification\r\n\r\nUsername: "))
	f.Fuzz(func(t *testing.T, data []byte) { appFuzz(t, NewTelnet(), data, 23) })
}

func BenchmarkTelnetHandle(b *testing.B) {
	d := NewTelnet()
	out := dissect.SinkFunc(func(dissect.Observation) {})
	f := &flow.Flow{Proto: 6, Client: netip.MustParseAddrPort("10.0.0.1:1234"), Server: netip.MustParseAddrPort("10.0.0.2:23")}
	p := appTCPPkt(f, flow.FromServer, 1, []byte("\xff\xfb\x01\xff\xfb\x03\r\nUser Access Verification\r\n\r\nUsername: "))
	b.ReportAllocs()
	for b.Loop() {
		f.State = nil
		d.Handle(p, out)
	}
}
