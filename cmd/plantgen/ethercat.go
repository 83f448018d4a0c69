package main

import (
	"encoding/binary"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// EtherCAT frames on the conveyor CX's EtherCAT port (IEC 61158-4-12 /
// ETG.1000.4: frame header, datagrams of command, index, address, length,
// IRQ, data and working counter). The first slave sets the locally
// administered bit of the source MAC of the frames it sends back.

// ecatFrame builds a frame of datagrams (command, ADP, ADO, data length,
// working counter).
func ecatFrame(dgs ...[5]int) []byte {
	var d []byte
	for i, g := range dgs {
		l := uint16(g[3])
		if i < len(dgs)-1 {
			l |= 0x8000
		}
		d = append(d, byte(g[0]), byte(i))
		d = binary.LittleEndian.AppendUint16(d, uint16(g[1]))
		d = binary.LittleEndian.AppendUint16(d, uint16(g[2]))
		d = binary.LittleEndian.AppendUint16(d, l)
		d = append(d, 0, 0)
		d = append(d, make([]byte, g[3])...)
		d = binary.LittleEndian.AppendUint16(d, uint16(g[4]))
	}
	return append(binary.LittleEndian.AppendUint16(nil, uint16(len(d))|1<<12), d...)
}

func init() {
	addScene("67-ethercat", func(wr *Wire) {
		back := append([]byte(nil), ecatPort.MAC...)
		back[0] |= 0x02
		send := func(src []byte, payload []byte) {
			wr.Send(&layers.Ethernet{SrcMAC: src, DstMAC: broadcastMAC, EthernetType: layers.EthernetType(0x88a4)}, gopacket.Payload(payload))
		}
		// Count the slaves (BRD of register 0x0130, AL status), then
		// cyclic process data (LRW) with the four slaves.
		send(ecatPort.MAC, ecatFrame([5]int{7, 0, 0x0130, 2, 0}))
		send(back, ecatFrame([5]int{7, 4, 0x0130, 2, 4}))
		for i := 0; i < 3; i++ {
			send(ecatPort.MAC, ecatFrame([5]int{12, 0, 0x1000, 16, 0}))
			send(back, ecatFrame([5]int{12, 0, 0x1000, 16, 12}))
		}
	})
}
