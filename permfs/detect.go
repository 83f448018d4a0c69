package permfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Signature is a sign that a partition holds data: a file system's
// superblock (or a copy of one), a boot sector, an encrypted volume.
type Signature struct {
	What   string // e.g. "ext2/3/4 superblock", "ext2/3/4 backup superblock (4096-byte blocks, group 3)"
	Offset int64  // byte offset in the partition
}

func (s Signature) String() string { return fmt.Sprintf("%s at byte %d", s.What, s.Offset) }

// Detect looks for signs of data in a partition of size bytes, read
// through r from its first byte: ext2/3/4 superblocks, the primary and
// every backup copy an ext file system of 1 to 64 KiB blocks (with
// sparse_super or without) would keep within size, since a partition
// whose start was overwritten may still hold a file system further on; a
// boot sector (FAT, exFAT, NTFS); bcache and bcachefs, XFS, btrfs, LUKS,
// swap and squashfs. An empty result means the partition may be
// formatted without losing anything a file system could find.
func Detect(r io.ReaderAt, size int64) ([]Signature, error) {
	var found []Signature
	read := func(off int64, n int) ([]byte, error) {
		if off < 0 || off+int64(n) > size {
			return nil, nil
		}
		b := make([]byte, n)
		if _, err := r.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("permfs: reading %d bytes at %d: %w", n, off, err)
		}
		return b, nil
	}
	// ext2/3/4: the primary superblock, whatever the block size.
	if sb, err := read(superOffset, superSize); err != nil {
		return nil, err
	} else if sb != nil && binary.LittleEndian.Uint16(sb[magicOffset:]) == superMagic {
		found = append(found, Signature{"ext2/3/4 superblock", superOffset})
	}
	// Backup superblocks: in group g of a file system of bs-byte blocks
	// with 8*bs blocks per group, at the group's first block (block 1
	// on from the group start for 1 KiB blocks, whose block 0 is the boot
	// block). Group 1 has one with or without sparse_super.
	for log := uint32(0); log <= 6; log++ {
		bs := int64(1024) << log
		perGroup := 8 * bs * bs
		first := int64(0)
		if bs == 1024 {
			first = 1024
		}
		for g := int64(1); first+g*perGroup+superSize <= size; g++ {
			if !hasSuper(uint64(g)) {
				continue
			}
			off := first + g*perGroup
			sb, err := read(off, superSize)
			if err != nil {
				return nil, err
			}
			if binary.LittleEndian.Uint16(sb[magicOffset:]) == superMagic && binary.LittleEndian.Uint32(sb[0x18:]) == log {
				found = append(found, Signature{fmt.Sprintf("ext2/3/4 backup superblock (%d-byte blocks, group %d)", bs, g), off})
			}
		}
	}
	// Fixed-place signatures of other formats.
	for _, s := range []struct {
		what  string
		off   int64
		magic []byte
	}{
		{"boot sector (FAT, exFAT or NTFS)", 510, []byte{0x55, 0xAA}},
		{"bcache/bcachefs superblock", 4096 + 24, []byte{0xc6, 0x85, 0x73, 0xf6, 0x4e, 0x1a, 0x45, 0xca, 0x82, 0x65, 0xf5, 0x7f, 0x48, 0xba, 0x6d, 0x81}},
		{"bcachefs superblock", 4096 + 24, []byte{0xc6, 0x85, 0x73, 0xf6, 0x66, 0xce, 0x90, 0xa9, 0xd9, 0x6a, 0x60, 0xcf, 0x80, 0x3d, 0xf7, 0xef}},
		{"XFS superblock", 0, []byte("XFSB")},
		{"btrfs superblock", 65536 + 64, []byte("_BHRfS_M")},
		{"LUKS header", 0, []byte("LUKS\xba\xbe")},
		{"swap area", 4096 - 10, []byte("SWAPSPACE2")},
		{"squashfs", 0, []byte("hsqs")},
	} {
		b, err := read(s.off, len(s.magic))
		if err != nil {
			return nil, err
		}
		if b != nil && bytes.Equal(b, s.magic) {
			found = append(found, Signature{s.what, s.off})
		}
	}
	return found, nil
}
