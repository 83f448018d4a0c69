package it

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"strconv"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
)

// DHCPv6 UDP ports (RFC 8415 section 7.2).
const (
	DHCPv6ClientPort = 546
	DHCPv6ServerPort = 547
)

// DHCPv6 message types (RFC 8415 section 7.3).
const (
	DHCPv6Solicit     = 1
	DHCPv6Advertise   = 2
	DHCPv6Request     = 3
	DHCPv6Confirm     = 4
	DHCPv6Renew       = 5
	DHCPv6Rebind      = 6
	DHCPv6Reply       = 7
	DHCPv6Release     = 8
	DHCPv6Decline     = 9
	DHCPv6Reconfigure = 10
	DHCPv6InfoRequest = 11
	DHCPv6RelayForw   = 12
	DHCPv6RelayRepl   = 13
)

// Attributes and roles the DHCPv6 dissector emits.
const (
	AttrDHCPv6MsgType     = "dhcpv6.msg_type"     // client's message: "solicit", "request", ...
	AttrDHCPv6DUID        = "dhcpv6.duid"         // client DUID (option 1), lowercase hex
	AttrDHCPv6DUIDMAC     = "dhcpv6.duid_mac"     // link-layer address in a DUID-LL/LLT not seen as the sender's
	AttrDHCPv6VendorClass = "dhcpv6.vendor_class" // option 16: "enterprise:data[,data]"
	AttrDHCPv6ORO         = "dhcpv6.oro"          // option 6 as "17,23,24,39": the DHCPv6 fingerprint
	AttrDHCPv6UserClass   = "dhcpv6.user_class"   // option 15, instances joined by ","
	AttrDHCPv6ServerDUID  = "dhcpv6.server_duid"  // server DUID (option 2) of a server
	AttrDHCPv6Lifetime    = "dhcpv6.valid_lifetime"

	RoleDHCPv6Server = "dhcpv6-server"
	RoleDHCPv6Relay  = "dhcpv6-relay"
)

// maxDHCPv6Addrs bounds the IA addresses read from one message.
const maxDHCPv6Addrs = 4

// DHCPv6Message is a DHCPv6 message as far as the dissector reads it,
// unwrapped from its relay messages. Byte slices point into the payload.
type DHCPv6Message struct {
	Type        uint8 // of the innermost message
	Relayed     bool  // carried in relay-forward or relay-reply messages
	RelayType   uint8 // type of the outermost message when Relayed
	PeerAddr    netip.Addr
	ClientLL    []byte                     // option 79 of the innermost relay: link-layer type (2) and address
	ClientID    []byte                     // option 1
	ServerID    []byte                     // option 2
	FQDN        []byte                     // option 39: flags, then the name in wire format
	VendorClass []byte                     // option 16
	ORO         []byte                     // option 6
	UserClass   []byte                     // option 15
	Addrs       [maxDHCPv6Addrs]netip.Addr // IA_NA and IA_TA (options 3, 4) addresses (option 5)
	Lifetimes   [maxDHCPv6Addrs]uint32     // their valid lifetimes
	NumAddrs    int
}

// ParseDHCPv6 reads b, a UDP payload, into m: the message, or the message
// relayed in it (RFC 8415 section 9), up to 8 relays deep. It reports
// false when the message type is unknown or an option runs past its
// container. ParseDHCPv6 allocates nothing.
func ParseDHCPv6(b []byte, m *DHCPv6Message) bool {
	*m = DHCPv6Message{}
	for depth := 0; ; depth++ {
		if len(b) < 4 || b[0] == 0 || b[0] > DHCPv6RelayRepl || depth > 8 {
			return false
		}
		if b[0] != DHCPv6RelayForw && b[0] != DHCPv6RelayRepl {
			m.Type = b[0]
			return m.options(b[4:], 0)
		}
		if len(b) < 34 {
			return false
		}
		if !m.Relayed {
			m.Relayed, m.RelayType = true, b[0]
		}
		m.PeerAddr = netip.AddrFrom16([16]byte(b[18:34]))
		var inner []byte
		m.ClientLL = nil
		ok := eachOption(b[34:], func(code uint16, v []byte) {
			switch code {
			case 9:
				inner = v
			case 79:
				if len(v) >= 3 {
					m.ClientLL = v
				}
			}
		})
		if !ok || inner == nil {
			return false
		}
		b = inner
	}
}

