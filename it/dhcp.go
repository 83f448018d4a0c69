package it

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
)

// DHCP (BOOTP) UDP ports.
const (
	DHCPServerPort = 67
	DHCPClientPort = 68
)

// DHCP message types (option 53, RFC 2132 section 9.6).
const (
	DHCPDiscover = 1
	DHCPOffer    = 2
	DHCPRequest  = 3
	DHCPDecline  = 4
	DHCPAck      = 5
	DHCPNak      = 6
	DHCPRelease  = 7
	DHCPInform   = 8
)

// Attributes the DHCP dissector emits besides the dissect.Attr* ones.
const (
	AttrDHCPMsgType     = "dhcp.msg_type"     // client's message type: "discover", "request", "inform", ...
	AttrDHCPVendorClass = "dhcp.vendor_class" // option 60
	AttrDHCPClientID    = "dhcp.client_id"    // option 61, lowercase hex
	AttrDHCPParams      = "dhcp.params"       // option 55 as "1,3,6,15": the DHCP fingerprint
	AttrDHCPMaxSize     = "dhcp.max_size"     // option 57, decimal
	AttrDHCPUserClass   = "dhcp.user_class"   // option 77, instances joined by ","
	AttrDHCPLease       = "dhcp.lease"        // option 51 in an ACK: seconds, or "infinite"
	AttrDHCPLeaseEnd    = "dhcp.lease_end"    // packet time + lease, RFC 3339
	AttrDHCPRouter      = "dhcp.router"       // option 3 in an ACK, comma-separated
	AttrDHCPDNS         = "dhcp.dns"          // option 6 in an ACK, comma-separated
	AttrDHCPDomain      = "dhcp.domain"       // option 15 in an ACK
)

// Roles the DHCP dissector gives addresses (dissect.AttrRole values).
const (
	RoleDHCPServer = "dhcp-server" // option 54, server identifier
	RoleDHCPRelay  = "dhcp-relay"  // giaddr
	RoleRouter     = "router"      // option 3 of an ACK
	RoleDNSServer  = "dns-server"  // option 6 of an ACK
)

// Errors of ParseDHCP.
var (
	ErrDHCPShort  = errors.New("dhcp: message shorter than the 240 bytes of header and magic cookie")
	ErrDHCPOp     = errors.New("dhcp: op is neither BOOTREQUEST (1) nor BOOTREPLY (2)")
	ErrDHCPHType  = errors.New("dhcp: hardware type 0 or above 40, or hardware address longer than 16 bytes")
	ErrDHCPCookie = errors.New("dhcp: magic cookie is not 99.130.83.99")
)

const (
	dhcpHeaderLen = 236 // fixed BOOTP header, before the magic cookie
	dhcpMagic     = 0x63825363
	dhcpSnameOff  = 44
	dhcpFileOff   = 108
	// maxText bounds every text value emitted (a DNS name's length).
	maxText = 255
)

// DHCPMessage is a DHCPv4 (or BOOTP with magic cookie) message as far as
// the dissector reads it. Its byte slices point into the parsed buffer.
// For options that occur more than once, the first occurrence is kept
// (long options split per RFC 3396 are not concatenated).
type DHCPMessage struct {
	Op, HType, HLen, Hops          uint8
	XID                            uint32
	CIAddr, YIAddr, SIAddr, GIAddr netip.Addr
	CHAddr                         []byte // the first HLen bytes of chaddr

	Type        uint8      // option 53; 0 when absent (BOOTP)
	Hostname    []byte     // option 12
	FQDN        []byte     // option 81, whole option data (flags, rcodes, name)
	VendorClass []byte     // option 60
	ClientID    []byte     // option 61
	Params      []byte     // option 55
	MaxSize     uint16     // option 57; 0 when absent
	UserClass   []byte     // option 77
	RequestedIP netip.Addr // option 50
	ServerID    netip.Addr // option 54
	Lease       uint32     // option 51 in seconds; valid when HasLease
	HasLease    bool
	Routers     []byte // option 3, 4 bytes per address
	DNS         []byte // option 6, 4 bytes per address
	Domain      []byte // option 15
	Overload    uint8  // option 52
	// Truncated is set when an option ran past the end of its field.
	Truncated bool
}

