package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// The operator PC and the line printer of the cell: a Windows 7 PC (Dell)
// in the PLANT workgroup and an HP printer that answers UPnP, WSD and
// NetBIOS node status.
var (
	opsPC40   = Device{"OPS-PC40", mac("18:66:da:10:00:40"), netip.MustParseAddr("10.10.0.40")}
	prnLine1  = Device{"PRN-LINE1", mac("b0:0c:d1:10:00:45"), netip.MustParseAddr("10.10.0.45")}
	cellBcast = netip.MustParseAddr("10.10.0.255")
)

const plantWorkgroup = "PLANT"

// nbEncodeName is the first-level encoding of a NetBIOS name (RFC 1001
// section 14.1): 15 characters padded with spaces and the suffix byte,
// each half-byte as a letter 'A'..'P', behind the length 32, then the
// root label.
func nbEncodeName(name string, suffix byte) []byte {
	var raw [16]byte
	copy(raw[:], fmt.Sprintf("%-15s", name))
	raw[15] = suffix
	b := []byte{32}
	for _, c := range raw {
		b = append(b, 'A'+c>>4, 'A'+c&15)
	}
	return append(b, 0)
}

// nbnsRegistrationMsg is a broadcast name registration request (RFC 1002
// section 4.2.2): the question name and an additional NB record pointing
// back at it with the address claimed.
func nbnsRegistrationMsg(id uint16, name string, suffix byte, group bool, ip netip.Addr) []byte {
	b := binary.BigEndian.AppendUint16(nil, id)
	b = append(b, 0x29, 0x10, 0, 1, 0, 0, 0, 0, 0, 1) // registration, RD, B; 1 question, 1 additional
	b = append(b, nbEncodeName(name, suffix)...)
	b = append(b, 0, 0x20, 0, 1)                                  // NB, IN
	b = append(b, 0xc0, 0x0c, 0, 0x20, 0, 1, 0, 0x04, 0x93, 0xe0) // pointer to the name, NB, IN, TTL 300000
	b = append(b, 0, 6)
	flags := uint16(0x0000) // B node
	if group {
		flags |= 0x8000
	}
	b = binary.BigEndian.AppendUint16(b, flags)
	return append(b, ip.AsSlice()...)
}