// eachOption calls fn for each option in b and reports whether they were
// laid out right.
func eachOption(b []byte, fn func(code uint16, v []byte)) bool {
	for len(b) > 0 {
		if len(b) < 4 {
			return false
		}
		code := binary.BigEndian.Uint16(b)
		l := int(binary.BigEndian.Uint16(b[2:]))
		if 4+l > len(b) {
			return false
		}
		fn(code, b[4:4+l])
		b = b[4+l:]
	}
	return true
}

// options reads a message's options; depth counts IA nesting.
func (m *DHCPv6Message) options(b []byte, depth int) bool {
	return eachOption(b, func(code uint16, v []byte) {
		switch {
		case depth == 0 && code == 1 && m.ClientID == nil:
			m.ClientID = v
		case depth == 0 && code == 2 && m.ServerID == nil:
			m.ServerID = v
		case depth == 0 && code == 39 && m.FQDN == nil && len(v) >= 1:
			m.FQDN = v
		case depth == 0 && code == 16 && m.VendorClass == nil && len(v) >= 4:
			m.VendorClass = v
		case depth == 0 && code == 6 && m.ORO == nil:
			m.ORO = v
		case depth == 0 && code == 15 && m.UserClass == nil:
			m.UserClass = v
		case depth == 0 && code == 3 && len(v) >= 12: // IA_NA: IAID, T1, T2, options
			m.options(v[12:], 1)
		case depth == 0 && code == 4 && len(v) >= 4: // IA_TA: IAID, options
			m.options(v[4:], 1)
		case depth == 1 && code == 5 && len(v) >= 24 && m.NumAddrs < maxDHCPv6Addrs: // IAADDR
			if m.iaStatusOK(v[24:]) {
				m.Addrs[m.NumAddrs] = netip.AddrFrom16([16]byte(v[:16]))
				m.Lifetimes[m.NumAddrs] = binary.BigEndian.Uint32(v[20:24])
				m.NumAddrs++
			}
		}
	})
}

// iaStatusOK reports whether an IAADDR's options hold no failing Status
// Code (option 13).
func (m *DHCPv6Message) iaStatusOK(b []byte) bool {
	ok := true
	eachOption(b, func(code uint16, v []byte) {
		if code == 13 && len(v) >= 2 && binary.BigEndian.Uint16(v) != 0 {
			ok = false
		}
	})
	return ok
}

// DUIDMAC returns the link-layer address of a DUID-LLT or DUID-LL (RFC
// 8415 sections 11.2, 11.4) when its hardware type is Ethernet (1).
func DUIDMAC(duid []byte) (mac capture.MAC, ok bool) {
	if len(duid) < 4 || binary.BigEndian.Uint16(duid[2:]) != 1 {
		return mac, false
	}
	switch binary.BigEndian.Uint16(duid) {
	case 1:
		if len(duid) != 14 {
			return mac, false
		}
		copy(mac[:], duid[8:])
	case 3:
		if len(duid) != 10 {
			return mac, false
		}
		copy(mac[:], duid[4:])
	default:
		return mac, false
	}
	return mac, !mac.IsZero() && !mac.IsMulticast()
}

var dhcpv6TypeNames = [...]string{"", "solicit", "advertise", "request", "confirm", "renew", "rebind", "reply", "release", "decline", "reconfigure", "information-request", "relay-forw", "relay-repl"}

