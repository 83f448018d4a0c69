package main

import (
	"encoding/binary"
	"net/netip"
)

// A Beckhoff controller's OPC UA server answers the HMI's GetEndpoints
// (OPC 10000-6: 7.1.2 Hello/Acknowledge, 6.7 secure channel, 5.2 binary
// encoding; OPC 10000-4 5.4.4 GetEndpoints) on a channel with policy None.
var opcSrv = Device{"cx-opcua", mac("00:01:05:10:01:50"), netip.MustParseAddr("10.10.0.150")}

const (
	opcEndpoint = "opc.tcp://10.10.0.150:4840"
	opcNone     = "http://opcfoundation.org/UA/SecurityPolicy#None"
	opcBasic    = "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256"
)

func uaU32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

func uaStr(s string) []byte { return append(uaU32(uint32(len(s))), s...) }

var uaNull = uaU32(0xffffffff)

func uaMsg(typ string, parts ...[]byte) []byte {
	b := []byte(typ + "F\x00\x00\x00\x00")
	for _, p := range parts {
		b = append(b, p...)
	}
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)))
	return b
}

func uaCat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// uaTime is a DateTime: 100 ns intervals since 1601 (2026-01-05 08:00 UTC).
var uaTime = binary.LittleEndian.AppendUint64(nil, 134118720000000000)

// uaRequestHeader: null auth token, timestamp, handle, diagnostics, audit
// id, timeout hint, empty additional header.
func uaRequestHeader(handle uint32) []byte {
	return uaCat([]byte{0, 0}, uaTime, uaU32(handle), uaU32(0), uaNull, uaU32(10000), []byte{0, 0, 0})
}

func uaResponseHeader(handle uint32) []byte {
	return uaCat(uaTime, uaU32(handle), uaU32(0), []byte{0}, uaU32(0), []byte{0, 0, 0})
}

// uaEndpoint is an EndpointDescription offering anonymous and user name
// tokens.
func uaEndpoint(mode uint32, policy string) []byte {
	app := uaCat(uaStr("urn:BeckhoffAutomation:TcOpcUaServer"), uaStr("http://www.beckhoff.com/TwinCAT/OpcUaServer"),
		[]byte{0x02}, uaStr("TwinCAT OPC UA Server"), uaU32(0), uaNull, uaNull, uaU32(1), uaStr(opcEndpoint))
	tokens := uaCat(uaU32(2), uaStr("Anonymous"), uaU32(0), uaNull, uaNull, uaNull,
		uaStr("UserName"), uaU32(1), uaNull, uaNull, uaStr(opcBasic))
	return uaCat(uaStr(opcEndpoint), app, uaNull, uaU32(mode), uaStr(policy), tokens,
		uaStr("http://opcfoundation.org/UA-Profile/Transport/uatcp-uasc-uabinary"), []byte{byte(mode)})
}

func init() {
	addScene("53-opcua", func(wr *Wire) {
		wr.GratuitousARP(opcSrv)
		s := wr.Dial(hmi.MAC, hmi.IP, 50400, opcSrv.MAC, opcSrv.IP, 4840)
		hel := uaMsg("HEL", uaU32(0), uaU32(65536), uaU32(65536), uaU32(0), uaU32(0), uaStr(opcEndpoint))
		ack := uaMsg("ACK", uaU32(0), uaU32(65536), uaU32(65536), uaU32(0), uaU32(0))
		s.Exchange(hel, ack)
		// OpenSecureChannel (type id 446 / response 449), policy None, mode None.
		opn := uaMsg("OPN", uaU32(0), uaStr(opcNone), uaNull, uaNull, uaU32(1), uaU32(1),
			[]byte{0x01, 0x00, 0xbe, 0x01}, uaRequestHeader(1), uaU32(0), uaU32(0), uaU32(1), uaNull, uaU32(3600000))
		opnResp := uaMsg("OPN", uaU32(7), uaStr(opcNone), uaNull, uaNull, uaU32(1), uaU32(1),
			[]byte{0x01, 0x00, 0xc1, 0x01}, uaResponseHeader(1), uaU32(0),
			uaU32(7), uaU32(1), uaTime, uaU32(3600000), uaNull)
		s.Exchange(opn, opnResp)
		// GetEndpoints (428 / 431).
		req := uaMsg("MSG", uaU32(7), uaU32(1), uaU32(2), uaU32(2), []byte{0x01, 0x00, 0xac, 0x01},
			uaRequestHeader(2), uaStr(opcEndpoint), uaU32(0), uaU32(0))
		resp := uaMsg("MSG", uaU32(7), uaU32(1), uaU32(2), uaU32(2), []byte{0x01, 0x00, 0xaf, 0x01},
			uaResponseHeader(2), uaU32(2), uaEndpoint(1, opcNone), uaEndpoint(3, opcBasic))
		s.Exchange(req, resp)
		s.Close()
	})
}
