package it

import (
	"bytes"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
)

// Attributes the SMTP dissector emits.
const (
	// AttrSMTPBanner is the text of the server's 220 greeting (RFC 5321
	// section 4.2), about the server: often its name and software.
	AttrSMTPBanner = "smtp.banner"
	// AttrSMTPHelo is the domain (or address literal) a client names
	// itself with in EHLO or HELO (section 4.1.1.1), about the client. It
	// is what the client claims, kept raw.
	AttrSMTPHelo = "smtp.helo"
)

// RoleSMTPServer is the role of a side sending an SMTP greeting.
const RoleSMTPServer = "smtp-server"

const smtpMaxPackets = 6 // payload packets read per direction

// SMTP reads the start of an SMTP session (RFC 5321) on TCP 25, 587 and
// 2525: the server's 220 greeting and the client's EHLO or HELO. It reads
// at most 6 payload packets of each direction (a session turns to
// STARTTLS or mail data soon after) and emits each fact once per flow.
type SMTP struct{}

// NewSMTP returns an SMTP dissector.
func NewSMTP() *SMTP { return &SMTP{} }

func init() { register(85, "smtp", func() dissect.Dissector { return NewSMTP() }) }

// Name returns "smtp".
func (*SMTP) Name() string { return "smtp" }

// Wants asks for TCP ports 25, 587 and 2525.
func (*SMTP) Wants() dissect.Wants { return dissect.Wants{TCPPorts: []uint16{25, 587, 2525}} }

// smtpGreeting reports whether line is a 220 reply line.
func smtpGreeting(line []byte) bool {
	return len(line) >= 4 && bytes.HasPrefix(line, []byte("220")) && (line[3] == ' ' || line[3] == '-')
}

// smtpHello returns the argument of an EHLO or HELO command line.
func smtpHello(line []byte) ([]byte, bool) {
	if len(line) < 6 || (!appHasPrefixFold(line, "EHLO ") && !appHasPrefixFold(line, "HELO ")) {
		return nil, false
	}
	arg := bytes.TrimSpace(line[5:])
	if i := bytes.IndexByte(arg, ' '); i >= 0 {
		arg = arg[:i]
	}
	return arg, len(arg) > 0
}

// Probe reports whether p's payload is a server's 220 greeting or a
// client's EHLO/HELO, ending a line.
func (*SMTP) Probe(p *dissect.Packet) bool {
	if p.Flow == nil || p.Flow.Proto != capture.ProtoTCP {
		return false
	}
	line, _, ok := appNextLine(p.Payload)
	if !ok {
		return false
	}
	if p.Dir == 1 {
		return smtpGreeting(line)
	}
	_, ok = smtpHello(line)
	return ok
}

// smtpFlow is the per-flow state.
type smtpFlow struct {
	seen appFacts
	pkts [2]uint8
}

// Handle reads the greeting and hello lines of a claimed flow.
func (*SMTP) Handle(p *dissect.Packet, out dissect.Sink) {
	if p.Flow == nil || p.Flow.Proto != capture.ProtoTCP || len(p.Payload) == 0 {
		return
	}
	st, ok := p.Flow.State.(*smtpFlow)
	if !ok {
		st = &smtpFlow{}
		p.Flow.State = st
	}
	d := p.Dir & 1
	if st.pkts[d] >= smtpMaxPackets {
		return
	}
	st.pkts[d]++
	e := appEmitter{out: out, p: p, seen: &st.seen, proto: "smtp"}
	line, _, ok := appNextLine(p.Payload)
	if !ok {
		return
	}
	if d == 1 {
		if smtpGreeting(line) {
			e.text(e.src(), AttrSMTPBanner, line[4:], e.dst())
			e.str(e.src(), dissect.AttrRole, RoleSMTPServer, e.dst())
			st.pkts[d] = smtpMaxPackets
		}
		return
	}
	if arg, ok := smtpHello(line); ok {
		e.text(e.src(), AttrSMTPHelo, arg, e.dst())
		st.pkts[d] = smtpMaxPackets
	}
}