// DHCPv6 reads DHCPv6 (RFC 8415) on UDP ports 546 and 547, relayed or
// not. From a client's message it learns the client's DUID, FQDN (option
// 39: hostname, FQDN, domain), vendor class (option 16), option request
// list (option 6, the DHCPv6 fingerprint) and user class; from a
// server's Reply the addresses assigned in IA_NA; it gives the server and
// relay agents their roles.
//
// The client's MAC is the link-layer address a relay states (option 79),
// or the one in a DUID-LL or DUID-LLT when it is the frame's source (a
// DUID may carry the address of another interface of the device, or of a
// cloned machine): otherwise that address is kept as "dhcpv6.duid_mac".
//
// DHCPv6 repeats nothing it said within DefaultDiscoveryRefresh.
type DHCPv6 struct {
	seen advertisers // facts said
	msgs advertisers // messages read: a retransmission is not parsed again
}

// NewDHCPv6 returns a DHCPv6 dissector.
func NewDHCPv6() *DHCPv6 { return &DHCPv6{} }

// Name returns "dhcpv6".
func (*DHCPv6) Name() string { return "dhcpv6" }

// Wants asks for UDP ports 546 and 547.
func (*DHCPv6) Wants() dissect.Wants {
	return dissect.Wants{UDPPorts: []uint16{DHCPv6ServerPort, DHCPv6ClientPort}}
}

// Probe reports whether p's payload reads as a DHCPv6 message whose
// options are laid out right and that names a client or server DUID.
func (*DHCPv6) Probe(p *dissect.Packet) bool {
	if p == nil || p.Packet == nil {
		return false
	}
	var m DHCPv6Message
	return ParseDHCPv6(p.Payload, &m) && (m.ClientID != nil || m.ServerID != nil)
}

// Handle reads one DHCPv6 message.
func (d *DHCPv6) Handle(p *dissect.Packet, out dissect.Sink) {
	if p == nil || p.Packet == nil {
		return
	}
	if b := p.Payload; len(b) >= 4 {
		// The transaction id (bytes 1-3) changes with each exchange; the
		// rest of a client's repeated message does not.
		a, ad := p.SrcIP.As16(), p.DstIP.As16()
		sum := digest(b[4:]) ^ digest(a[:])*31 ^ digest(ad[:])*17 ^ uint64(b[0])<<56
		if !d.msgs.fresh(p.SrcMAC, sum, p.Time.UnixNano(), int64(DefaultDiscoveryRefresh)) {
			return
		}
	}
	var m DHCPv6Message
	if !ParseDHCPv6(p.Payload, &m) {
		return
	}
	e := dhcpv6Emitter{d: d, out: out, p: p}
	if m.Relayed && m.RelayType == DHCPv6RelayForw && usableV6(p.SrcIP) {
		e.at(p.SrcIP, capture.MAC{}, dissect.AttrRole, []byte(RoleDHCPv6Relay))
	}
	switch m.Type {
	case DHCPv6Advertise, DHCPv6Reply, DHCPv6Reconfigure:
		d.server(&m, &e)
	case DHCPv6Solicit, DHCPv6Request, DHCPv6Confirm, DHCPv6Renew, DHCPv6Rebind, DHCPv6InfoRequest, DHCPv6Release, DHCPv6Decline:
		d.client(&m, &e)
	}
}

