package it

import (
	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
)

// AttrTelnetBanner is the printable text a Telnet server sends before the
// login prompt (often the device's name, model or OS), about the server,
// whitespace runs folded into one space.
const AttrTelnetBanner = "telnet.banner"

// RoleTelnetServer is the role of a side answering on Telnet.
const RoleTelnetServer = "telnet-server"

const (
	telnetMaxPackets = 16  // server payload packets read
	telnetMaxBanner  = 200 // banner bytes kept
	telnetIAC        = 255
	telnetSB         = 250
	telnetSE         = 240
)

// Telnet reads the banner of a Telnet server (RFC 854) on TCP port 23: the
// printable text of its first payload packets, with option negotiation
// (RFC 855: IAC WILL/WONT/DO/DONT and IAC SB ... IAC SE) taken out. It
// stops at 200 bytes of text, a line ending in a prompt ("login:",
// "Username:", "Password:" ...), or 16 server packets, then emits the
// banner once. What clients type is never read.
type Telnet struct{}

// NewTelnet returns a Telnet dissector.
func NewTelnet() *Telnet { return &Telnet{} }

func init() { register(86, "telnet", func() dissect.Dissector { return NewTelnet() }) }

// Name returns "telnet".
func (*Telnet) Name() string { return "telnet" }

// Wants asks for TCP port 23.
func (*Telnet) Wants() dissect.Wants { return dissect.Wants{TCPPorts: []uint16{23}} }

// Probe reports whether p's payload starts with a Telnet command (IAC and a
// negotiation verb) or, from the server, printable text.
func (*Telnet) Probe(p *dissect.Packet) bool {
	if p.Flow == nil || p.Flow.Proto != capture.ProtoTCP {
		return false
	}
	b := p.Payload
	if len(b) >= 3 && b[0] == telnetIAC && b[1] >= telnetSB && b[1] <= 254 {
		return true
	}
	if p.Dir != 1 || len(b) == 0 {
		return false
	}
	for _, c := range b[:min(len(b), 64)] {
		if (c < 0x20 || c > 0x7e) && c != '\r' && c != '\n' && c != '\t' && c != 0 {
			return false
		}
	}
	return true
}

// telnetFlow is the per-flow state: the banner collected so far.
type telnetFlow struct {
	text  [telnetMaxBanner]byte
	n     uint8
	pkts  uint8
	sb    bool  // inside IAC SB ... IAC SE
	iac   uint8 // bytes of a command still to skip
	done  bool
	space bool // last byte kept was a space
}

// Handle collects the server's text.
func (*Telnet) Handle(p *dissect.Packet, out dissect.Sink) {
	if p.Flow == nil || p.Flow.Proto != capture.ProtoTCP || len(p.Payload) == 0 || p.Dir != 1 {
		return
	}
	st, ok := p.Flow.State.(*telnetFlow)
	if !ok {
		st = &telnetFlow{}
		p.Flow.State = st
	}
	if st.done {
		return
	}
	st.pkts++
	prompt := false
	b := p.Payload
	for i := 0; i < len(b) && int(st.n) < telnetMaxBanner; i++ {
		c := b[i]
		switch {
		case st.iac > 0:
			st.iac--
			if st.iac == 0 && c == telnetSB {
				st.sb = true
			}
			continue
		case c == telnetIAC:
			if i+1 < len(b) && b[i+1] == telnetIAC && !st.sb {
				i++ // escaped 255: not printable anyway
				continue
			}
			if i+1 < len(b) && b[i+1] == telnetSE {
				st.sb = false
				i++
				continue
			}
			if i+1 < len(b) && b[i+1] >= telnetSB && b[i+1] <= 254 {
				if b[i+1] == telnetSB {
					st.sb = true
					i++
				} else {
					i += 2 // verb and option
				}
				continue
			}
			i++ // a two-byte command
			continue
		case st.sb:
			continue
		}
		if c == ':' || c == '>' || c == '#' {
			prompt = true
		}
		if c <= ' ' || c > 0x7e {
			if c == '\n' {
				prompt = false
			}
			if !st.space && st.n > 0 {
				st.text[st.n] = ' '
				st.n++
				st.space = true
			}
			continue
		}
		st.text[st.n] = c
		st.n++
		st.space = false
	}
	if int(st.n) < telnetMaxBanner && st.pkts < telnetMaxPackets && !prompt {
		return
	}
	st.done = true
	var seen appFacts
	e := appEmitter{out: out, p: p, seen: &seen, proto: "telnet"}
	e.text(e.src(), AttrTelnetBanner, st.text[:st.n], e.dst())
	e.str(e.src(), dissect.AttrRole, RoleTelnetServer, e.dst())
}
