package main

import (
	"encoding/binary"
	"net/netip"
)

// A Johnson Controls building controller (air handling of the plant's
// clean room) on BACnet/IP: it answers the engineering station's Who-Is
// with I-Am and its ReadProperty requests on the Device object (ASHRAE
// 135: annex J BVLL, clause 6 NPDU, clauses 15-16 and 20-21 APDU).
var bms = Device{"bms-ahu1", mac("00:10:8d:10:01:40"), netip.MustParseAddr("10.10.0.140")}

const (
	bmsInstance = 140001
	bmsVendor   = 5 // Johnson Controls Inc.
)

// bvll wraps an NPDU (version 1, control 0x00 or 0x04: expecting reply).
func bvll(fn byte, control byte, apdu []byte) []byte {
	b := []byte{0x81, fn, 0, 0, 0x01, control}
	b = append(b, apdu...)
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return b
}

func bacOID(typ, inst uint32) []byte {
	return binary.BigEndian.AppendUint32(nil, typ<<22|inst)
}

// iAm: object id (app tag 12), max APDU 1476 (app tag 2), segmentation
// both (enumerated 0), vendor id (unsigned).
func iAm() []byte {
	b := append([]byte{0x10, 0x00, 0xc4}, bacOID(8, bmsInstance)...)
	b = append(b, 0x22, 0x05, 0xc4, 0x91, 0x00, 0x21, bmsVendor)
	return b
}

// readProperty is a confirmed ReadProperty request (15.5.1.1).
func readProperty(invoke, prop byte) []byte {
	b := []byte{0x00, 0x05, invoke, 0x0c, 0x0c}
	b = append(b, bacOID(8, bmsInstance)...)
	return append(b, 0x19, prop)
}

// readPropertyString is the ReadProperty-ACK of a character string (UTF-8).
func readPropertyString(invoke, prop byte, s string) []byte {
	b := []byte{0x30, invoke, 0x0c, 0x0c}
	b = append(b, bacOID(8, bmsInstance)...)
	b = append(b, 0x19, prop, 0x3e, 0x75, byte(len(s)+1), 0x00)
	b = append(b, s...)
	return append(b, 0x3f)
}

func init() {
	addScene("51-bacnet", func(wr *Wire) {
		wr.GratuitousARP(bms)
		bcast := netip.MustParseAddr("10.10.0.255")
		wr.UDP(eng.MAC, broadcastMAC, eng.IP, 47808, bcast, 47808, bvll(0x0b, 0x00, []byte{0x10, 0x08}))
		wr.UDP(bms.MAC, broadcastMAC, bms.IP, 47808, bcast, 47808, bvll(0x0b, 0x00, iAm()))
		for i, p := range []struct {
			prop byte
			v    string
		}{{121, "Johnson Controls, Inc."}, {70, "MS-FEC2611-0"}, {44, "10.1.5"}, {77, "AHU-1 Clean Room"}, {58, "Building 2, roof"}} {
			inv := byte(i + 1)
			wr.UDP(eng.MAC, bms.MAC, eng.IP, 47808, bms.IP, 47808, bvll(0x0a, 0x04, readProperty(inv, p.prop)))
			wr.UDP(bms.MAC, eng.MAC, bms.IP, 47808, eng.IP, 47808, bvll(0x0a, 0x00, readPropertyString(inv, p.prop, p.v)))
		}
	})
}
