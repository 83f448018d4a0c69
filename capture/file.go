package capture

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"github.com/gopacket/gopacket/pcapgo"
)

// pcapngMagic is the block type of a pcapng Section Header Block, the first
// four bytes of every pcapng file whatever its byte order.
const pcapngMagic = 0x0A0D0D0A

// fileSource reads frames from a pcap or pcapng file.
type fileSource struct {
	path string
	f    *os.File

	// Exactly one of pcap and ng is set.
	pcap *pcapgo.Reader
	ng   *pcapgo.NgReader

	link LinkType // the pcap file's link type

	frames atomic.Uint64
	bytes  atomic.Uint64
	err    error // sticky: once set, Next returns it
}

// OpenFile opens a pcap or pcapng capture file, either possibly
// gzip-compressed, and returns a Source reading its frames in order. The format is
// sniffed from the first bytes, not the file name. Frames carry the link
// type the file records (per interface in pcapng) and Interface 0.
//
// Next returns io.EOF at the end of the file; a truncated or corrupt record
// ends the file with a *RecordError naming the file and the record, after
// every frame before it was handed out.
func OpenFile(path string) (Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("capture: open %s: %w", path, err)
	}
	br := bufio.NewReaderSize(f, 1<<16)
	magic, err := br.Peek(4)
	if err != nil {
		f.Close()
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("capture: %s: too short for a capture file header: %w", path, err)
	}
	gzipped := false
	if magic[0] == 0x1f && magic[1] == 0x8b {
		// gzip: look at the magic of what it holds.
		gz, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("capture: %s: reading gzip header: %w", path, err)
		}
		br = bufio.NewReaderSize(gz, 1<<16)
		gzipped = true
		if magic, err = br.Peek(4); err != nil {
			f.Close()
			return nil, fmt.Errorf("capture: %s: too short for a capture file header inside gzip: %w", path, err)
		}
	}
	s := &fileSource{path: path, f: f}
	if binary.LittleEndian.Uint32(magic) == pcapngMagic {
		s.ng, err = pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("capture: %s: reading pcapng section header: %w", path, err)
		}
		return s, nil
	}
	s.pcap, err = pcapgo.NewReader(br)
	if err != nil {
		f.Close()
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			in := ""
			if gzipped {
				in = " inside gzip"
			}
			return nil, fmt.Errorf("capture: %s: the pcap file header is cut short%s: %w", path, in, io.ErrUnexpectedEOF)
		}
		return nil, fmt.Errorf("capture: %s: not a pcap or pcapng file (magic % x): %w", path, magic, err)
	}
	s.link = LinkType(s.pcap.LinkType())
	return s, nil
}

// Next returns the next frame of the file. Its Data is valid until the next
// call to Next.
func (s *fileSource) Next() (Frame, error) {
	if s.err != nil {
		return Frame{}, s.err
	}
	var fr Frame
	if s.pcap != nil {
		data, ci, err := s.pcap.ZeroCopyReadPacketData()
		if err != nil {
			return Frame{}, s.fail(err, ci.CaptureLength > 0)
		}
		fr = Frame{Data: data, Time: ci.Timestamp, WireLen: ci.Length, LinkType: s.link}
	} else {
		data, ci, err := s.ng.ZeroCopyReadPacketData()
		if err != nil {
			return Frame{}, s.fail(err, ci.CaptureLength > 0)
		}
		fr = Frame{Data: data, Time: ci.Timestamp, WireLen: ci.Length, LinkType: s.ngLink(ci.InterfaceIndex)}
	}
	if fr.WireLen < len(fr.Data) {
		fr.WireLen = len(fr.Data)
	}
	s.frames.Add(1)
	s.bytes.Add(uint64(fr.WireLen))
	return fr, nil
}

// ngLink returns the link type of pcapng interface i of the current
// section. The reader has validated i against the section's interfaces.
func (s *fileSource) ngLink(i int) LinkType {
	if i >= 0 && i < s.ng.NInterfaces() {
		iface, err := s.ng.Interface(i)
		if err == nil {
			return LinkType(iface.LinkType)
		}
	}
	return LinkType(s.ng.LinkType())
}

// RecordError is what Next of a file source returns when a record cannot be
// read: the file ends inside it (a capture cut short: the capturing process
// was stopped or the disk filled), or it is corrupt. Every frame before it
// was handed out; none after it is.
type RecordError struct {
	Path   string
	Record uint64 // number of the record, from 1 (blocks other than packets are not counted)
	Err    error
}

func (e *RecordError) Error() string {
	if e.Truncated() {
		return fmt.Sprintf("capture: %s: record %d is truncated: %v", e.Path, e.Record, e.Err)
	}
	return fmt.Sprintf("capture: %s: reading record %d: %v", e.Path, e.Record, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }

// Truncated reports whether the file (or the gzip stream holding it) ends
// inside the record, rather than holding a corrupt one.
func (e *RecordError) Truncated() bool { return errors.Is(e.Err, io.ErrUnexpectedEOF) }

// fail turns a reader error into the sticky error Next returns from now on.
// inRecord says the record header had been read: io.EOF then means the
// file ends inside the record.
func (s *fileSource) fail(err error, inRecord bool) error {
	if err == io.EOF && inRecord {
		err = io.ErrUnexpectedEOF
	}
	if err == io.EOF {
		s.err = io.EOF
	} else {
		s.err = &RecordError{Path: s.path, Record: s.frames.Load() + 1, Err: err}
	}
	return s.err
}

// Stats returns the frames and wire bytes read so far. It may be called
// from another goroutine.
func (s *fileSource) Stats() Stats {
	return Stats{Frames: s.frames.Load(), Bytes: s.bytes.Load()}
}

// Close closes the file; Next returns io.EOF afterwards.
func (s *fileSource) Close() error {
	s.err = io.EOF
	return s.f.Close()
}
