package uplink

import (
	"encoding/binary"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// seqRecord makes a record carrying seq, with a length and filler derived
// from seq so any corruption is visible.
func seqRecord(seq uint64) []byte {
	n := 8 + int(seq*7%53)
	b := make([]byte, n)
	binary.LittleEndian.PutUint64(b, seq)
	for i := 8; i < n; i++ {
		b[i] = byte(seq) ^ byte(i*31)
	}
	return b
}

func checkSeqRecord(t *testing.T, b []byte) uint64 {
	t.Helper()
	if len(b) < 8 {
		t.Fatalf("record of %d bytes, too short", len(b))
	}
	seq := binary.LittleEndian.Uint64(b)
	if want := seqRecord(seq); string(want) != string(b) {
		t.Fatalf("record %d corrupt: got %x want %x", seq, b, want)
	}
	return seq
}

func readAll(t *testing.T, s *Spool) []Record {
	t.Helper()
	recs, err := s.Peek(1<<30, 0)
	if err != nil {
		t.Fatalf("Peek: %v", err)
	}
	return recs
}

// wantSeqs checks recs are exactly records first..first+n-1.
func wantSeqs(t *testing.T, recs []Record, first uint64, n int) {
	t.Helper()
	if len(recs) != n {
		t.Fatalf("got %d records, want %d", len(recs), n)
	}
	for i, r := range recs {
		if seq := checkSeqRecord(t, r.Data); seq != first+uint64(i) {
			t.Fatalf("record %d has seq %d, want %d", i, seq, first+uint64(i))
		}
	}
}

func mustOpen(t *testing.T, dir string, o Options) *Spool {
	t.Helper()
	s, err := Open(dir, o)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return s
}

func TestSpoolAppendPeekAckReopen(t *testing.T) {
	dir := t.TempDir()
	o := Options{SegmentSize: 256, MaxSegments: 100}
	s := mustOpen(t, dir, o)
	for i := uint64(0); i < 50; i++ {
		if err := s.Append(seqRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	recs := readAll(t, s)
	wantSeqs(t, recs, 0, 50)
	if st := s.Stats(); st.Segments < 5 {
		t.Fatalf("expected several segments of 256 bytes, got %d", st.Segments)
	}
	if err := s.Ack(recs[19].End); err != nil {
		t.Fatal(err)
	}
	r, ok, err := s.Next()
	if err != nil || !ok {
		t.Fatalf("Next: %v %v", ok, err)
	}
	if seq := checkSeqRecord(t, r.Data); seq != 20 {
		t.Fatalf("Next after ack of 19 gave %d", seq)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, dir, o)
	wantSeqs(t, readAll(t, s), 20, 30)
	// Appending after reopen continues in order.
	for i := uint64(50); i < 60; i++ {
		if err := s.Append(seqRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	recs = readAll(t, s)
	wantSeqs(t, recs, 20, 40)
	// Ack everything: only the active segment remains.
	if err := s.Ack(recs[len(recs)-1].End); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s); len(got) != 0 {
		t.Fatalf("after acking all, %d records pending", len(got))
	}
	if st := s.Stats(); st.Segments != 1 || st.PendingBytes != 0 {
		t.Fatalf("after acking all: %+v", st)
	}
	if err := s.Ack(Position{Seg: 1 << 40, Off: 3}); err == nil {
		t.Fatal("ack of a position past the spool accepted")
	}
	s.Close()
	s = mustOpen(t, dir, o)
	defer s.Close()
	if got := readAll(t, s); len(got) != 0 {
		t.Fatalf("after reopen, %d acknowledged records came back", len(got))
	}
	if err := s.Append(seqRecord(60)); err != nil {
		t.Fatal(err)
	}
	wantSeqs(t, readAll(t, s), 60, 1)
}

func TestSpoolPeekBounds(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{SegmentSize: 200, MaxSegments: 50})
	defer s.Close()
	for i := uint64(0); i < 30; i++ {
		if err := s.AppendBatch([][]byte{seqRecord(i)}); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := s.Peek(7, 0)
	if err != nil {
		t.Fatal(err)
	}
	wantSeqs(t, recs, 0, 7)
	recs, err = s.Peek(100, 100)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, r := range recs {
		total += len(r.Data)
	}
	if len(recs) == 0 || total > 100 {
		t.Fatalf("Peek(maxBytes=100) gave %d records, %d bytes", len(recs), total)
	}
	if err := s.Append(nil); err == nil {
		t.Fatal("empty record accepted")
	}
	if err := s.Append(make([]byte, 500)); err == nil {
		t.Fatal("record larger than a segment accepted")
	}
}

// segFiles lists the segment files, oldest first.
func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSpoolTornTailEveryOffset truncates the last segment at every byte
// offset inside its last three records and checks recovery gives exactly
// the complete records, in order, and that appending then works.
func TestSpoolTornTailEveryOffset(t *testing.T) {
	base := t.TempDir()
	o := Options{SegmentSize: 1 << 20, MaxSegments: 4}
	s := mustOpen(t, base, o)
	const n = 20
	var ends []int64
	for i := uint64(0); i < n; i++ {
		if err := s.Append(seqRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range readAll(t, s) {
		ends = append(ends, r.End.Off)
	}
	s.Close()
	seg := filepath.Base(segFiles(t, base)[0])
	full := ends[n-1]
	for cut := ends[n-4]; cut < full; cut++ {
		dir := t.TempDir()
		copyDir(t, base, dir)
		if err := os.Truncate(filepath.Join(dir, seg), cut); err != nil {
			t.Fatal(err)
		}
		complete := 0
		for complete < n && ends[complete] <= cut {
			complete++
		}
		s := mustOpen(t, dir, o)
		wantSeqs(t, readAll(t, s), 0, complete)
		// The torn tail is cut off on disk, not just skipped.
		wantSize := int64(0)
		if complete > 0 {
			wantSize = ends[complete-1]
		}
		st, err := os.Stat(filepath.Join(dir, seg))
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() != wantSize {
			t.Fatalf("cut at %d: segment is %d bytes after Open, want it truncated to %d", cut, st.Size(), wantSize)
		}
		if s.CorruptBytes() != cut-wantSize {
			t.Fatalf("cut at %d: CorruptBytes %d, want %d", cut, s.CorruptBytes(), cut-wantSize)
		}
		if err := s.Append(seqRecord(uint64(complete))); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s = mustOpen(t, dir, o)
		wantSeqs(t, readAll(t, s), 0, complete+1)
		if s.CorruptBytes() != 0 {
			t.Fatalf("cut at %d: clean reopen reports %d corrupt bytes", cut, s.CorruptBytes())
		}
		s.Close()
	}
}

// TestSpoolCorruptRecord flips every byte of a record in the middle of an
// older segment and of the active one. Documented behaviour: that record
// and the ones after it in the same segment are lost; earlier records and
// other segments are intact; appending still works.
func TestSpoolCorruptRecord(t *testing.T) {
	base := t.TempDir()
	o := Options{SegmentSize: 400, MaxSegments: 100}
	s := mustOpen(t, base, o)
	const n = 40
	for i := uint64(0); i < n; i++ {
		if err := s.Append(seqRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	all := readAll(t, s)
	s.Close()
	files := segFiles(t, base)
	if len(files) < 3 {
		t.Fatalf("want at least 3 segments, got %d", len(files))
	}
	for _, target := range []int{0, len(files) - 1} { // an older segment, the active one
		// Records in the target segment, by index into all.
		var inSeg []int
		segIdx := all[0].End.Seg + uint64(target)
		for i, r := range all {
			if r.End.Seg == segIdx {
				inSeg = append(inSeg, i)
			}
		}
		victim := inSeg[len(inSeg)/2]
		start := int64(0)
		if victim > 0 && all[victim-1].End.Seg == segIdx {
			start = all[victim-1].End.Off
		}
		for off := start; off < all[victim].End.Off; off++ {
			dir := t.TempDir()
			copyDir(t, base, dir)
			path := files[target]
			b, err := os.ReadFile(filepath.Join(dir, filepath.Base(path)))
			if err != nil {
				t.Fatal(err)
			}
			b[off] ^= 0x5a
			if err := os.WriteFile(filepath.Join(dir, filepath.Base(path)), b, 0o644); err != nil {
				t.Fatal(err)
			}
			s := mustOpen(t, dir, o)
			got := readAll(t, s)
			var want []uint64
			for i := range all {
				if all[i].End.Seg == segIdx && i >= victim {
					continue
				}
				want = append(want, uint64(i))
			}
			if len(got) != len(want) {
				t.Fatalf("segment %d byte %d flipped: got %d records, want %d", target, off, len(got), len(want))
			}
			for i, r := range got {
				if seq := checkSeqRecord(t, r.Data); seq != want[i] {
					t.Fatalf("segment %d byte %d flipped: record %d is seq %d, want %d", target, off, i, seq, want[i])
				}
			}
			if s.CorruptBytes() == 0 {
				t.Fatalf("segment %d byte %d flipped: no corrupt bytes reported", target, off)
			}
			if err := s.Append(seqRecord(999)); err != nil {
				t.Fatal(err)
			}
			got = readAll(t, s)
			if seq := checkSeqRecord(t, got[len(got)-1].Data); seq != 999 {
				t.Fatalf("append after corruption: last is %d", seq)
			}
			s.Close()
		}
	}
}

func TestSpoolOverflowDropsOldest(t *testing.T) {
	dir := t.TempDir()
	o := Options{SegmentSize: 300, MaxSegments: 3}
	s := mustOpen(t, dir, o)
	const n = 200
	for i := uint64(0); i < n; i++ {
		if err := s.Append(seqRecord(i)); err != nil {
			t.Fatal(err)
		}
		if st := s.Stats(); st.Segments > o.MaxSegments || st.Bytes > int64(o.MaxSegments)*o.SegmentSize {
			t.Fatalf("after %d appends spool exceeds its bound: %+v", i+1, st)
		}
	}
	recs := readAll(t, s)
	if len(recs) == 0 {
		t.Fatal("nothing left")
	}
	first := checkSeqRecord(t, recs[0].Data)
	wantSeqs(t, recs, first, n-int(first))
	if s.Dropped() != first {
		t.Fatalf("Dropped() = %d, but the oldest remaining record is %d", s.Dropped(), first)
	}
	// Acked records are not counted as dropped.
	if err := s.Ack(recs[len(recs)-1].End); err != nil {
		t.Fatal(err)
	}
	before := s.Dropped()
	for i := uint64(n); i < n+100; i++ {
		if err := s.Append(seqRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	recs = readAll(t, s)
	first = checkSeqRecord(t, recs[0].Data)
	wantSeqs(t, recs, first, n+100-int(first))
	if got, want := s.Dropped()-before, first-n; got != want {
		t.Fatalf("second overflow: dropped %d, want %d (records %d..%d unacked and gone)", got, want, n, first-1)
	}
	d := s.Dropped()
	s.Close()
	s = mustOpen(t, dir, o)
	defer s.Close()
	if s.Dropped() != d {
		t.Fatalf("Dropped not persisted: %d after reopen, %d before", s.Dropped(), d)
	}
}

const childEnv = "UPLINK_SPOOL_CHILD_DIR"

// killSegments is far more than ten rounds of the child writer fill on a
// fast machine (about 400 MB of 4 KiB segments), so the oldest-first bound
// never drops a record TestSpoolKillWriter expects to find.
const killSegments = 100_000

// TestSpoolChildWriter is the child of TestSpoolKillWriter: it appends
// numbered records forever.
func TestSpoolChildWriter(t *testing.T) {
	dir := os.Getenv(childEnv)
	if dir == "" {
		t.Skip("only runs as the child of TestSpoolKillWriter")
	}
	start, _ := strconv.ParseUint(os.Getenv(childEnv+"_START"), 10, 64)
	// Write each record in two system calls, so a kill can tear one.
	splitWrites = true
	s, err := Open(dir, Options{SegmentSize: 4096, MaxSegments: killSegments, Sync: SyncBatch})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for seq := start; ; seq++ {
		if seq%500 == 0 {
			err = s.AppendBatch([][]byte{seqRecord(seq)})
		} else {
			err = s.Append(seqRecord(seq))
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
}

func TestSpoolKillWriter(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		t.Skip("child")
	}
	dir := t.TempDir()
	o := Options{SegmentSize: 4096, MaxSegments: killSegments}
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	next := uint64(0)
	for round := 0; round < 10; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSpoolChildWriter$", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"="+dir, childEnv+"_START="+strconv.FormatUint(next, 10))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(30+rng.Intn(120)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("round %d: child ended by itself: %v", round, err)
		}
		s := mustOpen(t, dir, o)
		recs := readAll(t, s)
		wantSeqs(t, recs, 0, len(recs))
		if uint64(len(recs)) < next {
			t.Fatalf("round %d: %d records recovered, fewer than the %d of the previous round", round, len(recs), next)
		}
		t.Logf("round %d: %d records (+%d), corrupt tail bytes %d", round, len(recs), uint64(len(recs))-next, s.CorruptBytes())
		next = uint64(len(recs))
		s.Close()
	}
	if next == 0 {
		t.Fatal("child wrote nothing")
	}
}
