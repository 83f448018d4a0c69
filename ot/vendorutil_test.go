package ot

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
	"github.com/passivesensor/sensor/internal/testcorpus"
)

// vndTshark is testcorpus.Tshark for captures whose last packet is cut
// short: tshark reads every whole packet, then exits with status 2.
func vndTshark(t *testing.T, file, filter string, fields ...string) [][]string {
	t.Helper()
	return vndTsharkDecode(t, file, "", filter, fields...)
}

// vndTsharkDecode is vndTshark with a "decode as" rule
// ("tcp.port==2001,optommp") for protocols Wireshark has no port for.
func vndTsharkDecode(t *testing.T, file, decode, filter string, fields ...string) [][]string {
	t.Helper()
	testcorpus.NeedTshark(t)
	args := []string{"-r", file, "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,", "-Y", filter}
	if decode != "" {
		args = append(args, "-d", decode)
	}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	var stderr bytes.Buffer
	cmd := exec.Command("tshark", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 2 && strings.Contains(stderr.String(), "cut short")) {
		t.Fatalf("tshark %v: %v\n%s", args, err, stderr.String())
	}
	var rows [][]string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		row := strings.Split(sc.Text(), "\t")
		for len(row) < len(fields) {
			row = append(row, "")
		}
		rows = append(rows, row)
	}
	return rows
}

// Test helpers of the vendor protocol dissectors.

// vndFacts indexes observations as "ip attr" -> values, in order seen.
func vndFacts(out collect) map[string][]string {
	m := map[string][]string{}
	for _, o := range out {
		k := o.IP.String() + " " + o.Attr
		m[k] = append(m[k], o.Value)
	}
	return m
}

// vndSet returns the sorted distinct values of s.
func vndSet(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return slices.Compact(s)
}

// vndUnion splits every value of vs by sep and returns the sorted
// distinct parts (for facts emitted as growing lists).
func vndUnion(vs []string, sep string) []string {
	var out []string
	for _, v := range vs {
		out = append(out, strings.Split(v, sep)...)
	}
	return vndSet(out)
}

// vndOnce fails when an observation (ip, attr, value, peer) was emitted
// more often than flows could explain: more than max times.
func vndOnce(t *testing.T, out collect, max int) {
	t.Helper()
	n := map[dissect.Observation]int{}
	for _, o := range out {
		k := dissect.Observation{IP: o.IP, Attr: o.Attr, Value: o.Value, Peer: o.Peer, Protocol: o.Protocol}
		n[k]++
	}
	for k, c := range n {
		if c > max {
			t.Errorf("%s %s=%q (peer %s) emitted %d times", k.IP, k.Attr, k.Value, k.Peer, c)
		}
	}
}

// vndUDPFlow returns a fresh UDP flow between cli and srv.
func vndUDPFlow(cli, srv netip.AddrPort) *flow.Flow {
	return &flow.Flow{Proto: capture.ProtoUDP, Client: cli, Server: srv}
}

// vndPkt returns a packet of f (TCP or UDP) in direction dir.
func vndPkt(f *flow.Flow, dir flow.Dir, seq uint32, payload []byte) *dissect.Packet {
	p := pkt(f, dir, seq, payload)
	p.IPProto = f.Proto
	return p
}

// vndFuzz offers b, cut in two, to d's Probe and Handle on f in both
// directions, and checks the values emitted are bounded.
func vndFuzz(t *testing.T, d dissect.Dissector, f *flow.Flow, b []byte, dir flow.Dir, cut int) {
	sink := dissect.SinkFunc(func(o dissect.Observation) {
		if len(o.Value) > 4*maxText+64 {
			t.Fatalf("unbounded value %q", o.Value)
		}
		if !strings.Contains(o.Attr, ".") && o.Attr != dissect.AttrProtocol && o.Value == "" {
			t.Fatalf("empty value for %s", o.Attr)
		}
	})
	c := min(cut, len(b))
	for _, dr := range []flow.Dir{dir & 1, dir&1 ^ 1} {
		p := vndPkt(f, dr, 0, b[:c])
		d.Probe(p)
		d.Handle(p, sink)
		p = vndPkt(f, dr, uint32(c), b[c:])
		d.Probe(p)
		d.Handle(p, sink)
	}
}

