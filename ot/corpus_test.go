package ot

import (
	"errors"
	"io"
	"testing"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
)

// collect is a Sink keeping every observation.
type collect []dissect.Observation

func (c *collect) Observe(o dissect.Observation) { *c = append(*c, o) }

// runFile reads a capture with the sensor's own pipeline (capture.OpenFile,
// capture.Decoder, flow.Table) and dispatches every packet to a registry
// holding ds, as cmd/sensor does.
func runFile(t testing.TB, path string, ds ...dissect.Dissector) collect {
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
		if errors.Is(err, io.EOF) {
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
