// Package testcorpus finds the captures made by others that tests read from
// ../shared/corpus, and runs tshark, the oracle, on them. Tests skip with a
// clear message when the corpus or tshark is absent.
package testcorpus

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Dir walks up from the test's directory to find shared/corpus, skipping
// the test when there is none.
func Dir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("getwd: %v", err)
	}
	for d := dir; ; {
		c := filepath.Join(d, "shared", "corpus")
		if fi, err := os.Stat(c); err == nil && fi.IsDir() {
			return c
		}
		up := filepath.Dir(d)
		if up == d {
			t.Skipf("corpus not found at shared/corpus beside the repository (looked above %s)", dir)
		}
		d = up
	}
}

// File returns the path of the corpus capture name, skipping the test when
// it is absent.
func File(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(Dir(t), name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("corpus capture not found at %s", p)
	}
	return p
}

// NeedTshark skips the test when tshark is not installed.
func NeedTshark(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("tshark not found in PATH: it is the oracle for this test (make deps installs it)")
	}
}

// Tshark returns the fields asked for, one row per packet matching filter
// (all packets when filter is empty); a field occurring several times in a
// packet has its values joined by commas. Of a file cut short inside its
// last record, the rows are those of the packets before it.
func Tshark(t testing.TB, file, filter string, fields ...string) [][]string {
	t.Helper()
	return run(t, file, filter, "a", fields)
}

// TsharkLast is Tshark keeping only the last occurrence of each field (the
// innermost header of a tunnelled packet).
func TsharkLast(t testing.TB, file, filter string, fields ...string) [][]string {
	t.Helper()
	return run(t, file, filter, "l", fields)
}

// TsharkDecode is Tshark with a "decode as" rule (tshark -d, as
// "tcp.port==2001,optommp") for a protocol Wireshark has no port for.
func TsharkDecode(t testing.TB, file, decode, filter string, fields ...string) [][]string {
	t.Helper()
	return run(t, file, filter, "a", fields, "-d", decode)
}

func run(t testing.TB, file, filter, occurrence string, fields []string, extra ...string) [][]string {
	t.Helper()
	NeedTshark(t)
	args := []string{"-r", file, "-T", "fields", "-E", "separator=/t", "-E", "occurrence=" + occurrence, "-E", "aggregator=,"}
	args = append(args, extra...)
	if filter != "" {
		args = append(args, "-Y", filter)
	}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	cmd := exec.Command("tshark", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var xerr *exec.ExitError
	if errors.As(err, &xerr) && xerr.ExitCode() == 2 && strings.Contains(stderr.String(), "cut short in the middle of a packet") {
		err = nil // tshark read every packet before the cut
	}
	if err != nil {
		t.Fatalf("tshark %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var rows [][]string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		row := strings.Split(sc.Text(), "\t")
		for len(row) < len(fields) {
			row = append(row, "")
		}
		rows = append(rows, row)
	}
	return rows
}
