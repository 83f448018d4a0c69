package asset

import (
	"math"
	"net/netip"
	"slices"
	"time"
)

// DefaultMaxAge is how long the inventory keeps an asset nobody has seen.
const DefaultMaxAge = 30 * 24 * time.Hour

// evictSlack sets the room an eviction pass makes: from half a slack
// (MaxRecords/evictSlack/2) below MaxRecords down to one and a half, so that
// a pass runs once per MaxRecords/evictSlack new records, not per record.
const evictSlack = 16

// Work done per lock hold by the passes over every record, so that the
// capture workers feeding observations never wait long on the lock:
// ageChunk records per hold of Age, evictStep records per Observe or AddFlow
// call while an eviction pass runs. A pass over a full inventory
// (2*DefaultMaxRecords records, twice) takes about 4*DefaultMaxRecords/evictStep
// calls, which must be fewer than the calls that can fill the room left when
// it starts (DefaultMaxRecords/evictSlack/2 records, at most two new ones a
// call): it starts early enough to end before the inventory is full.
const (
	ageChunk  = 2048
	evictStep = 512
)

// The records Age and the eviction pass walk. Each record knows its place
// in its list (pos); removing one moves the list's last record into its
// place. A walk goes from the end of a list to its start, so that a record
// moved by a removal (always the last) is one the walk has already seen or
// one made since it began: every record that stays the whole walk is seen.

func (inv *Inventory) listIP(r *ipRec) { inv.ipList = list(inv.ipList, r) }

func (inv *Inventory) listMAC(m *macRec) { inv.macList = list(inv.macList, m) }

// dropIP forgets address record r (and nothing else).
func (inv *Inventory) dropIP(r *ipRec) {
	delete(inv.ips, r.ip)
	inv.ipList = unlist(inv.ipList, r)
}

// dropMAC forgets MAC record m (and nothing else).
func (inv *Inventory) dropMAC(m *macRec) {
	delete(inv.macs, m.mac)
	inv.macList = unlist(inv.macList, m)
}

// listed is a record that knows its place in its list.
type listed interface{ place() *int }

func (r *ipRec) place() *int  { return &r.pos }
func (m *macRec) place() *int { return &m.pos }

// list appends r to l and tells r its place.
func list[R listed](l []R, r R) []R {
	*r.place() = len(l)
	return append(l, r)
}

// walkBack visits up to n records of l from place next (clipped to l's
// end) towards its start, and returns the place to go on from: -1 when the
// walk is done. visit may take the record it is given out of the list.
func walkBack[R any](l []R, next, n int, visit func(R)) int {
	next = min(next, len(l)-1)
	for end := next - n; next >= 0 && next > end; next-- {
		visit(l[next])
	}
	return next
}

// unlist takes r out of l: the last record moves into its place.
func unlist[R listed](l []R, r R) []R {
	i, last := *r.place(), l[len(l)-1]
	l[i] = last
	*last.place() = i
	var none R
	l[len(l)-1] = none
	return l[:len(l)-1]
}

// Age removes every asset last seen before now less MaxAge (an asset with no
// time at all is kept): a MAC with the addresses it holds, or an address
// without a MAC. The cloud keeps what it was told; an asset removed here is
// not reported again unless it shows up anew, then as a new record with a new
// first-seen time. The external and monitored-group pseudo-assets stay.
// It returns how many assets it removed; Aged counts them all.
//
// Age takes the inventory's lock for ageChunk records at a time, so that
// observations and flows go on while it walks a large inventory; an asset
// seen while Age runs stays.
func (inv *Inventory) Age(now time.Time) int {
	n := 0
	for _, macs := range []bool{true, false} {
		for next := math.MaxInt; next >= 0; {
			removed, stop := 0, false
			inv.mu.Lock()
			if inv.MaxAge <= 0 {
				stop = true
			} else {
				cut := now.Add(-inv.MaxAge)
				old := func(t time.Time) bool { return !t.IsZero() && t.Before(cut) }
				if macs {
					next = walkBack(inv.macList, next, ageChunk, func(m *macRec) {
						if old(inv.macLast(m)) {
							inv.removeMAC(m)
							removed++
						}
					})
				} else {
					next = walkBack(inv.ipList, next, ageChunk, func(r *ipRec) {
						if r.mac.IsZero() && old(r.last) {
							inv.removeIP(r)
							removed++
						}
					})
				}
				inv.aged += uint64(removed)
			}
			inv.mu.Unlock()
			n += removed
			if stop {
				return n
			}
		}
	}
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
			inv.dropIP(r)
		}
	}
	inv.dropMAC(m)
}

// removeIP forgets r and takes it out of the lists of the MAC holding it.
func (inv *Inventory) removeIP(r *ipRec) {
	inv.dropIP(r)
	if m := inv.macs[r.mac]; m != nil && !r.mac.IsZero() {
		m.ips = slices.DeleteFunc(m.ips, func(a netip.Addr) bool { return a == r.ip })
		delete(m.claims, r.ip)
	}
}

