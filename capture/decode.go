package capture

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"sync/atomic"
)

// More link types the decoder reads, found in captures made by others.
const (
	LinkTokenRing LinkType = 6   // IEEE 802.5 Token Ring
	LinkCHDLC     LinkType = 104 // Cisco HDLC
)

// More encapsulations the decoder removes, beside those of capture.go.
const (
	TunnelIPIP  Tunnel = TunnelERSPAN3 + 1 + iota // IPv4 or IPv6 in IPv4 or IPv6 (IP protocol 4 or 41)
	TunnelVXLAN                                   // VXLAN (UDP port 4789), as cloud traffic mirrors send it
)

// IP protocol numbers of IP-in-IP tunnels.
const (
	protoIPv4inIP uint8 = 4
	protoIPv6inIP uint8 = 41
)

// EtherTypes the decoder reads.
const (
	EtherTypeIPv4   uint16 = 0x0800
	EtherTypeARP    uint16 = 0x0806
	EtherTypeIPv6   uint16 = 0x86DD
	etherTypeVLAN   uint16 = 0x8100 // 802.1Q
	etherTypeQinQ   uint16 = 0x88A8 // 802.1ad
	etherTypeQinQ1  uint16 = 0x9100 // pre-standard QinQ
	etherTypeMPLS   uint16 = 0x8847
	etherTypeMPLSMc uint16 = 0x8848
	etherTypePPPoE  uint16 = 0x8864
	etherTypeTEB    uint16 = 0x6558 // transparent Ethernet bridging (GRE)
	etherTypeERSPAN uint16 = 0x88BE // ERSPAN type I and II
	etherTypeERSP3  uint16 = 0x22EB // ERSPAN type III
	etherTypePPP    uint16 = 0x880B // PPP over enhanced GRE (PPTP)
)

// vxlanPort is the IANA UDP port of VXLAN.
const vxlanPort = 4789

// maxDepth bounds nested encapsulations (GRE in GRE in ...).
const maxDepth = 8

// maxIPv6Ext bounds the IPv6 extension headers walked in one header chain.
const maxIPv6Ext = 16

// Kinds of decode failure; a returned *DecodeError wraps one of them, so
// errors.Is(err, ErrTruncated) tells a short frame from a bad one.
var (
	ErrTruncated   = errors.New("truncated header")
	ErrMalformed   = errors.New("malformed header")
	ErrUnsupported = errors.New("unsupported encapsulation")
)

// DecodeError says which header of a frame could not be read and why.
// The decoder returns package-level values, so a failure allocates nothing.
type DecodeError struct {
	Layer string // "ethernet", "ipv4", "gre", ...
	Kind  error  // ErrTruncated, ErrMalformed or ErrUnsupported
}

func (e *DecodeError) Error() string { return "capture: decode " + e.Layer + ": " + e.Kind.Error() }

// Unwrap returns the kind of failure.
func (e *DecodeError) Unwrap() error { return e.Kind }

func truncated(layer string) *DecodeError   { return &DecodeError{layer, ErrTruncated} }
func malformed(layer string) *DecodeError   { return &DecodeError{layer, ErrMalformed} }
func unsupported(layer string) *DecodeError { return &DecodeError{layer, ErrUnsupported} }

// The errors Decode returns.
var (
	errLinkType      = unsupported("link type")
	errEthTrunc      = truncated("ethernet")
	errVLANTrunc     = truncated("802.1Q tag")
	errSLLTrunc      = truncated("linux cooked header")
	errNullTrunc     = truncated("loopback header")
	errTRTrunc       = truncated("token ring")
	errLLCTrunc      = truncated("802.2 LLC")
	errHDLCTrunc     = truncated("cisco HDLC")
	errMPLSTrunc     = truncated("mpls")
	errPPPoETrunc    = truncated("pppoe")
	errPPPTrunc      = truncated("ppp")
	errIPTrunc       = truncated("ip")
	errIPVersion     = malformed("ip version")
	errIPv4Trunc     = truncated("ipv4")
	errIPv4Bad       = malformed("ipv4")
	errIPv6Trunc     = truncated("ipv6")
	errIPv6ExtTrunc  = truncated("ipv6 extension header")
	errIPv6ExtLong   = malformed("ipv6 extension header chain")
	errTCPTrunc      = truncated("tcp")
	errTCPBad        = malformed("tcp")
	errUDPTrunc      = truncated("udp")
	errICMPTrunc     = truncated("icmp")
	errGRETrunc      = truncated("gre")
	errGREBad        = malformed("gre")
	errGRERouting    = unsupported("gre routing (RFC 1701)")
	errERSPANTrunc   = truncated("erspan")
	errERSPANBad     = malformed("erspan")
	errERSPANFrame   = unsupported("erspan frame type")
	errVXLANTrunc    = truncated("vxlan")
	errTooManyLayers = malformed("nesting deeper than 8 encapsulations")
)

