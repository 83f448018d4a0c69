package main

import (
	"net/netip"
	"slices"
)

// An IEC 61850 feeder protection relay. The SCADA front end (see the DNP3
// scene) associates over MMS, identifies it, lists its logical devices and
// reads a status value.
var ied = Device{"ied-feeder1", mac("60:39:1f:10:01:12"), netip.MustParseAddr("10.10.0.112")}

func init() {
	addScene("40-mms", func(wr *Wire) {
		wr.ARP(scada, ied)
		s := wr.Dial(scada.MAC, scada.IP, 50600, ied.MAC, ied.IP, 102)
		s.Exchange(cotpConnect(0xe0, 0, 2, []byte{0, 1}, []byte{0, 1}), cotpConnect(0xd0, 2, 0x21, []byte{0, 1}, []byte{0, 1}))
		s.Exchange(mmsConnect(), mmsAccept())
		s.Exchange(mmsRequest(1, []byte{0x82, 0x00}), // identify
			mmsResponse(1, mmsBER(0xa2, mmsStr(0x80, "ABB"), mmsStr(0x81, "REF615"), mmsStr(0x82, "5.0 FP1"))))
		s.Exchange(mmsRequest(2, mmsBER(0xa1, mmsBER(0xa0, []byte{0x80, 1, 9}), mmsBER(0xa1, []byte{0x80, 0}))), // getNameList domains
			mmsResponse(2, mmsBER(0xa1, mmsBER(0xa0, mmsStr(0x1a, "AA1J1Q01A1LD0"), mmsStr(0x1a, "AA1J1Q01A1CTRL"), mmsStr(0x1a, "AA1J1Q01A1PROT")), []byte{0x81, 1, 0})))
		read := mmsBER(0xa4, mmsBER(0xa1, mmsBER(0xa0, mmsBER(0x30, mmsBER(0xa0, mmsBER(0xa1, mmsStr(0x1a, "AA1J1Q01A1CTRL"), mmsStr(0x1a, "CBCSWI1$ST$Pos$stVal")))))))
		s.Exchange(mmsRequest(3, read), mmsResponse(3, mmsBER(0xa4, mmsBER(0xa1, []byte{0x84, 2, 6, 0x80}))))
		s.Close()
	})
}

// mmsBER encodes an element with identifier id and the concatenated
// contents (ITU-T X.690, definite length).
func mmsBER(id byte, content ...[]byte) []byte {
	c := slices.Concat(content...)
	b := []byte{id}
	switch {
	case len(c) < 0x80:
		b = append(b, byte(len(c)))
	case len(c) < 0x100:
		b = append(b, 0x81, byte(len(c)))
	default:
		b = append(b, 0x82, byte(len(c)>>8), byte(len(c)))
	}
	return append(b, c...)
}

func mmsStr(id byte, s string) []byte { return mmsBER(id, []byte(s)) }

// mmsData carries an MMS PDU in the data phase: session GIVE TOKENS and
// DATA TRANSFER SPDUs (ISO 8327-1), presentation fully-encoded-data on
// context 3 (ISO 8823-1), COTP DT.
func mmsData(pdu []byte) []byte {
	return cotpTPKT(slices.Concat([]byte{1, 0, 1, 0}, mmsBER(0x61, mmsBER(0x30, []byte{2, 1, 3}, mmsBER(0xa0, pdu)))))
}

// mmsRequest and mmsResponse are confirmed-RequestPDU [0] and
// confirmed-ResponsePDU [1] (ISO 9506-2 §7) with an invoke id.
func mmsRequest(invoke byte, service []byte) []byte {
	return mmsData(mmsBER(0xa0, []byte{2, 1, invoke}, service))
}

func mmsResponse(invoke byte, service []byte) []byte {
	return mmsData(mmsBER(0xa1, []byte{2, 1, invoke}, service))
}

