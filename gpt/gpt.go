// Package gpt reads a disk's GUID partition table and grows its last
// partition to the end of a disk larger than the table was written for,
// as when a disk image is written to a bigger disk. The growth keeps the
// primary table valid at every moment, so that a power cut at any point
// leaves a disk that boots (firmware and Linux read the primary table;
// Linux without "gpt" on its command line ignores the backup if the
// primary is damaged) and on which Grow can be run again.
//
// Sector size 512. A single-sector write is assumed to be atomic: it
// reaches the disk whole or not at all.
package gpt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// SectorSize is the logical sector size the tables are read and written in.
const SectorSize = 512

const (
	headerSize = 92
	signature  = "EFI PART"
	// entriesLBA is where the primary table's entries live once growth is
	// done, as every partitioning tool puts them: right after the header.
	entriesLBA = 2
	// align is the partition end alignment (1 MiB), as partitioning
	// tools align starts; it costs less than 1 MiB.
	align = 2048
)

// Device is a disk: it reads and writes sectors, and Sync makes what was
// written durable.
type Device interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
}

// Header is a GPT header's fields.
type Header struct {
	MyLBA, AlternateLBA      uint64
	FirstUsable, LastUsable  uint64
	DiskGUID                 [16]byte
	EntriesLBA               uint64
	NumEntries, EntrySize    uint32
	EntriesCRC               uint32
	revision, headerByteSize uint32
}

// Table is a header and its partition entry array.
type Table struct {
	Header
	Entries []byte // NumEntries * EntrySize bytes
}

// Partition is one partition entry's extent, in sectors (Last inclusive).
type Partition struct {
	Number      int // 1-based
	TypeGUID    [16]byte
	UniqueGUID  [16]byte
	First, Last uint64
}

// Bytes is the partition's size in bytes.
func (p Partition) Bytes() int64 { return int64(p.Last-p.First+1) * SectorSize }

// Offset is the partition's first byte on the disk.
func (p Partition) Offset() int64 { return int64(p.First) * SectorSize }

// ErrNoTable says that a sector holds no valid GPT header.
var ErrNoTable = errors.New("gpt: no valid GPT header")

// ReadHeader reads and checks the header at sector lba: its signature,
// size, CRC and that it says it is at lba.
func ReadHeader(r io.ReaderAt, lba uint64) (Header, error) {
	b := make([]byte, SectorSize)
	if _, err := r.ReadAt(b, int64(lba)*SectorSize); err != nil {
		return Header{}, fmt.Errorf("gpt: reading sector %d: %w", lba, err)
	}
	if string(b[:8]) != signature {
		return Header{}, fmt.Errorf("%w at sector %d: no signature", ErrNoTable, lba)
	}
	le := binary.LittleEndian
	h := Header{
		revision: le.Uint32(b[8:]), headerByteSize: le.Uint32(b[12:]),
		MyLBA: le.Uint64(b[24:]), AlternateLBA: le.Uint64(b[32:]),
		FirstUsable: le.Uint64(b[40:]), LastUsable: le.Uint64(b[48:]),
		EntriesLBA: le.Uint64(b[72:]), NumEntries: le.Uint32(b[80:]), EntrySize: le.Uint32(b[84:]),
		EntriesCRC: le.Uint32(b[88:]),
	}
	copy(h.DiskGUID[:], b[56:72])
	if h.headerByteSize < headerSize || h.headerByteSize > SectorSize {
		return Header{}, fmt.Errorf("%w at sector %d: header size %d", ErrNoTable, lba, h.headerByteSize)
	}
	crc := le.Uint32(b[16:])
	le.PutUint32(b[16:], 0)
	if crc32.ChecksumIEEE(b[:h.headerByteSize]) != crc {
		return Header{}, fmt.Errorf("%w at sector %d: header CRC mismatch", ErrNoTable, lba)
	}
	if h.MyLBA != lba {
		return Header{}, fmt.Errorf("%w at sector %d: header says it is at %d", ErrNoTable, lba, h.MyLBA)
	}
	if h.EntrySize < 128 || h.EntrySize%8 != 0 || h.NumEntries == 0 || uint64(h.NumEntries)*uint64(h.EntrySize) > 1<<20 {
		return Header{}, fmt.Errorf("%w at sector %d: %d entries of %d bytes", ErrNoTable, lba, h.NumEntries, h.EntrySize)
	}
	if h.FirstUsable > h.LastUsable {
		return Header{}, fmt.Errorf("%w at sector %d: usable sectors %d to %d", ErrNoTable, lba, h.FirstUsable, h.LastUsable)
	}
	return h, nil
}

