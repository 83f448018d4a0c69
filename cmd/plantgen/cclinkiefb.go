package main

import "encoding/binary"

// CC-Link IE Field Basic cyclic data on UDP 61450 (CC-Link IE Field Basic
// specification BAP-C2010; frame structures as in rt-labs' c-link stack).

// cciefbRequest builds a master's cyclic request for one group of slaves
// (one occupied station each).
func cciefbRequest(master Device, seq uint16, slaves ...Device) []byte {
	b := []byte{0x50, 0x00, 0x00, 0xff, 0xff, 0x03, 0x00, 0, 0, 0, 0, 0x70, 0x0e, 0, 0}
	b = append(b, 1, 0, 0, 0, 36, 0)   // protocol version 1, offset of cyclic info 36
	b = append(b, make([]byte, 14)...) // reserved
	b = append(b, 1, 0, 0, 0)          // master running
	b = append(b, make([]byte, 8)...)  // clock
	m := master.IP.As4()
	b = append(b, m[3], m[2], m[1], m[0], 1, 0) // master id, group 1
	b = binary.LittleEndian.AppendUint16(b, seq)
	b = append(b, 0xf4, 0x01, 3, 0, 1, 0) // timeout 500 ms, 3 retries, parameter 1
	b = binary.LittleEndian.AppendUint16(b, uint16(len(slaves)))
	b = append(b, 0xff, 0xff, 0, 0) // cyclic transmission state, reserved
	for _, s := range slaves {
		a := s.IP.As4()
		b = append(b, a[3], a[2], a[1], a[0])
	}
	b = append(b, make([]byte, 72*len(slaves))...) // RY, RWw
	binary.LittleEndian.PutUint16(b[7:], uint16(len(b)-9))
	return b
}

// cciefbResponse builds a slave's cyclic response.
func cciefbResponse(slave Device, seq uint16, vendor uint16, model uint32, version uint16) []byte {
	b := []byte{0xd0, 0x00, 0x00, 0xff, 0xff, 0x03, 0x00, 0, 0, 0, 0}
	b = append(b, 1, 0, 0, 0, 40, 0) // protocol version 1, end code 0, offset 40
	b = append(b, make([]byte, 14)...)
	b = binary.LittleEndian.AppendUint16(b, vendor)
	b = append(b, 0, 0)
	b = binary.LittleEndian.AppendUint32(b, model)
	b = binary.LittleEndian.AppendUint16(b, version)
	b = append(b, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0) // running, no error
	a := slave.IP.As4()
	b = append(b, a[3], a[2], a[1], a[0], 1, 0)
	b = binary.LittleEndian.AppendUint16(b, seq)
	b = append(b, make([]byte, 72)...) // RX, RWr
	binary.LittleEndian.PutUint16(b[7:], uint16(len(b)-9))
	return b
}

func init() {
	addScene("68-cclink-iefb", func(wr *Wire) {
		// The packer's iQ-R CPU is master of a remote I/O station.
		for seq := uint16(1); seq <= 3; seq++ {
			wr.UDP(melsecPLC.MAC, broadcastMAC, melsecPLC.IP, 61450, cellBroadcast, 61450, cciefbRequest(melsecPLC, seq, cclinkIO))
			wr.UDP(cclinkIO.MAC, melsecPLC.MAC, cclinkIO.IP, 61450, melsecPLC.IP, 61450, cciefbResponse(cclinkIO, seq, 0x0001, 0x0000_1234, 0x0002))
		}
	})
}
