package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"github.com/passivesensor/sensor/internal/testcorpus"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// tsharkFrames returns what tshark says of each frame of path: its length
// on the wire and link type (Wireshark's own numbering).
func tsharkFrames(t *testing.T, path string) (wireLens []int, encaps []string) {
	t.Helper()
	testcorpus.NeedTshark(t)
	out, _ := exec.Command("tshark", "-r", path, "-T", "fields", "-e", "frame.len", "-e", "frame.encap_type").Output()
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		n, err := strconv.Atoi(f[0])
		if err != nil || len(f) < 2 {
			t.Fatalf("tshark %s: line %q", path, line)
		}
		wireLens = append(wireLens, n)
		encaps = append(encaps, f[1])
	}
	return wireLens, encaps
}

// readAll reads every frame of path, returning their wire lengths and link
// types and the error that ended the file (nil for io.EOF).
func readAll(t *testing.T, path string) (src Source, wireLens []int, links []LinkType, err error) {
	t.Helper()
	src, err = OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	for {
		f, err := src.Next()
		if err == io.EOF {
			return src, wireLens, links, nil
		}
		if err != nil {
			return src, wireLens, links, err
		}
		if f.Interface != 0 || f.WireLen < len(f.Data) || f.Time.IsZero() {
			t.Fatalf("frame %d: %+v", len(links)+1, f)
		}
		wireLens = append(wireLens, f.WireLen)
		links = append(links, f.LinkType)
	}
}

func TestOpenFileMatchesTshark(t *testing.T) {
	for _, name := range []string{
		"ct-samples__Protocols__IEC60870__IEC-5-104__JavaRMI_and_IEC_Misc.pcap",
		"Malcolm-PCAP__pcaps__protocols__OPCUA-Binary.pcap",
		"ICS-Pcaps__Mergecap__kokteyl.pcap", // pcapng, two link types
		"ct-samples__Protocols__IEC61850__GOOSE__GE---Multilin-UR---Digital-Protection-Relay__GOOSE-and-MMS.pcapng",
	} {
		t.Run(name, func(t *testing.T) {
			path := testcorpus.File(t, name)
			wantLens, encaps := tsharkFrames(t, path)
			src, lens, links, err := readAll(t, path)
			if err != nil {
				t.Fatal(err)
			}
			if len(lens) != len(wantLens) {
				t.Fatalf("read %d frames, tshark reads %d", len(lens), len(wantLens))
			}
			var bytes uint64
			for i := range lens {
				if lens[i] != wantLens[i] {
					t.Fatalf("frame %d: wire length %d, tshark says %d", i+1, lens[i], wantLens[i])
				}
				bytes += uint64(lens[i])
				// The link type changes exactly where tshark's does.
				if i > 0 && (links[i] != links[i-1]) != (encaps[i] != encaps[i-1]) {
					t.Fatalf("frame %d: link type %d after %d, tshark encapsulation %s after %s",
						i+1, links[i], links[i-1], encaps[i], encaps[i-1])
				}
			}
			if st := src.Stats(); st.Frames != uint64(len(lens)) || st.Bytes != bytes {
				t.Errorf("Stats %+v, read %d frames of %d bytes", st, len(lens), bytes)
			}
			if _, err := src.Next(); err != io.EOF {
				t.Errorf("Next after the end: %v, want io.EOF", err)
			}
		})
	}
}

// TestOpenFileCutShort reads a corpus file whose last record is cut short:
// the frames before it, then an error naming the file.
func TestOpenFileCutShort(t *testing.T) {
	path := testcorpus.File(t, "ICS-Security-Tools__pcaps__MELSEC__melsoft_129_clean.pcap")
	wantLens, _ := tsharkFrames(t, path)
	src, lens, _, err := readAll(t, path)
	if err == nil || !strings.Contains(err.Error(), "truncated") || !strings.Contains(err.Error(), path) {
		t.Errorf("error at the end %v, want one saying %s is truncated", err, path)
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("error %v does not wrap io.ErrUnexpectedEOF", err)
	}
	if len(lens) != len(wantLens) {
		t.Errorf("read %d frames before the cut, tshark reads %d", len(lens), len(wantLens))
	}
	if _, err2 := src.Next(); err2 == nil || err2.Error() != err.Error() {
		t.Errorf("Next after the error: %v, want the same error again", err2)
	}
}

