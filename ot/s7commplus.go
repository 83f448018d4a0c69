package ot

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"

	"github.com/passivesensor/sensor/dissect"
)

// Attributes the S7comm-plus dissector emits besides the dissect.Attr*
// ones and the S7 roles (RoleS7Server, RoleS7Client).
const (
	// AttrS7PlusVersion is the protocol version a server (S7-1200/1500)
	// speaks, from the PDU header: 1, 2 or 3 (3 with integrity digests).
	AttrS7PlusVersion = "s7plus.version"
	// AttrS7PlusWrite flags a client (Peer) writing variables
	// (SetVariable, SetMultiVariables).
	AttrS7PlusWrite = "s7plus.write"
	// AttrS7PlusObjects flags a client (Peer) creating or deleting
	// objects other than its session (downloads of blocks go this way).
	AttrS7PlusObjects = "s7plus.objects"
	// AttrS7PlusInvoke flags a client (Peer) invoking methods of the PLC
	// (operating state changes go this way).
	AttrS7PlusInvoke = "s7plus.invoke"
	// AttrS7PlusTSAP is the called TSAP of the COTP connection, which
	// S7-1200/1500 clients give as text ("SIMATIC-ROOT-HMI", ...).
	AttrS7PlusTSAP = "s7plus.tsap"
)

// S7comm-plus framing (facts from the published s7comm_plus Wireshark
// plugin; tshark 4.0 has no dissector for it): 0x72, PDU type / protocol
// version (1 connect, 2 data, 3 data with integrity, 0xFF keep-alive),
// data length (2); with version 3 a digest length octet and the digest;
// then opcode (0x31 request, 0x32 response, 0x33 notification, 0x02
// response), reserved (2), function code (2), reserved (2), sequence
// number (2), and the items. Each PDU ends with a 4-octet trailer
// (0x72, version, 0x0000).
const (
	s7pProtoID    = 0x72
	s7pOpRequest  = 0x31
	s7pOpResponse = 0x32
	s7pOpResp2    = 0x02
	s7pCreateObj  = 0x04ca
	s7pDeleteObj  = 0x04d4
	s7pWString    = 0x15
)

var s7pFuncNames = map[uint16]string{
	0x04bb:       "explore",
	s7pCreateObj: "create-object",
	s7pDeleteObj: "delete-object",
	0x04f2:       "set-variable",
	0x0524:       "get-link",
	0x0542:       "set-multi-variables",
	0x054c:       "get-multi-variables",
	0x0556:       "begin-sequence",
	0x0560:       "end-sequence",
	0x056b:       "invoke",
	0x0586:       "get-var-sub-streamed",
}

var s7pFuncs = []uint16{0x04bb, s7pCreateObj, s7pDeleteObj, 0x04f2, 0x0524, 0x0542, 0x054c, 0x0556, 0x0560, 0x056b, 0x0586}

var s7pServices [16]string // indexed as s7pFuncs; last slot: other

func init() {
	for i, f := range s7pFuncs {
		s7pServices[i] = "s7comm-plus:" + s7pFuncNames[f]
	}
	s7pServices[15] = "s7comm-plus:other"
}

func s7pIndex(fc uint16) int {
	for i, f := range s7pFuncs {
		if f == fc {
			return i
		}
	}
	return 15
}

// S7commPlus reads Siemens S7comm-plus (S7-1200, S7-1500, ET 200SP CPUs
// with TIA Portal, WinCC) over COTP and TPKT on TCP 102. Port 102
// nominates it; a COTP data TPDU starting with 0x72 and a known version
// confirms it (S7comm starts with 0x32, MMS with a session SPDU).
//
// It learns the server (PLC) and client roles from who sends requests,
// "Siemens" as the server's vendor, the protocol version the server
// speaks, the function codes each client uses (dissect.AttrService, Peer
// the client; create-object is the session set-up), writes, object
// creation/deletion and method invocations, the text TSAP of the
// connection, and, from the server's CreateObject answer that opens a
// session, the PLC's order number (model) and firmware version: an S7-1200
// or S7-1500 states them as a string "<n>;<order number>;V<version>".
// Payloads of protocol version 3 are protected by digests but not
// encrypted; TLS-protected sessions (newer firmware) show nothing.
type S7commPlus struct{}

// NewS7commPlus returns an S7comm-plus dissector.
func NewS7commPlus() *S7commPlus { return &S7commPlus{} }

// Name returns "s7comm-plus".
func (*S7commPlus) Name() string { return "s7comm-plus" }

// Wants asks for TCP port 102.
func (*S7commPlus) Wants() dissect.Wants { return dissect.Wants{TCPPorts: []uint16{ISOTSAPPort}} }

// s7pHeader returns a PDU's version and its data part (opcode onwards).
func s7pHeader(b []byte) (version byte, data []byte, ok bool) {
	if len(b) < 4 || b[0] != s7pProtoID {
		return 0, nil, false
	}
	version = b[1]
	switch version {
	case 1, 2, 3, 0xfe, 0xff:
	default:
		return 0, nil, false
	}
	l := int(binary.BigEndian.Uint16(b[2:]))
	data = b[4:]
	if l < len(data) {
		data = data[:l]
	}
	if version == 3 {
		if len(data) < 1 || int(data[0]) > len(data)-1 {
			return 0, nil, false
		}
		data = data[1+int(data[0]):]
	}
	return version, data, true
}

