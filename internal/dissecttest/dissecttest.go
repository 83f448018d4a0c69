// Package dissecttest runs captures through the sensor's own pipeline for
// the tests of the dissector packages (it, ot): the capture reader, the
// decoder, a flow table and a dissector registry, as cmd/sensor wires them.
package dissecttest

import (
	"errors"
	"io"
	"testing"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
)

// Pipeline takes frames to dissectors: it decodes each, looks TCP and UDP
// packets up in its flow table and dispatches them to its registry. It
// allocates nothing per frame in steady state.
type Pipeline struct {
	dec capture.Decoder
	cp  capture.Packet
	dp  dissect.Packet
	tab *flow.Table
	reg *dissect.Registry
}

// NewPipeline returns a pipeline to the dissectors ds.
func NewPipeline(ds ...dissect.Dissector) *Pipeline {
	pl := &Pipeline{tab: flow.NewTable(flow.Config{}), reg: dissect.NewRegistry(ds...)}
	pl.dp.Packet = &pl.cp
	return pl
}

// decode decodes fr and looks its flow up; false for a frame the decoder
// could not read down to IP.
func (pl *Pipeline) decode(fr capture.Frame) bool {
	pl.cp.Reset()
	if pl.dec.Decode(fr, &pl.cp) != nil && !pl.cp.HasIP() {
		return false
	}
	pl.dp.Flow, pl.dp.Dir = pl.tab.Lookup(&pl.cp)
	return true
}

// Dispatch hands fr to the dissectors, which tell out what they observe.
func (pl *Pipeline) Dispatch(fr capture.Frame, out dissect.Sink) {
	if pl.decode(fr) {
		pl.reg.Dispatch(&pl.dp, out)
	}
}

// Frames calls fn with every whole frame of the capture at path, in order;
// one whose last record is cut short (as some public captures are) is read
// up to it. Frame data is valid until fn returns.
func Frames(t testing.TB, path string, fn func(capture.Frame)) {
	t.Helper()
	src, err := capture.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for {
		fr, err := src.Next()
		var cut *capture.RecordError
		if errors.Is(err, io.EOF) || errors.As(err, &cut) && cut.Truncated() {
			return
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		fn(fr)
	}
}

// Packets calls fn with every packet of the capture at path that the
// decoder reads down to IP (and every non-IP frame it reads), with its flow
// from a flow table as the pipeline has it. The packet is reused: fn copies
// what it keeps.
func Packets(t testing.TB, path string, fn func(*dissect.Packet)) {
	t.Helper()
	pl := NewPipeline()
	Frames(t, path, func(fr capture.Frame) {
		if pl.decode(fr) {
			fn(&pl.dp)
		}
	})
}

// Sink keeps every observation.
type Sink []dissect.Observation

func (s *Sink) Observe(o dissect.Observation) { *s = append(*s, o) }

// Run reads the capture at path through a pipeline to ds and returns what
// they observe.
func Run(t testing.TB, path string, ds ...dissect.Dissector) []dissect.Observation {
	t.Helper()
	pl := NewPipeline(ds...)
	var out Sink
	Frames(t, path, func(fr capture.Frame) { pl.Dispatch(fr, &out) })
	return out
}
