package main

// Red Lion Crimson v3 on TCP 789: the manufacturer (register 012B) and
// model (012A) reads of the public cr3-fingerprint script, answered with
// the same header and a NUL-terminated string (length counts the bytes
// after itself).

func crimsonAnswer(req []byte, s string) []byte {
	b := append(append([]byte{0, 0}, req[2:6]...), s...)
	b = append(b, 0)
	b[0], b[1] = byte((len(b)-2)>>8), byte(len(b)-2)
	return b
}

func init() {
	addScene("70-crimson", func(wr *Wire) {
		// The engineering station's Crimson 3 identifies the dock HMI.
		wr.ARP(eng, redlionHMI)
		s := wr.Dial(eng.MAC, eng.IP, 50789, redlionHMI.MAC, redlionHMI.IP, 789)
		manufacturer := []byte{0x00, 0x04, 0x01, 0x2b, 0x1b, 0x00}
		model := []byte{0x00, 0x04, 0x01, 0x2a, 0x1a, 0x00}
		s.Exchange(manufacturer, crimsonAnswer(manufacturer, "Red Lion Controls"))
		s.Exchange(model, crimsonAnswer(model, "G310C2"))
		s.Close()
	})
}
