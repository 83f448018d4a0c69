package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/passivesensor/sensor/asset"
	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/it"
)

type stacksSink []dissect.Observation

func (s *stacksSink) Observe(o dissect.Observation) { *s = append(*s, o) }

// The plant's devices open and answer connections with their own stacks:
// the sensor's fingerprinter reads each as the OS it depicts.
func TestStacksFingerprint(t *testing.T) {
	data, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "plant.pcap")
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := capture.OpenFile(f)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	fp := it.NewTCPFP()
	var out stacksSink
	var dec capture.Decoder
	var pkt capture.Packet
	for {
		fr, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if dec.Decode(fr, &pkt) == nil && pkt.IPProto == capture.ProtoTCP {
			fp.Handle(&dissect.Packet{Packet: &pkt}, &out)
		}
	}
	got := map[string]string{}
	for _, o := range out {
		label := "?"
		if m, ok := asset.MatchTCP(o.Value, o.Attr == it.AttrTCPSynAck); ok {
			label = m.Label()
		}
		got[o.Attr+" "+o.IP.String()] = label + " " + o.Value
	}
	want := map[string]string{
		it.AttrTCPSyn + " " + hmi.IP.String():     "Windows NT kernel 4:128+0:0:1460:mss*44,8:mss,nop,ws,nop,nop,sok:df,id+:0",
		it.AttrTCPSyn + " " + office1.IP.String(): "Windows NT kernel 4:127+1:0:1460:mss*44,8:mss,nop,ws,nop,nop,sok:df,id+:0",
		it.AttrTCPSynAck + " " + cloud.String():   "Linux 3.x 4:64+0:0:1460:mss*10,7:mss,sok,ts,nop,ws:df:0",
		it.AttrTCPSynAck + " " + plc1.IP.String(): "Windows 7 or 8 4:64+0:0:1460:8192,0:mss::0", // p0f's fuzzy guess; the inventory overrides it
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: got %q, want %q", k, got[k], w)
		}
	}
	if !bytes.Contains(data, []byte{0x02, 0x04, 0x05, 0xb4}) {
		t.Error("no MSS option in the capture")
	}
}
