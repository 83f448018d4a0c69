package it

import (
	"encoding/binary"
	"net/netip"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
)

// NetBIOS over TCP/IP UDP ports (RFC 1002).
const (
	NBNSPort  = 137 // name service
	NBDGMPort = 138 // datagram service
)

// NetBIOS name suffixes (the 16th byte of a name) that say what a name is.
const (
	NBSuffixWorkstation = 0x00 // unique: the computer's name; group: its workgroup or domain
	NBSuffixMessenger   = 0x03 // unique: messenger service, named for the computer or a logged-on user
	NBSuffixDomainMB    = 0x1B // unique: domain master browser (the PDC) of the domain
	NBSuffixDomainDCs   = 0x1C // group: the domain controllers of the domain
	NBSuffixMasterBrwsr = 0x1D // unique: the local master browser of the workgroup
	NBSuffixBrowserElec = 0x1E // group: browser election service of the workgroup
	NBSuffixFileServer  = 0x20 // unique: the computer's file server service
)

// Attributes and roles the NetBIOS name service dissector emits.
const (
	// AttrNBNSNames lists a node's names from a node status reply, as
	// "NAME<xx>" with a "g" after the suffix for group names.
	AttrNBNSNames = "nbns.names"

	RoleDomainController = "domain-controller"     // <1C> group member, or browser server type
	RoleMasterBrowser    = "master-browser"        // <1D> owner, LocalMasterAnnouncement sender
	RoleDomainMaster     = "domain-master-browser" // <1B> owner
	RoleWINSServer       = "wins-server"           // answered a query for another node's name
)

// NBNS message opcodes (RFC 1002 section 4.2.1.1).
const (
	nbnsQuery        = 0
	nbnsRegistration = 5
	nbnsRelease      = 6
	nbnsWACK         = 7
	nbnsRefresh      = 8
	nbnsRefreshAlt   = 9
	nbnsMultiHomed   = 15
)

// NBNS resource record types.
const (
	nbnsTypeNB     = 0x20
	nbnsTypeNBSTAT = 0x21
)

// maxNBAddrs bounds the addresses read from one NB record.
const maxNBAddrs = 8

// NBName is a NetBIOS name: 15 characters padded with spaces, and the
// suffix byte that says which service the name stands for.
type NBName struct {
	Raw    [16]byte
	Group  bool // from the NB flags of the record or node status entry
	Suffix byte
}

// Text returns the name without its padding and suffix, cleaned of
// control characters; appended to dst.
func (n *NBName) Text(dst []byte) []byte {
	end := 15
	for end > 0 && (n.Raw[end-1] == ' ' || n.Raw[end-1] == 0) {
		end--
	}
	return cleanText(dst, n.Raw[:end], 15)
}

// decodeNBName reads the first-level encoded NetBIOS name at msg[off:]
// (RFC 1001 section 14.1: 32 bytes 'A'..'P', each pair one byte) and any
// scope labels after it, following at most one compression pointer
// (RFC 1002 section 4.1, as in DNS). It returns the offset after the name
// in msg.
func decodeNBName(msg []byte, off int, pointers bool) (n NBName, next int, ok bool) {
	if off < 0 || off >= len(msg) {
		return n, 0, false
	}
	next = -1
	for hops := 0; ; hops++ {
		if off >= len(msg) {
			return n, 0, false
		}
		l := int(msg[off])
		if l&0xc0 == 0xc0 {
			if !pointers || hops > 0 || off+1 >= len(msg) {
				return n, 0, false
			}
			next = off + 2
			off = int(binary.BigEndian.Uint16(msg[off:]) & 0x3fff)
			continue
		}
		if l != 32 || off+1+32 > len(msg) {
			return n, 0, false
		}
		enc := msg[off+1 : off+33]
		for i := range 16 {
			hi, lo := enc[2*i]-'A', enc[2*i+1]-'A'
			if hi > 15 || lo > 15 {
				return n, 0, false
			}
			n.Raw[i] = hi<<4 | lo
		}
		n.Suffix = n.Raw[15]
		off += 33
		// Scope labels, then the root label.
		for labels := 0; ; labels++ {
			if off >= len(msg) || labels > 32 {
				return n, 0, false
			}
			sl := int(msg[off])
			if sl == 0 {
				off++
				break
			}
			if sl&0xc0 != 0 || off+1+sl > len(msg) {
				return n, 0, false
			}
			off += 1 + sl
		}
		if next < 0 {
			next = off
		}
		return n, next, true
	}
}

