package permfs

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/passivesensor/sensor/internal/disktest"
)

// formatFile formats a sparse file of size bytes and returns its path.
func formatFile(t testing.TB, size int64, o Options) (string, Info) {
	t.Helper()
	path := sparseFile(t, size)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, err := Format(FileAt{File: f}, size, o)
	if err != nil {
		t.Fatalf("Format(%d bytes): %v", size, err)
	}
	return path, info
}

// fsck runs e2fsck -fn (forced, read-only: answers no to every fix) and
// fails the test unless it finds nothing wrong.
func fsck(t testing.TB, path string) string {
	t.Helper()
	out, err := exec.Command("e2fsck", "-fn", path).CombinedOutput()
	if err != nil {
		t.Fatalf("e2fsck -fn %s: %v\n%s", path, err, out)
	}
	return string(out)
}

// dumpe2fs reads the superblock and journal fields dumpe2fs -h prints.
func dumpe2fs(t testing.TB, path string) map[string]string {
	t.Helper()
	out, err := exec.Command("dumpe2fs", "-h", path).CombinedOutput()
	if err != nil {
		t.Fatalf("dumpe2fs -h %s: %v\n%s", path, err, out)
	}
	m := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}

func uuidString(u [16]byte) string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// checkFS checks a formatted file against e2fsprogs: e2fsck finds nothing
// wrong, and dumpe2fs shows the features, the journal and the counts
// Format reported.
func checkFS(t testing.TB, path string, size int64, info Info) {
	t.Helper()
	fsck(t, path)
	d := dumpe2fs(t, path)
	features := " " + d["Filesystem features"] + " "
	for _, f := range []string{"has_journal", "ext_attr", "dir_index", "filetype", "extent", "sparse_super",
		"large_file", "uninit_bg", "dir_nlink", "extra_isize"} {
		if !strings.Contains(features, " "+f+" ") {
			t.Errorf("%d bytes: feature %s missing from %q", size, f, d["Filesystem features"])
		}
	}
	want := map[string]string{
		"Filesystem UUID":      uuidString(info.UUID),
		"Filesystem state":     "clean",
		"Block size":           "4096",
		"Block count":          strconv.FormatUint(info.Blocks, 10),
		"Free blocks":          strconv.FormatUint(info.FreeBlocks, 10),
		"Inode count":          strconv.FormatUint(info.Inodes, 10),
		"Free inodes":          strconv.FormatUint(info.Inodes-firstIno, 10),
		"Journal inode":        "8",
		"Total journal blocks": strconv.FormatUint(info.JournalBlocks, 10),
		"Journal start":        "0",
		"Journal backup":       "inode blocks",
	}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("%d bytes: dumpe2fs %s = %q, want %q", size, k, d[k], v)
		}
	}
	// The file system uses the partition to its end, less at most a
	// last group too small to keep.
	if info.Bytes() > size || size-info.Bytes() >= blocksPerGroup*blockSize {
		t.Errorf("%d bytes: file system of %d bytes", size, info.Bytes())
	}
}

// sizes are partition sizes around the formatter's edges: the smallest,
// sizes that are not whole blocks, a single short group, a whole group, a
// second group too short to keep and one just long enough, odd group
// counts, a group descriptor table of two blocks (more than 128 groups),
// and the several gigabytes a box's disk gives /perm.
func sizes(t testing.TB) []int64 {
	t.Helper()
	const mib, gib = 1 << 20, 1 << 30
	s := []int64{MinSize, MinSize + 4095, MinSize + 4096, 9*mib + 512, 100 * mib, 128 * mib, 128*mib + 4096,
		384 * mib, 5*128*mib + mib, 7*128*mib - 40960, gib, 2*gib - mib, 2949 * mib, 10 * gib, 17*gib + 12345}
	// The second group's keep-or-drop edge: the first size whose
	// second group has room for its metadata and 50 blocks.
	for n := int64(blocksPerGroup + 1); ; n++ {
		g, err := layout(n * blockSize)
		if err != nil {
			t.Fatal(err)
		}
		if len(g.groups) == 2 {
			if prev, _ := layout((n - 1) * blockSize); len(prev.groups) != 1 || g.groups[1].end-g.groups[1].start != g.groups[1].used+50 {
				t.Fatalf("second group kept at %d blocks: %+v", n, g.groups[1])
			}
			s = append(s, (n-1)*blockSize, n*blockSize)
			break
		}
	}
	return s
}

// e2fsck and dumpe2fs agree with what Format wrote, for every size.
func TestFormatSizes(t *testing.T) {
	disktest.NeedTools(t, "e2fsck", "dumpe2fs")
	for _, size := range sizes(t) {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			path, info := formatFile(t, size, Options{})
			checkFS(t, path, size, info)
			t.Logf("%d bytes: %d blocks in %d groups, %d inodes, journal %d blocks", size, info.Blocks, info.Groups, info.Inodes, info.JournalBlocks)
		})
	}
}

