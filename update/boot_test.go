package update

import (
	"strings"
	"testing"
)

// Each slot's entry boots its own kernel and root and names the version
// installed there on the kernel command line, whatever the running
// entry's options carried.
func TestEntryNamesSlotRootAndVersion(t *testing.T) {
	b := &SystemdBoot{Options: "console=ttyAMA0 root=PARTUUID=old/PARTNROFF=1 sensor.version=0.9 panic=10", PartUUID: "2e18c40c-aaaa"}
	e := b.Entry(SlotB, "1.4.0", DefaultKernel)
	for _, want := range []string{"version 1.4.0\n", "linux /b/vmlinuz\n",
		"options console=ttyAMA0 panic=10 root=PARTUUID=2e18c40c-aaaa/PARTNROFF=2 sensor.version=1.4.0\n"} {
		if !strings.Contains(e, want) {
			t.Errorf("entry lacks %q:\n%s", want, e)
		}
	}
	if got := SlotVersion("console=ttyAMA0 root=PARTUUID=x/PARTNROFF=2 sensor.version=1.4.0 quiet"); got != "1.4.0" {
		t.Errorf("SlotVersion = %q", got)
	}
	if got := SlotVersion("console=ttyAMA0"); got != "" {
		t.Errorf("SlotVersion without the parameter = %q", got)
	}
}
