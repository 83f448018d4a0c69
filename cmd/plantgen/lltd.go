package main

import (
	"encoding/binary"
	"net"
	"unicode/utf16"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

const etherTypeLLTD = layers.EthernetType(0x88d9)

// lltdHeader is the demultiplex header (topology discovery, function fn)
// and the base header of an LLTD frame (LLTD specification section 2.2).
func lltdHeader(fn byte, realDst, realSrc net.HardwareAddr, xid uint16) []byte {
	b := []byte{1, 0, 0, fn}
	b = append(b, realDst...)
	b = append(b, realSrc...)
	return binary.BigEndian.AppendUint16(b, xid)
}

// lltdTLVBytes is one Hello TLV (section 2.2.2).
func lltdTLVBytes(typ byte, v []byte) []byte { return append([]byte{typ, byte(len(v))}, v...) }

func init() {
	addScene("20-lltd", func(wr *Wire) {
		// The engineering station opens the Windows network map: it
		// discovers the segment, and the operator PC's responder says
		// hello with its name and addresses.
		const gen = 0x0001
		discover := lltdHeader(0, broadcastMAC, eng.MAC, 0x0101)
		discover = append(discover, 0, gen, 0, 0) // generation, no stations yet
		wr.Send(eth(eng.MAC, broadcastMAC, etherTypeLLTD), gopacket.Payload(discover))

		hello := lltdHeader(1, broadcastMAC, opsPC40.MAC, 0x0101)
		hello = append(hello, 0, gen)
		hello = append(hello, eng.MAC...)
		hello = append(hello, eng.MAC...)
		var name []byte
		for _, u := range utf16.Encode([]rune(opsPC40.Name)) {
			name = binary.LittleEndian.AppendUint16(name, u)
		}
		for _, t := range [][]byte{
			lltdTLVBytes(0x01, opsPC40.MAC),                      // host id
			lltdTLVBytes(0x02, []byte{0x20, 0, 0, 0}),            // characteristics: full duplex
			lltdTLVBytes(0x03, []byte{0, 0, 0, 6}),               // physical medium: ethernetCsmacd
			lltdTLVBytes(0x07, opsPC40.IP.AsSlice()),             // IPv4 address
			lltdTLVBytes(0x08, linkLocal(opsPC40.MAC).AsSlice()), // IPv6 address
			lltdTLVBytes(0x0f, name),                             // machine name
		} {
			hello = append(hello, t...)
		}
		hello = append(hello, 0) // end of property list
		wr.Send(eth(opsPC40.MAC, broadcastMAC, etherTypeLLTD), gopacket.Payload(hello))
	})
}