// MAC returns chaddr as a MAC when the hardware is Ethernet (or IEEE 802)
// with 6-byte addresses, and ok false otherwise.
func (m *DHCPMessage) MAC() (mac capture.MAC, ok bool) {
	if (m.HType != 1 && m.HType != 6) || len(m.CHAddr) != 6 {
		return mac, false
	}
	copy(mac[:], m.CHAddr)
	return mac, true
}

// ParseDHCP reads b, a UDP payload, into m. It reports an error only when
// the fixed header is not DHCP's; options that run past the end are
// dropped and flagged with m.Truncated. ParseDHCP allocates nothing.
func ParseDHCP(b []byte, m *DHCPMessage) error {
	*m = DHCPMessage{}
	if err := checkDHCP(b); err != nil {
		return err
	}
	m.Op, m.HType, m.HLen, m.Hops = b[0], b[1], b[2], b[3]
	m.XID = binary.BigEndian.Uint32(b[4:8])
	m.CIAddr = netip.AddrFrom4([4]byte(b[12:16]))
	m.YIAddr = netip.AddrFrom4([4]byte(b[16:20]))
	m.SIAddr = netip.AddrFrom4([4]byte(b[20:24]))
	m.GIAddr = netip.AddrFrom4([4]byte(b[24:28]))
	m.CHAddr = b[28 : 28+int(m.HLen)]
	m.options(b[dhcpHeaderLen+4:], true)
	if m.Overload&1 != 0 {
		m.options(b[dhcpFileOff:dhcpHeaderLen], false)
	}
	if m.Overload&2 != 0 {
		m.options(b[dhcpSnameOff:dhcpFileOff], false)
	}
	return nil
}

// checkDHCP checks the fixed header and the magic cookie.
func checkDHCP(b []byte) error {
	if len(b) < dhcpHeaderLen+4 {
		return ErrDHCPShort
	}
	if b[0] != 1 && b[0] != 2 {
		return ErrDHCPOp
	}
	if b[1] == 0 || b[1] > 40 || b[2] > 16 {
		return ErrDHCPHType
	}
	if binary.BigEndian.Uint32(b[dhcpHeaderLen:]) != dhcpMagic {
		return ErrDHCPCookie
	}
	return nil
}

// options reads the options in b. Only the main options field (top) may
// set the overload option.
func (m *DHCPMessage) options(b []byte, top bool) {
	for i := 0; i < len(b); {
		code := b[i]
		if code == 0 { // pad
			i++
			continue
		}
		if code == 255 { // end
			return
		}
		if i+1 >= len(b) {
			m.Truncated = true
			return
		}
		n := int(b[i+1])
		if i+2+n > len(b) {
			m.Truncated = true
			return
		}
		v := b[i+2 : i+2+n]
		i += 2 + n
		switch code {
		case 3:
			if m.Routers == nil && n >= 4 && n%4 == 0 {
				m.Routers = v
			}
		case 6:
			if m.DNS == nil && n >= 4 && n%4 == 0 {
				m.DNS = v
			}
		case 12:
			if m.Hostname == nil {
				m.Hostname = v
			}
		case 15:
			if m.Domain == nil {
				m.Domain = v
			}
		case 50:
			if !m.RequestedIP.IsValid() && n == 4 {
				m.RequestedIP = netip.AddrFrom4([4]byte(v))
			}
		case 51:
			if !m.HasLease && n == 4 {
				m.Lease, m.HasLease = binary.BigEndian.Uint32(v), true
			}
		case 52:
			if top && n == 1 && v[0] <= 3 {
				m.Overload = v[0]
			}
		case 53:
			if m.Type == 0 && n == 1 {
				m.Type = v[0]
			}
		case 54:
			if !m.ServerID.IsValid() && n == 4 {
				m.ServerID = netip.AddrFrom4([4]byte(v))
			}
		case 55:
			if m.Params == nil {
				m.Params = v
			}
		case 57:
			if m.MaxSize == 0 && n == 2 {
				m.MaxSize = binary.BigEndian.Uint16(v)
			}
		case 60:
			if m.VendorClass == nil {
				m.VendorClass = v
			}
		case 61:
			if m.ClientID == nil {
				m.ClientID = v
			}
		case 77:
			if m.UserClass == nil {
				m.UserClass = v
			}
		case 81:
			if m.FQDN == nil && n >= 3 {
				m.FQDN = v
			}
		}
	}
}

