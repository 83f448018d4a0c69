package it

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"time"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
)

// EtherTypeARP is the EtherType of ARP frames.
const EtherTypeARP = 0x0806

// arpLen is the length of an Ethernet/IPv4 ARP message (RFC 826).
const arpLen = 28

// ARP operation codes.
const (
	arpRequest = 1
	arpReply   = 2
)

// Defaults of the ARP dissector's table.
const (
	DefaultARPEntries        = 4096
	DefaultARPConflictWindow = 2 * time.Minute
	DefaultARPRefresh        = 30 * time.Minute
)

// Attributes the ARP dissector emits besides dissect.AttrIP.
const (
	// AttrARPGratuitous marks a gratuitous ARP (sender IP == target IP):
	// the device announced its address. Value is the address.
	AttrARPGratuitous = "arp.gratuitous"
	// AttrARPConflict is emitted about an IP that two MACs claimed within
	// the conflict window. Value is "IP claimed by MAC1 and MAC2".
	AttrARPConflict = "arp.conflict"
	// AttrARPProbe is emitted about the MAC of a device probing (RFC 5227)
	// for an address it wants. Value is the probed address.
	AttrARPProbe = "arp.probe"
)

// ARP reads ARP over Ethernet and IPv4 (RFC 826). Each request and reply
// binds the sender's IP to its MAC (dissect.AttrIP, with both IP and MAC
// set); ARP probes (RFC 5227, sender 0.0.0.0) bind nothing but report the
// address asked for; gratuitous ARPs are marked.
//
// ARP keeps a bounded table of IP -> MAC so that it reports a binding only
// when it is new, changed, or older than Refresh (the per-packet path
// allocates nothing in steady state), and so that it notices when a second
// MAC claims an address that another MAC claimed within ConflictWindow.
// Virtual router MACs (VRRP, HSRP, GLBP) never make a conflict.
//
// An ARP is safe for use by several goroutines; all the same, each
// pipeline worker should hold its own, as returned by All.
type ARP struct {
	// MaxEntries bounds the table; DefaultARPEntries when zero.
	MaxEntries int
	// ConflictWindow is how recently another MAC must have claimed an IP
	// for a new claim to be a conflict; DefaultARPConflictWindow when zero.
	ConflictWindow time.Duration
	// Refresh is how long before an unchanged binding is reported again;
	// DefaultARPRefresh when zero.
	Refresh time.Duration

	mu    sync.Mutex
	table map[[4]byte]arpEntry
	// The last probe reported, so that the usual three probes of RFC 5227
	// make one observation.
	probeMAC  capture.MAC
	probeIP   [4]byte
	probeTime int64
}

// arpEntry is what the table knows of one IP. Times are packet times in
// Unix nanoseconds.
type arpEntry struct {
	mac        capture.MAC // the MAC that claimed the IP last
	prev       capture.MAC // the MAC that claimed it before, if any
	seen       int64       // last claim by mac
	reported   int64       // last binding observation for this IP
	conflicted int64       // last conflict observation for this IP
	gratuitous bool        // mac has announced the IP gratuitously
}

// NewARP returns an ARP dissector with default bounds.
func NewARP() *ARP {
	return &ARP{
		MaxEntries:     DefaultARPEntries,
		ConflictWindow: DefaultARPConflictWindow,
		Refresh:        DefaultARPRefresh,
	}
}

// Name returns "arp".
func (*ARP) Name() string { return "arp" }

// Wants asks for frames of EtherType 0x0806.
func (*ARP) Wants() dissect.Wants {
	return dissect.Wants{EtherTypes: []uint16{EtherTypeARP}}
}

// arpMsg is an Ethernet/IPv4 ARP message.
type arpMsg struct {
	op                   uint16
	senderMAC, targetMAC capture.MAC
	senderIP, targetIP   [4]byte
}

// parseARP reads an Ethernet/IPv4 ARP request or reply from b (the bytes
// after the EtherType; Ethernet padding may follow).
func parseARP(b []byte) (m arpMsg, ok bool) {
	if len(b) < arpLen {
		return m, false
	}
	if binary.BigEndian.Uint16(b[0:2]) != 1 || // htype Ethernet
		binary.BigEndian.Uint16(b[2:4]) != 0x0800 || // ptype IPv4
		b[4] != 6 || b[5] != 4 {
		return m, false
	}
	m.op = binary.BigEndian.Uint16(b[6:8])
	if m.op != arpRequest && m.op != arpReply {
		return m, false
	}
	copy(m.senderMAC[:], b[8:14])
	copy(m.senderIP[:], b[14:18])
	copy(m.targetMAC[:], b[18:24])
	copy(m.targetIP[:], b[24:28])
	return m, true
}

// Probe reports whether p is an Ethernet/IPv4 ARP request or reply.
func (*ARP) Probe(p *dissect.Packet) bool {
	if p == nil || p.Packet == nil || p.EtherType != EtherTypeARP {
		return false
	}
	_, ok := parseARP(p.Payload)
	return ok
}

