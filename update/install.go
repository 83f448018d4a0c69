package update

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Phases of an update, as reported to the cloud and kept in the state file.
const (
	PhaseDownloading = "downloading"
	PhaseVerified    = "verified"
	PhaseWriting     = "writing"
	PhaseArmed       = "armed"       // trial armed; the box reboots into it
	PhaseTrial       = "trial"       // running the new slot, not yet committed
	PhaseCommitted   = "committed"   // the new slot is the default
	PhaseFailed      = "failed"      // refused or failed before arming
	PhaseRolledBack  = "rolled-back" // the trial did not prove healthy
)

// Step is one report of progress or failure.
type Step struct {
	Version string
	Phase   string
	Slot    string
	Detail  string
}

// State is what the updater keeps on /perm between boots.
type State struct {
	Version string    `json:"version"` // the version being installed
	From    string    `json:"from"`    // the version it replaces
	Slot    Slot      `json:"slot"`    // the slot written
	Phase   string    `json:"phase"`
	Detail  string    `json:"detail,omitempty"`
	Floor   string    `json:"floor,omitempty"` // highest signed floor seen
	Time    time.Time `json:"time"`
	// TrialBoots counts boots of the trial slot while the trial is
	// pending; nothing is counted otherwise.
	TrialBoots int `json:"trial_boots,omitempty"`
	// ArmedBoot is the boot id of the boot that armed the trial: until
	// the box has rebooted, the trial has not been tried.
	ArmedBoot string `json:"armed_boot,omitempty"`
	// Back says the box reported that it runs the previous version again
	// after a rolled-back trial.
	Back bool `json:"back,omitempty"`
}

// ErrRollback tells the caller the trial is unhealthy and the box must
// reboot, which starts the committed slot again.
var ErrRollback = errors.New("update: trial unhealthy, reboot to the previous version")

// Installer installs updates on the inactive slot and settles trials.
type Installer struct {
	Key     ed25519.PublicKey // the release key built into the image
	Board   string            // this box's board profile
	Running string            // the running version
	Boot    BootControl
	// Root opens a slot's root partition.
	Root func(Slot) (Device, error)
	// ESP is the boot partition, where each slot's boot files live.
	ESP   BootFS
	Fetch *Fetcher
	// StateDir holds state.json (on /perm).
	StateDir string
	// Report is told every step; the daemon forwards them to the cloud.
	Report func(Step)
	// Kernel is the boot part that is the slot's kernel.
	Kernel string
	// BootID identifies the current boot; the kernel's random boot_id
	// when nil.
	BootID func() string
}

func (in *Installer) bootID() string {
	if in.BootID != nil {
		return in.BootID()
	}
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(b))
}

// DefaultKernel is the boot part holding the kernel.
const DefaultKernel = "vmlinuz"

func (in *Installer) report(st State) {
	if in.Report != nil {
		in.Report(Step{Version: st.Version, Phase: st.Phase, Slot: st.Slot.String(), Detail: st.Detail})
	}
}

