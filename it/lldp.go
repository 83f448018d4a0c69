package it

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
)

// EtherTypeLLDP is the EtherType of LLDP frames (IEEE 802.1AB).
const EtherTypeLLDP = 0x88cc

// Attributes the LLDP dissector emits besides the dissect.Attr* ones.
const (
	AttrLLDPChassisID   = "lldp.chassis_id" // a chassis id that is not a MAC
	AttrLLDPPortID      = "lldp.port_id"    // the sending port's id
	AttrLLDPPortDesc    = "lldp.port_description"
	AttrLLDPSysDesc     = "lldp.system_description"
	AttrLLDPCaps        = "lldp.capabilities" // enabled capabilities, comma list
	AttrLLDPSoftwareRev = "lldp.software_revision"
)

// DefaultDiscoveryRefresh is how long the LLDP and CDP dissectors stay
// silent about a device that keeps sending the same advertisement.
const DefaultDiscoveryRefresh = 30 * time.Minute

// defaultAdvertisers bounds the table of devices whose last advertisement
// LLDP or CDP remembers.
const defaultAdvertisers = 4096

// maxMgmtAddrs bounds the management addresses kept from one frame.
const maxMgmtAddrs = 4

// LLDP TLV types.
const (
	lldpEnd       = 0
	lldpChassis   = 1
	lldpPort      = 2
	lldpTTL       = 3
	lldpPortDesc  = 4
	lldpSysName   = 5
	lldpSysDesc   = 6
	lldpSysCaps   = 7
	lldpMgmtAddr  = 8
	lldpOrgSpecif = 127
)

// System capability bits (802.1AB 8.5.8.1), shared by the LLDP-style
// capability list CDP is mapped onto.
const (
	CapOther     = 0x0001
	CapRepeater  = 0x0002
	CapBridge    = 0x0004
	CapWLANAP    = 0x0008
	CapRouter    = 0x0010
	CapTelephone = 0x0020
	CapDOCSIS    = 0x0040
	CapStation   = 0x0080
)

// LLDPInfo is what ParseLLDP reads from one LLDPDU. Byte slices point into
// the frame.
type LLDPInfo struct {
	ChassisSubtype byte
	ChassisID      []byte // raw id after the subtype
	PortSubtype    byte
	PortID         []byte
	TTL            uint16
	PortDesc       []byte
	SysName        []byte
	SysDesc        []byte
	HasCaps        bool
	CapsSupported  uint16
	CapsEnabled    uint16
	MgmtAddrs      [maxMgmtAddrs]netip.Addr
	NumMgmt        int
	PortVLAN       uint16 // 802.1 port VLAN id; 0 when absent
	// LLDP-MED inventory (ANSI/TIA-1057).
	HardwareRev, FirmwareRev, SoftwareRev, Serial, Manufacturer, Model []byte
}

// ChassisMAC returns the chassis id when it is a MAC (subtype 4).
func (m *LLDPInfo) ChassisMAC() (capture.MAC, bool) {
	var mac capture.MAC
	if m.ChassisSubtype != 4 || len(m.ChassisID) != 6 {
		return mac, false
	}
	copy(mac[:], m.ChassisID)
	return mac, true
}

// ChassisIP returns the chassis id when it is a network address (subtype 5).
func (m *LLDPInfo) ChassisIP() (netip.Addr, bool) {
	if m.ChassisSubtype != 5 {
		return netip.Addr{}, false
	}
	return ianaAddr(m.ChassisID)
}

// ianaAddr reads an IANA address family byte (1 IPv4, 2 IPv6) and the
// address after it.
func ianaAddr(b []byte) (netip.Addr, bool) {
	switch {
	case len(b) == 5 && b[0] == 1:
		return netip.AddrFrom4([4]byte(b[1:5])), true
	case len(b) == 17 && b[0] == 2:
		return netip.AddrFrom16([16]byte(b[1:17])), true
	}
	return netip.Addr{}, false
}

// Errors of ParseLLDP.
var (
	ErrLLDPShort     = errors.New("lldp: TLV runs past the frame")
	ErrLLDPMandatory = errors.New("lldp: chassis id, port id and TTL are not the first three TLVs")
)