// Handle reads one ARP frame and emits what it learns.
func (d *ARP) Handle(p *dissect.Packet, out dissect.Sink) {
	if p == nil || p.Packet == nil || p.EtherType != EtherTypeARP {
		return
	}
	m, ok := parseARP(p.Payload)
	if !ok || m.senderMAC.IsZero() || m.senderMAC.IsMulticast() {
		return
	}
	now := p.Time.UnixNano()
	if m.senderIP == ([4]byte{}) {
		d.probe(p, m, now, out)
		return
	}
	if !unicastIPv4(m.senderIP) {
		return
	}
	gratuitous := m.senderIP == m.targetIP

	var (
		bind, grat, conflict bool
		prev                 capture.MAC
	)
	d.mu.Lock()
	window := int64(d.window())
	if d.table == nil {
		d.table = make(map[[4]byte]arpEntry)
	}
	e, found := d.table[m.senderIP]
	switch {
	case !found:
		d.makeRoom(now)
		e = arpEntry{mac: m.senderMAC}
		bind = true
	case e.mac != m.senderMAC:
		old := e.mac
		if since(now, e.seen) <= window && !virtualRouterMAC(old) && !virtualRouterMAC(m.senderMAC) {
			// The same pair flapping is one conflict per window.
			samePair := e.prev == m.senderMAC
			if !samePair || since(now, e.conflicted) > window {
				conflict, prev = true, old
				e.conflicted = now
			}
		}
		// A MAC that held the IP just before was reported then.
		bind = e.prev != m.senderMAC || since(now, e.reported) >= int64(d.refresh())
		e.prev, e.mac, e.gratuitous = old, m.senderMAC, false
	default:
		bind = since(now, e.reported) >= int64(d.refresh())
	}
	if gratuitous && (bind || !e.gratuitous) {
		grat = true
		e.gratuitous = true
	}
	e.seen = now
	if bind {
		e.reported = now
	}
	d.table[m.senderIP] = e
	d.mu.Unlock()

	if !bind && !grat && !conflict {
		return
	}
	ip := netip.AddrFrom4(m.senderIP)
	ipStr := ip.String()
	if bind {
		out.Observe(dissect.Observation{Time: p.Time, IP: ip, MAC: m.senderMAC,
			Attr: dissect.AttrIP, Value: ipStr, Protocol: "arp"})
	}
	if grat {
		out.Observe(dissect.Observation{Time: p.Time, IP: ip, MAC: m.senderMAC,
			Attr: AttrARPGratuitous, Value: ipStr, Protocol: "arp"})
	}
	if conflict {
		out.Observe(dissect.Observation{Time: p.Time, IP: ip,
			Attr:     AttrARPConflict,
			Value:    ipStr + " claimed by " + prev.String() + " and " + m.senderMAC.String(),
			Protocol: "arp"})
	}
}

// probe reports the address an ARP probe asks for, once per probing burst.
func (d *ARP) probe(p *dissect.Packet, m arpMsg, now int64, out dissect.Sink) {
	if m.op != arpRequest || !unicastIPv4(m.targetIP) {
		return
	}
	d.mu.Lock()
	repeat := d.probeMAC == m.senderMAC && d.probeIP == m.targetIP &&
		since(now, d.probeTime) <= int64(d.window())
	d.probeMAC, d.probeIP, d.probeTime = m.senderMAC, m.targetIP, now
	d.mu.Unlock()
	if repeat {
		return
	}
	out.Observe(dissect.Observation{Time: p.Time, MAC: m.senderMAC,
		Attr: AttrARPProbe, Value: netip.AddrFrom4(m.targetIP).String(), Protocol: "arp"})
}

// makeRoom keeps the table under its bound before an insertion: it drops
// the entries too old to make a conflict, then, if the table is still more
// than three quarters full, arbitrary entries down to three quarters.
// Each sweep frees at least a quarter of the table, so the cost per
// insertion stays constant on average. d.mu is held.
func (d *ARP) makeRoom(now int64) {
	max := d.MaxEntries
	if max <= 0 {
		max = DefaultARPEntries
	}
	if len(d.table) < max {
		return
	}
	window := int64(d.window())
	for ip, e := range d.table {
		if since(now, e.seen) > window {
			delete(d.table, ip)
		}
	}
	keep := max * 3 / 4
	for ip := range d.table {
		if len(d.table) <= keep {
			break
		}
		delete(d.table, ip)
	}
}

func (d *ARP) window() time.Duration {
	if d.ConflictWindow > 0 {
		return d.ConflictWindow
	}
	return DefaultARPConflictWindow
}

func (d *ARP) refresh() time.Duration {
	if d.Refresh > 0 {
		return d.Refresh
	}
	return DefaultARPRefresh
}

// Len returns the number of IPs in the table.
func (d *ARP) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.table)
}

// since returns now-then, or 0 when packet times run backwards (frames
// from several interfaces).
func since(now, then int64) int64 {
	if now < then {
		return 0
	}
	return now - then
}

// unicastIPv4 reports whether a may be a host's own address: not 0/8,
// loopback, multicast, or the limited broadcast.
func unicastIPv4(a [4]byte) bool {
	return a[0] != 0 && a[0] != 127 && a[0] < 224
}

// virtualRouterMAC reports whether m is a first-hop redundancy protocol's
// virtual MAC (VRRP, HSRP v1/v2, GLBP), which several routers share.
func virtualRouterMAC(m capture.MAC) bool {
	switch {
	case m[0] == 0x00 && m[1] == 0x00 && m[2] == 0x5e && m[3] == 0x00 && (m[4] == 0x01 || m[4] == 0x02):
		return true // VRRP (IPv4, IPv6)
	case m[0] == 0x00 && m[1] == 0x00 && m[2] == 0x0c && m[3] == 0x07 && m[4] == 0xac:
		return true // HSRP v1
	case m[0] == 0x00 && m[1] == 0x00 && m[2] == 0x0c && m[3] == 0x9f && m[4]&0xf0 == 0xf0:
		return true // HSRP v2
	case m[0] == 0x00 && m[1] == 0x07 && m[2] == 0xb4 && m[3] == 0x00:
		return true // GLBP
	}
	return false
}

func init() { register(10, "arp", func() dissect.Dissector { return NewARP() }) }
