package update

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The test release key. The image's real key never appears in tests.
var testKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))

func testPub() ed25519.PublicKey { return testKey.Public().(ed25519.PublicKey) }

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// release is one version's content: a root file system and a kernel, and
// for the Raspberry Pi the firmware files each slot carries.
type release struct {
	version      string
	root, kernel []byte
	firmware     map[string][]byte // boot file name: content
}

func newRelease(version string, rootSize int) release {
	r := rand.New(rand.NewPCG(uint64(len(version)), uint64(version[len(version)-1])))
	root := make([]byte, rootSize)
	for i := range root {
		root[i] = byte(r.Uint32())
	}
	return release{version: version, root: root, kernel: []byte("kernel of " + version + strings.Repeat("k", 3000))}
}

// newPiRelease is a release for the Raspberry Pi: its slots carry the
// firmware too.
func newPiRelease(version string, rootSize int) release {
	r := newRelease(version, rootSize)
	r.firmware = map[string][]byte{
		"start4.elf": []byte("firmware of " + version + strings.Repeat("f", 2000)),
		"fixup4.dat": []byte("fixup of " + version),
	}
	return r
}

// artefact lays out the release as an update artefact (root, the kernel,
// then the firmware files) and returns it with its signed manifest.
func (r release) artefact(board, url string) ([]byte, Manifest) {
	data := append(append([]byte{}, r.root...), r.kernel...)
	m := Manifest{
		Version: r.version, Board: board, URL: url,
		Parts: []Part{
			{Name: PartRoot, Offset: 0, Size: int64(len(r.root)), SHA256: sum(r.root)},
			{Name: "boot/" + DefaultKernel, Offset: int64(len(r.root)), Size: int64(len(r.kernel)), SHA256: sum(r.kernel)},
		},
	}
	for _, name := range slices.Sorted(maps.Keys(r.firmware)) {
		f := r.firmware[name]
		m.Parts = append(m.Parts, Part{Name: "boot/" + name, Offset: int64(len(data)), Size: int64(len(f)), SHA256: sum(f)})
		data = append(data, f...)
	}
	m.Size, m.SHA256 = int64(len(data)), sum(data)
	m.Sign(testKey)
	return data, m
}

// errCut is what every durable operation returns after the power cut.
var errCut = errors.New("power cut")

// power counts durable operations and cuts the power at one of them.
type power struct {
	ops   int // operations started
	cutAt int // the operation during which power fails; 0 = never
	cut   bool
	rnd   *rand.Rand
}

// op starts a durable operation; it reports whether the power fails
// during it (the operation may then take partial effect) and errCut once
// the power is off.
func (p *power) op() (failsNow bool, err error) {
	if p.cut {
		return false, errCut
	}
	p.ops++
	if p.cutAt != 0 && p.ops == p.cutAt {
		p.cut = true
		return true, nil
	}
	return false, nil
}

// disk is a disk image file holding both slots' root partitions, behind a
// write cache: writes are durable only after Sync, and a power cut drops
// (a random part of) what was not flushed, and may tear the write in
// progress.
type disk struct {
	pw      *power
	f       *os.File
	size    int64 // per partition
	pending []pendingWrite
}

type pendingWrite struct {
	off  int64
	data []byte
}

func (d *disk) device(s Slot) Device { return &cutDevice{d, int64(s) * d.size} }

type cutDevice struct {
	d   *disk
	off int64
}

func (c *cutDevice) Size() int64 { return c.d.size }

func (c *cutDevice) ReadAt(p []byte, off int64) (int, error) {
	if off >= c.d.size {
		return 0, fmt.Errorf("read past partition")
	}
	if int64(len(p)) > c.d.size-off {
		p = p[:c.d.size-off]
	}
	n, err := c.d.f.ReadAt(p, c.off+off)
	// The cache answers reads with what it holds.
	for _, w := range c.d.pending {
		lo, hi := max(w.off, c.off+off), min(w.off+int64(len(w.data)), c.off+off+int64(n))
		if lo < hi {
			copy(p[lo-c.off-off:hi-c.off-off], w.data[lo-w.off:hi-w.off])
		}
	}
	return n, err
}

func (c *cutDevice) WriteAt(p []byte, off int64) (int, error) {
	fails, err := c.d.pw.op()
	if err != nil {
		return 0, err
	}
	if off+int64(len(p)) > c.d.size {
		return 0, fmt.Errorf("write past partition")
	}
	data := append([]byte{}, p...)
	if fails {
		// Torn: only a prefix reaches the cache, then power is lost.
		data = data[:c.d.pw.rnd.IntN(len(data)+1)]
		c.d.pending = append(c.d.pending, pendingWrite{c.off + off, data})
		c.d.powerLoss()
		return 0, errCut
	}
	c.d.pending = append(c.d.pending, pendingWrite{c.off + off, data})
	return len(p), nil
}

