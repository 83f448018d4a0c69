package it

import (
	"encoding/binary"
	"net/netip"
	"strconv"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
)

// ICMPv6 Neighbor Discovery message types (RFC 4861 section 4).
const (
	NDRouterSolicit   = 133
	NDRouterAdvert    = 134
	NDNeighborSolicit = 135
	NDNeighborAdvert  = 136
)

// Attributes and roles the Neighbor Discovery dissector emits.
const (
	AttrNDPPrefixes = "ndp.prefixes" // on-link prefixes a router advertises, "2001:db8:1::/64,..."
	AttrNDPMTU      = "ndp.mtu"      // link MTU a router advertises
	AttrNDPRAFlags  = "ndp.ra_flags" // "M", "O", "MO": managed / other configuration by DHCPv6
	AttrNDPDNS      = "ndp.dns"      // recursive DNS servers a router advertises (RFC 8106)

	RoleIPv6Router = "ipv6-router"
)

// NA flags in ICMPRest (RFC 4861 section 4.4).
const (
	naRouter   = 0x80000000
	naOverride = 0x20000000
)

// maxNDPrefixes bounds the prefixes read from one advertisement.
const maxNDPrefixes = 4

// NDP reads ICMPv6 Neighbor Discovery (RFC 4861): Router and Neighbor
// Solicitations and Advertisements, which bind IPv6 addresses to the MACs
// the messages state, and make routers known.
//
//   - A solicitation binds its source address to its source link-layer
//     address option; a duplicate address detection probe (from ::) binds
//     the address it claims to the frame's source MAC.
//   - A Neighbor Advertisement binds its target to its target link-layer
//     address when it answers for itself or overrides (not a proxy).
//   - A Router Advertisement makes its source a router
//     (dissect.AttrRole "ipv6-router") and tells the prefixes, MTU,
//     M/O flags and DNS servers it gives the link.
//
// Only messages with hop limit 255 are read: RFC 4861 has receivers
// drop others, and they cannot have crossed a router, so the frame's
// source is the sender. NDP repeats nothing it said within
// DefaultDiscoveryRefresh.
type NDP struct {
	seen advertisers // facts said
	msgs advertisers // messages read: a repeated one is not parsed again
}

// NewNDP returns a Neighbor Discovery dissector.
func NewNDP() *NDP { return &NDP{} }

// Name returns "ndp".
func (*NDP) Name() string { return "ndp" }

// Wants asks for ICMPv6.
func (*NDP) Wants() dissect.Wants { return dissect.Wants{IPProtos: []uint8{capture.ProtoICMPv6}} }

// Probe reports whether p is a Neighbor Discovery message with the fixed
// part its type needs, code 0 and hop limit 255.
func (*NDP) Probe(p *dissect.Packet) bool {
	if p == nil || p.Packet == nil || p.IPProto != capture.ProtoICMPv6 || !p.SrcIP.Is6() || p.TTL != 255 || p.ICMPCode != 0 || p.Fragment {
		return false
	}
	switch p.ICMPType {
	case NDRouterSolicit:
		return true
	case NDRouterAdvert:
		return len(p.Payload) >= 8
	case NDNeighborSolicit, NDNeighborAdvert:
		return len(p.Payload) >= 16
	}
	return false
}

// ndOptions is what the options of a message say.
type ndOptions struct {
	src, target   capture.MAC
	hasSrc, hasTg bool
	mtu           uint32
	prefixes      [maxNDPrefixes]netip.Prefix
	numPrefixes   int
	dns           [2]netip.Addr
	numDNS        int
	ok            bool
}

// parseNDOptions reads the options of RFC 4861 section 4.6 in b. Only
// Ethernet link-layer addresses (option length 1) are taken.
func parseNDOptions(b []byte) (o ndOptions) {
	for len(b) > 0 {
		if len(b) < 2 || b[1] == 0 || int(b[1])*8 > len(b) {
			return o // a zero length is invalid: drop the message
		}
		typ, v := b[0], b[:int(b[1])*8]
		b = b[len(v):]
		switch {
		case typ == 1 && len(v) == 8:
			copy(o.src[:], v[2:])
			o.hasSrc = true
		case typ == 2 && len(v) == 8:
			copy(o.target[:], v[2:])
			o.hasTg = true
		case typ == 3 && len(v) == 32 && o.numPrefixes < maxNDPrefixes: // prefix information
			l := int(v[2])
			if l <= 128 && v[3]&0x80 != 0 { // on-link
				if pfx, err := netip.AddrFrom16([16]byte(v[16:32])).Prefix(l); err == nil {
					o.prefixes[o.numPrefixes] = pfx
					o.numPrefixes++
				}
			}
		case typ == 5 && len(v) == 8:
			o.mtu = binary.BigEndian.Uint32(v[4:])
		case typ == 25 && len(v) >= 24: // RDNSS
			for i := 8; i+16 <= len(v) && o.numDNS < len(o.dns); i += 16 {
				o.dns[o.numDNS] = netip.AddrFrom16([16]byte(v[i : i+16]))
				o.numDNS++
			}
		}
	}
	o.ok = true
	return o
}

