package main

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"strings"
)

// A Siemens S7-1500 on the packaging line. The engineering station reads
// its identification (SZL 0x0011 and 0x001C), the HMI reads and writes a
// data block over S7comm (PUT/GET).
var s7plc = Device{"plc-packaging", mac("00:0e:8c:10:01:00"), netip.MustParseAddr("10.10.0.100")}

func init() {
	addScene("40-s7comm", func(wr *Wire) {
		wr.ARP(eng, s7plc)
		es := wr.Dial(eng.MAC, eng.IP, 50300, s7plc.MAC, s7plc.IP, 102)
		s7Connect(es, 0x01) // PG connection to rack 0, slot 1
		es.Exchange(s7SZLRequest(2, 0x0011, 0x0000), s7SZLAnswer(2, 0x0011, 28,
			s7SZL11(0x0001, "6ES7 515-2AM02-0AB0", 0x0003, 0x0000),
			s7SZL11(0x0006, "6ES7 515-2AM02-0AB0", 0x0003, 0x0000),
			s7SZL11(0x0007, "", 'V'<<8|2, 0x0901)))
		es.Exchange(s7SZLRequest(3, 0x001c, 0x0000), s7SZLAnswer(3, 0x001c, 34,
			s7SZL1C(0x0001, "S71500/ET200MP station_1"),
			s7SZL1C(0x0002, "PLC_PACK2"),
			s7SZL1C(0x0003, "Packaging line 2"),
			s7SZL1C(0x0004, "Original Siemens Equipment"),
			s7SZL1C(0x0005, "S V-L9AB12342019"),
			s7SZL1C(0x0007, "CPU 1515-2 PN"),
			s7SZL1C(0x0008, "SMC_4b1e2a77"),
			s7SZL1C(0x000b, "Hall 3 cabinet 7")))
		es.Close()

		wr.ARP(hmi, s7plc)
		hs := wr.Dial(hmi.MAC, hmi.IP, 49160, s7plc.MAC, s7plc.IP, 102)
		s7Connect(hs, 0x01)
		for i := uint16(0); i < 5; i++ {
			hs.Exchange(s7ReadDB(10+i, 1, 0, 10), s7ReadDBAnswer(10+i, []byte{0, 1, 2, 3, 4, 5, 6, byte(i), 8, 9}))
		}
		hs.Exchange(s7WriteDB(20, 1, 16, []byte{0x04, 0xb0}), s7WriteDBAnswer(20))
		hs.Close()
	})
}

// cotpTPKT wraps user data in a TPKT (RFC 1006 §6) and a COTP data TPDU
// with end of TSDU (ISO 8073 §13.7).
func cotpTPKT(user []byte) []byte {
	b := []byte{3, 0, 0, 0, 2, 0xf0, 0x80}
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)+len(user)))
	return append(b, user...)
}

// cotpConnect builds a COTP CR (0xE0) or CC (0xD0) (ISO 8073 §13.3, 13.4)
// with TPDU size 1024 and the calling and called TSAPs.
func cotpConnect(code byte, dstRef, srcRef uint16, calling, called []byte) []byte {
	t := []byte{0, code, byte(dstRef >> 8), byte(dstRef), byte(srcRef >> 8), byte(srcRef), 0, 0xc0, 1, 0x0a}
	t = append(t, 0xc1, byte(len(calling)))
	t = append(t, calling...)
	t = append(t, 0xc2, byte(len(called)))
	t = append(t, called...)
	t[0] = byte(len(t) - 1)
	b := []byte{3, 0, 0, 0}
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)+len(t)))
	return append(b, t...)
}

// s7Connect opens the ISO transport connection (called TSAP: connection
// type 1 PG, then rack<<5 | slot) and sets up S7 communication.
func s7Connect(s *TCPSession, rackSlot byte) {
	s.Exchange(cotpConnect(0xe0, 0, 1, []byte{0x01, 0x00}, []byte{0x01, rackSlot}),
		cotpConnect(0xd0, 1, 0x44, []byte{0x01, 0x00}, []byte{0x01, rackSlot}))
	setup := []byte{0xf0, 0x00, 0x00, 0x01, 0x00, 0x01, 0x01, 0xe0} // 1 job each way, PDU 480
	s.Exchange(cotpTPKT(s7PDU(1, 1, setup, nil)), cotpTPKT(s7PDU(3, 1, setup, nil)))
}

