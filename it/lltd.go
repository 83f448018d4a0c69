package it

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
)

// EtherTypeLLTD is the EtherType of Microsoft's Link Layer Topology
// Discovery.
const EtherTypeLLTD = 0x88d9

// Attributes the LLTD dissector emits.
const (
	AttrLLTDHostID          = "lltd.host_id"         // Host ID TLV when it is not the sending interface's MAC
	AttrLLTDCharacteristics = "lltd.characteristics" // "public-nat,private-nat,full-duplex,web-page,loopback"
	AttrLLTDMedium          = "lltd.physical_medium" // IANA ifType: "ethernet", "802.11", or the number
	AttrLLTDSupportInfo     = "lltd.support_info"
	AttrLLTDUUID            = "lltd.uuid" // Device UUID TLV, bytes in wire order
)

// LLTD header layout (LLTD specification, section 2.2: demultiplex header,
// base header, Hello upper-level header).
const (
	lltdBaseLen    = 4 + 6 + 6 + 2 // version, ToS, reserved, function; real destination, real source; XID
	lltdHelloLen   = 2 + 6 + 6     // generation number, current and apparent mapper addresses
	lltdFuncHello  = 1
	lltdTLVsOffset = lltdBaseLen + lltdHelloLen
)

// LLTDHello is what a Hello frame's TLVs say. Slices point into the frame.
type LLTDHello struct {
	RealSource      capture.MAC
	HostID          capture.MAC
	HasHostID       bool
	Characteristics uint32
	HasChars        bool
	Medium          uint32
	HasMedium       bool
	IPv4            netip.Addr
	IPv6            netip.Addr
	MachineName     []byte // UTF-16LE
	SupportInfo     []byte // UTF-16LE
	UUID            []byte // 16 bytes
}

// ParseLLTDHello reads b, the bytes after the EtherType, as an LLTD Hello
// of the topology discovery or quick discovery service. It reports false
// for other frames, or when a TLV runs past the end before the
// end-of-property TLV. ParseLLTDHello allocates nothing.
func ParseLLTDHello(b []byte, h *LLTDHello) bool {
	*h = LLTDHello{}
	if len(b) < lltdTLVsOffset || b[0] != 1 || b[1] > 1 || b[3] != lltdFuncHello {
		return false
	}
	copy(h.RealSource[:], b[10:16])
	for t := b[lltdTLVsOffset:]; len(t) > 0; {
		typ := t[0]
		if typ == 0 {
			return true // end of property list
		}
		if len(t) < 2 || 2+int(t[1]) > len(t) {
			return false
		}
		v := t[2 : 2+int(t[1])]
		t = t[2+len(v):]
		switch {
		case typ == 0x01 && len(v) == 6:
			copy(h.HostID[:], v)
			h.HasHostID = true
		case typ == 0x02 && len(v) == 4:
			h.Characteristics, h.HasChars = binary.BigEndian.Uint32(v), true
		case typ == 0x03 && len(v) == 4:
			h.Medium, h.HasMedium = binary.BigEndian.Uint32(v), true
		case typ == 0x07 && len(v) == 4:
			h.IPv4 = netip.AddrFrom4([4]byte(v))
		case typ == 0x08 && len(v) == 16:
			h.IPv6 = netip.AddrFrom16([16]byte(v))
		case typ == 0x0f:
			h.MachineName = v
		case typ == 0x10:
			h.SupportInfo = v
		case typ == 0x12 && len(v) == 16:
			h.UUID = v
		}
	}
	return true // a frame may end without the end-of-property TLV
}

// utf16Text appends the UTF-16LE text in b, up to a NUL, to dst, cleaned
// of control characters and cut to max bytes.
func utf16Text(dst, b []byte, max int) []byte {
	dst = dst[:0]
	for i := 0; i+1 < len(b); i += 2 {
		r := rune(binary.LittleEndian.Uint16(b[i:]))
		if r == 0 {
			break
		}
		if utf16.IsSurrogate(r) {
			if i+3 < len(b) {
				r = utf16.DecodeRune(r, rune(binary.LittleEndian.Uint16(b[i+2:])))
				i += 2
			} else {
				r = utf8.RuneError
			}
		}
		if r == utf8.RuneError || r < 0x20 || (r >= 0x7f && r < 0xa0) {
			continue
		}
		if len(dst)+utf8.RuneLen(r) > max {
			break
		}
		dst = utf8.AppendRune(dst, r)
	}
	return dst
}

