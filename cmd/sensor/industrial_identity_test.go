package main

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/asset"
	"github.com/passivesensor/sensor/internal/testcorpus"
)

// industrialByIP indexes a report's assets by address.
func industrialByIP(r Report) map[string]asset.Asset {
	m := map[string]asset.Asset{}
	for _, a := range r.Assets {
		for _, ip := range a.IPs {
			m[ip.String()] = a
		}
	}
	return m
}

// The built-in plant's industrial devices (EtherNet/IP, BACnet, Profinet,
// OPC UA, MQTT) are listed with what they state about themselves.
func TestPlantIndustrialIdentity(t *testing.T) {
	src, err := openDemo()
	if err != nil {
		t.Fatal(err)
	}
	s := New(asset.DefaultClasses())
	if err := s.RunFile(src); err != nil {
		t.Fatal(err)
	}
	by := industrialByIP(s.Report())
	check := func(ip, what, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s %s: %q, want %q", ip, what, got, want)
		}
	}
	a := by["10.10.0.130"]
	check("10.10.0.130", "vendor", a.Vendor, "Rockwell Automation/Allen-Bradley")
	check("10.10.0.130", "model", a.Model, "1756-L83E/B")
	check("10.10.0.130", "firmware", a.Firmware, "33.11")
	check("10.10.0.130", "serial", a.Serial, "0x60c0ffee")
	check("10.10.0.130", "class", a.Class, "plc")
	check("10.10.0.130", "cip.write", a.Attrs["cip.write"], "cip:write-tag symbolic")
	a = by["10.10.0.140"]
	check("10.10.0.140", "vendor", a.Vendor, "Johnson Controls, Inc.")
	check("10.10.0.140", "model", a.Model, "MS-FEC2611-0")
	check("10.10.0.140", "firmware", a.Firmware, "10.1.5")
	check("10.10.0.140", "instance", a.Attrs["bacnet.device_instance"], "140001")
	check("10.10.0.140", "name", a.Attrs["name"], "AHU-1 Clean Room")
	a = by["10.10.0.145"]
	check("10.10.0.145", "MAC", a.MAC.String(), "00:1b:1b:10:01:45")
	check("10.10.0.145", "vendor", a.Vendor, "Siemens AG")
	check("10.10.0.145", "model", a.Model, "ET200SP")
	check("10.10.0.145", "name", a.Attrs["name"], "et200sp-fill")
	a = by["10.10.0.150"]
	check("10.10.0.150", "model", a.Model, "TwinCAT OPC UA Server")
	check("10.10.0.150", "product", a.Attrs["opcua.product_uri"], "http://www.beckhoff.com/TwinCAT/OpcUaServer")
	check("10.10.0.150", "role", a.Attrs["role"], "opcua-server")
	check("10.10.0.155", "role", by["10.10.0.155"].Attrs["role"], "mqtt-broker")
	a = by["10.10.0.156"]
	check("10.10.0.156", "client id", a.Attrs["mqtt.client_id"], "line1-logger")
	check("10.10.0.156", "credentials", a.Attrs["mqtt.credentials"], "yes")
	for _, v := range a.Attrs {
		if strings.Contains(v, "line1-pass") {
			t.Errorf("the MQTT password reached the inventory: %q", v)
		}
	}
}

