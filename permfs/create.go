package permfs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
)

// markMagic opens the mark Create leaves in the partition's first sector
// while it works. The sector is otherwise unused by ext4 (the boot
// sector area before the superblock at byte 1024).
var markMagic = []byte("passivesensor permfs: mkfs running\x00")

const markLen = 64 // magic, size (8 bytes), CRC-32 of both (4 bytes), padded

// mark is the sector Create writes first: the magic and the partition
// size the file system is being made for.
func mark(size int64) []byte {
	b := make([]byte, 512)
	copy(b, markMagic)
	binary.LittleEndian.PutUint64(b[len(markMagic):], uint64(size))
	binary.LittleEndian.PutUint32(b[len(markMagic)+8:], crc32.ChecksumIEEE(b[:len(markMagic)+8]))
	return b
}

// Create makes the file system on a partition of size bytes that holds
// none (see Detect), so that a power cut at any point leaves the partition
// either with the complete file system, or with no file system and the
// mark that Interrupted finds, whereupon Create may be run again:
//
//  1. the mark, in the partition's first sector; Sync
//  2. everything Format writes but the sector holding the superblock's
//     magic number; Sync
//  3. that sector; Sync: the file system exists
//  4. the mark cleared; Sync
//
// A cut between 3 and 4 leaves a complete file system with a stale mark
// beside it, which neither ext4 nor Interrupted heeds.
func Create(dev Device, size int64, o Options) (Info, error) {
	if _, err := layout(size); err != nil {
		return Info{}, err
	}
	if _, err := dev.WriteAt(mark(size), 0); err != nil {
		return Info{}, fmt.Errorf("permfs: writing the mark: %w", err)
	}
	if err := dev.Sync(); err != nil {
		return Info{}, fmt.Errorf("permfs: sync: %w", err)
	}
	info, err := Format(dev, size, o)
	if err != nil {
		return Info{}, err
	}
	if _, err := dev.WriteAt(make([]byte, 512), 0); err != nil {
		return Info{}, fmt.Errorf("permfs: clearing the mark: %w", err)
	}
	if err := dev.Sync(); err != nil {
		return Info{}, fmt.Errorf("permfs: sync: %w", err)
	}
	return info, nil
}

// Interrupted reports whether the partition (size bytes, read through r
// from its first byte) holds a Create cut short: the mark for that size
// and no superblock magic number. Such a partition holds nothing but what
// Create wrote, and Create may run on it again although Detect finds
// superblock copies there.
func Interrupted(r io.ReaderAt, size int64) (bool, error) {
	b := make([]byte, superOffset+superSize)
	if _, err := r.ReadAt(b, 0); err != nil {
		return false, fmt.Errorf("permfs: reading the partition's first blocks: %w", err)
	}
	return bytes.Equal(b[:markLen], mark(size)[:markLen]) &&
		binary.LittleEndian.Uint16(b[superOffset+magicOffset:]) != superMagic, nil
}
