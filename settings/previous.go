package settings

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// PreviousSuffix names the file, beside the settings file, that keeps the
// network settings a change replaced until the new ones are known to reach
// the cloud; a front end offers them back when they do not.
const PreviousSuffix = ".previous"

func previousPath(path string) string { return path + PreviousSuffix }

// KeepPrevious records s (the settings in force before a network change)
// beside the settings file at path, atomically and under the settings lock.
func KeepPrevious(path string, s Settings) error {
	return keepPrevious(path, s, nil)
}

func keepPrevious(path string, s Settings, hook func(crashPoint) (int, error)) error {
	s = s.Clone()
	s.Version = CurrentVersion
	if err := s.Validate(); err != nil {
		return fmt.Errorf("settings: previous settings: %w", err)
	}
	data, err := Marshal(s)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	unlock, err := lock(path)
	if err != nil {
		return err
	}
	defer unlock()
	removeStaleTemps(previousPath(path))
	return writeAtomic(previousPath(path), data, hook)
}

// Previous returns the settings KeepPrevious recorded, if there are any
// and they are whole and valid (a damaged file counts as none).
func Previous(path string) (Settings, bool) {
	data, err := os.ReadFile(previousPath(path))
	if err != nil || len(data) > maxFileSize {
		return Settings{}, false
	}
	s, _, err := Parse(data)
	if err != nil {
		return Settings{}, false
	}
	return s, true
}

// DropPrevious forgets the recorded previous settings (the new ones reach
// the cloud, or they were restored).
func DropPrevious(path string) error {
	unlock, err := lock(path)
	if err != nil {
		return err
	}
	defer unlock()
	if err := os.Remove(previousPath(path)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("settings: %w", err)
	}
	return syncDir(filepath.Dir(path))
}
