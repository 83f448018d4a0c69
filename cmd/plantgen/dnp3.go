package main

import (
	"encoding/binary"
	"net/netip"
	"time"
)

// The substation corner of the plant: a SCADA front end polls a DNP3 RTU,
// an IEC 60870-5-104 RTU and an IEC 61850 protection relay.
var (
	scada   = Device{"scada-fe", mac("98:e7:43:10:01:20"), netip.MustParseAddr("10.10.0.120")}
	dnp3RTU = Device{"rtu-feeder", mac("00:30:a7:10:01:10"), netip.MustParseAddr("10.10.0.110")}
)

// DNP3 link addresses of the master and the outstation.
const (
	dnp3MasterAddr = 1
	dnp3RTUAddr    = 10
)

func init() {
	addScene("40-dnp3", func(wr *Wire) {
		wr.ARP(scada, dnp3RTU)
		s := wr.Dial(scada.MAC, scada.IP, 50400, dnp3RTU.MAC, dnp3RTU.IP, 20000)
		// The master reads the device attributes (g0v254, all), then
		// polls class 0 and operates a breaker (CROB, direct operate).
		s.Exchange(dnp3Request(0, 0x01, []byte{0, 254, 0x06}),
			dnp3Response(0, dnp3Attrs(
				252, "Schweitzer Engineering Laboratories",
				250, "SEL-3505 RTAC",
				242, "R151-V2",
				243, "B",
				248, "3171520401",
				246, "FEEDER-7")))
		for i := byte(1); i < 4; i++ {
			s.Exchange(dnp3Request(i, 0x01, []byte{60, 1, 0x06}),
				dnp3Response(i, []byte{1, 2, 0x00, 0, 1, 0x01, 0x81, 30, 2, 0x00, 0, 1, 0x01, 100 + i, 0, 0x01, 0xe8, 0x03}))
			wr.Advance(time.Second)
		}
		crob := []byte{12, 1, 0x28, 1, 0, 0, 0, 0x41, 1, 0xe8, 0x03, 0, 0, 0, 0, 0, 0, 0}
		s.Exchange(dnp3Request(4, 0x05, crob), dnp3Response(4, crob))
		s.Close()
	})
}

// dnp3CRC is the DNP3 link CRC (IEEE 1815-2012 §9.2.4.2: polynomial
// 0x3D65, reflected, complemented).
func dnp3CRC(b []byte) uint16 {
	var c uint16
	for _, x := range b {
		c ^= uint16(x)
		for range 8 {
			if c&1 != 0 {
				c = c>>1 ^ 0xa6bc
			} else {
				c >>= 1
			}
		}
	}
	return ^c
}

// dnp3Frame builds a link frame (§9.2): header with length, control,
// destination, source and CRC, then the user data in 16-octet blocks,
// each followed by its CRC.
func dnp3Frame(ctl byte, dst, src uint16, user []byte) []byte {
	h := []byte{0x05, 0x64, byte(5 + len(user)), ctl, byte(dst), byte(dst >> 8), byte(src), byte(src >> 8)}
	h = binary.LittleEndian.AppendUint16(h, dnp3CRC(h))
	for len(user) > 0 {
		k := min(16, len(user))
		h = append(h, user[:k]...)
		h = binary.LittleEndian.AppendUint16(h, dnp3CRC(user[:k]))
		user = user[k:]
	}
	return h
}

// dnp3Request is an application request in one transport segment (FIR,
// FIN) in an unconfirmed user data frame from the master (DIR, PRM).
func dnp3Request(seq, fc byte, objects []byte) []byte {
	apdu := append([]byte{0xc0 | seq&0x0f, fc}, objects...)
	return dnp3Frame(0xc4, dnp3RTUAddr, dnp3MasterAddr, append([]byte{0xc0 | seq&0x3f}, apdu...))
}

// dnp3Response is the outstation's response (function 129, no IIN bits
// set) in one frame (PRM, DIR clear).
func dnp3Response(seq byte, objects []byte) []byte {
	apdu := append([]byte{0xc0 | seq&0x0f, 129, 0x00, 0x00}, objects...)
	return dnp3Frame(0x44, dnp3MasterAddr, dnp3RTUAddr, append([]byte{0xc0 | seq&0x3f}, apdu...))
}

// dnp3Attrs encodes device attributes (group 0, §11.9): per attribute the
// variation, qualifier 0x00 with range 0-0, data type 1 (VSTR), length,
// value.
func dnp3Attrs(kv ...any) []byte {
	var b []byte
	for i := 0; i+1 < len(kv); i += 2 {
		v := kv[i+1].(string)
		b = append(b, 0, byte(kv[i].(int)), 0x00, 0, 0, 1, byte(len(v)))
		b = append(b, v...)
	}
	return b
}