// Handle reads one Neighbor Discovery message.
func (d *NDP) Handle(p *dissect.Packet, out dissect.Sink) {
	if !d.Probe(p) {
		return
	}
	a := p.SrcIP.As16()
	sum := digest(p.Payload) ^ digest(a[:])*31 ^ uint64(p.ICMPType)<<56 ^ uint64(p.ICMPRest)<<8
	if !d.msgs.fresh(p.SrcMAC, sum, p.Time.UnixNano(), int64(DefaultDiscoveryRefresh)) {
		return
	}
	var o ndOptions
	var target netip.Addr
	switch p.ICMPType {
	case NDRouterSolicit:
		o = parseNDOptions(p.Payload)
	case NDRouterAdvert:
		o = parseNDOptions(p.Payload[8:])
	case NDNeighborSolicit, NDNeighborAdvert:
		target = netip.AddrFrom16([16]byte(p.Payload[:16]))
		o = parseNDOptions(p.Payload[16:])
	}
	if !o.ok {
		return
	}
	src := p.SrcIP
	switch p.ICMPType {
	case NDRouterSolicit:
		if o.hasSrc && !src.IsUnspecified() {
			d.bind(p, src, o.src, out)
		}
	case NDNeighborSolicit:
		switch {
		case src.IsUnspecified() && !o.hasSrc && p.HasEth:
			// Duplicate address detection (RFC 4862 section 5.4.2): the
			// sender is about to take target.
			d.bind(p, target, p.SrcMAC, out)
		case o.hasSrc && !src.IsUnspecified():
			d.bind(p, src, o.src, out)
		}
	case NDNeighborAdvert:
		if o.hasTg && (target == src || p.ICMPRest&naOverride != 0) {
			d.bind(p, target, o.target, out)
		}
		if p.ICMPRest&naRouter != 0 && usableV6(target) {
			d.fact(p, target, capture.MAC{}, dissect.AttrRole, []byte(RoleIPv6Router), out)
		}
	case NDRouterAdvert:
		if !src.IsLinkLocalUnicast() {
			return // RFC 4861 6.1.2: a router advertises from its link-local address
		}
		var mac capture.MAC
		if o.hasSrc {
			mac = o.src
			d.bind(p, src, mac, out)
		}
		if mac.IsZero() || mac.IsMulticast() {
			mac = capture.MAC{}
		}
		d.fact(p, src, mac, dissect.AttrRole, []byte(RoleIPv6Router), out)
		var buf [4 * maxText]byte
		if o.numPrefixes > 0 {
			b := buf[:0]
			for i, pfx := range o.prefixes[:o.numPrefixes] {
				if i > 0 {
					b = append(b, ',')
				}
				b = pfx.AppendTo(b)
			}
			d.fact(p, src, mac, AttrNDPPrefixes, b, out)
		}
		if o.mtu != 0 {
			d.fact(p, src, mac, AttrNDPMTU, strconv.AppendUint(buf[:0], uint64(o.mtu), 10), out)
		}
		b := buf[:0]
		if p.ICMPRest&0x00800000 != 0 {
			b = append(b, 'M')
		}
		if p.ICMPRest&0x00400000 != 0 {
			b = append(b, 'O')
		}
		d.fact(p, src, mac, AttrNDPRAFlags, b, out)
		if o.numDNS > 0 {
			b := buf[:0]
			for i, a := range o.dns[:o.numDNS] {
				if i > 0 {
					b = append(b, ',')
				}
				b = a.AppendTo(b)
			}
			d.fact(p, src, mac, AttrNDPDNS, b, out)
		}
	}
}

// bind binds ip to mac when both are a device's own.
func (d *NDP) bind(p *dissect.Packet, ip netip.Addr, mac capture.MAC, out dissect.Sink) {
	if !usableV6(ip) || !ip.Is6() || mac.IsZero() || mac.IsMulticast() {
		return
	}
	var buf [64]byte
	d.fact(p, ip, mac, dissect.AttrIP, ip.AppendTo(buf[:0]), out)
}

// fact emits attr=v about ip and mac unless said within the refresh
// period.
func (d *NDP) fact(p *dissect.Packet, ip netip.Addr, mac capture.MAC, attr string, v []byte, out dissect.Sink) {
	if len(v) == 0 {
		return
	}
	if !d.seen.fresh(mac, factDigest(ip, attr, v), p.Time.UnixNano(), int64(DefaultDiscoveryRefresh)) {
		return
	}
	out.Observe(dissect.Observation{Time: p.Time, IP: ip, MAC: mac, Attr: attr, Value: string(v), Protocol: "ndp"})
}

func init() { register(64, "ndp", func() dissect.Dissector { return NewNDP() }) }
