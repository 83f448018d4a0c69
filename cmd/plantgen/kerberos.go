package main

// Kerberos: the engineering station, a domain member, asks the domain
// controller for a ticket-granting ticket for its machine account
// (AS-REQ, RFC 4120 section 5.4.1) and is told to pre-authenticate first
// (KRB-ERROR KDC_ERR_PREAUTH_REQUIRED, section 5.9.1), as Windows does.

const krbRealm = "PLANT.EXAMPLE"

func init() {
	addScene("30-kerberos", func(wr *Wire) {
		wr.UDP(eng.MAC, dc.MAC, eng.IP, 50088, dc.IP, 88, krbASRequest())
		wr.UDP(dc.MAC, eng.MAC, dc.IP, 88, eng.IP, 50088, krbPreauthRequired())
	})
}

// krbPrincipal encodes a PrincipalName (section 5.2.2).
func krbPrincipal(nameType uint32, parts ...string) []byte {
	var ss [][]byte
	for _, p := range parts {
		ss = append(ss, ber(0x1b, []byte(p))) // GeneralString
	}
	return berSeq(0x30, berSeq(0xa0, berInt(nameType)), berSeq(0xa1, berSeq(0x30, ss...)))
}

func krbString(s string) []byte { return ber(0x1b, []byte(s)) }

func krbTime(s string) []byte { return ber(0x18, []byte(s)) } // GeneralizedTime

func krbASRequest() []byte {
	body := berSeq(0x30,
		berSeq(0xa0, ber(0x03, []byte{0, 0x40, 0x81, 0x00, 0x10})), // forwardable, renewable, canonicalize, renewable-ok
		berSeq(0xa1, krbPrincipal(1, "ENG-STATION$")),
		berSeq(0xa2, krbString(krbRealm)),
		berSeq(0xa3, krbPrincipal(2, "krbtgt", krbRealm)),
		berSeq(0xa5, krbTime("20370913024805Z")),
		berSeq(0xa6, krbTime("20370913024805Z")),
		berSeq(0xa7, berInt(0x1b2c3d4e)),
		berSeq(0xa8, berSeq(0x30, berInt(18), berInt(17), berInt(23))),
		berSeq(0xa9, berSeq(0x30, berSeq(0x30, // HostAddresses: NetBIOS (20)
			berSeq(0xa0, berInt(20)),
			berSeq(0xa1, ber(0x04, []byte("ENG-STATION     ")))))),
	)
	return berSeq(0x6a, berSeq(0x30,
		berSeq(0xa1, berInt(5)),
		berSeq(0xa2, berInt(10)),
		berSeq(0xa3, berSeq(0x30, berSeq(0x30, // PA-PAC-REQUEST
			berSeq(0xa1, berInt(128)),
			berSeq(0xa2, ber(0x04, berSeq(0x30, berSeq(0xa0, ber(0x01, []byte{0xff})))))))),
		berSeq(0xa4, body)))
}

func krbPreauthRequired() []byte {
	return berSeq(0x7e, berSeq(0x30,
		berSeq(0xa0, berInt(5)),
		berSeq(0xa1, berInt(30)),
		berSeq(0xa4, krbTime("20260105080100Z")),
		berSeq(0xa5, berInt(123456)),
		berSeq(0xa6, berInt(25)), // KDC_ERR_PREAUTH_REQUIRED
		berSeq(0xa9, krbString(krbRealm)),
		berSeq(0xaa, krbPrincipal(2, "krbtgt", krbRealm))))
}
