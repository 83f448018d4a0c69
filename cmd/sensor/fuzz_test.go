package main

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/passivesensor/sensor/asset"
	"github.com/passivesensor/sensor/capture"
)

// FuzzPipeline feeds arbitrary frames of every link type through the whole
// per-packet path: decode, flows, every dissector, the inventory. Nothing
// may panic, whatever the bytes.
func FuzzPipeline(f *testing.F) {
	src, err := openDemo()
	if err != nil {
		f.Fatal(err)
	}
	for {
		fr, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			f.Fatal(err)
		}
		f.Add(append([]byte(nil), fr.Data...), uint16(capture.LinkEthernet))
	}
	src.Close()
	s := New(asset.DefaultClasses())
	w := s.newWorker(&memSource{})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	n := 0
	f.Fuzz(func(t *testing.T, data []byte, link uint16) {
		n++
		w.handle(capture.Frame{Data: data, WireLen: len(data), LinkType: capture.LinkType(link), Time: t0.Add(time.Duration(n) * time.Second)})
	})
}
