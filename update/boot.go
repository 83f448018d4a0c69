package update

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf16"

	"golang.org/x/sys/unix"
)

// Slot is one of the two A/B slots: a root partition and its own boot
// files and boot entry.
type Slot uint8

// The two slots. On gokrazy's disk layout slot A's root is partition 2
// (PARTNROFF=1 from the boot partition) and slot B's is partition 3.
const (
	SlotA Slot = 0
	SlotB Slot = 1
)

func (s Slot) String() string {
	if s == SlotB {
		return "b"
	}
	return "a"
}

// Other returns the other slot.
func (s Slot) Other() Slot { return 1 - s }

// PartOffset is the slot's root partition number relative to the boot
// partition, as the kernel's root=PARTUUID=.../PARTNROFF=N takes it.
func (s Slot) PartOffset() int { return int(s) + 1 }

// Device is a slot's root partition (a block device, or a region of a disk
// image file in tests).
type Device interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
	Size() int64
}

// BootFS is the boot partition (the EFI system partition) seen as files.
type BootFS interface {
	// WriteFile stores data under name (slash-separated, relative to the
	// partition's root) and returns only once it is durable.
	WriteFile(name string, data []byte) error
	ReadFile(name string) ([]byte, error)
}

// VarStore holds the firmware's variables (UEFI variables).
type VarStore interface {
	// Get returns a variable's value; an error wrapping fs.ErrNotExist
	// when it is not set.
	Get(name string) (string, error)
	Set(name, value string) error
	Delete(name string) error
}

// BootControl decides which slot the firmware starts.
type BootControl interface {
	// Booted is the slot this boot came from.
	Booted() (Slot, error)
	// Default is the slot the firmware starts when no trial is armed.
	Default() (Slot, error)
	// WriteEntry writes slot s's boot entry for version, naming its
	// kernel. The entry is used only once armed or committed.
	WriteEntry(s Slot, version, kernel string) error
	// Disarm cancels an armed trial (before its slot is written again).
	Disarm() error
	// ArmTrial makes the next boot, and only the next one, start s.
	ArmTrial(s Slot) error
	// Commit makes s the default.
	Commit(s Slot) error
}

// systemd-boot's Boot Loader Interface variables, under its vendor GUID.
const (
	loaderGUID        = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"
	varEntryOneShot   = "LoaderEntryOneShot"
	varEntryDefault   = "LoaderEntryDefault"
	varEntrySelected  = "LoaderEntrySelected"
	entryDir          = "loader/entries/"
	efiVarAttrs       = 0x7 // NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS
	defaultEfivarsDir = "/sys/firmware/efi/efivars"
)

// EntryName is the systemd-boot entry (file name and entry id) of a slot.
func EntryName(s Slot) string { return "slot-" + s.String() + ".conf" }

// KernelPath is where a slot's boot files live on the boot partition.
func KernelPath(s Slot, name string) string { return s.String() + "/" + name }

// SystemdBoot is the boot control of EFI boards: systemd-boot reads one
// entry per slot from the boot partition; the trial is the one-shot
// LoaderEntryOneShot variable (systemd-boot clears it as it boots it) and
// the commit is LoaderEntryDefault. A trial that panics, hangs until the
// watchdog resets the box, or is rebooted as unhealthy, falls back to the
// default entry: the old slot.
type SystemdBoot struct {
	ESP  BootFS
	Vars VarStore
	// Options is the kernel command line without root=; root= is added
	// per slot from PartUUID.
	Options string
	// PartUUID is the boot partition's GPT partition UUID; slot roots are
	// addressed relative to it.
	PartUUID string
}

// Booted reads LoaderEntrySelected, which systemd-boot sets on every boot.
func (b *SystemdBoot) Booted() (Slot, error) {
	v, err := b.Vars.Get(varEntrySelected)
	if err != nil {
		return 0, fmt.Errorf("update: which entry booted: %w", err)
	}
	s, ok := slotOfEntry(v)
	if !ok {
		return 0, fmt.Errorf("update: booted entry %q is not a slot entry", v)
	}
	return s, nil
}

// Default reads LoaderEntryDefault; slot A when it is not set.
func (b *SystemdBoot) Default() (Slot, error) {
	v, err := b.Vars.Get(varEntryDefault)
	if errors.Is(err, fs.ErrNotExist) {
		return SlotA, nil
	}
	if err != nil {
		return 0, fmt.Errorf("update: default entry: %w", err)
	}
	s, ok := slotOfEntry(v)
	if !ok {
		return 0, fmt.Errorf("update: default entry %q is not a slot entry", v)
	}
	return s, nil
}

func slotOfEntry(v string) (Slot, bool) {
	switch v {
	case EntryName(SlotA):
		return SlotA, true
	case EntryName(SlotB):
		return SlotB, true
	}
	return 0, false
}

// Entry returns the text of slot s's boot entry. Its kernel command line
// names the slot's root and the version installed there (VersionParam).
func (b *SystemdBoot) Entry(s Slot, version, kernel string) string {
	return fmt.Sprintf("title Sensor %s (slot %s)\nversion %s\nlinux /%s\noptions %s\n",
		version, s, version, KernelPath(s, kernel), slotOptions(b.Options, b.PartUUID, s, version))
}

// VersionParam is the kernel command line parameter that tells every
// program of a slot which version the slot holds: the version of the
// signed manifest it was installed from. The kernel ignores it (it has a
// dot, as module parameters do, and no module of that name exists).
const VersionParam = "sensor.version"

