package ot

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
	"github.com/passivesensor/sensor/internal/testcorpus"
)

// TestFoxCorpus reads ITI's fox_info capture (a Workbench's hello and a
// QNX JACE station's answer). Wireshark 4.0 has no Fox dissector: tshark
// gives each side's payload, and the test reads the "key=s:value" lines
// of each hello itself; the sensor must report the same host name,
// station name, application, VM, OS, host id and brand for each side.
func TestFoxCorpus(t *testing.T) {
	path := testcorpus.File(t, "ICS-Security-Tools__pcaps__fox__fox_info.pcap")
	fields := map[string]map[string]string{}
	payload := map[string][]byte{}
	for _, r := range testcorpus.Tshark(t, path, "tcp.len > 0", "ip.src", "tcp.payload") {
		b, _ := hex.DecodeString(r[1])
		payload[r[0]] = append(payload[r[0]], b...)
	}
	for ip, b := range payload {
		msg, _, _ := bytes.Cut(b, []byte("};;"))
		fields[ip] = map[string]string{}
		for _, l := range strings.Split(string(msg), "\n") {
			if k, v, ok := strings.Cut(l, "=s:"); ok {
				fields[ip][k] = v
			}
		}
	}
	if len(fields) != 2 {
		t.Fatalf("want 2 sides of a hello, got %d", len(fields))
	}
	out := runFile(t, path, NewFox())
	got := vndFacts(out)
	for ip, f := range fields {
		want := map[string]string{
			AttrFoxVersion:       f["fox.version"],
			AttrFoxApp:           f["app.name"] + " " + f["app.version"],
			AttrFoxVM:            f["vm.name"] + " " + f["vm.version"],
			dissect.AttrOS:       f["os.name"] + " " + f["os.version"],
			AttrFoxHostID:        f["hostId"],
			AttrFoxBrand:         f["brandId"],
			dissect.AttrName:     f["station.name"],
			dissect.AttrHostname: f["hostName"],
		}
		if _, err := netip.ParseAddr(f["hostName"]); err == nil {
			want[dissect.AttrHostname] = "" // an address is not a name
		}
		for attr, w := range want {
			g := got[ip+" "+attr]
			if w == "" && len(g) == 0 {
				continue
			}
			if !slices.Equal(g, []string{w}) {
				t.Errorf("%s %s: got %q, hello says %q", ip, attr, g, w)
			}
		}
	}
	station, wb := "106.68.88.119", "10.1.3.4"
	for k, w := range map[string][]string{
		station + " firmware": {"Niagara 3.5.41.1"},
		station + " name":     {"Legion_HQ_V4"},
		station + " role":     {RoleFoxServer, RoleNiagaraStation},
		wb + " role":          {RoleFoxClient, RoleNiagaraWorkbench},
		wb + " hostname":      {"xpvm-0omdc01xmy"},
	} {
		if g := vndSet(got[k]); !slices.Equal(g, vndSet(w)) {
			t.Errorf("%s: got %q, want %q", k, g, w)
		}
	}
	vndOnce(t, out, 1)
}

// foxHelloMsg builds a hello as the nmap fox-info script documents it.
func foxHelloMsg(n int, kv ...string) []byte {
	var b bytes.Buffer
	b.WriteString("fox a " + string(rune('0'+n)) + " -1 fox hello\n{\n")
	for i := 0; i+1 < len(kv); i += 2 {
		b.WriteString(kv[i] + "=s:" + kv[i+1] + "\n")
	}
	b.WriteString("id=i:1\n};;\n")
	return b.Bytes()
}

var (
	foxCli = netip.MustParseAddrPort("10.5.0.5:50300")
	foxSrv = netip.MustParseAddrPort("10.5.0.40:1911")
)

