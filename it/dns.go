package it

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"sync"
	"time"

	"github.com/passivesensor/sensor/dissect"
)

// Ports of the DNS family.
const (
	DNSPort   = 53
	MDNSPort  = 5353
	LLMNRPort = 5355
)

// Attributes the DNS dissectors emit besides the dissect.Attr* ones.
const (
	// AttrDNSA binds a name to an address a DNS server answered for it
	// (A and AAAA answers): IP is the address, Value the name. The
	// inventory uses it to learn which names an address goes by.
	AttrDNSA = dissect.AttrDNSAnswer
	// AttrMDNSServices is the sorted, comma-separated set of DNS-SD
	// service types ("_ipp._tcp") a device advertises.
	AttrMDNSServices = "mdns.services"
	// AttrMDNSTXT is the raw text of a device's DNS-SD TXT records,
	// strings joined by ',', bounded.
	AttrMDNSTXT = "mdns.txt"
)

// DNS record types read.
const (
	dnsTypeA     = 1
	dnsTypeCNAME = 5
	dnsTypePTR   = 12
	dnsTypeTXT   = 16
	dnsTypeAAAA  = 28
	dnsTypeSRV   = 33
)

// Bounds of the DNS reader.
const (
	dnsHeaderLen   = 12
	dnsMaxName     = 255 // a name's presentation length
	dnsMaxJumps    = 16  // compression pointers followed per name
	dnsMaxServices = 16  // service types kept from one message
	dnsMaxRecords  = 256 // records read from one message
)

// Errors of the DNS reader.
var (
	ErrDNSHeader = errors.New("dns: header missing or counts impossible for the message length")
	ErrDNSName   = errors.New("dns: bad name (cut, too long, or a compression pointer not pointing back)")
	ErrDNSShort  = errors.New("dns: record runs past the message")
)

// DNSHeader is the fixed header of a DNS message.
type DNSHeader struct {
	ID, Flags        uint16
	QDCount, ANCount uint16
	NSCount, ARCount uint16
}

// Response reports whether the QR bit is set.
func (h DNSHeader) Response() bool { return h.Flags&0x8000 != 0 }

// Opcode returns the header's opcode.
func (h DNSHeader) Opcode() uint8 { return uint8(h.Flags>>11) & 0xf }

// ParseDNSHeader reads the header of msg and checks that its counts are
// possible: every question takes at least 5 bytes, every record 11, the
// opcode is one in use (query, inverse query, status, notify, update) and
// the message holds at least one entry.
func ParseDNSHeader(msg []byte) (DNSHeader, error) {
	var h DNSHeader
	if len(msg) < dnsHeaderLen {
		return h, ErrDNSHeader
	}
	h = DNSHeader{
		ID: binary.BigEndian.Uint16(msg), Flags: binary.BigEndian.Uint16(msg[2:]),
		QDCount: binary.BigEndian.Uint16(msg[4:]), ANCount: binary.BigEndian.Uint16(msg[6:]),
		NSCount: binary.BigEndian.Uint16(msg[8:]), ARCount: binary.BigEndian.Uint16(msg[10:]),
	}
	switch h.Opcode() {
	case 0, 1, 2, 4, 5:
	default:
		return h, ErrDNSHeader
	}
	rrs := int(h.ANCount) + int(h.NSCount) + int(h.ARCount)
	if int(h.QDCount)+rrs == 0 || dnsHeaderLen+5*int(h.QDCount)+11*rrs > len(msg) {
		return h, ErrDNSHeader
	}
	return h, nil
}

// readName decodes the possibly compressed name at off in msg into dst (as
// dotted text without the final dot, root as "") and returns it with the
// offset just past the name where it started. Pointers must point before
// the label that holds them, and at most dnsMaxJumps are followed, so
// there are no loops.
func readName(msg []byte, off int, dst []byte) ([]byte, int, error) {
	dst = dst[:0]
	end := -1
	jumps := 0
	for {
		if off >= len(msg) {
			return dst, 0, ErrDNSName
		}
		c := int(msg[off])
		switch c & 0xc0 {
		case 0x00:
			if c == 0 {
				if end < 0 {
					end = off + 1
				}
				return dst, end, nil
			}
			if off+1+c > len(msg) {
				return dst, 0, ErrDNSName
			}
			if len(dst)+c+1 > dnsMaxName {
				return dst, 0, ErrDNSName
			}
			if len(dst) > 0 {
				dst = append(dst, '.')
			}
			dst = append(dst, msg[off+1:off+1+c]...)
			off += 1 + c
		case 0xc0:
			if off+2 > len(msg) {
				return dst, 0, ErrDNSName
			}
			ptr := int(binary.BigEndian.Uint16(msg[off:]) & 0x3fff)
			if ptr >= off || jumps >= dnsMaxJumps {
				return dst, 0, ErrDNSName
			}
			jumps++
			if end < 0 {
				end = off + 2
			}
			off = ptr
		default: // 0x40, 0x80: extended label types, not in use
			return dst, 0, ErrDNSName
		}
	}
}

