package main

import (
	"net/netip"
	"testing"
	"time"

	"github.com/passivesensor/sensor/asset"
)

// TestDedupRules covers every row of the de-duplication rule set (see the
// comment at the top of dedup.go), in its order: MAC, host name, IP within
// a network id (static at once, DHCP within the lease), different network
// ids, and the pseudo-assets.
func TestDedupRules(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	ip := netip.MustParseAddr
	rules := Rules{HostnameExclusions: []string{"localhost", "DESKTOP-DEFAULT"}, DomainSuffix: "plant.example.com", Lease: 24 * time.Hour}
	noSuffix := rules
	noSuffix.DomainSuffix = ""
	rec := func(f func(*DedupRecord)) DedupRecord {
		r := DedupRecord{Sensor: "s1", NetworkID: "net-a", Addressing: asset.AddressingStatic, FirstSeen: t0, LastSeen: t0.Add(time.Hour)}
		f(&r)
		return r
	}
	cases := []struct {
		name  string
		rules Rules
		a, b  DedupRecord
		same  bool
		rule  string
	}{
		{"1 same MAC, different sensors and addresses", rules,
			rec(func(r *DedupRecord) { r.MAC, r.IP = "00:1b:1b:01:02:03", ip("10.0.0.5") }),
			rec(func(r *DedupRecord) { r.Sensor, r.MAC, r.IP = "s2", "00:1B:1B:01:02:03", ip("10.9.9.9") }), true, "mac"},
		{"1 different MACs decide even with the same static IP and host name", rules,
			rec(func(r *DedupRecord) { r.MAC, r.IP, r.Hostname = "00:1b:1b:01:02:03", ip("10.0.0.5"), "plc1" }),
			rec(func(r *DedupRecord) {
				r.Sensor, r.MAC, r.IP, r.Hostname = "s2", "00:1b:1b:01:02:04", ip("10.0.0.5"), "plc1"
			}), false, "mac"},
		{"2 MAC on one side only: host names equal ignoring case", rules,
			rec(func(r *DedupRecord) { r.MAC, r.Hostname = "00:1b:1b:01:02:03", "PLC1" }),
			rec(func(r *DedupRecord) { r.Sensor, r.Hostname, r.IP = "s2", "plc1", ip("10.0.0.7") }), true, "hostname"},
		{"2 host and host.suffix equal with the domain suffix configured", rules,
			rec(func(r *DedupRecord) { r.Hostname = "hmi-3" }),
			rec(func(r *DedupRecord) { r.Sensor, r.Hostname = "s2", "HMI-3.plant.example.com." }), true, "hostname"},
		{"2 host and host.suffix differ without a suffix configured", noSuffix,
			rec(func(r *DedupRecord) { r.Hostname = "hmi-3" }),
			rec(func(r *DedupRecord) { r.Sensor, r.Hostname = "s2", "hmi-3.plant.example.com" }), false, "hostname"},
		{"2 different host names decide even with the same static IP", rules,
			rec(func(r *DedupRecord) { r.Hostname, r.IP = "plc1", ip("10.0.0.5") }),
			rec(func(r *DedupRecord) { r.Sensor, r.Hostname, r.IP = "s2", "plc2", ip("10.0.0.5") }), false, "hostname"},
		{"2 an excluded host name does not merge; the IP rule decides (different IPs)", rules,
			rec(func(r *DedupRecord) { r.Hostname, r.IP = "localhost", ip("10.0.0.5") }),
			rec(func(r *DedupRecord) { r.Sensor, r.Hostname, r.IP = "s2", "LOCALHOST", ip("10.0.0.6") }), false, "ip"},
		{"2 an excluded host name (with suffix) falls through to the IP rule (same static IP)", rules,
			rec(func(r *DedupRecord) { r.Hostname, r.IP = "desktop-default.plant.example.com", ip("10.0.0.5") }),
			rec(func(r *DedupRecord) { r.Sensor, r.Hostname, r.IP = "s2", "plc9", ip("10.0.0.5") }), true, "ip"},
		{"3 same static IP, same network id: same at once", rules,
			rec(func(r *DedupRecord) { r.IP = ip("10.0.0.5") }),
			rec(func(r *DedupRecord) {
				r.Sensor, r.IP, r.FirstSeen, r.LastSeen = "s2", ip("10.0.0.5"), t0.AddDate(0, 0, 30), t0.AddDate(0, 0, 31)
			}), true, "ip"},
		{"3 same IP, different network ids: two assets", rules,
			rec(func(r *DedupRecord) { r.IP = ip("10.0.0.5") }),
			rec(func(r *DedupRecord) { r.Sensor, r.IP, r.NetworkID = "s2", ip("10.0.0.5"), "net-b" }), false, "ip"},
		{"3 same DHCP IP seen within the lease: same", rules,
			rec(func(r *DedupRecord) { r.IP, r.Addressing = ip("10.1.0.50"), asset.AddressingDHCP }),
			rec(func(r *DedupRecord) {
				r.Sensor, r.IP, r.Addressing = "s2", ip("10.1.0.50"), asset.AddressingDHCP
				r.FirstSeen, r.LastSeen = t0.Add(20*time.Hour), t0.Add(21*time.Hour) // 19 h after the first's last sighting
			}), true, "ip"},
		{"3 same DHCP IP with overlapping sightings: same", rules,
			rec(func(r *DedupRecord) { r.IP, r.Addressing = ip("10.1.0.50"), asset.AddressingDHCP }),
			rec(func(r *DedupRecord) {
				r.Sensor, r.IP, r.Addressing, r.FirstSeen = "s2", ip("10.1.0.50"), asset.AddressingDHCP, t0.Add(30*time.Minute)
			}), true, "ip"},
		{"3 same DHCP IP seen after the lease: two assets", rules,
			rec(func(r *DedupRecord) { r.IP, r.Addressing = ip("10.1.0.50"), asset.AddressingDHCP }),
			rec(func(r *DedupRecord) {
				r.Sensor, r.IP, r.Addressing = "s2", ip("10.1.0.50"), asset.AddressingDHCP
				r.FirstSeen, r.LastSeen = t0.Add(26*time.Hour), t0.Add(27*time.Hour) // 25 h gap
			}), false, "ip"},
		{"3 DHCP on one side is enough for the lease to apply", rules,
			rec(func(r *DedupRecord) { r.IP = ip("10.1.0.50") }),
			rec(func(r *DedupRecord) {
				r.Sensor, r.IP, r.Addressing = "s2", ip("10.1.0.50"), asset.AddressingDHCP
				r.FirstSeen, r.LastSeen = t0.AddDate(0, 0, 3), t0.AddDate(0, 0, 4)
			}), false, "ip"},
		{"3 different IPs: two assets", rules,
			rec(func(r *DedupRecord) { r.IP = ip("10.0.0.5") }),
			rec(func(r *DedupRecord) { r.Sensor, r.IP = "s2", ip("10.0.0.6") }), false, "ip"},
		{"4 nothing to compare: two assets", rules,
			rec(func(r *DedupRecord) { r.MAC = "00:1b:1b:01:02:03" }),
			rec(func(r *DedupRecord) { r.Sensor, r.Hostname = "s2", "plc1" }), false, "none"},
		{"pseudo-assets are never merged", rules,
			rec(func(r *DedupRecord) { r.ID, r.Pseudo = "external", true }),
			rec(func(r *DedupRecord) { r.Sensor, r.ID, r.Pseudo = "s2", "external", true }), false, "pseudo"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, swap := range []bool{false, true} {
				a, b := c.a, c.b
				if swap {
					a, b = b, a
				}
				v := c.rules.Compare(&a, &b)
				if v.Same != c.same || v.Rule != c.rule {
					t.Fatalf("swap %v: got same=%v by %q, want same=%v by %q", swap, v.Same, v.Rule, c.same, c.rule)
				}
				devs := c.rules.Dedupe([]DedupRecord{a, b})
				if want := map[bool]int{true: 1, false: 2}[c.same]; len(devs) != want {
					t.Fatalf("swap %v: Dedupe made %d devices, want %d", swap, len(devs), want)
				}
			}
		})
	}
}

