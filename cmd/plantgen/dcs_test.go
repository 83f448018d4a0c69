package main

import (
	"strings"
	"testing"

	"github.com/passivesensor/sensor/ot"
)

// TestSRTPAndDeltaVPlant: the sensor learns the GE mixer PLC from the SRTP
// the HMI polls it with (its role and the PLC state its replies carry),
// and the reactor's DeltaV controller and operator station from their
// messages.
func TestSRTPAndDeltaVPlant(t *testing.T) {
	inv := plantInventory(t)
	for _, tc := range []struct {
		d     Device
		class string
		attrs map[string]string
	}{
		{geRX3i, "plc", map[string]string{
			"role":              ot.RoleSRTPServer,
			ot.AttrSRTPPLCState: "run, I/O enabled, PLC fault present",
			"service:srtp":      "srtp:0x04 read-system-memory@" + hmi.IP.String(),
		}},
		{dvController, "plc", map[string]string{
			"role":           ot.RoleDeltaVController,
			"service:deltav": "deltav:0403 data-change@" + dvOperator.IP.String(),
		}},
		{dvOperator, "hmi", map[string]string{"role": ot.RoleDeltaVWorkstation}},
	} {
		a, ok := inv.Lookup(tc.d.IP)
		if !ok {
			t.Errorf("%s (%s) missing from the inventory", tc.d.Name, tc.d.IP)
			continue
		}
		if a.MAC.String() != tc.d.MAC.String() {
			t.Errorf("%s: MAC %s, want %s", tc.d.Name, a.MAC, tc.d.MAC)
		}
		if a.Class != tc.class {
			t.Errorf("%s: class %q, want %q", tc.d.Name, a.Class, tc.class)
		}
		for k, w := range tc.attrs {
			if !strings.Contains(a.Attrs[k], w) {
				t.Errorf("%s %s: %q does not hold %q", tc.d.Name, k, a.Attrs[k], w)
			}
		}
	}
	if a, _ := inv.Lookup(dvController.IP); a.Vendor != "Emerson" {
		t.Errorf("DeltaV controller vendor %q, want Emerson", a.Vendor)
	}
	if h, _ := inv.Lookup(hmi.IP); !strings.Contains(h.Attrs["role"], ot.RoleSRTPClient) {
		t.Errorf("the HMI's roles %q lack %s", h.Attrs["role"], ot.RoleSRTPClient)
	}
}
