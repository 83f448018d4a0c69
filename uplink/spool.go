// Package uplink holds what the sensor sends to the cloud and how: the CBOR
// message types (described by schema.cddl) with their string table and
// dictionary, the spool on /perm that keeps encoded batches while the cloud
// is away, the HTTPS client (CA file, CONNECT proxy with Basic
// credentials, backoff with jitter), and the Agent that registers the box
// with its personalization code, drains the spool, pulls the cloud's
// configuration and writes the status file the set-up front ends read.
package uplink

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Spool file format
//
// The spool is a directory of segment files named NNNNNNNNNNNNNNNNNNNN.seg
// (a zero-padded decimal index, oldest first) and one state file "ack".
// A segment is a sequence of records, each:
//
//	u32 little-endian payload length | u32 little-endian CRC32C(payload) | payload
//
// Records are only ever appended. The state file holds the acknowledged
// position (segment index and offset just after the last acknowledged record)
// and the number of records dropped on overflow; it is replaced atomically
// (write temp, fsync, rename, fsync dir).
//
// Recovery: on Open every segment is scanned from its start. The scan of a
// segment stops at the first record that is incomplete, longer than
// MaxRecord or whose CRC does not match. There is no resynchronisation past
// a bad record: a length field cannot be trusted once anything in the
// segment is known bad, and a scan that guesses record boundaries could hand
// out garbage that happens to match a CRC. So a bad record loses itself and
// the records after it in the same segment; records in other segments are
// unaffected. In the newest segment (the one appended to) the file is
// truncated at the last good record, so a torn tail from a crash is cut
// off and appending resumes cleanly. An older segment is left as it is on
// disk and reading simply moves to the next segment at the bad record.
// Records lost that way are counted in bytes (CorruptBytes).