// vndRunFile is runFile for captures whose last record is cut short (as
// some public ones are): it reads every whole record, then stops.
func vndRunFile(t testing.TB, path string, ds ...dissect.Dissector) collect {
	t.Helper()
	src, err := capture.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var (
		dec capture.Decoder
		cp  capture.Packet
		out collect
	)
	tab := flow.NewTable(flow.Config{})
	reg := dissect.NewRegistry(ds...)
	for {
		fr, err := src.Next()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if dec.Decode(fr, &cp) != nil && !cp.HasIP() {
			continue
		}
		f, dir := tab.Lookup(&cp)
		reg.Dispatch(&dissect.Packet{Packet: &cp, Flow: f, Dir: dir}, &out)
	}
	return out
}

// BenchmarkVendorCorpus runs each vendor protocol's corpus capture,
// held in memory, through the pipeline's decoder, a flow table and a
// registry of the one dissector, again and again (flows and dissector
// state persist: the steady state of a long capture), and reports the
// cost per packet.
func BenchmarkVendorCorpus(b *testing.B) {
	for _, c := range []struct {
		name string
		file string
		d    dissect.Dissector
	}{
		{"fins", "Malcolm-Test-Artifacts__pcap__protocols__OmronFINS.pcap", NewFINS()},
		{"ads", "nDPI__tests__cfgs__default__pcap__beckhoff_ads.pcapng", NewADS()},
		{"melsoft", "ICS-Security-Tools__pcaps__MELSEC__melsoft_129_clean.pcap", NewMELSOFT()},
		{"fox", "ICS-Security-Tools__pcaps__fox__fox_info.pcap", NewFox()},
		{"ethercat", "ct-samples__Protocols__EtherCAT__EtherCAT.pcap", NewEtherCAT()},
		{"cclink-iefb", "zeek-parser-CCLinkFieldBasic__testing__Traces__cclink_ief_basic_only.pcap", NewCCIEFB()},
	} {
		b.Run(c.name, func(b *testing.B) {
			frames := vndLoadFrames(b, testcorpus.File(b, c.file))
			var (
				dec capture.Decoder
				cp  capture.Packet
			)
			sink := dissect.SinkFunc(func(dissect.Observation) {})
			tab := flow.NewTable(flow.Config{})
			reg := dissect.NewRegistry(c.d)
			dp := dissect.Packet{Packet: &cp}
			b.ReportAllocs()
			for b.Loop() {
				for _, fr := range frames {
					if dec.Decode(fr, &cp) != nil && !cp.HasIP() {
						continue
					}
					dp.Flow, dp.Dir = tab.Lookup(&cp)
					reg.Dispatch(&dp, sink)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(frames)), "ns/packet")
		})
	}
}

// vndLoadFrames reads every whole frame of path into memory.
func vndLoadFrames(b *testing.B, path string) []capture.Frame {
	src, err := capture.OpenFile(path)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	var out []capture.Frame
	for {
		fr, err := src.Next()
		if err != nil {
			return out
		}
		fr.Data = slices.Clone(fr.Data)
		out = append(out, fr)
	}
}

// vndCorpusPayloads returns up to max distinct non-empty payloads (L4
// payloads, or the bytes after the EtherType of non-IP frames) of the
// corpus capture name, to seed fuzz targets; none when the corpus is not
// beside the repository (the fuzz target still runs on its other seeds).
func vndCorpusPayloads(name string, max int) [][]byte {
	dir, err := os.Getwd()
	if err != nil {
		return nil
	}
	var path string
	for d := dir; ; {
		p := filepath.Join(d, "shared", "corpus", name)
		if _, err := os.Stat(p); err == nil {
			path = p
			break
		}
		up := filepath.Dir(d)
		if up == d {
			return nil
		}
		d = up
	}
	src, err := capture.OpenFile(path)
	if err != nil {
		return nil
	}
	defer src.Close()
	var (
		dec  capture.Decoder
		cp   capture.Packet
		out  [][]byte
		seen = map[string]bool{}
	)
	for len(out) < max {
		fr, err := src.Next()
		if err != nil {
			break
		}
		if dec.Decode(fr, &cp) != nil && !cp.HasIP() {
			continue
		}
		if len(cp.Payload) == 0 || seen[string(cp.Payload)] {
			continue
		}
		seen[string(cp.Payload)] = true
		out = append(out, slices.Clone(cp.Payload))
	}
	return out
}