// mmsInitiate is an initiate-RequestPDU (0xa8) or -ResponsePDU (0xa9)
// (ISO 9506-2 §8.2): local detail 65000, 5 outstanding requests each way,
// nesting level 10, version 1, parameter CBBs and services supported.
func mmsInitiate(tag byte) []byte {
	return mmsBER(tag, []byte{0x80, 3, 0, 0xfd, 0xe8, 0x81, 1, 5, 0x82, 1, 5, 0x83, 1, 10},
		mmsBER(0xa4, []byte{0x80, 1, 1, 0x81, 3, 5, 0xf1, 0, 0x82, 12, 3, 0xee, 0x1c, 0, 0, 4, 8, 0, 0, 0x79, 0xef, 0x18}))
}

// mmsConnect is the session CONNECT SPDU carrying a presentation CP-type
// (contexts 1 ACSE and 3 MMS, BER) with an ACSE AARQ (ISO 8650-1) whose
// user information is the MMS initiate request.
func mmsConnect() []byte {
	aarq := mmsBER(0x60, mmsBER(0xa1, []byte{6, 5, 0x28, 0xca, 0x22, 2, 3}),
		mmsBER(0xbe, mmsBER(0x28, []byte{2, 1, 3}, mmsBER(0xa0, mmsInitiate(0xa8)))))
	cp := mmsBER(0x31, mmsBER(0xa0, []byte{0x80, 1, 1}), mmsBER(0xa2,
		[]byte{0x81, 4, 0, 0, 0, 1, 0x82, 4, 0, 0, 0, 1},
		mmsBER(0xa4, mmsBER(0x30, []byte{2, 1, 1, 6, 4, 0x52, 1, 0, 1}, mmsBER(0x30, []byte{6, 2, 0x51, 1})),
			mmsBER(0x30, []byte{2, 1, 3, 6, 5, 0x28, 0xca, 0x22, 2, 1}, mmsBER(0x30, []byte{6, 2, 0x51, 1}))),
		mmsBER(0x61, mmsBER(0x30, []byte{2, 1, 1}, mmsBER(0xa0, aarq)))))
	return mmsSPDU(0x0d, cp)
}

// mmsAccept is the session ACCEPT SPDU: CPA-type with both contexts
// accepted and an ACSE AARE holding the initiate response.
func mmsAccept() []byte {
	aare := mmsBER(0x61, mmsBER(0xa1, []byte{6, 5, 0x28, 0xca, 0x22, 2, 3}), mmsBER(0xa2, []byte{2, 1, 0}),
		mmsBER(0xa3, mmsBER(0xa1, []byte{2, 1, 0})),
		mmsBER(0xbe, mmsBER(0x28, []byte{2, 1, 3}, mmsBER(0xa0, mmsInitiate(0xa9)))))
	cpa := mmsBER(0x31, mmsBER(0xa0, []byte{0x80, 1, 1}), mmsBER(0xa2,
		[]byte{0x83, 4, 0, 0, 0, 1},
		mmsBER(0xa5, mmsBER(0x30, []byte{0x80, 1, 0, 0x81, 2, 0x51, 1}), mmsBER(0x30, []byte{0x80, 1, 0, 0x81, 2, 0x51, 1})),
		mmsBER(0x61, mmsBER(0x30, []byte{2, 1, 1}, mmsBER(0xa0, aare)))))
	return mmsSPDU(0x0e, cpa)
}

// mmsSPDU builds a CONNECT (0x0D) or ACCEPT (0x0E) SPDU (ISO 8327-1
// §8.3): connect/accept item (protocol options 0, version 2), session
// user requirements (full duplex), session selectors, user data (PGI 0xC1).
func mmsSPDU(si byte, user []byte) []byte {
	params := []byte{0x05, 6, 0x13, 1, 0, 0x16, 1, 2, 0x14, 2, 0, 2}
	if si == 0x0d {
		params = append(params, 0x33, 2, 0, 1, 0x34, 2, 0, 1)
	}
	params = append(params, 0xc1)
	if len(user) < 0xff {
		params = append(params, byte(len(user)))
	} else {
		params = append(params, 0xff, byte(len(user)>>8), byte(len(user)))
	}
	params = append(params, user...)
	b := []byte{si}
	if len(params) < 0xff {
		b = append(b, byte(len(params)))
	} else {
		b = append(b, 0xff, byte(len(params)>>8), byte(len(params)))
	}
	return cotpTPKT(append(b, params...))
}
