package update

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// A disk laid out by sgdisk (as make image does) is found from the kernel
// command line, and its slots' device nodes follow the boot partition.
func TestFindLayout(t *testing.T) {
	if _, err := exec.LookPath("sgdisk"); err != nil {
		t.Skip("sgdisk not installed (apt-get install gdisk; make deps installs it)")
	}
	dir := t.TempDir()
	sys, dev := filepath.Join(dir, "sys"), filepath.Join(dir, "dev")
	os.MkdirAll(filepath.Join(sys, "vdb"), 0o755)
	os.MkdirAll(filepath.Join(sys, "loop0"), 0o755)
	os.WriteFile(filepath.Join(sys, "vdb", "size"), []byte("131072\n"), 0o644)
	os.MkdirAll(filepath.Join(sys, "nbd0"), 0o755)
	os.WriteFile(filepath.Join(sys, "nbd0", "size"), []byte("0\n"), 0o644)
	os.MkdirAll(dev, 0o755)
	img := filepath.Join(dev, "vdb")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Truncate(img, 64<<20)
	const prefix = "60C24CC1-F3F9-427A-8199-83B6367B"
	out, err := exec.Command("sgdisk", "-o", "-U", prefix+"0000",
		"-n1:2048:+8M", "-u1:"+prefix+"0001", "-n2:0:+8M", "-u2:"+prefix+"0002",
		"-n3:0:+8M", "-u3:"+prefix+"0003", "-n4:0:0", "-u4:"+prefix+"0004", img).CombinedOutput()
	if err != nil {
		t.Fatalf("sgdisk: %v: %s", err, out)
	}
	cmdline := "console=ttyAMA0,115200 root=PARTUUID=60c24cc1-f3f9-427a-8199-83b6367b0001/PARTNROFF=2 ro init=/gokrazy/init"
	l, err := FindLayout(cmdline, sys, dev)
	if err != nil {
		t.Fatal(err)
	}
	if l.Disk != img || l.BootPart != 1 || l.Booted != SlotB || l.RootDev(SlotA) != img+"2" || l.RootDev(SlotB) != img+"3" {
		t.Fatalf("layout %+v, slot devices %s %s", l, l.RootDev(SlotA), l.RootDev(SlotB))
	}
	if _, err := FindLayout("root=PARTUUID=60c24cc1-f3f9-427a-8199-83b6367b0009/PARTNROFF=1", sys, dev); err == nil {
		t.Fatal("found a boot partition that is not there")
	}
	if (Layout{Disk: "/dev/mmcblk0", BootPart: 1}).RootDev(SlotA) != "/dev/mmcblk0p2" {
		t.Fatal("mmcblk partition naming")
	}
}
