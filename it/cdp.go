package it

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"strconv"
	"time"

	"github.com/passivesensor/sensor/dissect"
)

// CDP arrives in 802.3 frames with an LLC/SNAP header; the decoder hands
// those over with EtherType 0 and the Payload starting at the LLC header.
const etherTypeLLC = 0

// cdpSNAP is the LLC/SNAP header of CDP: DSAP/SSAP 0xaa, UI, OUI 00000c
// (Cisco), PID 0x2000.
var cdpSNAP = [8]byte{0xaa, 0xaa, 0x03, 0x00, 0x00, 0x0c, 0x20, 0x00}

// Attributes the CDP dissector emits besides the dissect.Attr* ones.
const (
	AttrCDPPortID          = "cdp.port_id"
	AttrCDPSoftwareVersion = "cdp.software_version" // the full version text, bounded
	AttrCDPVTPDomain       = "cdp.vtp_domain"
	AttrCDPCaps            = "cdp.capabilities" // comma list of CDP capability names
)

// CDP TLV types.
const (
	cdpDeviceID  = 0x0001
	cdpAddresses = 0x0002
	cdpPortID    = 0x0003
	cdpCaps      = 0x0004
	cdpSoftware  = 0x0005
	cdpPlatform  = 0x0006
	cdpVTPDomain = 0x0009
	cdpNativeVLA = 0x000a
	cdpMgmtAddrs = 0x0016
)

// CDP capability bits.
const (
	cdpCapRouter      = 0x01
	cdpCapTransBridge = 0x02
	cdpCapSRBridge    = 0x04
	cdpCapSwitch      = 0x08
	cdpCapHost        = 0x10
	cdpCapIGMP        = 0x20
	cdpCapRepeater    = 0x40
	cdpCapPhone       = 0x80
)

var cdpCapNames = [...]string{"router", "trans-bridge", "source-route-bridge", "switch", "host", "igmp", "repeater", "phone"}

// maxCDPAddrs bounds the addresses kept from one frame.
const maxCDPAddrs = 8

// CDPInfo is what ParseCDP reads from one CDP frame. Byte slices point into
// the frame.
type CDPInfo struct {
	Version    byte
	TTL        byte
	DeviceID   []byte
	PortID     []byte
	HasCaps    bool
	Caps       uint32
	Software   []byte
	Platform   []byte
	VTPDomain  []byte
	NativeVLAN uint16 // 0 when absent
	Addrs      [maxCDPAddrs]netip.Addr
	NumAddrs   int
}

// Errors of ParseCDP.
var (
	ErrCDPNotCDP = errors.New("cdp: not an LLC/SNAP CDP frame")
	ErrCDPShort  = errors.New("cdp: TLV runs past the frame")
)

// ParseCDP reads a CDP frame from b, the bytes from the LLC header on
// (Ethernet padding may follow). ErrCDPNotCDP says the SNAP header or CDP
// header is wrong; after a valid header a cut TLV ends the reading with
// ErrCDPShort and m holds what came before it.
func ParseCDP(b []byte, m *CDPInfo) error {
	*m = CDPInfo{}
	if len(b) < len(cdpSNAP)+4 || [8]byte(b[:8]) != cdpSNAP {
		return ErrCDPNotCDP
	}
	b = b[8:]
	if b[0] != 1 && b[0] != 2 {
		return ErrCDPNotCDP
	}
	m.Version, m.TTL = b[0], b[1]
	b = b[4:]
	for len(b) > 0 {
		if len(b) < 4 {
			return ErrCDPShort
		}
		typ := binary.BigEndian.Uint16(b)
		n := int(binary.BigEndian.Uint16(b[2:]))
		if n < 4 || n > len(b) {
			return ErrCDPShort
		}
		v := b[4:n]
		b = b[n:]
		switch typ {
		case cdpDeviceID:
			m.DeviceID = v
		case cdpPortID:
			m.PortID = v
		case cdpCaps:
			if len(v) >= 4 {
				m.HasCaps, m.Caps = true, binary.BigEndian.Uint32(v)
			}
		case cdpSoftware:
			m.Software = v
		case cdpPlatform:
			m.Platform = v
		case cdpVTPDomain:
			m.VTPDomain = v
		case cdpNativeVLA:
			if len(v) >= 2 {
				m.NativeVLAN = binary.BigEndian.Uint16(v) & 0x0fff
			}
		case cdpAddresses, cdpMgmtAddrs:
			m.addrs(v)
		}
	}
	return nil
}