// Probe reports whether p starts a COTP DT carrying an S7comm-plus PDU.
func (*S7commPlus) Probe(p *dissect.Packet) bool {
	user, ok := cotpProbeData(p)
	if !ok {
		return false
	}
	v, data, ok := s7pHeader(user)
	if !ok {
		return false
	}
	if v >= 0xfe {
		return true // keep-alive
	}
	if len(data) < 1 {
		return false
	}
	switch data[0] {
	case s7pOpRequest, s7pOpResponse, 0x33, s7pOpResp2:
		return true
	}
	return false
}

type s7pFlow struct {
	cotpConn
	services uint16
	versions uint8
	emitted  uint8
}

const (
	s7pemRoles = 1 << iota
	s7pemVendor
	s7pemModel
	s7pemFirmware
	s7pemTSAP
)

// tsap reports a text TSAP (S7-1200/1500 clients name the TSAP they call).
func (s *S7commPlus) tsap(p *dissect.Packet, st *s7pFlow, called []byte, out dissect.Sink) {
	if len(called) < 3 || st.emitted&s7pemTSAP != 0 {
		return
	}
	for _, c := range called {
		if c < 0x20 || c > 0x7e {
			return
		}
	}
	st.emitted |= s7pemTSAP
	s7pEmit(p, out, p.Server(), AttrS7PlusTSAP, string(cleanText(called)), p.Client())
}

// Handle reads the TPDUs of a claimed flow's packet.
func (s *S7commPlus) Handle(p *dissect.Packet, out dissect.Sink) {
	cotpHandle(p, out, s.tsap, s.pdu)
}

func (s *S7commPlus) pdu(p *dissect.Packet, st *s7pFlow, b []byte, out dissect.Sink) {
	v, data, ok := s7pHeader(b)
	if !ok || v >= 0xfe || len(data) < 7 {
		return
	}
	op := data[0]
	fc := binary.BigEndian.Uint16(data[3:])
	var request bool
	switch op {
	case s7pOpRequest:
		request = true
	case s7pOpResponse, s7pOpResp2:
	default:
		return
	}
	srv, cli := roles(out, p, "s7comm-plus", !request, st.emitted&s7pemRoles != 0, RoleS7Server, RoleS7Client)
	st.emitted |= s7pemRoles
	if request {
		i := s7pIndex(fc)
		if st.services&(1<<i) != 0 {
			return
		}
		st.services |= 1 << i
		s7pEmit(p, out, srv, dissect.AttrService, s7pServices[i], cli)
		switch fc {
		case 0x04f2, 0x0542:
			s7pEmit(p, out, srv, AttrS7PlusWrite, s7pServices[i], cli)
		case s7pDeleteObj:
			s7pEmit(p, out, srv, AttrS7PlusObjects, s7pServices[i], cli)
		case 0x056b:
			s7pEmit(p, out, srv, AttrS7PlusInvoke, s7pServices[i], cli)
		}
		return
	}
	if st.emitted&s7pemVendor == 0 {
		st.emitted |= s7pemVendor
		s7pEmit(p, out, srv, dissect.AttrVendor, siemensVendor, netip.Addr{})
	}
	if v <= 3 && st.versions&(1<<v) == 0 {
		st.versions |= 1 << v
		s7pEmit(p, out, srv, AttrS7PlusVersion, strconv.Itoa(int(v)), netip.Addr{})
	}
	if fc == s7pCreateObj && st.emitted&s7pemModel == 0 {
		s.identity(p, st, data[7:], srv, out)
	}
}

// identity looks in a CreateObject answer for the WString attribute value
// (datatype 0x15, VLQ length, UTF-8) of the form "<n>;<order number>;V<x>"
// and reports the order number as the model and V<x> as the firmware.
func (s *S7commPlus) identity(p *dissect.Packet, st *s7pFlow, b []byte, srv netip.Addr, out dissect.Sink) {
	for i := 0; i+2 < len(b); i++ {
		if b[i] != s7pWString || b[i+1]&0x80 != 0 {
			continue // one-octet VLQ lengths: the strings are short
		}
		l := int(b[i+1])
		if l < 8 || i+2+l > len(b) {
			continue
		}
		model, fw, ok := s7pTypeString(b[i+2 : i+2+l])
		if !ok {
			continue
		}
		st.emitted |= s7pemModel | s7pemFirmware
		s7pEmit(p, out, srv, dissect.AttrModel, model, netip.Addr{})
		s7pEmit(p, out, srv, dissect.AttrFirmware, fw, netip.Addr{})
		return
	}
}

// s7pTypeString splits "1;6ES7 214-1AG40-0XB0 ;V4.2" into the order
// number and the version.
func s7pTypeString(b []byte) (model, fw string, ok bool) {
	s := string(b)
	n, rest, ok1 := strings.Cut(s, ";")
	mlfb, ver, ok2 := strings.Cut(rest, ";")
	if !ok1 || !ok2 || n == "" || len(ver) < 2 || ver[0] != 'V' {
		return "", "", false
	}
	for _, c := range n {
		if c < '0' || c > '9' {
			return "", "", false
		}
	}
	for _, c := range ver[1:] {
		if (c < '0' || c > '9') && c != '.' {
			return "", "", false
		}
	}
	mlfb = strings.TrimSpace(mlfb)
	if len(mlfb) < 4 || len(mlfb) > 32 {
		return "", "", false
	}
	for _, c := range mlfb {
		if c < 0x20 || c > 0x7e {
			return "", "", false
		}
	}
	return mlfb, ver, true
}

func s7pEmit(p *dissect.Packet, out dissect.Sink, ip netip.Addr, attr, value string, peer netip.Addr) {
	out.Observe(dissect.Observation{Time: p.Time, IP: ip, Attr: attr, Value: value, Protocol: "s7comm-plus", Peer: peer})
}

func init() { register(22, "s7comm-plus", func() dissect.Dissector { return NewS7commPlus() }) }