// DHCP reads DHCPv4 (RFC 2131, 2132) on UDP ports 67 and 68, relayed or
// not. From a client's DISCOVER, REQUEST or INFORM (or BOOTP request) it
// learns the client's hostname (options 12 and 81), vendor class, client
// identifier, parameter request list (the DHCP fingerprint), maximum
// message size and user class, all about chaddr; from a server's ACK (or
// BOOTP reply) the address bound to chaddr and its lease, the router, DNS
// servers and domain given; from any message the server identifier
// (role "dhcp-server") and the relay agent (role "dhcp-relay").
//
// Whether a message is the client's or the server's is read from its op
// field, not from the flow: relayed messages go from port 67 to port 67.
// DHCP keeps no state.
type DHCP struct{}

// NewDHCP returns a DHCP dissector.
func NewDHCP() *DHCP { return &DHCP{} }

// Name returns "dhcp".
func (*DHCP) Name() string { return "dhcp" }

// Wants asks for UDP ports 67 and 68.
func (*DHCP) Wants() dissect.Wants {
	return dissect.Wants{UDPPorts: []uint16{DHCPServerPort, DHCPClientPort}}
}

// Probe reports whether p's payload has DHCP's fixed header: op 1 or 2, a
// plausible hardware type and length, and the magic cookie.
func (*DHCP) Probe(p *dissect.Packet) bool {
	if p == nil || p.Packet == nil {
		return false
	}
	return checkDHCP(p.Payload) == nil
}

// Handle reads one DHCP message and emits what it learns.
func (d *DHCP) Handle(p *dissect.Packet, out dissect.Sink) {
	if p == nil || p.Packet == nil {
		return
	}
	var m DHCPMessage
	if ParseDHCP(p.Payload, &m) != nil {
		return
	}
	e := dhcpEmitter{out: out, t: p.Time}
	if m.GIAddr.IsValid() && unicastIPv4(m.GIAddr.As4()) {
		e.emitAt(m.GIAddr, dissect.AttrRole, RoleDHCPRelay)
	}
	if m.ServerID.IsValid() && unicastIPv4(m.ServerID.As4()) && m.Type != DHCPDecline && m.Type != DHCPRelease {
		e.emitAt(m.ServerID, dissect.AttrRole, RoleDHCPServer)
	}
	mac, hasMAC := m.MAC()
	if hasMAC && (mac.IsZero() || mac.IsMulticast()) {
		hasMAC = false
	}
	e.mac = mac
	if m.Op == 1 {
		d.client(&m, hasMAC, &e)
	} else {
		d.server(&m, hasMAC, &e)
	}
}

// client emits what a client's message says about the client.
func (d *DHCP) client(m *DHCPMessage, hasMAC bool, e *dhcpEmitter) {
	switch {
	case usable(m.CIAddr) && m.Type != DHCPDecline:
		e.ip = m.CIAddr
	case m.Type == DHCPRequest && usable(m.RequestedIP):
		e.ip = m.RequestedIP
	}
	if !hasMAC {
		e.mac = capture.MAC{}
		if !e.ip.IsValid() {
			return // nothing to key the facts on
		}
	}
	switch m.Type {
	case 0, DHCPDiscover, DHCPRequest, DHCPInform:
	case DHCPDecline, DHCPRelease:
		e.emit(AttrDHCPMsgType, msgTypeName(m.Type))
		return
	default:
		return // not the client's own message (LEASEQUERY from a relay, ...)
	}
	if m.Type != 0 {
		e.emit(AttrDHCPMsgType, msgTypeName(m.Type))
	}
	var buf [4 * maxText]byte
	if host := cleanText(buf[:0], m.Hostname, maxText); len(host) > 0 {
		e.names(string(host))
	}
	if len(m.FQDN) >= 3 {
		if name := cleanText(buf[:0], decodeFQDN(buf[maxText+1:maxText+1], m.FQDN), maxText); len(name) > 0 {
			e.names(string(name))
		}
	}
	if v := cleanText(buf[:0], m.VendorClass, maxText); len(v) > 0 {
		e.emit(AttrDHCPVendorClass, string(v))
	}
	if len(m.ClientID) > 0 {
		e.emit(AttrDHCPClientID, hex.EncodeToString(m.ClientID))
	}
	if len(m.Params) > 0 {
		b := buf[:0]
		for i, c := range m.Params {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendUint(b, uint64(c), 10)
		}
		e.emit(AttrDHCPParams, string(b))
	}
	if m.MaxSize != 0 {
		e.emit(AttrDHCPMaxSize, strconv.Itoa(int(m.MaxSize)))
	}
	if v := userClass(buf[:0], m.UserClass); len(v) > 0 {
		e.emit(AttrDHCPUserClass, string(v))
	}
}