const (
	headerSize  = 8
	segSuffix   = ".seg"
	stateName   = "ack"
	stateTmp    = "ack.tmp"
	stateMagic  = "SPL1"
	stateLength = 4 + 8 + 8 + 8 + 4 // magic, seg, off, dropped, crc
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// SyncPolicy says when appended records are forced to stable storage.
type SyncPolicy int

const (
	// SyncEveryRecord fsyncs the segment after every Append.
	SyncEveryRecord SyncPolicy = iota
	// SyncBatch fsyncs only in AppendBatch (once per batch) and Sync.
	SyncBatch
)

// Options bound the spool. Zero fields take the defaults.
type Options struct {
	SegmentSize int64      // bytes per segment before a new one starts; default 4 MiB
	MaxSegments int        // segments kept; when exceeded the oldest is dropped; default 16
	MaxRecord   int        // largest record payload accepted; default SegmentSize-8
	Sync        SyncPolicy // default SyncEveryRecord
}

func (o *Options) fill() error {
	if o.SegmentSize == 0 {
		o.SegmentSize = 4 << 20
	}
	if o.MaxSegments == 0 {
		o.MaxSegments = 16
	}
	if o.MaxRecord == 0 {
		o.MaxRecord = int(o.SegmentSize - headerSize)
	}
	switch {
	case o.SegmentSize <= headerSize:
		return fmt.Errorf("spool: segment size %d too small", o.SegmentSize)
	case o.MaxSegments < 2:
		return fmt.Errorf("spool: max segments %d, need at least 2", o.MaxSegments)
	case o.MaxRecord <= 0 || int64(o.MaxRecord) > o.SegmentSize-headerSize || o.MaxRecord > 1<<30:
		return fmt.Errorf("spool: max record %d out of range for segment size %d", o.MaxRecord, o.SegmentSize)
	}
	return nil
}

// Position names the point just after a record: the segment index and the
// byte offset in it. Ack(p) releases every record up to and including the
// one that ends at p.
type Position struct {
	Seg uint64
	Off int64
}

func (p Position) less(q Position) bool {
	return p.Seg < q.Seg || (p.Seg == q.Seg && p.Off < q.Off)
}

// Record is one spooled payload and where it ends.
type Record struct {
	Data []byte
	End  Position
}

type segment struct {
	index uint64
	size  int64 // bytes of valid records (the reader stops here)
}

// Spool is a bounded, crash-safe FIFO of byte records in a directory.
// It is safe for concurrent use.
type Spool struct {
	mu      sync.Mutex
	dir     string
	opts    Options
	segs    []segment // oldest first; never empty while open
	active  *os.File  // the last segment, open for writing
	ack     Position
	dropped uint64 // records dropped on overflow, over the spool's life
	corrupt int64  // bytes lost to corruption found at Open
	buf     []byte
	closed  bool
}

// Open opens or creates the spool in dir, recovering every complete record.
func Open(dir string, opts Options) (*Spool, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("spool: create %s: %w", dir, err)
	}
	s := &Spool{dir: dir, opts: opts}
	if err := s.readState(); err != nil {
		return nil, err
	}
	idx, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	for i, n := range idx {
		valid, fileSize, err := scanSegment(s.segPath(n), opts.MaxRecord)
		if err != nil {
			return nil, err
		}
		s.corrupt += fileSize - valid
		last := i == len(idx)-1
		if last && valid != fileSize {
			if err := os.Truncate(s.segPath(n), valid); err != nil {
				return nil, fmt.Errorf("spool: truncate torn tail of %s at %d: %w", s.segPath(n), valid, err)
			}
		}
		s.segs = append(s.segs, segment{index: n, size: valid})
	}
	// Segments wholly before the ack position are leftovers of a crash
	// between Ack's state write and the removal.
	for len(s.segs) > 1 && s.segs[0].index < s.ack.Seg {
		if err := os.Remove(s.segPath(s.segs[0].index)); err != nil {
			return nil, fmt.Errorf("spool: remove acknowledged segment: %w", err)
		}
		s.segs = s.segs[1:]
	}
	if len(s.segs) == 0 {
		next := s.ack.Seg
		if next == 0 {
			next = 1
		}
		if err := s.createSegment(next); err != nil {
			return nil, err
		}
	} else {
		f, err := os.OpenFile(s.segPath(s.segs[len(s.segs)-1].index), os.O_WRONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("spool: open active segment: %w", err)
		}
		s.active = f
	}
	// Clamp the ack position into what exists.
	first := s.segs[0]
	switch {
	case s.ack.Seg < first.index:
		s.ack = Position{Seg: first.index}
	default:
		if seg := s.findSeg(s.ack.Seg); seg == nil {
			// The acked segment vanished (it was after all we have): nothing is acked.
			last := s.segs[len(s.segs)-1]
			if s.ack.Seg > last.index {
				s.ack = Position{Seg: last.index, Off: last.size}
			} else {
				s.ack = Position{Seg: first.index}
			}
		} else if s.ack.Off > seg.size || s.ack.Off < 0 {
			s.ack.Off = seg.size
		}
	}
	return s, nil
}

func listSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("spool: list %s: %w", dir, err)
	}
	var idx []uint64
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, segSuffix) || !e.Type().IsRegular() {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(name, segSuffix), 10, 64)
		if err != nil || n == 0 {
			continue
		}
		idx = append(idx, n)
	}
	sort.Slice(idx, func(i, j int) bool { return idx[i] < idx[j] })
	return idx, nil
}

// scanSegment returns the length of the valid record prefix and the file size.
func scanSegment(path string, maxRecord int) (valid, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, fmt.Errorf("spool: open segment: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, 0, fmt.Errorf("spool: stat %s: %w", path, err)
	}
	r := bufio.NewReaderSize(f, 64<<10)
	var hdr [headerSize]byte
	payload := make([]byte, 0, 4096)
	for {
		n, ok, err := readRecord(r, hdr[:], &payload, maxRecord)
		if err != nil {
			return 0, 0, fmt.Errorf("spool: read %s at %d: %w", path, valid, err)
		}
		if !ok {
			return valid, st.Size(), nil
		}
		valid += n
	}
}