// client emits what a client's message says about the client.
func (d *DHCPv6) client(m *DHCPv6Message, e *dhcpv6Emitter) {
	p := e.p
	ip := p.SrcIP
	if m.Relayed {
		ip = m.PeerAddr
	}
	if !usableV6(ip) {
		return
	}
	var mac capture.MAC
	duidMAC, hasDUIDMAC := DUIDMAC(m.ClientID)
	switch {
	case m.Relayed && len(m.ClientLL) == 8 && binary.BigEndian.Uint16(m.ClientLL) == 1:
		copy(mac[:], m.ClientLL[2:])
	case !m.Relayed && hasDUIDMAC && p.HasEth && duidMAC == p.SrcMAC:
		mac = duidMAC
	}
	if mac.IsMulticast() {
		mac = capture.MAC{}
	}
	var buf [4 * maxText]byte
	if !mac.IsZero() {
		e.at(ip, mac, dissect.AttrIP, ip.AppendTo(buf[:0]))
	}
	e.ip, e.mac = ip, mac
	e.emit(AttrDHCPv6MsgType, append(buf[:0], dhcpv6TypeNames[m.Type]...))
	if m.Type == DHCPv6Release || m.Type == DHCPv6Decline {
		return
	}
	e.atHex(ip, AttrDHCPv6DUID, m.ClientID)
	if hasDUIDMAC && duidMAC != mac {
		e.emit(AttrDHCPv6DUIDMAC, appendMAC(buf[:0], duidMAC))
	}
	if len(m.FQDN) > 1 {
		var nb [maxText + 1]byte
		if name := cleanText(buf[:0], wireName(nb[:0], m.FQDN[1:]), maxText); len(name) > 0 {
			e.names(name)
		}
	}
	if v := dhcpv6VendorClass(buf[:0], m.VendorClass); len(v) > 0 {
		e.emit(AttrDHCPv6VendorClass, v)
	}
	if len(m.ORO) >= 2 {
		b := buf[:0]
		for i := 0; i+2 <= len(m.ORO) && len(b) < maxText; i += 2 {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendUint(b, uint64(binary.BigEndian.Uint16(m.ORO[i:])), 10)
		}
		e.emit(AttrDHCPv6ORO, b)
	}
	if v := dhcpv6UserClass(buf[:0], m.UserClass); len(v) > 0 {
		e.emit(AttrDHCPv6UserClass, v)
	}
}

// server emits the server's role and what its Reply assigns.
func (d *DHCPv6) server(m *DHCPv6Message, e *dhcpv6Emitter) {
	p := e.p
	if usableV6(p.SrcIP) && m.ServerID != nil && (!m.Relayed || m.RelayType == DHCPv6RelayRepl) {
		e.at(p.SrcIP, capture.MAC{}, dissect.AttrRole, []byte(RoleDHCPv6Server))
		e.atHex(p.SrcIP, AttrDHCPv6ServerDUID, m.ServerID)
	}
	if m.Type != DHCPv6Reply || m.NumAddrs == 0 || m.ClientID == nil {
		return
	}
	// The client's MAC: the frame goes to the client itself when the
	// reply is not relayed; its DUID says it is the client's own.
	var mac capture.MAC
	if duidMAC, ok := DUIDMAC(m.ClientID); ok && !m.Relayed && p.HasEth && duidMAC == p.DstMAC {
		mac = duidMAC
	}
	var buf [64]byte
	for i, a := range m.Addrs[:m.NumAddrs] {
		if !usableV6(a) || a.IsLinkLocalUnicast() {
			continue
		}
		if !mac.IsZero() {
			e.at(a, mac, dissect.AttrIP, a.AppendTo(buf[:0]))
		}
		e.atHex(a, AttrDHCPv6DUID, m.ClientID)
		e.at(a, capture.MAC{}, AttrDHCPv6Lifetime, strconv.AppendUint(buf[:0], uint64(m.Lifetimes[i]), 10))
	}
}

// usableV6 reports whether a is an address a device can own: not
// unspecified, loopback or multicast.
func usableV6(a netip.Addr) bool {
	return a.IsValid() && !a.IsUnspecified() && !a.IsLoopback() && !a.IsMulticast()
}

// wireName appends the DNS wire-format name in b (RFC 1035 section
// 3.1, no compression; a partial name has no root label) to dst, labels
// joined by dots.
func wireName(dst, b []byte) []byte {
	for i := 0; i < len(b); {
		l := int(b[i])
		if l == 0 || l&0xc0 != 0 || i+1+l > len(b) {
			break
		}
		if len(dst)+1+l > maxText {
			break
		}
		if len(dst) > 0 {
			dst = append(dst, '.')
		}
		dst = append(dst, b[i+1:i+1+l]...)
		i += 1 + l
	}
	return dst
}