// Decoder decodes frames into Packets. It keeps counters of what it saw;
// Decode must not be called concurrently on one Decoder, Stats may be.
type Decoder struct {
	errs      atomic.Uint64
	fragments atomic.Uint64
}

// Stats returns the decoder's counters: DecodeErrors and Fragments.
func (d *Decoder) Stats() Stats {
	return Stats{DecodeErrors: d.errs.Load(), Fragments: d.fragments.Load()}
}

// Decode resets p and fills it from f, removing mirror and tunnel
// encapsulations (GRE, ERSPAN I/II/III, IP-in-IP, VXLAN) so that p describes
// the innermost frame. Slices in p point into f.Data.
//
// On error (a *DecodeError) p holds what was decoded before the failure,
// e.g. the IP addresses of a frame whose TCP header is cut short, and the
// error is counted. Decode allocates nothing.
func (d *Decoder) Decode(f Frame, p *Packet) error {
	p.Reset()
	p.Time = f.Time
	p.Interface = f.Interface
	p.WireLen = f.WireLen
	err := decodeLink(f.LinkType, f.Data, p)
	if p.Fragment {
		d.fragments.Add(1)
	}
	if err != nil {
		d.errs.Add(1)
	}
	return err
}

func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }
func be32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }

// decodeLink reads the link-layer header of a frame of type lt.
func decodeLink(lt LinkType, b []byte, p *Packet) error {
	switch lt {
	case LinkEthernet:
		return decodeEthernet(b, p, 0)
	case LinkRaw, 12, 14: // 12 and 14 are DLT_RAW as some systems write it
		return decodeRawIP(b, p, 0)
	case LinkIPv4:
		return decodeIPv4(b, p, 0)
	case LinkIPv6:
		return decodeIPv6(b, p, 0)
	case LinkLinuxSLL:
		return decodeSLL(b, p)
	case LinkLinuxSLL2:
		return decodeSLL2(b, p)
	case LinkNull, LinkLoop:
		return decodeNull(lt, b, p)
	case LinkTokenRing:
		return decodeTokenRing(b, p)
	case LinkCHDLC:
		if len(b) < 4 {
			return errHDLCTrunc
		}
		return decodeEtherType(be16(b[2:]), b[4:], p, 0)
	}
	return errLinkType
}

// decodeEthernet reads an Ethernet header and what follows it.
func decodeEthernet(b []byte, p *Packet, depth int) error {
	if len(b) < 14 {
		return errEthTrunc
	}
	p.HasEth = true
	p.DstMAC = MAC(b[0:6])
	p.SrcMAC = MAC(b[6:12])
	p.VLANs = [2]uint16{}
	p.NumVLANs = 0
	return decodeEtherType(be16(b[12:]), b[14:], p, depth)
}

// decodeEtherType reads what follows an EtherType (or 802.3 length) field:
// VLAN tags, then the network layer.
func decodeEtherType(et uint16, b []byte, p *Packet, depth int) error {
	for et == etherTypeVLAN || et == etherTypeQinQ || et == etherTypeQinQ1 {
		if len(b) < 4 {
			return errVLANTrunc
		}
		// Tags beyond the second are skipped: two say the customer and
		// service VLAN, which is all a mirror ever needs.
		if p.NumVLANs < len(p.VLANs) {
			p.VLANs[p.NumVLANs] = be16(b) & 0x0fff
			p.NumVLANs++
		}
		et = be16(b[2:])
		b = b[4:]
	}
	switch {
	case et < 0x0600:
		// 802.3 length: LLC follows, padding may follow it.
		if int(et) <= len(b) {
			b = b[:et]
		}
		p.EtherType = 0
		p.Payload = b
		return nil
	case et == EtherTypeIPv4:
		return decodeIPv4(b, p, depth)
	case et == EtherTypeIPv6:
		return decodeIPv6(b, p, depth)
	case et == etherTypeMPLS || et == etherTypeMPLSMc:
		return decodeMPLS(et, b, p, depth)
	case et == etherTypePPPoE:
		if len(b) < 6 {
			return errPPPoETrunc
		}
		if b[1] != 0 { // code 0 is session data; others are discovery
			p.EtherType = et
			p.Payload = b
			return nil
		}
		return decodePPP(b[6:], p, depth)
	}
	p.EtherType = et
	p.Payload = b
	return nil
}