// DNSRecord is one resource record read by DNSReader.Next. It holds its
// decoded names itself (see Name and Target), so that reading allocates
// nothing.
type DNSRecord struct {
	Section int // 1 answer, 2 authority, 3 additional
	Type    uint16
	Class   uint16 // without mDNS's cache-flush bit
	TTL     uint32
	Data    []byte // the RDATA as it is in the message
	Port    uint16 // SRV

	nameLen, targetLen int
	nameBuf, targetBuf [dnsMaxName + 1]byte
}

// Name returns the record's owner name, dotted, without the final dot.
func (r *DNSRecord) Name() []byte { return r.nameBuf[:r.nameLen] }

// Target returns the decoded name a CNAME, PTR or SRV record points to, or
// nil.
func (r *DNSRecord) Target() []byte {
	if r.targetLen == 0 {
		return nil
	}
	return r.targetBuf[:r.targetLen]
}

// Addr returns the address of an A or AAAA record.
func (r *DNSRecord) Addr() (netip.Addr, bool) {
	switch {
	case r.Type == dnsTypeA && len(r.Data) == 4:
		return netip.AddrFrom4([4]byte(r.Data)), true
	case r.Type == dnsTypeAAAA && len(r.Data) == 16:
		return netip.AddrFrom16([16]byte(r.Data)), true
	}
	return netip.Addr{}, false
}

// DNSReader walks the records of one DNS message without allocating.
type DNSReader struct {
	Header DNSHeader
	msg    []byte
	off    int
	n, i   int // records in all, records read
	err    error
}

// Reset starts reading msg: it checks the header and skips the questions.
func (rd *DNSReader) Reset(msg []byte) error {
	*rd = DNSReader{msg: msg}
	h, err := ParseDNSHeader(msg)
	rd.Header = h
	if err != nil {
		rd.err = err
		return err
	}
	rd.off = dnsHeaderLen
	var buf [dnsMaxName + 1]byte
	for q := 0; q < int(h.QDCount); q++ {
		_, end, err := readName(msg, rd.off, buf[:0])
		if err != nil {
			rd.err = err
			return err
		}
		if end+4 > len(msg) {
			rd.err = ErrDNSShort
			return rd.err
		}
		rd.off = end + 4
	}
	rd.n = min(int(h.ANCount)+int(h.NSCount)+int(h.ARCount), dnsMaxRecords)
	return nil
}

// Next reads the next record into r, and reports false at the end of the
// message or on an error (see Err).
func (rd *DNSReader) Next(r *DNSRecord) bool {
	if rd.err != nil || rd.i >= rd.n {
		return false
	}
	name, end, err := readName(rd.msg, rd.off, r.nameBuf[:0])
	if err != nil {
		rd.err = err
		return false
	}
	if end+10 > len(rd.msg) {
		rd.err = ErrDNSShort
		return false
	}
	b := rd.msg[end:]
	rdlen := int(binary.BigEndian.Uint16(b[8:]))
	if end+10+rdlen > len(rd.msg) {
		rd.err = ErrDNSShort
		return false
	}
	h := rd.Header
	switch {
	case rd.i < int(h.ANCount):
		r.Section = 1
	case rd.i < int(h.ANCount)+int(h.NSCount):
		r.Section = 2
	default:
		r.Section = 3
	}
	r.nameLen = len(name)
	r.Type = binary.BigEndian.Uint16(b)
	r.Class = binary.BigEndian.Uint16(b[2:]) & 0x7fff
	r.TTL = binary.BigEndian.Uint32(b[4:])
	r.Data = rd.msg[end+10 : end+10+rdlen]
	r.targetLen, r.Port = 0, 0
	switch r.Type {
	case dnsTypeCNAME, dnsTypePTR:
		if t, _, err := readName(rd.msg[:end+10+rdlen], end+10, r.targetBuf[:0]); err == nil {
			r.targetLen = len(t)
		}
	case dnsTypeSRV:
		if rdlen >= 7 {
			r.Port = binary.BigEndian.Uint16(r.Data[4:])
			if t, _, err := readName(rd.msg[:end+10+rdlen], end+16, r.targetBuf[:0]); err == nil {
				r.targetLen = len(t)
			}
		}
	}
	rd.off = end + 10 + rdlen
	rd.i++
	return true
}

