package ot

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
)

// OPCUAPort is the registered TCP port of OPC UA binary (opc.tcp).
const OPCUAPort = 4840

// OPC UA roles (dissect.AttrRole values).
const (
	RoleOPCUAServer = "opcua-server"
	RoleOPCUAClient = "opcua-client"
)

// Attributes the OPC UA dissector emits besides the dissect.Attr* ones.
const (
	// AttrOPCUAEndpointURL is the endpoint URL a client's Hello names.
	AttrOPCUAEndpointURL = "opcua.endpoint_url"
	// AttrOPCUASecurityPolicy is the policy URI of an OpenSecureChannel.
	AttrOPCUASecurityPolicy = "opcua.security_policy"
	// AttrOPCUASecurityMode is the mode a client asks for: None, Sign,
	// SignAndEncrypt.
	AttrOPCUASecurityMode = "opcua.security_mode"
	AttrOPCUAAppURI       = "opcua.application_uri"
	AttrOPCUAProductURI   = "opcua.product_uri"
	AttrOPCUAAppType      = "opcua.application_type"
	// AttrOPCUAEndpoint is one endpoint a server offers (GetEndpoints or
	// CreateSession answers): "opc.tcp://h:4840 SignAndEncrypt
	// http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256 tokens
	// anonymous,username".
	AttrOPCUAEndpoint = "opcua.endpoint"
)

const (
	opcuaMaxEndpoints = 16 // endpoints read per answer
	opcuaMaxEmitted   = 8  // endpoint descriptions emitted per flow
	opcuaMaxArray     = 64
	opcuaMaxMessage   = 1 << 24
)

// Service type ids (OPC 10000-6, NodeIds.csv: the binary encoding ids).
const (
	opcuaGetEndpointsResp  = 431
	opcuaCreateSessionReq  = 461
	opcuaCreateSessionResp = 464
	opcuaOpenChannelReq    = 446
)

var opcuaModes = [...]string{"Invalid", "None", "Sign", "SignAndEncrypt"}
var opcuaAppTypes = [...]string{"Server", "Client", "ClientAndServer", "DiscoveryServer"}
var opcuaTokenTypes = [...]string{"anonymous", "username", "certificate", "issued-token"}

// OPCUA reads OPC UA binary (OPC 10000-6, 6.7 UA Connection Protocol and
// 5.2 binary encoding). TCP 4840 nominates it and it is tried on other
// ports: a message header (HEL, ACK, OPN, MSG, ERR, CLO, RHE, a chunk type
// and a plausible size) confirms it, a Hello with protocol version 0 on
// other ports.
//
// It learns the server and client roles, the endpoint URL of Hellos, the
// security policy of OpenSecureChannel and the mode a client asks for,
// and, from unencrypted GetEndpoints and CreateSession answers, each
// endpoint offered (URL, mode, policy, user token types) and the server's
// application description (application URI, product URI, application name
// as dissect.AttrName and dissect.AttrModel, application type); a
// CreateSession request says the same of the client. Decoding is bounded:
// strings and arrays are checked against what is buffered and counts are
// capped.
type OPCUA struct{}

// NewOPCUA returns an OPC UA binary dissector.
func NewOPCUA() *OPCUA { return &OPCUA{} }

// Name returns "opcua".
func (*OPCUA) Name() string { return "opcua" }

// Wants asks for TCP 4840 and heuristic probing of other ports.
func (*OPCUA) Wants() dissect.Wants {
	return dissect.Wants{TCPPorts: []uint16{OPCUAPort}, Heuristic: true}
}

// opcuaHeader checks a message header and returns its type and size.
func opcuaHeader(b []byte) (typ string, size int, ok bool) {
	if len(b) < 8 {
		return "", 0, false
	}
	switch string(b[:3]) { // constant strings returned: no allocation
	case "HEL":
		typ = "HEL"
	case "ACK":
		typ = "ACK"
	case "ERR":
		typ = "ERR"
	case "RHE":
		typ = "RHE"
	case "OPN":
		typ = "OPN"
	case "CLO":
		typ = "CLO"
	case "MSG":
		typ = "MSG"
	default:
		return "", 0, false
	}
	final := b[3] == 'F'
	if !final && (len(typ) == 0 || typ[0] == 'H' || typ[0] == 'A' || typ[0] == 'E' || typ[0] == 'R' || b[3] != 'C' && b[3] != 'A') {
		return "", 0, false
	}
	size = int(binary.LittleEndian.Uint32(b[4:]))
	if size < 8 || size > opcuaMaxMessage {
		return "", 0, false
	}
	return typ, size, true
}

