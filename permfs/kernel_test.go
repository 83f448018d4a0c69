package permfs

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/passivesensor/sensor/internal/disktest"
)

// loopMount attaches the image to a loop device and mounts it as ext4;
// the test is skipped where the sandbox forbids either. It returns the
// mount point and a function that unmounts and detaches, which cleanup
// calls too.
func loopMount(t *testing.T, img string) (string, func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loop-mounting an image needs root")
	}
	disktest.NeedTools(t, "losetup", "mount", "umount")
	out, err := exec.Command("losetup", "--find", "--show", img).CombinedOutput()
	if err != nil {
		t.Skipf("no loop device here (losetup: %v: %s)", err, out)
	}
	dev := strings.TrimSpace(string(out))
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "ext4", dev, mnt).CombinedOutput(); err != nil {
		exec.Command("losetup", "-d", dev).Run()
		if strings.Contains(string(out), "permission denied") || strings.Contains(string(out), "not permitted") {
			t.Skipf("mounting is not permitted here: %s", out)
		}
		t.Fatalf("mount -t ext4 %s (%s): %v: %s", dev, img, err, out)
	}
	mounted := true
	unmount := func() {
		t.Helper()
		if !mounted {
			return
		}
		mounted = false
		out, err := exec.Command("umount", mnt).CombinedOutput()
		exec.Command("losetup", "-d", dev).Run()
		if err != nil {
			t.Fatalf("umount %s: %v: %s", mnt, err, out)
		}
	}
	t.Cleanup(unmount)
	return mnt, unmount
}

// The Linux kernel mounts the file system and writes to it: a spool
// directory of thousands of files (a hashed directory), a 96 MiB file.
// The file system as a power cut would leave it, taken while mounted
// with its journal holding the last transactions, is replayed by the
// kernel at the next mount, and e2fsck finds both clean afterwards.
func TestKernelMount(t *testing.T) {
	disktest.NeedTools(t, "e2fsck", "dumpe2fs", "cp")
	img, info := formatFile(t, 600<<20, Options{})
	mnt, unmount := loopMount(t, img)

	spool := filepath.Join(mnt, "sensor", "spool")
	if err := os.MkdirAll(spool, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 3000 {
		if err := os.WriteFile(filepath.Join(spool, fmt.Sprintf("batch-%05d.cbor", i)), bytes.Repeat([]byte{byte(i)}, 100+i%900), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	big := bytes.Repeat([]byte("spooled report "), 96<<20/15)
	if err := os.WriteFile(filepath.Join(mnt, "big"), big, 0o600); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(big)
	// Commit to the journal; the blocks it logged are written in place
	// later. The image now is what a power cut would leave.
	unix.Sync()
	crashed := filepath.Join(t.TempDir(), "crashed.img")
	if out, err := exec.Command("cp", "--sparse=always", img, crashed).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(mnt, &st); err != nil {
		t.Fatal(err)
	}
	if total := int64(st.Blocks) * st.Bsize; total < info.Bytes()*9/10 {
		t.Errorf("the kernel sees %d bytes of a %d-byte file system", total, info.Bytes())
	}
	unmount()
	fsck(t, img)

	// The crash image needs its journal replayed.
	d := dumpe2fs(t, crashed)
	if !strings.Contains(d["Filesystem features"], "needs_recovery") || d["Journal start"] == "0" {
		t.Fatalf("the crash image has nothing in its journal: features %q, journal start %q", d["Filesystem features"], d["Journal start"])
	}
	mnt2, unmount2 := loopMount(t, crashed)
	got, err := os.ReadFile(filepath.Join(mnt2, "big"))
	if err != nil || sha256.Sum256(got) != want {
		t.Errorf("after the journal's replay the big file reads back wrong (%d bytes, %v)", len(got), err)
	}
	ents, err := os.ReadDir(filepath.Join(mnt2, "sensor", "spool"))
	if err != nil || len(ents) != 3000 {
		t.Errorf("after the journal's replay the spool holds %d files (%v)", len(ents), err)
	}
	unmount2()
	out := fsck(t, crashed)
	t.Logf("after replay: %s", lastLine(out))
}

func lastLine(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return l[len(l)-1]
}
