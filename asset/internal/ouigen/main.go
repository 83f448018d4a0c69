// Command ouigen writes the MAC vendor table the asset package embeds,
// from the IEEE registries as Debian's ieee-data package ships them
// (oui.csv MA-L, mam.csv MA-M, oui36.csv MA-S, iab.csv IAB).
//
// The output is gzip-compressed text: a header line naming the source and
// its date, then one "HEXPREFIX<TAB>organisation" line per assignment,
// sorted, where the prefix has 6, 7 or 9 hex digits (24, 28 or 36 bits).
// Organisation names are shortened (legal suffixes dropped) and entries
// that name no one ("Private", the registration authority's own blocks)
// are left out.
//
//	go run ./asset/internal/ouigen -dir /usr/share/ieee-data -o asset/oui.txt.gz
package main

import (
	"compress/gzip"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/passivesensor/sensor/asset/internal/ouiname"
)

func main() {
	dir := flag.String("dir", "/usr/share/ieee-data", "folder holding oui.csv, mam.csv, oui36.csv, iab.csv")
	out := flag.String("o", "asset/oui.txt.gz", "output file")
	flag.Parse()
	if err := run(*dir, *out); err != nil {
		slog.Error("ouigen", "err", err)
		os.Exit(1)
	}
}

func run(dir, out string) error {
	entries := map[string]string{}
	for _, f := range []string{"oui.csv", "mam.csv", "oui36.csv", "iab.csv"} {
		if err := readCSV(filepath.Join(dir, f), entries); err != nil {
			return err
		}
	}
	if len(entries) == 0 {
		return fmt.Errorf("no assignments in %s", dir)
	}
	date := "unknown date"
	if b, err := os.ReadFile(filepath.Join(dir, ".lastupdate")); err == nil {
		if s, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil {
			date = time.Unix(s, 0).UTC().Format("2006-01-02")
		}
	} else if st, err := os.Stat(filepath.Join(dir, "oui.csv")); err == nil {
		date = st.ModTime().UTC().Format("2006-01-02")
	}
	keys := make([]string, 0, len(entries))
	for k := range entries {
		keys = append(keys, k)
	}
	sort.Strings(keys)

	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	zw, _ := gzip.NewWriterLevel(f, gzip.BestCompression)
	zw.ModTime = time.Time{} // reproducible output
	fmt.Fprintf(zw, "# IEEE MA-L, MA-M, MA-S and IAB registries, from Debian ieee-data (%s) as of %s; %d prefixes; regenerate with `make oui-data`\n",
		dir, date, len(keys))
	for _, k := range keys {
		fmt.Fprintf(zw, "%s\t%s\n", k, entries[k])
	}
	if err := errors.Join(zw.Close(), f.Close()); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	return os.Rename(tmp, out)
}

// readCSV adds the assignments of one registry file to entries.
func readCSV(path string, entries map[string]string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	for line := 1; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if line == 1 || len(rec) < 3 {
			continue // header
		}
		hex := strings.ToUpper(strings.TrimSpace(rec[1]))
		if n := len(hex); n != 6 && n != 7 && n != 9 {
			return fmt.Errorf("%s:%d: assignment %q is not 6, 7 or 9 hex digits", path, line, rec[1])
		}
		if _, err := strconv.ParseUint(hex, 16, 64); err != nil {
			return fmt.Errorf("%s:%d: assignment %q: %w", path, line, rec[1], err)
		}
		name := ouiname.Short(rec[2])
		if name == "" {
			continue
		}
		entries[hex] = name
	}
}