// addrs reads an address list TLV: a count, then (protocol type, protocol
// length, protocol, address length, address) each. IPv4 (NLPID 0xcc) and
// IPv6 (802.2 SNAP 0x86dd) are kept, once each.
func (m *CDPInfo) addrs(v []byte) {
	if len(v) < 4 {
		return
	}
	count := binary.BigEndian.Uint32(v)
	v = v[4:]
	for i := uint32(0); i < count && len(v) >= 2; i++ {
		ptype, plen := v[0], int(v[1])
		if len(v) < 2+plen+2 {
			return
		}
		proto := v[2 : 2+plen]
		alen := int(binary.BigEndian.Uint16(v[2+plen:]))
		v = v[2+plen+2:]
		if len(v) < alen {
			return
		}
		addr := v[:alen]
		v = v[alen:]
		var a netip.Addr
		switch {
		case ptype == 1 && plen == 1 && proto[0] == 0xcc && alen == 4:
			a = netip.AddrFrom4([4]byte(addr))
		case ptype == 2 && plen == 8 && proto[6] == 0x86 && proto[7] == 0xdd && alen == 16:
			a = netip.AddrFrom16([16]byte(addr))
		default:
			continue
		}
		dup := false
		for _, x := range m.Addrs[:m.NumAddrs] {
			dup = dup || x == a
		}
		if !dup && m.NumAddrs < maxCDPAddrs {
			m.Addrs[m.NumAddrs] = a
			m.NumAddrs++
		}
	}
}

// lldpCaps maps CDP capabilities onto LLDP's capability bits.
func (m *CDPInfo) lldpCaps() uint16 {
	var c uint16
	if m.Caps&cdpCapRouter != 0 {
		c |= CapRouter
	}
	if m.Caps&(cdpCapTransBridge|cdpCapSRBridge|cdpCapSwitch) != 0 {
		c |= CapBridge
	}
	if m.Caps&cdpCapPhone != 0 {
		c |= CapTelephone
	}
	if m.Caps&cdpCapRepeater != 0 {
		c |= CapRepeater
	}
	if m.Caps&cdpCapHost != 0 {
		c |= CapStation
	}
	return c
}

// CDP reads the Cisco Discovery Protocol. The sender is the device the
// frame came from (CDP is never forwarded), so observations are about the
// frame's source MAC: device id (dissect.AttrHostname), addresses,
// platform (dissect.AttrModel), software version (the line naming the
// version as dissect.AttrFirmware, the whole text as
// AttrCDPSoftwareVersion), capabilities (dissect.AttrClass), native VLAN and
// VTP domain.
//
// Like LLDP, CDP stays silent while a device repeats its advertisement
// within Refresh.
type CDP struct {
	// Refresh is how long a repeated advertisement stays unreported;
	// DefaultDiscoveryRefresh when zero.
	Refresh time.Duration
	seen    advertisers
}

// NewCDP returns a CDP dissector.
func NewCDP() *CDP { return &CDP{Refresh: DefaultDiscoveryRefresh} }

// Name returns "cdp".
func (*CDP) Name() string { return "cdp" }

// Wants asks for 802.3/LLC frames (EtherType 0 as the decoder reports
// them); Probe picks CDP out by its SNAP header.
func (*CDP) Wants() dissect.Wants {
	return dissect.Wants{EtherTypes: []uint16{etherTypeLLC}}
}

