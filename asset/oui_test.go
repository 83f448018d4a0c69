package asset

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/capture"
)

func mustMAC(t testing.TB, s string) capture.MAC {
	t.Helper()
	var m capture.MAC
	s = strings.NewReplacer(":", "", "-", "").Replace(s)
	if len(s) != 12 {
		t.Fatalf("bad MAC %q", s)
	}
	for i := range m {
		var b byte
		for _, c := range s[2*i : 2*i+2] {
			b <<= 4
			switch {
			case c >= '0' && c <= '9':
				b |= byte(c - '0')
			case c >= 'a' && c <= 'f':
				b |= byte(c - 'a' + 10)
			case c >= 'A' && c <= 'F':
				b |= byte(c - 'A' + 10)
			default:
				t.Fatalf("bad MAC %q", s)
			}
		}
		m[i] = b
	}
	return m
}

func TestMACVendor(t *testing.T) {
	cases := []struct {
		mac, vendor, kind string
	}{
		{"00:1b:1b:10:00:02", "Siemens", MACUniversal},                  // MA-L, Siemens AG
		{"00:00:bc:10:00:12", "Rockwell Automation", MACUniversal},      // MA-L
		{"00:80:f4:10:00:11", "Telemecanique Electrique", MACUniversal}, // MA-L (Schneider's Telemecanique)
		// MA-M (28 bits): 70:B3:D5 is the registration authority's own
		// MA-L, so only the longer prefix names the holder.
		{"74:1a:e0:90:00:01", "", MACUniversal},              // MA-M "Private": no name
		{"70:b3:d5:f2:f0:01", "Teleplatforms", MACUniversal}, // MA-S 70B3D5F2F
		{"00:50:c2:7d:50:01", "Deuta-Werke", MACUniversal},   // IAB 0050C27D5
		{"02:42:ac:11:00:02", "", MACRandomized},             // docker: locally administered
		{"da:a1:19:00:00:01", "", MACRandomized},             // phone's private address
		{"01:00:5e:00:00:fb", "", MACMulticast},              // IPv4 multicast
		{"ff:ff:ff:ff:ff:ff", "", MACMulticast},              // broadcast
		{"33:33:00:00:00:01", "", MACMulticast},              // IPv6 multicast
	}
	for _, c := range cases {
		v, k := MACVendor(mustMAC(t, c.mac))
		if v != c.vendor || k != c.kind {
			t.Errorf("MACVendor(%s) = %q, %q; want %q, %q", c.mac, v, k, c.vendor, c.kind)
		}
	}
	if h := OUISource(); !strings.Contains(h, "ieee-data") || !strings.Contains(h, "as of 20") {
		t.Errorf("OUI table header %q does not name its source and date", h)
	}
}

// TestMACVendorAgreesWithWireshark checks the shipped table against
// Wireshark's manuf file (only read here, never shipped) on every 7th of
// its MA-L, MA-M and MA-S entries: where both know a prefix, the names
// must agree (one's first word is in the other), allowing for the
// reassignments between the two files' dates.
func TestMACVendorAgreesWithWireshark(t *testing.T) {
	const manuf = "/usr/share/wireshark/manuf"
	f, err := os.Open(manuf)
	if err != nil {
		t.Skipf("Wireshark's manuf not installed (apt-get install libwireshark-data): %v", err)
	}
	defer f.Close()
	var n, known, agree int
	var bad []string
	sc := bufio.NewScanner(f)
	for i := 0; sc.Scan(); i++ {
		line := sc.Text()
		if line == "" || line[0] == '#' || i%7 != 0 {
			continue
		}
		fs := strings.Split(line, "\t")
		if len(fs) < 2 {
			continue
		}
		pfx, bits, _ := strings.Cut(fs[0], "/")
		hex := strings.ReplaceAll(pfx, ":", "")
		switch {
		case bits == "" && len(hex) == 6:
		case bits == "28" || bits == "36":
		default:
			continue
		}
		long := fs[len(fs)-1]
		if strings.EqualFold(long, "IEEE Registration Authority") || strings.EqualFold(long, "Private") {
			continue
		}
		hex = (hex + "000000000000")[:12]
		m := mustMAC(t, hex)
		if m.IsLocal() || m.IsMulticast() {
			continue
		}
		n++
		v, _ := MACVendor(m)
		if v == "" {
			continue
		}
		known++
		if sameOrg(v, long) || sameOrg(v, fs[1]) {
			agree++
		} else if len(bad) < 20 {
			bad = append(bad, fs[0]+": ours "+v+", Wireshark "+long)
		}
	}
	t.Logf("manuf sample %d prefixes: %d in our table, %d agree", n, known, agree)
	if n < 3000 {
		t.Fatalf("only %d prefixes sampled from %s", n, manuf)
	}
	if known < n*85/100 {
		t.Errorf("our table knows %d of %d sampled prefixes, want at least 85%%", known, n)
	}
	if agree < known*97/100 {
		t.Errorf("names agree on %d of %d prefixes, want 97%%; e.g.\n%s", agree, known, strings.Join(bad, "\n"))
	}
}

func orgWords(s string) []string {
	s = strings.ToLower(s)
	return strings.FieldsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127)
	})
}

// sameOrg reports whether organisation names a and b name the same maker:
// the first word of one appears among the words of the other.
func sameOrg(a, b string) bool {
	wa, wb := orgWords(a), orgWords(b)
	if len(wa) == 0 || len(wb) == 0 {
		return false
	}
	return strings.Contains(strings.Join(wb, ""), wa[0]) || strings.Contains(strings.Join(wa, ""), wb[0])
}

func BenchmarkMACVendor(b *testing.B) {
	macs := []capture.MAC{
		mustMAC(b, "00:1b:1b:10:00:02"), mustMAC(b, "70:b3:d5:f2:f0:01"),
		mustMAC(b, "3c:d9:2b:10:01:65"), mustMAC(b, "12:34:56:78:9a:bc"),
		mustMAC(b, "fc:ff:ff:00:00:01"),
	}
	MACVendor(macs[0])
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		MACVendor(macs[i%len(macs)])
	}
}

// BenchmarkParseOUI is what the first vendor lookup of a run costs: the
// whole embedded table decompressed and indexed.
func BenchmarkParseOUI(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseOUI(ouiData); err != nil {
			b.Fatal(err)
		}
	}
}
