package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/asset"
	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
	"github.com/passivesensor/sensor/it"
	"github.com/passivesensor/sensor/ot"
)

// plantInventory runs the generated plant through the sensor's own parts
// (capture file reader, decoder, flow table, the it and ot dissectors, the
// inventory), as cmd/sensor wires them.
func plantInventory(t *testing.T) *asset.Inventory {
	t.Helper()
	data, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "plant.pcap")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := capture.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	inv := asset.NewInventory(asset.DefaultClasses())
	tab := flow.NewTable(flow.Config{OnEvict: inv.AddFlow})
	reg := dissect.NewRegistry(append(it.All(), ot.All()...)...)
	var dec capture.Decoder
	var cp capture.Packet
	for {
		fr, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if dec.Decode(fr, &cp) != nil {
			continue
		}
		var f *flow.Flow
		var dir flow.Dir
		if cp.HasIP() && (cp.IPProto == capture.ProtoTCP || cp.IPProto == capture.ProtoUDP) {
			f, dir = tab.Lookup(&cp)
			if f != nil {
				inv.AddFlow(f)
			}
		}
		reg.Dispatch(&dissect.Packet{Packet: &cp, Flow: f, Dir: dir}, inv)
	}
	tab.Range(func(f *flow.Flow) bool { inv.AddFlow(f); return true })
	return inv
}

// TestSubstationIdentityLearnt: what the S7-1500, DNP3 RTU, IEC 104 RTU and
// IEC 61850 relay of the plant say about themselves reaches the inventory,
// with their roles and their clients' services.
func TestSubstationIdentityLearnt(t *testing.T) {
	inv := plantInventory(t)
	get := func(d Device) asset.Asset {
		a, ok := inv.Lookup(d.IP)
		if !ok {
			t.Fatalf("%s (%s) not in the inventory", d.Name, d.IP)
		}
		return a
	}
	check := func(d Device, field, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s %s: %q, want %q", d.Name, field, got, want)
		}
	}
	has := func(d Device, a asset.Asset, key, want string) {
		t.Helper()
		if !strings.Contains(a.Attrs[key], want) {
			t.Errorf("%s %s: %q, want it to hold %q", d.Name, key, a.Attrs[key], want)
		}
	}

	plc := get(s7plc)
	check(s7plc, "vendor", plc.Vendor, "Siemens")
	check(s7plc, "model", plc.Model, "6ES7 515-2AM02-0AB0")
	check(s7plc, "firmware", plc.Firmware, "V2.9.1")
	check(s7plc, "serial", plc.Serial, "S V-L9AB12342019")
	has(s7plc, plc, "role", "s7-server")
	has(s7plc, plc, "name", "PLC_PACK2")
	has(s7plc, plc, "s7.plant_id", "Packaging line 2")
	has(s7plc, plc, "s7.slot", "1")
	has(s7plc, plc, "service:s7comm", "s7comm:write-var")
	has(s7plc, plc, "s7.write", "s7comm:write-var")

	rtu := get(dnp3RTU)
	check(dnp3RTU, "vendor", rtu.Vendor, "Schweitzer Engineering Laboratories")
	check(dnp3RTU, "model", rtu.Model, "SEL-3505 RTAC")
	check(dnp3RTU, "firmware", rtu.Firmware, "R151-V2")
	check(dnp3RTU, "serial", rtu.Serial, "3171520401")
	has(dnp3RTU, rtu, "role", "dnp3-outstation")
	has(dnp3RTU, rtu, "dnp3.address", "10")
	has(dnp3RTU, rtu, "dnp3.control", "dnp3:direct-operate")
	has(scada, get(scada), "role", "dnp3-master")

	r104 := get(iec104RTU)
	has(iec104RTU, r104, "role", "iec104-controlled")
	has(iec104RTU, r104, "iec104.common_addresses", "1,2")
	has(iec104RTU, r104, "iec104.control", "C_SC_NA_1")
	has(scada, get(scada), "role", "iec104-controlling")

	relay := get(ied)
	check(ied, "vendor", relay.Vendor, "ABB")
	check(ied, "model", relay.Model, "REF615")
	check(ied, "firmware", relay.Firmware, "5.0 FP1")
	has(ied, relay, "role", "mms-server")
	has(ied, relay, "mms.logical_devices", "AA1J1Q01A1CTRL,AA1J1Q01A1LD0,AA1J1Q01A1PROT")
	if t.Failed() {
		t.Logf("PLC %+v\nRTU %+v\n104 %+v\nIED %+v", plc, rtu, r104, relay)
	}
}
