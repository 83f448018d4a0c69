package ot

import (
	"encoding/binary"
	"net/netip"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
)

// DeltaVPort is the UDP port Emerson DeltaV controllers and operator
// stations exchange their messages on.
const DeltaVPort = 18507

// DeltaV roles (dissect.AttrRole values).
const (
	RoleDeltaVController  = "deltav-controller"  // the DCS controller
	RoleDeltaVWorkstation = "deltav-workstation" // operator station subscribing to its data
)

// DeltaV messages: Emerson publishes no layout. What is read here is the
// wrapper that the Apache PLC4X project documented from captures of a
// DeltaV training system (src/site/asciidoc/protocols/delta-v/index.adoc,
// reverse-engineering.adoc, and the decoder plc4j/protocols/delta-v
// PoC.java): big endian; bytes 0-1 FA CE; 2-3 payload length; 4-5
// message type (2 data, 3 connection request, 4 connection response, 6
// sync); 6-7 message id; 8-9 sender id; 10-12 a timestamp; 13 0x80 (0x00
// on a party's first message); 14-15 04 00 (44 00 on types 3 and 4); the
// payload; a 2-byte checksum. "The number encoded here was constantly 2
// bytes short the number of bytes after the 3 constant bytes": a message
// is 16 + length + 2 bytes. An acknowledgement is a message of length 0
// with the type and id of the one it acknowledges. The payload of a data
// message starts with its payload type, whose direction PLC4X observed.
const (
	deltavHeaderLen = 16
	deltavMin       = deltavHeaderLen + 2
	deltavData      = 2
	deltavConnect   = 3
	deltavConnected = 4
	deltavSync      = 6
)

// Payload types of data messages, with the side that sends them
// (PLC4X PoC.java notes and index.adoc sequence diagrams). Names are those
// the notes give; types the notes saw both ways (0304) or gave no
// direction for (0404, 0506) are named but say nothing of roles.
const (
	dvFromWorkstation = 1
	dvFromController  = 2
)

var deltavTypes = newVndTable("deltav", func(c uint16) string { return vndHex4(c) }, []vndCommand{
	{0x0201, "connection-setup", vndRead},
	{0x0202, "connection-setup-reply", vndRead},
	{0x0301, "alarm-event-request", vndRead},
	{0x0302, "alarm-event-reply", vndRead},
	{0x0304, "alarm-event", vndRead},
	{0x0401, "data-connection-request", vndRead},
	{0x0402, "data-connection-reply", vndRead},
	{0x0403, "data-change", vndRead},
	{0x0404, "data-connection-info", vndRead},
	{0x0501, "workstation-version-info", vndRead},
	{0x0502, "controller-version-info", vndRead},
	{0x0506, "named-values", vndRead},
	{0x0801, "read-request", vndRead},
	{0x0802, "read-reply", vndRead},
	{0x1b01, "subscribe-request", vndRead},
	{0x1b02, "subscribe-reply", vndRead},
})

// deltavSender says which side sends a payload type, 0 when unknown.
func deltavSender(t uint16) uint8 {
	switch t {
	case 0x0201, 0x0301, 0x0401, 0x0501, 0x0801, 0x1b01:
		return dvFromWorkstation
	case 0x0202, 0x0302, 0x0402, 0x0403, 0x0502, 0x0506, 0x0802, 0x1b02:
		return dvFromController
	}
	return 0
}

// deltavMessage checks that b is one whole DeltaV message and returns its
// type and payload.
func deltavMessage(b []byte) (typ uint16, payload []byte, ok bool) {
	if len(b) < deltavMin || b[0] != 0xfa || b[1] != 0xce {
		return 0, nil, false
	}
	n := int(binary.BigEndian.Uint16(b[2:]))
	if len(b) != deltavHeaderLen+n+2 {
		return 0, nil, false
	}
	typ = binary.BigEndian.Uint16(b[4:])
	switch typ {
	case deltavData, deltavConnect, deltavConnected, deltavSync:
	default:
		return 0, nil, false
	}
	if b[13]&0x7f != 0 || b[14]&^0x40 != 0x04 || b[15] != 0 {
		return 0, nil, false
	}
	return typ, b[deltavHeaderLen : deltavHeaderLen+n], true
}

