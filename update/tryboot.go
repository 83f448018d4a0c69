package update

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Files of the Raspberry Pi's boot partition.
const (
	PiConfig  = "config.txt"  // what the firmware reads at every start
	PiTryboot = "tryboot.txt" // what it reads instead, once, when the tryboot flag is set
	PiCmdline = "cmdline.txt" // the kernel command line, in the slot's directory
)

// piSlotKeys are the config.txt properties that name a slot's directory:
// os_prefix (kernel, device trees, overlays and cmdline.txt are read from
// under it) and the firmware's own files.
var piSlotKeys = []string{"os_prefix", "start_file", "fixup_file"}

// piSlotSpan bounds where the slot's lines lie in config.txt: inside its
// first sector, so that a commit, which changes only those bytes, is one
// sector written in place.
const piSlotSpan = 512

// PiConfigText is a config.txt (or tryboot.txt) that starts slot s: the
// slot's lines first, then common (the board's settings, as gokrazy
// writes them).
func PiConfigText(s Slot, common string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# The A/B updater switches slots by rewriting the next three lines in place.\n")
	fmt.Fprintf(&b, "os_prefix=%s/\nstart_file=%s/start4.elf\nfixup_file=%s/fixup4.dat\n\n", s, s, s)
	b.WriteString(strings.TrimSpace(common))
	b.WriteString("\n")
	return b.Bytes()
}

// Tryboot is the boot control of the Raspberry Pi, after the firmware's
// documented fail-safe update flow (TRYBOOT): the firmware reads
// config.txt at every start, or tryboot.txt instead when the one-shot
// tryboot flag is set (reboot "0 tryboot", or the SET_REBOOT_FLAGS
// firmware property); it clears the flag before it starts the kernel, so
// a trial that panics, hangs until the watchdog resets the box, or loses
// power starts config.txt's slot again.
//
// Both slots live on gokrazy's one boot partition, each in its own
// directory (a/, b/) chosen by os_prefix: kernel, device trees and
// cmdline.txt, whose root= names the slot's root partition, and the
// firmware (start_file, fixup_file). config.txt and tryboot.txt differ in
// the slot their first lines name; the trial writes tryboot.txt and sets
// the flag, the commit rewrites config.txt in place.
type Tryboot struct {
	Boot BootFS
	Flag RebootFlag
	// Running is the slot this boot came from: the root= of the kernel
	// command line.
	Running Slot
	// Options is the kernel command line without root= (root= is added
	// per slot from PartUUID, as for SystemdBoot).
	Options  string
	PartUUID string
}

// RebootFlag is the firmware's one-shot tryboot flag.
type RebootFlag interface {
	SetTryboot(on bool) error
}

// Overwriter is a BootFS that rewrites a file in place, keeping its length:
// the blocks holding unchanged bytes are written with what they held, so a
// power cut leaves each sector either old or new, and a change that lies
// inside one sector is atomic. A file replaced by rename on FAT is not: the
// directory entry and the allocation table are separate writes.
type Overwriter interface {
	Overwrite(name string, data []byte) error
}

// Booted is the slot the kernel command line mounted.
func (b *Tryboot) Booted() (Slot, error) { return b.Running, nil }

// Default is the slot config.txt names.
func (b *Tryboot) Default() (Slot, error) {
	cfg, err := b.Boot.ReadFile(PiConfig)
	if err != nil {
		return 0, fmt.Errorf("update: %s: %w", PiConfig, err)
	}
	return PiConfigSlot(cfg)
}

// PiConfigSlot reads the slot a config.txt starts from its os_prefix.
func PiConfigSlot(cfg []byte) (Slot, error) {
	for _, l := range strings.Split(string(cfg), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "os_prefix="); ok {
			switch strings.TrimSpace(v) {
			case "a/":
				return SlotA, nil
			case "b/":
				return SlotB, nil
			}
			return 0, fmt.Errorf("update: os_prefix=%s names no slot", v)
		}
	}
	return 0, errors.New("update: config.txt has no os_prefix: not a slot layout")
}

// piWithSlot returns cfg with its slot lines naming s: the same length,
// the same bytes but for the slot letters, all of them in the first
// piSlotSpan bytes.
func piWithSlot(cfg []byte, s Slot) ([]byte, error) {
	out := bytes.Clone(cfg)
	found := 0
	for off := 0; off < len(out); {
		end := bytes.IndexByte(out[off:], '\n')
		if end < 0 {
			end = len(out) - off
		}
		line := out[off : off+end]
		for _, k := range piSlotKeys {
			if v, ok := bytes.CutPrefix(line, []byte(k+"=")); ok {
				if len(v) < 2 || (v[0] != 'a' && v[0] != 'b') || v[1] != '/' {
					return nil, fmt.Errorf("update: %s: %s names no slot directory", PiConfig, line)
				}
				if off+end > piSlotSpan {
					return nil, fmt.Errorf("update: %s: %s lies past byte %d, a commit would not be one sector", PiConfig, k, piSlotSpan)
				}
				v[0] = s.String()[0]
				found++
			}
		}
		off += end + 1
	}
	if found != len(piSlotKeys) {
		return nil, fmt.Errorf("update: %s names %d of the slot lines %v", PiConfig, found, piSlotKeys)
	}
	return out, nil
}