func (c *cutDevice) Sync() error {
	fails, err := c.d.pw.op()
	if err != nil {
		return err
	}
	if fails {
		c.d.powerLoss()
		return errCut
	}
	for _, w := range c.d.pending {
		if _, err := c.d.f.WriteAt(w.data, w.off); err != nil {
			return err
		}
	}
	c.d.pending = nil
	return c.d.f.Sync()
}

// powerLoss writes a random subset of the unflushed writes (a cache may
// have written some back) and drops the rest.
func (d *disk) powerLoss() {
	for _, w := range d.pending {
		if d.pw.rnd.IntN(2) == 0 {
			d.f.WriteAt(w.data, w.off)
		}
	}
	d.pending = nil
}

// memFS is the boot partition: each WriteFile is atomic (the real BootFS
// writes a temporary file and renames it).
type memFS struct {
	pw    *power
	files map[string][]byte
}

func (m *memFS) WriteFile(name string, data []byte) error {
	fails, err := m.pw.op()
	if err != nil {
		return err
	}
	if fails {
		if m.pw.rnd.IntN(2) == 0 {
			m.files[name] = append([]byte{}, data...)
		}
		return errCut
	}
	m.files[name] = append([]byte{}, data...)
	return nil
}

// Overwrite is an in-place rewrite of a file that fits one sector: the
// power cut leaves the old text or the new one.
func (m *memFS) Overwrite(name string, data []byte) error {
	old, ok := m.files[name]
	if !ok || len(old) != len(data) {
		return fmt.Errorf("%s: not rewritable in place", name)
	}
	return m.WriteFile(name, data)
}

func (m *memFS) ReadFile(name string) ([]byte, error) {
	b, ok := m.files[name]
	if !ok {
		return nil, fmt.Errorf("%s: %w", name, fs.ErrNotExist)
	}
	return append([]byte{}, b...), nil
}

// memVars is the firmware's variable store; UEFI updates a variable
// atomically.
type memVars struct {
	pw   *power
	vars map[string]string
}

func (v *memVars) Get(name string) (string, error) {
	s, ok := v.vars[name]
	if !ok {
		return "", fmt.Errorf("%s: %w", name, fs.ErrNotExist)
	}
	return s, nil
}

func (v *memVars) Set(name, value string) error {
	fails, err := v.pw.op()
	if err != nil {
		return err
	}
	if !fails || v.pw.rnd.IntN(2) == 0 {
		v.vars[name] = value
	}
	if fails {
		return errCut
	}
	return nil
}

func (v *memVars) Delete(name string) error {
	fails, err := v.pw.op()
	if err != nil {
		return err
	}
	if !fails || v.pw.rnd.IntN(2) == 0 {
		delete(v.vars, name)
	}
	if fails {
		return errCut
	}
	return nil
}

// memFlag is the Raspberry Pi firmware's tryboot flag; the firmware
// property is set at once.
type memFlag struct {
	pw *power
	on bool
}

func (f *memFlag) SetTryboot(on bool) error {
	fails, err := f.pw.op()
	if err != nil {
		return err
	}
	if !fails || f.pw.rnd.IntN(2) == 0 {
		f.on = on
	}
	if fails {
		return errCut
	}
	return nil
}

// world is a box: its disk, boot partition, firmware variables (or the
// Raspberry Pi's tryboot flag), /perm, and the releases it knows of.
type world struct {
	t        *testing.T
	pw       *power
	disk     *disk
	esp      *memFS
	vars     *memVars
	perm     string
	releases map[string]release
	boot     *SystemdBoot
	bootSeq  int
	// The Raspberry Pi's boot control, when the box is one.
	pi   *Tryboot
	flag *memFlag
}

// control is the world's boot control.
func (w *world) control() BootControl {
	if w.pi != nil {
		return w.pi
	}
	return w.boot
}

// bootFS is the world's boot partition.
func (w *world) bootFS() BootFS {
	if w.pi != nil {
		return w.pi.Boot
	}
	return w.esp
}

// armed says whether the next power-on boots the trial of slot s.
func (w *world) armed(s Slot) bool {
	if w.pi != nil {
		b, _ := w.pi.Boot.ReadFile(PiTryboot)
		t, err := PiConfigSlot(b)
		return w.flag.on && err == nil && t == s
	}
	return w.vars.vars[varEntryOneShot] == EntryName(s)
}

