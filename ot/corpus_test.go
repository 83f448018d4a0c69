package ot

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
)

// corpusDir walks up from the package directory to find shared/corpus, the
// captures made by others, and skips the test when there is none.
func corpusDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("getwd: %v", err)
	}
	start := dir
	for {
		c := filepath.Join(dir, "shared", "corpus")
		if fi, err := os.Stat(c); err == nil && fi.IsDir() {
			return c
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skipf("corpus not found at shared/corpus in %s or any directory above it", start)
		}
		dir = parent
	}
}

// corpusFile returns the path of the corpus capture name, skipping the
// test when it is absent.
func corpusFile(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(corpusDir(t), name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("corpus file not found at %s", p)
	}
	return p
}

// needTshark skips the test when tshark, the oracle, is not installed.
func needTshark(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("tshark not found in PATH: it is the oracle for corpus tests (apt-get install tshark)")
	}
}

// tshark runs tshark on file with a display filter and returns the fields
// asked for, one row per packet; a field occurring several times in a
// packet has its values joined by commas.
func tshark(t testing.TB, file, filter string, fields ...string) [][]string {
	t.Helper()
	needTshark(t)
	args := []string{"-r", file, "-Y", filter, "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=,"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	cmd := exec.Command("tshark", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	outb, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var rows [][]string
	sc := bufio.NewScanner(bytes.NewReader(outb))
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

// collect is a Sink keeping every observation.
type collect []dissect.Observation

func (c *collect) Observe(o dissect.Observation) { *c = append(*c, o) }

// runFile reads a capture with the sensor's own pipeline (capture.OpenFile,
// capture.Decoder, flow.Table) and dispatches every packet to a registry
// holding ds, as cmd/sensor does.
func runFile(t testing.TB, path string, ds ...dissect.Dissector) collect {
	t.Helper()
	src, err := capture.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var (
		dec capture.Decoder
		cp  capture.Packet
		out collect
	)
	tab := flow.NewTable(flow.Config{})
	reg := dissect.NewRegistry(ds...)
	for {
		fr, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if dec.Decode(fr, &cp) != nil && !cp.HasIP() {
			continue
		}
		f, dir := tab.Lookup(&cp)
		reg.Dispatch(&dissect.Packet{Packet: &cp, Flow: f, Dir: dir}, &out)
	}
	return out
}
