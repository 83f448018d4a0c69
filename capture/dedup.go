package capture

import (
	"hash/maphash"
	"sync/atomic"
	"time"
)

// DefaultDedupWindow is how close in time two identical frames must be for
// Dedup to take the second for a copy the mirror made.
const DefaultDedupWindow = 5 * time.Millisecond

// dedupSlots is the size of Dedup's table: enough for the frames of a 5 ms
// window at about 3 Mpps before slots are reused within the window.
const dedupSlots = 1 << 14

// Dedup suppresses frames a switch mirrored twice, as a SPAN session with
// both directions of a port, or both ports of a link, delivers them: the
// second copy of identical bytes within a short window is a duplicate.
//
// It keeps the hash and time of recent frames in a fixed direct-mapped
// table, so memory is bounded and a check allocates nothing. A frame that
// matched is forgotten, so a third identical copy passes: retransmissions
// seen through a doubled mirror still count once each. Two different frames
// landing in the same slot within the window can hide a duplicate; they
// never make a frame a false duplicate unless their 64-bit hashes collide.
//
// Duplicate must not be called concurrently; Stats may be.
type Dedup struct {
	window int64 // nanoseconds
	seed   maphash.Seed
	slots  []dedupSlot
	dups   atomic.Uint64
}

type dedupSlot struct {
	hash uint64
	when int64 // UnixNano of the frame; 0 for an empty slot
}

// NewDedup returns a Dedup with the given window; a window <= 0 means
// DefaultDedupWindow.
func NewDedup(window time.Duration) *Dedup {
	if window <= 0 {
		window = DefaultDedupWindow
	}
	return &Dedup{
		window: int64(window),
		seed:   maphash.MakeSeed(),
		slots:  make([]dedupSlot, dedupSlots),
	}
}

// Duplicate reports whether f is a copy of a frame seen less than the
// window before (or after: mirrored copies may be reordered), and counts it.
// The whole captured frame is compared, by its hash.
func (d *Dedup) Duplicate(f Frame) bool {
	h := maphash.Bytes(d.seed, f.Data)
	if h == 0 {
		h = 1 // 0 marks nothing; keep the table simple
	}
	t := f.Time.UnixNano()
	if t == 0 {
		t = 1
	}
	s := &d.slots[h&(dedupSlots-1)]
	if s.hash == h && s.when != 0 {
		dt := t - s.when
		if dt < 0 {
			dt = -dt
		}
		if dt <= d.window {
			s.hash, s.when = 0, 0
			d.dups.Add(1)
			return true
		}
	}
	s.hash, s.when = h, t
	return false
}

// Stats returns the number of duplicates suppressed so far in Duplicates.
func (d *Dedup) Stats() Stats {
	return Stats{Duplicates: d.dups.Load()}
}
