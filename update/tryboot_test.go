package update

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// readBoot reads a file of the world's boot partition, failing the test
// when it is missing.
func readBoot(t *testing.T, w *world, name string) []byte {
	t.Helper()
	b, err := w.pi.Boot.ReadFile(name)
	if err != nil {
		t.Fatalf("boot partition: %v", err)
	}
	return b
}

// checkPiTrial installs new on a Raspberry Pi running old from slot a,
// boots the trial, commits it, and checks each file the firmware reads on
// the way.
func checkPiTrial(t *testing.T, w *world, in *Installer, m Manifest, old, new release) {
	t.Helper()
	cfgBefore := readBoot(t, w, PiConfig)
	aFiles := map[string][]byte{}
	for _, n := range []string{DefaultKernel, PiCmdline, "start4.elf", "fixup4.dat"} {
		aFiles[n] = readBoot(t, w, KernelPath(SlotA, n))
	}
	var steps []string
	in.Report = func(s Step) { steps = append(steps, s.Phase) }
	if err := in.Install(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readBoot(t, w, PiConfig), cfgBefore) {
		t.Fatal("config.txt changed before the trial proved healthy")
	}
	if !w.armed(SlotB) {
		t.Fatalf("after the install the flag is %v and tryboot.txt reads:\n%s", w.flag.on, readBoot(t, w, PiTryboot))
	}
	cmdline := string(readBoot(t, w, KernelPath(SlotB, PiCmdline)))
	if !strings.Contains(cmdline, "/PARTNROFF=2 ") || SlotVersion(cmdline) != new.version || !strings.HasSuffix(cmdline, "\n") {
		t.Fatalf("slot b's cmdline.txt: %q", cmdline)
	}
	if s := bootInto(t, w, new.version); s != SlotB {
		t.Fatalf("trial booted slot %s", s)
	}
	if w.flag.on {
		t.Fatal("the firmware left the tryboot flag set")
	}
	trial := w.installer(new.version, in.Fetch)
	trial.Report = in.Report
	if err := trial.AfterBoot(context.Background(), 0, noHealthCheck); err != nil {
		t.Fatal(err)
	}
	want := []string{PhaseDownloading, PhaseVerified, PhaseWriting, PhaseArmed, PhaseTrial, PhaseCommitted}
	if fmt.Sprint(steps) != fmt.Sprint(want) {
		t.Fatalf("reported steps %v, want %v", steps, want)
	}
	// The commit changed the slot letters of config.txt, nothing else,
	// and tryboot.txt follows.
	cfg := readBoot(t, w, PiConfig)
	if wantCfg, _ := piWithSlot(cfgBefore, SlotB); !bytes.Equal(cfg, wantCfg) || len(cfg) != len(cfgBefore) {
		t.Fatalf("config.txt after the commit:\n%s\nwant:\n%s", cfg, wantCfg)
	}
	if !bytes.Equal(readBoot(t, w, PiTryboot), cfg) {
		t.Fatal("tryboot.txt does not name the committed slot")
	}
	bootInto(t, w, new.version)
	bootInto(t, w, new.version)
	for n, b := range aFiles {
		if !bytes.Equal(readBoot(t, w, KernelPath(SlotA, n)), b) {
			t.Fatalf("slot a's %s was touched", n)
		}
	}
}

func TestPiTrialCommits(t *testing.T) {
	old, new, newer := newPiRelease("1.0.0", 200_000), newPiRelease("1.1.0", 210_000), newPiRelease("1.2.0", 190_000)
	w, in, m := setupOn(t, newPiWorld, old, new, 0, 11)
	checkPiTrial(t, w, in, m, old, new)

	// The next update goes to slot a, never the running slot b.
	w.releases[newer.version] = newer
	data, _ := newer.artefact(testBoard, "")
	srv := serve(t, map[string][]byte{"/u": data})
	_, m3 := newer.artefact(testBoard, srv.URL+"/u")
	in3 := w.installer(new.version, &Fetcher{Client: srv.Client(), Dir: in.Fetch.Dir})
	if err := in3.Install(context.Background(), m3); err != nil {
		t.Fatal(err)
	}
	if s := bootInto(t, w, newer.version); s != SlotA {
		t.Fatalf("second update booted slot %s, want a", s)
	}
}

