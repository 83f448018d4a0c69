package ot

import (
	"bytes"
	"net/netip"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
)

// ProConOSPort is the TCP port of the ProConOS (KW-Software, Phoenix
// Contact) runtime; it also answers on PCWorxPort.
const ProConOSPort = 20547

// ProConOS roles (dissect.AttrRole values).
const (
	RoleProConOSServer = "proconos-server" // the runtime (the PLC)
	RoleProConOSClient = "proconos-client" // engineering or a scanner
)

// Attributes the ProConOS dissector emits besides the dissect.Attr* ones.
const (
	AttrProConOSProject     = "proconos.project"      // project name
	AttrProConOSBootProject = "proconos.boot_project" // boot project name
	AttrProConOSSource      = "proconos.source"       // whether the project's source is on the PLC
)

// ProConOS messages, as the public proconos-info script (Digital Bond's
// Redpoint) exchanges them: both directions start with CC 01; the info
// request is CC 01 00 0B 40 02 00 00 47 EE. Its reply holds NUL-terminated
// strings: the ladder-logic runtime ("ProConOS V3.0.1040 Oct 29 2002") at
// offset 12, the PLC type at 44, the project name at 77, then the boot
// project and the project source state, each right after the previous.
const (
	proconosMagic      = 0xcc
	proconosOffRuntime = 12
	proconosOffType    = 44
	proconosOffProject = 77
	proconosMaxString  = 64
	proconosMaxMessage = 2048
)

// ProConOS reads the ProConOS runtime protocol on TCP 20547 and 1962. A
// client's segment starting CC 01 confirms it. It learns the roles, and
// from the info reply the runtime version (the firmware), the PLC type
// (the model), the project and boot project names and whether the project
// source is stored; a runtime answering it is a PLC. The protocol states
// no project date in what is publicly documented.
type ProConOS struct{}

// NewProConOS returns a ProConOS dissector.
func NewProConOS() *ProConOS { return &ProConOS{} }

// Name returns "proconos".
func (*ProConOS) Name() string { return "proconos" }

// Wants asks for TCP 20547 and 1962.
func (*ProConOS) Wants() dissect.Wants {
	return dissect.Wants{TCPPorts: []uint16{ProConOSPort, PCWorxPort}}
}

type proconosFlow struct {
	roles, info bool
}

// Probe accepts a client's segment starting CC 01 with at least a header.
func (c *ProConOS) Probe(p *dissect.Packet) bool {
	b := p.Payload
	return p.Flow != nil && p.Flow.Proto == capture.ProtoTCP && p.Dir == flow.FromClient &&
		len(b) >= 10 && b[0] == proconosMagic && b[1] == 0x01
}

// Handle reads the info reply.
func (c *ProConOS) Handle(p *dissect.Packet, out dissect.Sink) {
	if p.Flow == nil || p.Flow.Proto != capture.ProtoTCP || len(p.Payload) == 0 {
		return
	}
	st, ok := p.Flow.State.(*proconosFlow)
	if !ok {
		st = &proconosFlow{}
		p.Flow.State = st
	}
	if !st.roles {
		st.roles = true
		vndEmit(out, p, "proconos", p.Server(), dissect.AttrRole, RoleProConOSServer, netip.Addr{})
		vndEmit(out, p, "proconos", p.Client(), dissect.AttrRole, RoleProConOSClient, netip.Addr{})
	}
	b := p.Payload
	if st.info || p.Dir != flow.FromServer || len(b) < proconosOffProject+1 || b[0] != proconosMagic ||
		!vndPrintable(b[proconosOffRuntime:proconosOffType]) {
		return
	}
	st.info = true
	b = b[:min(len(b), proconosMaxMessage)]
	srv := p.Server()
	vndEmitText(out, p, "proconos", srv, dissect.AttrFirmware, b[proconosOffRuntime:proconosOffType])
	if vndEmitText(out, p, "proconos", srv, dissect.AttrModel, b[proconosOffType:proconosOffProject]) {
		vndEmit(out, p, "proconos", srv, dissect.AttrClass, dissect.ClassPLC, netip.Addr{})
	}
	rest := b[proconosOffProject:]
	for _, attr := range []string{AttrProConOSProject, AttrProConOSBootProject, AttrProConOSSource} {
		n := bytes.IndexByte(rest, 0)
		if n < 0 {
			n = len(rest)
		}
		vndEmitText(out, p, "proconos", srv, attr, rest[:min(n, proconosMaxString)])
		if n >= len(rest) {
			return
		}
		rest = rest[n+1:]
	}
}

func init() { register(66, "proconos", func() dissect.Dissector { return NewProConOS() }) }
