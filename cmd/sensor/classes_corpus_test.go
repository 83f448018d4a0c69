package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/internal/testcorpus"
)

// controllerRoles are the roles of the device side of industrial
// protocols: whoever holds one must come out of the inventory with a class.
var controllerRoles = []string{
	"modbus-server", "s7-server", "enip-server", "fins-server", "ads-server", "slmp-server",
	"melsoft-server", "srtp-server", "pcworx-server", "proconos-server", "optommp-server",
	"dnp3-outstation", "iec104-controlled", "mms-server", "bacnet-device", "bacnet-server",
	"profinet-io-device", "profinet-io-controller", "cclink-iefb-slave", "niagara-station",
	"fox-server", "crimson-server", "opcua-server", "mqtt-broker",
}

// classCorpusFiles is one capture per industrial protocol family.
var classCorpusFiles = []string{
	"ICS-Security-Tools__pcaps__ModbusTCP__ModbusTCP.pcap",
	"ICS-Security-Tools__pcaps__dnp3__dnp3_test_data_part2.pcap",
	"ICS-Pcaps__S7COMM__s3.pcap",
	"ICS-Pcaps__IEC60870-104__50.pcap",
	"ICS-Security-Tools__pcaps__IEC61850__8d7c7db0-9804-012b-b2a6-0016cb8cea27.pcap",
	"ICS-Security-Tools__pcaps__EthernetIP__enip_test.pcap",
	"ICS-Pcaps__BacNET__bacnet-services.pcap",
	"ICS-Pcaps__Profinet__pro1.pcap",
	"Malcolm-PCAP__pcaps__protocols__OPCUA-Binary.pcap",
	"ICS-Pcaps__MQTT__mqtt.pcap",
	"ICS-Pcaps__OMRON__omron.pcap",
	"ICS-Security-Tools__pcaps__beckoff__addroute.pcapng",
	"ICS-Security-Tools__pcaps__fox__fox_info.pcap",
}

// checkControllerClasses runs path through the sensor and fails for each
// device holding a controller role without a class. It returns how many
// controllers it checked.
func checkControllerClasses(t *testing.T, path string) int {
	t.Helper()
	seen := map[string]bool{}
	n := 0
	// Several captures use public addresses on the plant floor: inventory
	// every address.
	for _, a := range otJSONAssets(t, path, "0.0.0.0/0") {
		if seen[a.ID] {
			continue
		}
		seen[a.ID] = true
		roles := strings.Split(a.Attrs["role"], ",")
		for _, r := range controllerRoles {
			if !contains(roles, r) {
				continue
			}
			n++
			if a.DevClass == "" {
				t.Errorf("%s: %s (%s) has role %s but no class; evidence %q", filepath.Base(path), a.ID, a.IP, r, a.Attrs["class.evidence"])
			}
			break
		}
	}
	return n
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// Every controller, outstation and field device of the industrial corpus
// captures gets a device class.
func TestCorpusControllersClassed(t *testing.T) {
	for _, name := range classCorpusFiles {
		t.Run(name, func(t *testing.T) {
			if checkControllerClasses(t, testcorpus.File(t, name)) == 0 {
				// Each capture was chosen for the devices it shows.
				t.Errorf("%s: no device with a controller role", name)
			}
		})
	}
}

// The same over every industrial capture of the corpus (SENSOR_CLASS_SWEEP=1).
func TestCorpusControllersClassedSweep(t *testing.T) {
	if os.Getenv("SENSOR_CLASS_SWEEP") == "" {
		t.Skip("set SENSOR_CLASS_SWEEP=1 to classify every capture of the corpus")
	}
	dir := filepath.Dir(testcorpus.File(t, classCorpusFiles[0]))
	files, _ := filepath.Glob(filepath.Join(dir, "*.pcap*"))
	total := 0
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) { total += checkControllerClasses(t, f) })
	}
	t.Logf("%d controllers in %d captures", total, len(files))
}

// EtherNet/IP ListIdentity: the adapter's product name and serial equal
// tshark's (enip.lir.name, enip.lir.serial), and it has a class.
func TestCorpusENIPIdentityClass(t *testing.T) {
	path := testcorpus.File(t, "ICS-Security-Tools__pcaps__EthernetIP__enip_test.pcap")
	rows := testcorpus.Tshark(t, path, "enip.lir.name", "ip.src", "enip.lir.name", "enip.lir.serial")
	if len(rows) == 0 {
		t.Fatal("tshark reads no ListIdentity reply")
	}
	assets := otJSONAssets(t, path, "0.0.0.0/0")
	for _, r := range rows {
		a, ok := assets[r[0]]
		if !ok {
			t.Errorf("adapter %s not listed", r[0])
			continue
		}
		if a.Model != strings.TrimSpace(r[1]) || !strings.EqualFold(a.Serial, r[2]) || a.DevClass == "" {
			t.Errorf("adapter %s listed as model %q serial %q class %q; tshark: product %q serial %s", r[0], a.Model, a.Serial, a.DevClass, r[1], r[2])
		}
	}
}

// FINS Controller Data Read: the PLC's model and version equal tshark's
// (omron.controller.model, omron.controller.version), with class plc.
func TestCorpusFINSIdentityClass(t *testing.T) {
	path := testcorpus.File(t, "ICS-Pcaps__OMRON__omron.pcap")
	rows := testcorpus.Tshark(t, path, "omron.controller.model", "ip.src", "omron.controller.model", "omron.controller.version")
	if len(rows) == 0 {
		t.Fatal("tshark reads no Controller Data Read response")
	}
	assets := otJSONAssets(t, path, "0.0.0.0/0")
	for _, r := range rows {
		a := assets[r[0]]
		if a.Model != strings.TrimSpace(r[1]) || a.Firmware != strings.TrimSpace(r[2]) || a.DevClass != "plc" {
			t.Errorf("PLC %s listed as model %q firmware %q class %q; tshark: model %q version %q", r[0], a.Model, a.Firmware, a.DevClass, r[1], r[2])
		}
	}
}