// TestDedupeTransitive: records linked through different rules form one
// device (sensor 1 knows MAC and name, sensor 2 the same MAC, sensor 3 only
// the name), and an unrelated record stays apart.
func TestDedupeTransitive(t *testing.T) {
	rules := Rules{Lease: time.Hour}
	recs := []DedupRecord{
		{Sensor: "s1", ID: "mac:a", MAC: "00:00:00:00:00:0a", Hostname: "eng-ws"},
		{Sensor: "s2", ID: "mac:a", MAC: "00:00:00:00:00:0a", IP: netip.MustParseAddr("10.0.0.1")},
		{Sensor: "s3", ID: "ip:10.0.0.99", Hostname: "ENG-WS", IP: netip.MustParseAddr("10.0.0.99")},
		{Sensor: "s3", ID: "ip:10.0.0.2", IP: netip.MustParseAddr("10.0.0.2")},
	}
	devs := rules.Dedupe(recs)
	if len(devs) != 2 || len(devs[0].Records) != 3 || len(devs[1].Records) != 1 {
		t.Fatalf("devices %+v, want one of 3 records and one of 1", devs)
	}
	if got := devs[0].Rules; len(got) != 2 || got[0] != "hostname" || got[1] != "mac" {
		t.Fatalf("merged by %v, want [hostname mac]", got)
	}
}