// Probe reports whether p is a CDP frame.
func (*CDP) Probe(p *dissect.Packet) bool {
	if p == nil || p.Packet == nil || p.EtherType != etherTypeLLC || p.HasIP() {
		return false
	}
	b := p.Payload
	return len(b) >= len(cdpSNAP)+4 && [8]byte(b[:8]) == cdpSNAP && (b[8] == 1 || b[8] == 2)
}

// Handle reads one CDP frame and emits what it learns about its sender.
func (d *CDP) Handle(p *dissect.Packet, out dissect.Sink) {
	if p == nil || p.Packet == nil || p.EtherType != etherTypeLLC || p.HasIP() {
		return
	}
	var m CDPInfo
	if ParseCDP(p.Payload, &m) == ErrCDPNotCDP {
		return
	}
	mac := p.SrcMAC
	if mac.IsZero() || mac.IsMulticast() {
		return
	}
	if !d.seen.fresh(mac, digestCDP(p.Payload), p.Time.UnixNano(), refreshOr(d.Refresh)) {
		return
	}
	emit := func(attr, v string) {
		if v != "" {
			out.Observe(dissect.Observation{Time: p.Time, MAC: mac, Attr: attr, Value: v, Protocol: "cdp"})
		}
	}
	var buf [4 * maxText]byte
	text := func(b []byte) string { return string(cleanText(buf[:0], b, maxText)) }

	emit(dissect.AttrHostname, text(m.DeviceID))
	for _, a := range m.Addrs[:m.NumAddrs] {
		if a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() {
			continue
		}
		out.Observe(dissect.Observation{Time: p.Time, IP: a, MAC: mac, Attr: dissect.AttrIP, Value: a.String(), Protocol: "cdp"})
	}
	emit(AttrCDPPortID, text(m.PortID))
	if m.HasCaps {
		emit(AttrCDPCaps, cdpCapsList(buf[:0], m.Caps))
		emit(dissect.AttrClass, capsClass(m.lldpCaps()))
	}
	emit(dissect.AttrFirmware, text(versionLine(m.Software)))
	var sw [maxText]byte
	emit(AttrCDPSoftwareVersion, text(joinLines(&sw, m.Software)))
	emit(dissect.AttrModel, text(m.Platform))
	if m.NativeVLAN != 0 {
		emit(dissect.AttrVLAN, strconv.Itoa(int(m.NativeVLAN)))
	}
	emit(AttrCDPVTPDomain, text(m.VTPDomain))
}

// digestCDP digests a CDP frame from its TLVs on, leaving out the header
// (version, TTL, checksum).
func digestCDP(b []byte) uint64 {
	if len(b) < 12 {
		return digest(b)
	}
	return digest(b[12:])
}

// joinLines copies b, bounded, into buf with its line breaks made spaces,
// so that a multi-line text reads as one.
func joinLines(buf *[maxText]byte, b []byte) []byte {
	n := copy(buf[:], b)
	for i, c := range buf[:n] {
		if c == '\n' || c == '\r' {
			buf[i] = ' '
		}
	}
	return buf[:n]
}

// versionLine returns the line of a software version text that holds the
// version: the first holding "Version" (old IOS opens with a line naming
// only the operating system), else the first line.
func versionLine(b []byte) []byte {
	first := []byte(nil)
	for len(b) > 0 {
		line := b
		if i := bytes.IndexAny(b, "\r\n"); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if first == nil && len(bytes.TrimSpace(line)) > 0 {
			first = line
		}
		if bytes.Contains(line, versionWord) {
			return line
		}
	}
	return first
}

var versionWord = []byte("Version")

// cdpCapsList renders CDP capability bits as a comma list.
func cdpCapsList(buf []byte, caps uint32) string {
	buf = buf[:0]
	for i, n := range cdpCapNames {
		if caps&(1<<i) != 0 {
			if len(buf) > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, n...)
		}
	}
	return string(buf)
}

func init() { register(40, "cdp", func() dissect.Dissector { return NewCDP() }) }