func TestPiUnhealthyTrialRollsBack(t *testing.T) {
	old, new := newPiRelease("1.0.0", 200_000), newPiRelease("1.1.0", 200_000)
	w, in, m := setupOn(t, newPiWorld, old, new, 0, 12)
	if err := in.Install(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	bootInto(t, w, new.version)
	trial := w.installer(new.version, in.Fetch)
	if err := trial.AfterBoot(context.Background(), 0, func(context.Context) error { return errors.New("sensor restarted 3 times") }); !errors.Is(err, ErrRollback) {
		t.Fatalf("unhealthy trial: %v, want ErrRollback", err)
	}
	// The caller reboots plainly: the flag was spent, config.txt starts a.
	bootInto(t, w, old.version)
	back := w.installer(old.version, in.Fetch)
	var got []Step
	back.Report = func(s Step) { got = append(got, s) }
	if err := back.AfterBoot(context.Background(), 0, noHealthCheck); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Phase != PhaseRolledBack || !strings.Contains(got[0].Detail, "back on "+old.version) {
		t.Fatalf("reported after the rollback: %+v", got)
	}
	if cfg, _ := PiConfigSlot(readBoot(t, w, PiConfig)); cfg != SlotA {
		t.Fatalf("config.txt names slot %s after a rollback", cfg)
	}
}

// A trial whose kernel panics or hangs until the watchdog resets the Pi
// never settles: the next start reads config.txt, slot a.
func TestPiTrialThatNeverComesUpFallsBack(t *testing.T) {
	old, new := newPiRelease("1.0.0", 200_000), newPiRelease("1.1.0", 200_000)
	w, in, m := setupOn(t, newPiWorld, old, new, 0, 13)
	if err := in.Install(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	bootInto(t, w, new.version) // ... and it hangs: reset
	bootInto(t, w, old.version)
	back := w.installer(old.version, in.Fetch)
	if err := back.AfterBoot(context.Background(), 0, noHealthCheck); err != nil {
		t.Fatal(err)
	}
	if st, _ := back.LoadState(); st.Phase != PhaseRolledBack {
		t.Fatalf("state %+v, want rolled back", st)
	}
	// The box can update again.
	if err := back.Install(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	bootInto(t, w, new.version)
}

func TestPiPowerCutDuringInstall(t *testing.T) {
	powerCutInstall(t, newPiWorld, newPiRelease("1.0.0", 300_000), newPiRelease("1.1.0", 290_000))
}

func TestPiPowerCutDuringCommit(t *testing.T) {
	powerCutCommit(t, newPiWorld, newPiRelease("1.0.0", 300_000), newPiRelease("1.1.0", 290_000))
}

// Refused updates touch neither the flag nor the boot partition.
func TestPiRefusedUpdateWritesNothing(t *testing.T) {
	old, new := newPiRelease("2.0.0", 100_000), newPiRelease("2.1.0", 100_000)
	w, in, m := setupOn(t, newPiWorld, old, new, 0, 14)
	m.Board = "arm64-efi-other"
	m.Sign(testKey)
	if err := in.Install(context.Background(), m); !errors.Is(err, ErrBoard) {
		t.Fatalf("Install: %v, want ErrBoard", err)
	}
	if w.pw.ops != 0 {
		t.Fatalf("%d writes to the disk, boot partition or flag", w.pw.ops)
	}
	bootInto(t, w, old.version)
}

func TestPiConfigSlotLines(t *testing.T) {
	common := "arm_control=0x200\nenable_uart=0\nkernel=vmlinuz\n[pi4]\narm_boost=1"
	a := PiConfigText(SlotA, common)
	b, err := piWithSlot(a, SlotB)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, PiConfigText(SlotB, common)) {
		t.Fatalf("slot b's text:\n%s\nwant:\n%s", b, PiConfigText(SlotB, common))
	}
	if s, err := PiConfigSlot(b); err != nil || s != SlotB {
		t.Fatalf("PiConfigSlot = %s, %v", s, err)
	}
	for name, cfg := range map[string]string{
		"no os_prefix":      "start_file=a/start4.elf\nfixup_file=a/fixup4.dat\n",
		"no start_file":     "os_prefix=a/\nfixup_file=a/fixup4.dat\n",
		"not a slot":        "os_prefix=c/\nstart_file=a/start4.elf\nfixup_file=a/fixup4.dat\n",
		"past first sector": strings.Repeat("# padding\n", 60) + "os_prefix=a/\nstart_file=a/start4.elf\nfixup_file=a/fixup4.dat\n",
	} {
		if _, err := piWithSlot([]byte(cfg), SlotB); err == nil {
			t.Errorf("%s: switched slots in\n%s", name, cfg)
		}
	}
}

// mtoolsFS is a FAT file system image, read and written with mtools as
// the firmware reads it: no kernel driver in between. Overwrite replaces
// the file (mtools cannot write in place); the appliance rewrites it in
// place through the kernel's vfat.
type mtoolsFS struct{ img string }

func (m mtoolsFS) run(args ...string) ([]byte, error) {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return out, nil
}

func (m mtoolsFS) WriteFile(name string, data []byte) error {
	if dir := filepath.Dir(name); dir != "." {
		m.run("mmd", "-i", m.img, "::"+dir) // exists already: fine
	}
	tmp, err := os.CreateTemp("", "mtools-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	tmp.Write(data)
	tmp.Close()
	_, err = m.run("mcopy", "-o", "-i", m.img, tmp.Name(), "::"+name)
	return err
}

func (m mtoolsFS) ReadFile(name string) ([]byte, error) {
	tmp := filepath.Join(os.TempDir(), fmt.Sprintf("mtools-read-%d", os.Getpid()))
	defer os.Remove(tmp)
	if _, err := m.run("mcopy", "-n", "-o", "-i", m.img, "::"+name, tmp); err != nil {
		return nil, fmt.Errorf("%w: %v", fs.ErrNotExist, err)
	}
	return os.ReadFile(tmp)
}

func (m mtoolsFS) Overwrite(name string, data []byte) error {
	old, err := m.ReadFile(name)
	if err != nil {
		return err
	}
	if len(old) != len(data) {
		return fmt.Errorf("%s has %d bytes, the new text %d", name, len(old), len(data))
	}
	return m.WriteFile(name, data)
}

// The whole trial on a real FAT file system: the files the firmware reads
// are where and what it expects, and the file system checks clean.
func TestPiOnFATImage(t *testing.T) {
	for _, tool := range []string{"mkfs.vfat", "fsck.vfat", "mcopy", "mmd"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (apt-get install dosfstools mtools)", tool)
		}
	}
	old, new := newPiRelease("1.0.0", 200_000), newPiRelease("1.1.0", 210_000)
	w, in, m := setupOn(t, newPiWorld, old, new, 0, 15)
	img := filepath.Join(t.TempDir(), "boot.fat")
	if out, err := exec.Command("mkfs.vfat", "-C", "-n", "SENSORBOOT", img, "8192").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.vfat: %v: %s", err, out)
	}
	fat := mtoolsFS{img}
	for name, data := range w.esp.files {
		if err := fat.WriteFile(name, data); err != nil {
			t.Fatal(err)
		}
	}
	w.pi.Boot = fat
	in.Boot, in.ESP = w.pi, fat
	checkPiTrial(t, w, in, m, old, new)
	out, err := exec.Command("fsck.vfat", "-n", img).CombinedOutput()
	if err != nil {
		t.Fatalf("fsck.vfat -n: %v\n%s", err, out)
	}
	list, err := fat.run("mdir", "-/", "-b", "-i", img, "::")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("boot partition after the commit:\n%s", list)
	for _, l := range strings.Fields(string(list)) {
		if strings.HasSuffix(l, ".new") {
			t.Fatalf("leftover %s on the boot partition", l)
		}
	}
}
