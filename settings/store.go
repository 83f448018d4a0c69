package settings

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Source says where the settings Load returned came from.
type Source int

// The sources of loaded settings.
const (
	// FromFile: the file was read and valid at the current version.
	FromFile Source = iota
	// Migrated: the file held an older version, converted to the current one (not yet rewritten).
	Migrated
	// Missing: there was no file; defaults (DHCP) returned.
	Missing
	// Recovered: the file was corrupt, invalid or of a newer version; defaults
	// returned and the file kept aside (Status.SetAside).
	Recovered
)

func (s Source) String() string {
	switch s {
	case FromFile:
		return "file"
	case Migrated:
		return "migrated"
	case Missing:
		return "missing"
	case Recovered:
		return "recovered"
	}
	return fmt.Sprintf("Source(%d)", int(s))
}

// Status tells what Load found.
type Status struct {
	Source Source
	// FromVersion is the version found in the file (0 when there was none).
	FromVersion int
	// Reason explains, for a technician, why defaults were used or what was
	// converted; empty for FromFile.
	Reason string
	// SetAside is where the bad file was moved ("" when nothing was moved).
	SetAside string
}

func (st Status) String() string {
	s := st.Source.String()
	if st.Reason != "" {
		s += ": " + st.Reason
	}
	if st.SetAside != "" {
		s += " (kept as " + st.SetAside + ")"
	}
	return s
}

// maxFileSize bounds what Load reads; a settings file is a few hundred bytes.
const maxFileSize = 64 << 10

// Load reads the settings at path. It always returns usable settings:
//   - no file: Defaults(), Source Missing;
//   - older version: migrated to CurrentVersion, Source Migrated (Update rewrites it);
//   - unreadable JSON, failing validation, or a newer version than this
//     software knows: Defaults(), Source Recovered with the reason, and the
//     file renamed to PATH.corrupt-TIMESTAMP so nothing is lost.
//
// The error is non-nil only when the file exists but cannot be read (or the
// bad file cannot be moved aside); the returned settings are still the defaults.
func Load(path string) (Settings, Status, error) {
	s, st, bad, err := parseFile(path)
	if err != nil || !bad {
		return s, st, err
	}
	// Move the bad file aside under the lock, and only if it is still the
	// same bad file: another process may have just written a good one.
	unlock, err := lock(path)
	if err != nil {
		return Defaults(), st, err
	}
	defer unlock()
	return loadLocked(path)
}

// loadLocked is Load for a caller holding the lock: it may move a bad file aside.
func loadLocked(path string) (Settings, Status, error) {
	s, st, bad, err := parseFile(path)
	if err != nil || !bad {
		return s, st, err
	}
	aside, err := setAside(path)
	if err != nil {
		return Defaults(), st, fmt.Errorf("settings: keeping bad file %s aside: %w", path, err)
	}
	st.SetAside = aside
	return Defaults(), st, nil
}

// parseFile reads and decodes path without side effects. bad reports that
// the file exists but is unusable (st says why); s is then Defaults().
func parseFile(path string) (s Settings, st Status, bad bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return Defaults(), Status{Source: Missing, Reason: "no settings file at " + path + ", using defaults (DHCP)"}, false, nil
	}
	if err != nil {
		return Defaults(), Status{Source: Missing, Reason: "cannot open settings file, using defaults (DHCP)"}, false, fmt.Errorf("settings: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return Defaults(), Status{Source: Missing, Reason: "cannot read settings file, using defaults (DHCP)"}, false, fmt.Errorf("settings: reading %s: %w", path, err)
	}
	s, st, perr := Parse(data)
	if perr != nil {
		return Defaults(), Status{Source: Recovered, FromVersion: st.FromVersion,
			Reason: perr.Error() + "; using defaults (DHCP)"}, true, nil
	}
	return s, st, false, nil
}

// Parse decodes settings file contents, migrating older versions, and
// validates the result. On error the returned Settings are Defaults() and
// the error says what is wrong, for a technician.
func Parse(data []byte) (Settings, Status, error) {
	if len(data) > maxFileSize {
		return Defaults(), Status{}, fmt.Errorf("settings file is larger than %d bytes", maxFileSize)
	}
	var head struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return Defaults(), Status{}, fmt.Errorf("settings file is not valid JSON (%v)", err)
	}
	v := 1 // version 1 files predate the version field
	if head.Version != nil {
		v = *head.Version
	}
	st := Status{Source: FromFile, FromVersion: v}
	var s Settings
	switch {
	case v > CurrentVersion:
		return Defaults(), st, fmt.Errorf("settings file version %d is newer than this software understands (%d)", v, CurrentVersion)
	case v == CurrentVersion:
		if err := decodeStrict(data, &s); err != nil {
			return Defaults(), st, fmt.Errorf("settings file does not match version %d (%v)", v, err)
		}
	case v == 1:
		var old v1
		if err := decodeStrict(data, &old); err != nil {
			return Defaults(), st, fmt.Errorf("settings file does not match version 1 (%v)", err)
		}
		var err error
		if s, err = old.migrate(); err != nil {
			return Defaults(), st, fmt.Errorf("settings file version 1 cannot be converted: %v", err)
		}
		st.Source = Migrated
		st.Reason = fmt.Sprintf("settings file version 1 converted to version %d; it is rewritten at the next change", CurrentVersion)
	default:
		return Defaults(), st, fmt.Errorf("settings file version %d is not a known version", v)
	}
	if err := s.Validate(); err != nil {
		return Defaults(), st, fmt.Errorf("settings file has invalid values: %v", err)
	}
	return s, st, nil
}