// nbnsHeader checks the fixed header of a name service message and
// returns its flags and counts.
func nbnsHeader(b []byte) (response bool, opcode, rcode uint8, qd, an, ns, ar int, ok bool) {
	if len(b) < 12 {
		return
	}
	response = b[2]&0x80 != 0
	opcode = (b[2] >> 3) & 0x0f
	rcode = b[3] & 0x0f
	qd = int(binary.BigEndian.Uint16(b[4:]))
	an = int(binary.BigEndian.Uint16(b[6:]))
	ns = int(binary.BigEndian.Uint16(b[8:]))
	ar = int(binary.BigEndian.Uint16(b[10:]))
	switch opcode {
	case nbnsQuery, nbnsRegistration, nbnsRelease, nbnsWACK, nbnsRefresh, nbnsRefreshAlt, nbnsMultiHomed:
	default:
		return
	}
	if qd > 1 || an > 1 || ns > 1 || ar > 1 || qd+an == 0 {
		return // every NBNS packet type of RFC 1002 4.2 has at most one of each
	}
	if b[3]&0x60 != 0 {
		return // reserved bits between RA and B, and the reserved nibble bit
	}
	return response, opcode, rcode, qd, an, ns, ar, true
}

// nbnsRR is a resource record of a name service message.
type nbnsRR struct {
	Name  NBName
	Type  uint16
	RData []byte
}

// readNBNSRR reads the resource record at b[off:].
func readNBNSRR(b []byte, off int) (rr nbnsRR, next int, ok bool) {
	rr.Name, off, ok = decodeNBName(b, off, true)
	if !ok || off+10 > len(b) {
		return rr, 0, false
	}
	rr.Type = binary.BigEndian.Uint16(b[off:])
	if binary.BigEndian.Uint16(b[off+2:]) != 1 { // class IN
		return rr, 0, false
	}
	l := int(binary.BigEndian.Uint16(b[off+8:]))
	off += 10
	if off+l > len(b) {
		return rr, 0, false
	}
	rr.RData = b[off : off+l]
	return rr, off + l, true
}

// NBNS reads the NetBIOS name service (RFC 1001, 1002) on UDP port 137.
// From name registrations and refreshes it learns the names a node claims
// for the address it registers; from positive query and registration
// responses the names bound to the addresses answered; from node status
// (NBSTAT) replies every name of the node and its MAC (the unit id).
//
// A name's suffix says what it means: <00> and <20> unique names are the
// computer's name (dissect.AttrHostname), <00> and <1E> group names its
// workgroup or domain (dissect.AttrDomain); owning <1D> makes a node the
// workgroup's master browser, <1B> the domain master browser and
// membership of <1C> a domain controller (dissect.AttrRole).
//
// NBNS repeats nothing it said within DefaultDiscoveryRefresh.
type NBNS struct {
	seen advertisers
}

// NewNBNS returns a NetBIOS name service dissector.
func NewNBNS() *NBNS { return &NBNS{} }

// Name returns "nbns".
func (*NBNS) Name() string { return "nbns" }

// Wants asks for UDP port 137.
func (*NBNS) Wants() dissect.Wants { return dissect.Wants{UDPPorts: []uint16{NBNSPort}} }

// Probe reports whether p's payload has a name service header whose
// first name is a well-formed encoded NetBIOS name.
func (*NBNS) Probe(p *dissect.Packet) bool {
	if p == nil || p.Packet == nil {
		return false
	}
	_, _, _, _, _, _, _, ok := nbnsHeader(p.Payload)
	if !ok {
		return false
	}
	_, _, ok = decodeNBName(p.Payload, 12, false)
	return ok
}