// slotOptions is a slot's kernel command line: the common options with
// any root= and version parameter dropped, then the slot's own.
func slotOptions(options, partUUID string, s Slot, version string) string {
	var keep []string
	for _, f := range strings.Fields(options) {
		if !strings.HasPrefix(f, "root=") && !strings.HasPrefix(f, VersionParam+"=") {
			keep = append(keep, f)
		}
	}
	keep = append(keep, fmt.Sprintf("root=PARTUUID=%s/PARTNROFF=%d", partUUID, s.PartOffset()))
	if version != "" {
		keep = append(keep, VersionParam+"="+version)
	}
	return strings.Join(keep, " ")
}

// SlotVersion reads VersionParam from a kernel command line (the contents
// of /proc/cmdline); "" when it is absent.
func SlotVersion(cmdline string) string {
	for _, f := range strings.Fields(cmdline) {
		if v, ok := strings.CutPrefix(f, VersionParam+"="); ok {
			return v
		}
	}
	return ""
}

// WriteEntry writes slot s's entry file.
func (b *SystemdBoot) WriteEntry(s Slot, version, kernel string) error {
	return b.ESP.WriteFile(entryDir+EntryName(s), []byte(b.Entry(s, version, kernel)))
}

// Disarm removes a pending one-shot entry.
func (b *SystemdBoot) Disarm() error {
	err := b.Vars.Delete(varEntryOneShot)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("update: disarm trial: %w", err)
	}
	return nil
}

// ArmTrial sets LoaderEntryOneShot to s's entry.
func (b *SystemdBoot) ArmTrial(s Slot) error {
	if err := b.Vars.Set(varEntryOneShot, EntryName(s)); err != nil {
		return fmt.Errorf("update: arm trial of slot %s: %w", s, err)
	}
	return nil
}

// Commit sets LoaderEntryDefault to s's entry.
func (b *SystemdBoot) Commit(s Slot) error {
	if err := b.Vars.Set(varEntryDefault, EntryName(s)); err != nil {
		return fmt.Errorf("update: commit slot %s: %w", s, err)
	}
	return nil
}

// Efivars is the kernel's efivarfs: one file per variable named
// NAME-GUID, holding 4 bytes of attributes and the value. systemd-boot's
// variables are NUL-terminated UTF-16LE strings.
type Efivars struct {
	Dir  string // /sys/firmware/efi/efivars when empty
	GUID string // systemd-boot's vendor GUID when empty
}

func (e Efivars) path(name string) string {
	dir, guid := e.Dir, e.GUID
	if dir == "" {
		dir = defaultEfivarsDir
	}
	if guid == "" {
		guid = loaderGUID
	}
	return filepath.Join(dir, name+"-"+guid)
}

// Get reads a string variable.
func (e Efivars) Get(name string) (string, error) {
	b, err := os.ReadFile(e.path(name))
	if err != nil {
		return "", err
	}
	if len(b) < 4 || (len(b)-4)%2 != 0 {
		return "", fmt.Errorf("efi variable %s: %d bytes is not attributes and UTF-16", name, len(b))
	}
	u := make([]uint16, 0, (len(b)-4)/2)
	for i := 4; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u)), nil
}

// Set writes a string variable in one write, as efivarfs requires.
func (e Efivars) Set(name, value string) error {
	u := utf16.Encode([]rune(value))
	b := make([]byte, 4, 4+2*len(u)+2)
	binary.LittleEndian.PutUint32(b, efiVarAttrs)
	for _, c := range append(u, 0) {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	p := e.path(name)
	mutable(p)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Delete removes a variable.
func (e Efivars) Delete(name string) error {
	p := e.path(name)
	mutable(p)
	return os.Remove(p)
}

// fsImmutable is FS_IMMUTABLE_FL of linux/fs.h.
const fsImmutable = 0x10

// mutable clears the immutable flag efivarfs sets on existing variables;
// on other file systems (tests) there is none to clear.
func mutable(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err != nil || flags&fsImmutable == 0 {
		return
	}
	_ = unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(flags&^fsImmutable))
}

// DirFS is a BootFS on a mounted boot partition: each file is written to a
// temporary name, flushed, renamed into place and the directory flushed.
type DirFS struct{ Dir string }

// WriteFile stores data durably under name.
func (d DirFS) WriteFile(name string, data []byte) error {
	p := filepath.Join(d.Dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp := p + ".new"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(p))
}

// ReadFile reads name.
func (d DirFS) ReadFile(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join(d.Dir, filepath.FromSlash(name)))
}

// FileDevice is a root partition: a block device, or a byte range of a
// disk image file.
type FileDevice struct {
	F      *os.File
	Offset int64
	Len    int64
}

// ReadAt reads inside the partition.
func (d FileDevice) ReadAt(p []byte, off int64) (int, error) {
	if off >= d.Len {
		return 0, io.EOF
	}
	if int64(len(p)) > d.Len-off {
		p = p[:d.Len-off]
	}
	return d.F.ReadAt(p, d.Offset+off)
}

// WriteAt writes inside the partition and refuses to write past it.
func (d FileDevice) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off > d.Len || int64(len(p)) > d.Len-off {
		return 0, fmt.Errorf("update: write of %d bytes at %d past the %d-byte partition", len(p), off, d.Len)
	}
	return d.F.WriteAt(p, d.Offset+off)
}

// Sync flushes the device.
func (d FileDevice) Sync() error { return d.F.Sync() }

// Size is the partition's length.
func (d FileDevice) Size() int64 { return d.Len }