// decodeStrict decodes exactly one JSON value with no unknown fields.
func decodeStrict(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if _, err := d.Token(); err != io.EOF {
		return errors.New("extra data after the settings")
	}
	return nil
}

// Marshal encodes s as the settings file holds it (indented, newline-terminated).
func Marshal(s Settings) ([]byte, error) {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("settings: encoding: %w", err)
	}
	return append(b, '\n'), nil
}

// Save validates s and writes it atomically to path, under the lock.
// Prefer Update, which also re-reads the file so no other change is lost.
func Save(path string, s Settings) error {
	_, err := Update(path, func(cur *Settings) error {
		*cur = s.Clone()
		return nil
	})
	return err
}

// Update changes the settings at path without losing a concurrent change
// from another process: it takes an exclusive flock on PATH.lock, re-reads
// the current file (defaults if missing or bad, the bad file kept aside),
// calls change on it, normalizes and validates the result, and writes it
// atomically with mode 0600 (it holds the proxy password). If change
// returns an error or the result is invalid, nothing is written and that
// error is returned. It returns the settings now stored.
func Update(path string, change func(*Settings) error) (Settings, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return Settings{}, fmt.Errorf("settings: %w", err)
	}
	unlock, err := lock(path)
	if err != nil {
		return Settings{}, err
	}
	defer unlock()
	removeStaleTemps(path)
	cur, _, err := loadLocked(path)
	if err != nil {
		return Settings{}, err
	}
	next := cur.Clone()
	if err := change(&next); err != nil {
		return cur, err
	}
	next.Version = CurrentVersion
	next.Normalize()
	if err := next.Validate(); err != nil {
		return cur, err
	}
	data, err := Marshal(next)
	if err != nil {
		return cur, err
	}
	if err := writeAtomic(path, data, nil); err != nil {
		return cur, err
	}
	return next, nil
}

// lock takes an exclusive flock on PATH.lock, waiting for it.
func lock(path string) (unlock func(), err error) {
	lp := path + ".lock"
	f, err := os.OpenFile(lp, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("settings: opening lock file: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("settings: locking %s: %w", lp, err)
	}
	return func() {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}

// setAside renames a bad settings file to PATH.corrupt-TIMESTAMP (with a
// counter if that exists) and fsyncs the directory.
func setAside(path string) (string, error) {
	stamp := time.Now().UTC().Format("20060102T150405.000000000Z")
	aside := path + ".corrupt-" + stamp
	for i := 1; ; i++ {
		if _, err := os.Lstat(aside); errors.Is(err, os.ErrNotExist) {
			break
		}
		aside = fmt.Sprintf("%s.corrupt-%s-%d", path, stamp, i)
	}
	if err := os.Rename(path, aside); err != nil {
		return "", err
	}
	return aside, syncDir(filepath.Dir(path))
}

// tempPrefix is the name prefix of temp files beside path.
func tempPrefix(path string) string { return filepath.Base(path) + ".tmp-" }

// removeStaleTemps deletes temp files left by a write cut short (power
// loss, crash). Called with the lock held, so no write is in progress.
func removeStaleTemps(path string) {
	dir := filepath.Dir(path)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	p := tempPrefix(path)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), p) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// crashPoint names the steps of writeAtomic, for fault-injection tests.
type crashPoint int

const (
	afterCreate crashPoint = iota + 1
	afterWrite
	afterSync
	afterRename
	afterDirSync
)

// errCrash is what a test hook returns to stop writeAtomic as a power cut
// would: no clean-up.
var errCrash = errors.New("simulated power cut")

// writeAtomic writes data to path so that a reader (or a reboot) sees the
// old file or the new one, never a mix: temp file in the same directory,
// write, fsync, rename over path, fsync the directory. hook, if set, is
// called after each step and may stop the write there (tests only); at
// afterWrite it may also return how many bytes reached the disk.
func writeAtomic(path string, data []byte, hook func(crashPoint) (keep int, err error)) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, tempPrefix(path)+"*")
	if err != nil {
		return fmt.Errorf("settings: creating temp file in %s: %w", dir, err)
	}
	tmp := f.Name()
	crashed := false
	defer func() {
		if err != nil && !crashed {
			f.Close()
			os.Remove(tmp)
		}
	}()
	step := func(p crashPoint) (int, bool) {
		if hook == nil {
			return -1, false
		}
		n, herr := hook(p)
		if herr != nil {
			crashed = true
			f.Close()
			err = herr
			return n, true
		}
		return n, false
	}
	if _, stop := step(afterCreate); stop {
		return err
	}
	toWrite := data
	if hook != nil {
		if n, herr := hook(afterWrite); herr != nil {
			if n >= 0 && n < len(data) {
				toWrite = data[:n]
			}
			if _, werr := f.Write(toWrite); werr != nil {
				return werr
			}
			crashed = true
			f.Close()
			return herr
		}
	}
	if _, err = f.Write(toWrite); err != nil {
		return fmt.Errorf("settings: writing %s: %w", tmp, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("settings: syncing %s: %w", tmp, err)
	}
	if _, stop := step(afterSync); stop {
		return err
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("settings: closing %s: %w", tmp, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("settings: renaming %s to %s: %w", tmp, path, err)
	}
	if _, stop := step(afterRename); stop {
		return err
	}
	if err = syncDir(dir); err != nil {
		return err
	}
	if _, stop := step(afterDirSync); stop {
		return err
	}
	return nil
}

// syncDir fsyncs a directory so a rename in it survives a power cut.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("settings: opening directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("settings: syncing directory %s: %w", dir, err)
	}
	return nil
}