// ParseLLDP reads an LLDPDU (the bytes after the EtherType; padding may
// follow the End TLV). The chassis id, port id and TTL TLVs must come
// first, as 802.1AB requires. A frame cut after them reads as far as it
// goes; the error is then ErrLLDPShort.
func ParseLLDP(b []byte, m *LLDPInfo) error {
	*m = LLDPInfo{}
	for i := 0; ; i++ {
		if len(b) == 0 {
			if i < 3 {
				return ErrLLDPMandatory
			}
			return nil // no End TLV: tolerated
		}
		if len(b) < 2 {
			return ErrLLDPShort
		}
		typ := b[0] >> 1
		n := int(b[0]&1)<<8 | int(b[1])
		if len(b) < 2+n {
			if i < 3 {
				return ErrLLDPMandatory
			}
			return ErrLLDPShort
		}
		v := b[2 : 2+n]
		b = b[2+n:]
		if i < 3 && int(typ) != i+1 {
			return ErrLLDPMandatory
		}
		switch typ {
		case lldpEnd:
			return nil
		case lldpChassis:
			if n < 2 {
				return ErrLLDPMandatory
			}
			m.ChassisSubtype, m.ChassisID = v[0], v[1:]
		case lldpPort:
			if n < 2 {
				return ErrLLDPMandatory
			}
			m.PortSubtype, m.PortID = v[0], v[1:]
		case lldpTTL:
			if n < 2 {
				return ErrLLDPMandatory
			}
			m.TTL = binary.BigEndian.Uint16(v)
		case lldpPortDesc:
			m.PortDesc = v
		case lldpSysName:
			m.SysName = v
		case lldpSysDesc:
			m.SysDesc = v
		case lldpSysCaps:
			if n >= 4 {
				m.HasCaps = true
				m.CapsSupported = binary.BigEndian.Uint16(v)
				m.CapsEnabled = binary.BigEndian.Uint16(v[2:])
			}
		case lldpMgmtAddr:
			// address string length (subtype + address), subtype, address
			if n >= 1 && int(v[0]) >= 1 && 1+int(v[0]) <= n && m.NumMgmt < maxMgmtAddrs {
				if a, ok := ianaAddr(v[1 : 1+int(v[0])]); ok {
					m.MgmtAddrs[m.NumMgmt] = a
					m.NumMgmt++
				}
			}
		case lldpOrgSpecif:
			if n < 4 {
				break
			}
			oui := uint32(v[0])<<16 | uint32(v[1])<<8 | uint32(v[2])
			sub, d := v[3], v[4:]
			switch {
			case oui == 0x0080c2 && sub == 1 && len(d) >= 2:
				m.PortVLAN = binary.BigEndian.Uint16(d) & 0x0fff
			case oui == 0x0012bb:
				switch sub {
				case 5:
					m.HardwareRev = d
				case 6:
					m.FirmwareRev = d
				case 7:
					m.SoftwareRev = d
				case 8:
					m.Serial = d
				case 9:
					m.Manufacturer = d
				case 10:
					m.Model = d
				}
			}
		}
	}
}

// LLDP reads LLDP frames (IEEE 802.1AB). A device's LLDPDU tells its own
// chassis MAC (or, when the chassis id is something else, the frame's
// source MAC is the device's: LLDP is never forwarded), its name,
// description, capabilities (dissect.AttrClass), management addresses,
// port VLAN and, with LLDP-MED, its inventory.
//
// LLDP remembers a digest of each device's last advertisement in a bounded
// table and stays silent while it repeats within Refresh, so that the
// steady state allocates nothing.
type LLDP struct {
	// Refresh is how long a repeated advertisement stays unreported;
	// DefaultDiscoveryRefresh when zero.
	Refresh time.Duration
	seen    advertisers
}

// NewLLDP returns an LLDP dissector.
func NewLLDP() *LLDP { return &LLDP{Refresh: DefaultDiscoveryRefresh} }

// Name returns "lldp".
func (*LLDP) Name() string { return "lldp" }

// Wants asks for frames of EtherType 0x88cc.
func (*LLDP) Wants() dissect.Wants {
	return dissect.Wants{EtherTypes: []uint16{EtherTypeLLDP}}
}

// Probe reports whether p is an LLDP frame whose mandatory TLVs read.
func (*LLDP) Probe(p *dissect.Packet) bool {
	if p == nil || p.Packet == nil || p.EtherType != EtherTypeLLDP || p.HasIP() {
		return false
	}
	var m LLDPInfo
	return ParseLLDP(p.Payload, &m) != ErrLLDPMandatory
}

