package main

import (
	"encoding/binary"
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

// disk lays out an appliance disk with room for both slots' boot files:
// gok's own layout has a 100 MiB boot partition, which holds one arm64
// kernel (~57 MiB, ~46 MiB on the Raspberry Pi) and so cannot give each
// slot its own. The partitions keep gok's GPT unique GUIDs (gokrazy finds
// its root and /perm by them):
//
//	1 boot (FAT32, ESP_MIB): slot A's boot files in a/, and
//	  arm64: systemd-boot and the loader entry slot-a.conf
//	  rpi4:  the firmware, config.txt and tryboot.txt naming a/ (os_prefix),
//	         a hybrid MBR whose first entry is this partition, for the firmware
//	2 root of slot A (the squashfs), 3 root of slot B, each ROOT_MIB
//	4 /perm to the end of the disk, left blank (zeros): the box's
//	  cmd/mkperm grows it to the end of the box's disk and makes the file
//	  system on the first boot
func disk(args []string) error {
	fs := flag.NewFlagSet("disk", flag.ExitOnError)
	bootFAT := fs.String("boot", "", "boot file system gok wrote (--boot)")
	root := fs.String("root", "", "root file system gok wrote (--root)")
	out := fs.String("o", "", "disk image to write")
	size := fs.Int64("size", 2<<30, "disk size in bytes (the file is sparse)")
	espMiB := fs.Int64("esp-mib", 300, "boot partition size, MiB")
	rootMiB := fs.Int64("root-mib", 500, "each root slot's size, MiB")
	version := fs.String("version", "", "version of the image (slot A's entry)")
	board := fs.String("board", "arm64", "board: arm64 (EFI, systemd-boot) or rpi4 (Raspberry Pi firmware, tryboot)")
	fs.Parse(args)
	if *bootFAT == "" || *root == "" || *out == "" || *version == "" {
		return fmt.Errorf("disk needs -boot, -root, -o and -version")
	}
	if *board != "arm64" && *board != "rpi4" {
		return fmt.Errorf("-board %q: want arm64 or rpi4", *board)
	}
	for _, tool := range []string{"sgdisk", "mkfs.vfat", "mcopy", "mmd", "mtype"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found (apt-get install gdisk dosfstools mtools)", tool)
		}
	}
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
	var espUUID string
	if *board == "rpi4" {
		espUUID, err = piBoot(tmp, *bootFAT, esp, *version)
	} else {
		espUUID, err = efiBoot(tmp, *bootFAT, esp, *version)
	}
	if err != nil {
		return err
	}
	prefix := espUUID[:len(espUUID)-4]

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
	if *board == "rpi4" {
		if err := hybridMBR(*out, firstSector, espSectors); err != nil {
			return err
		}
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
	// /perm: from p4 to the GPT backup table (33 sectors at the end),
	// zeros in the sparse file: made on the box's first boot.
	permBytes := (*size/sector - 34 - p4) * sector
	fmt.Printf("%s: %s, boot %d MiB (slot A's boot files in a/), roots %d MiB each, /perm %d MiB unformatted (made on the first boot)\n",
		*out, *board, *espMiB, *rootMiB, permBytes>>20)
	return nil
}

// bootOptions splits a kernel command line gok wrote into the options
// without root= and the boot partition's GPT unique GUID (uppercase) that
// root=PARTUUID=.../PARTNROFF=1 names.
func bootOptions(cmdline, from string) (options, espUUID string, err error) {
	m := rootPartUUID.FindStringSubmatch(cmdline)
	if m == nil {
		return "", "", fmt.Errorf("%s has no root=PARTUUID=...: %q", from, cmdline)
	}
	return strings.Join(strings.Fields(rootPartUUID.ReplaceAllString(cmdline, "")), " "), strings.ToUpper(m[1]), nil
}

// efiBoot fills the EFI boot partition: systemd-boot from gok's boot file
// system, slot A's kernel, loader.conf and slot A's entry.
func efiBoot(tmp, bootFAT, esp, version string) (string, error) {
	entry, err := run("mtype", "-i", bootFAT, "::loader/entries/gokrazy.conf")
	if err != nil {
		return "", err
	}
	var options string
	for _, l := range strings.Split(entry, "\n") {
		if v, ok := strings.CutPrefix(l, "options "); ok {
			options = v
			break
		}
	}
	options, espUUID, err := bootOptions(options, bootFAT+" loader entry")
	if err != nil {
		return "", err
	}
	if _, err := run("mcopy", "-s", "-i", bootFAT, "::EFI", tmp); err != nil {
		return "", err
	}
	if _, err := run("mcopy", "-i", bootFAT, "::vmlinuz", filepath.Join(tmp, "vmlinuz")); err != nil {
		return "", err
	}
	sb := update.SystemdBoot{Options: options, PartUUID: strings.ToLower(espUUID)}
	os.WriteFile(filepath.Join(tmp, "loader.conf"), []byte("default "+update.EntryName(update.SlotA)+"\ntimeout 0\neditor no\n"), 0o644)
	os.WriteFile(filepath.Join(tmp, "slot-a.conf"), []byte(sb.Entry(update.SlotA, version, update.DefaultKernel)), 0o644)
	steps := [][]string{
		{"mcopy", "-s", "-i", esp, filepath.Join(tmp, "EFI"), "::"},
		{"mmd", "-i", esp, "::a", "::b", "::loader", "::loader/entries"},
		{"mcopy", "-i", esp, filepath.Join(tmp, "vmlinuz"), "::" + update.KernelPath(update.SlotA, update.DefaultKernel)},
		{"mcopy", "-i", esp, filepath.Join(tmp, "loader.conf"), "::loader/loader.conf"},
		{"mcopy", "-i", esp, filepath.Join(tmp, "slot-a.conf"), "::loader/entries/" + update.EntryName(update.SlotA)},
	}
	for _, s := range steps {
		if _, err := run(s[0], s[1:]...); err != nil {
			return "", err
		}
	}
	return espUUID, nil
}

// piSlotFile says whether a boot file is one each Raspberry Pi slot carries
// in its directory: the kernel, the device trees of the Raspberry Pi 4
// family, and the firmware (config.txt's start_file and fixup_file).
func piSlotFile(name string) bool {
	return name == update.DefaultKernel || name == "start4.elf" || name == "fixup4.dat" ||
		strings.HasPrefix(name, "bcm2711-") && strings.HasSuffix(name, ".dtb")
}

// piBoot fills the Raspberry Pi's boot partition from gok's: the firmware
// stays at the top (the boot ROM looks for it there), slot A's kernel,
// device trees, firmware and cmdline.txt go to a/, and config.txt and
// tryboot.txt name a/ with os_prefix, followed by gok's own settings.
func piBoot(tmp, bootFAT, esp, version string) (string, error) {
	src := filepath.Join(tmp, "gok")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	if _, err := run("mcopy", "-s", "-n", "-i", bootFAT, "::*", src); err != nil {
		return "", err
	}
	cmdline, err := os.ReadFile(filepath.Join(src, update.PiCmdline))
	if err != nil {
		return "", fmt.Errorf("%s: %w", bootFAT, err)
	}
	options, espUUID, err := bootOptions(string(cmdline), bootFAT+" cmdline.txt")
	if err != nil {
		return "", err
	}
	cfg, err := os.ReadFile(filepath.Join(src, update.PiConfig))
	if err != nil {
		return "", fmt.Errorf("%s: %w", bootFAT, err)
	}
	var common []string
	for _, l := range strings.Split(string(cfg), "\n") {
		k, _, _ := strings.Cut(strings.TrimSpace(l), "=")
		if k != "os_prefix" && k != "start_file" && k != "fixup_file" {
			common = append(common, l)
		}
	}
	text := update.PiConfigText(update.SlotA, strings.Join(common, "\n"))
	slotDir := filepath.Join(tmp, "a")
	if err := os.MkdirAll(slotDir, 0o755); err != nil {
		return "", err
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		return "", err
	}
	var top []string
	for _, e := range ents {
		name := e.Name()
		switch {
		case piSlotFile(name):
			if err := os.Rename(filepath.Join(src, name), filepath.Join(slotDir, name)); err != nil {
				return "", err
			}
			if name == "start4.elf" || name == "fixup4.dat" {
				top = append(top, name) // also where the boot ROM looks
			}
		case e.IsDir(), name == update.PiCmdline, name == update.PiConfig, name == update.DefaultKernel,
			strings.HasSuffix(name, ".dtb"):
			// Replaced by the slot's own, or not for this board.
		default:
			top = append(top, name)
		}
	}
	for _, need := range []string{update.DefaultKernel, "start4.elf", "fixup4.dat"} {
		if _, err := os.Stat(filepath.Join(slotDir, need)); err != nil {
			return "", fmt.Errorf("%s holds no %s for slot a", bootFAT, need)
		}
	}
	sb := update.Tryboot{Options: options, PartUUID: strings.ToLower(espUUID)}
	files := map[string][]byte{update.PiConfig: text, update.PiTryboot: text}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), data, 0o644); err != nil {
			return "", err
		}
		top = append(top, name)
	}
	copyTop := []string{"mcopy", "-i", esp}
	for _, name := range top {
		p := filepath.Join(src, name)
		if _, ok := files[name]; ok {
			p = filepath.Join(tmp, name)
		} else if name == "start4.elf" || name == "fixup4.dat" {
			p = filepath.Join(slotDir, name)
		}
		copyTop = append(copyTop, p)
	}
	copyTop = append(copyTop, "::")
	if _, err := run(copyTop[0], copyTop[1:]...); err != nil {
		return "", err
	}
	if _, err := run("mcopy", "-s", "-i", esp, slotDir, "::"); err != nil {
		return "", err
	}
	if _, err := run("mmd", "-i", esp, "::b"); err != nil {
		return "", err
	}
	// Slot a's cmdline.txt, written as the updater writes a slot's.
	sb.Boot = fatFS{img: esp, tmp: tmp}
	if err := sb.WriteEntry(update.SlotA, version, update.DefaultKernel); err != nil {
		return "", err
	}
	return espUUID, nil
}