// newPiWorld makes a Raspberry Pi running old from slot A: config.txt and
// tryboot.txt name slot a, whose directory holds its kernel, firmware and
// cmdline.txt; slot B holds garbage.
func newPiWorld(t *testing.T, old release, cutAt int, seed uint64) *world {
	t.Helper()
	w := newWorld(t, old, 0, seed)
	w.esp.files = map[string][]byte{}
	w.vars = nil
	w.flag = &memFlag{pw: w.pw}
	w.pi = &Tryboot{Boot: w.esp, Flag: w.flag, Running: SlotA, Options: "console=serial0,115200 panic=10", PartUUID: "60c24cc1-01"}
	cfg := PiConfigText(SlotA, "arm_control=0x200\nenable_uart=0\nkernel=vmlinuz")
	w.esp.files[PiConfig] = cfg
	w.esp.files[PiTryboot] = bytes.Clone(cfg)
	w.esp.files[KernelPath(SlotA, DefaultKernel)] = old.kernel
	for name, f := range old.firmware {
		w.esp.files[KernelPath(SlotA, name)] = f
	}
	w.esp.files[KernelPath(SlotA, PiCmdline)] = []byte(slotOptions(w.pi.Options, w.pi.PartUUID, SlotA, old.version) + "\n")
	w.pw.cutAt = cutAt
	return w
}

const testBoard = "arm64-efi"

// newWorld makes a box running old from slot A; slot B holds garbage.
func newWorld(t *testing.T, old release, cutAt int, seed uint64) *world {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "disk.img"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	const part = 1 << 20
	if err := f.Truncate(2 * part); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(old.root, 0); err != nil {
		t.Fatal(err)
	}
	junk := bytes.Repeat([]byte{0xEE}, part)
	if _, err := f.WriteAt(junk, part); err != nil {
		t.Fatal(err)
	}
	pw := &power{rnd: rand.New(rand.NewPCG(seed, 1))}
	w := &world{
		t: t, pw: pw,
		disk:     &disk{pw: pw, f: f, size: part},
		esp:      &memFS{pw: pw, files: map[string][]byte{}},
		vars:     &memVars{pw: pw, vars: map[string]string{}},
		perm:     filepath.Join(dir, "perm"),
		releases: map[string]release{old.version: old},
	}
	w.boot = &SystemdBoot{ESP: w.esp, Vars: w.vars, Options: "console=ttyAMA0,115200 panic=10", PartUUID: "2e18c40c-01"}
	w.esp.files[KernelPath(SlotA, DefaultKernel)] = old.kernel
	w.esp.files[entryDir+EntryName(SlotA)] = []byte(w.boot.Entry(SlotA, old.version, DefaultKernel))
	w.vars.vars[varEntrySelected] = EntryName(SlotA)
	pw.cutAt = cutAt
	return w
}

// installer is the updater as the running version builds it.
func (w *world) installer(running string, fetch *Fetcher) *Installer {
	return &Installer{
		Key: testPub(), Board: testBoard, Running: running, Boot: w.control(),
		Root:     func(s Slot) (Device, error) { return w.disk.device(s), nil },
		ESP:      w.bootFS(),
		Fetch:    fetch,
		StateDir: filepath.Join(w.perm, "update"),
		BootID:   func() string { return fmt.Sprint("boot-", w.bootSeq) },
	}
}

// firmware does what the board's firmware and systemd-boot do at power
// on: take the one-shot entry if there is one (clearing it), else the
// default, else slot A; an entry that is missing or unreadable is skipped
// for the default. It then "boots" the entry: the kernel file must be
// some release's kernel and the root partition must hold the same
// release's root. It returns the version that came up, or an error when
// the box would not come back.
func (w *world) firmware() (string, Slot, error) {
	w.pw.cut, w.pw.cutAt = false, 0
	w.bootSeq++
	if w.pi != nil {
		return w.piFirmware()
	}
	var tries []string
	if v, ok := w.vars.vars[varEntryOneShot]; ok {
		delete(w.vars.vars, varEntryOneShot)
		tries = append(tries, v)
	}
	if v, ok := w.vars.vars[varEntryDefault]; ok {
		tries = append(tries, v)
	} else {
		tries = append(tries, EntryName(SlotA))
	}
	var errs []error
	for _, e := range tries {
		s, ok := slotOfEntry(e)
		if !ok {
			errs = append(errs, fmt.Errorf("entry %q unknown", e))
			continue
		}
		text, ok := w.esp.files[entryDir+e]
		if !ok {
			errs = append(errs, fmt.Errorf("entry %s missing", e))
			continue
		}
		version, kernel, ok := parseEntry(string(text), s)
		if !ok {
			errs = append(errs, fmt.Errorf("entry %s unreadable: %q", e, text))
			continue
		}
		w.vars.vars[varEntrySelected] = e
		rel, known := w.releases[version]
		if !known {
			return "", s, fmt.Errorf("entry %s names unknown version %s", e, version)
		}
		if k := w.esp.files[kernel]; !bytes.Equal(k, rel.kernel) {
			return "", s, fmt.Errorf("slot %s: kernel %s is not %s's: the box does not come back", s, kernel, version)
		}
		got := make([]byte, len(rel.root))
		if _, err := w.disk.f.ReadAt(got, int64(s)*w.disk.size); err != nil {
			return "", s, err
		}
		if !bytes.Equal(got, rel.root) {
			return "", s, fmt.Errorf("slot %s: root is not %s's: kernel panics, the box does not come back", s, version)
		}
		return version, s, nil
	}
	return "", 0, fmt.Errorf("no bootable entry: %v", errs)
}