// Handle reads one LLDP frame and emits what it learns about its sender.
func (d *LLDP) Handle(p *dissect.Packet, out dissect.Sink) {
	if p == nil || p.Packet == nil || p.EtherType != EtherTypeLLDP || p.HasIP() {
		return
	}
	var m LLDPInfo
	if ParseLLDP(p.Payload, &m) == ErrLLDPMandatory {
		return
	}
	mac, isMAC := m.ChassisMAC()
	if !isMAC || mac.IsZero() || mac.IsMulticast() {
		mac = p.SrcMAC
	}
	if mac.IsZero() || mac.IsMulticast() {
		return
	}
	if !d.seen.fresh(mac, digest(p.Payload), p.Time.UnixNano(), refreshOr(d.Refresh)) {
		return
	}
	emit := func(attr, v string) {
		if v != "" {
			out.Observe(dissect.Observation{Time: p.Time, MAC: mac, Attr: attr, Value: v, Protocol: "lldp"})
		}
	}
	var buf [4 * maxText]byte
	text := func(b []byte) string { return string(cleanText(buf[:0], b, maxText)) }

	if a, ok := m.ChassisIP(); ok {
		out.Observe(dissect.Observation{Time: p.Time, IP: a, MAC: mac, Attr: dissect.AttrIP, Value: a.String(), Protocol: "lldp"})
	} else if !isMAC {
		emit(AttrLLDPChassisID, text(m.ChassisID))
	}
	emit(AttrLLDPPortID, lldpPortID(&m, buf[:0]))
	emit(AttrLLDPPortDesc, text(m.PortDesc))
	emit(dissect.AttrHostname, text(m.SysName))
	var lines [maxText]byte
	emit(AttrLLDPSysDesc, text(joinLines(&lines, m.SysDesc)))
	if m.HasCaps {
		emit(AttrLLDPCaps, capsList(buf[:0], m.CapsEnabled))
		emit(dissect.AttrClass, capsClass(m.CapsEnabled))
	}
	for _, a := range m.MgmtAddrs[:m.NumMgmt] {
		if a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() {
			continue
		}
		out.Observe(dissect.Observation{Time: p.Time, IP: a, MAC: mac, Attr: dissect.AttrIP, Value: a.String(), Protocol: "lldp"})
	}
	if m.PortVLAN != 0 {
		emit(dissect.AttrVLAN, strconv.Itoa(int(m.PortVLAN)))
	}
	emit(dissect.AttrHardware, text(m.HardwareRev))
	emit(dissect.AttrFirmware, text(m.FirmwareRev))
	emit(AttrLLDPSoftwareRev, text(m.SoftwareRev))
	emit(dissect.AttrSerial, text(m.Serial))
	emit(dissect.AttrVendor, text(m.Manufacturer))
	emit(dissect.AttrModel, text(m.Model))
}

// lldpPortID renders the port id: a MAC (subtype 3) or address (subtype 4)
// as such, anything else as text.
func lldpPortID(m *LLDPInfo, buf []byte) string {
	switch m.PortSubtype {
	case 3:
		if len(m.PortID) == 6 {
			return capture.MAC(m.PortID).String()
		}
	case 4:
		if a, ok := ianaAddr(m.PortID); ok {
			return a.String()
		}
	}
	return string(cleanText(buf, m.PortID, maxText))
}

// capNames names the capability bits, in bit order.
var capNames = [...]string{"other", "repeater", "bridge", "wlan-ap", "router", "telephone", "docsis", "station"}

// capsList renders enabled capability bits as a comma list.
func capsList(buf []byte, caps uint16) string {
	buf = buf[:0]
	for i, n := range capNames {
		if caps&(1<<i) != 0 {
			if len(buf) > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, n...)
		}
	}
	return string(buf)
}

// capsClass maps enabled capabilities onto a device class: a router is a
// router whatever else it does; a phone or access point usually bridges
// too, so they are told before a plain switch. "" when none applies.
func capsClass(caps uint16) string {
	switch {
	case caps&CapRouter != 0:
		return "router"
	case caps&CapTelephone != 0:
		return "phone"
	case caps&CapWLANAP != 0:
		return "access-point"
	case caps&CapBridge != 0:
		return "switch"
	}
	return ""
}

func refreshOr(d time.Duration) int64 {
	if d > 0 {
		return int64(d)
	}
	return int64(DefaultDiscoveryRefresh)
}

// digest is FNV-1a over b.
func digest(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// advertisers remembers the digest of each device's last advertisement, in
// a bounded table.
type advertisers struct {
	mu sync.Mutex
	m  map[advertKey]int64 // packet time last reported, Unix nanoseconds
}

// advertKey is one advertisement of one device: a device sending several
// (one per port) has an entry for each.
type advertKey struct {
	mac capture.MAC
	sum uint64
}

// fresh reports whether an advertisement with digest sum from mac should be
// reported at now: it is new, changed, or last reported refresh ago.
func (a *advertisers) fresh(mac capture.MAC, sum uint64, now, refresh int64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = make(map[advertKey]int64)
	}
	k := advertKey{mac, sum}
	when, ok := a.m[k]
	if ok && since(now, when) < refresh {
		return false
	}
	if !ok && len(a.m) >= defaultAdvertisers {
		for k2 := range a.m { // drop arbitrary entries down to 3/4
			if len(a.m) <= defaultAdvertisers*3/4 {
				break
			}
			delete(a.m, k2)
		}
	}
	a.m[k] = now
	return true
}

func init() { register(30, "lldp", func() dissect.Dissector { return NewLLDP() }) }
