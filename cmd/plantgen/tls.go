package main

import "encoding/binary"

// clientHello builds a TLS 1.2 ClientHello record (RFC 5246 section 7.4.1.2)
// with a server_name extension (RFC 6066 section 3) for host.
func clientHello(host string, random byte) []byte {
	sni := []byte{0x00} // host_name
	sni = binary.BigEndian.AppendUint16(sni, uint16(len(host)))
	sni = append(sni, host...)
	list := binary.BigEndian.AppendUint16(nil, uint16(len(sni)))
	list = append(list, sni...)
	ext := binary.BigEndian.AppendUint16(nil, 0x0000) // server_name
	ext = binary.BigEndian.AppendUint16(ext, uint16(len(list)))
	ext = append(ext, list...)

	body := []byte{0x03, 0x03} // client_version TLS 1.2
	for i := 0; i < 32; i++ {
		body = append(body, random+byte(i))
	}
	body = append(body, 0)                                  // session id
	body = append(body, 0x00, 0x04, 0xc0, 0x2f, 0xc0, 0x30) // cipher suites
	body = append(body, 1, 0)                               // compression: null
	body = binary.BigEndian.AppendUint16(body, uint16(len(ext)))
	body = append(body, ext...)

	hs := []byte{0x01, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}
	hs = append(hs, body...)
	rec := []byte{0x16, 0x03, 0x01}
	rec = binary.BigEndian.AppendUint16(rec, uint16(len(hs)))
	return append(rec, hs...)
}
