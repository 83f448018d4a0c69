package main

import (
	"encoding/binary"
	"net/netip"
	"time"
)

// Emerson DeltaV on UDP 18507, after the wrapper Apache PLC4X documented
// (src/site/asciidoc/protocols/delta-v): FA CE, payload length, type (2
// data, 3 connection request, 4 connection response, 6 sync), message id,
// sender id, a 3-byte timestamp, 80 04 00 (00 44 00 on types 3 and 4),
// the payload, a 2-byte checksum; acknowledgements repeat type and id with
// length 0. Data payloads start with their payload type; their content
// past what PLC4X published is left zero.

// The reactor's DeltaV controller (MAC from Fisher-Rosemount Systems'
// OUI) and the operator station that watches it.
var (
	dvController = Device{"dcs-reactor", mac("00:22:e5:10:01:70"), netip.MustParseAddr("10.10.0.170")}
	dvOperator   = Device{"dv-operator", mac("00:14:22:10:01:71"), netip.MustParseAddr("10.10.0.171")}
)

// dvFrame builds a message of type typ; payload nil for an
// acknowledgement.
func dvFrame(typ, id, sender uint16, payload []byte) []byte {
	b := []byte{0xfa, 0xce, 0, 0, 0, 0, 0, 0, 0, 0, 0x2a, 0x51, 0x00, 0x80, 0x04, 0x00}
	if typ == 3 || typ == 4 {
		b[13], b[14] = 0x00, 0x44
	}
	binary.BigEndian.PutUint16(b[2:], uint16(len(payload)))
	binary.BigEndian.PutUint16(b[4:], typ)
	binary.BigEndian.PutUint16(b[6:], id)
	binary.BigEndian.PutUint16(b[8:], sender)
	b = append(b, payload...)
	return binary.BigEndian.AppendUint16(b, id^0x5a5a)
}

// dvPayload is a data payload of type pt and n bytes in all.
func dvPayload(pt uint16, n int) []byte {
	b := make([]byte, n)
	binary.BigEndian.PutUint16(b, pt)
	return b
}

func init() {
	addScene("71-deltav", func(wr *Wire) {
		// The operator station connects to the controller, the two
		// exchange their version information, the station subscribes to
		// a display's values and the controller sends changes, each
		// acknowledged; a sync pair closes the scene.
		ws, ctl := dvOperator, dvController
		wr.ARP(ws, ctl)
		send := func(from, to Device, b []byte) {
			wr.UDP(from.MAC, to.MAC, from.IP, 18507, to.IP, 18507, b)
		}
		const osID, ctlID = 0x000d, 0x0002
		send(ws, ctl, dvFrame(3, 0x0100, osID, nil))
		send(ctl, ws, dvFrame(4, 0x0100, ctlID, nil))
		send(ws, ctl, dvFrame(2, 0x0101, osID, dvPayload(0x0501, 48)))
		send(ctl, ws, dvFrame(2, 0x0101, ctlID, nil))
		send(ctl, ws, dvFrame(2, 0x0701, ctlID, dvPayload(0x0502, 48)))
		send(ws, ctl, dvFrame(2, 0x0701, osID, nil))
		send(ws, ctl, dvFrame(2, 0x0102, osID, dvPayload(0x1b01, 64)))
		send(ctl, ws, dvFrame(2, 0x0702, ctlID, dvPayload(0x1b02, 64)))
		for i := uint16(0); i < 3; i++ {
			wr.Advance(time.Second)
			send(ctl, ws, dvFrame(2, 0x0703+i, ctlID, dvPayload(0x0403, 50)))
			send(ws, ctl, dvFrame(2, 0x0703+i, osID, nil))
		}
		send(ctl, ws, dvFrame(6, 0x0706, ctlID, nil))
		send(ws, ctl, dvFrame(6, 0x0103, osID, nil))
	})
}
