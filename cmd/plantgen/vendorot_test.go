package main

import (
	"strings"
	"testing"

	"github.com/passivesensor/sensor/asset"
	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/ot"
)

// TestVendorOTPlant: the sensor learns what the vendor controllers of the
// plant say about themselves over FINS, ADS, SLMP, Fox, EtherCAT,
// CC-Link IE Field Basic, PC Worx, OptoMMP and Crimson v3.
func TestVendorOTPlant(t *testing.T) {
	inv := plantInventory(t)
	check := func(d Device, field, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s (%s) %s: got %q, want %q", d.Name, d.IP, field, got, want)
		}
	}
	has := func(d Device, a asset.Asset, key, want string) {
		t.Helper()
		if !strings.Contains(a.Attrs[key], want) {
			t.Errorf("%s (%s) %s: %q does not hold %q", d.Name, d.IP, key, a.Attrs[key], want)
		}
	}
	get := func(d Device) asset.Asset {
		t.Helper()
		a, ok := inv.Lookup(d.IP)
		if !ok {
			t.Fatalf("%s (%s) missing from the inventory", d.Name, d.IP)
		}
		if a.MAC.String() != d.MAC.String() {
			t.Errorf("%s: MAC %s, want %s", d.Name, a.MAC, d.MAC)
		}
		return a
	}

	a := get(omronPLC)
	check(omronPLC, "model", a.Model, "CJ2M-CPU33")
	check(omronPLC, "firmware", a.Firmware, "02.01")
	check(omronPLC, "class", a.Class, "plc")
	has(omronPLC, a, "role", "fins-server")
	has(omronPLC, a, ot.AttrFINSNode, "0.160.0")

	a = get(beckhoffCX)
	check(beckhoffCX, "firmware", a.Firmware, "TwinCAT 3.1.4024")
	check(beckhoffCX, "hostname", a.Hostname, "CX-2C7E81")
	check(beckhoffCX, "os", a.OS, "Windows CE 7.0")
	has(beckhoffCX, a, ot.AttrADSDevice, "851 Plc30 App 3.1.4024")
	has(beckhoffCX, a, ot.AttrADSNetID, "5.44.120.18.1.1")
	has(beckhoffCX, a, "role", "ads-server")

	a = get(melsecPLC)
	check(melsecPLC, "model", a.Model, "R04CPU")
	check(melsecPLC, "class", a.Class, "plc")
	has(melsecPLC, a, ot.AttrSLMPModelCode, "4800")
	has(melsecPLC, a, "role", "slmp-server")
	has(melsecPLC, a, "role", "cclink-iefb-master")

	a = get(niagaraJACE)
	check(niagaraJACE, "hostname", a.Hostname, "jace-ahu")
	check(niagaraJACE, "firmware", a.Firmware, "Niagara 4.10.1.36")
	check(niagaraJACE, "os", a.OS, "QNX 6.5.0")
	has(niagaraJACE, a, "name", "AHU_Plant")
	has(niagaraJACE, a, "role", "niagara-station")

	a = get(cclinkIO)
	has(cclinkIO, a, ot.AttrCCIEFBStation, "group 1 station 1")
	has(cclinkIO, a, ot.AttrCCIEFBModelCode, "1234")
	has(cclinkIO, a, "role", "cclink-iefb-slave")

	a = get(phoenixILC)
	check(phoenixILC, "model", a.Model, "ILC 151 ETH")
	check(phoenixILC, "firmware", a.Firmware, "4.42")
	has(phoenixILC, a, ot.AttrPCWorxOrderNumber, "2700974")
	has(phoenixILC, a, ot.AttrPCWorxFirmwareDate, "Jun 12 2019 10:21:55")

	a = get(optoPAC)
	check(optoPAC, "model", a.Model, "SNAP-PAC-R1")
	check(optoPAC, "firmware", a.Firmware, "10.2.0.3")
	has(optoPAC, a, ot.AttrOptoMMPUnitType, "8a")

	a = get(redlionHMI)
	check(redlionHMI, "vendor", a.Vendor, "Red Lion Controls")
	check(redlionHMI, "model", a.Model, "G310C2")

	var m capture.MAC
	copy(m[:], ecatPort.MAC)
	e, ok := inv.LookupMAC(m)
	if !ok {
		t.Fatalf("EtherCAT master %s missing", ecatPort.MAC)
	}
	has(ecatPort, e, ot.AttrEtherCATSlaves, "4")
	has(ecatPort, e, "role", "ethercat-master")
	has(ecatPort, e, ot.AttrEtherCATSlaveInfo, "1001 vendor 0x00000002 product 0x044c2c52; 1002 vendor 0x00000002 product 0x03f03052")
	back := m
	back[0] |= 2
	if _, ok := inv.LookupMAC(back); ok {
		t.Errorf("the EtherCAT frames' returned MAC %s became an asset", back)
	}
}
