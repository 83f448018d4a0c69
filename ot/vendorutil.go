package ot

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
)

// Helpers shared by the vendor protocol dissectors (FINS, ADS, SLMP, Fox,
// ...): emitting observations, tables of service names built once, and
// text cleaning. Names start with "vnd" so that they stand apart from
// other files' helpers.

// vndEmit sends one observation about ip.
func vndEmit(out dissect.Sink, p *dissect.Packet, proto string, ip netip.Addr, attr, value string, peer netip.Addr) {
	out.Observe(dissect.Observation{
		Time:     p.Time,
		IP:       ip,
		Attr:     attr,
		Value:    value,
		Protocol: proto,
		Peer:     peer,
	})
}

// flowState returns f's state of type *T: a new one when f holds none yet
// (or what Probe left there).
func flowState[T any](f *flow.Flow) *T {
	st, ok := f.State.(*T)
	if !ok {
		st = new(T)
		f.State = st
	}
	return st
}

// tcpRecords puts p's segment back in order in s and hands each whole
// record it completes to rec, in order. Once at least hdr bytes are held,
// frame tells the length of the record they start (more than held: wait
// for the rest), or false when they start no record: the boundaries are
// lost, what is held is dropped, and the next segment is taken to start a
// record. A record longer than s can hold is handed on as far as it is
// held (its header is what is read), and what is held is dropped.
func tcpRecords(s *dissect.Stream, p *dissect.Packet, hdr int, frame func(b []byte) (int, bool), rec func(b []byte)) {
	s.Push(p.TCPSeq, p.Payload)
	b := s.Bytes()
	limit := s.Max
	if limit <= 0 {
		limit = dissect.DefaultStreamMax
	}
	off := 0
	for len(b)-off >= hdr {
		n, ok := frame(b[off:])
		if !ok {
			off = len(b)
			break
		}
		if len(b)-off < n {
			if n > limit {
				rec(b[off:])
				off = len(b)
			}
			break
		}
		rec(b[off : off+n])
		off += max(n, 1)
	}
	s.Consume(off)
}

// pushSegment puts p's segment back in order in s and returns the bytes
// held, where the segment's own bytes start among them (a reader that lost
// the message boundaries retries there: messages most likely start a
// segment), and the offset to read from: past the *skip bytes still owed
// of a message too long to hold (skip nil: none). A gap forgets what was
// held and what was owed.
func pushSegment(s *dissect.Stream, p *dissect.Packet, skip *int) (b []byte, segStart, off int) {
	segStart = len(s.Bytes())
	if s.Push(p.TCPSeq, p.Payload) {
		segStart = 0
		if skip != nil {
			*skip = 0
		}
	}
	b = s.Bytes()
	segStart = min(segStart, len(b))
	if skip != nil && *skip > 0 {
		off = min(*skip, len(b))
		*skip -= off
	}
	return b, segStart, off
}

// roles returns the server and the client of a message from p's source:
// a response's sender is the server, a request's the client. The first
// time on a flow (done false) it emits their roles.
func roles(out dissect.Sink, p *dissect.Packet, proto string, resp, done bool, server, client string) (srv, cli netip.Addr) {
	srv, cli = p.DstIP, p.SrcIP
	if resp {
		srv, cli = cli, srv
	}
	if !done {
		vndEmit(out, p, proto, srv, dissect.AttrRole, server, netip.Addr{})
		vndEmit(out, p, proto, cli, dissect.AttrRole, client, netip.Addr{})
	}
	return srv, cli
}