// decodeMPLS skips an MPLS label stack and guesses the payload from its
// first nibble, as routers do.
func decodeMPLS(et uint16, b []byte, p *Packet, depth int) error {
	for {
		if len(b) < 4 {
			return errMPLSTrunc
		}
		bottom := b[2]&1 == 1
		b = b[4:]
		if bottom {
			break
		}
	}
	if len(b) > 0 {
		switch b[0] >> 4 {
		case 4:
			return decodeIPv4(b, p, depth)
		case 6:
			return decodeIPv6(b, p, depth)
		}
	}
	p.EtherType = et
	p.Payload = b
	return nil
}

// decodePPP reads a PPP header (with or without address/control and
// protocol field compression) and the IP datagram it carries.
func decodePPP(b []byte, p *Packet, depth int) error {
	if len(b) >= 2 && b[0] == 0xff && b[1] == 0x03 {
		b = b[2:]
	}
	if len(b) < 1 {
		return errPPPTrunc
	}
	var proto uint16
	if b[0]&1 == 1 { // compressed one-byte protocol
		proto, b = uint16(b[0]), b[1:]
	} else {
		if len(b) < 2 {
			return errPPPTrunc
		}
		proto, b = be16(b), b[2:]
	}
	switch proto {
	case 0x0021:
		return decodeIPv4(b, p, depth)
	case 0x0057:
		return decodeIPv6(b, p, depth)
	}
	p.EtherType = 0
	p.Payload = b
	return nil
}

// decodeRawIP reads an IP datagram of either version.
func decodeRawIP(b []byte, p *Packet, depth int) error {
	if len(b) < 1 {
		return errIPTrunc
	}
	switch b[0] >> 4 {
	case 4:
		return decodeIPv4(b, p, depth)
	case 6:
		return decodeIPv6(b, p, depth)
	}
	return errIPVersion
}

// decodeSLL reads a Linux cooked capture v1 header.
func decodeSLL(b []byte, p *Packet) error {
	if len(b) < 16 {
		return errSLLTrunc
	}
	sllAddr(be16(b[2:]), int(be16(b[4:])), b[6:14], p)
	return sllProto(be16(b[14:]), b[16:], p)
}

// decodeSLL2 reads a Linux cooked capture v2 header.
func decodeSLL2(b []byte, p *Packet) error {
	if len(b) < 20 {
		return errSLLTrunc
	}
	sllAddr(be16(b[8:]), int(b[11]), b[12:20], p)
	return sllProto(be16(b[0:]), b[20:], p)
}

// sllAddr takes the sender's MAC from a cooked header of an Ethernet
// device. HasEth stays false: there was no Ethernet header to read.
func sllAddr(hatype uint16, alen int, addr []byte, p *Packet) {
	if hatype == 1 && alen == 6 { // ARPHRD_ETHER
		p.SrcMAC = MAC(addr[:6])
	}
}

// sllProto reads what follows a cooked header's protocol field.
func sllProto(proto uint16, b []byte, p *Packet) error {
	switch proto {
	case 0x0001, 0x0004: // 802.3 without LLC (Novell), 802.2 LLC
		p.EtherType = 0
		p.Payload = b
		return nil
	}
	return decodeEtherType(proto, b, p, 0)
}

