package main

import "net/netip"

// An MQTT broker on an edge gateway and a line data logger publishing to
// it (OASIS MQTT 3.1.1: 2.2 fixed header, 3.1 CONNECT, 3.3 PUBLISH, 3.8
// SUBSCRIBE). The logger sends a user name and password.
var (
	mqttBroker = Device{"edge-broker", mac("dc:a6:32:10:01:55"), netip.MustParseAddr("10.10.0.155")}
	mqttLogger = Device{"line-logger", mac("00:0b:ab:10:01:56"), netip.MustParseAddr("10.10.0.156")}
)

func mqttPacket(typ byte, body ...[]byte) []byte {
	var b []byte
	for _, x := range body {
		b = append(b, x...)
	}
	h := []byte{typ}
	for l := len(b); ; {
		c := byte(l & 0x7f)
		l >>= 7
		if l > 0 {
			c |= 0x80
		}
		h = append(h, c)
		if l == 0 {
			break
		}
	}
	return append(h, b...)
}

func mqttUTF8(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }

func init() {
	addScene("54-mqtt", func(wr *Wire) {
		wr.GratuitousARP(mqttBroker)
		s := wr.Dial(mqttLogger.MAC, mqttLogger.IP, 50500, mqttBroker.MAC, mqttBroker.IP, 1883)
		// CONNECT: "MQTT", level 4, flags user name + password + will
		// (QoS 0) + clean session, keep alive 60.
		connect := mqttPacket(0x10, mqttUTF8("MQTT"), []byte{4, 0xc6, 0, 60}, mqttUTF8("line1-logger"),
			mqttUTF8("plant/line1/logger/status"), mqttUTF8("offline"), mqttUTF8("logger"), mqttUTF8("line1-pass"))
		s.Exchange(connect, []byte{0x20, 0x02, 0x00, 0x00})
		s.Exchange(mqttPacket(0x82, []byte{0, 1}, mqttUTF8("plant/line1/cmd/#"), []byte{1}), []byte{0x90, 0x03, 0x00, 0x01, 0x01})
		for _, v := range []string{"21.4", "21.6"} {
			s.Exchange(mqttPacket(0x30, mqttUTF8("plant/line1/temperature"), []byte(v)), nil)
		}
		s.Close()
	})
}