// piFirmware does what the Raspberry Pi's firmware does at power-on, as
// its documentation says: read tryboot.txt instead of config.txt when the
// tryboot flag is set, clearing the flag; take the firmware files
// start_file and fixup_file name, and the kernel and cmdline.txt under
// os_prefix; then boot (the kernel must be some release's, its firmware
// and root the same release's, and cmdline.txt's root= the slot's own).
func (w *world) piFirmware() (string, Slot, error) {
	read := func(name string) []byte {
		b, err := w.pi.Boot.ReadFile(name)
		if err != nil {
			return nil
		}
		return b
	}
	name := PiConfig
	if w.flag.on {
		w.flag.on = false
		name = PiTryboot
	}
	cfg := read(name)
	if cfg == nil {
		return "", 0, fmt.Errorf("no %s", name)
	}
	props := map[string]string{}
	for _, l := range strings.Split(string(cfg), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok && !strings.HasPrefix(k, "#") {
			props[k] = v
		}
	}
	s, err := PiConfigSlot(cfg)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %v", name, err)
	}
	prefix := props["os_prefix"]
	cmdline := read(prefix + PiCmdline)
	if cmdline == nil {
		return "", s, fmt.Errorf("%s: no %s%s", name, prefix, PiCmdline)
	}
	if !strings.Contains(string(cmdline), fmt.Sprintf("/PARTNROFF=%d ", s.PartOffset())) {
		return "", s, fmt.Errorf("%s%s does not mount slot %s's root: %q", prefix, PiCmdline, s, cmdline)
	}
	version := SlotVersion(string(cmdline))
	rel, known := w.releases[version]
	if !known {
		return "", s, fmt.Errorf("%s%s names unknown version %q", prefix, PiCmdline, version)
	}
	if !bytes.Equal(read(prefix+props["kernel"]), rel.kernel) {
		return "", s, fmt.Errorf("slot %s: kernel %s%s is not %s's: the box does not come back", s, prefix, props["kernel"], version)
	}
	for _, k := range []string{"start_file", "fixup_file"} {
		if f := props[k]; !strings.HasPrefix(f, prefix) || !bytes.Equal(read(f), rel.firmware[strings.TrimPrefix(f, prefix)]) {
			return "", s, fmt.Errorf("slot %s: %s=%s is not %s's firmware: the box does not come back", s, k, f, version)
		}
	}
	got := make([]byte, len(rel.root))
	if _, err := w.disk.f.ReadAt(got, int64(s)*w.disk.size); err != nil {
		return "", s, err
	}
	if !bytes.Equal(got, rel.root) {
		return "", s, fmt.Errorf("slot %s: root is not %s's: kernel panics, the box does not come back", s, version)
	}
	w.pi.Running = s
	return version, s, nil
}

// parseEntry reads version and kernel path from an entry and checks that
// its root= names the slot.
func parseEntry(text string, s Slot) (version, kernel string, ok bool) {
	var root bool
	for _, l := range strings.Split(text, "\n") {
		k, v, _ := strings.Cut(l, " ")
		switch k {
		case "version":
			version = v
		case "linux":
			kernel = strings.TrimPrefix(v, "/")
		case "options":
			root = strings.Contains(v, fmt.Sprintf("/PARTNROFF=%d", s.PartOffset()))
		}
	}
	return version, kernel, version != "" && kernel != "" && root
}

// serve publishes artefacts over HTTP with Range support, as a CDN does.
func serve(t *testing.T, files map[string][]byte) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, r.URL.Path, time.Unix(0, 0), bytes.NewReader(b))
	}))
	t.Cleanup(srv.Close)
	return srv
}

var timeZero = time.Unix(0, 0)

func noHealthCheck(context.Context) error { return nil }
