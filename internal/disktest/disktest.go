// Package disktest lays out disk image files as the appliance's images are
// laid out, for tests of code that reads and changes their partitions.
package disktest

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/passivesensor/sensor/gpt"
)

// NeedTools skips the test when one of the commands it runs is not
// installed (make deps installs them all).
func NeedTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (make deps installs it)", tool)
		}
	}
}

// ImageSize is the size make image lays the disk out for.
const ImageSize = 2 << 30

// GUIDPrefix is the partitions' unique GUIDs but their last four digits
// (partition n ends in 000n), as gok derives them.
const GUIDPrefix = "60C24CC1-F3F9-427A-8199-83B6367B"

// Image lays out a sparse disk of ImageSize bytes with sgdisk as make
// image does (1 boot 300 MiB from sector 8192, 2 and 3 roots of 500 MiB,
// 4 /perm to the end), with the Raspberry Pi's hybrid MBR if hybrid, and
// then makes the file size bytes long, as writing the image to a bigger
// disk does. It skips the test without sgdisk.
func Image(t testing.TB, size int64, hybrid bool) string {
	t.Helper()
	NeedTools(t, "sgdisk")
	path := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, ImageSize); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("sgdisk", "-o", "-U", GUIDPrefix+"0000",
		"-n1:8192:+300M", "-t1:C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "-u1:"+GUIDPrefix+"0001", "-c1:boot",
		"-n2:0:+500M", "-u2:"+GUIDPrefix+"0002", "-c2:root-a",
		"-n3:0:+500M", "-u3:"+GUIDPrefix+"0003", "-c3:root-b",
		"-n4:0:0", "-u4:"+GUIDPrefix+"0004", "-c4:perm", path).CombinedOutput()
	if err != nil {
		t.Fatalf("sgdisk: %v: %s", err, out)
	}
	if hybrid {
		// The Raspberry Pi's: entry 1 the boot partition, entry 2 a
		// protective entry over the tables only.
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		mbr := make([]byte, 512)
		f.ReadAt(mbr, 0)
		clear(mbr[446:510])
		e := mbr[446:]
		e[0], e[4] = 0x80, 0x0c
		binary.LittleEndian.PutUint32(e[8:], 8192)
		binary.LittleEndian.PutUint32(e[12:], 300<<20/512)
		e = mbr[462:]
		e[4] = 0xee
		binary.LittleEndian.PutUint32(e[8:], 1)
		binary.LittleEndian.PutUint32(e[12:], 8191)
		f.WriteAt(mbr, 0)
		f.Close()
	}
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
	return path
}

// Copy copies a sparse disk image file to a new one in the test's
// temporary directory, keeping its holes.
func Copy(t testing.TB, path string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), filepath.Base(path))
	if out, err := exec.Command("cp", "--sparse=always", path, p).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	return p
}

// Open opens a disk image file for reading and writing until the test
// ends.
func Open(t testing.TB, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// Partition reads partition n of a disk image file from its primary
// partition table.
func Partition(t testing.TB, path string, n int) gpt.Partition {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tab, err := gpt.Read(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	p, err := tab.Partition(n)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return p
}