// The smallest and the largest partitions are refused with an error that
// says so; nothing is written.
func TestFormatRefuses(t *testing.T) {
	for _, c := range []struct {
		size int64
		want error
	}{{MinSize - 1, ErrTooSmall}, {0, ErrTooSmall}, {MaxSize + blockSize, ErrTooLarge}} {
		dev := &recorder{}
		if _, err := Format(dev, c.size, Options{}); !errors.Is(err, c.want) {
			t.Errorf("Format(%d): %v, want %v", c.size, err, c.want)
		}
		if len(dev.writes) != 0 {
			t.Errorf("Format(%d) wrote %d times", c.size, len(dev.writes))
		}
	}
	if _, err := Format(&recorder{}, MinSize, Options{Label: "seventeen-bytes!!"}); err == nil {
		t.Error("a 17-byte label was accepted")
	}
}

// recorder is a Device that keeps what was written, in order.
type recorder struct {
	writes []recWrite
	syncs  []int // len(writes) at each Sync
}

type recWrite struct {
	off  int64
	data []byte
}

func (r *recorder) WriteAt(b []byte, off int64) (int, error) {
	r.writes = append(r.writes, recWrite{off, append([]byte(nil), b...)})
	return len(b), nil
}

func (r *recorder) Sync() error { r.syncs = append(r.syncs, len(r.writes)); return nil }

// Format leaves the partition's first 1024 bytes alone, writes the
// superblock's magic number in a single 512-byte sector after everything
// else is synced, and syncs again.
func TestFormatOrder(t *testing.T) {
	r := &recorder{}
	if _, err := Format(r, 64<<20, Options{}); err != nil {
		t.Fatal(err)
	}
	magicAt := -1
	for i, w := range r.writes {
		if w.off < superOffset {
			t.Errorf("write %d at byte %d touches the first 1024 bytes", i, w.off)
		}
		lo, hi := w.off, w.off+int64(len(w.data))
		if lo <= superOffset+magicOffset && superOffset+magicOffset+2 <= hi {
			m := w.data[superOffset+magicOffset-lo:]
			if m[0] == 0x53 && m[1] == 0xEF {
				if magicAt >= 0 {
					t.Errorf("the magic number is written twice (writes %d and %d)", magicAt, i)
				}
				magicAt = i
				if w.off != superOffset || len(w.data) != 512 {
					t.Errorf("the magic number goes in a write of %d bytes at %d, not one sector", len(w.data), w.off)
				}
			}
		}
	}
	if magicAt != len(r.writes)-1 {
		t.Fatalf("the magic number is write %d of %d, not the last", magicAt, len(r.writes))
	}
	if len(r.syncs) != 2 || r.syncs[0] != magicAt || r.syncs[1] != len(r.writes) {
		t.Fatalf("syncs after writes %v; want one before and one after write %d", r.syncs, magicAt)
	}
}

// The group descriptor checksum matches the value e2fsprogs' own test
// (lib/ext2fs/csum.c) expects for its descriptor.
func TestDescChecksum(t *testing.T) {
	uuid := [16]byte{0x4f, 0x25, 0xe8, 0xcf, 0xe7, 0x97, 0x48, 0x23, 0xbe, 0xfa, 0xa7, 0x88, 0x4b, 0xae, 0xec, 0xdb}
	d := make([]byte, descSize)
	le.PutUint32(d[0:], 124)
	le.PutUint32(d[4:], 125)
	le.PutUint32(d[8:], 126)
	le.PutUint16(d[12:], 31119)
	le.PutUint16(d[14:], 15701)
	le.PutUint16(d[16:], 2)
	if got := descChecksum(uuid, 0, d); got != 0xd3a4 {
		t.Fatalf("checksum %#04x, want 0xd3a4", got)
	}
	if descChecksum(uuid, 1, d) == 0xd3a4 {
		t.Fatal("group 1's checksum equals group 0's")
	}
}

// layout's invariants over many sizes: groups tile the file system,
// each group's metadata and the journal lie inside their group without
// overlapping, a kept last group has room for 50 data blocks, and the
// file system loses less than one group of the partition.
func TestLayoutProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	cases := []int64{MinSize, MaxSize}
	for range 3000 {
		cases = append(cases, MinSize+r.Int64N(64<<30))
	}
	for _, s := range sizes(t) {
		cases = append(cases, s)
	}
	for _, size := range cases {
		if err := checkLayout(size); err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
	}
}

