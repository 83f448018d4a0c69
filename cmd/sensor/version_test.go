package main

import (
	"os"
	"path/filepath"
	"testing"
)

// On the appliance the sensor reports the version its slot's kernel
// command line names; elsewhere it is "dev".
func TestSlotVersion(t *testing.T) {
	dir := t.TempDir()
	cmdline := filepath.Join(dir, "cmdline")
	os.WriteFile(cmdline, []byte("console=hvc0 root=PARTUUID=2e18c40c-0001/PARTNROFF=2 sensor.version=1.4.0 panic=10\n"), 0o644)
	if v := slotVersion(cmdline, "dev"); v != "1.4.0" {
		t.Errorf("with sensor.version: %q, want 1.4.0", v)
	}
	os.WriteFile(cmdline, []byte("console=tty0 root=/dev/sda1\n"), 0o644)
	if v := slotVersion(cmdline, "dev"); v != "dev" {
		t.Errorf("without sensor.version: %q, want dev", v)
	}
	if v := slotVersion(filepath.Join(dir, "missing"), "dev"); v != "dev" {
		t.Errorf("without a command line: %q, want dev", v)
	}
}
