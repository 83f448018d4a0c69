package main

import "fmt"

// SIP: the control room's desk phone registers with the PBX (RFC 3261
// section 10.2) and the PBX accepts (section 10.3).

func init() {
	addScene("30-sip", func(wr *Wire) {
		reg := fmt.Sprintf("REGISTER sip:%s SIP/2.0\r\n"+
			"Via: SIP/2.0/UDP %s:5060;branch=z9hG4bK1d2c3b4a\r\n"+
			"Max-Forwards: 70\r\n"+
			"From: \"Control Room\" <sip:201@%s>;tag=8f3a21\r\n"+
			"To: \"Control Room\" <sip:201@%s>\r\n"+
			"Call-ID: 5e1c9a7b@%s\r\n"+
			"CSeq: 1 REGISTER\r\n"+
			"Contact: <sip:201@%s:5060>\r\n"+
			"Expires: 3600\r\n"+
			"User-Agent: Yealink SIP-T46S 66.86.0.15\r\n"+
			"Content-Length: 0\r\n\r\n", pbx.IP, sipPhone.IP, pbx.IP, pbx.IP, sipPhone.IP, sipPhone.IP)
		ok := fmt.Sprintf("SIP/2.0 200 OK\r\n"+
			"Via: SIP/2.0/UDP %s:5060;branch=z9hG4bK1d2c3b4a\r\n"+
			"From: \"Control Room\" <sip:201@%s>;tag=8f3a21\r\n"+
			"To: \"Control Room\" <sip:201@%s>;tag=as6f1e2d\r\n"+
			"Call-ID: 5e1c9a7b@%s\r\n"+
			"CSeq: 1 REGISTER\r\n"+
			"Contact: <sip:201@%s:5060>;expires=3600\r\n"+
			"Server: Asterisk PBX 18.10.0\r\n"+
			"Content-Length: 0\r\n\r\n", sipPhone.IP, pbx.IP, pbx.IP, sipPhone.IP, sipPhone.IP)
		wr.UDP(sipPhone.MAC, pbx.MAC, sipPhone.IP, 5060, pbx.IP, 5060, []byte(reg))
		wr.UDP(pbx.MAC, sipPhone.MAC, pbx.IP, 5060, sipPhone.IP, 5060, []byte(ok))
	})
}
