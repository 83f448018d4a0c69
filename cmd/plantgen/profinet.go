package main

import (
	"encoding/binary"
	"net"
	"net/netip"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// A Siemens ET 200SP Profinet IO device answers the engineering station's
// DCP Identify (IEC 61158-6-10: frame ids 0xfefe request, 0xfeff response;
// options 1 IP, 2 device properties).
var et200 = Device{"et200sp-fill", mac("00:1b:1b:10:01:45"), netip.MustParseAddr("10.10.0.145")}

var pnMulticast = net.HardwareAddr{0x01, 0x0e, 0xcf, 0x00, 0x00, 0x00}

// dcpBlock is a block of a response: option, suboption, length, block
// info (0), data, padding to an even length.
func dcpBlock(opt, sub byte, data []byte) []byte {
	b := []byte{opt, sub, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(b[2:], uint16(2+len(data)))
	b = append(b, data...)
	if len(b)%2 == 1 {
		b = append(b, 0)
	}
	return b
}

func dcp(frameID uint16, svc, typ byte, xid uint32, delay uint16, blocks []byte) []byte {
	b := make([]byte, 12, 12+len(blocks))
	binary.BigEndian.PutUint16(b, frameID)
	b[2], b[3] = svc, typ
	binary.BigEndian.PutUint32(b[4:], xid)
	binary.BigEndian.PutUint16(b[8:], delay)
	binary.BigEndian.PutUint16(b[10:], uint16(len(blocks)))
	b = append(b, blocks...)
	for len(b) < 46-0 { // pad the frame to Ethernet's minimum
		b = append(b, 0)
	}
	return b
}

func init() {
	addScene("52-profinet", func(wr *Wire) {
		// Identify all: option 0xff, suboption 0xff, no data.
		req := dcp(0xfefe, 5, 0, 0x1001, 1, []byte{0xff, 0xff, 0, 0})
		wr.Send(eth(eng.MAC, pnMulticast, layers.EthernetType(0x8892)), gopacket.Payload(req))
		var blocks []byte
		blocks = append(blocks, dcpBlock(2, 1, []byte("ET200SP"))...)
		blocks = append(blocks, dcpBlock(2, 2, []byte("et200sp-fill"))...)
		blocks = append(blocks, dcpBlock(2, 3, []byte{0x00, 0x2a, 0x03, 0x13})...)
		blocks = append(blocks, dcpBlock(2, 4, []byte{0x01, 0x00})...)
		ip := append(append(et200.IP.AsSlice(), 255, 255, 255, 0), router.IP.AsSlice()...)
		blocks = append(blocks, dcpBlock(1, 2, ip)...)
		resp := dcp(0xfeff, 5, 1, 0x1001, 0, blocks)
		wr.Send(eth(et200.MAC, eng.MAC, layers.EthernetType(0x8892)), gopacket.Payload(resp))
	})
}
