package main

import (
	"encoding/binary"
	"net"
	"net/netip"
)

// DHCP message types (RFC 2132 option 53).
const (
	dhcpDiscover = 1
	dhcpOffer    = 2
	dhcpRequest  = 3
	dhcpAck      = 5
)

// dhcpClient is what a client says about itself in its DHCP messages.
type dhcpClient struct {
	MAC         net.HardwareAddr
	Hostname    string // option 12
	VendorClass string // option 60
	Params      []byte // option 55
	FQDN        string // option 81, ASCII encoding (E flag clear)
}

// dhcpMessage builds a BOOTP/DHCP message (RFC 2131 section 2).
func dhcpMessage(op byte, xid uint32, c dhcpClient, ciaddr, yiaddr netip.Addr, opts [][]byte) []byte {
	b := make([]byte, 240)
	b[0] = op // 1 request, 2 reply
	b[1] = 1  // htype Ethernet
	b[2] = 6  // hlen
	binary.BigEndian.PutUint32(b[4:], xid)
	if ciaddr.IsValid() {
		copy(b[12:16], ciaddr.AsSlice())
	}
	if yiaddr.IsValid() {
		copy(b[16:20], yiaddr.AsSlice())
	}
	copy(b[28:34], c.MAC)
	binary.BigEndian.PutUint32(b[236:], 0x63825363) // magic cookie
	for _, o := range opts {
		b = append(b, o...)
	}
	b = append(b, 255) // end
	for len(b) < 300 {
		b = append(b, 0) // pad to the BOOTP minimum
	}
	return b
}

func opt(code byte, v []byte) []byte { return append([]byte{code, byte(len(v))}, v...) }

func u32(v uint32) []byte { b := make([]byte, 4); binary.BigEndian.PutUint32(b, v); return b }

// clientOpts are the options a client puts in DISCOVER and REQUEST.
func (c dhcpClient) clientOpts(msgType byte, requested netip.Addr) [][]byte {
	os := [][]byte{opt(53, []byte{msgType}), opt(61, append([]byte{1}, c.MAC...))}
	if requested.IsValid() {
		os = append(os, opt(50, requested.AsSlice()))
	}
	os = append(os, opt(57, []byte{0x05, 0xdc}))
	if c.Hostname != "" {
		os = append(os, opt(12, []byte(c.Hostname)))
	}
	if c.FQDN != "" {
		os = append(os, opt(81, append([]byte{0x01, 0, 0}, c.FQDN...)))
	}
	if c.VendorClass != "" {
		os = append(os, opt(60, []byte(c.VendorClass)))
	}
	if len(c.Params) > 0 {
		os = append(os, opt(55, c.Params))
	}
	return os
}

// DHCPLease runs DISCOVER, OFFER, REQUEST, ACK between client c and server s,
// which hands out ip with the given lease, router and DNS server.
func (wr *Wire) DHCPLease(c dhcpClient, s Device, ip, router netip.Addr, lease uint32, domain string) {
	xid := binary.BigEndian.Uint32(c.MAC[2:])
	bcast := netip.AddrFrom4([4]byte{255, 255, 255, 255})
	zero := netip.AddrFrom4([4]byte{})
	srvOpts := func(t byte) [][]byte {
		return [][]byte{opt(53, []byte{t}), opt(54, s.IP.AsSlice()), opt(51, u32(lease)),
			opt(1, []byte{255, 255, 255, 0}), opt(3, router.AsSlice()), opt(6, s.IP.AsSlice()), opt(15, []byte(domain))}
	}
	wr.UDP(c.MAC, broadcastMAC, zero, 68, bcast, 67, dhcpMessage(1, xid, c, netip.Addr{}, netip.Addr{}, c.clientOpts(dhcpDiscover, netip.Addr{})))
	wr.UDP(s.MAC, broadcastMAC, s.IP, 67, bcast, 68, dhcpMessage(2, xid, c, netip.Addr{}, ip, srvOpts(dhcpOffer)))
	wr.UDP(c.MAC, broadcastMAC, zero, 68, bcast, 67, dhcpMessage(1, xid, c, netip.Addr{}, netip.Addr{}, append(c.clientOpts(dhcpRequest, ip), opt(54, s.IP.AsSlice()))))
	wr.UDP(s.MAC, broadcastMAC, s.IP, 67, bcast, 68, dhcpMessage(2, xid, c, netip.Addr{}, ip, srvOpts(dhcpAck)))
}
