package ot

import (
	"encoding/binary"
	"hash/maphash"
	"net/netip"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
)

// MQTT ports: plain (1883) and over TLS (8883).
const (
	MQTTPort    = 1883
	MQTTTLSPort = 8883
)

// MQTT roles (dissect.AttrRole values).
const (
	RoleMQTTBroker = "mqtt-broker"
	RoleMQTTClient = "mqtt-client"
)

// Attributes the MQTT dissector emits besides the dissect.Attr* ones.
const (
	AttrMQTTClientID = "mqtt.client_id"
	// AttrMQTTVersion is the protocol level of a client's CONNECT: "3.1",
	// "3.1.1", "5.0".
	AttrMQTTVersion = "mqtt.version"
	// AttrMQTTCredentials says whether a client (Peer: the broker) sends a
	// user name or password: "yes" or "no". The credentials themselves are
	// never read into an observation.
	AttrMQTTCredentials = "mqtt.credentials"
	AttrMQTTWillTopic   = "mqtt.will_topic"
	// AttrMQTTPublish and AttrMQTTSubscribe are topics a client publishes
	// to or subscribes to on a broker (Peer), up to mqttMaxTopics per flow.
	AttrMQTTPublish   = "mqtt.publish"
	AttrMQTTSubscribe = "mqtt.subscribe"
	// AttrMQTTTLS says a client (Peer: the broker) uses MQTT over TLS: "yes".
	AttrMQTTTLS = "mqtt.tls"
)

const (
	mqttMaxTopics = 16
	mqttConnect   = 1
	mqttPublish   = 3
	mqttSubscribe = 8
)

var mqttSeed = maphash.MakeSeed()

// MQTT reads MQTT 3.1, 3.1.1 and 5.0 (OASIS MQTT v3.1.1 and v5.0,
// chapters 2-3). TCP 1883 nominates it and a valid fixed header confirms
// it; on other ports a CONNECT (protocol name "MQTT" or "MQIsdp" and a
// known level) confirms it. On 8883 only the use of TLS is learnt.
//
// It learns the broker and client roles, client ids, protocol versions,
// whether credentials are used (never the credentials), will topics, and
// the topics clients publish and subscribe to (bounded per flow).
type MQTT struct{}

// NewMQTT returns an MQTT dissector.
func NewMQTT() *MQTT { return &MQTT{} }

// Name returns "mqtt".
func (*MQTT) Name() string { return "mqtt" }

// Wants asks for TCP 1883 and 8883, and heuristic probing of other ports.
func (*MQTT) Wants() dissect.Wants {
	return dissect.Wants{TCPPorts: []uint16{MQTTPort, MQTTTLSPort}, Heuristic: true}
}

// mqttHeader reads a fixed header: type, flags, the remaining length and
// the header's size; n <= 0 when malformed or not yet whole.
func mqttHeader(b []byte) (typ, flags uint8, rem, n int) {
	if len(b) < 2 {
		return 0, 0, 0, 0
	}
	typ, flags = b[0]>>4, b[0]&0x0f
	if typ == 0 {
		return 0, 0, 0, -1
	}
	mult := 1
	for i := 1; i < 5; i++ {
		if i >= len(b) {
			return 0, 0, 0, 0
		}
		rem += int(b[i]&0x7f) * mult
		if b[i]&0x80 == 0 {
			return typ, flags, rem, i + 1
		}
		mult <<= 7
	}
	return 0, 0, 0, -1
}

// mqttValidFlags checks the fixed header flags the spec fixes (3.1.1, 2.2.2).
func mqttValidFlags(typ, flags uint8) bool {
	switch typ {
	case mqttPublish:
		return flags&0x06 != 0x06
	case 6, mqttSubscribe, 10: // PUBREL, SUBSCRIBE, UNSUBSCRIBE
		return flags == 2
	case 15: // AUTH (5.0)
		return flags == 0
	}
	return flags == 0
}

// mqttConnectOK checks a CONNECT's variable header.
func mqttConnectOK(b []byte) bool {
	typ, _, rem, n := mqttHeader(b)
	if typ != mqttConnect || n <= 0 || rem < 10 || len(b) < n+8 {
		return false
	}
	v := b[n:]
	switch {
	case v[0] == 0 && v[1] == 4 && string(v[2:6]) == "MQTT":
		return v[6] == 4 || v[6] == 5
	case v[0] == 0 && v[1] == 6 && len(v) >= 9 && string(v[2:8]) == "MQIsdp":
		return v[8] == 3
	}
	return false
}