// server emits what a server's reply says about the client it answers.
func (d *DHCP) server(m *DHCPMessage, hasMAC bool, e *dhcpEmitter) {
	if m.Type != DHCPAck && m.Type != 0 {
		return // OFFER, NAK: nothing bound yet
	}
	switch {
	case usable(m.YIAddr):
		e.ip = m.YIAddr
	case usable(m.CIAddr): // ACK to an INFORM
		e.ip = m.CIAddr
	}
	if !hasMAC {
		e.mac = capture.MAC{}
	}
	if !e.ip.IsValid() {
		return
	}
	if hasMAC && e.ip == m.YIAddr {
		e.emit(dissect.AttrIP, e.ip.String())
	}
	if m.HasLease && m.YIAddr.IsValid() && e.ip == m.YIAddr {
		if m.Lease == 0xffffffff {
			e.emit(AttrDHCPLease, "infinite")
		} else {
			e.emit(AttrDHCPLease, strconv.FormatUint(uint64(m.Lease), 10))
			end := e.t.Add(time.Duration(m.Lease) * time.Second)
			e.emit(AttrDHCPLeaseEnd, end.UTC().Format(time.RFC3339))
		}
	}
	if s := addrList(m.Routers); s != "" {
		e.emit(AttrDHCPRouter, s)
		for i := 0; i+4 <= len(m.Routers); i += 4 {
			if a := [4]byte(m.Routers[i : i+4]); unicastIPv4(a) {
				e.emitAt(netip.AddrFrom4(a), dissect.AttrRole, RoleRouter)
			}
		}
	}
	if s := addrList(m.DNS); s != "" {
		e.emit(AttrDHCPDNS, s)
		for i := 0; i+4 <= len(m.DNS); i += 4 {
			if a := [4]byte(m.DNS[i : i+4]); unicastIPv4(a) {
				e.emitAt(netip.AddrFrom4(a), dissect.AttrRole, RoleDNSServer)
			}
		}
	}
	var buf [4 * maxText]byte
	if v := cleanText(buf[:0], m.Domain, maxText); len(v) > 0 {
		e.emit(AttrDHCPDomain, strings.TrimSuffix(string(v), "."))
	}
}

// dhcpEmitter emits observations about one device (mac and/or ip).
type dhcpEmitter struct {
	out dissect.Sink
	t   time.Time
	ip  netip.Addr
	mac capture.MAC
}

func (e *dhcpEmitter) emit(attr, value string) {
	e.out.Observe(dissect.Observation{Time: e.t, IP: e.ip, MAC: e.mac, Attr: attr, Value: value, Protocol: "dhcp"})
}

// emitAt emits a fact about another address than the client.
func (e *dhcpEmitter) emitAt(ip netip.Addr, attr, value string) {
	e.out.Observe(dissect.Observation{Time: e.t, IP: ip, Attr: attr, Value: value, Protocol: "dhcp"})
}

// names emits a name the client gives itself: the hostname (first label)
// and, when the name has a domain, the FQDN and the domain.
func (e *dhcpEmitter) names(name string) {
	name = strings.TrimSuffix(name, ".")
	host, domain, dotted := strings.Cut(name, ".")
	if dotted {
		if _, err := netip.ParseAddr(name); err == nil {
			host, domain = name, "" // an address given as a name
		}
	}
	if host != "" {
		e.emit(dissect.AttrHostname, host)
	}
	if host != "" && domain != "" {
		e.emit(dissect.AttrFQDN, name)
		e.emit(dissect.AttrDomain, domain)
	}
}

