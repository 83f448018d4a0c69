package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/demo"
)

// The shipped demo capture must be what the generator writes today, so a
// protocol added to the generator reaches the demo.
func TestDemoCaptureIsCurrent(t *testing.T) {
	a, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	b, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("Generate is not deterministic")
	}
	if !bytes.Equal(a, demo.Plant) {
		t.Fatal("demo/plant.pcap is stale: run `make demo-data` and commit it")
	}
}

// Wireshark must read every frame the generator writes without a
// malformed-packet or warning-level complaint.
func TestWiresharkReadsPlantCleanly(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("tshark not installed (apt-get install tshark): cannot check the capture against Wireshark")
	}
	data, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "plant.pcap")
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("tshark", "-r", f, "-Y", "_ws.expert.severity >= warning || _ws.malformed").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Fatalf("Wireshark complains about frames:\n%s", s)
	}
	out, err = exec.Command("tshark", "-r", f, "-Y", "dhcp.option.hostname", "-T", "fields", "-e", "dhcp.option.hostname").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	if !strings.Contains(string(out), "HMI-LINE1") || !strings.Contains(string(out), "ENG-STATION") {
		t.Fatalf("Wireshark does not read the DHCP hostnames; got %q", out)
	}
}
