package asset

import (
	"math"
	"net/netip"
	"slices"
	"time"
)

// DefaultMaxAge is how long the inventory keeps an asset nobody has seen.
const DefaultMaxAge = 30 * 24 * time.Hour

// evictSlack is the share of MaxRecords (1/evictSlack) freed at once when a
// record map is full, so the scan that finds the least recently seen assets
// runs once per MaxRecords/evictSlack new records, not per record.
const evictSlack = 16

// Age removes every asset last seen before now less MaxAge (an asset with no
// time at all is kept): a MAC with the addresses it holds, or an address
// without a MAC. The cloud keeps what it was told; an asset removed here is
// not reported again unless it shows up anew, then as a new record with a new
// first-seen time. The external and monitored-group pseudo-assets stay.
// It returns how many assets it removed; Aged counts them all.
func (inv *Inventory) Age(now time.Time) int {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if inv.MaxAge <= 0 {
		return 0
	}
	cut := now.Add(-inv.MaxAge)
	n := 0
	for _, m := range inv.macs {
		if last := inv.macLast(m); !last.IsZero() && last.Before(cut) {
			inv.removeMAC(m)
			n++
		}
	}
	for _, r := range inv.ips {
		if r.mac.IsZero() && !r.last.IsZero() && r.last.Before(cut) {
			inv.removeIP(r)
			n++
		}
	}
	inv.aged += uint64(n)
	return n
}

// Aged returns how many assets Age removed.
func (inv *Inventory) Aged() uint64 {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return inv.aged
}

// Evicted returns how many assets were removed, least recently seen first,
// to make room for new records when MaxRecords was reached.
func (inv *Inventory) Evicted() uint64 {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return inv.evicted
}

// macLast is when m's asset was last seen: by its own frames or through an
// address it holds.
func (inv *Inventory) macLast(m *macRec) time.Time {
	last := m.last
	for _, ip := range m.ips {
		if r := inv.ips[ip]; r != nil && r.mac == m.mac && r.last.After(last) {
			last = r.last
		}
	}
	return last
}

// removeMAC forgets m and the address records it holds.
func (inv *Inventory) removeMAC(m *macRec) {
	for _, ip := range m.ips {
		if r := inv.ips[ip]; r != nil && r.mac == m.mac {
			delete(inv.ips, ip)
		}
	}
	delete(inv.macs, m.mac)
}

// removeIP forgets r and takes it out of the lists of the MAC holding it.
func (inv *Inventory) removeIP(r *ipRec) {
	delete(inv.ips, r.ip)
	if m := inv.macs[r.mac]; m != nil && !r.mac.IsZero() {
		m.ips = slices.DeleteFunc(m.ips, func(a netip.Addr) bool { return a == r.ip })
		delete(m.claims, r.ip)
	}
}

// makeRoom makes sure one call of Observe or AddFlow (up to two new records
// of each kind) can create its records: when either map is that close to
// MaxRecords, the least recently seen assets are removed until it is
// MaxRecords/evictSlack below (assets as old as the last one removed go
// too). It runs before a call takes any record, so no
// record the call works on is removed under it.
func (inv *Inventory) makeRoom() {
	const need = 2
	limit := inv.MaxRecords
	if limit <= need || (len(inv.ips)+need <= limit && len(inv.macs)+need <= limit) {
		return
	}
	target := limit - max(need, limit/evictSlack)
	type cand struct {
		last int64 // Unix nanoseconds; no time sorts first
		m    *macRec
		r    *ipRec
	}
	nano := func(t time.Time) int64 {
		if t.IsZero() {
			return math.MinInt64
		}
		return t.UnixNano()
	}
	cands := make([]cand, 0, len(inv.macs)+len(inv.ips))
	for _, m := range inv.macs {
		cands = append(cands, cand{last: nano(inv.macLast(m)), m: m})
	}
	for _, r := range inv.ips {
		if r.mac.IsZero() || inv.macs[r.mac] == nil {
			cands = append(cands, cand{last: nano(r.last), r: r})
		}
	}
	// The oldest assets, by a histogram of their times rather than a sort:
	// two passes over the candidates, however many there are.
	short := max(len(inv.ips), len(inv.macs)) - target
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for _, c := range cands {
		lo, hi = min(lo, c.last), max(hi, c.last)
	}
	const buckets = 1024
	var hist [buckets]int
	width := uint64(hi-lo)/buckets + 1
	bucket := func(last int64) int { return int(uint64(last-lo) / width) }
	for _, c := range cands {
		hist[bucket(c.last)]++
	}
	cut, sum := buckets-1, 0
	for b := range hist {
		if sum += hist[b]; sum >= short {
			cut = b
			break
		}
	}
	for _, c := range cands {
		if bucket(c.last) > cut {
			continue
		}
		if c.m != nil {
			inv.removeMAC(c.m)
		} else {
			inv.removeIP(c.r)
		}
		inv.evicted++
	}
}

// holdsIPs reports whether m holds an address record.
func (inv *Inventory) holdsIPs(m *macRec) bool {
	for _, ip := range m.ips {
		if r := inv.ips[ip]; r != nil && r.mac == m.mac {
			return true
		}
	}
	return false
}
