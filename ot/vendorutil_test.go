package ot

import (
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
)

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
