package main

import (
	"encoding/binary"
	"net"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// The cell also runs IPv6: the router advertises a unique local prefix and
// hands out addresses by DHCPv6; hosts use EUI-64 link-local addresses.
var (
	cellPrefix = netip.MustParsePrefix("fd10:10::/64")
	opsPC40V6  = netip.MustParseAddr("fd10:10::40")
)

// linkLocal returns the modified EUI-64 link-local address of m (RFC 4291
// appendix A).
func linkLocal(m net.HardwareAddr) netip.Addr {
	return netip.AddrFrom16([16]byte{0xfe, 0x80, 8: m[0] ^ 2, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]})
}

// multicastMAC is the Ethernet address of IPv6 multicast group a (RFC 2464
// section 7).
func multicastMAC(a netip.Addr) net.HardwareAddr {
	b := a.As16()
	return net.HardwareAddr{0x33, 0x33, b[12], b[13], b[14], b[15]}
}

// solicitedNode is the solicited-node multicast address of a (RFC 4291
// section 2.7.1).
func solicitedNode(a netip.Addr) netip.Addr {
	b := a.As16()
	return netip.AddrFrom16([16]byte{0xff, 0x02, 11: 1, 0xff, b[13], b[14], b[15]})
}

// ICMPv6 sends a Neighbor Discovery message (RFC 4861 section 4): rest
// is what follows the checksum.
func (wr *Wire) ICMPv6(srcMAC, dstMAC net.HardwareAddr, src, dst netip.Addr, typ uint8, rest []byte) {
	ip := &layers.IPv6{Version: 6, HopLimit: 255, NextHeader: layers.IPProtocolICMPv6, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, 0)}
	wr.Send(eth(srcMAC, dstMAC, layers.EthernetTypeIPv6), ip, icmp, gopacket.Payload(rest))
}

