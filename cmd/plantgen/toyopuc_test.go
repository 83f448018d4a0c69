package main

import (
	"strings"
	"testing"

	"github.com/passivesensor/sensor/ot"
)

// TestToyopucPlant: the sensor learns the assembly line's TOYOPUC PLC
// from the computer link the HMI speaks to it.
func TestToyopucPlant(t *testing.T) {
	inv := plantInventory(t)
	a, ok := inv.Lookup(toyopucPLC.IP)
	if !ok {
		t.Fatalf("%s (%s) missing from the inventory", toyopucPLC.Name, toyopucPLC.IP)
	}
	if a.MAC.String() != toyopucPLC.MAC.String() {
		t.Errorf("MAC %s, want %s", a.MAC, toyopucPLC.MAC)
	}
	if a.Class != "plc" {
		t.Errorf("class %q, want plc", a.Class)
	}
	for key, want := range map[string]string{
		"role":                 ot.RoleToyopucServer,
		ot.AttrToyopucCPUState: "run, PC10 mode",
		ot.AttrToyopucRelay:    "link 0x12 station 0x0002",
		ot.AttrToyopucWrite:    "toyopuc:1d word-write",
		"service:toyopuc":      "toyopuc:1c word-read@" + hmi.IP.String(),
	} {
		if !strings.Contains(a.Attrs[key], want) {
			t.Errorf("%s: %q does not hold %q", key, a.Attrs[key], want)
		}
	}
	h, ok := inv.Lookup(hmi.IP)
	if !ok || !strings.Contains(h.Attrs["role"], ot.RoleToyopucClient) {
		t.Errorf("the HMI's roles %q lack %s", h.Attrs["role"], ot.RoleToyopucClient)
	}
}