// vndText returns b cleaned (see cleanText) as a valid UTF-8 string, or ""
// when nothing printable is left.
func vndText(b []byte) string {
	b = cleanText(b)
	if len(b) == 0 {
		return ""
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// vndPrintable reports whether b, up to its first NUL, holds only
// printable ASCII and at least one byte.
func vndPrintable(b []byte) bool {
	n := 0
	for _, c := range b {
		if c == 0 {
			break
		}
		if c < ' ' || c > '~' {
			return false
		}
		n++
	}
	return n > 0
}

// Kinds of command, for the flags a dissector raises besides
// dissect.AttrService.
const (
	vndRead    = iota // reads, identification, diagnostics: no flag
	vndWrite          // changes data in the device
	vndProgram        // changes or reads out the device's program or configuration
	vndControl        // changes the operating state: run, stop, reset
)

// vndCommand is one entry of a protocol's command table.
type vndCommand struct {
	code uint16
	name string
	kind uint8
}

// vndTable maps command codes to indexes of precomputed AttrService
// values ("prefix:code name"), so that looking a command up allocates
// nothing. Codes not in the table share the last index.
type vndTable struct {
	format   func(uint16) string
	idx      map[uint16]uint8
	services []string
	kinds    []uint8
}

// newVndTable builds a table; format renders a code ("0101", "9").
func newVndTable(prefix string, format func(uint16) string, cmds []vndCommand) *vndTable {
	t := &vndTable{format: format, idx: make(map[uint16]uint8, len(cmds))}
	for i, c := range cmds {
		t.idx[c.code] = uint8(i)
		t.services = append(t.services, prefix+":"+format(c.code)+" "+c.name)
		t.kinds = append(t.kinds, c.kind)
	}
	t.services = append(t.services, "")
	t.kinds = append(t.kinds, vndRead)
	return t
}

// lookup returns the index of code, and false when it is unknown.
func (t *vndTable) lookup(code uint16) (int, bool) {
	i, ok := t.idx[code]
	if !ok {
		return len(t.services) - 1, false
	}
	return int(i), true
}

// vndHex4 renders a 16-bit code as 4 hex digits.
func vndHex4(c uint16) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[c>>12], digits[c>>8&15], digits[c>>4&15], digits[c&15]})
}

// vndDec renders a code in decimal.
func vndDec(c uint16) string { return strconv.Itoa(int(c)) }

// vndCodes remembers up to len(codes) command codes outside a protocol's
// table, so that each is reported once per flow; more are not reported.
type vndCodes struct {
	codes [8]uint16
	n     uint8
}

// add reports whether c is new and was remembered.
func (s *vndCodes) add(c uint16) bool {
	for i := 0; i < int(s.n); i++ {
		if s.codes[i] == c {
			return false
		}
	}
	if int(s.n) == len(s.codes) {
		return false
	}
	s.codes[s.n] = c
	s.n++
	return true
}

// vndService emits dissect.AttrService for a command a client (peer) sent
// to a server, once per flow, and the flag its kind calls for. seen holds
// the table indexes already reported on the flow; other holds unknown
// codes. flags names the attributes of the write, program and control
// flags (empty: none).
func vndService(out dissect.Sink, p *dissect.Packet, proto string, t *vndTable, seen *bitset256, other *vndCodes,
	srv, cli netip.Addr, code uint16, flags [4]string) {
	i, known := t.lookup(code)
	if known {
		if !seen.add(i) {
			return
		}
		vndEmit(out, p, proto, srv, dissect.AttrService, t.services[i], cli)
		if k := t.kinds[i]; k != vndRead && flags[k] != "" {
			vndEmit(out, p, proto, srv, flags[k], t.services[i], cli)
		}
		return
	}
	if other.add(code) {
		vndEmit(out, p, proto, srv, dissect.AttrService, proto+":"+t.format(code)+" unknown", cli)
	}
}

// vndEmitText emits b as text when it is printable (see vndPrintable) and
// not blank, and reports whether it did.
func vndEmitText(out dissect.Sink, p *dissect.Packet, proto string, ip netip.Addr, attr string, b []byte) bool {
	if !vndPrintable(b) {
		return false
	}
	v := vndText(b)
	if v == "" {
		return false
	}
	vndEmit(out, p, proto, ip, attr, v, netip.Addr{})
	return true
}

// vndJoin joins the first n values of vs, sorted, with sep. Multi-valued
// facts (the AMS ports of a device, the commands of a master) are emitted
// as the whole list each time it grows, since the inventory keeps one
// value per attribute.
func vndJoin(vs []string, sep string) string {
	vs = slices.Clone(vs)
	slices.Sort(vs)
	return strings.Join(vs, sep)
}
