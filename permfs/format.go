package permfs

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// Device is where a file system is written: a partition, or a disk seen
// from the partition's first byte. Writes are durable only after Sync.
type Device interface {
	io.WriterAt
	Sync() error
}

// Zeroer is a Device that can zero a byte range without writing buffers
// (BLKZEROOUT on a block device, a punched hole in a file). Format uses it
// for the journal when the device has it.
type Zeroer interface {
	Zero(off, n int64) error
}

// Options change what Format writes. The zero value is the appliance's.
type Options struct {
	// Label is the volume name (at most 16 bytes); default "perm".
	Label string
	// UUID is the file system's UUID; zero means a random one.
	UUID [16]byte
	// Now stamps the file system and its inodes; zero means time.Now().
	Now time.Time
}

// Info describes a file system Format wrote.
type Info struct {
	UUID           [16]byte
	Blocks         uint64 // 4 KiB blocks; the file system's size
	FreeBlocks     uint64
	Groups         int
	Inodes         uint64
	InodesPerGroup uint32
	JournalBlocks  uint64
}

// Bytes is the file system's size in bytes (at most the partition's).
func (i Info) Bytes() int64 { return int64(i.Blocks) * blockSize }

// Feature flags written to the superblock.
const (
	compatHasJournal = 0x4
	compatExtAttr    = 0x8
	compatDirIndex   = 0x20

	incompatFiletype = 0x2
	incompatExtents  = 0x40

	roCompatSparseSuper = 0x1
	roCompatLargeFile   = 0x2
	roCompatGDTCsum     = 0x10
	roCompatDirNlink    = 0x20
	roCompatExtraIsize  = 0x40

	bgInodeUninit = 0x1

	extentsFlag  = 0x80000 // EXT4_EXTENTS_FL
	extentMagic  = 0xF30A
	superMagic   = 0xEF53
	jbd2Magic    = 0xC03B3998
	jbd2SuperV2  = 4
	ftypeDir     = 2
	defmXattr    = 0x4 // user_xattr by default
	defmACL      = 0x8 // acl by default
	flagUnsigned = 0x2 // EXT2_FLAGS_UNSIGNED_HASH
	extraIsize   = 32
	superOffset  = 1024 // the primary superblock's byte offset
	superSize    = 1024
	magicOffset  = 0x38
)