// WriteEntry writes slot s's cmdline.txt. The slot's kernel, device trees
// and firmware are boot parts of the update, written beside it.
func (b *Tryboot) WriteEntry(s Slot, version, kernel string) error {
	return b.Boot.WriteFile(KernelPath(s, PiCmdline), []byte(slotOptions(b.Options, b.PartUUID, s, version)+"\n"))
}

// Disarm clears the tryboot flag and points tryboot.txt at the default
// slot, so that even a tryboot flag set by someone else starts it.
func (b *Tryboot) Disarm() error {
	if err := b.Flag.SetTryboot(false); err != nil {
		return fmt.Errorf("update: clear the tryboot flag: %w", err)
	}
	def, err := b.Default()
	if err != nil {
		return err
	}
	return b.writeTryboot(def)
}

// ArmTrial points tryboot.txt at s and sets the tryboot flag: the next
// start, and only that one, boots s.
func (b *Tryboot) ArmTrial(s Slot) error {
	if err := b.writeTryboot(s); err != nil {
		return err
	}
	if err := b.Flag.SetTryboot(true); err != nil {
		return fmt.Errorf("update: arm trial of slot %s: set the tryboot flag: %w", s, err)
	}
	return nil
}

// Commit rewrites config.txt in place to start s, then tryboot.txt.
func (b *Tryboot) Commit(s Slot) error {
	next, err := b.configNaming(s)
	if err == nil {
		err = b.overwrite(PiConfig, next)
	}
	if err != nil {
		return fmt.Errorf("update: commit slot %s: %w", s, err)
	}
	return b.writeTryboot(s)
}

// configNaming is the text of config.txt with its slot lines naming s.
func (b *Tryboot) configNaming(s Slot) ([]byte, error) {
	cfg, err := b.Boot.ReadFile(PiConfig)
	if err != nil {
		return nil, fmt.Errorf("update: %s: %w", PiConfig, err)
	}
	return piWithSlot(cfg, s)
}

// writeTryboot makes tryboot.txt the text of config.txt naming s.
func (b *Tryboot) writeTryboot(s Slot) error {
	t, err := b.configNaming(s)
	if err != nil {
		return err
	}
	if old, err := b.Boot.ReadFile(PiTryboot); err == nil && len(old) == len(t) {
		if bytes.Equal(old, t) {
			return nil
		}
		return b.overwrite(PiTryboot, t)
	}
	// Missing, or config.txt changed length: write it whole. Harmless
	// while the flag is clear, and the flag is set only after this.
	return b.Boot.WriteFile(PiTryboot, t)
}

func (b *Tryboot) overwrite(name string, data []byte) error {
	o, ok := b.Boot.(Overwriter)
	if !ok {
		return fmt.Errorf("update: the boot partition cannot rewrite %s in place", name)
	}
	return o.Overwrite(name, data)
}

// Overwrite rewrites name in place with data of the same length and
// flushes it.
func (d DirFS) Overwrite(name string, data []byte) error {
	p := filepath.Join(d.Dir, filepath.FromSlash(name))
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err == nil && st.Size() != int64(len(data)) {
		err = fmt.Errorf("%s has %d bytes, the new text %d: not rewritten in place", name, st.Size(), len(data))
	}
	if err == nil {
		_, err = f.WriteAt(data, 0)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// VCIO is the Raspberry Pi firmware's property mailbox (/dev/vcio), where
// the tryboot flag is set: the kernel's firmware driver sends the same
// SET_REBOOT_FLAGS property when asked to reboot "0 tryboot", and leaves a
// flag set beforehand alone on a plain reboot.
type VCIO struct {
	Path string // /dev/vcio when empty
}

// Firmware property tags and the mailbox ioctl (_IOWR(100, 0, char *)).
const (
	rpiSetRebootFlags = 0x00038064
	rpiStatusSuccess  = 0x80000000
	iocMboxProperty   = 0xc0086400
	rebootFlagTryboot = 1
)

// SetTryboot sets or clears the tryboot flag.
func (v VCIO) SetTryboot(on bool) error {
	path := v.Path
	if path == "" {
		path = "/dev/vcio"
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	var flags uint32
	if on {
		flags = rebootFlagTryboot
	}
	// size, request, tag, value size, request/response, value, end tag
	buf := []uint32{7 * 4, 0, rpiSetRebootFlags, 4, 0, flags, 0}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), iocMboxProperty, uintptr(unsafe.Pointer(&buf[0]))); errno != 0 {
		return fmt.Errorf("%s: SET_REBOOT_FLAGS: %w", path, errno)
	}
	if buf[1] != rpiStatusSuccess {
		return fmt.Errorf("%s: SET_REBOOT_FLAGS answered %#x", path, buf[1])
	}
	return nil
}