// decodeNull reads a BSD loopback header: the address family in host
// order (LinkNull, either byte order) or network order (LinkLoop).
func decodeNull(lt LinkType, b []byte, p *Packet) error {
	if len(b) < 4 {
		return errNullTrunc
	}
	fam := be32(b)
	if lt == LinkNull && fam&0xffff0000 != 0 {
		fam = binary.LittleEndian.Uint32(b)
	}
	b = b[4:]
	switch fam {
	case 2: // AF_INET everywhere
		return decodeIPv4(b, p, 0)
	case 10, 24, 28, 30: // AF_INET6 on Linux, NetBSD/OpenBSD, FreeBSD, Darwin
		return decodeIPv6(b, p, 0)
	}
	p.EtherType = 0
	p.Payload = b
	return nil
}

// decodeTokenRing reads an IEEE 802.5 header, its source route if any,
// and the 802.2 LLC (SNAP) header after it.
func decodeTokenRing(b []byte, p *Packet) error {
	if len(b) < 14 {
		return errTRTrunc
	}
	p.DstMAC = MAC(b[2:8])
	p.SrcMAC = MAC(b[8:14])
	b = b[14:]
	if p.SrcMAC[0]&0x80 != 0 { // routing information present
		p.SrcMAC[0] &^= 0x80
		if len(b) < 2 {
			return errTRTrunc
		}
		n := int(b[0] & 0x1f)
		if n < 2 || n > len(b) {
			return errTRTrunc
		}
		b = b[n:]
	}
	return decodeLLC(b, p)
}

// decodeLLC reads an 802.2 LLC header; SNAP with OUI 0 carries an
// EtherType, other LLC payloads are left as they are with EtherType 0.
func decodeLLC(b []byte, p *Packet) error {
	if len(b) < 3 {
		return errLLCTrunc
	}
	if b[0] == 0xaa && b[1] == 0xaa && b[2] == 0x03 {
		if len(b) < 8 {
			return errLLCTrunc
		}
		if b[3] == 0 && b[4] == 0 && b[5] == 0 {
			return decodeEtherType(be16(b[6:]), b[8:], p, 0)
		}
	}
	p.EtherType = 0
	p.Payload = b
	return nil
}