// Format writes an empty ext4 file system with a journal filling size
// bytes of dev (rounded down to whole 4 KiB blocks, less a last block
// group too small to be worth its metadata), in this order: the journal
// zeroed, every group's bitmaps and superblock and descriptor copies, the
// root directory, lost+found and the journal superblock, then the primary
// superblock without its magic number; a Sync; then the one 512-byte
// sector holding the magic number, and a Sync. Until that sector is on the
// disk, nothing recognises the partition as ext4; after it, all of the file
// system is there. Bytes 0 to 1023 of the partition (where Create keeps
// its mark) are not written.
func Format(dev Device, size int64, o Options) (Info, error) {
	g, err := layout(size)
	if err != nil {
		return Info{}, err
	}
	if o.Label == "" {
		o.Label = "perm"
	}
	if len(o.Label) > 16 {
		return Info{}, fmt.Errorf("permfs: label %q longer than 16 bytes", o.Label)
	}
	if o.UUID == ([16]byte{}) {
		o.UUID = randomUUID()
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	w := &writer{dev: dev}

	// The journal: zeroed, so that no old data there looks like a log
	// to replay, then its superblock.
	if err := zeroRange(dev, int64(g.journalStart)*blockSize, int64(g.journalBlocks)*blockSize); err != nil {
		return Info{}, err
	}
	w.block(journalSuper(g, o.UUID), g.journalStart)

	gdt := groupDescriptors(g, o.UUID)
	super := superblock(g, o)
	for i, gr := range g.groups {
		w.block(blockBitmap(g, i), gr.blockBitmap)
		w.block(inodeBitmap(g, i), gr.inodeBitmap)
		if gr.super && i > 0 {
			sb := make([]byte, blockSize)
			copy(sb, super)
			binary.LittleEndian.PutUint16(sb[0x5A:], uint16(i))
			w.block(sb, gr.start)
		}
		if gr.super {
			w.at(gdt, int64(gr.start+1)*blockSize)
		}
	}
	w.block(inodeTableHead(g, o), g.groups[0].inodeTable)
	w.block(rootDir(), g.rootBlock)
	for i := range uint64(lpfBlocks) {
		w.block(lpfDir(i), g.lpfBlock+i)
	}
	// Block 0 past the first 1024 bytes: the superblock without its
	// magic number, then zeros.
	head := make([]byte, blockSize-superOffset)
	copy(head, super)
	binary.LittleEndian.PutUint16(head[magicOffset:], 0)
	w.at(head, superOffset)
	if w.err != nil {
		return Info{}, w.err
	}
	if err := dev.Sync(); err != nil {
		return Info{}, fmt.Errorf("permfs: sync: %w", err)
	}
	// The file system exists from this sector on.
	w.at(super[:512], superOffset)
	if w.err != nil {
		return Info{}, w.err
	}
	if err := dev.Sync(); err != nil {
		return Info{}, fmt.Errorf("permfs: sync: %w", err)
	}
	return Info{
		UUID: o.UUID, Blocks: g.blocks, FreeBlocks: g.freeBlocks(), Groups: len(g.groups),
		Inodes: g.inodes(), InodesPerGroup: g.inodesPerGroup, JournalBlocks: g.journalBlocks,
	}, nil
}

// zeroRange zeros n bytes of dev from off: with the device's Zero when it
// has one, else by writing zeros.
func zeroRange(dev Device, off, n int64) error {
	if z, ok := dev.(Zeroer); ok {
		if err := z.Zero(off, n); err != nil {
			return fmt.Errorf("permfs: zeroing %d bytes at %d: %w", n, off, err)
		}
		return nil
	}
	return writeZeros(dev, off, n)
}

// writeZeros writes n zero bytes to w from off.
func writeZeros(w io.WriterAt, off, n int64) error {
	zero := make([]byte, min(n, 1<<20))
	for done := int64(0); done < n; {
		k := min(int64(len(zero)), n-done)
		if _, err := w.WriteAt(zero[:k], off+done); err != nil {
			return fmt.Errorf("permfs: zeroing at %d: %w", off+done, err)
		}
		done += k
	}
	return nil
}

// writer writes to a Device, keeping the first error.
type writer struct {
	dev Device
	err error
}

func (w *writer) at(b []byte, off int64) {
	if w.err != nil {
		return
	}
	if _, err := w.dev.WriteAt(b, off); err != nil {
		w.err = fmt.Errorf("permfs: writing %d bytes at %d: %w", len(b), off, err)
	}
}

func (w *writer) block(b []byte, blk uint64) { w.at(b, int64(blk)*blockSize) }

func randomUUID() (u [16]byte) {
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return u
}

var le = binary.LittleEndian

// superblock is the primary superblock (1024 bytes, group 0, with its
// magic number); backups differ in s_block_group_nr.
func superblock(g *geometry, o Options) []byte {
	b := make([]byte, superSize)
	now := uint32(o.Now.Unix())
	le.PutUint32(b[0x00:], uint32(g.inodes()))
	le.PutUint32(b[0x04:], uint32(g.blocks))
	le.PutUint32(b[0x08:], 0) // no blocks reserved for root: every service runs as root
	le.PutUint32(b[0x0C:], uint32(g.freeBlocks()))
	le.PutUint32(b[0x10:], uint32(g.inodes()-firstIno))
	le.PutUint32(b[0x14:], 0) // first data block
	le.PutUint32(b[0x18:], logBlockSize)
	le.PutUint32(b[0x1C:], logBlockSize)
	le.PutUint32(b[0x20:], blocksPerGroup)
	le.PutUint32(b[0x24:], blocksPerGroup)
	le.PutUint32(b[0x28:], g.inodesPerGroup)
	le.PutUint32(b[0x30:], now)    // s_wtime
	le.PutUint16(b[0x36:], 0xFFFF) // s_max_mnt_count: no forced checks
	le.PutUint16(b[0x38:], superMagic)
	le.PutUint16(b[0x3A:], 1) // s_state: clean
	le.PutUint16(b[0x3C:], 1) // s_errors: continue
	le.PutUint32(b[0x40:], now)
	le.PutUint32(b[0x4C:], 1) // s_rev_level: dynamic
	le.PutUint32(b[0x54:], firstIno)
	le.PutUint16(b[0x58:], inodeSize)
	le.PutUint32(b[0x5C:], compatHasJournal|compatExtAttr|compatDirIndex)
	le.PutUint32(b[0x60:], incompatFiletype|incompatExtents)
	le.PutUint32(b[0x64:], roCompatSparseSuper|roCompatLargeFile|roCompatGDTCsum|roCompatDirNlink|roCompatExtraIsize)
	copy(b[0x68:0x78], o.UUID[:])
	copy(b[0x78:0x88], o.Label)
	le.PutUint32(b[0xE0:], journIno)
	seed := randomUUID()
	copy(b[0xEC:0xFC], seed[:]) // s_hash_seed
	b[0xFC] = 1                 // s_def_hash_version: half_md4
	b[0xFD] = 1                 // s_jnl_backup_type: EXT3_JNL_BACKUP_BLOCKS
	le.PutUint32(b[0x100:], defmXattr|defmACL)
	le.PutUint32(b[0x108:], now) // s_mkfs_time
	// s_jnl_blocks: a copy of the journal inode's i_block, then i_size_high, i_size.
	copy(b[0x10C:0x10C+60], journalExtents(g))
	le.PutUint32(b[0x10C+60:], uint32(g.journalBlocks*blockSize>>32))
	le.PutUint32(b[0x10C+64:], uint32(g.journalBlocks*blockSize))
	le.PutUint16(b[0x15C:], extraIsize) // s_min_extra_isize
	le.PutUint16(b[0x15E:], extraIsize) // s_want_extra_isize
	le.PutUint32(b[0x160:], flagUnsigned)
	return b
}

// groupDescriptors is the group descriptor table, padded to whole blocks,
// each descriptor with its uninit_bg checksum.
func groupDescriptors(g *geometry, uuid [16]byte) []byte {
	b := make([]byte, g.gdtBlocks*blockSize)
	for i, gr := range g.groups {
		d := b[i*descSize : (i+1)*descSize]
		le.PutUint32(d[0x00:], uint32(gr.blockBitmap))
		le.PutUint32(d[0x04:], uint32(gr.inodeBitmap))
		le.PutUint32(d[0x08:], uint32(gr.inodeTable))
		le.PutUint16(d[0x0C:], uint16(gr.end-gr.start-gr.used))
		if i == 0 {
			// Inodes 1 to 11 are in use (the reserved ones and
			// lost+found); the rest of the table is unused.
			le.PutUint16(d[0x0E:], uint16(g.inodesPerGroup-firstIno))
			le.PutUint16(d[0x10:], 2) // root and lost+found
			le.PutUint16(d[0x1C:], uint16(g.inodesPerGroup-firstIno))
		} else {
			le.PutUint16(d[0x0E:], uint16(g.inodesPerGroup))
			le.PutUint16(d[0x12:], bgInodeUninit)
			le.PutUint16(d[0x1C:], uint16(g.inodesPerGroup))
		}
		le.PutUint16(d[0x1E:], descChecksum(uuid, uint32(i), d))
	}
	return b
}

// descChecksum is a 32-byte group descriptor's uninit_bg checksum:
// CRC-16 over the file system UUID, the group number (little endian) and
// the descriptor up to its checksum field.
func descChecksum(uuid [16]byte, group uint32, d []byte) uint16 {
	var n [4]byte
	le.PutUint32(n[:], group)
	crc := crc16(0xFFFF, uuid[:])
	crc = crc16(crc, n[:])
	return crc16(crc, d[:0x1E])
}

// setBits sets bits [from, to) of a bitmap.
func setBits(b []byte, from, to uint64) {
	for i := from; i < to; i++ {
		b[i/8] |= 1 << (i % 8)
	}
}

// blockBitmap is group i's block bitmap: its metadata (and in group 0
// the directories, and where it lies the journal) in use, and the bits
// past the end of a short last group set, as the kernel expects.
func blockBitmap(g *geometry, i int) []byte {
	gr := g.groups[i]
	b := make([]byte, blockSize)
	setBits(b, 0, gr.firstFree-gr.start)
	if i == 0 {
		setBits(b, g.rootBlock-gr.start, g.lpfBlock+lpfBlocks-gr.start)
	}
	if g.journalStart >= gr.start && g.journalStart < gr.end {
		setBits(b, g.journalStart-gr.start, g.journalStart+g.journalBlocks-gr.start)
	}
	setBits(b, gr.end-gr.start, 8*blockSize)
	return b
}

// inodeBitmap is group i's inode bitmap: in group 0 inodes 1 to 11 in
// use; the bits past inodes_per_group set.
func inodeBitmap(g *geometry, i int) []byte {
	b := make([]byte, blockSize)
	if i == 0 {
		setBits(b, 0, firstIno)
	}
	setBits(b, uint64(g.inodesPerGroup), 8*blockSize)
	return b
}

// extents is an in-inode extent tree (i_block, 60 bytes) of one extent:
// count blocks from start, file block 0 on.
func extents(start, count uint64) []byte {
	b := make([]byte, 60)
	le.PutUint16(b[0:], extentMagic)
	le.PutUint16(b[2:], 1) // entries
	le.PutUint16(b[4:], 4) // max entries in the inode
	le.PutUint16(b[6:], 0) // depth: leaves
	le.PutUint32(b[12:], 0)
	le.PutUint16(b[16:], uint16(count))
	le.PutUint16(b[18:], uint16(start>>32))
	le.PutUint32(b[20:], uint32(start))
	return b
}

func journalExtents(g *geometry) []byte { return extents(g.journalStart, g.journalBlocks) }

// inode is a 256-byte inode whose data are count blocks from start.
func inode(mode uint16, links uint16, size uint64, start, count uint64, now time.Time) []byte {
	b := make([]byte, inodeSize)
	sec := now.Unix()
	t := uint32(sec)
	// The extra time fields hold two epoch bits (past 2038) and the
	// nanoseconds shifted left by two.
	extra := uint32((sec-int64(int32(sec)))>>32)&3 | uint32(now.Nanosecond())<<2
	le.PutUint16(b[0x00:], mode)
	le.PutUint32(b[0x04:], uint32(size))
	le.PutUint32(b[0x08:], t) // atime
	le.PutUint32(b[0x0C:], t) // ctime
	le.PutUint32(b[0x10:], t) // mtime
	le.PutUint16(b[0x1A:], links)
	le.PutUint32(b[0x1C:], uint32(count*blockSize/512))
	le.PutUint32(b[0x20:], extentsFlag)
	copy(b[0x28:0x64], extents(start, count))
	le.PutUint32(b[0x6C:], uint32(size>>32))
	le.PutUint16(b[0x80:], extraIsize)
	le.PutUint32(b[0x84:], extra) // ctime_extra
	le.PutUint32(b[0x88:], extra) // mtime_extra
	le.PutUint32(b[0x8C:], extra) // atime_extra
	le.PutUint32(b[0x90:], t)     // crtime
	le.PutUint32(b[0x94:], extra) // crtime_extra
	return b
}

// inodeTableHead is the first block of group 0's inode table: inodes 1
// to 16, of which the root directory (2), the journal (8) and lost+found
// (11) are written and the other reserved ones left zero.
func inodeTableHead(g *geometry, o Options) []byte {
	b := make([]byte, blockSize)
	put := func(ino int, in []byte) { copy(b[(ino-1)*inodeSize:], in) }
	put(rootIno, inode(0o040755, 3, blockSize, g.rootBlock, 1, o.Now))
	put(journIno, inode(0o100600, 1, g.journalBlocks*blockSize, g.journalStart, g.journalBlocks, o.Now))
	put(firstIno, inode(0o040700, 2, lpfBlocks*blockSize, g.lpfBlock, lpfBlocks, o.Now))
	return b
}

// dirent appends a directory entry taking recLen bytes.
func dirent(b []byte, ino uint32, recLen int, name string, ftype byte) []byte {
	e := make([]byte, recLen)
	le.PutUint32(e[0:], ino)
	le.PutUint16(e[4:], uint16(recLen))
	e[6] = byte(len(name))
	e[7] = ftype
	copy(e[8:], name)
	return append(b, e...)
}

// rootDir is the root directory's block: ".", ".." and lost+found.
func rootDir() []byte {
	b := dirent(nil, rootIno, 12, ".", ftypeDir)
	b = dirent(b, rootIno, 12, "..", ftypeDir)
	return dirent(b, firstIno, blockSize-24, "lost+found", ftypeDir)
}

// lpfDir is block i of lost+found: "." and ".." in the first, the others
// one empty entry each.
func lpfDir(i uint64) []byte {
	if i > 0 {
		return dirent(nil, 0, blockSize, "", 0)
	}
	b := dirent(nil, firstIno, 12, ".", ftypeDir)
	return dirent(b, rootIno, blockSize-12, "..", ftypeDir)
}

// journalSuper is the JBD2 (v2) superblock of an empty journal, big
// endian as JBD2 writes everything: the log starts at journal block 1
// with transaction 1, and s_start 0 says there is nothing to replay.
func journalSuper(g *geometry, uuid [16]byte) []byte {
	be := binary.BigEndian
	b := make([]byte, blockSize)
	be.PutUint32(b[0x00:], jbd2Magic)
	be.PutUint32(b[0x04:], jbd2SuperV2)
	be.PutUint32(b[0x0C:], blockSize)
	be.PutUint32(b[0x10:], uint32(g.journalBlocks)) // s_maxlen
	be.PutUint32(b[0x14:], 1)                       // s_first
	be.PutUint32(b[0x18:], 1)                       // s_sequence
	copy(b[0x30:0x40], uuid[:])
	be.PutUint32(b[0x40:], 1) // s_nr_users
	return b
}
