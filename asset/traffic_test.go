package asset

import (
	"net/netip"
	"testing"
	"time"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/flow"
)

func TestTrafficDeltas(t *testing.T) {
	inv := NewInventory(testClasses())
	tr := NewTraffic(inv)
	a := mkflow("10.0.0.5", mac(5), "10.0.0.6", 502, mac(6), 0)
	b := mkflow("10.0.0.5", mac(5), "10.0.0.6", 502, mac(6), 0) // same key, other client port
	b.Client = netip.AddrPortFrom(ip("10.0.0.5"), 40001)
	ext := mkflow("10.0.0.5", mac(5), "198.51.100.9", 443, mac(1), 0)
	exc := mkflow("10.0.0.250", mac(0x25), "10.0.0.6", 502, mac(6), 0)
	exm := mkflow("10.0.0.7", mac(0xee), "10.0.0.6", 502, mac(6), 0)
	for _, f := range []*flow.Flow{a, b, ext, exc, exm} {
		inv.AddFlow(f)
		tr.AddFlow(f)
	}
	recs := tr.Flush()
	if len(recs) != 3 {
		t.Fatalf("%d records in interval 1, want 3: %+v", len(recs), recs)
	}
	// Sorted: the excluded (zero) source first.
	r := recs[0]
	if r.Src.IsValid() || r.SrcAsset != IDExcluded || r.Dst != ip("10.0.0.6") || r.DstAsset != "mac:00:1b:1b:00:00:06" ||
		r.PacketsOut != 6 || r.PacketsIn != 4 || r.BytesOut != 600 || r.BytesIn != 400 {
		t.Errorf("excluded record %+v: want both excluded clients aggregated under a zero address", r)
	}
	r = recs[1]
	if r.Src != ip("10.0.0.5") || r.Dst != ip("10.0.0.6") || r.DPort != 502 || r.Proto != capture.ProtoTCP ||
		r.SrcAsset != "mac:00:1b:1b:00:00:05" || r.PacketsOut != 6 || r.PacketsIn != 4 || r.BytesOut != 600 || r.BytesIn != 400 {
		t.Errorf("internal record %+v", r)
	}
	r = recs[2]
	if r.Dst != ip("198.51.100.9") || r.DstAsset != IDExternal || r.DPort != 443 {
		t.Errorf("external record %+v", r)
	}

	// Interval 2: only a grew; the others report nothing.
	a.Packets[0] += 10
	a.Bytes[0] += 1000
	a.Packets[1] += 1
	a.Bytes[1] += 60
	a.Last = a.Last.Add(time.Minute)
	for _, f := range []*flow.Flow{a, b, ext, exc, exm} {
		tr.AddFlow(f)
	}
	recs = tr.Flush()
	if len(recs) != 1 {
		t.Fatalf("%d records in interval 2, want 1: %+v", len(recs), recs)
	}
	if r := recs[0]; r.PacketsOut != 10 || r.BytesOut != 1000 || r.PacketsIn != 1 || r.BytesIn != 60 {
		t.Errorf("interval 2 delta %+v, want 10/1000 out 1/60 in", r)
	}
	if len(tr.Flush()) != 0 {
		t.Error("Flush did not reset the interval")
	}
}

func TestTrafficBound(t *testing.T) {
	inv := NewInventory(DefaultClasses())
	tr := NewTraffic(inv)
	tr.Max = 2
	fs := []*flow.Flow{
		mkflow("10.0.0.5", mac(5), "10.0.0.6", 1, mac(6), 0),
		mkflow("10.0.0.5", mac(5), "10.0.0.6", 2, mac(6), 0),
		mkflow("10.0.0.5", mac(5), "10.0.0.6", 3, mac(6), 0),
	}
	for _, f := range fs {
		tr.AddFlow(f)
	}
	if n := len(tr.Flush()); n != 2 || tr.Dropped() != 1 {
		t.Fatalf("records %d dropped %d, want 2 and 1", n, tr.Dropped())
	}
	// The dropped delta is reported in the next interval.
	tr.AddFlow(fs[2])
	if recs := tr.Flush(); len(recs) != 1 || recs[0].DPort != 3 || recs[0].PacketsOut != 3 {
		t.Errorf("next interval %+v, want the held-back flow", recs)
	}
}

// Hosts sending from 0.0.0.0 (DHCP clients) are not taken for the External
// asset, nor for whichever MAC sent first.
func TestTrafficSideUnspecified(t *testing.T) {
	inv := NewInventory(DefaultClasses())
	m := capture.MAC{0x00, 0x90, 0xe8, 1, 2, 3}
	for _, c := range []struct {
		ip   string
		mac  capture.MAC
		want string
	}{
		{"0.0.0.0", m, IDUnspecified},
		{"0.0.0.0", capture.MAC{}, IDUnspecified},
		{"::", m, IDUnspecified},
		{"255.255.255.255", m, IDBroadcast},
		{"203.0.113.9", m, IDExternal},
	} {
		if _, got := inv.trafficSide(netip.MustParseAddr(c.ip), c.mac); got != c.want {
			t.Errorf("%s from %s: asset %q, want %q", c.ip, c.mac, got, c.want)
		}
	}
}
