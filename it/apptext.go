package it

import (
	"bytes"
	"net/netip"

	"github.com/passivesensor/sensor/dissect"
)

// Helpers shared by the dissectors of text application protocols (HTTP,
// SIP, SMTP, Telnet, SSH) and the other application dissectors (TLS, SNMP,
// Kerberos): emitting each fact once per flow, and reading header lines.

// appFacts remembers which facts a flow already emitted, as 32-bit hashes of
// (address, attribute, value), so that each fact is emitted once per flow
// while the flow's state stays small. When full it reports every further
// fact as already seen: a flow never emits more than len(h) facts.
type appFacts struct {
	h [24]uint32
	n uint8
}

// add reports whether the fact is new, and remembers it.
func (s *appFacts) add(ip netip.Addr, attr string, v []byte) bool {
	return s.addHash(appFactHash(ip, attr, v))
}

// addString is add for a string value.
func (s *appFacts) addString(ip netip.Addr, attr, v string) bool {
	return s.addHash(appFactHash(ip, attr, v))
}

func (s *appFacts) addHash(h uint32) bool {
	for _, x := range s.h[:s.n] {
		if x == h {
			return false
		}
	}
	if int(s.n) == len(s.h) {
		return false
	}
	s.h[s.n] = h
	s.n++
	return true
}

// appFactHash hashes (ip, attr, v) with FNV-1a.
func appFactHash[T string | []byte](ip netip.Addr, attr string, v T) uint32 {
	h := uint32(2166136261)
	a16 := ip.As16()
	for _, c := range a16 {
		h = (h ^ uint32(c)) * 16777619
	}
	for i := 0; i < len(attr); i++ {
		h = (h ^ uint32(attr[i])) * 16777619
	}
	h *= 16777619 // separator
	for i := 0; i < len(v); i++ {
		h = (h ^ uint32(v[i])) * 16777619
	}
	return h
}

// full reports whether the set can take no more facts.
func (s *appFacts) full() bool { return int(s.n) == len(s.h) }

// appEmitter emits the observations of one packet, each fact once per flow.
type appEmitter struct {
	out   dissect.Sink
	p     *dissect.Packet
	seen  *appFacts
	proto string
	buf   [4 * maxText]byte
}

// text emits attr=v (cleaned to printable text of at most maxText bytes)
// about ip, with peer, unless the flow emitted it already or v is empty.
func (e *appEmitter) text(ip netip.Addr, attr string, v []byte, peer netip.Addr) {
	e.raw(ip, attr, cleanText(e.buf[:0], v, maxText), peer)
}

// raw emits v as it is (already clean).
func (e *appEmitter) raw(ip netip.Addr, attr string, v []byte, peer netip.Addr) {
	if len(v) == 0 || !ip.IsValid() || !e.seen.add(ip, attr, v) {
		return
	}
	e.out.Observe(dissect.Observation{Time: e.p.Time, IP: ip, Attr: attr, Value: string(v), Protocol: e.proto, Peer: peer})
}

// str emits a string value.
func (e *appEmitter) str(ip netip.Addr, attr, v string, peer netip.Addr) {
	if v == "" || !ip.IsValid() || !e.seen.addString(ip, attr, v) {
		return
	}
	e.out.Observe(dissect.Observation{Time: e.p.Time, IP: ip, Attr: attr, Value: v, Protocol: e.proto, Peer: peer})
}

// src and dst return the addresses of the packet's sender and receiver.
func (e *appEmitter) src() netip.Addr { return e.p.SrcIP }
func (e *appEmitter) dst() netip.Addr { return e.p.DstIP }

// appNextLine splits b at the first line end (LF, with or without CR) and
// returns the line without it; ok is false when b holds no line end.
func appNextLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return b, nil, false
	}
	line, rest = b[:i], b[i+1:]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, rest, true
}

// appHeaderEnd returns the length of the header block at the start of b,
// through the empty line that ends it, or -1 when b does not hold it.
func appHeaderEnd(b []byte) int {
	for i := 0; i < len(b); {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		line := b[i : i+j]
		i += j + 1
		if len(line) == 0 || (len(line) == 1 && line[0] == '\r') {
			return i
		}
	}
	return -1
}

// appHeaderValue returns the value of a header line "Name: value" when its
// name is name (compared without case; name is lower case).
func appHeaderValue(line []byte, name string) ([]byte, bool) {
	if len(line) <= len(name) || line[len(name)] != ':' {
		return nil, false
	}
	for i := 0; i < len(name); i++ {
		c := line[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != name[i] {
			return nil, false
		}
	}
	return bytes.TrimSpace(line[len(name)+1:]), true
}

// appHasPrefixFold reports whether b starts with prefix, without case;
// prefix is upper case.
func appHasPrefixFold(b []byte, prefix string) bool {
	if len(b) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := b[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// appIsMethod reports whether b is a non-empty run of upper-case letters (an
// HTTP or SIP method as used in practice), at most 20 long.
func appIsMethod(b []byte) bool {
	if len(b) == 0 || len(b) > 20 {
		return false
	}
	for _, c := range b {
		if (c < 'A' || c > 'Z') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// appIsDigits reports whether b is a non-empty run of ASCII digits.
func appIsDigits(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// appAtoi parses a decimal of at most 9 digits; ok false otherwise.
func appAtoi(b []byte) (int, bool) {
	if !appIsDigits(b) || len(b) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		n = n*10 + int(c-'0')
	}
	return n, true
}