// Err returns what stopped the reading, nil at a clean end.
func (rd *DNSReader) Err() error { return rd.err }

// DNS reads DNS (UDP 53), mDNS (UDP 5353) or LLMNR (UDP 5355) messages;
// NewDNS, NewMDNS and NewLLMNR return one per protocol.
//
// From DNS responses it learns names of addresses (AttrDNSA, about the
// answered address) and marks the responder with dissect.AttrRole
// "dns-server". mDNS and LLMNR responders answer for themselves: an A or
// AAAA record holding the sender's address names the sender
// (dissect.AttrHostname, ".local" stripped); with mDNS, DNS-SD pointers and
// services give AttrMDNSServices, TXT records AttrMDNSTXT and, from their
// model keys (md, model, ty, usb_MDL, am), dissect.AttrModel.
//
// A bounded table of recent facts keeps repeated answers from being
// reported again within Refresh.
type DNS struct {
	// Refresh is how long a fact already reported stays unreported;
	// DefaultDiscoveryRefresh when zero.
	Refresh time.Duration
	name    string
	port    uint16
	recent  recentFacts
}

// NewDNS returns the unicast DNS dissector ("dns", UDP 53).
func NewDNS() *DNS { return &DNS{name: "dns", port: DNSPort, Refresh: DefaultDiscoveryRefresh} }

// NewMDNS returns the multicast DNS dissector ("mdns", UDP 5353).
func NewMDNS() *DNS { return &DNS{name: "mdns", port: MDNSPort, Refresh: DefaultDiscoveryRefresh} }

// NewLLMNR returns the LLMNR dissector ("llmnr", UDP 5355).
func NewLLMNR() *DNS { return &DNS{name: "llmnr", port: LLMNRPort, Refresh: DefaultDiscoveryRefresh} }

// Name returns "dns", "mdns" or "llmnr".
func (d *DNS) Name() string { return d.name }

// Wants asks for the protocol's UDP port.
func (d *DNS) Wants() dissect.Wants { return dissect.Wants{UDPPorts: []uint16{d.port}} }

// Probe reports whether p's payload is a DNS message whose header is
// sane and whose questions and first record read.
func (d *DNS) Probe(p *dissect.Packet) bool {
	if p == nil || p.Packet == nil || !p.HasIP() {
		return false
	}
	var rd DNSReader
	if rd.Reset(p.Payload) != nil {
		return false
	}
	var r DNSRecord
	return rd.Next(&r) || rd.Err() == nil
}

// Handle reads one message and emits what responses tell.
func (d *DNS) Handle(p *dissect.Packet, out dissect.Sink) {
	if p == nil || p.Packet == nil || !p.HasIP() {
		return
	}
	var rd DNSReader
	if rd.Reset(p.Payload) != nil || !rd.Header.Response() {
		return
	}
	switch d.port {
	case DNSPort:
		d.handleDNS(p, &rd, out)
	default:
		d.handleLocal(p, &rd, out)
	}
}

func (d *DNS) obs(p *dissect.Packet, ip netip.Addr, attr, v string) dissect.Observation {
	return dissect.Observation{Time: p.Time, IP: ip, Attr: attr, Value: v, Protocol: d.name}
}

