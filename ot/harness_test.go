package ot

import (
	"net/netip"
	"strconv"
	"testing"

	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
	"github.com/passivesensor/sensor/internal/dissecttest"
)

// The test runners the dissectors' tests share: the sensor's pipeline over
// a capture file, a TCP conversation fed to a dissector in pieces, and the
// steady state of a claimed flow.

// collect is a Sink keeping every observation.
type collect = dissecttest.Sink

// runFile reads a capture with the sensor's own pipeline (capture.OpenFile,
// capture.Decoder, flow.Table) and dispatches every packet to a registry
// holding ds, as cmd/sensor does. A capture whose last record is cut short
// (as some public ones are) is read up to it.
func runFile(t testing.TB, path string, ds ...dissect.Dissector) collect {
	t.Helper()
	return dissecttest.Run(t, path, ds...)
}

// facts indexes observations as "IP attr=value" and as "attr=value".
func facts(out collect) map[string]bool {
	m := map[string]bool{}
	for _, o := range out {
		m[o.Attr+"="+o.Value] = true
		m[o.IP.String()+" "+o.Attr+"="+o.Value] = true
	}
	return m
}

// handleSegs hands segs, with sequence numbers seqs, to d's Handle on flow
// f (no Probe: the flow is taken as claimed) and returns the facts
// observed.
func handleSegs(d dissect.Dissector, f *flow.Flow, segs []seg, seqs []uint32) map[string]bool {
	var out collect
	for i, s := range segs {
		dir := flow.FromClient
		if s.FromServer {
			dir = flow.FromServer
		}
		d.Handle(pkt(f, dir, seqs[i], s.Payload), &out)
	}
	return facts(out)
}

// streamCase is a TCP conversation that check feeds to fresh dissectors
// cut and sent in the ways captures show it: every way must give the facts
// of the plain exchange (one message per segment).
type streamCase struct {
	newD     func() dissect.Dissector
	cli, srv netip.AddrPort
	// The messages each side sends, in turn, the client first.
	cliMsgs, srvMsgs [][]byte
	// probe offers each packet to Probe until the flow has a state, as
	// the registry does before a dissector claims the flow.
	probe bool
	// must are facts the plain exchange gives: "attr=value", or
	// "IP attr=value" for one about IP.
	must []string
	// A capture that starts at byte cliFrom of the client's stream and
	// srvFrom of the server's (both 0: half-way into the first client
	// message) still gives midway (nil: must), and none of notMidway (what
	// messages not captured whole say).
	cliFrom, srvFrom  int
	midway, notMidway []string
	// resync: the protocol's messages can be found in a stream joined
	// mid-way (a start octet, a header checked), so the first whole
	// message after a partial one in the same segment is read too.
	resync bool
}

