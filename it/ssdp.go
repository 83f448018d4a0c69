package it

import (
	"bytes"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
)

// SSDPPort is the UDP port of the Simple Service Discovery Protocol.
const SSDPPort = 1900

// Attributes the SSDP dissector emits.
const (
	AttrSSDPServer       = "ssdp.server"        // SERVER header: "OS/version UPnP/1.0 product/version"
	AttrSSDPLocation     = "ssdp.location"      // LOCATION: URL of the UPnP device description
	AttrSSDPUUID         = "ssdp.uuid"          // device UUIDs of the USNs (root and embedded devices), space-separated
	AttrSSDPDeviceTypes  = "ssdp.device_types"  // device types announced (NT/ST), space-separated
	AttrSSDPServiceTypes = "ssdp.service_types" // service types announced, space-separated
	AttrSSDPSearch       = "ssdp.search"        // search targets a client looks for (M-SEARCH ST), space-separated
	AttrSSDPUserAgent    = "ssdp.user_agent"    // USER-AGENT of an M-SEARCH
)

const (
	// maxSSDPMessage bounds the bytes of a message read.
	maxSSDPMessage = 4096
	// maxSSDPTypes bounds the types (or UUIDs) kept per host and list.
	maxSSDPTypes = 8
	// maxSSDPHosts bounds the hosts whose type lists SSDP keeps.
	maxSSDPHosts = 2048
)

// SSDPMessage is an SSDP message (UPnP Device Architecture 2.0 section 1)
// as far as the dissector reads it; slices point into the payload.
type SSDPMessage struct {
	Kind      byte // 'N' NOTIFY, 'M' M-SEARCH, 'R' response
	Server    []byte
	Location  []byte
	USN       []byte
	NT        []byte // NT of a NOTIFY, ST of a response or M-SEARCH
	NTS       []byte
	UserAgent []byte
	MAN       []byte
}

// ParseSSDP reads an SSDP message: a NOTIFY or M-SEARCH request or a
// search response in HTTP over UDP form. It reports false when the start
// line is none of these. ParseSSDP allocates nothing.
func ParseSSDP(b []byte, m *SSDPMessage) bool {
	*m = SSDPMessage{}
	if len(b) > maxSSDPMessage {
		b = b[:maxSSDPMessage]
	}
	line, rest := cutLine(b)
	if m.Kind = ssdpStartLine(line); m.Kind == 0 {
		return false
	}
	for n := 0; len(rest) > 0 && n < 64; n++ {
		line, rest = cutLine(rest)
		if len(line) == 0 {
			break
		}
		i := bytes.IndexByte(line, ':')
		if i <= 0 {
			continue
		}
		name, v := line[:i], bytes.TrimSpace(line[i+1:])
		switch {
		case eqFold(name, "SERVER"):
			m.Server = v
		case eqFold(name, "LOCATION"):
			m.Location = v
		case eqFold(name, "USN"):
			m.USN = v
		case eqFold(name, "NT"), eqFold(name, "ST"):
			m.NT = v
		case eqFold(name, "NTS"):
			m.NTS = v
		case eqFold(name, "USER-AGENT"):
			m.UserAgent = v
		case eqFold(name, "MAN"):
			m.MAN = v
		}
	}
	return true
}

// ssdpStartLine says which SSDP message a start line opens: 'N' NOTIFY,
// 'M' M-SEARCH, 'R' a 200 response; 0 for anything else.
func ssdpStartLine(line []byte) byte {
	switch {
	case bytes.HasPrefix(line, []byte("NOTIFY * HTTP/1.")):
		return 'N'
	case bytes.HasPrefix(line, []byte("M-SEARCH * HTTP/1.")):
		return 'M'
	case bytes.HasPrefix(line, []byte("HTTP/1.")) && len(line) >= 12 && string(line[8:12]) == " 200" && (len(line) == 12 || line[12] == ' '):
		return 'R'
	}
	return 0
}

// cutLine splits b after its first line (LF or CRLF ended).
func cutLine(b []byte) (line, rest []byte) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return b, nil
	}
	line, rest = b[:i], b[i+1:]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

// eqFold reports whether b equals the ASCII upper-case s, ignoring case.
func eqFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// ssdpUUID returns the UUID of a USN ("uuid:UUID" or "uuid:UUID::type").
func ssdpUUID(usn []byte) []byte {
	if len(usn) < 5 || !eqFold(usn[:5], "UUID:") {
		return nil
	}
	u := usn[5:]
	if i := bytes.Index(u, []byte("::")); i >= 0 {
		u = u[:i]
	}
	return u
}

// ssdpTypeKind says whether a NT or ST value is a device type ('d'), a
// service type ('s') or neither.
func ssdpTypeKind(nt []byte) byte {
	if len(nt) < 4 || !eqFold(nt[:4], "URN:") {
		return 0
	}
	switch {
	case bytes.Contains(nt, []byte(":device:")):
		return 'd'
	case bytes.Contains(nt, []byte(":service:")):
		return 's'
	}
	return 0
}

// SSDP reads SSDP on UDP port 1900 (UPnP Device Architecture 2.0 section
// 1). From a device's NOTIFY (ssdp:alive) or search response it learns
// the SERVER header (OS and UPnP stack), the LOCATION of the device
// description, the device UUID of the USN, and the device and service
// types announced (gathered per device, as each message names one); from
// an M-SEARCH what the client looks for and its USER-AGENT.
//
// SSDP keeps, for a bounded number of hosts, the types each announced,
// and repeats nothing it said within DefaultDiscoveryRefresh.
type SSDP struct {
	seen  advertisers
	mu    sync.Mutex
	hosts map[netip.Addr]*ssdpHost
}

