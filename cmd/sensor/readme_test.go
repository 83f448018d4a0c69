package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/asset"
	"github.com/passivesensor/sensor/it"
	"github.com/passivesensor/sensor/ot"
)

// coverageRow is one row of the README's coverage table.
type coverageRow struct {
	dissectors []string
	tests      []string // test files, relative to the repository
	captures   []string // corpus captures
	tested     string   // the "tested by" cell
}

var backticked = regexp.MustCompile("`([^`]+)`")

// readmeCoverage reads the coverage table of the repository's README.
func readmeCoverage(t *testing.T) []coverageRow {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "### Coverage")
	if !ok {
		t.Fatal("README.md has no \"### Coverage\" section")
	}
	var rows []coverageRow
	inTable := false
	for _, line := range strings.Split(after, "\n") {
		if !strings.HasPrefix(line, "|") {
			if inTable {
				break
			}
			continue
		}
		inTable = true
		if strings.HasPrefix(line, "|---") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if len(cells) != 5 {
			t.Fatalf("coverage row has %d cells, want 5: %s", len(cells), line)
		}
		if cells[0] == "family" {
			continue
		}
		var r coverageRow
		for _, m := range backticked.FindAllStringSubmatch(cells[2], -1) {
			r.dissectors = append(r.dissectors, m[1])
		}
		for _, m := range backticked.FindAllStringSubmatch(cells[4], -1) {
			switch {
			case strings.HasSuffix(m[1], "_test.go"):
				r.tests = append(r.tests, m[1])
			case strings.HasSuffix(m[1], ".pcap"), strings.HasSuffix(m[1], ".pcapng"):
				r.captures = append(r.captures, m[1])
			default:
				t.Errorf("coverage row %q names %q, neither a test file nor a capture", cells[1], m[1])
			}
		}
		r.tested = cells[4]
		rows = append(rows, r)
	}
	if len(rows) == 0 {
		t.Fatal("README.md's coverage table has no rows")
	}
	return rows
}

// TestREADMECoverageTable keeps the README's coverage table true: one row
// for each dissector the sensor runs; the test files it names exist, read
// the captures it lists and do what it says (tshark or p0f as the oracle,
// built frames); "plant scene" exactly for the protocols the demo
// capture's inventory shows.
func TestREADMECoverageTable(t *testing.T) {
	rows := readmeCoverage(t)
	registered := map[string]bool{}
	for _, d := range append(it.All(), ot.All()...) {
		registered[d.Name()] = true
	}
	src, err := openDemo()
	if err != nil {
		t.Fatal(err)
	}
	s := New(asset.DefaultClasses())
	if err := s.RunFile(src); err != nil {
		t.Fatal(err)
	}
	inPlant := map[string]bool{}
	for _, a := range s.Report().Assets {
		for _, p := range a.Protocols {
			inPlant[p] = true
		}
	}
	corpus := ""
	if fi, err := os.Stat(filepath.Join("..", "..", "..", "shared", "corpus")); err == nil && fi.IsDir() {
		corpus = filepath.Join("..", "..", "..", "shared", "corpus")
	}

	seen := map[string]bool{}
	for _, r := range rows {
		if len(r.dissectors) == 0 || len(r.tests) == 0 {
			t.Errorf("row %q names no dissector or no test file", r.tested)
			continue
		}
		name := r.dissectors[0]
		var src strings.Builder
		for _, f := range r.tests {
			b, err := os.ReadFile(filepath.Join("..", "..", f))
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			src.Write(b)
		}
		code := src.String()
		for _, d := range r.dissectors {
			if !registered[d] {
				t.Errorf("row names %q, which is no registered dissector", d)
			}
			if seen[d] {
				t.Errorf("%q has two rows", d)
			}
			seen[d] = true
			if plant := strings.Contains(r.tested, "plant scene"); plant != inPlant[d] {
				t.Errorf("%s: the row says plant scene %v, the demo inventory shows the protocol: %v", d, plant, inPlant[d])
			}
		}
		for _, c := range r.captures {
			if !strings.Contains(code, `"`+c+`"`) {
				t.Errorf("%s: %s is not read by %v", name, c, r.tests)
			}
			if corpus != "" {
				if _, err := os.Stat(filepath.Join(corpus, c)); err != nil {
					t.Errorf("%s: %v", name, err)
				}
			}
		}
		lower := strings.ToLower(code)
		for _, claim := range []struct {
			says  string
			shows []string
		}{
			{"tshark", []string{"tshark"}}, {"p0f", []string{"p0f"}}, {"spec-built", []string{"built", "spec"}},
		} {
			if strings.Contains(r.tested, claim.says) && !slices.ContainsFunc(claim.shows, func(w string) bool { return strings.Contains(lower, w) }) {
				t.Errorf("%s: the row says %q, %v never mention it", name, claim.says, r.tests)
			}
		}
		if len(r.captures) > 0 && !strings.Contains(r.tested, "tshark") && !strings.Contains(r.tested, "p0f") {
			t.Errorf("%s: captures listed without the oracle they are checked against", name)
		}
	}
	var missing []string
	for d := range registered {
		if !seen[d] {
			missing = append(missing, d)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("dissectors without a row in the README's coverage table: %v", missing)
	}
}