// s7PDU builds an S7comm PDU: protocol id 0x32, ROSCTR, redundancy id,
// PDU reference, parameter and data lengths, error class and code for
// ack-data (3), then parameter and data.
func s7PDU(rosctr byte, ref uint16, param, data []byte) []byte {
	b := []byte{0x32, rosctr, 0, 0, byte(ref >> 8), byte(ref), byte(len(param) >> 8), byte(len(param)), byte(len(data) >> 8), byte(len(data))}
	if rosctr == 2 || rosctr == 3 {
		b = append(b, 0, 0)
	}
	return slices.Concat(b, param, data)
}

// s7SZLRequest reads an SZL: userdata, CPU functions (group 4), read SZL
// (subfunction 1).
func s7SZLRequest(ref, id, index uint16) []byte {
	return cotpTPKT(s7PDU(7, ref, []byte{0x00, 0x01, 0x12, 0x04, 0x11, 0x44, 0x01, 0x00},
		[]byte{0xff, 0x09, 0x00, 0x04, byte(id >> 8), byte(id), byte(index >> 8), byte(index)}))
}

// s7SZLAnswer answers with records of recLen octets in one PDU.
func s7SZLAnswer(ref, id uint16, recLen int, recs ...[]byte) []byte {
	d := []byte{0xff, 0x09, 0, 0, byte(id >> 8), byte(id), 0, 0, 0, byte(recLen), 0, byte(len(recs))}
	for _, r := range recs {
		d = append(d, r...)
	}
	binary.BigEndian.PutUint16(d[2:], uint16(len(d)-4))
	return cotpTPKT(s7PDU(7, ref, []byte{0x00, 0x01, 0x12, 0x08, 0x12, 0x84, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00}, d))
}

// s7SZL11 is a record of SZL 0x0011 (module identification): index, order
// number (20 characters), module type id, version, release.
func s7SZL11(index uint16, mlfb string, ausbg, ausbe uint16) []byte {
	r := make([]byte, 28)
	binary.BigEndian.PutUint16(r, index)
	copy(r[2:22], mlfb+strings.Repeat(" ", 20))
	binary.BigEndian.PutUint16(r[24:], ausbg)
	binary.BigEndian.PutUint16(r[26:], ausbe)
	return r
}

// s7SZL1C is a record of SZL 0x001C (component identification): index and
// 32 characters, NUL-padded.
func s7SZL1C(index uint16, v string) []byte {
	r := make([]byte, 34)
	binary.BigEndian.PutUint16(r, index)
	copy(r[2:], v)
	return r
}

// s7ReadDB reads n bytes of data block db at byte offset off (job 0x04,
// one item, S7ANY addressing, transport size BYTE, area DB 0x84).
func s7ReadDB(ref, db, off, n uint16) []byte {
	return cotpTPKT(s7PDU(1, ref, slices.Concat([]byte{0x04, 0x01}, s7Item(db, off, n)), nil))
}

func s7Item(db, off, n uint16) []byte {
	a := uint32(off) << 3
	return []byte{0x12, 0x0a, 0x10, 0x02, byte(n >> 8), byte(n), byte(db >> 8), byte(db), 0x84, byte(a >> 16), byte(a >> 8), byte(a)}
}

func s7ReadDBAnswer(ref uint16, v []byte) []byte {
	d := append([]byte{0xff, 0x04, byte(len(v) * 8 >> 8), byte(len(v) * 8)}, v...)
	return cotpTPKT(s7PDU(3, ref, []byte{0x04, 0x01}, d))
}

// s7WriteDB writes v at byte offset off of data block db (job 0x05).
func s7WriteDB(ref, db, off uint16, v []byte) []byte {
	d := append([]byte{0x00, 0x04, byte(len(v) * 8 >> 8), byte(len(v) * 8)}, v...)
	return cotpTPKT(s7PDU(1, ref, slices.Concat([]byte{0x05, 0x01}, s7Item(db, off, uint16(len(v)))), d))
}

func s7WriteDBAnswer(ref uint16) []byte {
	return cotpTPKT(s7PDU(3, ref, []byte{0x05, 0x01}, []byte{0xff}))
}