// DeltaV reads Emerson DeltaV controller communication on UDP 18507 (and
// on any UDP port, by its payload): a whole message with the FA CE
// header, a length that accounts for the datagram, a known message type
// and the header's constant bytes confirm it. It learns the controllers
// and the operator stations from the messages only one side sends (a
// connection response, and the data payload types whose direction was
// observed), and the payload types each pair uses (dissect.AttrService
// on the controller, Peer the workstation). The version information the
// two sides exchange on connecting has no public layout and is not read:
// DeltaV nodes are reported by their role.
type DeltaV struct{}

// NewDeltaV returns a DeltaV dissector.
func NewDeltaV() *DeltaV { return &DeltaV{} }

// Name returns "deltav".
func (*DeltaV) Name() string { return "deltav" }

// Wants asks for UDP 18507, and to be tried on other UDP flows.
func (*DeltaV) Wants() dissect.Wants {
	return dissect.Wants{UDPPorts: []uint16{DeltaVPort}, Heuristic: true}
}

type deltavFlow struct {
	// ctrl is the controller's side of the flow: 0 unknown, 1 the
	// client, 2 the server.
	ctrl     uint8
	services bitset256
	other    vndCodes
}

// Probe accepts a datagram holding one whole message.
func (d *DeltaV) Probe(p *dissect.Packet) bool {
	if p.Flow == nil || p.Flow.Proto != capture.ProtoUDP {
		return false
	}
	_, _, ok := deltavMessage(p.Payload)
	return ok
}

// Handle reads one message.
func (d *DeltaV) Handle(p *dissect.Packet, out dissect.Sink) {
	if p.Flow == nil || p.Flow.Proto != capture.ProtoUDP {
		return
	}
	typ, payload, ok := deltavMessage(p.Payload)
	if !ok {
		return
	}
	st := flowState[deltavFlow](p.Flow)
	var sender uint8 // who sent this message, when its kind tells
	var ptype uint16
	switch {
	case typ == deltavConnected && len(payload) > 0:
		// A connection response; its acknowledgement (length 0, the
		// same type) comes from the workstation.
		sender = dvFromController
	case typ == deltavData && len(payload) >= 2:
		ptype = binary.BigEndian.Uint16(payload)
		sender = deltavSender(ptype)
	}
	if sender != 0 && st.ctrl == 0 {
		fromClient := p.Dir == flow.FromClient
		if (sender == dvFromController) == fromClient {
			st.ctrl = 1
		} else {
			st.ctrl = 2
		}
		ctrl, ws := d.sides(p, st)
		vndEmit(out, p, "deltav", ctrl, dissect.AttrRole, RoleDeltaVController, netip.Addr{})
		vndEmit(out, p, "deltav", ctrl, dissect.AttrVendor, "Emerson", netip.Addr{})
		vndEmit(out, p, "deltav", ws, dissect.AttrRole, RoleDeltaVWorkstation, netip.Addr{})
	}
	if ptype != 0 && st.ctrl != 0 {
		ctrl, ws := d.sides(p, st)
		vndService(out, p, "deltav", deltavTypes, &st.services, &st.other, ctrl, ws, ptype, [4]string{})
	}
}

// sides returns the controller and the workstation of a flow whose
// controller side is known.
func (d *DeltaV) sides(p *dissect.Packet, st *deltavFlow) (ctrl, ws netip.Addr) {
	if st.ctrl == 1 {
		return p.Client(), p.Server()
	}
	return p.Server(), p.Client()
}

func init() { register(71, "deltav", func() dissect.Dissector { return NewDeltaV() }) }