// Probe reports whether p's payload starts an OPC UA message.
func (o *OPCUA) Probe(p *dissect.Packet) bool {
	if p.Flow == nil || p.Flow.Proto != capture.ProtoTCP {
		return false
	}
	typ, size, ok := opcuaHeader(p.Payload)
	if !ok {
		return false
	}
	if p.Flow.Server.Port() == OPCUAPort || p.Flow.Client.Port() == OPCUAPort {
		return true
	}
	// Elsewhere: a Hello, protocol version 0, whole in the segment.
	return typ == "HEL" && size == len(p.Payload) && size >= 32 && binary.LittleEndian.Uint32(p.Payload[8:]) == 0
}

// opcuaFlow is the per-flow state.
type opcuaFlow struct {
	s        [2]dissect.Stream
	skip     [2]int
	roles    bool
	swapped  bool // the flow table's client is the server
	hello    bool
	policy   bool
	mode     bool
	secure   bool    // the channel's policy is not None: messages are signed or encrypted
	app      [2]bool // application description emitted: server, client
	nendp    uint8
	endpHash [opcuaMaxEmitted]uint64
}

// Handle reads the messages of a claimed flow's packet.
func (o *OPCUA) Handle(p *dissect.Packet, out dissect.Sink) {
	if p.Flow == nil || p.Flow.Proto != capture.ProtoTCP || len(p.Payload) == 0 {
		return
	}
	st, _ := p.Flow.State.(*opcuaFlow)
	if st == nil {
		st = &opcuaFlow{swapped: p.Flow.Client.Port() == OPCUAPort && p.Flow.Server.Port() != OPCUAPort}
		p.Flow.State = st
	}
	dir := p.Dir & 1
	if st.swapped {
		dir ^= 1
	}
	s := &st.s[dir]
	b, segStart, off := pushSegment(s, p, &st.skip[dir])
	for len(b)-off >= 8 {
		typ, size, ok := opcuaHeader(b[off:])
		if !ok {
			if off < segStart {
				off = segStart
				continue
			}
			off = len(b)
			break
		}
		if len(b)-off < size {
			max := dissect.DefaultStreamMax
			if s.Max > 0 {
				max = s.Max
			}
			if size <= max {
				break
			}
			o.message(p, st, typ, b[off:], dir == 0, out) // read its start, skip the rest
			st.skip[dir] = size - (len(b) - off)
			off = len(b)
			break
		}
		o.message(p, st, typ, b[off:off+size], dir == 0, out)
		off += size
	}
	s.Consume(off)
}

func (o *OPCUA) sides(p *dissect.Packet, st *opcuaFlow) (server, client netip.Addr) {
	if st.swapped {
		return p.Client(), p.Server()
	}
	return p.Server(), p.Client()
}

// opcuaDec is a bounded reader of the binary encoding (OPC 10000-6, 5.2).
type opcuaDec struct {
	b   []byte
	bad bool
}