// entrySectors is how many sectors the entry array takes.
func (h Header) entrySectors() uint64 {
	return (uint64(h.NumEntries)*uint64(h.EntrySize) + SectorSize - 1) / SectorSize
}

// ReadAt reads the table whose header is at sector lba, and checks the
// entry array's CRC.
func ReadAt(r io.ReaderAt, lba uint64) (*Table, error) {
	h, err := ReadHeader(r, lba)
	if err != nil {
		return nil, err
	}
	e := make([]byte, int(h.NumEntries)*int(h.EntrySize))
	if _, err := r.ReadAt(e, int64(h.EntriesLBA)*SectorSize); err != nil {
		return nil, fmt.Errorf("gpt: reading the entries at sector %d: %w", h.EntriesLBA, err)
	}
	if crc32.ChecksumIEEE(e) != h.EntriesCRC {
		return nil, fmt.Errorf("%w at sector %d: entry array CRC mismatch", ErrNoTable, lba)
	}
	return &Table{Header: h, Entries: e}, nil
}

// Read reads the primary table (header at sector 1).
func Read(r io.ReaderAt) (*Table, error) { return ReadAt(r, 1) }

// Partition returns partition n (1-based); an unused entry is an error.
func (t *Table) Partition(n int) (Partition, error) {
	if n < 1 || n > int(t.NumEntries) {
		return Partition{}, fmt.Errorf("gpt: no partition %d in %d entries", n, t.NumEntries)
	}
	e := t.Entries[(n-1)*int(t.EntrySize):]
	p := Partition{Number: n, First: binary.LittleEndian.Uint64(e[32:]), Last: binary.LittleEndian.Uint64(e[40:])}
	copy(p.TypeGUID[:], e[0:16])
	copy(p.UniqueGUID[:], e[16:32])
	if p.TypeGUID == ([16]byte{}) {
		return Partition{}, fmt.Errorf("gpt: partition %d is unused", n)
	}
	return p, nil
}

// Partitions returns the partitions in use.
func (t *Table) Partitions() []Partition {
	var ps []Partition
	for n := 1; n <= int(t.NumEntries); n++ {
		if p, err := t.Partition(n); err == nil {
			ps = append(ps, p)
		}
	}
	return ps
}

// header encodes h as a sector, with its CRC.
func (h Header) sector() []byte {
	b := make([]byte, SectorSize)
	le := binary.LittleEndian
	copy(b, signature)
	le.PutUint32(b[8:], h.revision)
	le.PutUint32(b[12:], headerSize)
	le.PutUint64(b[24:], h.MyLBA)
	le.PutUint64(b[32:], h.AlternateLBA)
	le.PutUint64(b[40:], h.FirstUsable)
	le.PutUint64(b[48:], h.LastUsable)
	copy(b[56:72], h.DiskGUID[:])
	le.PutUint64(b[72:], h.EntriesLBA)
	le.PutUint32(b[80:], h.NumEntries)
	le.PutUint32(b[84:], h.EntrySize)
	le.PutUint32(b[88:], h.EntriesCRC)
	le.PutUint32(b[16:], crc32.ChecksumIEEE(b[:headerSize]))
	return b
}

