package asset

import (
	"fmt"
	"net/netip"
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
