package gpt_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/gpt"
	"github.com/passivesensor/sensor/internal/disktest"
	"github.com/passivesensor/sensor/internal/powercut"
)

const (
	mib   = 1 << 20
	align = 2048 // sectors in 1 MiB: partition ends are aligned to it
)

// verify runs sgdisk -v and fails unless it finds no problems and, for a
// grown disk, has no caution to give either (the image's own partition 4
// ends where the image ends, not on a 1 MiB boundary).
func verify(t *testing.T, path string, grown bool) {
	t.Helper()
	out, err := exec.Command("sgdisk", "-v", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No problems found") || grown && strings.Contains(string(out), "Caution") {
		t.Fatalf("sgdisk -v %s: %v\n%s", path, err, out)
	}
}

// sgdiskPart reads partition n's first and last sectors as sgdisk -i
// prints them.
func sgdiskPart(t *testing.T, path string, n int) (first, last uint64) {
	t.Helper()
	out, err := exec.Command("sgdisk", "-i", fmt.Sprint(n), path).CombinedOutput()
	if err != nil {
		t.Fatalf("sgdisk -i %d: %v: %s", n, err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		fmt.Sscanf(l, "First sector: %d", &first)
		fmt.Sscanf(l, "Last sector: %d", &last)
	}
	return first, last
}

// A 2 GiB image on a 4 GiB disk: partition 4 ends at the last 1 MiB
// boundary before the backup table, which moves to the disk's end;
// sgdisk finds no problem, partitions 1 to 3 are as they were, and the
// protective MBR covers the disk as sgdisk writes it. A second Grow
// writes nothing.
func TestGrow(t *testing.T) {
	disktest.NeedTools(t, "sgdisk")
	for _, disk := range []int64{4 << 30, 4<<30 + 7*512, 3<<30 + 12345*512} {
		path := disktest.Image(t, disk, false)
		before := map[int][2]uint64{}
		for n := 1; n <= 3; n++ {
			f, l := sgdiskPart(t, path, n)
			before[n] = [2]uint64{f, l}
		}
		f := disktest.Open(t, path)
		sectors := uint64(disk / 512)
		g, err := gpt.Grow(fileDev{f}, sectors, 4)
		if err != nil {
			t.Fatal(err)
		}
		verify(t, path, true)
		first, last := sgdiskPart(t, path, 4)
		if !g.Changed || g.First != first || g.Last != last || (last+1)%align != 0 || last > sectors-34 || sectors-34-last >= align {
			t.Fatalf("disk of %d sectors: grown %+v, sgdisk says %d-%d", sectors, g, first, last)
		}
		for n := 1; n <= 3; n++ {
			if f, l := sgdiskPart(t, path, n); before[n] != [2]uint64{f, l} {
				t.Errorf("partition %d moved from %v to %d-%d", n, before[n], f, l)
			}
		}
		// The protective MBR as sgdisk writes it for this disk.
		ref := filepath.Join(t.TempDir(), "ref.img")
		os.WriteFile(ref, nil, 0o644)
		os.Truncate(ref, disk)
		if out, err := exec.Command("sgdisk", "-o", ref).CombinedOutput(); err != nil {
			t.Fatalf("sgdisk -o: %v: %s", err, out)
		}
		if got, want := sector0(t, path)[446:512], sector0(t, ref)[446:512]; string(got) != string(want) {
			t.Errorf("protective MBR\n got %x\nwant %x", got, want)
		}
		if g, err := gpt.Grow(fileDev{f}, sectors, 4); err != nil || g.Changed {
			t.Fatalf("second Grow: %+v %v", g, err)
		}
	}
}

func sector0(t *testing.T, path string) []byte {
	b := make([]byte, 512)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.ReadAt(b, 0)
	return b
}

type fileDev struct{ *os.File }

// A disk the size the image was made for is left alone; a smaller disk,
// a partition that is not the last and a disk without a table are errors
// and nothing is written.
func TestGrowRefuses(t *testing.T) {
	disktest.NeedTools(t, "sgdisk")
	path := disktest.Image(t, disktest.ImageSize, false)
	f := disktest.Open(t, path)
	if g, err := gpt.Grow(fileDev{f}, disktest.ImageSize/512, 4); err != nil || g.Changed {
		t.Fatalf("same size: %+v %v", g, err)
	}
	verify(t, path, false)
	if _, err := gpt.Grow(fileDev{f}, disktest.ImageSize/512-100, 4); err == nil || !strings.Contains(err.Error(), "disk has") {
		t.Fatalf("smaller disk: %v", err)
	}
	if _, err := gpt.Grow(fileDev{f}, 2*disktest.ImageSize/512, 3); !errors.Is(err, gpt.ErrNotLast) {
		t.Fatalf("partition 3: %v", err)
	}
	verify(t, path, false)
	blank := filepath.Join(t.TempDir(), "blank.img")
	os.WriteFile(blank, make([]byte, 1<<20), 0o644)
	if _, err := gpt.Grow(fileDev{disktest.Open(t, blank)}, 2048, 4); !errors.Is(err, gpt.ErrNoTable) {
		t.Fatalf("blank disk: %v", err)
	}
}

// The Raspberry Pi's hybrid MBR stays as it was.
func TestGrowHybrid(t *testing.T) {
	disktest.NeedTools(t, "sgdisk")
	path := disktest.Image(t, 4<<30, true)
	mbr := sector0(t, path)
	if _, err := gpt.Grow(fileDev{disktest.Open(t, path)}, 4<<30/512, 4); err != nil {
		t.Fatal(err)
	}
	if string(sector0(t, path)) != string(mbr) {
		t.Fatal("the hybrid MBR changed")
	}
	first, last := sgdiskPart(t, path, 4)
	if last < 4<<30/512-34-align || first == 0 {
		t.Fatalf("partition 4 is %d-%d", first, last)
	}
}

// linuxPartitions reads the partitions as Linux's GPT parser decides
// (block/partitions/efi.c, without the "gpt" option): a valid protective
// or hybrid MBR, then the primary header at sector 1 and its entries,
// checked as is_gpt_valid checks them; the backup only counts when the
// primary is valid. It returns nil where Linux would find no GPT: a disk
// that would not boot.
func linuxPartitions(t *testing.T, path string) []gpt.Partition {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	lastLBA := uint64(st.Size()/512 - 1)
	mbr := make([]byte, 512)
	f.ReadAt(mbr, 0)
	pmbr := false
	for i := range 4 {
		e := mbr[446+16*i:]
		if e[4] == 0xee && binary.LittleEndian.Uint32(e[8:]) == 1 {
			pmbr = true
		}
	}
	if mbr[510] != 0x55 || mbr[511] != 0xaa || !pmbr {
		return nil
	}
	b := make([]byte, 512)
	f.ReadAt(b, 512)
	le := binary.LittleEndian
	hs := le.Uint32(b[12:])
	if string(b[:8]) != "EFI PART" || hs < 92 || hs > 512 {
		return nil
	}
	crc := le.Uint32(b[16:])
	le.PutUint32(b[16:], 0)
	if crc32.ChecksumIEEE(b[:hs]) != crc || le.Uint64(b[24:]) != 1 {
		return nil
	}
	first, last := le.Uint64(b[40:]), le.Uint64(b[48:])
	if first > lastLBA || last > lastLBA || last < first || le.Uint32(b[84:]) != 128 {
		return nil
	}
	n := le.Uint32(b[80:])
	e := make([]byte, n*128)
	f.ReadAt(e, int64(le.Uint64(b[72:]))*512)
	if crc32.ChecksumIEEE(e) != le.Uint32(b[88:]) {
		return nil
	}
	t2 := &gpt.Table{Header: gpt.Header{NumEntries: n, EntrySize: 128}, Entries: e}
	return t2.Partitions()
}

// A power cut at every write and flush of Grow, with the cached sectors
// surviving at random, leaves a disk whose primary table Linux accepts
// with partitions 1 to 3 unchanged and partition 4 either as it was or
// grown; Grow run again on it finishes, and sgdisk finds no problem.
func TestGrowCut(t *testing.T) {
	disktest.NeedTools(t, "sgdisk")
	const disk = 4<<30 + 3*mib
	template := disktest.Image(t, disk, false)
	fresh := func() string { return disktest.Copy(t, template) }
	probe := fresh()
	want := linuxPartitions(t, probe)
	if len(want) != 4 {
		t.Fatalf("the image's partitions as Linux reads them: %+v", want)
	}
	d, err := powercut.Open(probe, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gpt.Grow(d, disk/512, 4)
	if err != nil {
		t.Fatal(err)
	}
	ops := d.Ops()
	d.Close()
	states := map[string]int{}
	for cut := 1; cut <= ops; cut++ {
		for seed := range uint64(4) {
			path := fresh()
			d, err := powercut.Open(path, cut, seed)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := gpt.Grow(d, disk/512, 4); !errors.Is(err, powercut.ErrCut) {
				t.Fatalf("cut at operation %d of %d: %v", cut, ops, err)
			}
			d.Close()
			got := linuxPartitions(t, path)
			if len(got) != 4 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
				t.Fatalf("cut at operation %d of %d (seed %d): Linux would see %+v", cut, ops, seed, got)
			}
			switch got[3] {
			case want[3]:
				states["old"]++
			case g.Partition:
				states["grown"]++
			default:
				t.Fatalf("cut at operation %d (seed %d): partition 4 is %+v", cut, seed, got[3])
			}
			g2, err := gpt.Grow(fileDev{disktest.Open(t, path)}, disk/512, 4)
			if err != nil {
				t.Fatalf("Grow after a cut at operation %d (seed %d): %v", cut, seed, err)
			}
			if got[3] == want[3] && g2.Finished {
				t.Fatalf("cut at operation %d (seed %d): the old layout is reported as an interrupted growth", cut, seed)
			}
			if g2.Finished {
				states["finished"]++
			}
			verify(t, path, true)
			if p := linuxPartitions(t, path); len(p) != 4 || p[3] != g.Partition {
				t.Fatalf("after a cut at operation %d and Grow: %+v", cut, p)
			}
		}
	}
	t.Logf("%d operations; after a cut partition 4 was %v", ops, states)
	if states["old"] == 0 || states["grown"] == 0 || states["finished"] == 0 {
		t.Errorf("the cuts never left the old or the grown layout: %v", states)
	}
}
