package main

// SNMP: the engineering station polls the managed switch's system group
// with an SNMPv2c GetRequest (RFC 3416 section 4.2.1) and the switch
// answers with a Response-PDU (section 4.2.4), BER-encoded (X.690).

func init() {
	addScene("30-snmp", func(wr *Wire) {
		req := snmpMessage(0xa0, 0x1234, [][2][]byte{
			{snmpOID(1, 3, 6, 1, 2, 1, 1, 1, 0), berNull()},
			{snmpOID(1, 3, 6, 1, 2, 1, 1, 2, 0), berNull()},
			{snmpOID(1, 3, 6, 1, 2, 1, 1, 5, 0), berNull()},
		})
		resp := snmpMessage(0xa2, 0x1234, [][2][]byte{
			{snmpOID(1, 3, 6, 1, 2, 1, 1, 1, 0), ber(0x04, []byte("Hirschmann Railswitch RS20-0800T1T1SDAUHC 09.0.08"))},
			{snmpOID(1, 3, 6, 1, 2, 1, 1, 2, 0), snmpOID(1, 3, 6, 1, 4, 1, 248, 14, 10, 66)},
			{snmpOID(1, 3, 6, 1, 2, 1, 1, 5, 0), ber(0x04, []byte("sw-cell2"))},
		})
		wr.UDP(eng.MAC, mgdSwitch.MAC, eng.IP, 50161, mgdSwitch.IP, 161, req)
		wr.UDP(mgdSwitch.MAC, eng.MAC, mgdSwitch.IP, 161, eng.IP, 50161, resp)
	})
}

// ber encodes one element with a definite length (X.690 section 8.1.3).
func ber(tag byte, content []byte) []byte {
	b := []byte{tag}
	switch n := len(content); {
	case n < 0x80:
		b = append(b, byte(n))
	case n < 0x100:
		b = append(b, 0x81, byte(n))
	default:
		b = append(b, 0x82, byte(n>>8), byte(n))
	}
	return append(b, content...)
}

// berSeq encodes a SEQUENCE (or a constructed element of tag) of parts.
func berSeq(tag byte, parts ...[]byte) []byte {
	var c []byte
	for _, p := range parts {
		c = append(c, p...)
	}
	return ber(tag, c)
}

func berNull() []byte { return []byte{0x05, 0x00} }

// berInt encodes a non-negative INTEGER.
func berInt(v uint32) []byte {
	var c []byte
	for i := 3; i >= 0; i-- {
		if b := byte(v >> (8 * i)); len(c) > 0 || b != 0 || i == 0 {
			if len(c) == 0 && b&0x80 != 0 {
				c = append(c, 0)
			}
			c = append(c, b)
		}
	}
	return ber(0x02, c)
}

// snmpOID encodes an OBJECT IDENTIFIER (X.690 section 8.19).
func snmpOID(arcs ...uint32) []byte {
	c := []byte{byte(arcs[0]*40 + arcs[1])}
	for _, a := range arcs[2:] {
		var tmp []byte
		for {
			tmp = append([]byte{byte(a & 0x7f)}, tmp...)
			a >>= 7
			if a == 0 {
				break
			}
		}
		for i := 0; i < len(tmp)-1; i++ {
			tmp[i] |= 0x80
		}
		c = append(c, tmp...)
	}
	return ber(0x06, c)
}

// snmpMessage builds an SNMPv2c message (RFC 3416 section 3, RFC 1901)
// with community "public" holding a PDU of tag with varbinds name, value.
func snmpMessage(pduTag byte, reqID uint32, vbs [][2][]byte) []byte {
	var list [][]byte
	for _, vb := range vbs {
		list = append(list, berSeq(0x30, vb[0], vb[1]))
	}
	pdu := berSeq(pduTag, berInt(reqID), berInt(0), berInt(0), berSeq(0x30, list...))
	return berSeq(0x30, berInt(1), ber(0x04, []byte("public")), pdu)
}
