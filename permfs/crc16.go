package permfs

// crc16Table is CRC-16 with the polynomial x^16 + x^15 + x^2 + 1 (0x8005),
// bit-reflected (0xA001): the CRC ext4's uninit_bg feature uses for group
// descriptor checksums (the kernel's lib/crc16).
var crc16Table = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i)
		for range 8 {
			if c&1 != 0 {
				c = c>>1 ^ 0xA001
			} else {
				c >>= 1
			}
		}
		t[i] = c
	}
	return t
}()

// crc16 continues the CRC crc over b.
func crc16(crc uint16, b []byte) uint16 {
	for _, c := range b {
		crc = crc>>8 ^ crc16Table[byte(crc)^c]
	}
	return crc
}
