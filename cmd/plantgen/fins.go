package main

// Omron FINS over UDP 9600 (FINS Commands Reference Manual W342: section
// 3-2 frame header, 5-3-1 Controller Data Read).

// finsFrame builds a FINS frame: ICF (0x80 command, 0xC0 response), RSV,
// GCT 2, DNA, DA1, DA2, SNA, SA1, SA2, SID, MRC/SRC, then data (a
// response's data starts with the end code).
func finsFrame(resp bool, dstNode, srcNode, sid byte, code uint16, data ...byte) []byte {
	icf := byte(0x80)
	if resp {
		icf = 0xc0
	}
	b := []byte{icf, 0, 2, 0, dstNode, 0, 0, srcNode, 0, sid, byte(code >> 8), byte(code)}
	return append(b, data...)
}

func init() {
	addScene("60-fins", func(wr *Wire) {
		// The HMI (node 21) reads the press PLC's (node 160) model, then
		// polls its DM area.
		wr.ARP(hmi, omronPLC)
		send := func(fromHMI bool, b []byte) {
			if fromHMI {
				wr.UDP(hmi.MAC, omronPLC.MAC, hmi.IP, 9600, omronPLC.IP, 9600, b)
			} else {
				wr.UDP(omronPLC.MAC, hmi.MAC, omronPLC.IP, 9600, hmi.IP, 9600, b)
			}
		}
		// Parameter 00; the CPU answers, as CP1L and CJ2 CPUs do, with the
		// model, the version, 40 bytes for system use and 12 bytes of area
		// data.
		send(true, finsFrame(false, 160, 21, 1, 0x0501, 0x00))
		data := append([]byte{0, 0}, padNUL("CJ2M-CPU33", 20)...)
		data = append(data, padNUL("02.01", 20)...)
		data = append(data, make([]byte, 40)...)
		data = append(data, 0x00, 0x28, 0x17, 0x80, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00)
		send(false, finsFrame(true, 21, 160, 1, 0x0501, data...))
		for i := byte(2); i < 6; i++ {
			// Memory area read: DM (0x82), word 100, bit 0, 4 words.
			send(true, finsFrame(false, 160, 21, i, 0x0101, 0x82, 0x00, 0x64, 0x00, 0x00, 0x04))
			send(false, finsFrame(true, 21, 160, i, 0x0101, 0, 0, 0, 1, 0, 2, 0, 3, 0, 4))
		}
	})
}