// UDP6 sends one IPv6 datagram.
func (wr *Wire) UDP6(srcMAC, dstMAC net.HardwareAddr, src netip.Addr, sport uint16, dst netip.Addr, dport uint16, payload []byte) {
	ip := &layers.IPv6{Version: 6, HopLimit: 1, NextHeader: layers.IPProtocolUDP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	wr.Send(eth(srcMAC, dstMAC, layers.EthernetTypeIPv6), ip, udp, gopacket.Payload(payload))
}

// ndLinkAddr is a source (1) or target (2) link-layer address option.
func ndLinkAddr(typ byte, m net.HardwareAddr) []byte { return append([]byte{typ, 1}, m...) }

// dhcp6Opt is one DHCPv6 option (RFC 8415 section 21.1).
func dhcp6Opt(code uint16, vs ...[]byte) []byte {
	var v []byte
	for _, x := range vs {
		v = append(v, x...)
	}
	b := binary.BigEndian.AppendUint16(nil, code)
	b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	return append(b, v...)
}

// duidLLT is a DUID based on link-layer address plus time (RFC 8415
// section 11.2).
func duidLLT(m net.HardwareAddr, t uint32) []byte {
	b := []byte{0, 1, 0, 1}
	b = binary.BigEndian.AppendUint32(b, t)
	return append(b, m...)
}

func init() {
	addScene("20-ipv6", func(wr *Wire) {
		allNodes, allRouters := netip.MustParseAddr("ff02::1"), netip.MustParseAddr("ff02::2")
		rtrLL, hmiLL, engLL, pcLL := linkLocal(router.MAC), linkLocal(hmi.MAC), linkLocal(eng.MAC), linkLocal(opsPC40.MAC)

		// The HMI checks its link-local address is free (RFC 4862
		// section 5.4), then asks for routers.
		dad := append([]byte{0, 0, 0, 0}, hmiLL.AsSlice()...)
		wr.ICMPv6(hmi.MAC, multicastMAC(solicitedNode(hmiLL)), netip.IPv6Unspecified(), solicitedNode(hmiLL), 135, dad)
		wr.Advance(time.Second)
		wr.ICMPv6(hmi.MAC, multicastMAC(allRouters), hmiLL, allRouters, 133, append([]byte{0, 0, 0, 0}, ndLinkAddr(1, hmi.MAC)...))

		// The router advertises the cell's prefix; addresses come from
		// DHCPv6 (M flag).
		ra := []byte{64, 0x80, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0} // hop limit, M, lifetime 1800 s; reachable, retrans
		ra = append(ra, ndLinkAddr(1, router.MAC)...)
		ra = append(ra, 5, 1, 0, 0, 0, 0, 0x05, 0xdc)                                      // MTU 1500
		ra = append(ra, 3, 4, 64, 0x80, 0, 0x27, 0x8d, 0, 0, 0x09, 0x3a, 0x80, 0, 0, 0, 0) // on-link, not autonomous
		ra = append(ra, cellPrefix.Addr().AsSlice()...)
		wr.ICMPv6(router.MAC, multicastMAC(allNodes), rtrLL, allNodes, 134, ra)

		// The engineering station resolves the HMI.
		ns := append([]byte{0, 0, 0, 0}, hmiLL.AsSlice()...)
		wr.ICMPv6(eng.MAC, multicastMAC(solicitedNode(hmiLL)), engLL, solicitedNode(hmiLL), 135, append(ns, ndLinkAddr(1, eng.MAC)...))
		na := append([]byte{0x60, 0, 0, 0}, hmiLL.AsSlice()...) // solicited, override
		wr.ICMPv6(hmi.MAC, eng.MAC, hmiLL, engLL, 136, append(na, ndLinkAddr(2, hmi.MAC)...))

		// The operator PC takes an address by DHCPv6 (RFC 8415 section 18).
		dhcpServers := netip.MustParseAddr("ff02::1:2")
		client := duidLLT(opsPC40.MAC, 0x2e5a1c00)
		server := duidLLT(router.MAC, 0x2d000000)
		// A workgroup PC gives its name alone, a partial name without the
		// root label (RFC 4704 section 4.2).
		fqdn := append([]byte{0x01, byte(len(opsPC40.Name))}, opsPC40.Name...) // S: the server updates the AAAA record
		vendor := append([]byte{0, 0, 0x01, 0x37}, 0, 8)                       // enterprise 311 (Microsoft)
		vendor = append(vendor, "MSFT 5.0"...)
		iaid := []byte{0x0e, 0x18, 0x66, 0xda}
		clientOpts := func(elapsed uint16, ia []byte) []byte {
			b := dhcp6Opt(1, client)
			b = append(b, dhcp6Opt(8, binary.BigEndian.AppendUint16(nil, elapsed))...)
			b = append(b, dhcp6Opt(39, fqdn)...)
			b = append(b, dhcp6Opt(16, vendor)...)
			b = append(b, dhcp6Opt(6, []byte{0, 17, 0, 23, 0, 24, 0, 39})...)
			return append(b, ia...)
		}
		iaAddr := dhcp6Opt(5, opsPC40V6.AsSlice(), []byte{0, 0, 0x38, 0x40, 0, 0, 0x54, 0x60}) // preferred 14400 s, valid 21600 s
		iaFull := dhcp6Opt(3, iaid, []byte{0, 0, 0x1c, 0x20, 0, 0, 0x2d, 0x00}, iaAddr)
		msg := func(typ byte, xid uint32, opts []byte) []byte {
			return append([]byte{typ, byte(xid >> 16), byte(xid >> 8), byte(xid)}, opts...)
		}
		wr.UDP6(opsPC40.MAC, multicastMAC(dhcpServers), pcLL, 546, dhcpServers, 547, msg(1, 0x4a1b2c, clientOpts(0, dhcp6Opt(3, iaid, make([]byte, 8)))))
		wr.UDP6(router.MAC, opsPC40.MAC, rtrLL, 547, pcLL, 546, msg(2, 0x4a1b2c, append(append(dhcp6Opt(1, client), dhcp6Opt(2, server)...), iaFull...)))
		wr.UDP6(opsPC40.MAC, multicastMAC(dhcpServers), pcLL, 546, dhcpServers, 547, msg(3, 0x4a1b2d, append(clientOpts(100, iaFull), dhcp6Opt(2, server)...)))
		wr.UDP6(router.MAC, opsPC40.MAC, rtrLL, 547, pcLL, 546, msg(7, 0x4a1b2d, append(append(dhcp6Opt(1, client), dhcp6Opt(2, server)...), iaFull...)))
	})
}
