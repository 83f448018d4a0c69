package ot

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
	"github.com/passivesensor/sensor/internal/dissecttest"
	"github.com/passivesensor/sensor/internal/testcorpus"
)

// vndTshark is testcorpus.Tshark, which reads captures cut short too.
func vndTshark(t *testing.T, file, filter string, fields ...string) [][]string {
	t.Helper()
	return testcorpus.Tshark(t, file, filter, fields...)
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
// directions, and checks the values emitted are bounded and not empty.
func vndFuzz(t *testing.T, d dissect.Dissector, f *flow.Flow, b []byte, dir flow.Dir, cut int) {
	within := valuesWithin(t, 4*maxText+64)
	fuzzSegments(t, d, f, b, dir, cut, func(o dissect.Observation) {
		within(o)
		if !strings.Contains(o.Attr, ".") && o.Attr != dissect.AttrProtocol && o.Value == "" {
			t.Fatalf("empty value for %s", o.Attr)
		}
	})
}

// vndRunFile is runFile, which reads captures cut short too.
var vndRunFile = runFile

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
			sink := dissect.SinkFunc(func(dissect.Observation) {})
			pl := dissecttest.NewPipeline(c.d)
			b.ReportAllocs()
			for b.Loop() {
				for _, fr := range frames {
					pl.Dispatch(fr, sink)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(frames)), "ns/packet")
		})
	}
}

// vndLoadFrames reads every whole frame of path into memory.
func vndLoadFrames(b *testing.B, path string) []capture.Frame {
	var out []capture.Frame
	dissecttest.Frames(b, path, func(fr capture.Frame) {
		fr.Data = slices.Clone(fr.Data)
		out = append(out, fr)
	})
	return out
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
