package asset

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
)

const day = 24 * time.Hour

// A campus with DHCP churn: a laptop seen once, 31 days ago, leaves the
// inventory; a PLC seen yesterday stays, with every address it holds, even
// one last used long ago; the server both talked to stays.
func TestAgeRemovesAssetsNotSeen(t *testing.T) {
	inv := NewInventory(DefaultClasses())
	if inv.MaxAge != DefaultMaxAge {
		t.Fatalf("MaxAge %v, want the default %v", inv.MaxAge, DefaultMaxAge)
	}
	laptop, plc, srv := mac(0x41), mac(0x42), mac(6)
	inv.AddFlow(mkflow("10.0.5.41", laptop, "10.0.0.6", 443, srv, 0))
	inv.Observe(dissect.Observation{Time: t0, IP: ip("10.0.5.41"), MAC: laptop, Attr: dissect.AttrHostname, Value: "laptop-41", Protocol: "dhcp"})
	inv.AddFlow(mkflow("10.0.5.42", plc, "10.0.0.6", 502, srv, 0))      // an old address of the PLC
	inv.AddFlow(mkflow("10.0.5.43", plc, "10.0.0.6", 502, srv, 30*day)) // its current one
	inv.Observe(dissect.Observation{Time: t0, IP: ip("10.0.7.9"), Attr: dissect.AttrHostname, Value: "printer", Protocol: "mdns"})
	before := len(inv.Assets())

	now := t0.Add(31 * day)
	if n := inv.Age(now); n != 2 {
		t.Errorf("Age removed %d assets, want 2 (the laptop and the printer known by its address)", n)
	}
	if _, ok := inv.LookupMAC(laptop); ok {
		t.Error("laptop not seen for 31 days is still in the inventory")
	}
	if _, ok := inv.Lookup(ip("10.0.5.41")); ok {
		t.Error("the laptop's address is still in the inventory")
	}
	if _, ok := inv.Lookup(ip("10.0.7.9")); ok {
		t.Error("the printer known by its address only is still in the inventory")
	}
	a, ok := inv.LookupMAC(plc)
	if !ok || len(a.IPs) != 2 {
		t.Errorf("PLC seen yesterday: present %v, IPs %v; want present with both addresses", ok, a.IPs)
	}
	if _, ok := inv.LookupMAC(srv); !ok {
		t.Error("the server seen yesterday was removed")
	}
	if got := len(inv.Assets()); got != before-2 {
		t.Errorf("%d assets after aging, want %d", got, before-2)
	}
	if inv.Aged() != 2 {
		t.Errorf("Aged %d, want 2", inv.Aged())
	}
	// The laptop comes back: a new record, first seen now, without what was
	// learnt about it before.
	inv.AddFlow(mkflow("10.0.5.41", laptop, "10.0.0.6", 443, srv, 31*day))
	a, ok = inv.LookupMAC(laptop)
	if !ok || !a.FirstSeen.Equal(t0.Add(31*day)) || a.Hostname != "" {
		t.Errorf("laptop back: present %v, first seen %v, hostname %q; want a new record first seen %v",
			ok, a.FirstSeen, a.Hostname, t0.Add(31*day))
	}
	// Nothing is aged when MaxAge is zero.
	inv.MaxAge = 0
	if n := inv.Age(now.Add(365 * day)); n != 0 || len(inv.Assets()) == 0 {
		t.Errorf("MaxAge 0: Age removed %d", n)
	}
}

// When the record bound is reached, new devices still get in: the least
// recently seen assets make room, and are counted.
func TestEvictLeastRecentlySeen(t *testing.T) {
	inv := NewInventory(DefaultClasses())
	inv.MaxRecords = 40
	srv := mac(6)
	const hosts = 200
	for i := 0; i < hosts; i++ {
		m := capture.MAC{2, 0, 0, 0, byte(i >> 8), byte(i)}
		inv.AddFlow(mkflow(fmt.Sprintf("10.2.%d.%d", i/250, i%250+1), m, "10.0.0.6", 80, srv, time.Duration(i)*time.Minute))
	}
	inv.mu.Lock()
	nIP, nMAC := len(inv.ips), len(inv.macs)
	inv.mu.Unlock()
	if nIP > inv.MaxRecords || nMAC > inv.MaxRecords {
		t.Errorf("%d IP and %d MAC records with MaxRecords %d", nIP, nMAC, inv.MaxRecords)
	}
	last := capture.MAC{2, 0, 0, 0, byte((hosts - 1) >> 8), byte(hosts - 1)}
	if _, ok := inv.LookupMAC(last); !ok {
		t.Error("the newest host is not in a full inventory")
	}
	if _, ok := inv.LookupMAC(capture.MAC{2, 0, 0, 0, 0, 0}); ok {
		t.Error("the least recently seen host is still in the inventory")
	}
	if _, ok := inv.LookupMAC(srv); !ok {
		t.Error("the server every host talks to was evicted")
	}
	// Every host still present is among the most recently seen.
	for _, a := range inv.Assets() {
		if a.MAC != srv && a.LastSeen.Before(t0.Add(time.Duration(hosts-inv.MaxRecords)*time.Minute)) {
			t.Errorf("%s last seen %v kept while newer hosts were evicted", a.ID, a.LastSeen)
		}
	}
	if inv.Evicted() < hosts-uint64(inv.MaxRecords) || inv.Dropped() != 0 {
		t.Errorf("evicted %d, dropped %d; want at least %d evicted and none dropped", inv.Evicted(), inv.Dropped(), hosts-inv.MaxRecords)
	}
}

