package ot

import (
	"encoding/binary"
	"net/netip"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
)

// CrimsonPort is the TCP port of Red Lion's Crimson v3 (CR3) protocol,
// which Crimson 3 uses to program and update Red Lion HMIs and data
// stations.
const CrimsonPort = 789

// Crimson roles (dissect.AttrRole values).
const (
	RoleCrimsonServer = "crimson-server" // the Red Lion panel or data station
	RoleCrimsonClient = "crimson-client" // Crimson 3 engineering, or a scanner
)

// AttrCrimsonRegister is the registers a client (Peer) reads or writes on
// a panel, sorted: "crimson:registers 012a,012b" (at most 8 per flow),
// emitted when the list grows.
const AttrCrimsonRegister = "crimson.register"

// CR3 frames (as the public cr3-fingerprint NSE script and the cr3
// Wireshark dissector read them): length (2, big endian, the bytes after
// itself), register (2, big endian), type (2), data. The identity
// registers: 012B manufacturer and 012A model, answered with a
// NUL-terminated string after the 6-byte header.
const (
	crimsonHeaderLen    = 6
	crimsonMaxFrame     = 4096
	crimsonManufacturer = 0x012b
	crimsonModel        = 0x012a
	crimsonMaxRegisters = 8
)

// Crimson reads the Crimson v3 protocol on TCP 789. Frames whose length
// field agrees with the segment confirm it. It learns the roles, the
// registers clients use, and what a panel answers to the manufacturer and
// model reads.
type Crimson struct{}

// NewCrimson returns a Crimson v3 dissector.
func NewCrimson() *Crimson { return &Crimson{} }

// Name returns "crimson".
func (*Crimson) Name() string { return "crimson" }

// Wants asks for TCP 789.
func (*Crimson) Wants() dissect.Wants { return dissect.Wants{TCPPorts: []uint16{CrimsonPort}} }

type crimsonFlow struct {
	s     [2]dissect.Stream
	regs  vndCodes
	roles bool
	ident uint8
}

// crimsonFrame returns the length of the frame at the start of b.
func crimsonFrame(b []byte) (int, bool) {
	if len(b) < 2 {
		return 0, false
	}
	n := 2 + int(binary.BigEndian.Uint16(b))
	return n, n >= crimsonHeaderLen && n <= crimsonMaxFrame
}

// Probe accepts a segment made of exactly one whole frame.
func (c *Crimson) Probe(p *dissect.Packet) bool {
	if p.Flow == nil || p.Flow.Proto != capture.ProtoTCP {
		return false
	}
	n, ok := crimsonFrame(p.Payload)
	return ok && n == len(p.Payload)
}

// Handle reads the frames of a segment.
func (c *Crimson) Handle(p *dissect.Packet, out dissect.Sink) {
	if p.Flow == nil || p.Flow.Proto != capture.ProtoTCP || len(p.Payload) == 0 {
		return
	}
	st := flowState[crimsonFlow](p.Flow)
	if !st.roles {
		st.roles = true
		vndEmit(out, p, "crimson", p.Server(), dissect.AttrRole, RoleCrimsonServer, netip.Addr{})
		vndEmit(out, p, "crimson", p.Client(), dissect.AttrRole, RoleCrimsonClient, netip.Addr{})
	}
	tcpRecords(&st.s[p.Dir&1], p, crimsonHeaderLen, crimsonFrame, func(b []byte) { c.frame(p, st, b, out) })
}

func (c *Crimson) frame(p *dissect.Packet, st *crimsonFlow, b []byte, out dissect.Sink) {
	reg := binary.BigEndian.Uint16(b[2:])
	srv := p.Server()
	if p.Dir == flow.FromClient {
		if st.regs.add(reg) {
			var rs []string
			for _, r := range st.regs.codes[:st.regs.n] {
				rs = append(rs, vndHex4(r))
			}
			vndEmit(out, p, "crimson", srv, AttrCrimsonRegister, "crimson:registers "+vndJoin(rs, ","), p.Client())
		}
		return
	}
	var attr string
	var bit uint8
	switch reg {
	case crimsonManufacturer:
		attr, bit = dissect.AttrVendor, 1
	case crimsonModel:
		attr, bit = dissect.AttrModel, 2
	default:
		return
	}
	if st.ident&bit == 0 && vndEmitText(out, p, "crimson", srv, attr, b[crimsonHeaderLen:]) {
		st.ident |= bit
	}
}

func init() { register(70, "crimson", func() dissect.Dissector { return NewCrimson() }) }
