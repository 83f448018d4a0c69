package main

import (
	"math"
	"net/netip"
	"time"
)

// An IEC 60870-5-104 RTU in the substation, polled by the SCADA front end
// (defined with the DNP3 scene): common addresses 1 (the bay) and 2 (the
// transformer).
var iec104RTU = Device{"rtu-substation", mac("00:11:00:10:01:11"), netip.MustParseAddr("10.10.0.111")}

func init() {
	addScene("40-iec104", func(wr *Wire) {
		wr.ARP(scada, iec104RTU)
		s := wr.Dial(scada.MAC, scada.IP, 50500, iec104RTU.MAC, iec104RTU.IP, 2404)
		var ns, nr uint16 // send sequence numbers of the SCADA and of the RTU
		i := func(fromSCADA bool, typ, cot byte, ca uint16, ioa uint32, elem ...byte) []byte {
			var b []byte
			if fromSCADA {
				b = iec104I(ns, nr, typ, cot, ca, ioa, elem...)
				ns++
			} else {
				b = iec104I(nr, ns, typ, cot, ca, ioa, elem...)
				nr++
			}
			return b
		}
		s.Exchange(iec104U(0x07), iec104U(0x0b)) // STARTDT act, con
		// General interrogation of common address 1.
		s.Exchange(i(true, 100, 6, 1, 0, 20), i(false, 100, 7, 1, 0, 20))
		s.Exchange(nil, i(false, 13, 20, 1, 1001, iec104Float(11.4)...))
		s.Exchange(nil, i(false, 1, 20, 1, 2001, 0x01))
		s.Exchange(nil, i(false, 100, 10, 1, 0, 20))
		s.Exchange(iec104S(nr), nil)
		// Clock synchronisation, then a breaker command (select-less).
		s.Exchange(i(true, 103, 6, 1, 0, iec104Time()...), i(false, 103, 7, 1, 0, iec104Time()...))
		s.Exchange(i(true, 45, 6, 1, 3001, 0x01), i(false, 45, 7, 1, 3001, 0x01))
		s.Exchange(nil, i(false, 45, 10, 1, 3001, 0x01))
		// Spontaneous measurements of the transformer.
		for k := range 3 {
			wr.Advance(2 * time.Second)
			s.Exchange(nil, i(false, 13, 3, 2, 1101, iec104Float(62.5+float32(k))...))
		}
		s.Exchange(iec104S(nr), nil)
		s.Exchange(iec104U(0x43), iec104U(0x83)) // TESTFR act, con
		s.Close()
	})
}

// iec104U is a U-format APDU (IEC 60870-5-104 §5.3).
func iec104U(c byte) []byte { return []byte{0x68, 4, c, 0, 0, 0} }

// iec104S is an S-format APDU acknowledging up to nr (§5.2).
func iec104S(nr uint16) []byte { return []byte{0x68, 4, 1, 0, byte(nr << 1), byte(nr >> 7)} }

// iec104I is an I-format APDU (§5.1) carrying an ASDU with one
// information object (IEC 60870-5-101 §7.2): type id, VSQ 1, cause of
// transmission, originator 0, common address, object address (3 octets),
// element.
func iec104I(ns, nr uint16, typ, cot byte, ca uint16, ioa uint32, elem ...byte) []byte {
	asdu := []byte{typ, 1, cot, 0, byte(ca), byte(ca >> 8), byte(ioa), byte(ioa >> 8), byte(ioa >> 16)}
	asdu = append(asdu, elem...)
	return append([]byte{0x68, byte(4 + len(asdu)), byte(ns << 1), byte(ns >> 7), byte(nr << 1), byte(nr >> 7)}, asdu...)
}

// iec104Float is a short floating point value with a good quality
// descriptor (M_ME_NC_1 element).
func iec104Float(v float32) []byte {
	u := math.Float32bits(v)
	return []byte{byte(u), byte(u >> 8), byte(u >> 16), byte(u >> 24), 0x00}
}

// iec104Time is a CP56Time2a: 2026-01-05 08:00:00.000.
func iec104Time() []byte { return []byte{0, 0, 0, 8, 5, 1, 26} }
