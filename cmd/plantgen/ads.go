package main

import "encoding/binary"

// Beckhoff ADS over AMS/TCP 48898 and the TwinCAT discovery service on
// UDP 48899 (Beckhoff ADS specification: AMS/TCP header, AMS header,
// ADS Read Device Info; discovery layout as public scanners read it).

var (
	amsEng = [6]byte{10, 10, 0, 31, 1, 1}
	amsCX  = [6]byte{5, 44, 120, 18, 1, 1}
)

// amsFrame builds an AMS/TCP frame: reserved 0, length, target Net Id and
// port, source Net Id and port, command, state flags (4 request, 5
// response), data length, error 0, invoke id, data.
func amsFrame(target [6]byte, tport uint16, source [6]byte, sport, cmd uint16, resp bool, invoke uint32, data []byte) []byte {
	b := []byte{0, 0}
	b = binary.LittleEndian.AppendUint32(b, uint32(32+len(data)))
	b = append(b, target[:]...)
	b = binary.LittleEndian.AppendUint16(b, tport)
	b = append(b, source[:]...)
	b = binary.LittleEndian.AppendUint16(b, sport)
	b = binary.LittleEndian.AppendUint16(b, cmd)
	state := uint16(4)
	if resp {
		state = 5
	}
	b = binary.LittleEndian.AppendUint16(b, state)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, invoke)
	return append(b, data...)
}

// adsDiscovery builds a discovery request (service 1) or reply
// (0x80000001) with tags 5 host name, 4 OS version, 3 TwinCAT version.
func adsDiscovery(reply bool, netid [6]byte, host string) []byte {
	b := []byte{0x03, 0x66, 0x14, 0x71, 0, 0, 0, 0}
	svc := uint32(1)
	if reply {
		svc |= 0x80000000
	}
	b = binary.LittleEndian.AppendUint32(b, svc)
	b = append(b, netid[:]...)
	b = binary.LittleEndian.AppendUint16(b, 10000)
	if !reply {
		return binary.LittleEndian.AppendUint32(b, 0)
	}
	b = binary.LittleEndian.AppendUint32(b, 3)
	tag := func(id uint16, v []byte) {
		b = binary.LittleEndian.AppendUint16(b, id)
		b = binary.LittleEndian.AppendUint16(b, uint16(len(v)))
		b = append(b, v...)
	}
	tag(5, append([]byte(host), 0))
	osv := binary.LittleEndian.AppendUint32(nil, 276) // OSVERSIONINFO size
	for _, v := range []uint32{7, 0, 0, 3} {          // Windows CE 7.0
		osv = binary.LittleEndian.AppendUint32(osv, v)
	}
	tag(4, append(osv, make([]byte, 256)...))
	tag(3, []byte{3, 1, 0xb8, 0x0f}) // TwinCAT 3.1.4024
	return b
}

func init() {
	addScene("61-ads", func(wr *Wire) {
		// The engineering station looks for TwinCAT systems, then reads
		// the conveyor CX's PLC runtime (port 851) identity and state.
		wr.UDP(eng.MAC, broadcastMAC, eng.IP, 55189, cellBroadcast, 48899, adsDiscovery(false, amsEng, ""))
		wr.UDP(beckhoffCX.MAC, eng.MAC, beckhoffCX.IP, 48899, eng.IP, 55189, adsDiscovery(true, amsCX, "CX-2C7E81"))
		wr.ARP(eng, beckhoffCX)
		s := wr.Dial(eng.MAC, eng.IP, 50310, beckhoffCX.MAC, beckhoffCX.IP, 48898)
		s.Exchange(amsFrame(amsCX, 851, amsEng, 32905, 1, false, 1, nil),
			amsFrame(amsEng, 32905, amsCX, 851, 1, true, 1, append([]byte{0, 0, 0, 0, 3, 1, 0xb8, 0x0f}, padNUL("Plc30 App", 16)...)))
		s.Exchange(amsFrame(amsCX, 851, amsEng, 32905, 4, false, 2, nil),
			amsFrame(amsEng, 32905, amsCX, 851, 4, true, 2, []byte{0, 0, 0, 0, 5, 0, 0, 0}))
		s.Close()
	})
}

// padNUL pads s with NULs to n bytes.
func padNUL(s string, n int) []byte {
	b := make([]byte, n)
	copy(b, s)
	return b
}