// On the corpus's industrial captures, each device stating its identity
// is listed with the vendor, model, firmware, serial and class the capture
// carries, as tshark reads them (enip.lir.*; pn_dcp.suboption_*).
func TestIndustrialCorpusIdentity(t *testing.T) {
	path := testcorpus.File(t, "ICS-Security-Tools__pcaps__EthernetIP__enip_test.pcap")
	rows := testcorpus.Tshark(t, path, "enip.lir.name", "ip.src", "enip.lir.revision", "enip.lir.serial", "enip.lir.name")
	if len(rows) == 0 {
		t.Fatal("tshark reads no ListIdentity reply")
	}
	by := industrialByIP(runFile(t, path))
	for _, r := range rows {
		a := by[r[0]]
		rev, _ := strconv.Atoi(r[1])
		serial, _ := strconv.ParseUint(strings.TrimPrefix(r[2], "0x"), 16, 32)
		if a.Model != r[3] || a.Firmware != fmt.Sprintf("%d.%d", rev>>8, rev&0xff) || a.Serial != fmt.Sprintf("0x%08x", serial) ||
			a.Vendor != "Rockwell Automation/Allen-Bradley" || a.Class != "io" {
			t.Errorf("%s: vendor %q model %q firmware %q serial %q class %q; tshark %v", r[0], a.Vendor, a.Model, a.Firmware, a.Serial, a.Class, r)
		}
	}

	path = testcorpus.File(t, "ICS-Pcaps__Profinet__pro6.pcap")
	rows = testcorpus.Tshark(t, path, "pn_rt.frame_id==0xfeff", "pn_dcp.suboption_ip_ip", "eth.src", "pn_dcp.suboption_device_devicevendorvalue", "pn_dcp.suboption_vendor_id")
	if len(rows) == 0 {
		t.Fatal("tshark reads no DCP Identify response")
	}
	by = industrialByIP(runFile(t, path))
	for _, r := range rows {
		a := by[r[0]]
		if a.MAC.String() != r[1] || a.Model != strings.TrimSpace(r[2]) || r[3] == "0x002a" && a.Vendor != "Siemens AG" {
			t.Errorf("%s: MAC %s model %q vendor %q; tshark %v", r[0], a.MAC, a.Model, a.Vendor, r)
		}
	}
}

// A ControlLogix's controller read through its EtherNet/IP module's
// backplane is listed on the module's address as a module (cip.module),
// with the product name, revision and serial tshark reads
// (cip.id.product_name, cip.id.major_rev, cip.id.minor_rev,
// cip.id.serial_number); a BACnet controller is listed with the vendor,
// model and firmware its ReadProperty answers carry (tshark's bacapp
// dissection).
func TestIndustrialCorpusModulesAndBACnet(t *testing.T) {
	path := testcorpus.File(t, "ICS-Security-Tools__pcaps__openics__EIP-RebootorRestart.pcap")
	rows := testcorpus.Tshark(t, path, "cip.id.product_name", "ip.src", "cip.id.product_name", "cip.id.major_rev", "cip.id.minor_rev", "cip.id.serial_number")
	if len(rows) == 0 {
		t.Fatal("tshark reads no Identity reply")
	}
	by := industrialByIP(runFile(t, path))
	for _, r := range rows {
		m := by[r[0]].Attrs["cip.module"]
		if !strings.Contains(m, r[1]) || !strings.Contains(m, "rev "+r[2]+"."+r[3]) || !strings.Contains(m, "serial "+r[4]) {
			t.Errorf("%s: cip.module %q, tshark %v", r[0], m, r)
		}
	}

	path = testcorpus.File(t, "ICS-Pcaps__BacNET__bacnet_test.pcap")
	testcorpus.NeedTshark(t)
	out, err := exec.Command("tshark", "-r", path, "-Y", "bacapp.type==3", "-O", "bacapp").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		l = strings.TrimSpace(l)
		for _, p := range []string{"vendor-name", "model-name", "firmware-revision"} {
			if strings.HasPrefix(l, p+": ") && strings.HasSuffix(l, "'") {
				if i := strings.Index(l, "'"); i > 0 {
					want[p] = l[i+1 : len(l)-1]
				}
			}
		}
	}
	if len(want) != 3 {
		t.Fatalf("tshark reads %v", want)
	}
	a := industrialByIP(runFile(t, path))["10.1.1.165"]
	if a.Vendor != want["vendor-name"] || a.Model != want["model-name"] || a.Firmware != want["firmware-revision"] {
		t.Errorf("BACnet controller: vendor %q model %q firmware %q, tshark %v", a.Vendor, a.Model, a.Firmware, want)
	}
}
