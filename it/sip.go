package it

import (
	"bytes"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
)

// Attributes the SIP dissector emits, about the sender of the message.
const (
	AttrSIPUserAgent = "sip.user_agent" // User-Agent header (RFC 3261 section 20.41): often the phone's maker and model
	AttrSIPServer    = "sip.server"     // Server header (section 20.35)
	// AttrSIPFrom is the user@host of the From URI of a request the sender
	// made (section 20.20): its own address of record.
	AttrSIPFrom = "sip.from"
	// AttrSIPContact is the user@host[:port] of the Contact URI of the
	// sender's REGISTER or INVITE (section 20.10): where it is reached.
	AttrSIPContact = "sip.contact"
)

// Roles the SIP dissector gives.
const (
	RoleSIPUA        = "sip-ua"        // sends requests with a User-Agent
	RoleSIPRegistrar = "sip-registrar" // answers REGISTER
)

const sipMaxPackets = 64 // payload packets read per flow

// SIP reads SIP (RFC 3261) on UDP and TCP port 5060 and, by its request or
// status line, on other UDP and TCP ports: the User-Agent and Server
// headers, the From and Contact URIs of requests (user and host, no
// parameters), and the roles of user agents and registrars. SIP over TCP
// is read when a segment starts with a message (headers in one segment,
// as is usual). A flow is read for at most 64 payload packets; each fact
// is emitted once per flow.
type SIP struct{}

// NewSIP returns a SIP dissector.
func NewSIP() *SIP { return &SIP{} }

func init() { register(87, "sip", func() dissect.Dissector { return NewSIP() }) }

// Name returns "sip".
func (*SIP) Name() string { return "sip" }

// Wants asks for port 5060 and heuristic probing.
func (*SIP) Wants() dissect.Wants {
	return dissect.Wants{TCPPorts: []uint16{5060}, UDPPorts: []uint16{5060}, Heuristic: true}
}

// sipStart reads a start line: a request "METHOD sip:... SIP/2.0" (method
// returned) or a status line "SIP/2.0 NNN ..." (code returned).
func sipStart(line []byte) (method []byte, code int, ok bool) {
	if bytes.HasPrefix(line, []byte("SIP/2.0 ")) && len(line) >= 11 {
		code, ok = appAtoi(line[8:11])
		return nil, code, ok && code >= 100 && code < 700 && (len(line) == 11 || line[11] == ' ')
	}
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || !appIsMethod(line[:sp]) || !bytes.HasSuffix(line, []byte(" SIP/2.0")) {
		return nil, 0, false
	}
	uri := line[sp+1:]
	if !appHasPrefixFold(uri, "SIP:") && !appHasPrefixFold(uri, "SIPS:") && !appHasPrefixFold(uri, "TEL:") {
		return nil, 0, false
	}
	return line[:sp], 0, true
}

// Probe reports whether p's payload starts with a SIP start line.
func (*SIP) Probe(p *dissect.Packet) bool {
	if p.Flow == nil || (p.Flow.Proto != capture.ProtoUDP && p.Flow.Proto != capture.ProtoTCP) {
		return false
	}
	line, _, ok := appNextLine(p.Payload)
	if !ok {
		return false
	}
	_, _, ok = sipStart(line)
	return ok
}

// sipFlow is the per-flow state.
type sipFlow struct {
	seen appFacts
	pkts uint8
}

// Handle reads a message of a claimed flow.
func (*SIP) Handle(p *dissect.Packet, out dissect.Sink) {
	if p.Flow == nil || len(p.Payload) == 0 {
		return
	}
	st, ok := p.Flow.State.(*sipFlow)
	if !ok {
		st = &sipFlow{}
		p.Flow.State = st
	}
	if st.pkts >= sipMaxPackets || st.seen.full() {
		return
	}
	st.pkts++
	line, rest, ok := appNextLine(p.Payload)
	if !ok {
		return
	}
	method, code, ok := sipStart(line)
	if !ok {
		return
	}
	e := appEmitter{out: out, p: p, seen: &st.seen, proto: "sip"}
	src, dst := e.src(), e.dst()
	request := method != nil
	var cseqRegister bool
	for i := 0; i < 64 && len(rest) > 0; i++ {
		var l []byte
		l, rest, ok = appNextLine(rest)
		if len(l) == 0 {
			break // end of headers
		}
		switch {
		case sipHeader(l, "user-agent", ""):
			v, _ := appHeaderValue(l, "user-agent")
			e.text(src, AttrSIPUserAgent, v, dst)
			if request {
				e.str(src, dissect.AttrRole, RoleSIPUA, dst)
			}
		case sipHeader(l, "server", ""):
			v, _ := appHeaderValue(l, "server")
			e.text(src, AttrSIPServer, v, dst)
		case request && sipHeader(l, "from", "f"):
			e.text(src, AttrSIPFrom, sipURIHost(sipValue(l)), dst)
		case request && sipHeader(l, "contact", "m"):
			e.text(src, AttrSIPContact, sipURIHost(sipValue(l)), dst)
		case sipHeader(l, "cseq", ""):
			v, _ := appHeaderValue(l, "cseq")
			cseqRegister = bytes.HasSuffix(v, []byte("REGISTER"))
		}
		if !ok {
			break
		}
	}
	if !request && cseqRegister && code >= 200 && code < 300 {
		e.str(src, dissect.AttrRole, RoleSIPRegistrar, dst)
	}
}

// sipHeader reports whether line is header name (or its compact form,
// section 7.3.3), allowing spaces before the colon.
func sipHeader(line []byte, name, compact string) bool {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return false
	}
	n := bytes.TrimSpace(line[:i])
	return (len(n) == len(name) && appHasPrefixFoldLower(n, name)) ||
		(compact != "" && len(n) == len(compact) && appHasPrefixFoldLower(n, compact))
}

// appHasPrefixFoldLower compares b with lower-case s without case.
func appHasPrefixFoldLower(b []byte, s string) bool {
	if len(b) < len(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// sipValue returns a header line's value.
func sipValue(line []byte) []byte {
	i := bytes.IndexByte(line, ':')
	return bytes.TrimSpace(line[i+1:])
}

// sipURIHost returns user@host[:port] of the first SIP URI in a From or
// Contact value (name-addr or addr-spec), without scheme and parameters.
func sipURIHost(v []byte) []byte {
	if i := bytes.IndexByte(v, '<'); i >= 0 {
		v = v[i+1:]
		if j := bytes.IndexByte(v, '>'); j >= 0 {
			v = v[:j]
		}
	}
	switch {
	case appHasPrefixFold(v, "SIP:"):
		v = v[4:]
	case appHasPrefixFold(v, "SIPS:"):
		v = v[5:]
	default:
		return nil
	}
	if i := bytes.IndexAny(v, ";?> ,"); i >= 0 {
		v = v[:i]
	}
	return v
}