// readRecord reads one record into *payload. ok is false at the end of the
// valid records (EOF, torn record, bad length or CRC); err is set only for
// I/O errors other than a short read.
func readRecord(r io.Reader, hdr []byte, payload *[]byte, maxRecord int) (n int64, ok bool, err error) {
	if _, err := io.ReadFull(r, hdr[:headerSize]); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return 0, false, nil
		}
		return 0, false, err
	}
	length := binary.LittleEndian.Uint32(hdr[0:4])
	sum := binary.LittleEndian.Uint32(hdr[4:8])
	if length == 0 || length > uint32(maxRecord) {
		return 0, false, nil
	}
	if cap(*payload) < int(length) {
		*payload = make([]byte, length)
	}
	p := (*payload)[:length]
	if _, err := io.ReadFull(r, p); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return 0, false, nil
		}
		return 0, false, err
	}
	if crc32.Checksum(p, castagnoli) != sum {
		return 0, false, nil
	}
	*payload = p
	return headerSize + int64(length), true, nil
}

func (s *Spool) segPath(n uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%020d%s", n, segSuffix))
}

func (s *Spool) findSeg(n uint64) *segment {
	for i := range s.segs {
		if s.segs[i].index == n {
			return &s.segs[i]
		}
	}
	return nil
}

