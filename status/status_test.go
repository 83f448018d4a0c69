package status

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWriteRead(t *testing.T) {
	dir := t.TempDir()
	if _, err := Read(dir); err == nil {
		t.Fatal("Read of a directory without status gave no error")
	}
	want := Status{
		Time: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), Version: "1.2.3", Registration: Sensing,
		SensorID: "s-1", CloudOK: true, Assets: 12,
		Interfaces: []Interface{{Name: "eth1", Up: true, RateBps: 1e6, Packets: 10, Drops: 1}},
		Update:     Update{State: "downloading", Version: "1.2.4"},
	}
	if err := Write(dir, want); err != nil {
		t.Fatal(err)
	}
	got, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != want.Version || got.Registration != want.Registration || !got.Time.Equal(want.Time) ||
		len(got.Interfaces) != 1 || got.Interfaces[0] != want.Interfaces[0] || got.Update != want.Update || got.Assets != 12 {
		t.Fatalf("read back %+v, wrote %+v", got, want)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("temporary files left behind: %v", ents)
	}
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte("{\"version\":"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(dir); err == nil {
		t.Fatal("Read of a truncated file gave no error")
	}
}