func TestOpenFileRefusesOthers(t *testing.T) {
	if _, err := OpenFile(filepath.Join(t.TempDir(), "missing.pcap")); err == nil || !strings.Contains(err.Error(), "missing.pcap") {
		t.Errorf("missing file: %v", err)
	}
	readme := testcorpus.File(t, "README.md")
	if _, err := OpenFile(readme); err == nil || !strings.Contains(err.Error(), "README.md") {
		t.Errorf("a text file: %v", err)
	}
	empty := filepath.Join(t.TempDir(), "empty.pcap")
	os.WriteFile(empty, nil, 0o600)
	if _, err := OpenFile(empty); err == nil {
		t.Error("an empty file opened")
	}
}

// TestOpenFileTruncated cuts a capture file at every length within its last
// records: reading must end with a clear error or io.EOF, never panic.
func TestOpenFileTruncated(t *testing.T) {
	for _, name := range []string{
		"ICS-Pcaps__ARP__arp.pcap",
		"ICS-Security-Tools__pcaps__s7__snap7_s300_everything.pcapng",
	} {
		path := testcorpus.File(t, name)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		full := countFrames(t, path)
		boundary := pcapRecordEnds(data)
		dir := t.TempDir()
		from := len(data) - 200
		if from < 4 {
			from = 4
		}
		for cut := from; cut < len(data); cut++ {
			p := filepath.Join(dir, "cut")
			if err := os.WriteFile(p, data[:cut], 0o600); err != nil {
				t.Fatal(err)
			}
			src, err := OpenFile(p)
			if err != nil {
				continue // cut inside the file header: refused, fine
			}
			n := 0
			for {
				_, err = src.Next()
				if err != nil {
					break
				}
				n++
			}
			src.Close()
			if err != io.EOF && !strings.Contains(err.Error(), p) {
				t.Errorf("%s cut at %d: error %q does not name the file", name, cut, err)
			}
			if n >= full {
				t.Errorf("%s cut at %d: read %d frames, the whole file has %d", name, cut, n, full)
			}
			if err == io.EOF && strings.HasSuffix(name, ".pcap") && !boundary[cut] {
				// A pcap cut inside a record must say so.
				t.Errorf("%s cut at %d: io.EOF after %d frames, want a truncation error", name, cut, n)
			}
		}
	}
}

func countFrames(t *testing.T, path string) int {
	src, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	n := 0
	for {
		if _, err := src.Next(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			return n
		}
		n++
	}
}

// pcapRecordEnds returns the offsets where records of a little-endian pcap
// file end (nil for other files).
func pcapRecordEnds(data []byte) map[int]bool {
	if len(data) < 24 || binary.LittleEndian.Uint32(data) != 0xa1b2c3d4 {
		return nil
	}
	ends := map[int]bool{24: true}
	for off := 24; off+16 <= len(data); {
		off += 16 + int(binary.LittleEndian.Uint32(data[off+8:]))
		ends[off] = true
	}
	return ends
}

// TestOpenFileGzip reads gzip-compressed pcap and pcapng files.
func TestOpenFileGzip(t *testing.T) {
	for _, name := range []string{
		"ICS-Pcaps__ARP__arp.pcap",
		"ICS-Security-Tools__pcaps__s7__snap7_s300_everything.pcapng",
	} {
		path := testcorpus.File(t, name)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(data)
		zw.Close()
		gz := filepath.Join(t.TempDir(), name+".gz")
		if err := os.WriteFile(gz, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		want := countFrames(t, path)
		if got := countFrames(t, gz); got != want || want == 0 {
			t.Errorf("%s: %d frames from the gzip file, %d from the plain one", name, got, want)
		}
	}
}
