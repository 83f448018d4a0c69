package main

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/passivesensor/sensor/gpt"
	"github.com/passivesensor/sensor/permfs"
)

// disk is the boot disk: sectors to read and write, made durable by Sync.
type disk interface {
	gpt.Device
}

// section is a partition of a disk seen from its first byte.
type section struct {
	d   disk
	off int64
}

func (s section) ReadAt(p []byte, off int64) (int, error)  { return s.d.ReadAt(p, s.off+off) }
func (s section) WriteAt(p []byte, off int64) (int, error) { return s.d.WriteAt(p, s.off+off) }
func (s section) Sync() error                              { return s.d.Sync() }

// Zero passes a zeroing request to the disk when it can zero ranges
// (BLKZEROOUT on the box's disk), else writes zeros.
func (s section) Zero(off, n int64) error {
	if z, ok := s.d.(permfs.Zeroer); ok {
		return z.Zero(s.off+off, n)
	}
	zero := make([]byte, min(n, 1<<20))
	for done := int64(0); done < n; done += int64(len(zero)) {
		if _, err := s.WriteAt(zero[:min(int64(len(zero)), n-done)], off+done); err != nil {
			return err
		}
	}
	return nil
}

// result is what prepare did.
type result struct {
	// Created is the file system made; zero when none was.
	Created permfs.Info
	// Part is partition n as it is now.
	Part gpt.Partition
	// Grown says that the partition was grown (or its growth finished).
	Grown bool
	// From is the partition before it was grown.
	From gpt.Partition
	// Resumed says that an earlier Create cut short was run again.
	Resumed bool
	// Foreign lists what the partition holds that is not ours: nothing
	// was written.
	Foreign []permfs.Signature
	Took    time.Duration
}

// errForeign says that the partition holds data that is not ours.
var errForeign = errors.New("the partition holds data")

// prepare makes the /perm file system on partition n of a disk of
// sectors sectors: it reads the GPT, checks that the partition, as it
// will be once grown to the disk's end, holds no file system (unless it
// holds an earlier run's interrupted work), grows it, and creates the file
// system. Each step survives a power cut, and prepare run again after one
// finishes the work. When the partition holds data it writes nothing and
// returns errForeign with the signatures in result.Foreign.
func prepare(log *slog.Logger, d disk, sectors uint64, n int) (result, error) {
	start := time.Now()
	t, err := gpt.Read(d)
	if err != nil {
		return result{}, fmt.Errorf("reading the partition table: %w", err)
	}
	from, err := t.Partition(n)
	if err != nil {
		return result{}, err
	}
	r := result{From: from, Part: from}
	grow := true
	target, err := gpt.Plan(t, sectors, n)
	switch {
	case errors.Is(err, gpt.ErrNotLast):
		log.Warn("partition is not the last on the disk: not growing it", "partition", n, "err", err)
		grow, target = false, from
	case err != nil:
		return r, fmt.Errorf("growing partition %d: %w", n, err)
	}
	part := section{d, target.Offset()}
	resumed, err := permfs.Interrupted(part, target.Bytes())
	if err != nil {
		return r, err
	}
	if !resumed {
		sigs, err := permfs.Detect(part, target.Bytes())
		if err != nil {
			return r, err
		}
		if len(sigs) > 0 {
			r.Foreign = sigs
			return r, errForeign
		}
	}
	r.Resumed = resumed
	if grow {
		g, err := gpt.Grow(d, sectors, n)
		if err != nil {
			return r, fmt.Errorf("growing partition %d: %w", n, err)
		}
		if g.Partition != target {
			return r, fmt.Errorf("partition %d grew to sectors %d-%d, not %d-%d as planned", n, g.First, g.Last, target.First, target.Last)
		}
		r.Grown = g.Changed
		r.Part = g.Partition
		if g.Changed {
			log.Info("grew the partition to the end of the disk", "partition", n, "finished_interrupted", g.Finished,
				"from_mib", from.Bytes()>>20, "to_mib", g.Bytes()>>20, "disk_mib", int64(sectors)*gpt.SectorSize>>20)
		}
	}
	info, err := permfs.Create(part, target.Bytes(), permfs.Options{})
	if err != nil {
		return r, fmt.Errorf("creating the file system: %w", err)
	}
	r.Created = info
	r.Took = time.Since(start)
	return r, nil
}