// lltdCharNames names the characteristics bits, most significant first
// (LLTD specification section 2.2.2.2).
var lltdCharNames = [...]string{"public-nat", "private-nat", "full-duplex", "web-page", "loopback"}

// LLTD reads Hello frames of Microsoft's Link Layer Topology Discovery
// (EtherType 0x88D9), which Windows hosts and LLTD responders in printers
// and routers send when a mapper (the Windows network map) asks. A Hello's
// TLVs tell the machine name (dissect.AttrHostname), the IPv4 and IPv6
// addresses of the interface (bound to the sending interface's MAC, the
// real source address), characteristics, physical medium, support
// information and device UUID.
//
// LLTD remembers a digest of each responder's last Hello in a bounded
// table and stays silent while it repeats within DefaultDiscoveryRefresh.
type LLTD struct {
	seen advertisers
}

// NewLLTD returns an LLTD dissector.
func NewLLTD() *LLTD { return &LLTD{} }

// Name returns "lltd".
func (*LLTD) Name() string { return "lltd" }

// Wants asks for frames of EtherType 0x88D9.
func (*LLTD) Wants() dissect.Wants { return dissect.Wants{EtherTypes: []uint16{EtherTypeLLTD}} }

// Probe reports whether p is an LLTD Hello.
func (*LLTD) Probe(p *dissect.Packet) bool {
	if p == nil || p.Packet == nil || p.EtherType != EtherTypeLLTD || p.HasIP() {
		return false
	}
	var h LLTDHello
	return ParseLLTDHello(p.Payload, &h)
}

// Handle reads one Hello.
func (d *LLTD) Handle(p *dissect.Packet, out dissect.Sink) {
	if p == nil || p.Packet == nil || p.EtherType != EtherTypeLLTD || p.HasIP() {
		return
	}
	var h LLTDHello
	if !ParseLLTDHello(p.Payload, &h) {
		return
	}
	mac := h.RealSource
	if mac.IsZero() || mac.IsMulticast() {
		return
	}
	if !d.seen.fresh(mac, digest(p.Payload[lltdTLVsOffset:]), p.Time.UnixNano(), int64(DefaultDiscoveryRefresh)) {
		return
	}
	emit := func(ip netip.Addr, attr string, v []byte) {
		if len(v) > 0 {
			out.Observe(dissect.Observation{Time: p.Time, IP: ip, MAC: mac, Attr: attr, Value: string(v), Protocol: "lltd"})
		}
	}
	var buf [4 * maxText]byte
	emit(netip.Addr{}, dissect.AttrHostname, utf16Text(buf[:0], h.MachineName, maxText))
	emit(netip.Addr{}, AttrLLTDSupportInfo, utf16Text(buf[:0], h.SupportInfo, maxText))
	for _, a := range [...]netip.Addr{h.IPv4, h.IPv6} {
		if usableV6(a) && a != netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
			emit(a, dissect.AttrIP, a.AppendTo(buf[:0]))
		}
	}
	if h.HasHostID && h.HostID != mac && !h.HostID.IsZero() {
		emit(netip.Addr{}, AttrLLTDHostID, appendMAC(buf[:0], h.HostID))
	}
	if h.HasChars {
		b := buf[:0]
		for i, n := range lltdCharNames {
			if h.Characteristics&(1<<(31-i)) != 0 {
				if len(b) > 0 {
					b = append(b, ',')
				}
				b = append(b, n...)
			}
		}
		emit(netip.Addr{}, AttrLLTDCharacteristics, b)
	}
	if h.HasMedium {
		b := buf[:0]
		switch h.Medium {
		case 6:
			b = append(b, "ethernet"...)
		case 71:
			b = append(b, "802.11"...)
		default:
			b = strconv.AppendUint(b, uint64(h.Medium), 10)
		}
		emit(netip.Addr{}, AttrLLTDMedium, b)
	}
	if h.UUID != nil {
		emit(netip.Addr{}, AttrLLTDUUID, appendUUID(buf[:0], h.UUID))
	}
}

// appendUUID appends a 16-byte UUID as "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
// bytes in wire order (RFC 4122 section 4.1.2).
func appendUUID(dst, g []byte) []byte {
	const hx = "0123456789abcdef"
	for i, c := range g {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hx[c>>4], hx[c&15])
	}
	return dst
}

func init() { register(66, "lltd", func() dissect.Dissector { return NewLLTD() }) }