// BenchmarkAddFlowFull measures AddFlow of new hosts into an inventory kept
// full at DefaultMaxRecords, eviction included.
func BenchmarkAddFlowFull(b *testing.B) {
	inv := NewInventory(DefaultClasses())
	srv := mac(6)
	add := func(i int) {
		m := capture.MAC{2, 0, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
		f := mkflow("10.0.0.1", m, "10.0.0.6", 80, srv, time.Duration(i)*time.Second)
		f.Client = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 40000)
		inv.AddFlow(f)
	}
	for i := 0; i < DefaultMaxRecords; i++ {
		add(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		add(DefaultMaxRecords + n)
	}
}

// checkLists verifies that the lists the aging and eviction passes walk
// hold exactly the records of the maps, each knowing its place.
func checkLists(t *testing.T, inv *Inventory) {
	t.Helper()
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if len(inv.ipList) != len(inv.ips) || len(inv.macList) != len(inv.macs) {
		t.Fatalf("lists of %d IP and %d MAC records, maps of %d and %d", len(inv.ipList), len(inv.macList), len(inv.ips), len(inv.macs))
	}
	for i, r := range inv.ipList {
		if r.pos != i || inv.ips[r.ip] != r {
			t.Fatalf("IP list place %d: record %v at place %d, in the map %v", i, r.ip, r.pos, inv.ips[r.ip] == r)
		}
		if !r.mac.IsZero() && inv.macs[r.mac] == nil {
			t.Fatalf("address %v held by MAC %v, which has no record", r.ip, r.mac)
		}
	}
	for i, m := range inv.macList {
		if m.pos != i || inv.macs[m.mac] != m {
			t.Fatalf("MAC list place %d: record %v at place %d, in the map %v", i, m.mac, m.pos, inv.macs[m.mac] == m)
		}
	}
}

// A full inventory of a few thousand records makes room a step at a time:
// the passes run over many calls, every new host gets in, and what stays is
// always the most recently seen hosts.
func TestEvictInSteps(t *testing.T) {
	inv := NewInventory(DefaultClasses())
	inv.MaxRecords = 4096
	const hosts = 40000
	steps := 0
	for i := range hosts {
		inv.AddFlow(hostFlow(i, t0.Add(time.Duration(i)*time.Second)))
		inv.mu.Lock()
		if inv.evict.walk != 0 {
			steps++
		}
		inv.mu.Unlock()
	}
	checkLists(t, inv)
	if steps == 0 {
		t.Fatal("no eviction pass was ever in progress between calls: the passes ran whole")
	}
	oldest := hosts
	present := 0
	for i := range hosts {
		if _, ok := inv.Lookup(hostIP(i)); ok {
			oldest = min(oldest, i)
			present++
		}
	}
	if present != hosts-oldest {
		t.Errorf("%d hosts present, the oldest %d: a host was evicted while older ones stayed", present, oldest)
	}
	if present < inv.MaxRecords-2*inv.MaxRecords/evictSlack || inv.Dropped() != 0 {
		t.Errorf("%d hosts present, %d dropped, with MaxRecords %d", present, inv.Dropped(), inv.MaxRecords)
	}
	if got, want := inv.Evicted(), uint64(hosts-present); got != want {
		t.Errorf("evicted %d, want %d", got, want)
	}
	t.Logf("%d calls with a pass in progress; %d hosts kept", steps, present)
}

// Age walks a large inventory a chunk at a time while a capture worker
// goes on adding and seeing hosts: exactly the hosts not seen for MaxAge
// leave, those seen while it runs stay, and the maps and lists agree.
func TestAgeWhileObserving(t *testing.T) {
	const hosts = 5 * ageChunk
	inv, now := halfAged(hosts)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range hosts {
			inv.AddFlow(hostFlow(hosts+i, now)) // new hosts
			if i%4 == 0 {
				inv.AddFlow(hostFlow(i, now)) // an old host seen again
			}
		}
	}()
	n := inv.Age(now)
	<-done
	checkLists(t, inv)
	gone := 0
	for i := range 2 * hosts {
		_, ok := inv.Lookup(hostIP(i))
		switch {
		case !ok && (i%2 == 1 || i >= hosts):
			t.Fatalf("host %d seen at %v was removed", i, now)
		case !ok:
			gone++
		case i < hosts && i%4 == 2:
			t.Fatalf("host %d, not seen for MaxAge, is still there", i)
		}
	}
	// The old hosts seen again were removed or not, depending on whether
	// Age got to them first; they are back either way.
	if gone != hosts/4 || n < gone || n > gone+hosts/4 {
		t.Errorf("Age says %d removed, %d hosts are gone; want %d gone, and at most %d more removed and back", n, gone, hosts/4, hosts/4)
	}
}

