package main

import "encoding/binary"

// Opto 22 OptoMMP on TCP 2001 (OptoMMP Protocol Guide: IEEE 1394
// asynchronous packets; status area at FFFF F030 0000 with the firmware
// version at 1C, the unit type at 20 and the unit description at 80).

func optoReadBlock(tl byte, offset uint64, n uint16) []byte {
	b := []byte{0, 0, tl << 2, 5 << 4, 0, 0}
	b = binary.BigEndian.AppendUint16(b, uint16(offset>>32))
	b = binary.BigEndian.AppendUint32(b, uint32(offset))
	b = binary.BigEndian.AppendUint16(b, n)
	return append(b, 0, 0)
}

func optoReadBlockReply(tl byte, data []byte) []byte {
	b := []byte{0, 0, tl << 2, 7 << 4, 0, 0, 0, 0, 0, 0, 0, 0}
	b = binary.BigEndian.AppendUint16(b, uint16(len(data)))
	return append(append(b, 0, 0), data...)
}

func init() {
	addScene("75-optommp", func(wr *Wire) {
		// The HMI reads the boiler PAC's status area, then polls its I/O.
		wr.ARP(hmi, optoPAC)
		s := wr.Dial(hmi.MAC, hmi.IP, 50750, optoPAC.MAC, optoPAC.IP, 2001)
		status := make([]byte, 0xa0)
		copy(status[0x1c:], []byte{10, 2, 0, 3})        // firmware 10.2.0.3
		binary.BigEndian.PutUint32(status[0x20:], 0x8a) // unit type
		copy(status[0x80:], "SNAP-PAC-R1")
		s.Exchange(optoReadBlock(1, 0xfffff0300000, uint16(len(status))), optoReadBlockReply(1, status))
		for tl := byte(2); tl < 5; tl++ {
			s.Exchange(optoReadBlock(tl, 0xfffff0800000, 16), optoReadBlockReply(tl, make([]byte, 16)))
		}
		s.Close()
	})
}
