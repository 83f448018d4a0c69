package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passivesensor/sensor/internal/testcorpus"
	"github.com/passivesensor/sensor/settings"
)

// sensorRun runs the sensor binary with args and returns what it printed
// and its exit code.
func sensorRun(t *testing.T, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var xerr *exec.ExitError
	switch {
	case errors.As(err, &xerr):
		code = xerr.ExitCode()
	case err != nil:
		t.Fatalf("sensor %s: %v", strings.Join(args, " "), err)
	}
	return o.String(), e.String(), code
}

// jsonReport reads the -json output: the assets' addresses, the packets of
// the traffic records and the frames counted.
func jsonReport(t *testing.T, out string) (ips map[string]bool, packets, frames uint64) {
	t.Helper()
	ips = map[string]bool{}
	sawStats := false
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var l struct {
			Kind   string
			IP     string
			IPs    []string
			PO     uint64 `json:"packets_out"`
			PI     uint64 `json:"packets_in"`
			Frames uint64
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("output line %q: %v", line, err)
		}
		switch l.Kind {
		case "asset":
			ips[l.IP] = true
			for _, ip := range l.IPs {
				ips[ip] = true
			}
		case "flow":
			packets += l.PO + l.PI
		case "stats":
			frames, sawStats = l.Frames, true
		}
	}
	if !sawStats {
		t.Fatalf("no stats line in the output:\n%s", out)
	}
	return ips, packets, frames
}

// A capture whose last record is cut short (the capturing process stopped
// mid-write): the sensor warns, naming the file and the record, and reports
// every frame before it as tshark reads them.
func TestCutShortCaptureReported(t *testing.T) {
	file := testcorpus.File(t, "ICS-Security-Tools__pcaps__MELSEC__melsoft_129_clean.pcap")
	frames := testcorpus.Tshark(t, file, "", "frame.number")
	l4 := testcorpus.Tshark(t, file, "tcp || udp", "frame.number")
	srcs := testcorpus.Tshark(t, file, "ip", "ip.src")
	bin, _ := cloudBuild(t)

	out, errOut, code := sensorRun(t, bin, "-json", "-r", file)
	if code != 0 {
		t.Fatalf("exit status %d, want 0; stderr:\n%s", code, errOut)
	}
	want := fmt.Sprintf("record %d is cut short", len(frames)+1)
	if !strings.Contains(errOut, "warning") || !strings.Contains(errOut, file) || !strings.Contains(errOut, want) {
		t.Errorf("stderr %q: want a warning naming %s and saying %q", errOut, file, want)
	}
	ips, packets, n := jsonReport(t, out)
	if n != uint64(len(frames)) {
		t.Errorf("%d frames reported, tshark reads %d before the cut", n, len(frames))
	}
	if packets != uint64(len(l4)) {
		t.Errorf("traffic records hold %d packets, tshark reads %d TCP/UDP frames before the cut", packets, len(l4))
	}
	for _, r := range srcs {
		if !ips[r[0]] {
			t.Errorf("%s sends frames before the cut but is no asset (assets %v)", r[0], ips)
		}
	}
}

// A corrupt record in the middle of a capture ends the reading with an
// error naming the file and the record, after the report of everything
// before it.
func TestCorruptRecordReported(t *testing.T) {
	orig := testcorpus.File(t, "ICS-Pcaps__COTP__cotp.pcap")
	data, err := os.ReadFile(orig)
	if err != nil {
		t.Fatal(err)
	}
	if binary.LittleEndian.Uint32(data) != 0xa1b2c3d4 {
		t.Fatalf("%s is not a little-endian pcap file", orig)
	}
	// Give record 500 a captured length beyond the file's snap length.
	const bad = 500
	off := 24
	for range bad - 1 {
		off += 16 + int(binary.LittleEndian.Uint32(data[off+8:]))
	}
	binary.LittleEndian.PutUint32(data[off+8:], 1<<24)
	file := filepath.Join(t.TempDir(), "corrupt.pcap")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	before := filepath.Join(t.TempDir(), "before.pcap")
	if err := os.WriteFile(before, data[:off], 0o600); err != nil {
		t.Fatal(err)
	}
	bin, _ := cloudBuild(t)

	out, errOut, code := sensorRun(t, bin, "-json", "-r", file)
	if code == 0 {
		t.Errorf("exit status 0 for a corrupt record; stderr %q", errOut)
	}
	if !strings.Contains(errOut, file) || !strings.Contains(errOut, fmt.Sprintf("record %d", bad)) {
		t.Errorf("stderr %q: want an error naming %s and record %d", errOut, file, bad)
	}
	ips, packets, n := jsonReport(t, out)
	wantOut, _, code := sensorRun(t, bin, "-json", "-r", before)
	if code != 0 {
		t.Fatalf("the records before the corrupt one: exit status %d", code)
	}
	wantIPs, wantPackets, wantN := jsonReport(t, wantOut)
	if n != bad-1 || n != wantN || packets != wantPackets || len(ips) == 0 || len(ips) != len(wantIPs) {
		t.Errorf("reported %d frames, %d packets, assets %v; the %d records before the corrupt one give %d frames, %d packets, assets %v",
			n, packets, ips, bad-1, wantN, wantPackets, wantIPs)
	}
}

// With -cloud, a capture cut short still uploads everything read before the
// cut: the collector gets the assets the printed report shows.
func TestCutShortCaptureUploaded(t *testing.T) {
	file := testcorpus.File(t, "ICS-Security-Tools__pcaps__MELSEC__melsoft_129_clean.pcap")
	sensorBin, collBin := cloudBuild(t)
	c := cloudStart(t, collBin, t.TempDir(), "127.0.0.1:0")
	state := cloudState(t, c.code(t), settings.Proxy{})
	out, err := cloudSensor(sensorBin, c, state, file, 30*time.Second)
	if err != nil {
		t.Fatalf("sensor -r -cloud on a capture cut short: %v\n%s", err, out)
	}
	if !strings.Contains(out, "warning") || !strings.Contains(out, "cut short") {
		t.Errorf("no warning of the cut in the output:\n%s", out)
	}
	want, _ := sensorJSON(t, sensorBin, file)
	got := collectorAssets(t, c, readStatus(t, state).SensorID)
	if len(want) == 0 || len(got) != len(want) {
		t.Fatalf("the collector has %d assets, the report %d", len(got), len(want))
	}
	for id := range want {
		if _, ok := got[id]; !ok {
			t.Errorf("asset %s of the report is not at the collector", id)
		}
	}
}