// TestFoxSplitHello: a hello split over segments is read; a gap gives up
// on that side without reading garbage.
func TestFoxSplitHello(t *testing.T) {
	d := NewFox()
	f := tcpFlow(foxCli, foxSrv)
	h := foxHelloMsg(0, "hostName", "jace-ahu1", "app.name", "Station", "app.version", "4.10.1.36", "station.name", "AHU_Plant",
		"os.name", "QNX", "os.version", "6.5.0")
	if !d.Probe(vndPkt(f, flow.FromServer, 0, h[:10])) {
		t.Fatal("Probe rejected a hello start")
	}
	var out collect
	for i := 0; i < len(h); i += 7 {
		d.Handle(vndPkt(f, flow.FromServer, uint32(i), h[i:min(i+7, len(h))]), &out)
	}
	got := vndFacts(out)
	for k, w := range map[string]string{"hostname": "jace-ahu1", "name": "AHU_Plant", "firmware": "Niagara 4.10.1.36", "os": "QNX 6.5.0"} {
		if g := got["10.5.0.40 "+k]; !slices.Equal(g, []string{w}) {
			t.Errorf("%s: got %q, want %q", k, g, w)
		}
	}
	// Gap on the client side: nothing read from it.
	out = nil
	c := foxHelloMsg(1, "hostName", "wb-pc", "app.name", "Workbench")
	d.Handle(vndPkt(f, flow.FromClient, 0, c[:12]), &out)
	d.Handle(vndPkt(f, flow.FromClient, 40, c[40:]), &out)
	for _, o := range out {
		if o.Attr != dissect.AttrRole {
			t.Errorf("read after a gap: %+v", o)
		}
	}
}

// TestFoxNotFox: other text on 1911 is not Fox.
func TestFoxNotFox(t *testing.T) {
	d := NewFox()
	for _, b := range []string{"GET / HTTP/1.1\r\n\r\n", "fox ", "fox b 1", "\x16\x03\x01\x00\x10"} {
		if d.Probe(vndPkt(tcpFlow(foxCli, foxSrv), flow.FromClient, 0, []byte(b))) {
			t.Errorf("Probe(%q) = true", b)
		}
	}
}

func foxSeeds() [][]byte {
	return [][]byte{
		foxHelloMsg(1, "hostName", "wb", "app.name", "Workbench", "app.version", "3.7.44"),
		foxHelloMsg(0, "hostName", "jace", "app.name", "Station", "station.name", "S", "vm.name", "J9"),
		[]byte("fox a 1 -1 fox challenge\n{\nmethod=s:digest-md5\n};;\n"),
	}
}

// TestFoxTruncated offers every prefix of every seed.
func TestFoxTruncated(t *testing.T) {
	for _, s := range foxSeeds() {
		for n := 0; n <= len(s); n++ {
			vndFuzz(t, NewFox(), tcpFlow(foxCli, foxSrv), s[:n], flow.FromServer, n/2)
		}
	}
}

// TestFoxAllocs: after the hellos, packets cost nothing.
func TestFoxAllocs(t *testing.T) {
	d := NewFox()
	f := tcpFlow(foxCli, foxSrv)
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	d.Handle(vndPkt(f, flow.FromClient, 0, foxSeeds()[0]), sink)
	d.Handle(vndPkt(f, flow.FromServer, 0, foxSeeds()[1]), sink)
	p := vndPkt(f, flow.FromServer, 1000, []byte("fox a 0 -1 fox message\n{\n};;\n"))
	if n := testing.AllocsPerRun(1000, func() { d.Handle(p, sink) }); n != 0 {
		t.Errorf("%v allocations per packet after the hellos", n)
	}
}

// FuzzFox feeds arbitrary segments.
func FuzzFox(f *testing.F) {
	for _, s := range vndCorpusPayloads("ICS-Security-Tools__pcaps__fox__fox_info.pcap", 64) {
		f.Add(s, uint8(0), uint8(20))
	}
	for _, s := range foxSeeds() {
		f.Add(s, uint8(0), uint8(20))
	}
	f.Fuzz(func(t *testing.T, b []byte, mode, cut uint8) {
		vndFuzz(t, NewFox(), tcpFlow(foxCli, foxSrv), b, flow.Dir(mode&1), int(cut))
	})
}

// BenchmarkFoxHello measures reading a station's hello (one segment).
func BenchmarkFoxHello(b *testing.B) {
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	h := foxHelloMsg(0, "hostName", "jace", "app.name", "Station", "app.version", "4.10", "station.name", "S")
	b.ReportAllocs()
	for b.Loop() {
		d := NewFox()
		d.Handle(vndPkt(tcpFlow(foxCli, foxSrv), flow.FromServer, 0, h), sink)
	}
}