// check runs the conversation plain, cut in pieces of 1, 3, 7 and 20 bytes,
// with every segment sent twice, cut in 3-byte pieces each sent twice, as
// one segment per direction (the client's messages all before the
// server's), and joined mid-way (message by message, and in one segment
// per direction).
func (c streamCase) check(t *testing.T) {
	t.Helper()
	type segment struct {
		dir flow.Dir
		off int
		b   []byte
	}
	var plain []segment
	var streams [2][]byte
	for i := range max(len(c.cliMsgs), len(c.srvMsgs)) {
		for d, msgs := range [2][][]byte{c.cliMsgs, c.srvMsgs} {
			if i < len(msgs) {
				plain = append(plain, segment{flow.Dir(d), len(streams[d]), msgs[i]})
				streams[d] = append(streams[d], msgs[i]...)
			}
		}
	}
	run := func(segs []segment) map[string]bool {
		d := c.newD()
		f := tcpFlow(c.cli, c.srv)
		var out collect
		for _, s := range segs {
			p := pkt(f, s.dir, uint32(1000+s.off), s.b)
			if c.probe && f.State == nil {
				d.Probe(p)
			}
			d.Handle(p, &out)
		}
		return facts(out)
	}
	lacks := func(name string, got map[string]bool, want []string) {
		t.Helper()
		for _, w := range want {
			if !got[w] {
				t.Errorf("%s: %q not observed; have %v", name, w, keys(got))
			}
		}
	}
	pieces := func(n, times int) []segment {
		var segs []segment
		for _, s := range plain {
			for o := 0; o < len(s.b); o += n {
				for range times {
					segs = append(segs, segment{s.dir, s.off + o, s.b[o:min(o+n, len(s.b))]})
				}
			}
		}
		return segs
	}
	want := run(plain)
	lacks("plain exchange", want, c.must)
	same := func(name string, segs []segment) {
		t.Helper()
		if got := run(segs); !mapsEqual(got, want) {
			t.Errorf("%s: got %v, want %v", name, keys(got), keys(want))
		}
	}
	for _, n := range []int{1, 3, 7, 20} {
		same("split in "+strconv.Itoa(n)+"-byte segments", pieces(n, 1))
	}
	same("retransmitted", pieces(1<<30, 2))
	same("split in 3-byte segments, each sent twice", pieces(3, 2))
	same("one segment per direction", []segment{{flow.FromClient, 0, streams[0]}, {flow.FromServer, 0, streams[1]}})

	from := [2]int{c.cliFrom, c.srvFrom}
	if from == [2]int{} && len(c.cliMsgs) > 0 {
		from[0] = len(c.cliMsgs[0]) / 2
	}
	var mid []segment
	for _, s := range plain {
		f := from[s.dir]
		switch {
		case s.off+len(s.b) <= f:
		case s.off < f:
			mid = append(mid, segment{s.dir, f, s.b[f-s.off:]})
		default:
			mid = append(mid, s)
		}
	}
	midway := c.midway
	if midway == nil {
		midway = c.must
	}
	// Mid-way, message by message; for a protocol whose messages can be
	// found in a stream, in one segment per direction too, so that the
	// reader must find the next message within the segment.
	type way struct {
		name string
		segs []segment
	}
	ways := []way{{"mid-way start", mid}}
	if c.resync {
		ways = append(ways, way{"mid-way start, one segment per direction", []segment{
			{flow.FromClient, from[0], streams[0][min(from[0], len(streams[0])):]},
			{flow.FromServer, from[1], streams[1][min(from[1], len(streams[1])):]},
		}})
	}
	for _, m := range ways {
		got := run(m.segs)
		lacks(m.name, got, midway)
		for _, w := range c.notMidway {
			if got[w] {
				t.Errorf("%s: %q observed from a message not captured whole", m.name, w)
			}
		}
	}
}

// exchange returns a step that hands d each packet in turn and moves its
// sequence number on past its payload: the same messages again and again
// on a claimed flow, the steady state.
func exchange(d dissect.Dissector, pkts ...*dissect.Packet) func() {
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	return func() {
		for _, p := range pkts {
			d.Handle(p, sink)
			p.TCPSeq += uint32(len(p.Payload))
		}
	}
}

// noAllocs fails t when a step of a claimed flow allocates once the flow
// is set up.
func noAllocs(t *testing.T, step func()) {
	t.Helper()
	step()
	if n := testing.AllocsPerRun(1000, step); n != 0 {
		t.Errorf("Handle: %v allocations per step, want 0", n)
	}
}

// benchSteps runs step as the benchmark's operation, counting allocations.
func benchSteps(b *testing.B, step func()) {
	b.ReportAllocs()
	for b.Loop() {
		step()
	}
}

// fuzzSegments offers b, cut in two at cut, to d on flow fl (TCP or UDP)
// in both directions, first first: Probe and Handle on each piece, as a
// flow starting with b would give them. check sees every observation.
func fuzzSegments(t *testing.T, d dissect.Dissector, fl *flow.Flow, b []byte, first flow.Dir, cut int, check func(dissect.Observation)) {
	sink := dissect.SinkFunc(check)
	c := min(cut, len(b))
	for _, dir := range []flow.Dir{first & 1, first&1 ^ 1} {
		for _, p := range []*dissect.Packet{vndPkt(fl, dir, 0, b[:c]), vndPkt(fl, dir, uint32(c), b[c:])} {
			d.Probe(p)
			d.Handle(p, sink)
		}
	}
}

// valuesWithin is a fuzzSegments check failing t on a value longer than n.
func valuesWithin(t *testing.T, n int) func(dissect.Observation) {
	return func(o dissect.Observation) {
		if len(o.Value) > n {
			t.Fatalf("unbounded value %q", o.Value)
		}
	}
}

// conversation writes segs between cli and srv to a pcap file (see
// dissecttest.WriteConversation) and returns its path.
func conversation(t *testing.T, udp bool, cli, srv netip.AddrPort, segs []seg) string {
	t.Helper()
	ds := make([]dissecttest.Seg, len(segs))
	for i, s := range segs {
		ds[i] = dissecttest.Seg(s)
	}
	return dissecttest.WriteConversation(t, udp, cli, srv, ds)
}