// evictBuckets is the resolution of an eviction pass's histogram of
// last-seen times.
const evictBuckets = 1024

// evictPass is an eviction pass in progress: it walks every asset twice, a
// bounded step at a time (see makeRoom). The first walk counts the assets
// by last-seen time in a histogram, which tells up to which time the oldest
// assets must go to bring the inventory down to its target; the second
// removes them. Assets seen meanwhile have moved on in time and stay.
type evictPass struct {
	walk  int  // 0: no pass; 1: histogram; 2: removal
	macs  bool // walking the MAC records, else the address records
	next  int  // next place in the list walked, from its end
	hist  timeHist
	zeros int // assets with no time: the first to go
	cut   int // assets in buckets up to cut go; -1: only those with no time
}

// timeHist counts times (Unix nanoseconds) in evictBuckets buckets of
// width ns from lo, over a span that grows (halving its resolution) to
// take in every time added.
type timeHist struct {
	lo, width int64 // width 0: empty
	n         [evictBuckets]int
}

func (h *timeHist) add(t int64) {
	if h.width == 0 {
		h.lo, h.width = t, 1
	}
	for t < h.lo || (t-h.lo)/h.width >= evictBuckets {
		span := h.width * evictBuckets
		var m [evictBuckets]int
		if t < h.lo { // extend downwards: [lo-span, lo+span)
			for i, c := range h.n {
				m[(evictBuckets+i)/2] += c
			}
			h.lo -= span
		} else { // extend upwards: [lo, lo+2*span)
			for i, c := range h.n {
				m[i/2] += c
			}
		}
		h.n, h.width = m, 2*h.width
	}
	h.n[(t-h.lo)/h.width]++
}

// bucket returns the bucket of t, those outside the span counted in the
// first or the last.
func (h *timeHist) bucket(t int64) int {
	switch {
	case h.width == 0 || t < h.lo:
		return 0
	case (t-h.lo)/h.width >= evictBuckets:
		return evictBuckets - 1
	}
	return int((t - h.lo) / h.width)
}

// makeRoom makes sure one call of Observe or AddFlow (up to two new records
// of each kind) can create its records, without holding the lock long: an
// eviction pass starts when either record map comes within half a slack
// (MaxRecords/evictSlack/2) of MaxRecords, and each call does evictStep
// records of its work until it has removed the least recently seen assets
// down to one and a half slacks below MaxRecords (assets as old as the last
// one removed go too). Only a map that still gets full while a pass runs
// makes a call finish the pass at once. It runs before a call takes any
// record, so no record the call works on is removed under it.
func (inv *Inventory) makeRoom() {
	const need = 2
	limit := inv.MaxRecords
	if limit <= need {
		return
	}
	slack := max(need, limit/evictSlack)
	size := max(len(inv.ips), len(inv.macs))
	p := &inv.evict
	if p.walk == 0 {
		if size <= limit-slack/2 {
			return
		}
		*p = evictPass{walk: 1, macs: true, next: math.MaxInt}
	}
	steps := evictStep
	if size+need > limit {
		steps = math.MaxInt // full: finish the pass now
	}
	for p.walk != 0 && steps > 0 {
		steps = inv.evictSteps(p, steps, limit-slack-slack/2)
	}
}

// evictSteps does up to steps records of pass p's work and returns how many
// steps are left; target is the size the pass brings the maps down to.
func (inv *Inventory) evictSteps(p *evictPass, steps, target int) int {
	n := len(inv.ipList)
	if p.macs {
		n = len(inv.macList)
	}
	p.next = min(p.next, n-1)
	for ; p.next >= 0 && steps > 0; p.next, steps = p.next-1, steps-1 {
		var t time.Time
		var m *macRec
		var r *ipRec
		if p.macs {
			m = inv.macList[p.next]
			t = inv.macLast(m)
		} else {
			r = inv.ipList[p.next]
			if !r.mac.IsZero() {
				continue // held by a MAC record, goes with it
			}
			t = r.last
		}
		switch {
		case p.walk == 1 && t.IsZero():
			p.zeros++
		case p.walk == 1:
			p.hist.add(t.UnixNano())
		case t.IsZero() || (p.cut >= 0 && p.hist.bucket(t.UnixNano()) <= p.cut):
			if m != nil {
				inv.removeMAC(m)
			} else {
				inv.removeIP(r)
			}
			inv.evicted++
		}
	}
	if p.next >= 0 {
		return steps
	}
	// The end of a list.
	if p.macs {
		p.macs, p.next = false, math.MaxInt
		return steps
	}
	p.macs, p.next = true, math.MaxInt
	if p.walk == 2 {
		p.walk = 0
		return steps
	}
	short := max(len(inv.ips), len(inv.macs)) - target
	p.cut, p.walk = -1, 2
	for b, sum := 0, p.zeros; sum < short && b < evictBuckets; b++ {
		sum += p.hist.n[b]
		p.cut = b
	}
	return steps
}
