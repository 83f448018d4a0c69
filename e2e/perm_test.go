//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/gpt"
	"github.com/passivesensor/sensor/internal/disktest"
	"github.com/passivesensor/sensor/permfs"
)

// factoryPerm makes /perm's file system on a disk image whose partition 4
// holds none, as a factory that provisions /perm before the first boot
// does (make image leaves it blank for the box to make). The partition
// keeps the image's size: the box, finding /perm mounted, does not grow it.
func factoryPerm(t *testing.T, img string) {
	t.Helper()
	p := disktest.Partition(t, img, 4)
	part := permfs.FileAt{File: disktest.Open(t, img), Off: p.Offset()}
	sigs, err := permfs.Detect(part, p.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case len(sigs) == 0:
		if _, err := permfs.Create(part, p.Bytes(), permfs.Options{}); err != nil {
			t.Fatalf("making /perm on %s: %v", img, err)
		}
	case sigs[0].What != "ext2/3/4 superblock":
		t.Fatalf("%s: partition 4 holds %v, not /perm", img, sigs)
	}
}

// boxDisk is a box's disk with the image written to it: a copy of the
// image as built, made -disk_size bytes long (sparse).
func boxDisk(t *testing.T, img string) string {
	t.Helper()
	disk := disktest.Copy(t, img)
	if err := os.Truncate(disk, *diskSize); err != nil {
		t.Fatal(err)
	}
	return disk
}

// permOnDisk is /perm as found on a disk image after the box stopped.
type permOnDisk struct {
	part        gpt.Partition
	diskSectors int64
	fields      map[string]string // dumpe2fs -h
}