// ssdpHost is what SSDP gathered about one host.
type ssdpHost struct {
	devices, services, searches, uuids []string
}

// NewSSDP returns an SSDP dissector.
func NewSSDP() *SSDP { return &SSDP{} }

// Name returns "ssdp".
func (*SSDP) Name() string { return "ssdp" }

// Wants asks for UDP port 1900, and to be tried on other UDP flows:
// devices answer an M-SEARCH from whatever port they like.
func (*SSDP) Wants() dissect.Wants {
	return dissect.Wants{UDPPorts: []uint16{SSDPPort}, Heuristic: true}
}

// Probe reports whether p is a UDP datagram whose payload opens with an
// SSDP start line; away from port 1900, a response must also carry the
// ST or USN header of a search response.
func (*SSDP) Probe(p *dissect.Packet) bool {
	if p == nil || p.Packet == nil || p.IPProto != capture.ProtoUDP {
		return false
	}
	b := p.Payload
	if len(b) > maxSSDPMessage {
		b = b[:maxSSDPMessage]
	}
	line, _ := cutLine(b)
	switch ssdpStartLine(line) {
	case 0:
		return false
	case 'R':
		if p.SrcPort == SSDPPort || p.DstPort == SSDPPort {
			return true
		}
		var m SSDPMessage
		return ParseSSDP(b, &m) && (m.NT != nil || m.USN != nil)
	}
	return true
}

// Handle reads one SSDP message.
func (d *SSDP) Handle(p *dissect.Packet, out dissect.Sink) {
	if p == nil || p.Packet == nil || !p.SrcIP.IsValid() || p.SrcIP.IsUnspecified() || p.SrcIP.IsMulticast() {
		return
	}
	var m SSDPMessage
	if !ParseSSDP(p.Payload, &m) {
		return
	}
	ip := p.SrcIP
	var buf [4 * maxText]byte
	emit := func(attr string, v []byte) {
		v = cleanText(buf[:0], v, maxText)
		if len(v) == 0 {
			return
		}
		if !d.seen.fresh(capture.MAC{}, factDigest(ip, attr, v), p.Time.UnixNano(), int64(DefaultDiscoveryRefresh)) {
			return
		}
		out.Observe(dissect.Observation{Time: p.Time, IP: ip, Attr: attr, Value: string(v), Protocol: "ssdp"})
	}
	if m.Kind == 'M' {
		if !bytes.Contains(m.MAN, []byte("ssdp:discover")) {
			return
		}
		emit(AttrSSDPUserAgent, m.UserAgent)
		if !bytes.HasPrefix(m.NT, []byte("uuid:")) { // a known device, not a kind of one
			d.addType(p, ip, 'q', m.NT, out)
		}
		return
	}
	if m.Kind == 'N' && !bytes.Equal(m.NTS, []byte("ssdp:alive")) && !bytes.Equal(m.NTS, []byte("ssdp:update")) {
		return // ssdp:byebye, or no NTS: not an announcement
	}
	emit(AttrSSDPServer, m.Server)
	emit(AttrSSDPLocation, m.Location)
	d.addType(p, ip, 'u', ssdpUUID(m.USN), out)
	d.addType(p, ip, ssdpTypeKind(m.NT), m.NT, out)
}

// factDigest hashes one fact (attribute and value) about ip.
func factDigest(ip netip.Addr, attr string, v []byte) uint64 {
	a := ip.As16()
	h := digest(a[:])
	for i := range len(attr) {
		h ^= uint64(attr[i])
		h *= 1099511628211
	}
	for _, c := range v {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// addType adds a type of kind ('d' device, 's' service, 'q' searched, 'u'
// device UUID) to
// the host's list and emits the list when it grew.
func (d *SSDP) addType(p *dissect.Packet, ip netip.Addr, kind byte, t []byte, out dissect.Sink) {
	if kind == 0 || len(t) == 0 || len(t) > maxText {
		return
	}
	var buf [maxText]byte
	t = cleanText(buf[:0], t, maxText)
	if len(t) == 0 || bytes.IndexByte(t, ' ') >= 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.hosts == nil {
		d.hosts = make(map[netip.Addr]*ssdpHost)
	}
	h := d.hosts[ip]
	if h == nil {
		if len(d.hosts) >= maxSSDPHosts {
			for k := range d.hosts { // drop arbitrary hosts down to 3/4
				if len(d.hosts) <= maxSSDPHosts*3/4 {
					break
				}
				delete(d.hosts, k)
			}
		}
		h = &ssdpHost{}
		d.hosts[ip] = h
	}
	list, attr := &h.devices, AttrSSDPDeviceTypes
	switch kind {
	case 's':
		list, attr = &h.services, AttrSSDPServiceTypes
	case 'q':
		list, attr = &h.searches, AttrSSDPSearch
	case 'u':
		list, attr = &h.uuids, AttrSSDPUUID
	}
	for _, s := range *list {
		if s == string(t) {
			return
		}
	}
	if len(*list) >= maxSSDPTypes {
		return
	}
	*list = append(*list, string(t))
	slices.Sort(*list)
	out.Observe(dissect.Observation{Time: p.Time, IP: ip, Attr: attr, Value: strings.Join(*list, " "), Protocol: "ssdp"})
}

func init() { register(62, "ssdp", func() dissect.Dissector { return NewSSDP() }) }