// The lists stay in step with the maps through everything that removes
// records: aging, eviction, and new classes that exclude some.
func TestRecordListsConsistent(t *testing.T) {
	inv := NewInventory(DefaultClasses())
	inv.MaxRecords = 300
	for i := range 2000 {
		inv.AddFlow(hostFlow(i%700, t0.Add(time.Duration(i)*time.Minute)))
		if i%97 == 0 {
			inv.Age(t0.Add(time.Duration(i)*time.Minute - DefaultMaxAge + 5*time.Hour))
		}
		if i == 1500 {
			c := DefaultClasses()
			c.ExcludedIPs = append(c.ExcludedIPs, netip.MustParsePrefix("10.64.1.0/24"))
			c.ExcludedMACs = append(c.ExcludedMACs, "02:00:00:00:00:07")
			if err := inv.SetClasses(c); err != nil {
				t.Fatal(err)
			}
		}
		checkLists(t, inv)
	}
}

// The histogram an eviction pass sorts assets by keeps every time it was
// given in the bucket bucket names for it, however far its span grew.
func TestTimeHist(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, spread := range []int64{1, 1000, int64(time.Hour), int64(DefaultMaxAge) * 40} {
		var h timeHist
		times := make([]int64, 5000)
		for i := range times {
			times[i] = t0.UnixNano() + rng.Int64N(2*spread) - spread
			h.add(times[i])
		}
		var want [evictBuckets]int
		slices.Sort(times)
		for i, tm := range times {
			b := h.bucket(tm)
			want[b]++
			if i > 0 && b < h.bucket(times[i-1]) {
				t.Fatalf("spread %d: time %d in bucket %d, an earlier one in %d", spread, tm, b, h.bucket(times[i-1]))
			}
		}
		if want != h.n {
			t.Fatalf("spread %d: the counts differ from the buckets of the times", spread)
		}
		if first, last := h.bucket(times[0]), h.bucket(times[len(times)-1]); last-first < evictBuckets/4 && spread > 1 {
			t.Errorf("spread %d: the times span buckets %d to %d only", spread, first, last)
		}
	}
}

// A snapshot of a large inventory taken while assets come and go holds
// each asset once, and every asset that stayed the whole time.
func TestAssetsWhileChanging(t *testing.T) {
	const hosts = 20 * snapChunk
	inv, now := halfAged(hosts)
	done := make(chan struct{})
	go func() {
		defer close(done)
		inv.Age(now) // removes the even hosts: records move in the lists
		for i := range hosts {
			inv.AddFlow(hostFlow(hosts+i, now))
		}
	}()
	snap := inv.Assets()
	<-done
	ids := map[string]bool{}
	for _, a := range snap {
		if ids[a.ID] {
			t.Fatalf("asset %s twice in one snapshot", a.ID)
		}
		ids[a.ID] = true
	}
	for i := 1; i < hosts; i += 2 {
		id := "mac:" + hostFlow(i, now).ClientMAC.String()
		if !ids[id] {
			t.Fatalf("host %d (%s), there the whole time, is not in the snapshot", i, id)
		}
	}
	checkLists(t, inv)
}

// halfAged returns an inventory of n hosts, the even ones last seen MaxAge
// and an hour before now, the odd ones now.
func halfAged(n int) (inv *Inventory, now time.Time) {
	inv = NewInventory(DefaultClasses())
	now = t0.Add(DefaultMaxAge + time.Hour)
	for i := range n {
		at := now
		if i%2 == 0 {
			at = t0
		}
		inv.AddFlow(hostFlow(i, at))
	}
	return inv, now
}