// fatFS is a FAT image's files, through mtools.
type fatFS struct{ img, tmp string }

func (f fatFS) WriteFile(name string, data []byte) error {
	p := filepath.Join(f.tmp, "fatfs-file")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return err
	}
	_, err := run("mcopy", "-o", "-i", f.img, p, "::"+name)
	return err
}

func (f fatFS) ReadFile(name string) ([]byte, error) {
	s, err := run("mtype", "-i", f.img, "::"+name)
	return []byte(s), err
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

// hybridMBR writes the MBR gokrazy writes for the Raspberry Pi: its
// firmware reads the MBR, not the GPT. Entry 1 is the boot partition (FAT32
// with LBA, active); entry 2 covers the GPT header and table (type 0xEE,
// protective) so that Linux reads the GPT for the rest.
func hybridMBR(path string, first, bootSectors int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	mbr := make([]byte, 512)
	if _, err := f.ReadAt(mbr, 0); err != nil {
		return err
	}
	entry := func(i int, active, typ byte, start, count int64) {
		e := mbr[446+16*i : 446+16*(i+1)]
		clear(e)
		e[0] = active
		copy(e[1:4], []byte{0xfe, 0xff, 0xff}) // no CHS
		e[4] = typ
		copy(e[5:8], []byte{0xfe, 0xff, 0xff})
		binary.LittleEndian.PutUint32(e[8:], uint32(start))
		binary.LittleEndian.PutUint32(e[12:], uint32(count))
	}
	entry(0, 0x80, 0x0c, first, bootSectors)
	entry(1, 0, 0xee, 1, first-1)
	clear(mbr[446+32 : 446+64])
	mbr[510], mbr[511] = 0x55, 0xaa
	if _, err := f.WriteAt(mbr, 0); err != nil {
		return err
	}
	return f.Sync()
}
