package main

import "encoding/binary"

// Modbus/TCP frames (Modbus Messaging on TCP/IP Implementation Guide
// v1.0b, section 3.1.3: the MBAP header; Modbus Application Protocol
// v1.1b3, section 6: function codes).

// mbap wraps a PDU in the MBAP header: transaction id, protocol id 0,
// length (unit id + PDU), unit id.
func mbap(tid uint16, unit byte, pdu []byte) []byte {
	b := make([]byte, 7, 7+len(pdu))
	binary.BigEndian.PutUint16(b[0:], tid)
	binary.BigEndian.PutUint16(b[4:], uint16(1+len(pdu)))
	b[6] = unit
	return append(b, pdu...)
}

// readHoldingRegisters (function 3) asks for n registers from addr.
func readHoldingRegisters(addr, n uint16) []byte {
	return []byte{0x03, byte(addr >> 8), byte(addr), byte(n >> 8), byte(n)}
}

// readHoldingRegistersReply answers with n registers of value v+i.
func readHoldingRegistersReply(n uint16, v uint16) []byte {
	b := []byte{0x03, byte(2 * n)}
	for i := uint16(0); i < n; i++ {
		b = binary.BigEndian.AppendUint16(b, v+i)
	}
	return b
}

// writeSingleRegister (function 6) and its echo reply.
func writeSingleRegister(addr, v uint16) []byte {
	return []byte{0x06, byte(addr >> 8), byte(addr), byte(v >> 8), byte(v)}
}

// readDeviceID (function 43, MEI type 14, spec section 6.21) asks for the
// basic identification objects (read code 1) from object 0.
func readDeviceID() []byte { return []byte{0x2b, 0x0e, 0x01, 0x00} }

// readDeviceIDReply answers with the basic objects: 0 VendorName,
// 1 ProductCode, 2 MajorMinorRevision, all in one response.
func readDeviceIDReply(vendor, product, revision string) []byte {
	b := []byte{0x2b, 0x0e, 0x01, 0x01, 0x00, 0x00, 3}
	for id, v := range []string{vendor, product, revision} {
		b = append(b, byte(id), byte(len(v)))
		b = append(b, v...)
	}
	return b
}