// Probe reports whether p's payload is MQTT (or, on 8883, TLS).
func (m *MQTT) Probe(p *dissect.Packet) bool {
	if p.Flow == nil || p.Flow.Proto != capture.ProtoTCP {
		return false
	}
	b := p.Payload
	sp, cp := p.Flow.Server.Port(), p.Flow.Client.Port()
	if sp == MQTTTLSPort || cp == MQTTTLSPort {
		return len(b) >= 5 && b[0] >= 0x14 && b[0] <= 0x17 && b[1] == 3
	}
	if sp == MQTTPort || cp == MQTTPort {
		if mqttConnectOK(b) {
			return true
		}
		typ, flags, rem, n := mqttHeader(b)
		_ = rem
		return n > 0 && mqttValidFlags(typ, flags) && typ != mqttConnect
	}
	return mqttConnectOK(b)
}

// mqttFlow is the per-flow state.
type mqttFlow struct {
	s      [2]dissect.Stream
	skip   [2]int // bytes of an oversized message still to skip
	tls    bool
	roles  bool
	conn   bool
	level  uint8 // protocol level of the CONNECT read, 0 before
	topics [mqttMaxTopics]uint64
	ntop   uint8
	svcs   uint16
}

// mqttSwapped reports whether the flow's client is in fact the broker (a
// capture starting mid-flow): the side on 1883 or 8883 is the broker.
func mqttSwapped(f *flow.Flow) bool {
	c, s := f.Client.Port(), f.Server.Port()
	return (c == MQTTPort || c == MQTTTLSPort) && s != MQTTPort && s != MQTTTLSPort
}

// Handle reads the MQTT messages of a claimed flow's packet.
func (m *MQTT) Handle(p *dissect.Packet, out dissect.Sink) {
	if p.Flow == nil || p.Flow.Proto != capture.ProtoTCP || len(p.Payload) == 0 {
		return
	}
	st, _ := p.Flow.State.(*mqttFlow)
	if st == nil {
		st = &mqttFlow{}
		p.Flow.State = st
	}
	broker, client := p.Server(), p.Client()
	dir := p.Dir & 1
	if mqttSwapped(p.Flow) {
		broker, client = client, broker
		dir ^= 1
	}
	if !st.roles {
		st.roles = true
		m.emit(p, out, broker, dissect.AttrRole, RoleMQTTBroker, netip.Addr{})
		m.emit(p, out, client, dissect.AttrRole, RoleMQTTClient, netip.Addr{})
	}
	if p.Flow.Server.Port() == MQTTTLSPort || p.Flow.Client.Port() == MQTTTLSPort {
		if !st.tls {
			st.tls = true
			m.emit(p, out, client, AttrMQTTTLS, "yes", broker)
		}
		return
	}
	s := &st.s[dir]
	b, segStart, off := pushSegment(s, p, &st.skip[dir])
	for off < len(b) {
		typ, flags, rem, n := mqttHeader(b[off:])
		if n < 0 || n > 0 && !mqttValidFlags(typ, flags) {
			if off < segStart {
				off = segStart // lost the boundaries: try where the segment starts
				continue
			}
			off = len(b)
			break
		}
		if n == 0 {
			break
		}
		msg := b[off+n:]
		if len(msg) < rem {
			max := dissect.DefaultStreamMax
			if s.Max > 0 {
				max = s.Max
			}
			if n+rem <= max {
				break // wait for the rest
			}
			// Too big to buffer: read what is here, skip the rest.
			m.message(p, st, typ, flags, msg, dir == 0, broker, client, out)
			st.skip[dir] = rem - len(msg)
			off = len(b)
			break
		}
		m.message(p, st, typ, flags, msg[:rem], dir == 0, broker, client, out)
		off += n + rem
	}
	s.Consume(off)
}

// mqttString reads a length-prefixed UTF-8 string.
func mqttString(b []byte) (s, rest []byte, ok bool) {
	if len(b) < 2 {
		return nil, nil, false
	}
	l := int(binary.BigEndian.Uint16(b))
	if l > len(b)-2 {
		return nil, nil, false
	}
	return b[2 : 2+l], b[2+l:], true
}

// mqttSkipProps skips MQTT 5.0 properties (a variable byte integer length,
// then the properties).
func mqttSkipProps(b []byte) ([]byte, bool) {
	l, mult := 0, 1
	for i := 0; i < 4; i++ {
		if i >= len(b) {
			return nil, false
		}
		l += int(b[i]&0x7f) * mult
		if b[i]&0x80 == 0 {
			if l > len(b)-i-1 {
				return nil, false
			}
			return b[i+1+l:], true
		}
		mult <<= 7
	}
	return nil, false
}