func (s *Spool) createSegment(n uint64) error {
	f, err := os.OpenFile(s.segPath(n), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("spool: create segment: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		return err
	}
	if s.active != nil {
		s.active.Close()
	}
	s.active = f
	s.segs = append(s.segs, segment{index: n})
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("spool: open dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("spool: sync dir %s: %w", dir, err)
	}
	return nil
}

// ErrClosed is returned by operations on a closed spool.
var ErrClosed = errors.New("spool: closed")

// Append adds one record. With SyncEveryRecord it is on stable storage when
// Append returns.
func (s *Spool) Append(rec []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.append(rec); err != nil {
		return err
	}
	if s.opts.Sync == SyncEveryRecord {
		return s.syncLocked()
	}
	return nil
}

// AppendBatch adds records in order and fsyncs once at the end (whatever
// the policy). On error, a prefix of the batch may have been appended.
func (s *Spool) AppendBatch(recs [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range recs {
		if err := s.append(r); err != nil {
			return err
		}
	}
	return s.syncLocked()
}

// Sync forces appended records to stable storage.
func (s *Spool) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.syncLocked()
}

func (s *Spool) syncLocked() error {
	if s.closed {
		return ErrClosed
	}
	if err := s.active.Sync(); err != nil {
		return fmt.Errorf("spool: sync segment: %w", err)
	}
	return nil
}

func (s *Spool) append(rec []byte) error {
	if s.closed {
		return ErrClosed
	}
	if len(rec) == 0 || len(rec) > s.opts.MaxRecord {
		return fmt.Errorf("spool: record of %d bytes, want 1..%d", len(rec), s.opts.MaxRecord)
	}
	need := int64(headerSize + len(rec))
	cur := &s.segs[len(s.segs)-1]
	if cur.size > 0 && cur.size+need > s.opts.SegmentSize {
		// The finished segment goes to disk before the next one starts,
		// so the record order on disk survives a crash.
		if err := s.active.Sync(); err != nil {
			return fmt.Errorf("spool: sync segment: %w", err)
		}
		if err := s.createSegment(cur.index + 1); err != nil {
			return err
		}
		for len(s.segs) > s.opts.MaxSegments {
			if err := s.dropOldest(); err != nil {
				return err
			}
		}
		cur = &s.segs[len(s.segs)-1]
	}
	s.buf = s.buf[:0]
	s.buf = binary.LittleEndian.AppendUint32(s.buf, uint32(len(rec)))
	s.buf = binary.LittleEndian.AppendUint32(s.buf, crc32.Checksum(rec, castagnoli))
	s.buf = append(s.buf, rec...)
	if err := s.write(cur.size); err != nil {
		// Cut whatever part got written so the next append starts clean.
		_ = s.active.Truncate(cur.size)
		return fmt.Errorf("spool: write segment %d at %d: %w", cur.index, cur.size, err)
	}
	cur.size += need
	return nil
}

// splitWrites makes write use two system calls per record; the crash test
// sets it so that a kill can leave a torn record behind.
var splitWrites bool

func (s *Spool) write(off int64) error {
	if splitWrites && len(s.buf) > headerSize+1 {
		half := headerSize + (len(s.buf)-headerSize)/2
		if _, err := s.active.WriteAt(s.buf[:half], off); err != nil {
			return err
		}
		_, err := s.active.WriteAt(s.buf[half:], off+int64(half))
		return err
	}
	_, err := s.active.WriteAt(s.buf, off)
	return err
}

// dropOldest removes the oldest segment, counting its unacknowledged records.
func (s *Spool) dropOldest() error {
	old := s.segs[0]
	from := int64(0)
	if s.ack.Seg == old.index {
		from = s.ack.Off
	}
	n, err := s.countRecords(old, from)
	if err != nil {
		return err
	}
	s.dropped += uint64(n)
	s.segs = s.segs[1:]
	if !s.ack.less(Position{Seg: s.segs[0].index}) {
		// ack already at or past the new first segment
	} else {
		s.ack = Position{Seg: s.segs[0].index}
	}
	if err := s.writeState(); err != nil {
		return err
	}
	if err := os.Remove(s.segPath(old.index)); err != nil {
		return fmt.Errorf("spool: remove overflowed segment: %w", err)
	}
	return nil
}

func (s *Spool) countRecords(seg segment, from int64) (int, error) {
	f, err := os.Open(s.segPath(seg.index))
	if err != nil {
		return 0, fmt.Errorf("spool: open segment: %w", err)
	}
	defer f.Close()
	r := bufio.NewReader(io.NewSectionReader(f, from, seg.size-from))
	var hdr [headerSize]byte
	var payload []byte
	n := 0
	for {
		_, ok, err := readRecord(r, hdr[:], &payload, s.opts.MaxRecord)
		if err != nil {
			return n, fmt.Errorf("spool: count records of segment %d: %w", seg.index, err)
		}
		if !ok {
			return n, nil
		}
		n++
	}
}

// Peek returns up to max of the oldest unacknowledged records, in order,
// stopping before the total payload exceeds maxBytes (at least one record
// is returned if any is pending; maxBytes <= 0 means no byte bound). The
// records stay in the spool until acknowledged; the slices are the
// caller's.
func (s *Spool) Peek(max int, maxBytes int) ([]Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	var out []Record
	total := 0
	pos := s.ack
	for i := 0; i < len(s.segs) && len(out) < max; i++ {
		seg := s.segs[i]
		if seg.index < pos.Seg {
			continue
		}
		from := int64(0)
		if seg.index == pos.Seg {
			from = pos.Off
		}
		if from >= seg.size {
			continue
		}
		f, err := os.Open(s.segPath(seg.index))
		if err != nil {
			return out, fmt.Errorf("spool: open segment: %w", err)
		}
		r := bufio.NewReader(io.NewSectionReader(f, from, seg.size-from))
		var hdr [headerSize]byte
		off := from
		for len(out) < max {
			var payload []byte
			n, ok, err := readRecord(r, hdr[:], &payload, s.opts.MaxRecord)
			if err != nil {
				f.Close()
				return out, fmt.Errorf("spool: read segment %d at %d: %w", seg.index, off, err)
			}
			if !ok {
				break
			}
			if maxBytes > 0 && len(out) > 0 && total+len(payload) > maxBytes {
				f.Close()
				return out, nil
			}
			off += n
			total += len(payload)
			out = append(out, Record{Data: payload, End: Position{Seg: seg.index, Off: off}})
		}
		f.Close()
	}
	return out, nil
}

// Next returns the oldest unacknowledged record, or ok false if none.
func (s *Spool) Next() (rec Record, ok bool, err error) {
	recs, err := s.Peek(1, 0)
	if err != nil || len(recs) == 0 {
		return Record{}, false, err
	}
	return recs[0], true, nil
}

// Ack releases every record up to and including the one ending at upTo,
// persisting the position atomically, and removes segments wholly
// acknowledged (never the one being appended to). Acknowledging a position
// at or before the current one is a no-op; a position past the last record
// is an error.
func (s *Spool) Ack(upTo Position) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if !s.ack.less(upTo) {
		return nil
	}
	seg := s.findSeg(upTo.Seg)
	if seg == nil || upTo.Off < 0 || upTo.Off > seg.size {
		return fmt.Errorf("spool: ack position %d/%d is not in the spool", upTo.Seg, upTo.Off)
	}
	s.ack = upTo
	// A fully read segment that is not the active one can go.
	if seg.size == upTo.Off && seg.index != s.segs[len(s.segs)-1].index {
		s.ack = Position{Seg: upTo.Seg + 1}
		for i := range s.segs {
			if s.segs[i].index > upTo.Seg {
				s.ack = Position{Seg: s.segs[i].index}
				break
			}
		}
	}
	if err := s.writeState(); err != nil {
		return err
	}
	removed := false
	for len(s.segs) > 1 && s.segs[0].index < s.ack.Seg {
		if err := os.Remove(s.segPath(s.segs[0].index)); err != nil {
			return fmt.Errorf("spool: remove acknowledged segment: %w", err)
		}
		s.segs = s.segs[1:]
		removed = true
	}
	if removed {
		return syncDir(s.dir)
	}
	return nil
}

