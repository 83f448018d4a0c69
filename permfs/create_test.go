package permfs

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/internal/disktest"
	"github.com/passivesensor/sensor/internal/powercut"
)

func sparseFile(t testing.TB, size int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "part.img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return path
}

// inspect opens a partition image as the next boot would find it.
func inspect(t testing.TB, path string, size int64) (sigs []Signature, interrupted bool) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if sigs, err = Detect(f, size); err != nil {
		t.Fatal(err)
	}
	if interrupted, err = Interrupted(f, size); err != nil {
		t.Fatal(err)
	}
	return sigs, interrupted
}

// A power cut at every durable write or flush of Create leaves either the
// complete file system (e2fsck finds nothing wrong), or a partition that
// Interrupted recognises as Create's, or one where nothing was written;
// never a partition that would be left alone as foreign data, and never
// a superblock magic number in front of an incomplete file system. A
// second Create on what the cut left makes a clean file system.
func TestCreateCut(t *testing.T) {
	disktest.NeedTools(t, "e2fsck", "dumpe2fs")
	for _, size := range []int64{MinSize + 4096, 300 << 20} {
		probe := sparseFile(t, size)
		d, err := powercut.Open(probe, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Create(d, size, Options{}); err != nil {
			t.Fatal(err)
		}
		ops := d.Ops()
		d.Close()
		checkCreated(t, probe, size)
		states := map[string]int{}
		for cut := 1; cut <= ops; cut++ {
			for seed := range uint64(3) {
				path := sparseFile(t, size)
				d, err := powercut.Open(path, cut, seed)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := Create(d, size, Options{}); !errors.Is(err, powercut.ErrCut) {
					t.Fatalf("%d bytes, cut at operation %d of %d: Create: %v", size, cut, ops, err)
				}
				d.Close()
				sigs, interrupted := inspect(t, path, size)
				switch {
				case interrupted:
					states["interrupted"]++
				case len(sigs) > 0 && sigs[0].What == "ext2/3/4 superblock":
					states["complete"]++
					fsck(t, path)
					continue // the next boot mounts it
				case len(sigs) == 0:
					states["untouched"]++
				default:
					t.Fatalf("%d bytes, cut at operation %d of %d (seed %d): neither interrupted nor complete: %v", size, cut, ops, seed, sigs)
				}
				// The next boot runs Create again.
				f, err := os.OpenFile(path, os.O_RDWR, 0)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := Create(FileAt{File: f}, size, Options{}); err != nil {
					t.Fatal(err)
				}
				f.Close()
				checkCreated(t, path, size)
			}
		}
		t.Logf("%d bytes: %d operations; after a cut: %v", size, ops, states)
		if states["interrupted"] == 0 || states["complete"] == 0 {
			t.Errorf("the cuts never left an interrupted or a complete file system: %v", states)
		}
	}
}

// checkCreated checks a partition Create finished: a clean file system,
// and the mark gone.
func checkCreated(t testing.TB, path string, size int64) {
	t.Helper()
	fsck(t, path)
	if sigs, interrupted := inspect(t, path, size); interrupted || len(sigs) == 0 || sigs[0].What != "ext2/3/4 superblock" {
		t.Fatalf("after Create: interrupted %v, signatures %v", interrupted, sigs)
	}
	b := make([]byte, 512)
	f, _ := os.Open(path)
	defer f.Close()
	f.ReadAt(b, 0)
	for _, c := range b {
		if c != 0 {
			t.Fatal("the mark is still in the first sector")
		}
	}
}

// Interrupted needs the mark for the same size and no magic number.
func TestInterrupted(t *testing.T) {
	size := int64(64 << 20)
	path := sparseFile(t, size)
	if _, interrupted := inspect(t, path, size); interrupted {
		t.Fatal("a blank partition is interrupted")
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteAt(mark(size), 0)
	if _, interrupted := inspect(t, path, size); !interrupted {
		t.Fatal("the mark alone is not interrupted")
	}
	if ok, _ := Interrupted(f, size+4096); ok {
		t.Fatal("a mark for another size counts")
	}
	bad := mark(size)
	bad[len(markMagic)+1] ^= 1 // the size, without fixing the CRC
	f.WriteAt(bad, 0)
	if ok, _ := Interrupted(f, size); ok {
		t.Fatal("a damaged mark counts")
	}
	f.WriteAt(mark(size), 0)
	if _, err := Format(FileAt{File: f}, size, Options{}); err != nil {
		t.Fatal(err)
	}
	if ok, _ := Interrupted(f, size); ok {
		t.Fatal("a complete file system with a stale mark counts as interrupted")
	}
}

// Detect finds file systems made by their own tools, and an ext4 file
// system whose first blocks were overwritten by its backup superblocks.
func TestDetect(t *testing.T) {
	const size = 512 << 20
	mkfs := func(t *testing.T, tool string, args ...string) string {
		t.Helper()
		disktest.NeedTools(t, tool)
		path := sparseFile(t, size)
		if out, err := exec.Command(tool, append(args, path)...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", tool, err, out)
		}
		return path
	}
	wipeStart := func(t *testing.T, path string, n int64) {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		f.WriteAt(make([]byte, n), 0)
	}
	for _, c := range []struct {
		name string
		make func(t *testing.T) string
		want string
	}{
		{"blank", func(t *testing.T) string { return sparseFile(t, size) }, ""},
		{"permfs", func(t *testing.T) string { p, _ := formatFile(t, size, Options{}); return p }, "ext2/3/4 superblock at byte 1024"},
		{"permfs, start overwritten", func(t *testing.T) string {
			p, _ := formatFile(t, size, Options{})
			wipeStart(t, p, 1<<20)
			return p
		}, "ext2/3/4 backup superblock (4096-byte blocks, group 1) at byte 134217728"},
		{"mke2fs 1 KiB blocks, start overwritten", func(t *testing.T) string {
			p := mkfs(t, "mkfs.ext4", "-q", "-F", "-b", "1024")
			wipeStart(t, p, 1<<20)
			return p
		}, "ext2/3/4 backup superblock (1024-byte blocks, group 1) at byte 8389632"},
		{"mke2fs 2 KiB blocks", func(t *testing.T) string { return mkfs(t, "mkfs.ext4", "-q", "-F", "-b", "2048") }, "ext2/3/4 superblock at byte 1024"},
		{"FAT32", func(t *testing.T) string { return mkfs(t, "mkfs.vfat", "-F", "32") }, "boot sector (FAT, exFAT or NTFS) at byte 510"},
		{"swap", func(t *testing.T) string { return mkfs(t, "mkswap") }, "swap area at byte 4086"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := c.make(t)
			sigs, _ := inspect(t, path, size)
			var got []string
			for _, s := range sigs {
				got = append(got, s.String())
			}
			if c.want == "" && len(got) > 0 || c.want != "" && (len(got) == 0 || got[0] != c.want) {
				t.Fatalf("Detect: %q, want first %q", got, c.want)
			}
			t.Logf("%s: %s", c.name, strings.Join(got, "; "))
		})
	}
	// Fixed-place magic numbers of formats without a tool here.
	for _, m := range []struct {
		off   int64
		magic string
		want  string
	}{{0, "XFSB", "XFS superblock"}, {65536 + 64, "_BHRfS_M", "btrfs superblock"}, {0, "LUKS\xba\xbe", "LUKS header"},
		{4096 + 24, "\xc6\x85\x73\xf6\x66\xce\x90\xa9\xd9\x6a\x60\xcf\x80\x3d\xf7\xef", "bcachefs superblock"}} {
		path := sparseFile(t, size)
		f, _ := os.OpenFile(path, os.O_RDWR, 0)
		f.WriteAt([]byte(m.magic), m.off)
		sigs, err := Detect(f, size)
		f.Close()
		if err != nil || len(sigs) != 1 || sigs[0].What != m.want || sigs[0].Offset != m.off {
			t.Errorf("%s: %v %v", m.want, sigs, err)
		}
	}
	// A partition too short for a location is not read past its end.
	if sigs, err := Detect(strings.NewReader(strings.Repeat("\x00", 2000)), 2000); err != nil || len(sigs) != 0 {
		t.Errorf("short partition: %v %v", sigs, err)
	}
}
