package update

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// PartitionGUID reads the unique GUID of GPT partition number n (1-based)
// from a disk, in the usual text form, uppercase. It reads the primary
// header at LBA 1 and checks its signature; sector size 512.
func PartitionGUID(disk io.ReaderAt, n int) (string, error) {
	hdr := make([]byte, 92)
	if _, err := disk.ReadAt(hdr, 512); err != nil {
		return "", fmt.Errorf("gpt header: %w", err)
	}
	if string(hdr[:8]) != "EFI PART" {
		return "", errors.New("no GPT header at LBA 1")
	}
	entriesLBA := binary.LittleEndian.Uint64(hdr[72:])
	count := binary.LittleEndian.Uint32(hdr[80:])
	size := binary.LittleEndian.Uint32(hdr[84:])
	if n < 1 || uint32(n) > count || size < 128 || size > 4096 {
		return "", fmt.Errorf("gpt: no partition %d (%d entries of %d bytes)", n, count, size)
	}
	e := make([]byte, 128)
	if _, err := disk.ReadAt(e, int64(entriesLBA)*512+int64(n-1)*int64(size)); err != nil {
		return "", fmt.Errorf("gpt entry %d: %w", n, err)
	}
	return guidString(e[16:32]), nil
}

// guidString formats a GUID stored mixed-endian, as GPT stores it.
func guidString(b []byte) string {
	return strings.ToUpper(fmt.Sprintf("%08x-%04x-%04x-%x-%x",
		binary.LittleEndian.Uint32(b[0:]), binary.LittleEndian.Uint16(b[4:]), binary.LittleEndian.Uint16(b[6:]), b[8:10], b[10:16]))
}

// Layout is where the running system's boot partition and slots are.
type Layout struct {
	Disk     string // e.g. /dev/vda
	BootPart int    // partition number of the boot partition
	BootUUID string // its unique GUID, as root=PARTUUID= names it
	// Booted is the slot the kernel command line mounted as root.
	Booted Slot
}

// Dev returns the device node of partition n of the disk.
func (l Layout) Dev(n int) string {
	last := l.Disk[len(l.Disk)-1]
	if last >= '0' && last <= '9' { // mmcblk0, nvme0n1
		return fmt.Sprintf("%sp%d", l.Disk, n)
	}
	return fmt.Sprintf("%s%d", l.Disk, n)
}

// RootDev is the device node of slot s's root partition.
func (l Layout) RootDev(s Slot) string { return l.Dev(l.BootPart + s.PartOffset()) }

// BootLayout is FindLayout for the running box: its kernel command line
// (/proc/cmdline) and block devices.
func BootLayout() (Layout, error) {
	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return Layout{}, fmt.Errorf("update: %w", err)
	}
	return FindLayout(string(cmdline), "/sys/block", "/dev")
}

var cmdlineRoot = regexp.MustCompile(`root=PARTUUID=([0-9A-Fa-f-]{36})/PARTNROFF=(\d)`)

// FindLayout reads root=PARTUUID=<boot>/PARTNROFF=<n> from the kernel
// command line and finds, among the block devices in sysBlock (/sys/block)
// with nodes in devDir (/dev), the disk whose GPT holds that partition.
func FindLayout(cmdline, sysBlock, devDir string) (Layout, error) {
	m := cmdlineRoot.FindStringSubmatch(cmdline)
	if m == nil {
		return Layout{}, fmt.Errorf("update: kernel command line has no root=PARTUUID=.../PARTNROFF=N: %q", cmdline)
	}
	uuid := strings.ToUpper(m[1])
	var booted Slot
	switch m[2] {
	case "1":
		booted = SlotA
	case "2":
		booted = SlotB
	default:
		return Layout{}, fmt.Errorf("update: root is partition +%s of the boot partition, not a slot", m[2])
	}
	ents, err := os.ReadDir(sysBlock)
	if err != nil {
		return Layout{}, fmt.Errorf("update: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, "loop") || strings.HasPrefix(name, "ram") {
			continue
		}
		// Devices without media (an unconnected nbd, an empty card
		// reader) have size 0; reading them may block.
		if b, err := os.ReadFile(filepath.Join(sysBlock, name, "size")); err != nil || strings.TrimSpace(string(b)) == "0" {
			continue
		}
		f, err := os.Open(filepath.Join(devDir, name))
		if err != nil {
			continue
		}
		for n := 1; n <= 8; n++ {
			g, err := PartitionGUID(f, n)
			if err != nil {
				break
			}
			if g == uuid {
				f.Close()
				return Layout{Disk: filepath.Join(devDir, name), BootPart: n, BootUUID: uuid, Booted: booted}, nil
			}
		}
		f.Close()
	}
	return Layout{}, fmt.Errorf("update: no disk holds the boot partition %s", uuid)
}
