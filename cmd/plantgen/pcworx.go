package main

import "encoding/binary"

// Phoenix Contact PC Worx on TCP 1962: session open (type 01), session
// setup (05) and the info request (06), as the public pcworx-info script
// exchanges them; the controller's info reply holds NUL-terminated
// strings at 30 (PLC type), 66 (firmware version), 79 (firmware date),
// 91 (firmware time) and 152 (order number).

func pcworxRequest(typ byte, body ...byte) []byte {
	b := append([]byte{0x01, typ, 0, 0}, body...)
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return b
}

func pcworxInfo(plcType, fw, date, tm, order string) []byte {
	b := make([]byte, 200)
	b[0], b[1] = 0x81, 0x06
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	copy(b[30:], plcType)
	copy(b[66:], fw)
	copy(b[79:], date)
	copy(b[91:], tm)
	copy(b[152:], order)
	return b
}

func init() {
	addScene("65-pcworx", func(wr *Wire) {
		// The engineering station's PC Worx connects to the dosing ILC.
		wr.ARP(eng, phoenixILC)
		s := wr.Dial(eng.MAC, eng.IP, 50650, phoenixILC.MAC, phoenixILC.IP, 1962)
		sid := byte(0x42)
		open := append(make([]byte, 0, 22), 0, 0, 0, 0, 0x78, 0x80, 0, 3, 0, 0x0c)
		open = append(open, "IBETH01N0_M\x00"...)
		s.Exchange(pcworxRequest(0x01, open...), append([]byte{0x81, 0x01, 0, 0x20}, append(make([]byte, 13), sid, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)...))
		s.Exchange(pcworxRequest(0x05, 0, 1, 0, 0, 0x78, 0x80, 0, sid, 0, 0, 0, 6, 0, 4, 2, 0x95, 0, 0), []byte{0x81, 0x05, 0, 8, 0, 1, 0, 0})
		s.Exchange(pcworxRequest(0x06, 0, 2, 0, 0, 0, 0, 0, sid, 4, 0), pcworxInfo("ILC 151 ETH", "4.42", "Jun 12 2019", "10:21:55", "2700974"))
		s.Close()
	})
}
