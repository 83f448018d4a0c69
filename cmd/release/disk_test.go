package main

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/internal/disktest"
	"github.com/passivesensor/sensor/permfs"
	"github.com/passivesensor/sensor/update"
)

// fakeGokBoot writes a FAT image holding files, as gok --boot writes one.
func fakeGokBoot(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	img := filepath.Join(dir, "boot.fat")
	if out, err := exec.Command("mkfs.vfat", "-C", img, "16384").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.vfat: %v: %s", err, out)
	}
	for name, data := range files {
		parts := strings.Split(name, "/")
		for i := 1; i < len(parts); i++ {
			exec.Command("mmd", "-D", "s", "-i", img, "::"+strings.Join(parts[:i], "/")).Run()
		}
		p := filepath.Join(dir, "f")
		os.WriteFile(p, []byte(data), 0o644)
		if out, err := exec.Command("mcopy", "-o", "-i", img, p, "::"+name).CombinedOutput(); err != nil {
			t.Fatalf("mcopy %s: %v: %s", name, err, out)
		}
	}
	return img
}

// espOf reads a file of partition 1 of a disk image.
func espOf(t *testing.T, img, name string) string {
	t.Helper()
	out, err := exec.Command("mtype", "-i", img+"@@"+"4194304", "::"+name).Output()
	if err != nil {
		t.Fatalf("mtype %s: %v", name, err)
	}
	return string(out)
}

const testGUID = "60c24cc1-f3f9-427a-8199-83b6367b0001"

// buildDisk runs release disk for board on gok's boot file system and a
// root file system, version 1.0.0, and returns the image.
func buildDisk(t *testing.T, board, boot string) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root.squashfs")
	os.WriteFile(root, bytes.Repeat([]byte("squashfs"), 1000), 0o644)
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := disk([]string{"-board", board, "-boot", boot, "-root", root, "-version", "1.0.0", "-size", "2147483648", "-o", img}); err != nil {
		t.Fatal(err)
	}
	return img
}

