package main

import "encoding/binary"

// Mitsubishi SLMP binary 3E frames over TCP (SLMP Reference Manual
// SH-080956ENG, 4.1 request and 4.2 response formats, 5.9 Read Type Name).

// slmpRequest builds a 3E request to the connected station's CPU
// (network 0, station FF, I/O 03FF, multidrop 0), monitoring timer 4 s.
func slmpRequest(cmd, sub uint16, data ...byte) []byte {
	b := []byte{0x50, 0x00, 0x00, 0xff, 0xff, 0x03, 0x00}
	b = binary.LittleEndian.AppendUint16(b, uint16(6+len(data)))
	b = binary.LittleEndian.AppendUint16(b, 0x0010)
	b = binary.LittleEndian.AppendUint16(b, cmd)
	b = binary.LittleEndian.AppendUint16(b, sub)
	return append(b, data...)
}

// slmpResponse builds a 3E response with end code 0.
func slmpResponse(data ...byte) []byte {
	b := []byte{0xd0, 0x00, 0x00, 0xff, 0xff, 0x03, 0x00}
	b = binary.LittleEndian.AppendUint16(b, uint16(2+len(data)))
	b = binary.LittleEndian.AppendUint16(b, 0)
	return append(b, data...)
}

func init() {
	addScene("62-slmp", func(wr *Wire) {
		// The HMI asks the packer's iQ-R CPU its type, then reads D100..D103.
		wr.ARP(hmi, melsecPLC)
		s := wr.Dial(hmi.MAC, hmi.IP, 50400, melsecPLC.MAC, melsecPLC.IP, 5000)
		typeName := binary.LittleEndian.AppendUint16([]byte("R04CPU          "), 0x4800)
		s.Exchange(slmpRequest(0x0101, 0x0000), slmpResponse(typeName...))
		for i := 0; i < 3; i++ {
			// Device read (0401), word units (0000): D (0xA8) from 100, 4 points.
			s.Exchange(slmpRequest(0x0401, 0x0000, 100, 0, 0, 0xa8, 4, 0), slmpResponse(1, 0, 2, 0, 3, 0, 4, 0))
		}
		s.Close()
	})
}