// decodeFQDN returns the name in the data of option 81 (RFC 4702 section
// 2): flags, RCODE1, RCODE2, then the name, in canonical wire format when
// the E flag (0x04) is set and in ASCII otherwise. Wire-format labels are
// appended to dst joined by dots; a partial name (no root label) is
// returned as far as it goes, and a compression pointer or a label running
// past the end stops the decoding.
func decodeFQDN(dst []byte, opt []byte) []byte {
	if len(opt) < 3 {
		return dst[:0]
	}
	name := opt[3:]
	if opt[0]&0x04 == 0 {
		return name
	}
	dst = dst[:0]
	for i := 0; i < len(name); {
		l := int(name[i])
		if l == 0 || l&0xc0 != 0 || i+1+l > len(name) {
			break
		}
		if len(dst) > 0 {
			dst = append(dst, '.')
		}
		dst = append(dst, name[i+1:i+1+l]...)
		i += 1 + l
	}
	return dst
}

// cleanText appends to dst the text in src up to its first NUL, without
// control characters or invalid UTF-8, trimmed of spaces and cut to at
// most max bytes (at a character boundary).
func cleanText(dst, src []byte, max int) []byte {
	dst = dst[:0]
	for i := 0; i < len(src); {
		c := src[i]
		if c == 0 {
			break
		}
		if c < utf8.RuneSelf {
			i++
			if c < 0x20 || c == 0x7f || (c == ' ' && len(dst) == 0) {
				continue
			}
			if len(dst)+1 > max {
				break
			}
			dst = append(dst, c)
			continue
		}
		r, n := utf8.DecodeRune(src[i:])
		i += n
		if r == utf8.RuneError || (r >= 0x80 && r < 0xa0) {
			continue // invalid UTF-8, C1 controls
		}
		if len(dst)+n > max {
			break
		}
		dst = utf8.AppendRune(dst, r)
	}
	for len(dst) > 0 && dst[len(dst)-1] == ' ' {
		dst = dst[:len(dst)-1]
	}
	return dst
}

// userClass appends option 77's user classes to dst: the instances of
// RFC 3004 (each a length and data) joined by ",", or, when the option is
// not laid out so (as Windows sends it), its text.
func userClass(dst, v []byte) []byte {
	dst = dst[:0]
	if len(v) == 0 {
		return dst
	}
	rfc := true
	for i := 0; i < len(v); {
		l := int(v[i])
		if l == 0 || i+1+l > len(v) {
			rfc = false
			break
		}
		i += 1 + l
	}
	if !rfc {
		return cleanText(dst, v, maxText)
	}
	var tmp [maxText]byte
	for i := 0; i < len(v); {
		l := int(v[i])
		t := cleanText(tmp[:0], v[i+1:i+1+l], maxText)
		i += 1 + l
		if len(t) == 0 || len(dst)+1+len(t) > maxText {
			continue
		}
		if len(dst) > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, t...)
	}
	return dst
}

// addrList formats addresses given 4 bytes each as "a.b.c.d,e.f.g.h".
func addrList(b []byte) string {
	if len(b) < 4 {
		return ""
	}
	var buf [64 * 16]byte
	s := buf[:0]
	for i := 0; i+4 <= len(b); i += 4 {
		if i > 0 {
			s = append(s, ',')
		}
		s = netip.AddrFrom4([4]byte(b[i : i+4])).AppendTo(s)
	}
	return string(s)
}

// usable reports whether a is an IPv4 address a host may hold.
func usable(a netip.Addr) bool { return a.Is4() && unicastIPv4(a.As4()) }

var msgTypeNames = [...]string{
	DHCPDiscover: "discover", DHCPOffer: "offer", DHCPRequest: "request", DHCPDecline: "decline",
	DHCPAck: "ack", DHCPNak: "nak", DHCPRelease: "release", DHCPInform: "inform",
}

// msgTypeName names a DHCP message type, or gives its number.
func msgTypeName(t uint8) string {
	if int(t) < len(msgTypeNames) && msgTypeNames[t] != "" {
		return msgTypeNames[t]
	}
	return strconv.Itoa(int(t))
}

func init() { register(20, "dhcp", func() dissect.Dissector { return NewDHCP() }) }
