package settings

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPreviousRoundTrip(t *testing.T) {
	p := tempPath(t)
	if _, ok := Previous(p); ok {
		t.Fatal("previous settings before any were kept")
	}
	old := validStatic()
	if err := KeepPrevious(p, old); err != nil {
		t.Fatal(err)
	}
	got, ok := Previous(p)
	if !ok || !got.Equal(old) {
		t.Fatalf("kept %v, read %v %v", old, got, ok)
	}
	if fi, err := os.Stat(p + PreviousSuffix); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("previous file mode: %v %v", fi.Mode(), err)
	}
	if err := DropPrevious(p); err != nil {
		t.Fatal(err)
	}
	if _, ok := Previous(p); ok {
		t.Fatal("dropped previous settings still read")
	}
	if err := DropPrevious(p); err != nil {
		t.Fatal("dropping twice:", err)
	}
	bad := old
	bad.Gateway = "192.0.2.1"
	if err := KeepPrevious(p, bad); err == nil {
		t.Fatal("invalid previous settings kept")
	}
}

// TestPreviousPowerCut stops the write of the previous settings at every
// step and length: they read as the old kept ones, the new ones, or none
// (never a partial record), and the settings file is untouched.
func TestPreviousPowerCut(t *testing.T) {
	first := validStatic()
	second := validStatic()
	second.Address, second.Gateway = "10.20.30.40/24", "10.20.30.1"
	data, _ := Marshal(second)
	type cut struct {
		at   crashPoint
		keep int
	}
	cuts := []cut{{afterCreate, -1}}
	for n := 0; n <= len(data); n++ {
		cuts = append(cuts, cut{afterWrite, n})
	}
	cuts = append(cuts, cut{afterSync, -1}, cut{afterRename, -1}, cut{afterDirSync, -1})
	for _, c := range cuts {
		p := tempPath(t)
		cur := validStatic()
		cur.Name = "current"
		if err := Save(p, cur); err != nil {
			t.Fatal(err)
		}
		if err := KeepPrevious(p, first); err != nil {
			t.Fatal(err)
		}
		err := keepPrevious(p, second, func(at crashPoint) (int, error) {
			if at == c.at {
				return c.keep, errCrash
			}
			return -1, nil
		})
		if err != errCrash {
			t.Fatalf("cut %+v: %v", c, err)
		}
		got, ok := Previous(p)
		want := first
		if c.at >= afterRename {
			want = second
		}
		if !ok || !got.Equal(want) {
			t.Fatalf("cut %+v: previous %v %v, want %v", c, got, ok, want)
		}
		if s, st, _ := Load(p); st.Source != FromFile || s.Name != "current" {
			t.Fatalf("cut %+v: settings file disturbed: %v %v", c, s, st)
		}
		// The next keep cleans up the leftover temp file.
		if err := KeepPrevious(p, first); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, n := range listDir(t, filepath.Dir(p)) {
			names = append(names, n)
		}
		if strings.Join(names, " ") != "settings.json settings.json.lock settings.json.previous" {
			t.Fatalf("cut %+v: directory holds %v", c, names)
		}
	}
}
