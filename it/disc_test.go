package it

// Test helpers of the discovery dissectors (NetBIOS, browser, SSDP,
// WS-Discovery, DHCPv6, Neighbor Discovery, LLTD).

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/internal/dissecttest"
	"github.com/passivesensor/sensor/internal/testcorpus"
)

// discRun reads the capture at path with the sensor's own pipeline
// (capture.OpenFile, capture.Decoder, flow.Table) and dispatches every
// packet to a registry holding ds, as cmd/sensor does.
func discRun(t testing.TB, path string, ds ...dissect.Dissector) collect {
	t.Helper()
	var out collect
	discEach(t, path, func(p *dissect.Packet, reg *dissect.Registry) { reg.Dispatch(p, &out) }, ds...)
	return out
}

// discEach decodes every frame of path and hands it, with its flow, to fn.
func discEach(t testing.TB, path string, fn func(*dissect.Packet, *dissect.Registry), ds ...dissect.Dissector) {
	t.Helper()
	reg := dissect.NewRegistry(ds...)
	dissecttest.Packets(t, path, func(p *dissect.Packet) { fn(p, reg) })
}

// discPackets returns copies of the decoded packets of path that keep
// returns true for (their payloads copied), without flows.
func discPackets(t testing.TB, path string, keep func(*capture.Packet) bool) []capture.Packet {
	t.Helper()
	var ps []capture.Packet
	discEach(t, path, func(p *dissect.Packet, _ *dissect.Registry) {
		if keep(p.Packet) {
			c := *p.Packet
			c.Payload = append([]byte(nil), c.Payload...)
			c.TCPOptions = nil
			ps = append(ps, c)
		}
	})
	return ps
}

// discCorpusPackets is discPackets over a corpus capture, or nothing when
// the corpus is absent (fuzz seeds).
func discCorpusPackets(t testing.TB, name string, keep func(*capture.Packet) bool) []capture.Packet {
	dir := corpusDirOrEmpty()
	if dir == "" {
		return nil
	}
	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	return discPackets(t, path, keep)
}

// discUDP returns a keep function for UDP packets to or from port.
func discUDP(port uint16) func(*capture.Packet) bool {
	return func(p *capture.Packet) bool {
		return p.IPProto == capture.ProtoUDP && (p.SrcPort == port || p.DstPort == port) && len(p.Payload) > 0
	}
}

// discPcap writes Ethernet frames to a capture in a temporary directory.
func discPcap(t testing.TB, frames [][]byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "built.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	for i, fr := range frames {
		ci := gopacket.CaptureInfo{Timestamp: ts.Add(time.Duration(i) * time.Second), CaptureLength: len(fr), Length: len(fr)}
		if err := w.WritePacket(ci, fr); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// discTshark runs tshark with extra arguments (decode-as rules) and
// returns the fields asked for, one row per packet matching filter.
func discTshark(t testing.TB, path string, extra []string, filter string, fields ...string) [][]string {
	t.Helper()
	testcorpus.NeedTshark(t)
	args := append([]string{"-r", path}, extra...)
	args = append(args, "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,", "-Y", filter)
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	out, err := exec.Command("tshark", args...).Output()
	if err != nil {
		t.Fatalf("tshark %v: %v", args, err)
	}
	var rows [][]string
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if line == "" {
			continue
		}
		row := strings.Split(line, "\t")
		for len(row) < len(fields) {
			row = append(row, "")
		}
		rows = append(rows, row)
	}
	return rows
}

// discExpert returns tshark's warnings and errors on a capture: a packet
// built by hand must read cleanly.
func discExpert(t testing.TB, path string, extra ...string) string {
	t.Helper()
	testcorpus.NeedTshark(t)
	args := append([]string{"-r", path}, extra...)
	args = append(args, "-Y", "_ws.expert.severity >= warning || _ws.malformed", "-T", "fields", "-e", "frame.number", "-e", "_ws.expert.message")
	out, err := exec.Command("tshark", args...).Output()
	if err != nil {
		t.Fatalf("tshark %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

// discFind returns the values of attr observed about ip (any address when
// ip is "").
func discFind(out collect, ip, attr string) []string {
	var vs []string
	for _, o := range out {
		if o.Attr == attr && (ip == "" || o.IP.String() == ip) {
			vs = append(vs, o.Value)
		}
	}
	return vs
}

// discHas reports whether out holds attr=value about ip.
func discHas(out collect, ip, attr, value string) bool {
	for _, v := range discFind(out, ip, attr) {
		if v == value {
			return true
		}
	}
	return false
}

// discCheckObs fails on observations that break the contract: no
// device, empty or invalid values, another protocol's name.
func discCheckObs(t testing.TB, proto string, out collect) {
	t.Helper()
	for _, o := range out {
		if o.Protocol != proto || o.Attr == "" || o.Value == "" {
			t.Fatalf("bad observation %+v", o)
		}
		if !utf8.ValidString(o.Value) || len(o.Value) > 1100 {
			t.Fatalf("%s value invalid or too long: %q", o.Attr, o.Value)
		}
		if !o.IP.IsValid() && o.MAC.IsZero() {
			t.Fatalf("observation about no device: %+v", o)
		}
		if o.Attr == dissect.AttrIP && o.MAC.IsZero() {
			t.Fatalf("address binding without a MAC: %+v", o)
		}
	}
}

// discPacket wraps a payload in a packet between two addresses, as the
// fuzz targets and hand-built tests offer it.
func discPacket(src, dst string, sport, dport uint16, proto uint8, payload []byte) *dissect.Packet {
	cp := &capture.Packet{
		Time: time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC), HasEth: true,
		SrcMAC: capture.MAC{0x00, 0x15, 0x5d, 1, 2, 3}, DstMAC: capture.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		SrcIP: netip.MustParseAddr(src), DstIP: netip.MustParseAddr(dst), IPProto: proto, TTL: 255,
		SrcPort: sport, DstPort: dport, Payload: payload,
	}
	if cp.SrcIP.Is4() {
		cp.EtherType = 0x0800
	} else {
		cp.EtherType = 0x86dd
	}
	return &dissect.Packet{Packet: cp}
}

// TestDiscoverySweep runs the discovery dissectors over every corpus
// capture through the pipeline and checks each observation keeps the
// contract. It takes minutes: set IT_DISCOVERY_SWEEP=1 to run it.
func TestDiscoverySweep(t *testing.T) {
	if os.Getenv("IT_DISCOVERY_SWEEP") == "" {
		t.Skip("full-corpus sweep: set IT_DISCOVERY_SWEEP=1")
	}
	dir := testcorpus.Dir(t)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, e := range entries {
		n := e.Name()
		if !strings.HasSuffix(n, ".pcap") && !strings.HasSuffix(n, ".pcapng") {
			continue
		}
		out := discRun(t, filepath.Join(dir, n), NewNBNS(), NewBrowser(), NewSSDP(), NewDHCPv6(), NewNDP(), NewWSD(), NewLLTD())
		for _, o := range out {
			if o.Attr == dissect.AttrProtocol {
				continue
			}
			discCheckObs(t, o.Protocol, collect{o})
			counts[o.Protocol]++
		}
	}
	t.Logf("observations by protocol: %v", counts)
}
