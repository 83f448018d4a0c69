package main

import (
	"errors"
	"github.com/passivesensor/sensor/internal/testcorpus"
	"io"
	"testing"
	"time"

	"github.com/passivesensor/sensor/asset"
	"github.com/passivesensor/sensor/capture"
)

// benchFiles is a mix of corpus captures: IT and OT, TCP and UDP.
var benchFiles = []string{
	"ICS-Pcaps__DNP3__dnp3dataset_capturerem_to_cite_the_paper.pcap",
	"ICS-Pcaps__COTP__cotp.pcap",
	"ct-samples__Protocols__EthernetIP__Plant1_EthernetIP.pcap",
	"ICS-Pcaps__BOOTP__packet.pcap",
	"Malcolm-PCAP__pcaps__protocols__Tunnels.pcap",
}

// memSource replays frames held in memory, as a ring would hand them out.
type memSource struct {
	frames []capture.Frame
	i      int
}

func (m *memSource) Next() (capture.Frame, error) {
	if m.i == len(m.frames) {
		return capture.Frame{}, io.EOF
	}
	m.i++
	return m.frames[m.i-1], nil
}
func (m *memSource) Stats() capture.Stats { return capture.Stats{} }
func (m *memSource) Close() error         { return nil }

func loadFrames(b *testing.B) []capture.Frame {
	var frames []capture.Frame
	for _, name := range benchFiles {
		src, err := capture.OpenFile(testcorpus.File(b, name))
		if err != nil {
			b.Fatal(err)
		}
		for {
			fr, err := src.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			fr.Data = append([]byte(nil), fr.Data...)
			frames = append(frames, fr)
		}
		src.Close()
	}
	return frames
}

// BenchmarkPipeline runs decode, duplicate suppression, flow lookup and
// dissector dispatch over a corpus mix; one op is one frame. After a first
// pass over the mix (flows created, dissectors decided) the per-packet path
// must not allocate.
func BenchmarkPipeline(b *testing.B) {
	frames := loadFrames(b)
	s := New(asset.DefaultClasses())
	w := s.newWorker(&memSource{})
	// Warm up: one pass creates the flows and decides their dissectors.
	// Later passes are shifted in time past the duplicate window so they are
	// not taken for SPAN duplicates.
	var shift time.Duration
	pass := func() {
		for _, fr := range frames {
			fr.Time = fr.Time.Add(shift)
			w.handle(fr)
		}
	}
	pass()
	var bytes int64
	for _, fr := range frames {
		bytes += int64(len(fr.Data))
	}
	b.SetBytes(bytes / int64(len(frames)))
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for n := 0; n < b.N; n++ {
		if i == len(frames) {
			i = 0
			shift += time.Second
		}
		fr := frames[i]
		fr.Time = fr.Time.Add(shift)
		w.handle(fr)
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
}