// checkPermOnDisk checks a stopped box's disk from outside: sgdisk finds
// no problem in its partition table, partition 4 reaches to within 1 MiB
// of the disk's end, e2fsck -fn finds nothing wrong in /perm, and /perm's
// file system fills the partition.
func checkPermOnDisk(t *testing.T, disk string) permOnDisk {
	t.Helper()
	for _, tool := range []string{"sgdisk", "e2fsck", "dumpe2fs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (apt-get install gdisk e2fsprogs)", tool)
		}
	}
	out, err := exec.Command("sgdisk", "-v", disk).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No problems found") || strings.Contains(string(out), "Caution") {
		t.Errorf("sgdisk -v %s: %v\n%s", disk, err, out)
	}
	st, err := os.Stat(disk)
	if err != nil {
		t.Fatal(err)
	}
	p := disktest.Partition(t, disk, 4)
	r := permOnDisk{part: p, diskSectors: st.Size() / 512, fields: map[string]string{}}
	if end := uint64(r.diskSectors) - 34; p.Last > end || end-p.Last >= 2048 {
		t.Errorf("partition 4 ends at sector %d of %d: not grown to the disk's end", p.Last, r.diskSectors)
	}
	dev := fmt.Sprintf("%s?offset=%d", disk, p.Offset())
	if out, err := exec.Command("e2fsck", "-fn", dev).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn /perm: %v\n%s", err, out)
	} else {
		t.Logf("e2fsck -fn /perm: %s", lastLines(string(out), 1))
	}
	out, err = exec.Command("dumpe2fs", "-h", dev).CombinedOutput()
	if err != nil {
		t.Fatalf("dumpe2fs -h /perm: %v\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			r.fields[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	var blocks, bs int64
	fmt.Sscan(r.fields["Block count"], &blocks)
	fmt.Sscan(r.fields["Block size"], &bs)
	if fs := blocks * bs; fs > p.Bytes() || p.Bytes()-fs >= 128<<20 {
		t.Errorf("/perm's file system is %d bytes in a partition of %d", fs, p.Bytes())
	}
	if !strings.Contains(r.fields["Filesystem features"], "has_journal") || r.fields["Journal inode"] != "8" {
		t.Errorf("/perm has no journal: features %q", r.fields["Filesystem features"])
	}
	return r
}

// catPerm reads a file from /perm on a stopped box's disk.
func catPerm(t *testing.T, disk string, p gpt.Partition, name string) string {
	t.Helper()
	out, err := exec.Command("debugfs", "-R", "cat "+name, fmt.Sprintf("%s?offset=%d", disk, p.Offset())).Output()
	if err != nil {
		t.Fatalf("debugfs cat %s: %v", name, err)
	}
	return string(out)
}

// stopAt is a disk image file whose writes and flushes stop at operation
// at (counted from 1): that one and all after it fail without effect, as
// when the power fails with everything before it on the disk.
type stopAt struct {
	f     *os.File
	n, at int
}

var errStopped = errors.New("stopped")

func (s *stopAt) ReadAt(p []byte, off int64) (int, error) { return s.f.ReadAt(p, off) }

func (s *stopAt) WriteAt(p []byte, off int64) (int, error) {
	if s.n++; s.at > 0 && s.n >= s.at {
		return 0, errStopped
	}
	return s.f.WriteAt(p, off)
}

func (s *stopAt) Sync() error {
	if s.n++; s.at > 0 && s.n >= s.at {
		return errStopped
	}
	return s.f.Sync()
}

// TestFirstBootCut boots disks that a power cut left in the first boot's
// two delicate states, under the real firmware (AAVMF) and kernel: the
// partition table half way through growing (the primary header naming
// the entry array at the disk's end, sector 2 still the old one), and the
// file system written but for its superblock's magic number (the
// partition marked as being formatted, backup superblocks in place). The
// box boots from each, finishes /perm, reboots and mounts it.
func TestFirstBootCut(t *testing.T) {
	img := requireTools(t)
	for _, tool := range []string{"sgdisk", "e2fsck", "dumpe2fs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (make boot-smoke installs gdisk and e2fsprogs)", tool)
		}
	}
	for _, c := range []struct {
		name string
		cut  func(t *testing.T, f *os.File, sectors uint64)
		want string // in mkperm's "created" line
	}{
		{"table half grown", func(t *testing.T, f *os.File, sectors uint64) {
			// Grow's operations: the entries and the backup header at
			// the end, a flush, the primary header naming those
			// entries, a flush; the sixth would copy them to sector 2.
			if _, err := gpt.Grow(&stopAt{f: f, at: 6}, sectors, 4); !errors.Is(err, errStopped) {
				t.Fatalf("Grow: %v", err)
			}
			tab, err := gpt.Read(f)
			if err != nil || tab.EntriesLBA != sectors-33 {
				t.Fatalf("the primary table is not half grown: %+v %v", tab, err)
			}
		}, "grown=true resumed=false"},
		{"file system without its magic number", func(t *testing.T, f *os.File, sectors uint64) {
			g, err := gpt.Grow(&stopAt{f: f}, sectors, 4)
			if err != nil {
				t.Fatal(err)
			}
			count := &stopAt{f: f}
			part := permfs.FileAt{File: f, Off: g.Offset()}
			if _, err := permfs.Create(writerOnly{count, part}, g.Bytes(), permfs.Options{}); err != nil {
				t.Fatal(err)
			}
			// Create's last operations: the magic number's sector, a
			// flush, the mark cleared, a flush. Start afresh and stop
			// at the magic number.
			f.WriteAt(make([]byte, 4096), g.Offset())
			stop := &stopAt{f: f, at: count.n - 3}
			if _, err := permfs.Create(writerOnly{stop, part}, g.Bytes(), permfs.Options{}); !errors.Is(err, errStopped) {
				t.Fatalf("Create: %v", err)
			}
			if ok, err := permfs.Interrupted(part, g.Bytes()); !ok || err != nil {
				t.Fatalf("the partition is not an interrupted Create: %v", err)
			}
			if sigs, _ := permfs.Detect(part, g.Bytes()); len(sigs) == 0 {
				t.Fatal("no backup superblocks were written")
			}
		}, "grown=false resumed=true"},
	} {
		t.Run(c.name, func(t *testing.T) {
			lap := stepTimer(t)
			disk := boxDisk(t, img)
			f := disktest.Open(t, disk)
			c.cut(t, f, uint64(*diskSize/512))
			f.Close()
			v := bootWith(t, disk, bootOpts{persistent: true})
			ctx, cancel := context.WithTimeout(context.Background(), 2**bootTimeout)
			defer cancel()
			created, err := v.waitSerial(ctx, regexp.MustCompile(`mkperm: .*msg="created /perm: ext4 with a journal".*`))
			if err != nil {
				t.Fatalf("/perm not made after the cut: %v", err)
			}
			t.Logf("serial console: %s", created)
			if !strings.Contains(created, c.want) {
				t.Errorf("mkperm did not say %q", c.want)
			}
			if c.name == "table half grown" {
				if err := v.waitSerialCount(ctx, `msg="grew the partition to the end of the disk" partition=4 finished_interrupted=true`, 1); err != nil {
					t.Errorf("mkperm did not finish the interrupted growth: %v", err)
				}
			}
			lap("boot after the cut: /perm finished")
			if _, err := v.waitSerial(ctx, regexp.MustCompile(`EXT4-fs \(vda4\): mounted filesystem [0-9a-f-]+ r/w`)); err != nil {
				t.Fatalf("/perm not mounted after the reboot: %v", err)
			}
			if err := v.waitSerialCount(ctx, `msg="/perm is mounted: nothing to do"`, 1); err != nil {
				t.Fatal(err)
			}
			lap("reboot to /perm mounted")
			pw, err := httpPassword(img)
			if err != nil {
				t.Fatal(err)
			}
			v.powerOff(ctx, t, pw)
			checkPermOnDisk(t, disk)
			checkPerm(t, v)
		})
	}
}

// writerOnly hides a device's zeroing, so that every write of Create goes
// through the counting device.
type writerOnly struct {
	count *stopAt
	part  permfs.FileAt
}

func (w writerOnly) WriteAt(p []byte, off int64) (int, error) {
	return w.count.WriteAt(p, w.part.Off+off)
}
func (w writerOnly) Sync() error { return w.count.Sync() }