// nbnsNodeStatusQuery asks a node for its names (RFC 1002 section 4.2.17).
func nbnsNodeStatusQuery(id uint16) []byte {
	b := binary.BigEndian.AppendUint16(nil, id)
	b = append(b, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0)
	b = append(b, nbEncodeName("*\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 0)...)
	return append(b, 0, 0x21, 0, 1)
}

// nbnsNodeStatusReply lists names (name, suffix, group) and the unit id
// (RFC 1002 section 4.2.18).
func nbnsNodeStatusReply(id uint16, names []nbEntry, unit net.HardwareAddr) []byte {
	b := binary.BigEndian.AppendUint16(nil, id)
	b = append(b, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0) // response, authoritative; 1 answer
	b = append(b, nbEncodeName("*\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 0)...)
	rd := []byte{byte(len(names))}
	for _, n := range names {
		rd = append(rd, fmt.Sprintf("%-15s", n.name)...)
		rd = append(rd, n.suffix)
		if n.group {
			rd = append(rd, 0x84, 0) // group, active
		} else {
			rd = append(rd, 0x04, 0) // active
		}
	}
	rd = append(rd, unit...)
	rd = append(rd, make([]byte, 40)...) // jumpers, test result, version, counters
	b = append(b, 0, 0x21, 0, 1, 0, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(rd)))
	return append(b, rd...)
}

type nbEntry struct {
	name   string
	suffix byte
	group  bool
}

// browserHostAnnouncement builds a HostAnnouncement (MS-BRWS section
// 2.2.1) in an SMB Transaction written to the \MAILSLOT\BROWSE mailslot
// (MS-MAIL section 2.2.1; MS-CIFS section 2.2.4.33) in a broadcast NetBIOS
// datagram (RFC 1002 section 4.4.1) to workgroup<1D>.
func browserHostAnnouncement(d Device, workgroup, comment string, major, minor byte, serverType uint32) []byte {
	data := []byte{0x01, 1}                               // HostAnnouncement, update count
	data = binary.LittleEndian.AppendUint32(data, 720000) // periodicity, ms
	var sn [16]byte
	copy(sn[:], d.Name)
	data = append(data, sn[:]...)
	data = append(data, major, minor)
	data = binary.LittleEndian.AppendUint32(data, serverType)
	data = append(data, 15, 1, 0x55, 0xaa) // browser version 15.1, signature
	data = append(append(data, comment...), 0)

	const mailslot = "\\MAILSLOT\\BROWSE\x00"
	smb := []byte("\xffSMB\x25")           // protocol, Transaction
	smb = append(smb, make([]byte, 27)...) // status, flags, flags2, PID high, signature, reserved, TID, PID, UID, MID
	words := make([]byte, 17*2)
	binary.LittleEndian.PutUint16(words[2:], uint16(len(data)))  // total data count
	binary.LittleEndian.PutUint16(words[22:], uint16(len(data))) // data count
	binary.LittleEndian.PutUint16(words[24:], uint16(32+1+len(words)+2+len(mailslot)))
	words[26] = 3                                // setup count
	binary.LittleEndian.PutUint16(words[28:], 1) // mailslot write
	binary.LittleEndian.PutUint16(words[30:], 1) // priority
	binary.LittleEndian.PutUint16(words[32:], 2) // unreliable, broadcast
	smb = append(smb, 17)
	smb = append(smb, words...)
	smb = binary.LittleEndian.AppendUint16(smb, uint16(len(mailslot)+len(data)))
	smb = append(smb, mailslot...)
	smb = append(smb, data...)

	dg := []byte{0x11, 0x02, 0x40, 0x01} // DIRECT_GROUP, first fragment of B node; datagram id
	dg = append(dg, d.IP.AsSlice()...)
	dg = append(dg, 0, 138)
	names := append(nbEncodeName(d.Name, 0x00), nbEncodeName(workgroup, 0x1d)...)
	dg = binary.BigEndian.AppendUint16(dg, uint16(len(names)+len(smb)))
	dg = append(dg, 0, 0) // packet offset
	dg = append(dg, names...)
	return append(dg, smb...)
}

func init() {
	addScene("20-netbios", func(wr *Wire) {
		// The operator PC boots: it registers its names on the cell,
		// then announces itself to the workgroup's browsers.
		for i, n := range []nbEntry{{opsPC40.Name, 0x00, false}, {plantWorkgroup, 0x00, true}, {opsPC40.Name, 0x20, false}, {plantWorkgroup, 0x1e, true}} {
			wr.UDP(opsPC40.MAC, broadcastMAC, opsPC40.IP, 137, cellBcast, 137, nbnsRegistrationMsg(0x8001+uint16(i), n.name, n.suffix, n.group, opsPC40.IP))
			wr.Advance(250 * time.Millisecond)
		}
		// Workstation, server, NT workstation, potential browser; Windows 7.
		wr.UDP(opsPC40.MAC, broadcastMAC, opsPC40.IP, 138, cellBcast, 138, browserHostAnnouncement(opsPC40, plantWorkgroup, "Line 1 operator station", 6, 1, 0x00011003))
		// It looks up the printer's names, as "net view" does.
		wr.UDP(opsPC40.MAC, prnLine1.MAC, opsPC40.IP, 50137, prnLine1.IP, 137, nbnsNodeStatusQuery(0x8010))
		wr.UDP(prnLine1.MAC, opsPC40.MAC, prnLine1.IP, 137, opsPC40.IP, 50137, nbnsNodeStatusReply(0x8010,
			[]nbEntry{{prnLine1.Name, 0x00, false}, {plantWorkgroup, 0x00, true}, {prnLine1.Name, 0x20, false}}, prnLine1.MAC))
	})
}