// decodeIPv4 reads an IPv4 header and, unless this is a later fragment,
// the transport header after it.
func decodeIPv4(b []byte, p *Packet, depth int) error {
	if len(b) < 20 {
		return errIPv4Trunc
	}
	if b[0]>>4 != 4 {
		return errIPVersion
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(be16(b[2:]))
	p.EtherType = EtherTypeIPv4
	p.SrcIP = netip.AddrFrom4([4]byte(b[12:16]))
	p.DstIP = netip.AddrFrom4([4]byte(b[16:20]))
	if ihl < 20 {
		return errIPv4Bad
	}
	if len(b) < ihl {
		return errIPv4Trunc
	}
	if total < ihl {
		// TCP segmentation offload writes 0 here on captured outgoing
		// packets; take what was captured.
		if total != 0 {
			return errIPv4Bad
		}
		total = len(b)
	}
	p.IPProto = b[9]
	p.TTL = b[8]
	p.IPLen = total
	p.IPID = be16(b[4:])
	frag := be16(b[6:])
	p.IPDF = frag&0x4000 != 0
	offset := frag & 0x1fff
	p.Fragment = frag&0x2000 != 0 || offset != 0
	if total < len(b) {
		b = b[:total] // drop Ethernet padding
	}
	b = b[ihl:]
	if offset != 0 {
		p.Payload = b
		return nil
	}
	return decodeL4(p.IPProto, b, p, depth)
}

// decodeIPv6 reads an IPv6 header, walks its extension headers and, unless
// this is a later fragment, reads the transport header.
func decodeIPv6(b []byte, p *Packet, depth int) error {
	if len(b) < 40 {
		return errIPv6Trunc
	}
	if b[0]>>4 != 6 {
		return errIPVersion
	}
	plen := int(be16(b[4:]))
	p.EtherType = EtherTypeIPv6
	p.SrcIP = netip.AddrFrom16([16]byte(b[8:24]))
	p.DstIP = netip.AddrFrom16([16]byte(b[24:40]))
	p.TTL = b[7]
	next := b[6]
	b = b[40:]
	if plen != 0 && plen < len(b) { // 0: jumbogram, or offloaded
		b = b[:plen]
	}
	p.IPLen = 40 + len(b)
	if plen != 0 {
		p.IPLen = 40 + plen
	}
	for n := 0; ; n++ {
		if n == maxIPv6Ext {
			return errIPv6ExtLong
		}
		switch next {
		case 0, 43, 60, 135, 139, 140: // hop-by-hop, routing, destination, mobility, HIP, shim6
			if len(b) < 8 {
				p.IPProto = next
				return errIPv6ExtTrunc
			}
			l := (int(b[1]) + 1) * 8
			if l > len(b) {
				p.IPProto = next
				return errIPv6ExtTrunc
			}
			next, b = b[0], b[l:]
			continue
		case 51: // authentication header counts 4-byte words
			if len(b) < 8 {
				p.IPProto = next
				return errIPv6ExtTrunc
			}
			l := (int(b[1]) + 2) * 4
			if l > len(b) {
				p.IPProto = next
				return errIPv6ExtTrunc
			}
			next, b = b[0], b[l:]
			continue
		case 44: // fragment
			if len(b) < 8 {
				p.IPProto = next
				return errIPv6ExtTrunc
			}
			p.Fragment = true
			p.IPID = uint16(be32(b[4:]))
			offset := be16(b[2:]) >> 3
			next, b = b[0], b[8:]
			if offset != 0 {
				p.IPProto = next
				p.Payload = b
				return nil
			}
			continue
		}
		break
	}
	p.IPProto = next
	return decodeL4(next, b, p, depth)
}

// decodeL4 reads the transport header of an IP datagram (or the first
// fragment of one) whose payload is b, or removes a tunnel header.
func decodeL4(proto uint8, b []byte, p *Packet, depth int) error {
	switch proto {
	case ProtoTCP:
		if len(b) < 20 {
			return errTCPTrunc
		}
		off := int(b[12]>>4) * 4
		if off < 20 {
			return errTCPBad
		}
		p.SrcPort = be16(b[0:])
		p.DstPort = be16(b[2:])
		p.TCPSeq = be32(b[4:])
		p.TCPAck = be32(b[8:])
		p.TCPFlags = b[13]
		p.TCPWindow = be16(b[14:])
		if off > len(b) {
			return errTCPTrunc
		}
		p.TCPOptions = b[20:off:off]
		p.Payload = b[off:]
		return nil
	case ProtoUDP:
		if len(b) < 8 {
			return errUDPTrunc
		}
		p.SrcPort = be16(b[0:])
		p.DstPort = be16(b[2:])
		if l := int(be16(b[4:])); l >= 8 && l < len(b) {
			b = b[:l]
		}
		p.Payload = b[8:]
		if p.DstPort == vxlanPort && !p.Fragment {
			return decodeVXLAN(p.Payload, p, depth)
		}
		return nil
	case ProtoICMP, ProtoICMPv6:
		if len(b) < 4 {
			return errICMPTrunc
		}
		p.ICMPType = b[0]
		p.ICMPCode = b[1]
		if len(b) >= 8 {
			p.ICMPRest = be32(b[4:])
			p.Payload = b[8:]
		} else {
			p.Payload = b[len(b):]
		}
		return nil
	case ProtoGRE:
		if p.Fragment {
			break
		}
		return decodeGRE(b, p, depth)
	case protoIPv4inIP:
		if p.Fragment {
			break
		}
		if depth++; depth > maxDepth {
			return errTooManyLayers
		}
		clearLink(p, TunnelIPIP)
		return decodeIPv4(b, p, depth)
	case protoIPv6inIP:
		if p.Fragment {
			break
		}
		if depth++; depth > maxDepth {
			return errTooManyLayers
		}
		clearLink(p, TunnelIPIP)
		return decodeIPv6(b, p, depth)
	}
	p.Payload = b
	return nil
}

// clearLink forgets the outer headers when a tunnel delivers a bare IP
// datagram: the outer MACs and VLANs belong to the tunnel endpoints, not to
// the hosts of the inner datagram.
func clearLink(p *Packet, t Tunnel) {
	p.Tunnel = t
	p.HasEth = false
	p.SrcMAC = MAC{}
	p.DstMAC = MAC{}
	p.VLANs = [2]uint16{}
	p.NumVLANs = 0
	p.Fragment = false
	p.IPDF = false
}

// startInnerFrame is clearLink for a tunnel that delivers a whole frame;
// the inner Ethernet header then says everything again.
func startInnerFrame(p *Packet, t Tunnel) {
	clearLink(p, t)
	p.SrcIP = netip.Addr{}
	p.DstIP = netip.Addr{}
	p.IPProto = 0
	p.TTL = 0
	p.IPLen = 0
	p.IPID = 0
	p.SrcPort, p.DstPort = 0, 0
	p.Payload = nil
}

// decodeGRE removes a GRE header (RFC 2784 and 2890; version 1, the
// enhanced GRE of PPTP, too) and ERSPAN headers carried in GRE.
func decodeGRE(b []byte, p *Packet, depth int) error {
	if depth++; depth > maxDepth {
		return errTooManyLayers
	}
	if len(b) < 4 {
		return errGRETrunc
	}
	flags := b[0]
	version := b[1] & 0x07
	proto := be16(b[2:])
	seq := flags&0x10 != 0
	n := 4
	switch version {
	case 0:
		if flags&0x40 != 0 {
			return errGRERouting
		}
		if flags&0x80 != 0 { // checksum and reserved
			n += 4
		}
		if flags&0x20 != 0 { // key
			n += 4
		}
		if seq {
			n += 4
		}
	case 1:
		// Enhanced GRE: key (payload length, call ID) always present,
		// then sequence and acknowledgment numbers if flagged.
		if flags&0x20 == 0 || flags&0xc0 != 0 {
			return errGREBad
		}
		n += 4
		if seq {
			n += 4
		}
		if b[1]&0x80 != 0 {
			n += 4
		}
	default:
		return errGREBad
	}
	if len(b) < n {
		return errGRETrunc
	}
	b = b[n:]
	switch proto {
	case etherTypeTEB:
		startInnerFrame(p, TunnelGRE)
		return decodeEthernet(b, p, depth)
	case EtherTypeIPv4:
		clearLink(p, TunnelGRE)
		return decodeIPv4(b, p, depth)
	case EtherTypeIPv6:
		clearLink(p, TunnelGRE)
		return decodeIPv6(b, p, depth)
	case etherTypePPP:
		if len(b) == 0 {
			// PPTP acknowledgment without data: the outer
			// datagram is all there is.
			p.Payload = b
			return nil
		}
		clearLink(p, TunnelGRE)
		return decodePPP(b, p, depth)
	case etherTypeERSPAN:
		if !seq {
			// ERSPAN type I: no sequence number, no ERSPAN header.
			startInnerFrame(p, TunnelERSPAN2)
			return decodeEthernet(b, p, depth)
		}
		if len(b) < 8 {
			return errERSPANTrunc
		}
		if b[0]>>4 != 1 {
			return errERSPANBad
		}
		startInnerFrame(p, TunnelERSPAN2)
		return decodeEthernet(b[8:], p, depth)
	case etherTypeERSP3:
		if len(b) < 12 {
			return errERSPANTrunc
		}
		if b[0]>>4 != 2 {
			return errERSPANBad
		}
		frameType := (b[10] >> 2) & 0x1f
		optional := b[11]&1 == 1
		b = b[12:]
		if optional { // platform-specific subheader
			if len(b) < 8 {
				return errERSPANTrunc
			}
			b = b[8:]
		}
		switch frameType {
		case 0: // Ethernet
			startInnerFrame(p, TunnelERSPAN3)
			return decodeEthernet(b, p, depth)
		case 2: // IP
			clearLink(p, TunnelERSPAN3)
			return decodeRawIP(b, p, depth)
		}
		return errERSPANFrame
	}
	// Something else rides in GRE (WCCP, NSH, ...): leave the outer
	// datagram as it is, with the GRE payload.
	p.Payload = b
	return nil
}

// decodeVXLAN removes a VXLAN header and decodes the Ethernet frame it
// carries. A datagram to port 4789 without the VNI flag is left alone.
func decodeVXLAN(b []byte, p *Packet, depth int) error {
	if len(b) < 8 {
		return errVXLANTrunc
	}
	if b[0]&0x08 == 0 {
		return nil
	}
	if depth++; depth > maxDepth {
		return errTooManyLayers
	}
	startInnerFrame(p, TunnelVXLAN)
	if len(b) < 8+14 {
		return errVXLANTrunc
	}
	return decodeEthernet(b[8:], p, depth)
}