// LoadState reads the state file; a missing file is the zero State.
func (in *Installer) LoadState() (State, error) {
	var st State
	b, err := os.ReadFile(filepath.Join(in.StateDir, "state.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("update: state: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("update: state file %s: %w", filepath.Join(in.StateDir, "state.json"), err)
	}
	return st, nil
}

func (in *Installer) saveState(st State) error {
	st.Time = time.Now().UTC()
	b, _ := json.Marshal(st)
	if err := os.MkdirAll(in.StateDir, 0o755); err != nil {
		return fmt.Errorf("update: state: %w", err)
	}
	if err := (DirFS{in.StateDir}).WriteFile("state.json", b); err != nil {
		return fmt.Errorf("update: state: %w", err)
	}
	return nil
}

// fail records and reports a failure before arming.
func (in *Installer) fail(st State, err error) error {
	st.Phase, st.Detail = PhaseFailed, err.Error()
	in.saveState(st)
	in.report(st)
	return err
}

// Install checks m, fetches and verifies the artefact, writes it to the
// inactive slot, verifies the slot by reading it back, and arms a one-shot
// trial boot of it. The caller reboots after a nil return. A download that
// stopped part-way is reported (phase downloading, with the reason) and
// returns an error wrapping ErrDownload: calling Install again resumes it.
func (in *Installer) Install(ctx context.Context, m Manifest) error {
	prev, _ := in.LoadState()
	booted, err := in.Boot.Booted()
	if err != nil {
		return err
	}
	st := State{Version: m.Version, From: in.Running, Slot: booted.Other(), Phase: PhaseDownloading, Floor: prev.Floor}
	if err := m.Check(in.Key, in.Board, in.Running); err != nil {
		return in.fail(st, err)
	}
	if prev.Floor != "" && CompareVersions(m.Version, prev.Floor) < 0 {
		return in.fail(st, fmt.Errorf("update %s is below the version floor %s the cloud set earlier: %w", m.Version, prev.Floor, ErrVersion))
	}
	if m.Floor != "" && (st.Floor == "" || CompareVersions(m.Floor, st.Floor) > 0) {
		st.Floor = m.Floor
	}
	if def, err := in.Boot.Default(); err != nil {
		return in.fail(st, err)
	} else if def != booted {
		// Running an uncommitted trial: writing the other slot would
		// destroy the only committed version.
		return in.fail(st, fmt.Errorf("update %s: slot %s is running on trial and slot %s is the committed one; settle the trial first", m.Version, booted, def))
	}
	in.report(st)
	path, err := in.Fetch.Fetch(ctx, m)
	if errors.Is(err, ErrDownload) {
		// Not a failure of the update: the next attempt resumes.
		st.Detail = err.Error()
		in.saveState(st)
		in.report(st)
		return err
	}
	if err != nil {
		return in.fail(st, err)
	}
	st.Detail = ""
	st.Phase = PhaseVerified
	in.report(st)

	// Nothing may boot the slot while it is written.
	if err := in.Boot.Disarm(); err != nil {
		return in.fail(st, err)
	}
	st.Phase = PhaseWriting
	if err := in.saveState(st); err != nil {
		return in.fail(st, err)
	}
	in.report(st)
	if err := in.writeSlot(ctx, st.Slot, path, m); err != nil {
		return in.fail(st, err)
	}
	if err := in.verifySlot(st.Slot, m); err != nil {
		return in.fail(st, err)
	}
	kernel := in.Kernel
	if kernel == "" {
		kernel = DefaultKernel
	}
	if err := in.Boot.WriteEntry(st.Slot, m.Version, kernel); err != nil {
		return in.fail(st, err)
	}
	st.Phase, st.ArmedBoot = PhaseArmed, in.bootID()
	if err := in.saveState(st); err != nil {
		return in.fail(st, err)
	}
	if err := in.Boot.ArmTrial(st.Slot); err != nil {
		return in.fail(st, err)
	}
	// The slot holds the artefact now; /perm need not.
	os.Remove(path)
	in.report(st)
	return nil
}

// writeSlot copies the root part onto the slot's partition and the boot
// parts into the slot's directory on the boot partition, then flushes.
func (in *Installer) writeSlot(ctx context.Context, s Slot, path string, m Manifest) error {
	src, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	defer src.Close()
	dev, err := in.Root(s)
	if err != nil {
		return fmt.Errorf("update: open slot %s: %w", s, err)
	}
	for _, p := range m.Parts {
		if err := ctx.Err(); err != nil {
			return err
		}
		r := io.NewSectionReader(src, p.Offset, p.Size)
		if p.Name == PartRoot {
			if p.Size > dev.Size() {
				return fmt.Errorf("update %s: root of %d bytes does not fit slot %s's %d-byte partition", m.Version, p.Size, s, dev.Size())
			}
			if _, err := io.Copy(io.NewOffsetWriter(dev, 0), r); err != nil {
				return fmt.Errorf("update: write slot %s root: %w", s, err)
			}
			if err := dev.Sync(); err != nil {
				return fmt.Errorf("update: flush slot %s root: %w", s, err)
			}
			continue
		}
		data, err := io.ReadAll(r)
		if err != nil {
			return fmt.Errorf("update: %w", err)
		}
		if err := in.ESP.WriteFile(KernelPath(s, strings.TrimPrefix(p.Name, "boot/")), data); err != nil {
			return fmt.Errorf("update: write slot %s %s: %w", s, p.Name, err)
		}
	}
	return nil
}

// verifySlot reads back what was written and hashes it again.
func (in *Installer) verifySlot(s Slot, m Manifest) error {
	dev, err := in.Root(s)
	if err != nil {
		return fmt.Errorf("update: open slot %s: %w", s, err)
	}
	for _, p := range m.Parts {
		var got string
		if p.Name == PartRoot {
			got, err = hashReader(io.NewSectionReader(dev, 0, p.Size))
		} else {
			var b []byte
			b, err = in.ESP.ReadFile(KernelPath(s, strings.TrimPrefix(p.Name, "boot/")))
			sum := sha256.Sum256(b)
			got = hex.EncodeToString(sum[:])
		}
		if err != nil {
			return fmt.Errorf("update: read back slot %s %s: %w", s, p.Name, err)
		}
		if got != p.SHA256 {
			return fmt.Errorf("update %s: slot %s %s reads back as sha256 %s, wrote %s: %w", m.Version, s, p.Name, got, p.SHA256, ErrHash)
		}
	}
	return nil
}

// AfterBoot settles a pending trial at start-up. On the trial slot it
// waits up to bound for healthy to return nil and commits; when healthy
// fails it returns ErrRollback and the caller reboots (the trial was a
// one-shot, so the committed slot starts). Booted on the old slot with a
// trial armed before, it reports that the new version did not come up;
// after a trial that judged itself unhealthy, it reports that the box is
// back. With no trial pending it does nothing.
func (in *Installer) AfterBoot(ctx context.Context, bound time.Duration, healthy func(context.Context) error) error {
	st, err := in.LoadState()
	if err != nil {
		return err
	}
	switch {
	case st.Phase == PhaseRolledBack && !st.Back:
		// The trial found itself unhealthy and rebooted: once back on
		// the previous slot, say so.
		if booted, err := in.Boot.Booted(); err != nil || booted == st.Slot {
			return err
		}
		st.Back, st.Detail = true, fmt.Sprintf("%s; back on %s", st.Detail, in.Running)
		in.saveState(st)
		in.report(st)
		return nil
	case st.Phase != PhaseArmed && st.Phase != PhaseTrial:
		return nil
	case st.Phase == PhaseArmed && st.ArmedBoot == in.bootID():
		return nil // armed in this very boot: the reboot is still to come
	}
	booted, err := in.Boot.Booted()
	if err != nil {
		return err
	}
	if booted != st.Slot {
		// The trial panicked, hung until the watchdog reset the box, or
		// lost power before it could judge itself.
		what := "did not come up"
		if st.Phase == PhaseTrial {
			what = "stopped before it proved healthy"
		}
		st.Phase, st.Back = PhaseRolledBack, true
		st.Detail = fmt.Sprintf("version %s in slot %s %s; back on %s", st.Version, st.Slot, what, in.Running)
		in.saveState(st)
		in.report(st)
		return nil
	}
	if def, err := in.Boot.Default(); err == nil && def == st.Slot {
		// The commit reached the boot control but the power went before
		// the state said so: the slot is the default, finish.
		return in.committed(st)
	}
	st.Phase = PhaseTrial
	st.TrialBoots++
	if st.TrialBoots > 1 {
		// The one-shot entry was consumed by the first trial boot; a
		// second boot into the slot means something re-armed it.
		// Do not trust it: fall back.
		st.Phase, st.Detail = PhaseRolledBack, "trial slot booted more than once without a commit"
		in.Boot.Disarm()
		in.saveState(st)
		in.report(st)
		return ErrRollback
	}
	if err := in.saveState(st); err != nil {
		return err
	}
	in.report(st)
	hctx, cancel := context.WithTimeout(ctx, bound)
	herr := healthy(hctx)
	cancel()
	if herr != nil {
		st.Phase = PhaseRolledBack
		st.Detail = fmt.Sprintf("version %s unhealthy: %v", st.Version, herr)
		in.saveState(st)
		in.report(st)
		return ErrRollback
	}
	if err := in.Boot.Commit(st.Slot); err != nil {
		return err
	}
	return in.committed(st)
}

// committed records and reports a committed trial.
func (in *Installer) committed(st State) error {
	st.Phase, st.Detail, st.TrialBoots = PhaseCommitted, "", 0
	if err := in.saveState(st); err != nil {
		return err
	}
	in.report(st)
	return nil
}
