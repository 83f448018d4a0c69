package main

import (
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/passivesensor/sensor/asset"
)

// De-duplication across sensors
//
// Two sensors (or one sensor before and after a change) may report the same
// device. The collector decides by these rules, in order; the first rule
// that applies to a pair decides it:
//
//  1. MAC: when both records have a MAC, they are the same device exactly
//     when the MACs are equal.
//  2. Host name: when both have a host name that is not on the exclusion
//     list, they are the same device exactly when the names are equal,
//     ignoring case; with a domain suffix configured, "host" and
//     "host.SUFFIX" are equal.
//  3. IP: when both have an address, they are the same device only when
//     the current addresses are equal and the sensors are in the same
//     network id; for an address in a static range at once, for one in a
//     DHCP range only when the two were seen within the DHCP lease (or
//     inactivity time) of each other. The same address in different
//     network ids stays two devices.
//  4. Otherwise they are two devices.
//
// The external and monitored-external pseudo-assets are never merged.

// Rules are the de-duplication settings.
type Rules struct {
	HostnameExclusions []string
	DomainSuffix       string
	// Lease is how long a DHCP address names the same device after it was
	// last seen.
	Lease time.Duration
}

// DedupRecord is what the rules look at in one sensor's asset record.
type DedupRecord struct {
	Sensor     string
	ID         string
	Pseudo     bool // external or a monitored-external group
	NetworkID  string
	MAC        string
	Hostname   string
	IP         netip.Addr // current address
	Addressing string     // asset.AddressingStatic or AddressingDHCP, of IP's range
	FirstSeen  time.Time
	LastSeen   time.Time
}

// Verdict is the outcome of comparing two records, with the rule that
// decided it.
type Verdict struct {
	Same bool
	Rule string // "mac", "hostname", "ip", "none", "pseudo"
}

func (r *Rules) hostKey(h string) string {
	h = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
	if h == "" {
		return ""
	}
	for _, x := range r.HostnameExclusions {
		if strings.EqualFold(strings.TrimSuffix(strings.TrimSpace(x), "."), h) {
			return ""
		}
	}
	if s := strings.Trim(strings.ToLower(r.DomainSuffix), "."); s != "" {
		h = strings.TrimSuffix(h, "."+s)
		for _, x := range r.HostnameExclusions { // "localhost.SUFFIX" is excluded as "localhost"
			if strings.EqualFold(strings.TrimSuffix(strings.TrimSpace(x), "."), h) {
				return ""
			}
		}
	}
	return h
}

// Compare applies the rules to two records.
func (r *Rules) Compare(a, b *DedupRecord) Verdict {
	if a.Pseudo || b.Pseudo {
		return Verdict{Same: false, Rule: "pseudo"}
	}
	if a.MAC != "" && b.MAC != "" {
		return Verdict{Same: strings.EqualFold(a.MAC, b.MAC), Rule: "mac"}
	}
	if ha, hb := r.hostKey(a.Hostname), r.hostKey(b.Hostname); ha != "" && hb != "" {
		return Verdict{Same: ha == hb, Rule: "hostname"}
	}
	if a.IP.IsValid() && b.IP.IsValid() {
		if a.IP != b.IP || a.NetworkID != b.NetworkID {
			return Verdict{Same: false, Rule: "ip"}
		}
		if a.Addressing != asset.AddressingDHCP && b.Addressing != asset.AddressingDHCP {
			return Verdict{Same: true, Rule: "ip"}
		}
		// The gap between the two sightings: zero when they overlap.
		gap := maxTime(a.FirstSeen, b.FirstSeen).Sub(minTime(a.LastSeen, b.LastSeen))
		return Verdict{Same: gap <= r.Lease, Rule: "ip"}
	}
	return Verdict{Same: false, Rule: "none"}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Device is one device after de-duplication: the records that describe it.
type Device struct {
	Records []int // indexes into the input
	Rules   []string
}

// Dedupe groups records into devices. Only records sharing a MAC, a host
// name key or an address can be the same device, so pairs are drawn from
// those buckets, not from every pair; a device is a connected group of
// pairs judged the same.
func (r *Rules) Dedupe(recs []DedupRecord) []Device {
	parent := make([]int, len(recs))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	rules := map[int][]string{}
	buckets := map[string][]int{}
	for i := range recs {
		x := &recs[i]
		if x.Pseudo {
			continue
		}
		if x.MAC != "" {
			buckets["m"+strings.ToLower(x.MAC)] = append(buckets["m"+strings.ToLower(x.MAC)], i)
		}
		if h := r.hostKey(x.Hostname); h != "" {
			buckets["h"+h] = append(buckets["h"+h], i)
		}
		if x.IP.IsValid() {
			buckets["i"+x.IP.String()] = append(buckets["i"+x.IP.String()], i)
		}
	}
	keys := make([]string, 0, len(buckets))
	for k := range buckets {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b := buckets[k]
		for i := 0; i < len(b); i++ {
			for j := i + 1; j < len(b); j++ {
				if v := r.Compare(&recs[b[i]], &recs[b[j]]); v.Same {
					ri, rj := find(b[i]), find(b[j])
					if ri != rj {
						parent[rj] = ri
						rules[ri] = append(append(rules[ri], rules[rj]...), v.Rule)
						delete(rules, rj)
					}
				}
			}
		}
	}
	groups := map[int]*Device{}
	var out []*Device
	for i := range recs {
		root := find(i)
		d := groups[root]
		if d == nil {
			d = &Device{Rules: dedupStrings(rules[root])}
			groups[root] = d
			out = append(out, d)
		}
		d.Records = append(d.Records, i)
	}
	res := make([]Device, len(out))
	for i, d := range out {
		res[i] = *d
	}
	return res
}

func dedupStrings(ss []string) []string {
	sort.Strings(ss)
	out := ss[:0]
	for i, s := range ss {
		if i == 0 || s != ss[i-1] {
			out = append(out, s)
		}
	}
	return out
}
