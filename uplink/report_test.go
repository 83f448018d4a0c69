package uplink

import (
	"net/netip"
	"testing"
	"time"

	"github.com/passivesensor/sensor/asset"
	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
)

// seeHost tells inv that host i (a DHCP client by its MAC and address)
// was seen at t.
func seeHost(inv *asset.Inventory, i int, t time.Time) {
	inv.Observe(dissect.Observation{
		Time: t, IP: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}),
		MAC:  capture.MAC{2, 0, 0, byte(i >> 16), byte(i >> 8), byte(i)},
		Attr: dissect.AttrHostname, Value: "host", Protocol: "dhcp",
	})
}

// Three years of a campus where every day brings a hundred devices never
// seen again: the inventory keeps those of the last MaxAge, and so does
// what the reporter remembers.
func TestReporterForgetsAgedAssets(t *testing.T) {
	inv := asset.NewInventory(asset.DefaultClasses())
	r := NewReporter(false)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const perDay, days = 20, 3 * 365
	maxDays := int(inv.MaxAge / (24 * time.Hour))
	host := 0
	for d := range days {
		now := start.Add(time.Duration(d) * 24 * time.Hour)
		for range perDay {
			seeHost(inv, host, now)
			host++
		}
		assets := inv.Assets()
		r.Report(ReportNew, assets, now.Unix())
		r.Report(ReportUpdate, assets, now.Unix())
		if n := r.Reported(); n != len(assets) || n > (maxDays+2)*perDay {
			t.Fatalf("day %d: the reporter remembers %d assets, the inventory holds %d (MaxAge %v, %d new a day)",
				d, n, len(assets), inv.MaxAge, perDay)
		}
		inv.Age(now)
	}
}

// An asset that ages out of the inventory and comes back, even before the
// next report, is reported as new again, as the inventory made it anew.
func TestReporterAssetBackAfterAging(t *testing.T) {
	inv := asset.NewInventory(asset.DefaultClasses())
	r := NewReporter(false)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	seeHost(inv, 1, t0)
	seeHost(inv, 2, t0)
	if msgs := r.Report(ReportNew, inv.Assets(), t0.Unix()); len(msgs) != 1 || len(msgs[0].AssetReport.Assets) != 2 {
		t.Fatalf("first report: %+v", msgs)
	}
	later := t0.Add(inv.MaxAge + time.Hour)
	seeHost(inv, 2, later.Add(-time.Hour)) // host 2 stays
	if n := inv.Age(later); n != 1 {
		t.Fatalf("Age removed %d assets, want host 1", n)
	}
	seeHost(inv, 1, later) // back before the next report
	assets := inv.Assets()
	msgs := r.Report(ReportNew, assets, later.Unix())
	if len(msgs) != 1 || len(msgs[0].AssetReport.Assets) != 1 {
		t.Fatalf("report after host 1 came back: %+v, want it alone, as new", msgs)
	}
	if got := msgs[0].AssetReport.Assets[0]; string(got.MAC) != string([]byte{2, 0, 0, 0, 0, 1}) || got.FirstSeen != 0 {
		t.Errorf("reported MAC % x first seen %+d s from the report, want host 1 first seen at it", got.MAC, got.FirstSeen)
	}
	if msgs := r.Report(ReportNew, assets, later.Unix()); len(msgs) != 0 {
		t.Errorf("host 1 reported as new twice: %+v", msgs)
	}
}

// What a device tells after its new-asset report, while it is young, goes
// out in ReportYoung; an old device's change waits for the update report,
// and nothing is reported twice.
func TestReporterYoungChanges(t *testing.T) {
	inv := asset.NewInventory(asset.DefaultClasses())
	r := NewReporter(false)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	seeHost(inv, 1, t0) // old by the time it changes
	t1 := t0.Add(time.Hour)
	seeHost(inv, 2, t1) // young
	r.Report(ReportNew, inv.Assets(), t1.Unix())
	rename := func(i int, name string, at time.Time) {
		inv.Observe(dissect.Observation{Time: at, IP: netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}),
			MAC: capture.MAC{2, 0, 0, 0, 0, byte(i)}, Attr: dissect.AttrHostname, Value: name, Protocol: "dhcp"})
	}
	t2 := t1.Add(20 * time.Second)
	rename(1, "boiler-plc", t2)
	rename(2, "press-hmi", t2)
	assets := inv.Assets()
	if msgs := r.Report(ReportNew, assets, t2.Unix()); len(msgs) != 0 {
		t.Fatalf("nothing is new, got %+v", msgs)
	}
	msgs := r.ReportYoung(assets, t2.Unix(), t2.Add(-10*time.Minute))
	if len(msgs) != 1 || msgs[0].AssetReport.Reason != ReportUpdate || len(msgs[0].AssetReport.Assets) != 1 ||
		msgs[0].AssetReport.Assets[0].Hostname != "press-hmi" {
		t.Fatalf("young changes: %+v, want the update of the device first seen 20 s ago alone", msgs)
	}
	if msgs := r.ReportYoung(assets, t2.Unix(), t2.Add(-10*time.Minute)); len(msgs) != 0 {
		t.Fatalf("young change reported twice: %+v", msgs)
	}
	msgs = r.Report(ReportUpdate, assets, t2.Unix())
	if len(msgs) != 1 || len(msgs[0].AssetReport.Assets) != 1 || msgs[0].AssetReport.Assets[0].Hostname != "boiler-plc" {
		t.Fatalf("update report: %+v, want the old device's change alone", msgs)
	}
}
