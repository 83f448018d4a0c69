package main

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/gpt"
	"github.com/passivesensor/sensor/internal/disktest"
	"github.com/passivesensor/sensor/internal/powercut"
	"github.com/passivesensor/sensor/permfs"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func sectors(t *testing.T, path string) uint64 {
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return uint64(st.Size() / gpt.SectorSize)
}

// firstBoot runs prepare on a disk image file as the box's first boot
// does.
func firstBoot(t *testing.T, path string) (result, error) {
	t.Helper()
	return prepare(quiet, permfs.FileAt{File: disktest.Open(t, path)}, sectors(t, path), 4)
}

// checkDone checks a disk whose /perm was made: sgdisk finds no problem
// in the table (nor, when grown, a partition end off a 1 MiB boundary),
// partition 4 reaches to within 1 MiB of the disk's end, and e2fsck finds
// nothing wrong in a file system that fills it.
func checkDone(t *testing.T, path string, grown bool) {
	t.Helper()
	out, err := exec.Command("sgdisk", "-v", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No problems found") || grown && strings.Contains(string(out), "Caution") {
		t.Fatalf("sgdisk -v: %v\n%s", err, out)
	}
	p := disktest.Partition(t, path, 4)
	if end := sectors(t, path) - 34; p.Last > end || end-p.Last > 2048 {
		t.Fatalf("partition 4 ends at sector %d of a %d-sector disk", p.Last, sectors(t, path))
	}
	dev := fmt.Sprintf("%s?offset=%d", path, p.Offset())
	if out, err := exec.Command("e2fsck", "-fn", dev).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck -fn: %v\n%s", err, out)
	}
	out, err = exec.Command("dumpe2fs", "-h", dev).CombinedOutput()
	if err != nil {
		t.Fatalf("dumpe2fs: %v\n%s", err, out)
	}
	var blocks int64
	for _, l := range strings.Split(string(out), "\n") {
		fmt.Sscanf(l, "Block count: %d", &blocks)
	}
	if blocks*4096 > p.Bytes() || p.Bytes()-blocks*4096 > 128<<20 {
		t.Fatalf("a file system of %d blocks in a partition of %d bytes", blocks, p.Bytes())
	}
}

// The image written to a 4 GiB disk: partition 4 grows to the disk's end
// and holds a clean ext4 file system that fills it.
func TestFirstBoot(t *testing.T) {
	disktest.NeedTools(t, "sgdisk", "e2fsck", "dumpe2fs")
	for _, c := range []struct {
		name   string
		size   int64
		hybrid bool
		grown  bool
	}{
		{"4 GiB EFI", 4 << 30, false, true},
		{"odd size Raspberry Pi", 3<<30 + 4095*512, true, true},
		{"the image's own size", disktest.ImageSize, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := disktest.Image(t, c.size, c.hybrid)
			from := disktest.Partition(t, path, 4)
			res, err := firstBoot(t, path)
			if err != nil {
				t.Fatal(err)
			}
			if res.Grown != c.grown || res.Resumed || res.Created.Blocks == 0 || res.From != from || res.Part != disktest.Partition(t, path, 4) {
				t.Fatalf("result %+v", res)
			}
			checkDone(t, path, c.grown)
			t.Logf("partition 4 %d -> %d MiB, file system %d MiB in %v", from.Bytes()>>20, res.Part.Bytes()>>20, res.Created.Bytes()>>20, res.Took)
			// On the next boot the partition holds a file system:
			// were it not mounted, it would be left alone.
			hash := fileHash(t, path)
			if _, err := firstBoot(t, path); !errors.Is(err, errForeign) {
				t.Fatalf("second run on a made /perm: %v", err)
			}
			if fileHash(t, path) != hash {
				t.Fatal("the second run wrote to the disk")
			}
		})
	}
}

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	// The disks are sparse: hash the tables and /perm's start and the
	// places ext superblocks live, not gigabytes of holes.
	for _, off := range []int64{0, 1 << 20, 4 << 20, 1 << 30, 2<<30 - 1<<20, 3 << 30, 4<<30 - 1<<20} {
		b := make([]byte, 1<<20)
		f.ReadAt(b, off)
		h.Write(b)
	}
	p := disktest.Partition(t, path, 4)
	for g := int64(0); g < 32; g++ {
		b := make([]byte, 4096)
		f.ReadAt(b, p.Offset()+g*128<<20)
		h.Write(b)
	}
	return [32]byte(h.Sum(nil))
}

