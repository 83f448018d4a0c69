package main

import (
	"encoding/binary"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// EtherCAT frames on the conveyor CX's EtherCAT port (IEC 61158-4-12 /
// ETG.1000.4: frame header, datagrams of command, index, address, length,
// IRQ, data and working counter). The first slave sets the locally
// administered bit of the source MAC of the frames it sends back. SII
// EEPROM reads go through the ESC registers at 0x0502 (control/status,
// word address, data); SII words 0x08 and 0x0A are the vendor id and the
// product code.

// ecatDatagram is one datagram of a frame.
type ecatDatagram struct {
	cmd      byte
	adp, ado uint16
	data     []byte
	wkc      uint16
}

// ecatFrame builds a frame of datagrams.
func ecatFrame(dgs ...ecatDatagram) []byte {
	var d []byte
	for i, g := range dgs {
		l := uint16(len(g.data))
		if i < len(dgs)-1 {
			l |= 0x8000
		}
		d = append(d, g.cmd, byte(i))
		d = binary.LittleEndian.AppendUint16(d, g.adp)
		d = binary.LittleEndian.AppendUint16(d, g.ado)
		d = binary.LittleEndian.AppendUint16(d, l)
		d = append(d, 0, 0)
		d = append(d, g.data...)
		d = binary.LittleEndian.AppendUint16(d, g.wkc)
	}
	return append(binary.LittleEndian.AppendUint16(nil, uint16(len(d))|1<<12), d...)
}

const (
	ecatAPRD, ecatFPRD, ecatFPWR, ecatBRD, ecatLRW = 1, 4, 5, 7, 12
)

func init() {
	addScene("67-ethercat", func(wr *Wire) {
		back := append([]byte(nil), ecatPort.MAC...)
		back[0] |= 0x02
		send := func(src []byte, payload []byte) {
			wr.Send(&layers.Ethernet{SrcMAC: src, DstMAC: broadcastMAC, EthernetType: layers.EthernetType(0x88a4)}, gopacket.Payload(payload))
		}
		// Count the slaves (BRD of the AL status register 0x0130).
		send(ecatPort.MAC, ecatFrame(ecatDatagram{ecatBRD, 0, 0x0130, make([]byte, 2), 0}))
		send(back, ecatFrame(ecatDatagram{ecatBRD, 4, 0x0130, make([]byte, 2), 4}))
		// Read vendor id and product code (8-byte SII access at word 0x08)
		// of each slave, by configured station address 0x1001..0x1004: an
		// EK1100 coupler, then EL1008, EL2008 and EL3064 terminals
		// (Beckhoff vendor id 2; product code = type number << 16 | 0x3052,
		// 0x2c52 for the coupler).
		products := []uint32{0x044c2c52, 0x03f03052, 0x07d83052, 0x0bf83052}
		for i, pc := range products {
			station := uint16(0x1001 + i)
			send(ecatPort.MAC, ecatFrame(ecatDatagram{ecatFPWR, station, 0x0502, []byte{0x00, 0x01, 0x08, 0x00}, 0}))
			send(back, ecatFrame(ecatDatagram{ecatFPWR, station, 0x0502, []byte{0x00, 0x01, 0x08, 0x00}, 1}))
			poll := []byte{0x40, 0x00, 0x08, 0x00, 0x00, 0x00}
			send(ecatPort.MAC, ecatFrame(ecatDatagram{ecatFPRD, station, 0x0502, make([]byte, 14), 0}))
			data := binary.LittleEndian.AppendUint32(append([]byte(nil), poll...), 2)
			data = binary.LittleEndian.AppendUint32(data, pc)
			send(back, ecatFrame(ecatDatagram{ecatFPRD, station, 0x0502, data, 1}))
		}
		// Cyclic process data (LRW) with the four slaves.
		for i := 0; i < 3; i++ {
			send(ecatPort.MAC, ecatFrame(ecatDatagram{ecatLRW, 0, 0x1000, make([]byte, 16), 0}))
			send(back, ecatFrame(ecatDatagram{ecatLRW, 0, 0x1000, make([]byte, 16), 12}))
		}
	})
}
