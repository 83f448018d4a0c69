// Package permfs creates the appliance's /perm file system: ext4 with a
// journal, written in pure Go (the image carries no e2fsprogs), in an
// order that a power cut at any point leaves either no file system or the
// whole of it. It also recognises what a partition already holds, so that
// nothing that might carry data is ever formatted.
//
// The file system is deliberately plain: 4 KiB blocks, 32768 blocks per
// group, sparse_super, no flex_bg and no resize inode, 256-byte inodes (one
// per 16 KiB), and the features has_journal, ext_attr, dir_index,
// filetype, extents, large_file, dir_nlink, extra_isize and uninit_bg.
// The journal (inode 8, JBD2) is one contiguous extent of 4 to 64 MiB.
// Inode tables are left to the kernel to zero after the first mount
// (uninit_bg lazy initialisation), as mke2fs leaves them.
package permfs

import (
	"errors"
	"fmt"
)

const (
	blockSize      = 4096
	logBlockSize   = 2 // block size = 1024 << 2
	blocksPerGroup = 8 * blockSize
	inodeSize      = 256
	inodesPerBlock = blockSize / inodeSize
	bytesPerInode  = 16384
	descSize       = 32
	// firstIno is the first inode not reserved by ext4; lost+found gets it.
	firstIno = 11
	rootIno  = 2
	journIno = 8
	// lpfBlocks is lost+found's size, as mke2fs makes it: 16 KiB, so that
	// e2fsck can reconnect files without allocating.
	lpfBlocks = 4
	// minJournal is JBD2's smallest journal, in blocks.
	minJournal = 1024
	// maxJournal caps the journal at 64 MiB: it fits in one block group
	// and is quick to zero; /perm sees small writes.
	maxJournal = 16384
	// MinSize is the smallest partition Format accepts: room for the
	// metadata and the smallest journal, as mke2fs requires.
	MinSize = 2048 * blockSize
	// MaxSize is the largest: 32-bit block numbers (no 64bit feature).
	MaxSize = (1<<32 - 1) * blockSize
)

// ErrTooSmall and ErrTooLarge say that a partition's size is outside
// [MinSize, MaxSize].
var (
	ErrTooSmall = errors.New("permfs: partition too small for an ext4 file system with a journal")
	ErrTooLarge = errors.New("permfs: partition larger than 16 TiB (no 64bit feature)")
)

// group is where one block group's metadata lies, in blocks.
type group struct {
	start, end  uint64 // blocks [start, end)
	super       bool   // holds a superblock and group descriptor copy
	blockBitmap uint64
	inodeBitmap uint64
	inodeTable  uint64
	firstFree   uint64 // first block after the group's metadata
	used        uint64 // blocks in use: metadata, and in group 0 the directories and journal
}

// geometry is the whole file system's layout.
type geometry struct {
	blocks         uint64
	groups         []group
	inodesPerGroup uint32
	tableBlocks    uint64 // inode table blocks per group
	gdtBlocks      uint64 // group descriptor table blocks
	rootBlock      uint64
	lpfBlock       uint64 // first of lpfBlocks
	journalStart   uint64
	journalBlocks  uint64
}

// hasSuper says whether group g keeps a superblock copy under
// sparse_super: groups 0 and 1 and the powers of 3, 5 and 7.
func hasSuper(g uint64) bool {
	if g <= 1 {
		return true
	}
	for _, b := range []uint64{3, 5, 7} {
		n := b
		for n < g {
			n *= b
		}
		if n == g {
			return true
		}
	}
	return false
}

// journalSize is the journal mke2fs would make for a file system of n
// blocks, capped at maxJournal.
func journalSize(n uint64) uint64 {
	switch {
	case n < 32768:
		return minJournal
	case n < 256*1024:
		return 4096
	case n < 512*1024:
		return 8192
	default:
		return maxJournal
	}
}

func ceilDiv(a, b uint64) uint64 { return (a + b - 1) / b }

// layout computes the geometry of a file system filling size bytes. As
// mke2fs does, it drops a last group too small to hold its own metadata
// and 50 blocks of data.
func layout(size int64) (*geometry, error) {
	if size < MinSize {
		return nil, fmt.Errorf("%w: %d bytes, need %d", ErrTooSmall, size, MinSize)
	}
	if size > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, size)
	}
	n := uint64(size) / blockSize
	for {
		g := &geometry{blocks: n}
		count := ceilDiv(n, blocksPerGroup)
		inodes := n * blockSize / bytesPerInode
		ipg := ceilDiv(inodes, count)
		ipg = ceilDiv(ipg, inodesPerBlock) * inodesPerBlock
		ipg = min(ipg, 8*blockSize)
		g.inodesPerGroup = uint32(ipg)
		g.tableBlocks = ipg / inodesPerBlock
		g.gdtBlocks = ceilDiv(count*descSize, blockSize)
		g.groups = make([]group, count)
		for i := range g.groups {
			gr := &g.groups[i]
			gr.start = uint64(i) * blocksPerGroup
			gr.end = min(gr.start+blocksPerGroup, n)
			cur := gr.start
			if hasSuper(uint64(i)) {
				gr.super = true
				cur += 1 + g.gdtBlocks
			}
			gr.blockBitmap, gr.inodeBitmap, gr.inodeTable = cur, cur+1, cur+2
			gr.firstFree = cur + 2 + g.tableBlocks
			gr.used = gr.firstFree - gr.start
		}
		last := &g.groups[count-1]
		if rem := last.end - last.start; count > 1 && rem < last.used+50 {
			n -= rem
			continue
		}
		// Group 0: the root directory and lost+found after the inode
		// table; the journal in the first group with room for it.
		g0 := &g.groups[0]
		g.rootBlock = g0.firstFree
		g.lpfBlock = g.rootBlock + 1
		g0.used += 1 + lpfBlocks
		g.journalBlocks = journalSize(n)
		for i := range g.groups {
			gr := &g.groups[i]
			from := gr.start + gr.used // group 0's directories are counted in used
			if gr.end >= from && gr.end-from >= g.journalBlocks {
				g.journalStart = from
				gr.used += g.journalBlocks
				break
			}
		}
		if g.journalStart == 0 {
			return nil, fmt.Errorf("%w: no group has %d free blocks for the journal", ErrTooSmall, g.journalBlocks)
		}
		return g, nil
	}
}

// freeBlocks is the number of free blocks in the file system.
func (g *geometry) freeBlocks() uint64 {
	var free uint64
	for _, gr := range g.groups {
		free += gr.end - gr.start - gr.used
	}
	return free
}

// inodes is the number of inodes in the file system.
func (g *geometry) inodes() uint64 { return uint64(g.inodesPerGroup) * uint64(len(g.groups)) }
