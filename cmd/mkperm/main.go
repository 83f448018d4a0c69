// Command mkperm creates the appliance's /perm file system on its first
// boot. It runs as a gokrazy service beside the others; gokrazy's init
// mounts partition 4 of the boot disk on /perm before it starts them, and
// goes on without it when nothing there mounts.
//
// When /perm is mounted, mkperm says so and stops (exit status 125:
// gokrazy does not start it again). Otherwise it finds the boot disk from
// root=PARTUUID=... on the kernel command line, checks that partition 4,
// as it will be once grown to the end of the disk, holds no file system
// (an ext superblock at the primary or any backup location, a boot
// sector, other formats' signatures), grows the partition to the disk's
// end when the disk is larger than its partition table says, creates an
// ext4 file system with a journal on it (package permfs), and reboots
// through gokrazy so that init mounts it. Every step survives a power cut:
// the next boot finishes the work.
//
// A partition that holds something that did not mount is never written:
// mkperm logs what it found and stops. Its log goes to gokrazy's status
// page and to the kernel log (the console).
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/passivesensor/sensor/gpt"
	"github.com/passivesensor/sensor/internal/gokrazyapi"
	"github.com/passivesensor/sensor/permfs"
	"github.com/passivesensor/sensor/update"
)

// dontRestart is the exit status that tells gokrazy not to start the
// service again.
const dontRestart = 125

func main() {
	var (
		permDir  = flag.String("perm", "/perm", "where gokrazy mounts the permanent partition")
		partNum  = flag.Int("partition", 4, "the permanent partition's number on the boot disk")
		noReboot = flag.Bool("no-reboot", false, "do not reboot after creating the file system")
	)
	flag.Parse()
	log := slog.New(slog.NewTextHandler(io.MultiWriter(os.Stderr, kmsg()), nil))
	if err := run(log, *permDir, *partNum, !*noReboot); err != nil {
		log.Error("/perm not created", "err", err)
	}
	os.Exit(dontRestart)
}

func run(log *slog.Logger, permDir string, partNum int, reboot bool) error {
	if src, fstype, ok := mountOf("/proc/self/mountinfo", permDir); ok {
		var st unix.Statfs_t
		unix.Statfs(permDir, &st)
		log.Info("/perm is mounted: nothing to do", "device", src, "type", fstype,
			"mib", int64(st.Blocks)*st.Bsize>>20, "free_mib", int64(st.Bavail)*st.Bsize>>20)
		return nil
	}
	layout, err := update.BootLayout()
	if err != nil {
		return err
	}
	dev := layout.Dev(partNum)
	log.Info("/perm is not mounted: creating it", "disk", layout.Disk, "device", dev)
	f, err := os.OpenFile(layout.Disk, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("size of %s: %w", layout.Disk, err)
	}
	res, err := prepare(log, permfs.FileAt{File: f}, uint64(size/gpt.SectorSize), partNum)
	if errors.Is(err, errForeign) {
		var found []string
		for _, s := range res.Foreign {
			found = append(found, s.String())
		}
		log.Error("partition holds data that gokrazy could not mount on /perm: leaving it alone",
			"device", dev, "found", strings.Join(found, "; "),
			"to_start_afresh", "erase the whole partition (e.g. blkdiscard "+dev+") and reboot")
		return nil
	}
	if err != nil {
		return err
	}
	log.Info("created /perm: ext4 with a journal", "device", dev, "mib", res.Created.Bytes()>>20,
		"partition_mib", res.Part.Bytes()>>20, "grown", res.Grown, "resumed", res.Resumed,
		"uuid", fmt.Sprintf("%x", res.Created.UUID), "groups", res.Created.Groups,
		"journal_mib", res.Created.JournalBlocks*4096>>20, "took", res.Took.Round(time.Millisecond))
	if !reboot {
		return nil
	}
	log.Info("rebooting so that gokrazy mounts /perm")
	return gokrazyapi.New().Reboot()
}

// mountOf finds the mount at dir in a mountinfo file and returns its
// source and file system type.
func mountOf(mountinfo, dir string) (source, fstype string, ok bool) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return "", "", false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
		pre, post, found := strings.Cut(sc.Text(), " - ")
		fields, rest := strings.Fields(pre), strings.Fields(post)
		if found && len(fields) >= 5 && fields[4] == dir && len(rest) >= 2 {
			source, fstype, ok = rest[1], rest[0], true // the last mount there wins
		}
	}
	return source, fstype, ok
}

// kmsg writes each record to the kernel log (and so to the console), or
// nowhere when /dev/kmsg cannot be opened.
func kmsg() io.Writer {
	f, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0)
	if err != nil {
		return io.Discard
	}
	return kmsgWriter{f}
}

type kmsgWriter struct{ f *os.File }

// Write writes p as one kernel log record at level notice.
func (k kmsgWriter) Write(p []byte) (int, error) {
	if _, err := k.f.Write(append([]byte("<5>mkperm: "), p...)); err != nil {
		return 0, err
	}
	return len(p), nil
}