// Handle reads one name service message.
func (d *NBNS) Handle(p *dissect.Packet, out dissect.Sink) {
	if p == nil || p.Packet == nil {
		return
	}
	b := p.Payload
	resp, opcode, rcode, qd, an, _, ar, ok := nbnsHeader(b)
	if !ok {
		return
	}
	off := 12
	if qd == 1 {
		if _, off, ok = decodeNBName(b, off, true); !ok || off+4 > len(b) {
			return
		}
		off += 4
	}
	switch {
	case !resp && ar == 1 && an == 0 && (opcode == nbnsRegistration || opcode == nbnsRefresh || opcode == nbnsRefreshAlt || opcode == nbnsMultiHomed):
		// The additional record holds the name and the address claimed.
		rr, _, ok := readNBNSRR(b, off)
		if ok && rr.Type == nbnsTypeNB {
			d.nb(p, &rr, false, out)
		}
	case resp && rcode == 0 && an == 1 && (opcode == nbnsQuery || opcode == nbnsRegistration):
		rr, _, ok := readNBNSRR(b, off)
		if !ok {
			return
		}
		switch rr.Type {
		case nbnsTypeNB:
			d.nb(p, &rr, opcode == nbnsQuery, out)
		case nbnsTypeNBSTAT:
			if opcode == nbnsQuery {
				d.nbstat(p, rr.RData, out)
			}
		}
	}
}

// nb emits what an NB record says: the name stands for each address in
// its data. answered is set for query responses, where a sender answering
// for another address is a name server.
func (d *NBNS) nb(p *dissect.Packet, rr *nbnsRR, answered bool, out dissect.Sink) {
	rd := rr.RData
	if len(rd) > 6*maxNBAddrs {
		rd = rd[:6*maxNBAddrs]
	}
	self := false // the sender is among the addresses (multi-homed nodes list all theirs)
	for i := 0; i+6 <= len(rd); i += 6 {
		self = self || netip.AddrFrom4([4]byte(rd[i+2:i+6])) == p.SrcIP
	}
	for i := 0; i+6 <= len(rd); i += 6 {
		flags := binary.BigEndian.Uint16(rd[i:])
		ip := netip.AddrFrom4([4]byte(rd[i+2 : i+6]))
		if !unicastIPv4(ip.As4()) {
			continue
		}
		n := rr.Name
		n.Group = flags&0x8000 != 0
		if answered && !self && p.SrcIP.Is4() && unicastIPv4(p.SrcIP.As4()) && !n.Group {
			// A node answers for its own names only: this is a NetBIOS
			// name server (WINS).
			if d.seen.fresh(capture.MAC{}, nbDigest(p.SrcIP, []byte(RoleWINSServer), 0, false), p.Time.UnixNano(), int64(DefaultDiscoveryRefresh)) {
				out.Observe(dissect.Observation{Time: p.Time, IP: p.SrcIP, Attr: dissect.AttrRole, Value: RoleWINSServer, Protocol: "nbns"})
			}
		}
		d.name(p, ip, &n, out)
	}
}

// name emits the meaning of one name owned by ip.
func (d *NBNS) name(p *dissect.Packet, ip netip.Addr, n *NBName, out dissect.Sink) {
	var buf [64]byte
	t := n.Text(buf[:0])
	if len(t) == 0 || t[0] == '*' {
		return
	}
	attr, role := nbNameMeaning(n)
	if attr == "" && role == "" {
		return
	}
	if !d.seen.fresh(capture.MAC{}, nbDigest(ip, t, n.Suffix, n.Group), p.Time.UnixNano(), int64(DefaultDiscoveryRefresh)) {
		return
	}
	if attr != "" {
		out.Observe(dissect.Observation{Time: p.Time, IP: ip, Attr: attr, Value: string(t), Protocol: "nbns"})
	}
	if role != "" {
		out.Observe(dissect.Observation{Time: p.Time, IP: ip, Attr: dissect.AttrRole, Value: role, Protocol: "nbns"})
	}
}