// dhcpv6VendorClass renders option 16 (RFC 8415 section 21.16): the
// enterprise number, ":", and the vendor-class-data items joined by ",".
func dhcpv6VendorClass(dst, v []byte) []byte {
	if len(v) < 4 {
		return dst[:0]
	}
	dst = strconv.AppendUint(dst[:0], uint64(binary.BigEndian.Uint32(v)), 10)
	dst = append(dst, ':')
	n := len(dst)
	for b := v[4:]; len(b) >= 2; {
		l := int(binary.BigEndian.Uint16(b))
		if 2+l > len(b) {
			break
		}
		if len(dst) > n {
			dst = append(dst, ',')
		}
		var tb [maxText]byte
		dst = append(dst, cleanText(tb[:0], b[2:2+l], maxText)...)
		if len(dst) > 2*maxText {
			break
		}
		b = b[2+l:]
	}
	return dst
}

// dhcpv6UserClass renders option 15 (RFC 8415 section 21.15): the
// user-class-data items joined by ",".
func dhcpv6UserClass(dst, v []byte) []byte {
	dst = dst[:0]
	for b := v; len(b) >= 2; {
		l := int(binary.BigEndian.Uint16(b))
		if 2+l > len(b) {
			break
		}
		if len(dst) > 0 {
			dst = append(dst, ',')
		}
		var tb [maxText]byte
		dst = append(dst, cleanText(tb[:0], b[2:2+l], maxText)...)
		if len(dst) > 2*maxText {
			break
		}
		b = b[2+l:]
	}
	return dst
}

// dhcpv6Emitter emits facts once per refresh period.
type dhcpv6Emitter struct {
	d   *DHCPv6
	out dissect.Sink
	p   *dissect.Packet
	ip  netip.Addr
	mac capture.MAC
}

func (e *dhcpv6Emitter) emit(attr string, v []byte) { e.at(e.ip, e.mac, attr, v) }

// at emits attr=v about ip (and mac) unless it was said within the
// refresh period; v is copied only then.
func (e *dhcpv6Emitter) at(ip netip.Addr, mac capture.MAC, attr string, v []byte) {
	if len(v) == 0 {
		return
	}
	sum := factDigest(ip, attr, v)
	if !e.d.seen.fresh(mac, sum, e.p.Time.UnixNano(), int64(DefaultDiscoveryRefresh)) {
		return
	}
	e.out.Observe(dissect.Observation{Time: e.p.Time, IP: ip, MAC: mac, Attr: attr, Value: string(v), Protocol: "dhcpv6"})
}

// atHex emits attr as the lowercase hex of v.
func (e *dhcpv6Emitter) atHex(ip netip.Addr, attr string, v []byte) {
	var buf [2 * 130]byte
	if len(v) == 0 || len(v) > 130 {
		return
	}
	hex.Encode(buf[:], v)
	e.at(ip, capture.MAC{}, attr, buf[:2*len(v)])
}

// names emits a name the client gives itself, as DHCP's names does.
func (e *dhcpv6Emitter) names(name []byte) {
	name = bytes.TrimSuffix(name, []byte("."))
	host, domain, _ := bytes.Cut(name, []byte("."))
	e.emit(dissect.AttrHostname, host)
	if len(host) > 0 && len(domain) > 0 {
		e.emit(dissect.AttrFQDN, name)
		e.emit(dissect.AttrDomain, domain)
	}
}

func init() { register(63, "dhcpv6", func() dissect.Dissector { return NewDHCPv6() }) }

// appendMAC appends mac as "00:11:22:33:44:55".
func appendMAC(dst []byte, mac capture.MAC) []byte {
	const hx = "0123456789abcdef"
	for i, c := range mac {
		if i > 0 {
			dst = append(dst, ':')
		}
		dst = append(dst, hx[c>>4], hx[c&15])
	}
	return dst
}