// handleDNS reads a unicast DNS response.
func (d *DNS) handleDNS(p *dissect.Packet, rd *DNSReader, out dissect.Sink) {
	if p.SrcPort != DNSPort {
		return
	}
	now, refresh := p.Time.UnixNano(), refreshOr(d.Refresh)
	if d.recent.fresh(factKey(p.SrcIP, dissect.AttrRole, nil), now, refresh) {
		out.Observe(d.obs(p, p.SrcIP, dissect.AttrRole, "dns-server"))
	}
	if rd.Header.Flags&0xf != 0 { // rcode: no answers to learn from
		return
	}
	var r DNSRecord
	var buf [4 * maxText]byte
	for rd.Next(&r) && r.Section == 1 {
		a, ok := r.Addr()
		if !ok || r.Class != 1 || a.IsUnspecified() {
			continue
		}
		if !d.recent.fresh(factKey(a, AttrDNSA, r.Name()), now, refresh) {
			continue
		}
		if name := cleanText(buf[:0], r.Name(), maxText); len(name) > 0 {
			out.Observe(d.obs(p, a, AttrDNSA, string(name)))
		}
	}
}

// handleLocal reads an mDNS or LLMNR response, in which the sender answers
// for itself.
func (d *DNS) handleLocal(p *dissect.Packet, rd *DNSReader, out dissect.Sink) {
	if p.SrcPort != d.port {
		return
	}
	src := p.SrcIP
	now, refresh := p.Time.UnixNano(), refreshOr(d.Refresh)
	var (
		r        DNSRecord
		buf      [4 * maxText]byte
		services svcSet
		svcList  [dnsMaxServices * (svcMaxLen + 1)]byte
		txt      [maxText]byte
		ntxt     int
		model    []byte
		modelKey = 99
	)
	for rd.Next(&r) {
		switch r.Type {
		case dnsTypeA, dnsTypeAAAA:
			a, ok := r.Addr()
			if !ok || a != src {
				continue
			}
			host := r.Name()
			if d.port == MDNSPort {
				host = trimSuffixFold(host, dotLocal)
			}
			name := cleanText(buf[:0], host, maxText)
			if len(name) > 0 && d.recent.fresh(factKey(src, dissect.AttrHostname, name), now, refresh) {
				out.Observe(d.obs(p, src, dissect.AttrHostname, string(name)))
			}
		case dnsTypePTR:
			if d.port != MDNSPort {
				continue
			}
			if bytes.EqualFold(r.Name(), dnsSDServices) {
				services.add(serviceType(r.Target()))
			} else {
				services.add(serviceType(r.Name()))
			}
		case dnsTypeSRV:
			if d.port == MDNSPort {
				services.add(serviceType(r.Name()))
			}
		case dnsTypeTXT:
			if d.port != MDNSPort {
				continue
			}
			for b := r.Data; len(b) > 0; {
				n := int(b[0])
				if 1+n > len(b) {
					break
				}
				s := b[1 : 1+n]
				b = b[1+n:]
				if n == 0 {
					continue
				}
				if k, v, ok := modelTXT(s); ok && k < modelKey && len(v) > 0 {
					model, modelKey = v, k
				}
				if ntxt > 0 && ntxt < len(txt) {
					txt[ntxt] = ','
					ntxt++
				}
				ntxt += copy(txt[ntxt:], s)
			}
		}
	}
	if model != nil {
		if v := cleanText(buf[:0], model, maxText); len(v) > 0 && d.recent.fresh(factKey(src, dissect.AttrModel, v), now, refresh) {
			out.Observe(d.obs(p, src, dissect.AttrModel, string(v)))
		}
	}
	if ntxt > 0 {
		if v := cleanText(buf[:0], txt[:ntxt], maxText); len(v) > 0 && d.recent.fresh(factKey(src, AttrMDNSTXT, v), now, refresh) {
			out.Observe(d.obs(p, src, AttrMDNSTXT, string(v)))
		}
	}
	if services.count > 0 {
		if v := cleanText(buf[:0], services.appendSorted(svcList[:0]), maxText); len(v) > 0 && d.recent.fresh(factKey(src, AttrMDNSServices, v), now, refresh) {
			out.Observe(d.obs(p, src, AttrMDNSServices, string(v)))
		}
	}
}

// serviceType returns the DNS-SD service type ("_ipp._tcp") of a name of
// the form [instance.]_service._proto.domain, or nil.
func serviceType(name []byte) []byte {
	for _, proto := range [...][]byte{dnsSDTCP, dnsSDUDP} {
		i := bytes.Index(name, proto)
		if i <= 0 {
			continue
		}
		j := bytes.LastIndexByte(name[:i], '.') + 1 // start of the _service label
		if name[j] != '_' || bytes.HasPrefix(name[j:], dnsSDServices[:17]) {
			return nil
		}
		return name[j : i+len(proto)-1]
	}
	return nil
}