// nbNameMeaning says what owning name n tells about its owner.
func nbNameMeaning(n *NBName) (attr, role string) {
	switch {
	case n.Suffix == NBSuffixWorkstation && !n.Group, n.Suffix == NBSuffixFileServer && !n.Group:
		return dissect.AttrHostname, ""
	case n.Suffix == NBSuffixWorkstation && n.Group, n.Suffix == NBSuffixBrowserElec && n.Group:
		return dissect.AttrDomain, ""
	case n.Suffix == NBSuffixMasterBrwsr && !n.Group:
		return dissect.AttrDomain, RoleMasterBrowser
	case n.Suffix == NBSuffixDomainMB && !n.Group:
		return dissect.AttrDomain, RoleDomainMaster
	case n.Suffix == NBSuffixDomainDCs && n.Group:
		return dissect.AttrDomain, RoleDomainController
	}
	return "", ""
}

// nbstat emits a node status reply (RFC 1002 section 4.2.18): the
// responder's names and its unit id.
func (d *NBNS) nbstat(p *dissect.Packet, rd []byte, out dissect.Sink) {
	ip := p.SrcIP
	if !ip.Is4() || !unicastIPv4(ip.As4()) || len(rd) < 1 {
		return
	}
	num := int(rd[0])
	if 1+18*num > len(rd) {
		return
	}
	var mac capture.MAC
	if st := rd[1+18*num:]; len(st) >= 6 {
		copy(mac[:], st[:6])
	}
	sum := nbDigest(ip, rd, 0, false)
	if !d.seen.fresh(mac, sum, p.Time.UnixNano(), int64(DefaultDiscoveryRefresh)) {
		return
	}
	emit := func(attr, v string, m capture.MAC) {
		out.Observe(dissect.Observation{Time: p.Time, IP: ip, MAC: m, Attr: attr, Value: v, Protocol: "nbns"})
	}
	if !mac.IsZero() && !mac.IsMulticast() {
		emit(dissect.AttrIP, ip.String(), mac)
	}
	var list [18 * 64]byte
	names := list[:0]
	var host, domain string
	roles := 0
	for i := range num {
		e := rd[1+18*i : 1+18*i+18]
		var n NBName
		copy(n.Raw[:], e[:16])
		n.Suffix = e[15]
		n.Group = binary.BigEndian.Uint16(e[16:])&0x8000 != 0
		var buf [64]byte
		t := n.Text(buf[:0])
		if len(t) == 0 {
			continue
		}
		if len(names)+len(t)+6 <= len(list) && t[0] >= 0x20 {
			if len(names) > 0 {
				names = append(names, ',')
			}
			names = append(names, t...)
			names = append(names, '<')
			names = appendHex2(names, n.Suffix)
			names = append(names, '>')
			if n.Group {
				names = append(names, 'g')
			}
		}
		attr, role := nbNameMeaning(&n)
		switch {
		case attr == dissect.AttrHostname && host == "":
			host = string(t)
		case attr == dissect.AttrDomain && domain == "":
			domain = string(t)
		}
		if role != "" && roles < 3 {
			roles++
			emit(dissect.AttrRole, role, capture.MAC{})
		}
	}
	if host != "" {
		emit(dissect.AttrHostname, host, capture.MAC{})
	}
	if domain != "" {
		emit(dissect.AttrDomain, domain, capture.MAC{})
	}
	if len(names) > 0 {
		emit(AttrNBNSNames, string(names), capture.MAC{})
	}
}

// appendHex2 appends c as two uppercase hex digits.
func appendHex2(dst []byte, c byte) []byte {
	const hex = "0123456789ABCDEF"
	return append(dst, hex[c>>4], hex[c&15])
}

// nbDigest hashes what one fact is about: an address and the bytes that
// identify the fact.
func nbDigest(ip netip.Addr, b []byte, suffix byte, group bool) uint64 {
	a := ip.As16()
	h := digest(a[:])
	h ^= digest(b) * 31
	h ^= uint64(suffix) << 56
	if group {
		h ^= 1 << 55
	}
	return h
}

func init() { register(60, "nbns", func() dissect.Dissector { return NewNBNS() }) }
