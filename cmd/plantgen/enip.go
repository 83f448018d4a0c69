package main

import (
	"encoding/binary"
	"net/netip"
)

// A Rockwell ControlLogix on the cell: its EtherNet/IP module answers the
// engineering station's ListIdentity broadcast and Identity object read,
// and takes a tag write (CIP vol. 1 and 2; Logix tag services as commonly
// documented).
var logix = Device{"plc-logix", mac("00:00:bc:10:01:30"), netip.MustParseAddr("10.10.0.130")}

// Identity the ControlLogix states.
const (
	logixVendor  = 1    // Rockwell Automation/Allen-Bradley
	logixType    = 0x0e // programmable logic controller
	logixProduct = 94
	logixMajor   = 33
	logixMinor   = 11
	logixSerial  = 0x60c0ffee
	logixName    = "1756-L83E/B"
)

// encap builds an encapsulation message (CIP vol. 2, 2-3.1).
func encap(cmd uint16, session uint32, ctx uint64, data []byte) []byte {
	b := make([]byte, 24, 24+len(data))
	binary.LittleEndian.PutUint16(b, cmd)
	binary.LittleEndian.PutUint16(b[2:], uint16(len(data)))
	binary.LittleEndian.PutUint32(b[4:], session)
	binary.LittleEndian.PutUint64(b[12:], ctx)
	return append(b, data...)
}

// sendRRData wraps a CIP message: interface handle, timeout, CPF with a
// null address item and an unconnected data item (2-4.7, 2-6).
func sendRRData(session uint32, ctx uint64, cip []byte) []byte {
	d := []byte{0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0xb2, 0, 0, 0}
	binary.LittleEndian.PutUint16(d[14:], uint16(len(cip)))
	return encap(0x6f, session, ctx, append(d, cip...))
}

// identityAttrs is the Identity object's attributes 1-8 (vol. 1, 5-2.2).
func identityAttrs() []byte {
	b := binary.LittleEndian.AppendUint16(nil, logixVendor)
	b = binary.LittleEndian.AppendUint16(b, logixType)
	b = binary.LittleEndian.AppendUint16(b, logixProduct)
	b = append(b, logixMajor, logixMinor, 0x60, 0x30)
	b = binary.LittleEndian.AppendUint32(b, logixSerial)
	b = append(b, byte(len(logixName)))
	b = append(b, logixName...)
	return append(b, 3) // state: operational
}

// listIdentityReply is a ListIdentity reply with one CIP identity item
// (vol. 2, 2-4.3.2): version, socket address (big-endian), identity.
func listIdentityReply() []byte {
	item := []byte{1, 0, 0, 2, 0xaf, 0x12}
	item = append(item, logix.IP.AsSlice()...)
	item = append(item, make([]byte, 8)...)
	item = append(item, identityAttrs()...)
	d := []byte{1, 0, 0x0c, 0}
	d = binary.LittleEndian.AppendUint16(d, uint16(len(item)))
	return encap(0x63, 0, 0, append(d, item...))
}

func init() {
	addScene("50-enip", func(wr *Wire) {
		wr.GratuitousARP(logix)
		// ListIdentity: a broadcast request, the module's unicast answer.
		wr.UDP(eng.MAC, broadcastMAC, eng.IP, 44818, netip.MustParseAddr("10.10.0.255"), 44818, encap(0x63, 0, 0, nil))
		wr.UDP(logix.MAC, eng.MAC, logix.IP, 44818, eng.IP, 44818, listIdentityReply())
		s := wr.Dial(eng.MAC, eng.IP, 50300, logix.MAC, logix.IP, 44818)
		reg := encap(0x65, 0, 1, []byte{1, 0, 0, 0})
		regReply := encap(0x65, 0x1b2c3d4e, 1, []byte{1, 0, 0, 0})
		s.Exchange(reg, regReply)
		// Get_Attributes_All on Identity instance 1.
		s.Exchange(sendRRData(0x1b2c3d4e, 2, []byte{0x01, 0x02, 0x20, 0x01, 0x24, 0x01}),
			sendRRData(0x1b2c3d4e, 2, append([]byte{0x81, 0, 0, 0}, identityAttrs()...)))
		// Write Tag "Setpoint" (symbolic segment 0x91), DINT (0xc4), one element.
		tag := []byte{0x4d, 0x05, 0x91, 0x08}
		tag = append(tag, "Setpoint"...)
		tag = append(tag, 0xc4, 0x00, 0x01, 0x00, 0xb0, 0x04, 0x00, 0x00)
		s.Exchange(sendRRData(0x1b2c3d4e, 3, tag), sendRRData(0x1b2c3d4e, 3, []byte{0xcd, 0, 0, 0}))
		s.Close()
	})
}