// padded is the entry array padded to whole sectors.
func padded(e []byte) []byte {
	b := make([]byte, (len(e)+SectorSize-1)/SectorSize*SectorSize)
	copy(b, e)
	return b
}

// ErrNotLast says that the partition to grow is not the last one on the
// disk, so that growing it would overlap another.
var ErrNotLast = errors.New("gpt: the partition is not the last on the disk")

// Grown is the layout Grow leaves: the partition's new extent.
type Grown struct {
	Partition
	// Changed says that Grow wrote anything.
	Changed bool
	// Finished says that the primary table already described the grown
	// partition but the work was not done: a Grow cut short, finished.
	Finished bool
}

// Grow makes partition n, which must be the last on the disk, end at the
// disk's end (aligned down to 1 MiB, before the backup table), moves the
// backup table to the disk's last sectors, and fixes the protective MBR's
// size, on a disk of sectors sectors. It writes in an order that keeps
// the primary table valid throughout:
//
//  1. the new entry array and backup header at the disk's end; Sync
//  2. the primary header, naming that same entry array (one sector); Sync
//  3. the new entry array at sector 2; Sync
//  4. the primary header naming sector 2 (one sector); Sync
//  5. the protective MBR's size (one sector); Sync
//
// Each state a cut leaves is a valid table for the old or the new layout,
// and Grow on it finishes the work; on a disk already grown it writes
// nothing. A disk smaller than its table is an error.
func Grow(dev Device, sectors uint64, n int) (Grown, error) {
	t, err := Read(dev)
	if err != nil {
		return Grown{}, err
	}
	grown, h, entries, err := plan(t, sectors, n)
	if err != nil {
		return Grown{Partition: grown}, err
	}
	es := t.entrySectors()
	backup := sectors - 1
	backupEntries := backup - es
	bh := h
	bh.MyLBA, bh.AlternateLBA, bh.EntriesLBA = backup, 1, backupEntries
	primary := h
	primary.EntriesLBA = entriesLBA

	changed, finished := false, false
	if !isDone(dev, primary, bh, t) {
		changed = true
		if old, _ := t.Partition(n); old == grown && t.LastUsable == h.LastUsable {
			finished = true
		}
		steps := []struct {
			data []byte
			lba  uint64
		}{
			{padded(entries), backupEntries}, {bh.sector(), backup}, {nil, 0},
			{func() []byte { s := h; s.EntriesLBA = backupEntries; return s.sector() }(), 1}, {nil, 0},
			{padded(entries), entriesLBA}, {nil, 0},
			{primary.sector(), 1}, {nil, 0},
		}
		for _, s := range steps {
			if s.data == nil {
				if err := dev.Sync(); err != nil {
					return Grown{Partition: grown}, fmt.Errorf("gpt: sync: %w", err)
				}
				continue
			}
			if _, err := dev.WriteAt(s.data, int64(s.lba)*SectorSize); err != nil {
				return Grown{Partition: grown}, fmt.Errorf("gpt: writing sector %d: %w", s.lba, err)
			}
		}
	}
	fixed, err := fixProtectiveMBR(dev, sectors)
	if err != nil {
		return Grown{Partition: grown}, err
	}
	return Grown{Partition: grown, Changed: changed || fixed, Finished: finished}, nil
}

// Plan returns partition n of t as Grow would leave it on a disk of
// sectors sectors, or Grow's error, without writing anything.
func Plan(t *Table, sectors uint64, n int) (Partition, error) {
	p, _, _, err := plan(t, sectors, n)
	return p, err
}

