package ot

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/internal/testcorpus"
)

// TestVendorTables: the shipped tables hold every id of their sources
// (shared/data, which `make ot-vendors` copies), say where their facts
// come from, and resolve ids seen in the corpus.
func TestVendorTables(t *testing.T) {
	for _, tc := range []struct {
		tab  *vendorTable
		file string
	}{{cipVendors, "cip-vendors.tsv"}, {bacnetVendors, "bacnet-vendors.tsv"}} {
		b, err := vendorFiles.ReadFile("data/" + tc.file)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(b), "# ") || !strings.Contains(strings.SplitN(string(b), "\n", 2)[0], "after") {
			t.Errorf("%s: no source line", tc.file)
		}
		src := filepath.Join(filepath.Dir(testcorpus.Dir(t)), "data", tc.file)
		f, err := os.Open(src)
		if err != nil {
			t.Skipf("source %s: %v", src, err)
		}
		n := 0
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if l := sc.Text(); l != "" && l[0] != '#' {
				n++
			}
		}
		f.Close()
		if tc.tab.len() != n {
			t.Errorf("%s: %d vendors shipped, source lists %d (run make ot-vendors)", tc.file, tc.tab.len(), n)
		}
	}
	if CIPVendor(1) != "Rockwell Automation/Allen-Bradley" || BACnetVendor(5) != "Johnson Controls Inc." || BACnetVendor(260) == "" {
		t.Errorf("vendor ids not resolved: %q %q %q", CIPVendor(1), BACnetVendor(5), BACnetVendor(260))
	}
	if CIPVendor(65535) != "" || CIPVendor(27) != "" {
		t.Errorf("unlisted or reserved id resolved to %q %q", CIPVendor(65535), CIPVendor(27))
	}
}