// The Raspberry Pi disk: the firmware finds the boot partition in the MBR,
// config.txt and tryboot.txt start slot a, whose directory holds the
// kernel, device trees, firmware and a cmdline.txt mounting slot a's root;
// Linux and gokrazy find the GPT with gok's GUIDs.
func TestDiskRaspberryPi(t *testing.T) {
	disktest.NeedTools(t, "sgdisk", "mkfs.vfat", "mcopy", "mmd", "mtype")
	boot := fakeGokBoot(t, map[string]string{
		"config.txt":            "# Switch the CPU from ARMv7 into ARMv8 (aarch64) mode\narm_control=0x200\n\nenable_uart=0\n\nkernel=vmlinuz\n",
		"cmdline.txt":           "console=tty1 root=PARTUUID=" + testGUID + "/PARTNROFF=1 init=/gokrazy/init rootwait panic=10 oops=panic\n",
		"vmlinuz":               "the kernel",
		"bcm2711-rpi-4-b.dtb":   "pi 4 device tree",
		"bcm2711-rpi-cm4.dtb":   "cm4 device tree",
		"bcm2712-rpi-5-b.dtb":   "pi 5 device tree",
		"start4.elf":            "firmware",
		"fixup4.dat":            "fixup",
		"bootcode.bin":          "boot code",
		"overlays/README":       "overlays",
		"overlays/disable.dtbo": "overlay",
	})
	img := buildDisk(t, "rpi4", boot)
	f, _ := os.Open(img)
	defer f.Close()
	mbr := make([]byte, 512)
	f.ReadAt(mbr, 0)
	e1, e2 := mbr[446:462], mbr[462:478]
	if e1[0] != 0x80 || e1[4] != 0x0c || binary.LittleEndian.Uint32(e1[8:]) != firstSector || binary.LittleEndian.Uint32(e1[12:]) != 300<<20/512 {
		t.Fatalf("MBR entry 1 % x: want the active FAT32 boot partition at sector %d", e1, firstSector)
	}
	if e2[4] != 0xee || mbr[510] != 0x55 || mbr[511] != 0xaa {
		t.Fatalf("MBR entry 2 % x: want the protective 0xEE entry", e2)
	}
	for n := 1; n <= 4; n++ {
		g, err := update.PartitionGUID(f, n)
		if err != nil || !strings.EqualFold(g, testGUID[:len(testGUID)-4]+"000"+string(rune('0'+n))) {
			t.Fatalf("GPT partition %d: %s, %v", n, g, err)
		}
	}
	cfg := espOf(t, img, "config.txt")
	if s, err := update.PiConfigSlot([]byte(cfg)); err != nil || s != update.SlotA || !strings.Contains(cfg, "arm_control=0x200\n") || !strings.Contains(cfg, "start_file=a/start4.elf\n") {
		t.Fatalf("config.txt starts slot %s (%v):\n%s", s, err, cfg)
	}
	if tb := espOf(t, img, "tryboot.txt"); tb != cfg {
		t.Fatalf("tryboot.txt differs from config.txt:\n%s", tb)
	}
	cmdline := espOf(t, img, "a/cmdline.txt")
	if cmdline != "console=tty1 init=/gokrazy/init rootwait panic=10 oops=panic root=PARTUUID="+strings.ToLower(testGUID)+"/PARTNROFF=1 sensor.version=1.0.0\n" {
		t.Fatalf("a/cmdline.txt: %q", cmdline)
	}
	for name, want := range map[string]string{"a/vmlinuz": "the kernel", "a/bcm2711-rpi-4-b.dtb": "pi 4 device tree",
		"a/bcm2711-rpi-cm4.dtb": "cm4 device tree", "a/start4.elf": "firmware", "a/fixup4.dat": "fixup",
		"start4.elf": "firmware", "fixup4.dat": "fixup", "bootcode.bin": "boot code"} {
		if got := espOf(t, img, name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	list, _ := exec.Command("mdir", "-/", "-b", "-i", img+"@@4194304", "::").Output()
	for _, gone := range []string{"::/vmlinuz", "::/cmdline.txt", "bcm2712", "overlays", "::/bcm2711"} {
		if strings.Contains(string(list), gone) {
			t.Errorf("the boot partition still holds %s:\n%s", gone, list)
		}
	}
	if !strings.Contains(string(list), "::/b/") {
		t.Errorf("no directory for slot b:\n%s", list)
	}
	checkPermBlank(t, img)
}

// The EFI disk: systemd-boot and slot a's entry and kernel.
func TestDiskEFI(t *testing.T) {
	disktest.NeedTools(t, "sgdisk", "mkfs.vfat", "mcopy", "mmd", "mtype")
	boot := fakeGokBoot(t, map[string]string{
		"EFI/BOOT/BOOTAA64.EFI":       "systemd-boot",
		"loader/entries/gokrazy.conf": "title gokrazy\nlinux /vmlinuz\noptions console=hvc0 root=PARTUUID=" + testGUID + "/PARTNROFF=1 init=/gokrazy/init\n",
		"vmlinuz":                     "the kernel",
	})
	img := buildDisk(t, "arm64", boot)
	entry := espOf(t, img, "loader/entries/slot-a.conf")
	if !strings.Contains(entry, "linux /a/vmlinuz\n") || !strings.Contains(entry, "options console=hvc0 init=/gokrazy/init root=PARTUUID="+strings.ToLower(testGUID)+"/PARTNROFF=1 sensor.version=1.0.0\n") {
		t.Fatalf("slot a's entry:\n%s", entry)
	}
	if got := espOf(t, img, "EFI/BOOT/BOOTAA64.EFI"); got != "systemd-boot" {
		t.Fatalf("BOOTAA64.EFI: %q", got)
	}
	if got := espOf(t, img, "a/vmlinuz"); got != "the kernel" {
		t.Fatalf("a/vmlinuz: %q", got)
	}
	if !strings.Contains(espOf(t, img, "loader/loader.conf"), "default slot-a.conf\n") {
		t.Fatal("loader.conf does not default to slot a")
	}
	checkPermBlank(t, img)
}

// checkPermBlank checks that /perm (partition 4) reaches the disk's end
// and holds nothing: the box makes its file system on the first boot.
func checkPermBlank(t *testing.T, img string) {
	t.Helper()
	p := disktest.Partition(t, img, 4)
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if p.Last != 2147483648/512-34 {
		t.Errorf("partition 4 ends at sector %d", p.Last)
	}
	sigs, err := permfs.Detect(io.NewSectionReader(f, p.Offset(), p.Bytes()), p.Bytes())
	if err != nil || len(sigs) > 0 {
		t.Errorf("partition 4 is not blank: %v %v", sigs, err)
	}
}
