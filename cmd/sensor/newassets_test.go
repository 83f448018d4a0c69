package main

import (
	"net/netip"
	"testing"
	"time"

	"github.com/passivesensor/sensor/asset"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/uplink"
)

// TestCloudNewAssetsSettle drives the reporting loop with the product's
// default intervals (new assets within 5 minutes, changes every 30) at a
// real collector: a device that appears is at the cloud NewAssetSettle
// after it first showed up, with what was learnt about it meanwhile, and
// not before; a change to a known device waits for the update interval;
// a burst of devices shares one batch.
func TestCloudNewAssetsSettle(t *testing.T) {
	_, collBin := cloudBuild(t)
	c := cloudStart(t, collBin, t.TempDir(), "127.0.0.1:0")
	s := New(asset.DefaultClasses())
	cl, _, ctx := liveCloud(t, s, c)
	if iv := cl.agent.Config().Intervals.WithDefaults(uplink.DefaultIntervals()); iv.NewAssets != 5*time.Minute || iv.Updates != 30*time.Minute {
		t.Fatalf("test premise: the collector's default intervals are the product's, got %+v", iv)
	}
	sensor := cl.agent.SensorID()
	sent := func() map[string]cloudAsset {
		t.Helper()
		if err := cl.agent.Drain(ctx); err != nil {
			t.Fatal(err)
		}
		return collectorAssets(t, c, sensor)
	}
	observe := func(at time.Time, ip, attr, value string) {
		s.Inv.Observe(dissect.Observation{Time: at, IP: netip.MustParseAddr(ip), Attr: attr, Value: value, Protocol: "test"})
	}

	t0 := time.Now()
	cl.tick(t0) // registered: heartbeat and the (empty) full report
	sent()

	observe(t0.Add(10*time.Second), "10.77.0.1", dissect.AttrHostname, "plc-1")
	cl.tick(t0.Add(10 * time.Second))
	observe(t0.Add(12*time.Second), "10.77.0.1", dissect.AttrVendor, "Wago")
	cl.tick(t0.Add(10*time.Second + NewAssetSettle - time.Second))
	if got := sent(); len(got) != 0 {
		t.Fatalf("reported before the settle time: %v", got)
	}
	cl.tick(t0.Add(10*time.Second + NewAssetSettle))
	got := sent()
	if a := got["ip:10.77.0.1"]; a.Hostname != "plc-1" || a.Vendor != "Wago" {
		t.Fatalf("%v after the device appeared the collector has %+v; want it with its hostname and vendor",
			NewAssetSettle, got)
	}

	// A change to the known device: not before the update interval.
	t1 := t0.Add(10*time.Second + NewAssetSettle)
	observe(t1.Add(time.Second), "10.77.0.1", dissect.AttrModel, "750-881")
	cl.tick(t1.Add(time.Second))
	cl.tick(t1.Add(time.Second + 2*NewAssetSettle))
	if got := sent(); got["ip:10.77.0.1"].Model != "" {
		t.Fatalf("a changed attribute went out as a new asset: %+v", got["ip:10.77.0.1"])
	}

	// Three devices within a few seconds go out together, the settle time
	// after the first.
	t2 := t1.Add(time.Minute)
	burst := []string{"ip:10.77.0.2", "ip:10.77.0.3", "ip:10.77.0.4"}
	for i, id := range burst {
		at := t2.Add(time.Duration(i) * 3 * time.Second)
		observe(at, id[3:], dissect.AttrHostname, "hmi")
		cl.tick(at)
	}
	got = sent()
	for _, id := range burst {
		if _, ok := got[id]; ok {
			t.Fatalf("%s reported %v after the first of the burst, before the settle time", id, 6*time.Second)
		}
	}
	cl.tick(t2.Add(NewAssetSettle))
	got = sent()
	for _, id := range burst {
		if _, ok := got[id]; !ok {
			t.Errorf("%s not at the collector %v after the first of the burst", id, NewAssetSettle)
		}
	}
}