// message reads one message (b: the variable header and payload, perhaps
// cut short for an oversized message).
func (m *MQTT) message(p *dissect.Packet, st *mqttFlow, typ, flags uint8, b []byte, fromClient bool, broker, client netip.Addr, out dissect.Sink) {
	if fromClient && typ < 16 && st.svcs&(1<<typ) == 0 && (typ == mqttConnect || typ == mqttPublish || typ == mqttSubscribe) {
		st.svcs |= 1 << typ
		m.emit(p, out, broker, dissect.AttrService, [...]string{mqttConnect: "mqtt:connect", mqttPublish: "mqtt:publish", mqttSubscribe: "mqtt:subscribe"}[typ], client)
	}
	switch {
	case typ == mqttConnect && fromClient && !st.conn:
		st.conn = true
		st.level = m.connect(p, b, broker, client, out)
	case typ == mqttPublish && fromClient:
		if topic, _, ok := mqttString(b); ok {
			m.topic(p, st, AttrMQTTPublish, topic, broker, client, out)
		}
	case typ == mqttSubscribe && fromClient:
		if len(b) < 2 {
			return
		}
		r := b[2:] // packet identifier
		if st.level == 5 || st.level == 0 && st.conn5(b) {
			var ok bool
			if r, ok = mqttSkipProps(r); !ok {
				return
			}
		}
		for i := 0; i < mqttMaxTopics && len(r) > 0; i++ {
			topic, rest, ok := mqttString(r)
			if !ok || len(rest) < 1 {
				return
			}
			m.topic(p, st, AttrMQTTSubscribe, topic, broker, client, out)
			r = rest[1:]
		}
	}
}

// conn5 reports whether SUBSCRIBE b carries 5.0 properties: a 3.1.1
// SUBSCRIBE's first topic length follows the packet id directly, so a
// properties length that makes the rest parse as topics says 5.0.
func (st *mqttFlow) conn5(b []byte) bool {
	if len(b) < 5 {
		return false
	}
	r := b[2:]
	if _, rest, ok := mqttString(r); ok && len(rest) >= 1 {
		return false
	}
	return true
}

func (m *MQTT) topic(p *dissect.Packet, st *mqttFlow, attr string, topic []byte, broker, client netip.Addr, out dissect.Sink) {
	if len(topic) == 0 || int(st.ntop) >= len(st.topics) {
		return
	}
	var h maphash.Hash
	h.SetSeed(mqttSeed)
	h.WriteString(attr)
	h.Write(topic)
	k := h.Sum64()
	for _, x := range st.topics[:st.ntop] {
		if x == k {
			return
		}
	}
	st.topics[st.ntop] = k
	st.ntop++
	if v := cipText(topic); v != "" {
		m.emit(p, out, client, attr, v, broker)
	}
}

// connect reads a CONNECT: protocol name, level, flags, keep alive, [5.0
// properties], client id, [will properties, will topic, will payload],
// [user name], [password]. The user name and password are not read.
func (m *MQTT) connect(p *dissect.Packet, b []byte, broker, client netip.Addr, out dissect.Sink) (level uint8) {
	name, r, ok := mqttString(b)
	if !ok || len(r) < 4 || (string(name) != "MQTT" && string(name) != "MQIsdp") {
		return 0
	}
	level = r[0]
	flags := r[1]
	r = r[4:]
	ver := ""
	switch level {
	case 3:
		ver = "3.1"
	case 4:
		ver = "3.1.1"
	case 5:
		ver = "5.0"
		if r, ok = mqttSkipProps(r); !ok {
			return level
		}
	default:
		return level
	}
	none := netip.Addr{}
	m.emit(p, out, client, AttrMQTTVersion, ver, broker)
	creds := "no"
	if flags&0xc0 != 0 { // user name flag, password flag
		creds = "yes"
	}
	m.emit(p, out, client, AttrMQTTCredentials, creds, broker)
	id, r, ok := mqttString(r)
	if !ok {
		return level
	}
	if v := cipText(id); v != "" {
		m.emit(p, out, client, AttrMQTTClientID, v, none)
	}
	if flags&0x04 != 0 { // will flag
		if level == 5 {
			if r, ok = mqttSkipProps(r); !ok {
				return level
			}
		}
		if topic, _, ok := mqttString(r); ok {
			if v := cipText(topic); v != "" {
				m.emit(p, out, client, AttrMQTTWillTopic, v, broker)
			}
		}
	}
	// The user name and password that may follow are deliberately not read.
	return level
}

func (m *MQTT) emit(p *dissect.Packet, out dissect.Sink, ip netip.Addr, attr, value string, peer netip.Addr) {
	out.Observe(dissect.Observation{Time: p.Time, IP: ip, Attr: attr, Value: value, Protocol: "mqtt", Peer: peer})
}

func init() { register(58, "mqtt", func() dissect.Dissector { return NewMQTT() }) }