// plan computes partition n grown, the primary header and the entry array
// of the grown table. On an error the partition is as it is now.
func plan(t *Table, sectors uint64, n int) (Partition, Header, []byte, error) {
	p, err := t.Partition(n)
	if err != nil {
		return Partition{}, Header{}, nil, err
	}
	for _, q := range t.Partitions() {
		if q.Number != n && q.Last >= p.First {
			return p, Header{}, nil, fmt.Errorf("%w: partition %d ends at sector %d, after partition %d starts at %d", ErrNotLast, q.Number, q.Last, n, p.First)
		}
	}
	es := t.entrySectors()
	backup := sectors - 1
	lastUsable := backup - es - 1
	if p.Last > lastUsable || t.LastUsable > lastUsable || t.AlternateLBA > backup {
		return p, Header{}, nil, fmt.Errorf("gpt: the table is for a disk of %d sectors or more, the disk has %d", max(p.Last, t.LastUsable, t.AlternateLBA)+1, sectors)
	}
	if t.FirstUsable < entriesLBA+es {
		return p, Header{}, nil, fmt.Errorf("gpt: the first usable sector %d leaves no room for the entries at sector %d", t.FirstUsable, entriesLBA)
	}
	last := (lastUsable+1)/align*align - 1
	if last < p.Last {
		last = p.Last // never shrink; an unaligned end stays
	}
	grown := p
	grown.Last = last
	entries := append([]byte(nil), t.Entries...)
	binary.LittleEndian.PutUint64(entries[(n-1)*int(t.EntrySize)+40:], last)
	h := t.Header
	h.AlternateLBA, h.LastUsable, h.EntriesCRC = backup, lastUsable, crc32.ChecksumIEEE(entries)
	h.headerByteSize = headerSize
	return grown, h, entries, nil
}

// isDone reports whether the disk already holds the grown tables.
func isDone(dev Device, primary, backup Header, t *Table) bool {
	if t.Header != primary {
		return false
	}
	b, err := ReadAt(dev, backup.MyLBA)
	return err == nil && b.Header == backup && bytes.Equal(b.Entries, t.Entries)
}

// fixProtectiveMBR sets the size of a protective MBR's one 0xEE entry to
// cover the disk (at most 2^32-1 sectors), with the CHS end partitioning
// tools write. A hybrid MBR (other entries in use, as the Raspberry Pi's
// firmware needs) is left alone: its 0xEE entry covers the tables only.
func fixProtectiveMBR(dev Device, sectors uint64) (bool, error) {
	mbr := make([]byte, SectorSize)
	if _, err := dev.ReadAt(mbr, 0); err != nil {
		return false, fmt.Errorf("gpt: reading the MBR: %w", err)
	}
	if mbr[510] != 0x55 || mbr[511] != 0xAA {
		return false, nil
	}
	var e []byte
	for i := range 4 {
		x := mbr[446+16*i : 446+16*(i+1)]
		switch {
		case x[4] == 0xEE && binary.LittleEndian.Uint32(x[8:]) == 1 && e == nil:
			e = x
		case x[4] != 0:
			return false, nil // hybrid
		}
	}
	if e == nil {
		return false, nil
	}
	size := uint32(min(sectors-1, 0xFFFFFFFF))
	want := append([]byte(nil), e...)
	binary.LittleEndian.PutUint32(want[12:], size)
	copy(want[5:8], chs(uint64(size)))
	if bytes.Equal(want, e) {
		return false, nil
	}
	copy(e, want)
	if _, err := dev.WriteAt(mbr, 0); err != nil {
		return false, fmt.Errorf("gpt: writing the MBR: %w", err)
	}
	if err := dev.Sync(); err != nil {
		return false, fmt.Errorf("gpt: sync: %w", err)
	}
	return true, nil
}

// chs encodes sector lba as an MBR cylinder/head/sector address in the
// 255-head, 63-sector geometry, or the maximum past its reach.
func chs(lba uint64) []byte {
	const heads, secs = 255, 63
	c := lba / (heads * secs)
	if c > 1023 {
		return []byte{0xFE, 0xFF, 0xFF}
	}
	h := lba / secs % heads
	s := lba%secs + 1
	return []byte{byte(h), byte(s) | byte(c>>8)<<6, byte(c)}
}
