package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/passivesensor/sensor/update"
)

// GPT partition type GUIDs of the layout.
const (
	typeESP       = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
	typeRootArm64 = "B921B045-1DF0-41C3-AF44-4C6F280D3FAE"
	typeLinux     = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
	sector        = 512
	firstSector   = 8192
)

// rootPartUUID finds root=PARTUUID=<boot partition uuid>/PARTNROFF=1 in
// gok's boot entry.
var rootPartUUID = regexp.MustCompile(`root=PARTUUID=([0-9a-fA-F-]{36})/PARTNROFF=\d+`)

// disk lays out an EFI appliance disk with room for both slots' kernels:
// gok's own layout has a 100 MiB boot partition, which holds one arm64
// kernel (~57 MiB) and so cannot give each slot its own. The partitions
// keep gok's GPT unique GUIDs (gokrazy finds its root and /perm by them):
//
//	1 ESP (FAT32, ESP_MIB): systemd-boot, a/vmlinuz, loader entry slot-a.conf
//	2 root of slot A (the squashfs), 3 root of slot B, each ROOT_MIB
//	4 /perm (ext4) to the end of the disk
func disk(args []string) error {
	fs := flag.NewFlagSet("disk", flag.ExitOnError)
	bootFAT := fs.String("boot", "", "boot file system gok wrote (--boot)")
	root := fs.String("root", "", "root file system gok wrote (--root)")
	out := fs.String("o", "", "disk image to write")
	size := fs.Int64("size", 2<<30, "disk size in bytes (the file is sparse)")
	espMiB := fs.Int64("esp-mib", 300, "boot partition size, MiB")
	rootMiB := fs.Int64("root-mib", 500, "each root slot's size, MiB")
	version := fs.String("version", "", "version of the image (slot A's entry)")
	fs.Parse(args)
	if *bootFAT == "" || *root == "" || *out == "" || *version == "" {
		return fmt.Errorf("disk needs -boot, -root, -o and -version")
	}
	for _, tool := range []string{"sgdisk", "mkfs.vfat", "mcopy", "mmd", "mtype", "mkfs.ext4"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found (apt-get install gdisk dosfstools mtools e2fsprogs)", tool)
		}
	}
	entry, err := run("mtype", "-i", *bootFAT, "::loader/entries/gokrazy.conf")
	if err != nil {
		return err
	}
	var options string
	for _, l := range strings.Split(entry, "\n") {
		if v, ok := strings.CutPrefix(l, "options "); ok {
			options = v
			break
		}
	}
	m := rootPartUUID.FindStringSubmatch(options)
	if m == nil {
		return fmt.Errorf("%s: boot entry has no root=PARTUUID=...: %q", *bootFAT, entry)
	}
	espUUID := strings.ToUpper(m[1])
	prefix := espUUID[:len(espUUID)-4]
	options = strings.Join(strings.Fields(rootPartUUID.ReplaceAllString(options, "")), " ")

	tmp, err := os.MkdirTemp("", "sensor-disk-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	// The boot partition.
	esp := filepath.Join(tmp, "esp.img")
	espBytes := *espMiB << 20
	if err := truncate(esp, espBytes); err != nil {
		return err
	}
	if _, err := run("mkfs.vfat", "-F", "32", "-n", "SENSORBOOT", esp); err != nil {
		return err
	}
	if _, err := run("mcopy", "-s", "-i", *bootFAT, "::EFI", tmp); err != nil {
		return err
	}
	if _, err := run("mcopy", "-i", *bootFAT, "::vmlinuz", filepath.Join(tmp, "vmlinuz")); err != nil {
		return err
	}
	sb := update.SystemdBoot{Options: options, PartUUID: strings.ToLower(espUUID)}
	os.WriteFile(filepath.Join(tmp, "loader.conf"), []byte("default "+update.EntryName(update.SlotA)+"\ntimeout 0\neditor no\n"), 0o644)
	os.WriteFile(filepath.Join(tmp, "slot-a.conf"), []byte(sb.Entry(update.SlotA, *version, update.DefaultKernel)), 0o644)
	steps := [][]string{
		{"mcopy", "-s", "-i", esp, filepath.Join(tmp, "EFI"), "::"},
		{"mmd", "-i", esp, "::a", "::b", "::loader", "::loader/entries"},
		{"mcopy", "-i", esp, filepath.Join(tmp, "vmlinuz"), "::" + update.KernelPath(update.SlotA, update.DefaultKernel)},
		{"mcopy", "-i", esp, filepath.Join(tmp, "loader.conf"), "::loader/loader.conf"},
		{"mcopy", "-i", esp, filepath.Join(tmp, "slot-a.conf"), "::loader/entries/" + update.EntryName(update.SlotA)},
	}
	for _, s := range steps {
		if _, err := run(s[0], s[1:]...); err != nil {
			return err
		}
	}

	// The partition table.
	os.Remove(*out)
	if err := truncate(*out, *size); err != nil {
		return err
	}
	rootSectors := *rootMiB << 20 / sector
	espSectors := espBytes / sector
	p2 := int64(firstSector) + espSectors
	p3 := p2 + rootSectors
	p4 := p3 + rootSectors
	if _, err := run("sgdisk", "-o", "-U", prefix+"0000",
		fmt.Sprintf("-n1:%d:%d", firstSector, p2-1), "-t1:"+typeESP, "-u1:"+prefix+"0001", "-c1:boot",
		fmt.Sprintf("-n2:%d:%d", p2, p3-1), "-t2:"+typeRootArm64, "-u2:"+prefix+"0002", "-c2:root-a",
		fmt.Sprintf("-n3:%d:%d", p3, p4-1), "-t3:"+typeLinux, "-u3:"+prefix+"0003", "-c3:root-b",
		fmt.Sprintf("-n4:%d:0", p4), "-t4:"+typeLinux, "-u4:"+prefix+"0004", "-c4:perm",
		*out); err != nil {
		return err
	}
	if err := copyAt(*out, esp, firstSector*sector); err != nil {
		return err
	}
	if st, err := os.Stat(*root); err != nil {
		return err
	} else if st.Size() > *rootMiB<<20 {
		return fmt.Errorf("%s is %d bytes, larger than a %d MiB slot", *root, st.Size(), *rootMiB)
	}
	if err := copyAt(*out, *root, p2*sector); err != nil {
		return err
	}
	// /perm: from p4 to the GPT backup header (33 sectors at the end).
	permBytes := (*size/sector - 34 - p4) * sector
	if _, err := run("mkfs.ext4", "-q", "-F", "-L", "perm", "-E", fmt.Sprintf("offset=%d", p4*sector), *out,
		fmt.Sprintf("%dk", permBytes/1024)); err != nil {
		return err
	}
	fmt.Printf("%s: boot %d MiB (slot A kernel, entry %s), roots %d MiB each, /perm %d MiB\n",
		*out, *espMiB, update.EntryName(update.SlotA), *rootMiB, permBytes>>20)
	return nil
}

func run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func truncate(path string, n int64) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if err := f.Truncate(n); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// copyAt writes the file src into dst at byte off, leaving holes where src
// has zeros of a whole block (the image stays sparse).
func copyAt(dst, src string, off int64) error {
	d, err := os.OpenFile(dst, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer d.Close()
	s, err := os.Open(src)
	if err != nil {
		return err
	}
	defer s.Close()
	buf := make([]byte, 1<<20)
	zero := make([]byte, 4096)
	for pos := off; ; {
		n, rerr := io.ReadFull(s, buf)
		for i := 0; i < n; i += len(zero) {
			blk := buf[i:min(i+len(zero), n)]
			if string(blk) != string(zero[:len(blk)]) {
				if _, err := d.WriteAt(blk, pos+int64(i)); err != nil {
					return err
				}
			}
		}
		pos += int64(n)
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	return d.Sync()
}
