// Package powercut is a disk image file behind a volatile write cache whose
// power fails at a chosen write or flush, for tests of code that must
// leave a disk usable whenever the power goes.
//
// The model: writes reach the cache; Sync flushes the cache to the file.
// When the power fails, each 512-byte sector of each write still in the
// cache, the one in progress included, independently reaches the file or
// is lost; a sector is never torn. Reads see the cache. After the cut every
// operation fails with ErrCut, and the file holds what survived: open it
// again as the next boot would.
package powercut

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
)

// SectorSize is the unit a power cut never tears.
const SectorSize = 512

// ErrCut is what every operation returns once the power is off.
var ErrCut = errors.New("powercut: power cut")

// Disk is a file behind a write cache. It counts durable operations
// (WriteAt, Zero, Sync) from 1; the power fails during operation CutAt
// (0: never).
type Disk struct {
	f       *os.File
	CutAt   int
	ops     int
	cut     bool
	rnd     *rand.Rand
	pending []write
}

type write struct {
	off  int64
	data []byte
}

// Open opens the file at path; the power fails during operation cutAt,
// and seed chooses which cached sectors survive.
func Open(path string, cutAt int, seed uint64) (*Disk, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	return &Disk{f: f, CutAt: cutAt, rnd: rand.New(rand.NewPCG(seed, uint64(cutAt)))}, nil
}

// Ops is the number of durable operations started so far.
func (d *Disk) Ops() int { return d.ops }

// Cut reports whether the power has failed.
func (d *Disk) Cut() bool { return d.cut }

// Close closes the file; what is still cached is lost, as at a cut.
func (d *Disk) Close() error { return d.f.Close() }

// Size is the file's size.
func (d *Disk) Size() (int64, error) {
	st, err := d.f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// op starts a durable operation and reports whether the power fails
// during it.
func (d *Disk) op() (failsNow bool, err error) {
	if d.cut {
		return false, ErrCut
	}
	d.ops++
	if d.CutAt != 0 && d.ops == d.CutAt {
		d.cut = true
		return true, nil
	}
	return false, nil
}

// ReadAt reads the file as the cache shows it.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	if d.cut {
		return 0, ErrCut
	}
	n, err := d.f.ReadAt(p, off)
	for _, w := range d.pending {
		lo, hi := max(w.off, off), min(w.off+int64(len(w.data)), off+int64(len(p)))
		if lo < hi {
			copy(p[lo-off:hi-off], w.data[lo-w.off:hi-w.off])
			if int(hi-off) > n {
				n, err = int(hi-off), nil
			}
		}
	}
	return n, err
}

// WriteAt puts a write into the cache.
func (d *Disk) WriteAt(p []byte, off int64) (int, error) {
	fails, err := d.op()
	if err != nil {
		return 0, err
	}
	if off%SectorSize != 0 || len(p)%SectorSize != 0 {
		return 0, fmt.Errorf("powercut: write of %d bytes at %d is not whole sectors", len(p), off)
	}
	d.pending = append(d.pending, write{off, append([]byte(nil), p...)})
	if fails {
		d.powerLoss()
		return 0, ErrCut
	}
	return len(p), nil
}

// Zero writes n zero bytes from off.
func (d *Disk) Zero(off, n int64) error {
	_, err := d.WriteAt(make([]byte, n), off)
	return err
}

// Sync flushes the cache to the file.
func (d *Disk) Sync() error {
	fails, err := d.op()
	if err != nil {
		return err
	}
	if fails {
		d.powerLoss()
		return ErrCut
	}
	for _, w := range d.pending {
		if _, err := d.f.WriteAt(w.data, w.off); err != nil {
			return err
		}
	}
	d.pending = nil
	return d.f.Sync()
}

// powerLoss writes back a random subset of the cached sectors, in the
// order they were written, and drops the rest.
func (d *Disk) powerLoss() {
	for _, w := range d.pending {
		for s := 0; s < len(w.data); s += SectorSize {
			if d.rnd.IntN(2) == 0 {
				d.f.WriteAt(w.data[s:s+SectorSize], w.off+int64(s))
			}
		}
	}
	d.pending = nil
	d.f.Sync()
}

// Section is the part of a Disk from byte Off on, for code that writes a
// partition.
type Section struct {
	D   *Disk
	Off int64
}

func (s Section) ReadAt(p []byte, off int64) (int, error)  { return s.D.ReadAt(p, s.Off+off) }
func (s Section) WriteAt(p []byte, off int64) (int, error) { return s.D.WriteAt(p, s.Off+off) }
func (s Section) Zero(off, n int64) error                  { return s.D.Zero(s.Off+off, n) }
func (s Section) Sync() error                              { return s.D.Sync() }
