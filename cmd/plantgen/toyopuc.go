package main

import (
	"net/netip"
	"time"
)

// TOYOPUC computer link (JTEKT), after the public computer link summary of
// the 2ET Ethernet module (pytoyopuc-computerlink COMPUTER_LINK_SPEC.md:
// frame FT RC LL LH CMD data; CPU status 32/11 00, clock read 32/70 00,
// word read 1C, word write 1D, relay 60) on the ports of its configuration
// example (TCP 1025, UDP 1027).

// The assembly line's TOYOPUC PLC; its MAC is from the OUI of Toyoda
// Machine Works, the TOYOPUC maker now part of JTEKT.
var toyopucPLC = Device{"plc-assembly", mac("00:60:53:10:02:20"), netip.MustParseAddr("10.10.0.220")}

// toyoMsg builds a computer link frame: FT (0x00 command, 0x80
// response), RC 0, the count of the bytes from CMD on, CMD, data.
func toyoMsg(resp bool, cmd byte, data ...byte) []byte {
	ft := byte(0x00)
	if resp {
		ft = 0x80
	}
	l := 1 + len(data)
	return append([]byte{ft, 0, byte(l), byte(l >> 8), cmd}, data...)
}

func init() {
	addScene("70-toyopuc", func(wr *Wire) {
		// The line HMI opens the computer link on TCP 1025, reads the CPU
		// status (RUN, PC10 mode) and the clock, polls D0100-D0103 and
		// writes a recipe number to D0200.
		wr.ARP(hmi, toyopucPLC)
		s := wr.Dial(hmi.MAC, hmi.IP, 50320, toyopucPLC.MAC, toyopucPLC.IP, 1025)
		s.Exchange(toyoMsg(false, 0x32, 0x11, 0x00),
			toyoMsg(true, 0x32, 0x11, 0x00, 0x81, 0x00, 0x00, 0x00, 0x00, 0x40, 0x00, 0x02))
		s.Exchange(toyoMsg(false, 0x32, 0x70, 0x00),
			toyoMsg(true, 0x32, 0x70, 0x00, 0x30, 0x15, 0x09, 0x23, 0x11, 0x26, 0x01))
		for i := 0; i < 3; i++ {
			s.Exchange(toyoMsg(false, 0x1c, 0x00, 0x11, 0x04, 0x00),
				toyoMsg(true, 0x1c, byte(i), 0x00, 0x10, 0x00, 0x20, 0x00, 0x30, 0x00))
			wr.Advance(500 * time.Millisecond)
		}
		s.Exchange(toyoMsg(false, 0x1d, 0x00, 0x12, 0x07, 0x00), toyoMsg(true, 0x1d))
		s.Close()

		// Over UDP 1027, the HMI reads the CPU status of a PLC behind the
		// assembly PLC: relay to link 0x12, station 2 (ENQ 0x05 out, ACK
		// 0x06 back, then the inner frame without FT and RC, and a pad
		// byte).
		in := []byte{0x03, 0x00, 0x32, 0x11, 0x00}
		relay := append([]byte{0x12, 0x02, 0x00, 0x05}, in...)
		wr.UDP(hmi.MAC, toyopucPLC.MAC, hmi.IP, 12000, toyopucPLC.IP, 1027, toyoMsg(false, 0x60, append(relay, 0)...))
		back := []byte{0x12, 0x02, 0x00, 0x06, 0x0b, 0x00, 0x32, 0x11, 0x00, 0x81, 0, 0, 0, 0, 0, 0, 0x02, 0}
		wr.UDP(toyopucPLC.MAC, hmi.MAC, toyopucPLC.IP, 1027, hmi.IP, 12000, toyoMsg(true, 0x60, back...))
	})
}