// Dropped is the number of unacknowledged records lost because the spool
// was full, over the life of the spool directory (it is persisted). A
// caller reports an increase as a spool-overflow event.
func (s *Spool) Dropped() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// CorruptBytes is the number of bytes found unreadable (torn or corrupt
// records and what followed them in their segment) when the spool was opened.
func (s *Spool) CorruptBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.corrupt
}

// Stats describes the spool's occupancy.
type Stats struct {
	Segments     int
	Bytes        int64    // bytes in all segments, acknowledged or not
	PendingBytes int64    // bytes (with headers) not yet acknowledged
	Ack          Position // the acknowledged position
}

// Stats returns the spool's occupancy.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Segments: len(s.segs), Ack: s.ack}
	for _, seg := range s.segs {
		st.Bytes += seg.size
		switch {
		case seg.index > s.ack.Seg:
			st.PendingBytes += seg.size
		case seg.index == s.ack.Seg:
			st.PendingBytes += seg.size - s.ack.Off
		}
	}
	return st
}

// Close syncs and closes the spool.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.active.Sync()
	if cerr := s.active.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("spool: close: %w", err)
	}
	return nil
}

func (s *Spool) readState() error {
	b, err := os.ReadFile(filepath.Join(s.dir, stateName))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("spool: read state: %w", err)
	}
	if len(b) != stateLength || string(b[:4]) != stateMagic ||
		crc32.Checksum(b[:stateLength-4], castagnoli) != binary.LittleEndian.Uint32(b[stateLength-4:]) {
		// A bad state file only costs resending: start from the oldest record.
		return nil
	}
	s.ack.Seg = binary.LittleEndian.Uint64(b[4:12])
	s.ack.Off = int64(binary.LittleEndian.Uint64(b[12:20]))
	s.dropped = binary.LittleEndian.Uint64(b[20:28])
	return nil
}

func (s *Spool) writeState() error {
	b := make([]byte, 0, stateLength)
	b = append(b, stateMagic...)
	b = binary.LittleEndian.AppendUint64(b, s.ack.Seg)
	b = binary.LittleEndian.AppendUint64(b, uint64(s.ack.Off))
	b = binary.LittleEndian.AppendUint64(b, s.dropped)
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	tmp := filepath.Join(s.dir, stateTmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("spool: write state: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("spool: write state: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("spool: sync state: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("spool: close state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, stateName)); err != nil {
		return fmt.Errorf("spool: replace state: %w", err)
	}
	return syncDir(s.dir)
}
