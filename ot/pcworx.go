package ot

import (
	"encoding/binary"
	"net/netip"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
)

// PCWorxPort is the TCP port of Phoenix Contact's PC Worx protocol (and of
// the ProConOS runtime on the same controllers).
const PCWorxPort = 1962

// PC Worx roles (dissect.AttrRole values).
const (
	RolePCWorxServer = "pcworx-server" // the controller
	RolePCWorxClient = "pcworx-client" // PC Worx engineering, or a scanner
)

// Attributes the PC Worx dissector emits besides the dissect.Attr* ones.
const (
	// AttrPCWorxOrderNumber is the "model number" of the info reply:
	// Phoenix Contact's order number (2737193 for an ILC 330 ETH).
	AttrPCWorxOrderNumber = "pcworx.order_number"
	// AttrPCWorxFirmwareDate is the firmware build date and time.
	AttrPCWorxFirmwareDate = "pcworx.firmware_date"
)

// PC Worx messages, as the public pcworx-info script (Digital Bond's
// Redpoint) exchanges them: a request starts with 01, a message type
// (01 session open, 05 session setup, 06 info), and the message's length
// (2 bytes, big endian); the controller's reply starts with 81 and the
// same type. The info reply holds NUL-terminated strings: PLC type at
// offset 30, firmware version at 66, firmware date at 79, firmware time at
// 91, model (order) number at 152.
const (
	pcworxReq        = 0x01
	pcworxResp       = 0x81
	pcworxTypeInfo   = 0x06
	pcworxMaxType    = 0x0f
	pcworxOffType    = 30
	pcworxOffFW      = 66
	pcworxOffFWDate  = 79
	pcworxOffFWTime  = 91
	pcworxOffModel   = 152
	pcworxMaxMessage = 4096
)

// PCWorx reads the PC Worx protocol of Phoenix Contact ILC/AXC
// controllers on TCP 1962. A client's request with a valid header (01,
// type, length equal to the segment) confirms it. It learns the roles, and
// from the info reply the PLC type (the model), firmware version, firmware
// date and the order number; a controller answering it is a PLC.
type PCWorx struct{}

// NewPCWorx returns a PC Worx dissector.
func NewPCWorx() *PCWorx { return &PCWorx{} }

// Name returns "pcworx".
func (*PCWorx) Name() string { return "pcworx" }

// Wants asks for TCP 1962.
func (*PCWorx) Wants() dissect.Wants { return dissect.Wants{TCPPorts: []uint16{PCWorxPort}} }

type pcworxFlow struct {
	lastType uint8 // type of the client's last request
	roles    bool
	info     bool
}

// pcworxRequest reports whether b is one whole request.
func pcworxRequest(b []byte) bool {
	return len(b) >= 4 && b[0] == pcworxReq && b[1] >= 1 && b[1] <= pcworxMaxType &&
		int(binary.BigEndian.Uint16(b[2:])) == len(b)
}

// Probe accepts a client's whole request.
func (w *PCWorx) Probe(p *dissect.Packet) bool {
	return p.Flow != nil && p.Flow.Proto == capture.ProtoTCP && p.Dir == flow.FromClient && pcworxRequest(p.Payload)
}

// Handle reads requests and the info reply.
func (w *PCWorx) Handle(p *dissect.Packet, out dissect.Sink) {
	if p.Flow == nil || p.Flow.Proto != capture.ProtoTCP || len(p.Payload) == 0 {
		return
	}
	st, ok := p.Flow.State.(*pcworxFlow)
	if !ok {
		st = &pcworxFlow{}
		p.Flow.State = st
	}
	b := p.Payload
	if !st.roles {
		st.roles = true
		vndEmit(out, p, "pcworx", p.Server(), dissect.AttrRole, RolePCWorxServer, netip.Addr{})
		vndEmit(out, p, "pcworx", p.Client(), dissect.AttrRole, RolePCWorxClient, netip.Addr{})
	}
	if p.Dir == flow.FromClient {
		if pcworxRequest(b) {
			st.lastType = b[1]
		}
		return
	}
	if st.info || st.lastType != pcworxTypeInfo || len(b) < pcworxOffModel+2 || b[0] != pcworxResp ||
		!vndPrintable(b[pcworxOffType:pcworxOffFW]) {
		return
	}
	st.info = true
	srv := p.Server()
	b = b[:min(len(b), pcworxMaxMessage)]
	if vndEmitText(out, p, "pcworx", srv, dissect.AttrModel, b[pcworxOffType:pcworxOffFW]) {
		vndEmit(out, p, "pcworx", srv, dissect.AttrClass, dissect.ClassPLC, netip.Addr{})
	}
	vndEmitText(out, p, "pcworx", srv, dissect.AttrFirmware, b[pcworxOffFW:pcworxOffFWDate])
	if date := vndText(b[pcworxOffFWDate:pcworxOffFWTime]); date != "" && vndPrintable(b[pcworxOffFWDate:pcworxOffFWTime]) {
		if tm := vndText(b[pcworxOffFWTime : pcworxOffFWTime+12]); tm != "" && vndPrintable(b[pcworxOffFWTime:pcworxOffFWTime+12]) {
			date += " " + tm
		}
		vndEmit(out, p, "pcworx", srv, AttrPCWorxFirmwareDate, date, netip.Addr{})
	}
	vndEmitText(out, p, "pcworx", srv, AttrPCWorxOrderNumber, b[pcworxOffModel:min(len(b), pcworxOffModel+32)])
}

func init() { register(65, "pcworx", func() dissect.Dissector { return NewPCWorx() }) }
