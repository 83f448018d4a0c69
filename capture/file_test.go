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
	var rerr *RecordError
	if !errors.As(err, &rerr) || !rerr.Truncated() || rerr.Record != uint64(len(wantLens)+1) {
		t.Errorf("error %v, want a RecordError for record %d, truncated", err, len(wantLens)+1)
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

// TestOpenFileTruncated cuts capture files, plain and gzip-compressed, at
// every length within their last records: every record wholly before the
// cut is handed out, and a cut inside a record ends the file with a
// RecordError naming the file and that record, never a panic or a quiet
// io.EOF.
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
		ends, packets := recordEnds(t, data)
		full := countFrames(t, path)
		if full != len(packets) {
			t.Fatalf("%s: %d frames read, %d packet records in the file", name, full, len(packets))
		}
		var zbuf bytes.Buffer
		zw := gzip.NewWriter(&zbuf)
		zw.Write(data)
		zw.Close()
		dir := t.TempDir()
		for _, gz := range []bool{false, true} {
			file := data
			if gz {
				file = zbuf.Bytes()
			}
			for cut := max(4, len(file)-300); cut < len(file); cut++ {
				plain := file[:cut]
				if gz {
					zr, err := gzip.NewReader(bytes.NewReader(plain))
					if err != nil {
						continue
					}
					plain, _ = io.ReadAll(zr) // what the stream holds before the cut
				}
				whole := 0 // packet records wholly before the cut
				for _, end := range packets {
					if end <= len(plain) {
						whole++
					}
				}
				p := filepath.Join(dir, "cut")
				if err := os.WriteFile(p, file[:cut], 0o600); err != nil {
					t.Fatal(err)
				}
				src, err := OpenFile(p)
				if err != nil {
					if !strings.Contains(err.Error(), p) || !errors.Is(err, io.ErrUnexpectedEOF) {
						t.Errorf("%s gzip=%v cut at %d: open error %q does not say the header of %s is cut short", name, gz, cut, err, p)
					}
					continue // cut inside the file header
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
				if n != whole {
					t.Errorf("%s gzip=%v cut at %d: read %d frames, %d records lie whole before the cut", name, gz, cut, n, whole)
				}
				clean := !gz && ends[cut]
				var rerr *RecordError
				switch {
				case clean && err != io.EOF:
					t.Errorf("%s cut at %d, between records: %v, want io.EOF", name, cut, err)
				case !clean && !errors.As(err, &rerr):
					t.Errorf("%s gzip=%v cut at %d, inside a record: %v, want a RecordError", name, gz, cut, err)
				case !clean && (!rerr.Truncated() || rerr.Record != uint64(n+1) || rerr.Path != p || !strings.Contains(err.Error(), p)):
					t.Errorf("%s gzip=%v cut at %d: %v (truncated %v, record %d), want record %d of %s truncated",
						name, gz, cut, err, rerr.Truncated(), rerr.Record, n+1, p)
				}
			}
		}
	}
}

// TestOpenFileCorruptRecord reads a pcap file whose third record claims more
// bytes than the file's snap length: the two frames before it, then a
// RecordError for record 3 that is not a truncation.
func TestOpenFileCorruptRecord(t *testing.T) {
	p := filepath.Join(t.TempDir(), "corrupt.pcap")
	frame := make([]byte, 60)
	writePcap(t, p, LinkEthernet, [][]byte{frame, frame, frame, frame})
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	third := 24 + 2*(16+len(frame))
	binary.LittleEndian.PutUint32(data[third+8:], 1<<20) // captured length
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	src, lens, _, err := readAll(t, p)
	var rerr *RecordError
	if !errors.As(err, &rerr) || rerr.Record != 3 || rerr.Truncated() || rerr.Path != p {
		t.Fatalf("error %v, want a RecordError for record 3 of %s, not a truncation", err, p)
	}
	if len(lens) != 2 || src.Stats().Frames != 2 {
		t.Errorf("%d frames before the corrupt record (Stats %+v), want 2", len(lens), src.Stats())
	}
}

// recordEnds walks a pcap or pcapng file (little-endian) by its own
// framing: the offsets where a record or block ends, and those where a
// packet record ends, in order.
func recordEnds(t *testing.T, data []byte) (ends map[int]bool, packets []int) {
	t.Helper()
	ends = map[int]bool{}
	le := binary.LittleEndian
	switch le.Uint32(data) {
	case 0xa1b2c3d4, 0xa1b23c4d:
		ends[24] = true
		for off := 24; off+16 <= len(data); {
			off += 16 + int(le.Uint32(data[off+8:]))
			if off > len(data) {
				break
			}
			ends[off] = true
			packets = append(packets, off)
		}
	case pcapngMagic:
		for off := 0; off+12 <= len(data); {
			typ, n := le.Uint32(data[off:]), int(le.Uint32(data[off+4:]))
			if n < 12 || off+n > len(data) {
				t.Fatalf("pcapng block at %d: length %d", off, n)
			}
			off += n
			ends[off] = true
			if typ == 6 || typ == 3 || typ == 2 { // enhanced, simple, obsolete packet blocks
				packets = append(packets, off)
			}
		}
	default:
		t.Fatalf("not a little-endian pcap or pcapng file")
	}
	return ends, packets
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