func (d *opcuaDec) take(n int) []byte {
	if d.bad || n < 0 || n > len(d.b) {
		d.bad = true
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *opcuaDec) u8() uint8 {
	if v := d.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *opcuaDec) u16() uint16 {
	if v := d.take(2); v != nil {
		return binary.LittleEndian.Uint16(v)
	}
	return 0
}

func (d *opcuaDec) u32() uint32 {
	if v := d.take(4); v != nil {
		return binary.LittleEndian.Uint32(v)
	}
	return 0
}

// bytes reads a String or ByteString (length -1 is null).
func (d *opcuaDec) bytes() []byte {
	n := int32(d.u32())
	if d.bad || n <= 0 {
		return nil
	}
	return d.take(int(n))
}

// count reads an array length, capped.
func (d *opcuaDec) count() int {
	n := int32(d.u32())
	if d.bad || n <= 0 {
		return 0
	}
	if n > opcuaMaxArray*16 || int(n) > len(d.b) {
		d.bad = true
		return 0
	}
	return int(n)
}

// nodeID reads a NodeId and returns its numeric id (0 for other kinds).
func (d *opcuaDec) nodeID() uint32 {
	switch enc := d.u8(); enc & 0x3f {
	case 0:
		return uint32(d.u8())
	case 1:
		d.u8()
		return uint32(d.u16())
	case 2:
		d.u16()
		return d.u32()
	case 3:
		d.u16()
		d.bytes()
	case 4:
		d.u16()
		d.take(16)
	case 5:
		d.u16()
		d.bytes()
	default:
		d.bad = true
	}
	return 0
}

// expandedNodeID reads an ExpandedNodeId.
func (d *opcuaDec) expandedNodeID() uint32 {
	if len(d.b) == 0 {
		d.bad = true
		return 0
	}
	enc := d.b[0]
	id := d.nodeID()
	if enc&0x80 != 0 {
		d.bytes()
	}
	if enc&0x40 != 0 {
		d.u32()
	}
	return id
}

// localizedText reads a LocalizedText and returns its text.
func (d *opcuaDec) localizedText() []byte {
	m := d.u8()
	if m&1 != 0 {
		d.bytes()
	}
	if m&2 != 0 {
		return d.bytes()
	}
	return nil
}

// extensionObject skips an ExtensionObject.
func (d *opcuaDec) extensionObject() {
	d.nodeID()
	if enc := d.u8(); enc == 1 || enc == 2 {
		d.bytes()
	}
}

// diagnosticInfo skips a DiagnosticInfo (bounded nesting).
func (d *opcuaDec) diagnosticInfo(depth int) {
	m := d.u8()
	for _, f := range []uint8{1, 2, 4, 8} { // symbolic id, namespace, localized text, locale
		if m&f != 0 {
			d.u32()
		}
	}
	if m&0x10 != 0 {
		d.bytes()
	}
	if m&0x20 != 0 {
		d.u32()
	}
	if m&0x40 != 0 {
		if depth > 4 {
			d.bad = true
			return
		}
		d.diagnosticInfo(depth + 1)
	}
}

// responseHeader skips a ResponseHeader.
func (d *opcuaDec) responseHeader() {
	d.take(8 + 4 + 4)
	d.diagnosticInfo(0)
	for n := d.count(); n > 0 && !d.bad; n-- {
		d.bytes()
	}
	d.extensionObject()
}

// requestHeader skips a RequestHeader.
func (d *opcuaDec) requestHeader() {
	d.nodeID()
	d.take(8 + 4 + 4)
	d.bytes()
	d.u32()
	d.extensionObject()
}

// opcuaApp is an ApplicationDescription.
type opcuaApp struct {
	uri, product, name []byte
	typ                uint32
}

func (d *opcuaDec) application() (a opcuaApp) {
	a.uri = d.bytes()
	a.product = d.bytes()
	a.name = d.localizedText()
	a.typ = d.u32()
	d.bytes() // gateway server URI
	d.bytes() // discovery profile URI
	for n := d.count(); n > 0 && !d.bad; n-- {
		d.bytes()
	}
	return a
}

// opcuaEndpoint is an EndpointDescription's gist.
type opcuaEndpoint struct {
	url, policy []byte
	mode        uint32
	tokens      uint8 // bit per user token type
	server      opcuaApp
}

func (d *opcuaDec) endpoint() (e opcuaEndpoint) {
	e.url = d.bytes()
	e.server = d.application()
	d.bytes() // server certificate
	e.mode = d.u32()
	e.policy = d.bytes()
	for n := d.count(); n > 0 && !d.bad; n-- {
		d.bytes() // policy id
		if t := d.u32(); t < 4 {
			e.tokens |= 1 << t
		}
		d.bytes()
		d.bytes()
		d.bytes()
	}
	d.bytes() // transport profile
	d.u8()    // security level
	return e
}

// message reads one message (or the start of an oversized one).
func (o *OPCUA) message(p *dissect.Packet, st *opcuaFlow, typ string, b []byte, fromClient bool, out dissect.Sink) {
	server, client := o.sides(p, st)
	if typ == "HEL" && !fromClient && !st.hello {
		// A Hello comes from the client: the flow was taken the wrong way.
		st.swapped = !st.swapped
		server, client = client, server
		fromClient = true
	}
	if !st.roles {
		st.roles = true
		o.emit(p, out, server, dissect.AttrRole, RoleOPCUAServer, netip.Addr{})
		o.emit(p, out, client, dissect.AttrRole, RoleOPCUAClient, netip.Addr{})
	}
	switch typ {
	case "HEL":
		st.hello = true
		// version, receive/send buffer sizes, max message size, max chunk count, endpoint URL
		d := opcuaDec{b: b[8:]}
		d.take(20)
		if u := d.bytes(); !d.bad && len(u) > 0 {
			o.emit(p, out, server, AttrOPCUAEndpointURL, opcuaText(u), client)
		}
	case "OPN":
		// secure channel id, then the asymmetric security header: policy
		// URI, sender certificate, receiver thumbprint.
		d := opcuaDec{b: b[8:]}
		d.u32()
		pol := d.bytes()
		d.bytes()
		d.bytes()
		if d.bad {
			return
		}
		if !st.policy && len(pol) > 0 {
			st.policy = true
			o.emit(p, out, server, AttrOPCUASecurityPolicy, opcuaText(pol), client)
		}
		if len(pol) > 0 && !strings.HasSuffix(string(pol), "#None") {
			st.secure = true
		}
		if st.secure || !fromClient || st.mode {
			return
		}
		d.take(8) // sequence number, request id
		if d.nodeID() != opcuaOpenChannelReq {
			return
		}
		d.requestHeader()
		d.take(8) // client protocol version, request type
		if m := d.u32(); !d.bad && m < uint32(len(opcuaModes)) {
			st.mode = true
			o.emit(p, out, server, AttrOPCUASecurityMode, opcuaModes[m], client)
		}
	case "MSG":
		if st.secure {
			return
		}
		// secure channel id, token id (symmetric header), sequence number,
		// request id, then the body; read only when not encrypted, which
		// shows as a well-formed type id and body.
		d := opcuaDec{b: b[8:]}
		d.take(16)
		switch d.nodeID() {
		case opcuaGetEndpointsResp:
			d.responseHeader()
			o.endpoints(p, st, &d, server, client, out)
		case opcuaCreateSessionResp:
			d.responseHeader()
			d.nodeID()
			d.nodeID()
			d.take(8)
			d.bytes()
			d.bytes()
			o.endpoints(p, st, &d, server, client, out)
		case opcuaCreateSessionReq:
			d.requestHeader()
			a := d.application()
			if !d.bad && !st.app[1] {
				st.app[1] = true
				o.app(p, client, a, out)
			}
		}
	}
}

func (o *OPCUA) endpoints(p *dissect.Packet, st *opcuaFlow, d *opcuaDec, server, client netip.Addr, out dissect.Sink) {
	n := d.count()
	for i := 0; i < n && i < opcuaMaxEndpoints && !d.bad; i++ {
		e := d.endpoint()
		if d.bad {
			return
		}
		if !st.app[0] {
			st.app[0] = true
			o.app(p, server, e.server, out)
		}
		var h uint64 = 14695981039346656037
		for _, part := range [][]byte{e.url, e.policy, {byte(e.mode), e.tokens}} {
			for _, c := range part {
				h ^= uint64(c)
				h *= 1099511628211
			}
		}
		dup := false
		for _, x := range st.endpHash[:st.nendp] {
			dup = dup || x == h
		}
		if dup || int(st.nendp) >= len(st.endpHash) {
			continue
		}
		st.endpHash[st.nendp] = h
		st.nendp++
		mode := "mode-" + strconv.Itoa(int(e.mode))
		if e.mode < uint32(len(opcuaModes)) {
			mode = opcuaModes[e.mode]
		}
		var tk []string
		for i, t := range opcuaTokenTypes {
			if e.tokens&(1<<i) != 0 {
				tk = append(tk, t)
			}
		}
		o.emit(p, out, server, AttrOPCUAEndpoint, opcuaText(e.url)+" "+mode+" "+opcuaText(e.policy)+" tokens "+strings.Join(tk, ","), netip.Addr{})
	}
}

func (o *OPCUA) app(p *dissect.Packet, ip netip.Addr, a opcuaApp, out dissect.Sink) {
	none := netip.Addr{}
	if v := opcuaText(a.uri); v != "" {
		o.emit(p, out, ip, AttrOPCUAAppURI, v, none)
	}
	if v := opcuaText(a.product); v != "" {
		o.emit(p, out, ip, AttrOPCUAProductURI, v, none)
	}
	if v := opcuaText(a.name); v != "" {
		o.emit(p, out, ip, dissect.AttrName, v, none)
		o.emit(p, out, ip, dissect.AttrModel, v, none)
	}
	if a.typ < uint32(len(opcuaAppTypes)) {
		o.emit(p, out, ip, AttrOPCUAAppType, opcuaAppTypes[a.typ], none)
	}
}

// opcuaText bounds a string and makes it valid UTF-8.
func opcuaText(b []byte) string {
	if len(b) > 2*maxText {
		b = b[:2*maxText]
	}
	if !utf8.Valid(b) {
		return strings.ToValidUTF8(string(b), "\uFFFD")
	}
	return strings.TrimSpace(string(b))
}

func (o *OPCUA) emit(p *dissect.Packet, out dissect.Sink, ip netip.Addr, attr, value string, peer netip.Addr) {
	out.Observe(dissect.Observation{Time: p.Time, IP: ip, Attr: attr, Value: value, Protocol: "opcua", Peer: peer})
}

func init() { register(55, "opcua", func() dissect.Dissector { return NewOPCUA() }) }
