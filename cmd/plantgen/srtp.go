package main

import (
	"encoding/binary"
	"net/netip"
	"time"
)

// GE SRTP on TCP 18245, after the DFRWS 2017 paper's request and ACK
// reply structures (as CISA's ICSNPP GE SRTP analyzer reads them): 56-byte
// messages, type at 0 (00 initialise, 01 its reply, 02 request, 03 reply),
// sequence at 2 and 30, mailbox type at 31 (C0 request, D4 ACK), mailbox
// source and destination at 32 and 36, packet numbers at 40-41; a request
// has its service code at 42, segment selector at 43, offset at 44 and
// length at 46; an ACK its status at 42, up to 6 bytes of data at 44,
// and the PLC status word at 54 (GE GFK-0529 Table 3-8, state in bits
// 12-15).

// The mixing line's PACSystems RX3i; its MAC is from GE Intelligent
// Platforms' OUI.
var geRX3i = Device{"plc-mixer", mac("00:09:91:10:01:69"), netip.MustParseAddr("10.10.0.169")}

func srtpHeader(typ, seq, mbox byte) []byte {
	b := make([]byte, 56)
	b[0], b[2], b[30], b[31] = typ, seq, seq, mbox
	b[9], b[17] = 0x01, 0x01
	b[40], b[41] = 1, 1
	return b
}

// srtpRequest is a request for service code svc on selector sel.
func srtpRequest(seq, svc, sel byte, offset, n uint16) []byte {
	b := srtpHeader(0x02, seq, 0xc0)
	copy(b[36:], []byte{0x10, 0x0e, 0x00, 0x00})
	b[42], b[43] = svc, sel
	binary.LittleEndian.PutUint16(b[44:], offset)
	binary.LittleEndian.PutUint16(b[46:], n)
	return b
}

// srtpAckReply is an ACK with up to 6 bytes of data and the status word.
func srtpAckReply(seq byte, data []byte, status uint16) []byte {
	b := srtpHeader(0x03, seq, 0xd4)
	copy(b[32:], []byte{0x10, 0x0e, 0x00, 0x00})
	copy(b[44:50], data)
	b[50], b[51] = 0xff, 0x02                 // not logged in to a program task; privilege level 2
	binary.LittleEndian.PutUint16(b[52:], 10) // last sweep time
	binary.LittleEndian.PutUint16(b[54:], status)
	return b
}

func init() {
	addScene("69-srtp", func(wr *Wire) {
		// The line HMI initialises an SRTP connection to the mixer, asks
		// for the PLC short status (running, I/O enabled), then polls
		// %R1-%R3; the third reply shows a fault entry present.
		wr.ARP(hmi, geRX3i)
		s := wr.Dial(hmi.MAC, hmi.IP, 50690, geRX3i.MAC, geRX3i.IP, 18245)
		initReply := make([]byte, 56)
		initReply[0] = 0x01
		s.Exchange(make([]byte, 56), initReply)
		s.Exchange(srtpRequest(1, 0x00, 0, 0, 0), srtpAckReply(1, nil, 0x0000))
		for i := byte(0); i < 3; i++ {
			status := uint16(0x0000)
			if i == 2 {
				status = 1<<4 | 1<<2 // PLC fault entry present, since last read
			}
			s.Exchange(srtpRequest(2+i, 0x04, 0x08, 0, 3), srtpAckReply(2+i, []byte{0x10, 0, 0x20 + i, 0, 0x30, 0}, status))
			wr.Advance(500 * time.Millisecond)
		}
		s.Close()
	})
}