func checkLayout(size int64) error {
	g, err := layout(size)
	if err != nil {
		return err
	}
	if g.blocks*blockSize > uint64(size) || uint64(size)-g.blocks*blockSize >= blocksPerGroup*blockSize+blockSize {
		return fmt.Errorf("%d blocks", g.blocks)
	}
	if g.inodesPerGroup%inodesPerBlock != 0 || g.inodesPerGroup > 8*blockSize || g.inodesPerGroup < firstIno+1 {
		return fmt.Errorf("%d inodes per group", g.inodesPerGroup)
	}
	var end, used uint64
	journalIn := -1
	for i, gr := range g.groups {
		if gr.start != end || gr.end <= gr.start || gr.end-gr.start > blocksPerGroup {
			return fmt.Errorf("group %d is [%d, %d) after %d", i, gr.start, gr.end, end)
		}
		end = gr.end
		if gr.super != hasSuper(uint64(i)) {
			return fmt.Errorf("group %d superblock copy %v", i, gr.super)
		}
		meta := gr.start
		if gr.super {
			meta += 1 + g.gdtBlocks
		}
		if gr.blockBitmap != meta || gr.inodeBitmap != meta+1 || gr.inodeTable != meta+2 || gr.firstFree != meta+2+g.tableBlocks || gr.firstFree > gr.end {
			return fmt.Errorf("group %d metadata %+v", i, gr)
		}
		if g.journalStart >= gr.start && g.journalStart < gr.end {
			journalIn = i
			if g.journalStart < gr.firstFree || g.journalStart+g.journalBlocks > gr.end {
				return fmt.Errorf("journal [%d, +%d) outside group %d's free blocks", g.journalStart, g.journalBlocks, i)
			}
		}
		if gr.used > gr.end-gr.start {
			return fmt.Errorf("group %d uses %d of %d blocks", i, gr.used, gr.end-gr.start)
		}
		used += gr.used
	}
	if end != g.blocks {
		return fmt.Errorf("groups end at %d of %d blocks", end, g.blocks)
	}
	if last := g.groups[len(g.groups)-1]; len(g.groups) > 1 && last.end-last.start < last.firstFree-last.start+50 {
		return fmt.Errorf("last group of %d blocks kept", last.end-last.start)
	}
	if journalIn < 0 || g.journalBlocks < minJournal || g.journalBlocks > maxJournal {
		return fmt.Errorf("journal of %d blocks at %d", g.journalBlocks, g.journalStart)
	}
	g0 := g.groups[0]
	if g.rootBlock != g0.firstFree || g.lpfBlock != g.rootBlock+1 ||
		(journalIn == 0 && g.journalStart < g.lpfBlock+lpfBlocks) {
		return fmt.Errorf("directories at %d and %d, journal at %d", g.rootBlock, g.lpfBlock, g.journalStart)
	}
	var meta uint64
	for _, gr := range g.groups {
		meta += gr.firstFree - gr.start
	}
	if used != meta+1+lpfBlocks+g.journalBlocks || g.freeBlocks() != g.blocks-used {
		return fmt.Errorf("%d blocks used, %d free of %d", used, g.freeBlocks(), g.blocks)
	}
	return nil
}

// FuzzFormat formats a partition of the size the fuzzer picks (sparse,
// up to 48 GiB) and has e2fsck check it.
func FuzzFormat(f *testing.F) {
	for _, s := range []int64{MinSize, MinSize + 1, 128<<20 + 4096, 300 << 20, 3 << 30} {
		f.Add(uint64(s))
	}
	f.Fuzz(func(t *testing.T, n uint64) {
		size := int64(n % (48 << 30))
		if err := checkLayout(size); size < MinSize {
			if !errors.Is(err, ErrTooSmall) {
				t.Fatalf("%d bytes: %v, want ErrTooSmall", size, err)
			}
			return
		} else if err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		disktest.NeedTools(t, "e2fsck", "dumpe2fs")
		path, info := formatFile(t, size, Options{})
		checkFS(t, path, size, info)
	})
}

// Options: the label, the UUID and the time given are the ones written.
func TestFormatOptions(t *testing.T) {
	disktest.NeedTools(t, "e2fsck", "dumpe2fs")
	uuid := [16]byte{0xde, 0xad, 0xbe, 0xef, 1, 2, 0x43, 4, 0x85, 6, 7, 8, 9, 10, 11, 12}
	when := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	path, info := formatFile(t, 64<<20, Options{Label: "spool", UUID: uuid, Now: when})
	checkFS(t, path, 64<<20, info)
	d := dumpe2fs(t, path)
	if d["Filesystem volume name"] != "spool" || d["Filesystem UUID"] != uuidString(uuid) {
		t.Errorf("label %q, UUID %q", d["Filesystem volume name"], d["Filesystem UUID"])
	}
	if want := when.Local().Format("Mon Jan _2 15:04:05 2006"); d["Filesystem created"] != want {
		t.Errorf("created %q, want %q", d["Filesystem created"], want)
	}
	out, err := exec.Command("debugfs", "-R", "stat <2>", path).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("2031")) {
		t.Errorf("root inode times are not %v: %v\n%s", when, err, out)
	}
}
