package asset

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/passivesensor/sensor/capture"
)

// ouiData is the IEEE MAC registries (MA-L, MA-M, MA-S, IAB) reduced to
// prefix and short organisation name, written by `make oui-data`.
//
//go:embed oui.txt.gz
var ouiData []byte

// MAC address kinds, as MACInfo reports them.
const (
	MACUniversal  = "universal"  // a vendor-assigned (IEEE) address
	MACRandomized = "randomized" // locally administered unicast: a private, changing address
	MACMulticast  = "multicast"  // group address (broadcast included)
)

// ouiTable holds the registries sorted by prefix, one slice per prefix
// length, so a lookup is three binary searches and no allocation.
type ouiTable struct {
	l36, l28, l24 []ouiEntry
	names         []string
	header        string
}

type ouiEntry struct {
	prefix uint64 // the address's top bits, right-aligned
	name   uint32 // index into names
}

var (
	ouiOnce sync.Once
	ouis    *ouiTable
)

func ouiDB() *ouiTable {
	ouiOnce.Do(func() {
		t, err := parseOUI(ouiData)
		if err != nil {
			slog.Error("MAC vendor table unreadable; vendors from MACs are off", "err", err)
			t = &ouiTable{}
		}
		ouis = t
	})
	return ouis
}

// parseOUI reads the table from its gzip form. The organisation names are
// substrings of the one decompressed text, and the entries go to slices
// sized by a first count, so the whole table is a handful of allocations:
// a box pays for it once, at its first vendor lookup.
func parseOUI(data []byte) (*ouiTable, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, err
	}
	text := string(raw)
	t := &ouiTable{}
	var n [10]int // entries per prefix length in hex digits
	for rest := text; rest != ""; {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		if hex, _, ok := strings.Cut(line, "\t"); ok && !strings.HasPrefix(line, "#") && len(hex) < len(n) {
			n[len(hex)]++
		}
	}
	t.l24, t.l28, t.l36 = make([]ouiEntry, 0, n[6]), make([]ouiEntry, 0, n[7]), make([]ouiEntry, 0, n[9])
	t.names = make([]string, 0, n[6]+n[7]+n[9])
	for rest := text; rest != ""; {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		if strings.HasPrefix(line, "#") {
			if t.header == "" {
				t.header = strings.TrimSpace(strings.TrimPrefix(line, "#"))
			}
			continue
		}
		hex, name, ok := strings.Cut(line, "\t")
		if !ok {
			continue
		}
		v, err := strconv.ParseUint(hex, 16, 64)
		if err != nil {
			continue
		}
		// Entries of one organisation are adjacent in the file more often
		// than not: they share one name.
		if len(t.names) == 0 || t.names[len(t.names)-1] != name {
			t.names = append(t.names, name)
		}
		e := ouiEntry{prefix: v, name: uint32(len(t.names) - 1)}
		switch len(hex) {
		case 6:
			t.l24 = append(t.l24, e)
		case 7:
			t.l28 = append(t.l28, e)
		case 9:
			t.l36 = append(t.l36, e)
		}
	}
	for _, s := range [][]ouiEntry{t.l24, t.l28, t.l36} {
		slices.SortFunc(s, func(a, b ouiEntry) int { return cmpU64(a.prefix, b.prefix) })
	}
	return t, nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func ouiFind(s []ouiEntry, p uint64) (uint32, bool) {
	lo, hi := 0, len(s)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s[m].prefix < p {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(s) && s[lo].prefix == p {
		return s[lo].name, true
	}
	return 0, false
}

// lookup returns the organisation of m's longest registered prefix.
func (t *ouiTable) lookup(m capture.MAC) string {
	v := uint64(m[0])<<40 | uint64(m[1])<<32 | uint64(m[2])<<24 | uint64(m[3])<<16 | uint64(m[4])<<8 | uint64(m[5])
	if id, ok := ouiFind(t.l36, v>>12); ok {
		return t.names[id]
	}
	if id, ok := ouiFind(t.l28, v>>20); ok {
		return t.names[id]
	}
	if id, ok := ouiFind(t.l24, v>>24); ok {
		return t.names[id]
	}
	return ""
}

// MACVendor returns the organisation the IEEE registered m's prefix to
// (longest of MA-S/IAB 36 bits, MA-M 28 bits, MA-L 24 bits), and the kind
// of address m is. Locally administered, randomized and group addresses
// name no vendor and are not looked up. It does not allocate.
func MACVendor(m capture.MAC) (vendor, kind string) {
	switch {
	case m.IsMulticast():
		return "", MACMulticast
	case m.IsLocal():
		// Unicast with the U/L bit set: the second hex digit is 2, 6, A
		// or E. Phones and laptops pick these at random per network
		// (IEEE 802c AAI quadrant and beyond), so they are not a
		// lasting identity.
		return "", MACRandomized
	}
	return ouiDB().lookup(m), MACUniversal
}

// OUISource returns the header line of the embedded MAC vendor table: which
// registries, from where, of which date.
func OUISource() string { return ouiDB().header }