// A power cut at any write or flush of the first boot, and another at a
// random point of the boot after it, leave a disk whose primary table
// Linux accepts with partitions 1 to 3 as they were; the boot after that
// finishes the work. A boot that finds an ext4 superblock finds the
// whole file system (the box would mount it).
func TestFirstBootCut(t *testing.T) {
	disktest.NeedTools(t, "sgdisk", "e2fsck", "dumpe2fs")
	const size = 3<<30 + 5*512
	template := disktest.Image(t, size, false)
	var before [3]gpt.Partition
	for n := range before {
		before[n] = disktest.Partition(t, template, n+1)
	}
	probe := disktest.Copy(t, template)
	d, err := powercut.Open(probe, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := prepare(quiet, d, sectors(t, probe), 4); err != nil {
		t.Fatal(err)
	}
	ops := d.Ops()
	d.Close()
	r := rand.New(rand.NewPCG(3, 4))
	outcomes := map[string]int{}
	for cut := 1; cut <= ops; cut++ {
		for seed := range uint64(2) {
			path := disktest.Copy(t, template)
			// The first boot, cut; the second, cut somewhere too.
			for boot, at := range []int{cut, 1 + r.IntN(ops)} {
				d, err := powercut.Open(path, at, seed)
				if err != nil {
					t.Fatal(err)
				}
				_, err = prepare(quiet, d, sectors(t, path), 4)
				d.Close()
				for n := range before {
					if p := disktest.Partition(t, path, n+1); p != before[n] {
						t.Fatalf("cut at %d, boot %d: partition %d is %+v", at, boot+1, n+1, p)
					}
				}
				if errors.Is(err, errForeign) {
					// A complete file system: the box mounts it.
					outcomes["complete"]++
					checkDone(t, path, true)
					break
				}
				if !errors.Is(err, powercut.ErrCut) && err != nil {
					t.Fatalf("cut at %d, boot %d: %v", at, boot+1, err)
				}
				outcomes[fmt.Sprint("boot ", boot+1, " cut")]++
			}
			res, err := firstBoot(t, path)
			switch {
			case errors.Is(err, errForeign):
				// Finished before: the file system is there.
			case err != nil:
				t.Fatalf("first cut at %d (seed %d): the boot after: %v", cut, seed, err)
			case res.Resumed:
				outcomes["resumed"]++
			}
			checkDone(t, path, true)
		}
	}
	t.Logf("%d operations; %v", ops, outcomes)
	if outcomes["resumed"] == 0 {
		t.Error("no cut left an interrupted file system to resume")
	}
}

// A disk whose partition 4 holds data is never written: an old ext4 file
// system spanning the disk whose start the image overwrote (its backup
// superblocks remain past the image's end), a FAT file system, an ext4
// file system that did not mount. prepare reports what it found.
func TestFirstBootLeavesDataAlone(t *testing.T) {
	disktest.NeedTools(t, "sgdisk", "mkfs.ext4", "mkfs.vfat")
	const size = 4 << 30
	for _, c := range []struct {
		name  string
		setup func(t *testing.T, path string)
		want  string
	}{
		{"old /perm past the image", func(t *testing.T, path string) {
			// The disk's earlier life: a /perm from sector s to the
			// disk's end; then the image written over its first 2 GiB.
			s := disktest.Partition(t, path, 4).Offset()
			if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-E", fmt.Sprintf("offset=%d", s), path, fmt.Sprintf("%dk", (size-s-1<<20)/1024)).CombinedOutput(); err != nil {
				t.Fatalf("mkfs.ext4: %v: %s", err, out)
			}
			f := disktest.Open(t, path)
			if _, err := f.WriteAt(make([]byte, disktest.ImageSize-s-1<<20), s); err != nil {
				t.Fatal(err)
			}
		}, "ext2/3/4 backup superblock (4096-byte blocks, group 7)"},
		{"FAT", func(t *testing.T, path string) {
			p := disktest.Partition(t, path, 4)
			part := filepath.Join(t.TempDir(), "fat.img")
			if out, err := exec.Command("mkfs.vfat", "-C", part, "65536").CombinedOutput(); err != nil {
				t.Fatalf("mkfs.vfat: %v: %s", err, out)
			}
			b, _ := os.ReadFile(part)
			disktest.Open(t, path).WriteAt(b, p.Offset())
		}, "boot sector"},
		{"ext4 that did not mount", func(t *testing.T, path string) {
			p := disktest.Partition(t, path, 4)
			if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-E", fmt.Sprintf("offset=%d", p.Offset()), path, fmt.Sprintf("%dk", p.Bytes()/1024)).CombinedOutput(); err != nil {
				t.Fatalf("mkfs.ext4: %v: %s", err, out)
			}
		}, "ext2/3/4 superblock at byte 1024"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := disktest.Image(t, size, false)
			c.setup(t, path)
			hash := fileHash(t, path)
			res, err := firstBoot(t, path)
			if !errors.Is(err, errForeign) || len(res.Foreign) == 0 {
				t.Fatalf("prepare: %+v, %v", res, err)
			}
			var found []string
			for _, s := range res.Foreign {
				found = append(found, s.String())
			}
			if !strings.Contains(strings.Join(found, "; "), c.want) {
				t.Fatalf("found %q, want %q", found, c.want)
			}
			if fileHash(t, path) != hash {
				t.Fatal("the disk was written")
			}
		})
	}
}

// mountOf reads gokrazy's mounts as /proc/self/mountinfo lists them.
func TestMountOf(t *testing.T) {
	p := filepath.Join(t.TempDir(), "mountinfo")
	os.WriteFile(p, []byte(`21 1 254:2 / / ro,relatime - squashfs /dev/root ro,errors=continue
22 21 0:20 / /tmp rw,nosuid,nodev,relatime - tmpfs tmpfs rw
30 21 254:4 / /perm rw,relatime - ext4 /dev/vda4 rw
`), 0o644)
	if src, typ, ok := mountOf(p, "/perm"); !ok || src != "/dev/vda4" || typ != "ext4" {
		t.Fatalf("mountOf /perm: %q %q %v", src, typ, ok)
	}
	if _, _, ok := mountOf(p, "/per"); ok {
		t.Fatal("/per is mounted")
	}
	if _, _, ok := mountOf(filepath.Join(t.TempDir(), "none"), "/perm"); ok {
		t.Fatal("mounted without a mountinfo")
	}
}