// Names and parts of names of DNS service discovery (RFC 6763).
var (
	dnsSDServices = []byte("_services._dns-sd._udp.local")
	dnsSDTCP      = []byte("._tcp.")
	dnsSDUDP      = []byte("._udp.")
	dotLocal      = []byte(".local")
	modelKeys     = [...][]byte{[]byte("md="), []byte("model="), []byte("ty="), []byte("usb_MDL="), []byte("am=")}
)

// modelTXT reports whether a TXT string is a model key, and its rank (lower
// is preferred) and value.
func modelTXT(s []byte) (int, []byte, bool) {
	for i, k := range modelKeys {
		if len(s) >= len(k) && bytes.EqualFold(s[:len(k)], k) {
			return i, s[len(k):], true
		}
	}
	return 0, nil, false
}

// trimSuffixFold removes suffix from b, ignoring case.
func trimSuffixFold(b, suffix []byte) []byte {
	if len(b) > len(suffix) && bytes.EqualFold(b[len(b)-len(suffix):], suffix) {
		return b[:len(b)-len(suffix)]
	}
	return b
}

// factKey digests an address, an attribute and a value.
func factKey(a netip.Addr, attr string, v []byte) uint64 {
	b16 := a.As16()
	h := digest(b16[:])
	for i := 0; i < len(attr); i++ {
		h ^= uint64(attr[i])
		h *= 1099511628211
	}
	h ^= 0xff
	h *= 1099511628211
	for _, c := range v {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// recentFacts remembers when facts (by digest) were last reported, in a
// bounded table.
type recentFacts struct {
	mu sync.Mutex
	m  map[uint64]int64
}

// maxRecentFacts bounds recentFacts.
const maxRecentFacts = 8192

// fresh reports whether the fact k should be reported at now, and notes it.
func (f *recentFacts) fresh(k uint64, now, refresh int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = make(map[uint64]int64)
	}
	if t, ok := f.m[k]; ok && since(now, t) < refresh {
		return false
	}
	if len(f.m) >= maxRecentFacts {
		for k2, t := range f.m {
			if since(now, t) >= refresh || len(f.m) > maxRecentFacts*3/4 {
				delete(f.m, k2)
			}
		}
	}
	f.m[k] = now
	return true
}

// svcMaxLen bounds a service type kept in a svcSet.
const svcMaxLen = 63

// svcSet is a bounded set of service types, held in place.
type svcSet struct {
	buf   [dnsMaxServices][svcMaxLen]byte
	n     [dnsMaxServices]uint8
	count int
}

// add adds svc unless it is nil, too long, already held, or the set is full.
func (s *svcSet) add(svc []byte) {
	if len(svc) == 0 || len(svc) > svcMaxLen || s.count >= dnsMaxServices {
		return
	}
	for i := 0; i < s.count; i++ {
		if bytes.Equal(s.buf[i][:s.n[i]], svc) {
			return
		}
	}
	s.n[s.count] = uint8(copy(s.buf[s.count][:], svc))
	s.count++
}

// appendSorted appends the set's members to dst, sorted, comma-separated.
func (s *svcSet) appendSorted(dst []byte) []byte {
	var idx [dnsMaxServices]int
	for i := range s.count {
		idx[i] = i
	}
	for i := 1; i < s.count; i++ { // insertion sort of at most 16
		for j := i; j > 0 && bytes.Compare(s.buf[idx[j]][:s.n[idx[j]]], s.buf[idx[j-1]][:s.n[idx[j-1]]]) < 0; j-- {
			idx[j], idx[j-1] = idx[j-1], idx[j]
		}
	}
	for k := 0; k < s.count; k++ {
		if k > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, s.buf[idx[k]][:s.n[idx[k]]]...)
	}
	return dst
}

func init() {
	register(50, "dns", func() dissect.Dissector { return NewDNS() })
	register(51, "mdns", func() dissect.Dissector { return NewMDNS() })
	register(52, "llmnr", func() dissect.Dissector { return NewLLMNR() })
}
