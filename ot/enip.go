package ot

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
)

// EtherNet/IP ports: explicit messaging and ListIdentity (TCP and UDP
// 44818) and connected (implicit) I/O (UDP 2222).
const (
	ENIPPort   = 44818
	ENIPIOPort = 2222
)

// EtherNet/IP roles (dissect.AttrRole values).
const (
	RoleENIPServer = "enip-server" // answers explicit messages, ListIdentity
	RoleENIPClient = "enip-client" // sends them (scanner, HMI, engineering tool)
)

// Attributes the EtherNet/IP dissector emits besides the dissect.Attr* ones.
const (
	// AttrCIPVendorID is the raw CIP vendor id (decimal).
	AttrCIPVendorID = "cip.vendor_id"
	// AttrCIPDeviceType is the CIP device type profile: "0x000e programmable-logic-controller".
	AttrCIPDeviceType = "cip.device_type"
	// AttrCIPProductCode is the vendor's product code (decimal).
	AttrCIPProductCode = "cip.product_code"
	// AttrCIPStatus is the Identity object's status word (hex).
	AttrCIPStatus = "cip.status"
	// AttrCIPState is the Identity object's state byte (hex).
	AttrCIPState = "cip.state"
	// AttrENIPSocket is the socket address a ListIdentity reply states
	// ("10.0.0.5:44818").
	AttrENIPSocket = "enip.socket"
	// AttrCIPModule describes a module reached through the device's
	// backplane (an Identity read routed by Unconnected Send):
	// "port 1 slot 0: Rockwell Automation/Allen-Bradley 1756-L61/B LOGIX5561
	// type 0x000e rev 16.20 serial 0x0051823f". It is the identity of the
	// module, not of the addressed device.
	AttrCIPModule = "cip.module"
	// AttrCIPWrite flags a client (Peer) changing data on the server
	// (Set_Attribute*, Write Tag, PCCC writes). Value as for dissect.AttrService.
	AttrCIPWrite = "cip.write"
	// AttrCIPModeChange flags a client (Peer) starting or stopping the
	// device, or changing a PCCC processor's mode.
	AttrCIPModeChange = "cip.mode_change"
	// AttrCIPReset flags a client (Peer) resetting (rebooting) the device.
	AttrCIPReset = "cip.reset"
	// AttrCIPFirmwareUpdate flags a client (Peer) writing to the
	// Non-Volatile Storage object (class 0xa1): a firmware update.
	AttrCIPFirmwareUpdate = "cip.firmware_update"
	// AttrCIPProgram flags a client (Peer) uploading or downloading the
	// program (PCCC upload/download functions).
	AttrCIPProgram = "cip.program"
	// AttrCIPConnection describes a connection a client (Peer) opens with
	// Forward_Open: "path 20 04 24 65 2c 66 rpi_ot_us 10000 rpi_to_us 10000
	// transport 0x01".
	AttrCIPConnection = "cip.connection"
	// AttrCIPError is a CIP error answer, once per flow per service.
	AttrCIPError = "cip.error"
)

// Encapsulation commands (CIP vol. 2, table 2-3.2).
const (
	encNOP             = 0x0000
	encListServices    = 0x0004
	encListIdentity    = 0x0063
	encListInterfaces  = 0x0064
	encRegisterSession = 0x0065
	encUnregister      = 0x0066
	encSendRRData      = 0x006f
	encSendUnitData    = 0x0070
	encIndicateStatus  = 0x0072
	encCancel          = 0x0073
	encHeaderLen       = 24
	encMaxData         = 65511
)

// Common packet format item types (CIP vol. 2, table 2-6.3).
const (
	cpfNull          = 0x0000
	cpfListIdentity  = 0x000c
	cpfConnAddr      = 0x00a1
	cpfConnData      = 0x00b1
	cpfUnconnData    = 0x00b2
	cpfListServices  = 0x0100
	cpfSockOT        = 0x8000
	cpfSockTO        = 0x8001
	cpfSequencedAddr = 0x8002
)

// CIP classes and services with a meaning of their own here.
const (
	cipClassIdentity  = 0x01
	cipClassRouter    = 0x02
	cipClassCM        = 0x06
	cipClassPCCC      = 0x67
	cipClassNVS       = 0xa1 // Non-Volatile Storage: firmware updates
	cipClassSymbolic  = 0xffff
	svcGetAll         = 0x01
	svcSetAll         = 0x02
	svcGetList        = 0x03
	svcSetList        = 0x04
	svcReset          = 0x05
	svcStart          = 0x06
	svcStop           = 0x07
	svcMSP            = 0x0a
	svcGetSingle      = 0x0e
	svcSetSingle      = 0x10
	svcExecutePCCC    = 0x4b
	svcForwardClose   = 0x4e
	svcUnconnSend     = 0x52
	svcForwardOpen    = 0x54
	svcLargeFwdOpen   = 0x5b
	cipReplyBit       = 0x80
	cipMaxEmbedded    = 8  // services read per Multiple_Service_Packet
	enipMaxServices   = 32 // distinct services emitted per flow
	enipMaxConnPerFlo = 8  // Forward_Open descriptions emitted per flow
)

// Names of the common services (CIP vol. 1, appendix A).
var cipCommonServices = [0x20]string{
	0x01: "get-attributes-all", 0x02: "set-attributes-all", 0x03: "get-attribute-list",
	0x04: "set-attribute-list", 0x05: "reset", 0x06: "start", 0x07: "stop", 0x08: "create",
	0x09: "delete", 0x0a: "multiple-service-packet", 0x0d: "apply-attributes",
	0x0e: "get-attribute-single", 0x10: "set-attribute-single", 0x11: "find-next-object-instance",
	0x15: "restore", 0x16: "save", 0x17: "no-operation", 0x18: "get-member", 0x19: "set-member",
	0x1a: "insert-member", 0x1b: "remove-member", 0x1c: "group-sync",
}

// cipClassNames names the classes seen on the wire most (CIP vol. 1,
// table 5-1.1; Logix classes as commonly documented).
var cipClassNames = map[uint16]string{
	0x01: "identity", 0x02: "message-router", 0x04: "assembly", 0x06: "connection-manager",
	0x37: "file", 0x47: "device-level-ring", 0x48: "qos", 0x64: "logix-program",
	0x67: "pccc", 0x68: "logix-routine", 0x69: "logix-task", 0x6a: "logix-program-name",
	0x6b: "symbol", 0x6c: "template", 0x70: "logix-controller", 0x72: "logix-change-log",
	0x73: "logix-connection", 0x8e: "logix-controller-status", 0xa1: "non-volatile-storage",
	0xac: "logix-controller-time", 0xf4: "port", 0xf5: "tcp-ip-interface", 0xf6: "ethernet-link",
}

// cipServiceName names service svc on class (cipClassSymbolic for a
// symbolic path).
func cipServiceName(svc uint8, class uint16) string {
	if svc < 0x20 && cipCommonServices[svc] != "" {
		return cipCommonServices[svc]
	}
	switch class {
	case cipClassCM:
		switch svc {
		case svcForwardClose:
			return "forward-close"
		case svcUnconnSend:
			return "unconnected-send"
		case svcForwardOpen:
			return "forward-open"
		case 0x56:
			return "get-connection-data"
		case 0x57:
			return "search-connection-data"
		case svcLargeFwdOpen:
			return "large-forward-open"
		}
	case cipClassPCCC:
		if svc == svcExecutePCCC {
			return "execute-pccc"
		}
	case cipClassSymbolic, 0x6b, 0x6c:
		switch svc {
		case 0x4c:
			return "read-tag"
		case 0x4d:
			return "write-tag"
		case 0x4e:
			return "read-modify-write-tag"
		case 0x52:
			return "read-tag-fragmented"
		case 0x53:
			return "write-tag-fragmented"
		case 0x55:
			return "get-instance-attribute-list"
		}
	}
	return "service-0x" + cipHex8(svc)
}

// cipIsWrite reports whether svc on class changes the device's data.
func cipIsWrite(svc uint8, class uint16) bool {
	switch svc {
	case svcSetAll, svcSetList, svcSetSingle, 0x08, 0x09, 0x15, 0x19, 0x1a, 0x1b:
		return true
	}
	if class == cipClassSymbolic || class == 0x6b {
		return svc == 0x4d || svc == 0x4e || svc == 0x53
	}
	return false
}

// PCCC (DF1 command set carried by Execute PCCC): command 0x0f functions.
var pcccFunctions = map[uint8]string{
	0x00: "word-range-write", 0x01: "word-range-read", 0x02: "bit-write", 0x26: "read-modify-write",
	0x3a: "set-cpu-mode", 0x50: "download-all-request", 0x52: "download-completed",
	0x53: "upload-all-request", 0x55: "upload-completed", 0x67: "typed-write", 0x68: "typed-read",
	0x80: "change-mode", 0x11: "get-edit-resource", 0x12: "return-edit-resource",
	0xa1: "protected-typed-logical-read-2", 0xa2: "protected-typed-logical-read-3",
	0xa9: "protected-typed-logical-write-2", 0xaa: "protected-typed-logical-write-3",
	0xab: "protected-typed-logical-masked-write-3",
}

// pcccKind says what a PCCC command 0x0f function does: 'w' write, 'm'
// mode change, 'p' program transfer, 0 otherwise.
func pcccKind(fnc uint8) byte {
	switch fnc {
	case 0x00, 0x02, 0x26, 0x67, 0xa9, 0xaa, 0xab:
		return 'w'
	case 0x3a, 0x80:
		return 'm'
	case 0x50, 0x52, 0x53, 0x55:
		return 'p'
	}
	return 0
}

// CIP device type profiles (CIP vol. 1, table 6-7.1) and the device class
// each says the device is.
var cipDeviceTypes = map[uint16]struct{ name, class string }{
	0x00: {"generic-device", ""},
	0x02: {"ac-drive", dissect.ClassDrive},
	0x03: {"motor-overload", dissect.ClassRelay},
	0x04: {"limit-switch", dissect.ClassSensor},
	0x05: {"inductive-proximity-switch", dissect.ClassSensor},
	0x06: {"photoelectric-sensor", dissect.ClassSensor},
	0x07: {"general-purpose-discrete-io", dissect.ClassIO},
	0x09: {"resolver", dissect.ClassSensor},
	0x0c: {"communications-adapter", dissect.ClassIO},
	0x0e: {"programmable-logic-controller", dissect.ClassPLC},
	0x10: {"position-controller", dissect.ClassDrive},
	0x13: {"dc-drive", dissect.ClassDrive},
	0x15: {"contactor", ""},
	0x16: {"motor-starter", ""},
	0x17: {"soft-start", dissect.ClassDrive},
	0x18: {"human-machine-interface", dissect.ClassHMI},
	0x1a: {"mass-flow-controller", ""},
	0x1b: {"pneumatic-valve", ""},
	0x1c: {"vacuum-pressure-gauge", dissect.ClassSensor},
	0x1d: {"process-control-value", ""},
	0x1e: {"residual-gas-analyzer", dissect.ClassSensor},
	0x1f: {"dc-power-generator", ""},
	0x20: {"rf-power-generator", ""},
	0x21: {"turbomolecular-vacuum-pump", ""},
	0x22: {"encoder", dissect.ClassSensor},
	0x23: {"safety-discrete-io", dissect.ClassIO},
	0x24: {"fluid-flow-controller", ""},
	0x25: {"cip-motion-drive", dissect.ClassDrive},
	0x26: {"componet-repeater", ""},
	0x28: {"cip-modbus-device", ""},
	0x29: {"cip-modbus-translator", dissect.ClassIO},
	0x2a: {"safety-analog-io", dissect.ClassIO},
	0x2b: {"generic-device-keyable", ""},
	0x2c: {"managed-switch", dissect.ClassSwitch},
}

// CIPDeviceClass returns the dissect.Class* value the CIP device type
// profile says, or "" when the profile says nothing of the kind of device.
func CIPDeviceClass(devType uint16) string { return cipDeviceTypes[devType].class }

// ENIP reads EtherNet/IP encapsulation (CIP vol. 2, chapter 2) and the CIP
// messages it carries (CIP vol. 1), including PCCC carried by Execute PCCC.
// TCP and UDP 44818 and UDP 2222 nominate it; a valid encapsulation header
// (a known command, zero options, a length that fits) or, on 2222, a valid
// common packet format confirms it.
//
// It learns the identity devices state in ListIdentity replies and in
// Identity object (class 1) reads matched to their requests: vendor (name
// from the CIP vendor table), device type (and the class its profile
// implies), product code, revision, serial number, product name, status and
// state; the roles; the services each client uses on each server, with
// writes, starts and stops, resets, firmware updates and program transfers
// flagged; and the connections opened by Forward_Open. Identities of
// modules reached through a backplane route are reported as AttrCIPModule.
//
// Each direction of a TCP flow is put back in order with a dissect.Stream;
// after a gap it resynchronises on the next valid encapsulation header.
// Each observation is emitted once per flow; ListIdentity replies, which
// come in a new flow at each scan, once per device identity.
type ENIP struct {
	mu   sync.Mutex
	seen map[netip.Addr]uint64 // hash of the identity last emitted per device

	// onCIP, when set (tests), is called with every CIP request read
	// (service, class, instance, attribute).
	onCIP func(p *dissect.Packet, svc uint8, class uint16, inst, attr uint32)
}

// NewENIP returns an EtherNet/IP dissector.
func NewENIP() *ENIP { return &ENIP{} }

// Name returns "enip".
func (*ENIP) Name() string { return "enip" }

// Wants asks for TCP and UDP 44818 and UDP 2222.
func (*ENIP) Wants() dissect.Wants {
	return dissect.Wants{TCPPorts: []uint16{ENIPPort}, UDPPorts: []uint16{ENIPPort, ENIPIOPort}}
}

// enipHeader checks the encapsulation header at the start of b and returns
// the whole message length.
func enipHeader(b []byte) (n int, cmd uint16, ok bool) {
	if len(b) < encHeaderLen {
		return 0, 0, false
	}
	cmd = binary.LittleEndian.Uint16(b)
	switch cmd {
	case encNOP, encListServices, encListIdentity, encListInterfaces, encRegisterSession,
		encUnregister, encSendRRData, encSendUnitData, encIndicateStatus, encCancel:
	default:
		return 0, 0, false
	}
	l := int(binary.LittleEndian.Uint16(b[2:]))
	if l > encMaxData || binary.LittleEndian.Uint32(b[20:]) != 0 {
		return 0, 0, false
	}
	switch cmd {
	case encRegisterSession:
		if l != 4 {
			return 0, 0, false
		}
	case encSendRRData, encSendUnitData:
		if l < 8 {
			return 0, 0, false
		}
	}
	return encHeaderLen + l, cmd, true
}

// enipIO checks a UDP 2222 datagram: a common packet format with a
// sequenced (or connected) address item and a connected data item.
func enipIO(b []byte) bool {
	if len(b) < 2+4+8+4 {
		return false
	}
	n := int(binary.LittleEndian.Uint16(b))
	if n < 2 || n > 4 {
		return false
	}
	t := binary.LittleEndian.Uint16(b[2:])
	l := int(binary.LittleEndian.Uint16(b[4:]))
	if !(t == cpfSequencedAddr && l == 8 || t == cpfConnAddr && l == 4) || len(b) < 6+l+4 {
		return false
	}
	r := b[6+l:]
	t2 := binary.LittleEndian.Uint16(r)
	l2 := int(binary.LittleEndian.Uint16(r[2:]))
	return t2 == cpfConnData && l2 <= len(r)-4
}

// Probe reports whether p's payload is EtherNet/IP.
func (e *ENIP) Probe(p *dissect.Packet) bool {
	if p.Flow == nil {
		return false
	}
	b := p.Payload
	switch p.Flow.Proto {
	case capture.ProtoUDP:
		if p.Flow.Server.Port() == ENIPIOPort || p.Flow.Client.Port() == ENIPIOPort {
			if p.SrcPort == ENIPIOPort || p.DstPort == ENIPIOPort {
				if enipIO(b) {
					return true
				}
			}
		}
		n, cmd, ok := enipHeader(b)
		return ok && n == len(b) && (cmd == encListIdentity || cmd == encListServices || cmd == encListInterfaces || cmd == encNOP)
	case capture.ProtoTCP:
		n, _, ok := enipHeader(b)
		if !ok {
			return false
		}
		// Whole messages, or the start of one.
		for i := 0; i < 8 && len(b) > n; i++ {
			b = b[n:]
			if len(b) < encHeaderLen {
				return true
			}
			if n, _, ok = enipHeader(b); !ok {
				return false
			}
		}
		return true
	}
	return false
}

// Per-flow "emitted" flags.
const (
	enEmRoles = 1 << iota
	enEmIO
	enEmIdentity
	enEmSocket
)

// cipReq is a CIP request awaiting its reply.
type cipReq struct {
	class uint16
	attr  uint16
	svc   uint8
	slot  int16 // backplane slot of a routed request + 1; 0 when not routed
	port  uint8
}

// enipPending is a request (or a Multiple_Service_Packet's requests)
// awaiting the reply with the same key (sender context, or connected
// sequence count).
type enipPending struct {
	key  uint64
	n    uint8
	reqs [cipMaxEmbedded]cipReq
}

// enipFlow is the per-flow state.
type enipFlow struct {
	s        [2]dissect.Stream
	flags    uint8
	nsvc     uint8
	nconn    uint8
	svcs     [enipMaxServices]uint32 // services emitted: class<<8 | service
	errs     [8]uint32
	nerr     uint8
	pend     [4]enipPending
	pendNext uint8
	modules  uint64 // slots whose module identity was emitted
	// conns are the connections opened on the flow that go through a
	// backplane route: messages on them reach the routed module.
	conns    [4]enipConn
	connNext uint8
	connID   uint32    // connection id of the connected item being read
	ids      [4]uint64 // identities emitted on the flow
	idNext   uint8
}

// enipConn is a connection routed to a module behind the device.
type enipConn struct {
	ot, to uint32
	port   uint8
	slot   int16
}

// route returns the route of connection id, if it is a routed one.
func (st *enipFlow) route(id uint32) (port uint8, slot int16) {
	for _, c := range st.conns {
		if c.slot != 0 && (c.ot == id || c.to == id) {
			return c.port, c.slot
		}
	}
	return 0, 0
}

func (e *ENIP) state(p *dissect.Packet) *enipFlow {
	if st, ok := p.Flow.State.(*enipFlow); ok {
		return st
	}
	st := &enipFlow{}
	p.Flow.State = st
	return st
}

// enipSwapped reports whether the flow table took the EtherNet/IP server
// for the client (a capture starting mid-flow): the side on port 44818 is
// the server when only one side is.
func enipSwapped(p *dissect.Packet) bool {
	f := p.Flow
	return f.Client.Port() == ENIPPort && f.Server.Port() != ENIPPort
}

// enipServer returns the answering side of p's flow.
func enipServer(p *dissect.Packet) netip.Addr {
	if enipSwapped(p) {
		return p.Flow.Client.Addr()
	}
	return p.Server()
}

// enipClient returns the requesting side of p's flow.
func enipClient(p *dissect.Packet) netip.Addr {
	if enipSwapped(p) {
		return p.Flow.Server.Addr()
	}
	return p.Client()
}

// Handle reads the messages of a claimed flow's packet.
func (e *ENIP) Handle(p *dissect.Packet, out dissect.Sink) {
	if p.Flow == nil || len(p.Payload) == 0 {
		return
	}
	st := e.state(p)
	if p.Flow.Proto == capture.ProtoUDP {
		if (p.SrcPort == ENIPIOPort || p.DstPort == ENIPIOPort) && enipIO(p.Payload) {
			if st.flags&enEmIO == 0 {
				st.flags |= enEmIO
				e.emit(p, out, enipServer(p), dissect.AttrService, "enip:io-connected", enipClient(p))
			}
			return
		}
		if n, _, ok := enipHeader(p.Payload); ok && n <= len(p.Payload) {
			e.message(p, st, p.Payload[:n], (p.Dir == flow.FromServer) != enipSwapped(p), out)
		}
		return
	}
	if p.Flow.Proto != capture.ProtoTCP {
		return
	}
	dir := p.Dir & 1
	if enipSwapped(p) {
		dir ^= 1
	}
	s := &st.s[dir]
	b, segStart, off := pushSegment(s, p, nil)
	for len(b)-off >= encHeaderLen {
		n, _, ok := enipHeader(b[off:])
		if !ok {
			// Lost the boundaries (a flow picked up mid-way, a gap):
			// messages most likely start a segment.
			if off < segStart {
				off = segStart
				continue
			}
			off = len(b)
			break
		}
		if len(b)-off < n {
			break
		}
		e.message(p, st, b[off:off+n], dir == flow.FromServer, out)
		off += n
	}
	s.Consume(off)
}

// message reads one encapsulation message.
func (e *ENIP) message(p *dissect.Packet, st *enipFlow, m []byte, response bool, out dissect.Sink) {
	cmd := binary.LittleEndian.Uint16(m)
	data := m[encHeaderLen:]
	ctx := binary.LittleEndian.Uint64(m[12:])
	udp := p.Flow.Proto == capture.ProtoUDP
	if st.flags&enEmRoles == 0 && (!udp || cmd == encListIdentity && len(data) > 0) {
		st.flags |= enEmRoles
		if udp { // a ListIdentity reply: its sender is the device
			e.emit(p, out, p.SrcIP, dissect.AttrRole, RoleENIPServer, netip.Addr{})
			if !p.DstIP.IsMulticast() && p.DstIP != enipBroadcast {
				e.emit(p, out, p.DstIP, dissect.AttrRole, RoleENIPClient, netip.Addr{})
			}
		} else {
			e.emit(p, out, enipServer(p), dissect.AttrRole, RoleENIPServer, netip.Addr{})
			e.emit(p, out, enipClient(p), dissect.AttrRole, RoleENIPClient, netip.Addr{})
		}
	}
	switch cmd {
	case encListIdentity:
		if len(data) > 0 {
			e.listIdentity(p, st, data, out)
		} else if !udp {
			e.service(p, st, out, 0xfe00|0x63, "enip:list-identity")
		}
	case encRegisterSession:
		if !response {
			e.service(p, st, out, 0xfe00|0x65, "enip:register-session")
		}
	case encListServices:
		if !response && !udp {
			e.service(p, st, out, 0xfe00|0x04, "enip:list-services")
		}
	case encSendRRData, encSendUnitData:
		if len(data) < 8 {
			return
		}
		e.cpf(p, st, cmd, ctx, data[6:], response, out)
	}
}

var enipBroadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// cpf reads a SendRRData / SendUnitData common packet format.
func (e *ENIP) cpf(p *dissect.Packet, st *enipFlow, cmd uint16, ctx uint64, b []byte, response bool, out dissect.Sink) {
	if len(b) < 2 {
		return
	}
	n := int(binary.LittleEndian.Uint16(b))
	b = b[2:]
	for i := 0; i < n && i < 4 && len(b) >= 4; i++ {
		t := binary.LittleEndian.Uint16(b)
		l := int(binary.LittleEndian.Uint16(b[2:]))
		if l > len(b)-4 {
			return
		}
		item := b[4 : 4+l]
		b = b[4+l:]
		switch t {
		case cpfConnAddr:
			if len(item) == 4 {
				st.connID = binary.LittleEndian.Uint32(item)
			}
		case cpfNull:
			st.connID = 0
		case cpfUnconnData:
			e.cip(p, st, ctx, item, response, out)
		case cpfConnData:
			if len(item) < 2 {
				return
			}
			key := 1<<63 | uint64(binary.LittleEndian.Uint16(item))
			e.cip(p, st, key, item[2:], response, out)
		}
	}
}

// cipPath is what a request path says.
type cipPath struct {
	class      uint16
	inst, attr uint32
	symbolic   bool
	port       uint8
	slot       int16 // link address of the first port segment + 1
	ok         bool
}

// parseEPATH reads a padded EPATH (CIP vol. 1, appendix C).
func parseEPATH(b []byte) (cp cipPath) {
	for len(b) > 0 {
		s := b[0]
		switch {
		case s < 0x20: // port segment
			port := s & 0x0f
			hdr := 1
			if port == 0x0f {
				if len(b) < 3 {
					return
				}
				hdr = 3
			}
			var link []byte
			if s&0x10 != 0 {
				if len(b) < hdr+1 {
					return
				}
				ll := int(b[hdr])
				if len(b) < hdr+1+ll {
					return
				}
				link = b[hdr+1 : hdr+1+ll]
				n := hdr + 1 + ll
				n += n & 1
				b = b[min(n, len(b)):]
			} else {
				if len(b) < hdr+1 {
					return
				}
				link = b[hdr : hdr+1]
				n := hdr + 1
				n += n & 1
				b = b[min(n, len(b)):]
			}
			if cp.port == 0 && len(link) == 1 {
				cp.port, cp.slot = port, int16(link[0])+1
			}
			continue
		case s&0xe0 == 0x20: // logical segment
			typ, format := s>>2&7, s&3
			var v uint32
			switch format {
			case 0:
				if len(b) < 2 {
					return
				}
				v, b = uint32(b[1]), b[2:]
			case 1:
				if len(b) < 4 {
					return
				}
				v, b = uint32(binary.LittleEndian.Uint16(b[2:])), b[4:]
			case 2:
				if len(b) < 6 {
					return
				}
				v, b = binary.LittleEndian.Uint32(b[2:]), b[6:]
			default:
				return
			}
			if typ == 4 && format == 1 { // electronic key: format byte + 8
				return cp
			}
			switch typ {
			case 0:
				cp.class = uint16(v)
			case 1:
				cp.inst = v
			case 4:
				cp.attr = v
			}
			cp.ok = true
			continue
		case s == 0x34: // electronic key segment
			if len(b) < 10 {
				return
			}
			b = b[10:]
			continue
		case s == 0x91: // ANSI extended symbol
			if len(b) < 2 {
				return
			}
			n := 2 + int(b[1])
			n += n & 1
			if len(b) < n-1 {
				return
			}
			b = b[min(n, len(b)):]
			cp.symbolic, cp.class, cp.ok = true, cipClassSymbolic, true
			continue
		case s == 0x80: // simple data segment
			if len(b) < 2 {
				return
			}
			b = b[min(2+2*int(b[1]), len(b)):]
			continue
		}
		return
	}
	return
}

// cip reads a CIP message (request or reply) under key.
func (e *ENIP) cip(p *dissect.Packet, st *enipFlow, key uint64, b []byte, response bool, out dissect.Sink) {
	if len(b) < 2 {
		return
	}
	if b[0]&cipReplyBit != 0 {
		if !response {
			return
		}
		e.reply(p, st, key, b, out)
		return
	}
	if response {
		return
	}
	pe := &st.pend[st.pendNext%uint8(len(st.pend))]
	st.pendNext++
	*pe = enipPending{key: key}
	var port uint8
	var slot int16
	if key>>63 == 1 {
		port, slot = st.route(st.connID)
	}
	e.request(p, st, pe, b, 0, port, slot, out)
}

// request reads a CIP request; routed requests (Unconnected Send) and
// Multiple_Service_Packets are read recursively up to depth 2.
func (e *ENIP) request(p *dissect.Packet, st *enipFlow, pe *enipPending, b []byte, depth int, port uint8, slot int16, out dissect.Sink) {
	if len(b) < 2 || depth > 2 {
		return
	}
	svc := b[0] & 0x7f
	pl := 2 * int(b[1])
	if len(b) < 2+pl {
		return
	}
	cp := parseEPATH(b[2 : 2+pl])
	data := b[2+pl:]
	if e.onCIP != nil {
		e.onCIP(p, svc, cp.class, cp.inst, cp.attr)
	}
	// Routed and packed requests are read from what they carry.
	switch {
	case svc == svcUnconnSend && cp.class == cipClassCM:
		e.noteService(p, st, svc, cp.class, out)
		if len(data) < 4 {
			return
		}
		ml := int(binary.LittleEndian.Uint16(data[2:]))
		if ml > len(data)-4 {
			return
		}
		inner := data[4 : 4+ml]
		rest := data[4+ml:]
		if ml&1 == 1 && len(rest) > 0 {
			rest = rest[1:]
		}
		if len(rest) >= 2 {
			rl := 2 * int(rest[0])
			if rl <= len(rest)-2 {
				rp := parseEPATH(rest[2 : 2+rl])
				port, slot = rp.port, rp.slot
			}
		}
		e.request(p, st, pe, inner, depth+1, port, slot, out)
		return
	case svc == svcMSP && cp.class == cipClassRouter:
		e.noteService(p, st, svc, cp.class, out)
		if len(data) < 2 {
			return
		}
		n := int(binary.LittleEndian.Uint16(data))
		for i := 0; i < n && i < cipMaxEmbedded && 2+2*i+2 <= len(data); i++ {
			o := int(binary.LittleEndian.Uint16(data[2+2*i:]))
			end := len(data)
			if i+1 < n && 2+2*(i+1)+2 <= len(data) {
				end = int(binary.LittleEndian.Uint16(data[2+2*(i+1):]))
			}
			if o >= end || end > len(data) {
				return
			}
			e.request(p, st, pe, data[o:end], depth+1, port, slot, out)
		}
		return
	}
	if pe.n < cipMaxEmbedded {
		rq := cipReq{class: cp.class, attr: uint16(cp.attr), svc: svc, port: port, slot: slot}
		if (svc == svcForwardOpen || svc == svcLargeFwdOpen) && cp.class == cipClassCM && slot == 0 {
			rq.port, rq.slot = fwdOpenRoute(data, svc == svcLargeFwdOpen)
		}
		pe.reqs[pe.n] = rq
		pe.n++
	}
	e.noteService(p, st, svc, cp.class, out)
	switch {
	case cp.class == cipClassPCCC && svc == svcExecutePCCC:
		e.pccc(p, st, data, out)
	case (svc == svcForwardOpen || svc == svcLargeFwdOpen) && cp.class == cipClassCM:
		e.forwardOpen(p, st, data, svc == svcLargeFwdOpen, out)
	}
}

// noteService emits the service a client uses on the server, once per flow,
// with the flags it deserves.
func (e *ENIP) noteService(p *dissect.Packet, st *enipFlow, svc uint8, class uint16, out dissect.Sink) {
	k := uint32(class)<<8 | uint32(svc)
	if !st.addSvc(k) {
		return
	}
	name := cipServiceName(svc, class)
	cls := ""
	if class == cipClassSymbolic {
		cls = " symbolic"
	} else if n, ok := cipClassNames[class]; ok {
		cls = " " + n
	} else {
		cls = " class-0x" + strconv.FormatUint(uint64(class), 16)
	}
	v := "cip:" + name + cls
	srv, cli := enipServer(p), enipClient(p)
	e.emit(p, out, srv, dissect.AttrService, v, cli)
	switch {
	case class == cipClassNVS && svc != svcGetAll && svc != svcGetSingle && svc != svcGetList:
		e.emit(p, out, srv, AttrCIPFirmwareUpdate, v, cli)
	case svc == svcReset:
		e.emit(p, out, srv, AttrCIPReset, v, cli)
	case svc == svcStart || svc == svcStop:
		e.emit(p, out, srv, AttrCIPModeChange, v, cli)
	case cipIsWrite(svc, class):
		e.emit(p, out, srv, AttrCIPWrite, v, cli)
	}
}

// service emits an encapsulation-level service once per flow.
func (e *ENIP) service(p *dissect.Packet, st *enipFlow, out dissect.Sink, k uint32, v string) {
	if st.addSvc(k << 8) {
		e.emit(p, out, enipServer(p), dissect.AttrService, v, enipClient(p))
	}
}

// addSvc adds k to the flow's emitted services and reports whether it was
// new and there was room.
func (st *enipFlow) addSvc(k uint32) bool {
	for _, x := range st.svcs[:st.nsvc] {
		if x == k {
			return false
		}
	}
	if int(st.nsvc) >= len(st.svcs) {
		return false
	}
	st.svcs[st.nsvc] = k
	st.nsvc++
	return true
}

// pccc reads an Execute PCCC request: requestor id (length-prefixed), then
// the DF1 command: CMD, STS, TNSW (2), FNC for command 0x0f.
func (e *ENIP) pccc(p *dissect.Packet, st *enipFlow, b []byte, out dissect.Sink) {
	if len(b) < 1 {
		return
	}
	rl := int(b[0])
	if rl < 7 || rl > len(b)-4 {
		return
	}
	b = b[rl:]
	cmd := b[0]
	fnc := uint8(0)
	if cmd == 0x0f || cmd == 0x06 {
		if len(b) < 5 {
			return
		}
		fnc = b[4]
	}
	k := uint32(0xfd)<<24 | uint32(cmd)<<8 | uint32(fnc)
	if !st.addSvc(k) {
		return
	}
	name := ""
	switch cmd {
	case 0x0f:
		name = pcccFunctions[fnc]
	case 0x06:
		if fnc == 0x03 {
			name = "diagnostic-status"
		}
	}
	if name == "" {
		name = "function-0x" + cipHex8(fnc)
	}
	v := "pccc:0x" + cipHex8(cmd) + "/0x" + cipHex8(fnc) + " " + name
	srv, cli := enipServer(p), enipClient(p)
	e.emit(p, out, srv, dissect.AttrService, v, cli)
	if cmd != 0x0f {
		if cmd == 0x08 { // unprotected write
			e.emit(p, out, srv, AttrCIPWrite, v, cli)
		}
		return
	}
	switch pcccKind(fnc) {
	case 'w':
		e.emit(p, out, srv, AttrCIPWrite, v, cli)
	case 'm':
		e.emit(p, out, srv, AttrCIPModeChange, v, cli)
	case 'p':
		e.emit(p, out, srv, AttrCIPProgram, v, cli)
	}
}

// forwardOpen reads a (Large) Forward_Open request (CIP vol. 1, 3-5.5.2).
func (e *ENIP) forwardOpen(p *dissect.Packet, st *enipFlow, b []byte, large bool, out dissect.Sink) {
	pw := 2
	if large {
		pw = 4
	}
	fixed := 2 + 4 + 4 + 2 + 2 + 4 + 1 + 3 + 4 + pw + 4 + pw + 1 + 1
	if len(b) < fixed || st.nconn >= enipMaxConnPerFlo {
		return
	}
	rpiOT := binary.LittleEndian.Uint32(b[22:])
	rpiTO := binary.LittleEndian.Uint32(b[26+pw:])
	transport := b[30+2*pw]
	pl := 2 * int(b[31+2*pw])
	path := b[fixed:]
	if pl > len(path) {
		return
	}
	st.nconn++
	var sb strings.Builder
	sb.WriteString("path")
	for _, c := range path[:min(pl, 64)] {
		sb.WriteByte(' ')
		sb.WriteString(cipHex8(c))
	}
	sb.WriteString(" rpi_ot_us ")
	sb.WriteString(strconv.FormatUint(uint64(rpiOT), 10))
	sb.WriteString(" rpi_to_us ")
	sb.WriteString(strconv.FormatUint(uint64(rpiTO), 10))
	sb.WriteString(" transport 0x")
	sb.WriteString(cipHex8(transport))
	e.emit(p, out, enipServer(p), AttrCIPConnection, sb.String(), enipClient(p))
}

// fwdOpenRoute returns the first port segment of a Forward_Open's
// connection path.
func fwdOpenRoute(b []byte, large bool) (uint8, int16) {
	pw := 2
	if large {
		pw = 4
	}
	fixed := 32 + 2*pw
	if len(b) < fixed {
		return 0, 0
	}
	pl := 2 * int(b[31+2*pw])
	if pl > len(b)-fixed {
		return 0, 0
	}
	cp := parseEPATH(b[fixed : fixed+pl])
	return cp.port, cp.slot
}

// reply reads a CIP reply, matching it to the request with the same key.
func (e *ENIP) reply(p *dissect.Packet, st *enipFlow, key uint64, b []byte, out dissect.Sink) {
	var pe *enipPending
	for i := range st.pend {
		if st.pend[i].n > 0 && st.pend[i].key == key {
			pe = &st.pend[i]
			break
		}
	}
	if pe == nil {
		return
	}
	defer func() { pe.n = 0 }()
	svc := b[0] &^ cipReplyBit
	if svc == svcMSP {
		data, ok := cipReplyData(b)
		if !ok || len(data) < 2 {
			return
		}
		n := int(binary.LittleEndian.Uint16(data))
		for i := 0; i < n && i < int(pe.n) && 2+2*i+2 <= len(data); i++ {
			o := int(binary.LittleEndian.Uint16(data[2+2*i:]))
			end := len(data)
			if i+1 < n && 2+2*(i+1)+2 <= len(data) {
				end = int(binary.LittleEndian.Uint16(data[2+2*(i+1):]))
			}
			if o >= end || end > len(data) {
				return
			}
			e.replyOne(p, st, pe.reqs[i], data[o:end], out)
		}
		return
	}
	e.replyOne(p, st, pe.reqs[0], b, out)
}

// cipReplyData returns the data of a successful reply.
func cipReplyData(b []byte) ([]byte, bool) {
	if len(b) < 4 {
		return nil, false
	}
	n := 4 + 2*int(b[3])
	if len(b) < n || b[2] != 0 && b[2] != 0x06 { // success, or partial transfer
		return nil, false
	}
	return b[n:], true
}

// cipGeneralStatus names the general status codes (CIP vol. 1, appendix B).
var cipGeneralStatus = [...]string{
	0x01: "connection-failure", 0x02: "resource-unavailable", 0x03: "invalid-parameter-value",
	0x04: "path-segment-error", 0x05: "path-destination-unknown", 0x06: "partial-transfer",
	0x07: "connection-lost", 0x08: "service-not-supported", 0x09: "invalid-attribute-value",
	0x0a: "attribute-list-error", 0x0b: "already-in-requested-mode", 0x0c: "object-state-conflict",
	0x0d: "object-already-exists", 0x0e: "attribute-not-settable", 0x0f: "privilege-violation",
	0x10: "device-state-conflict", 0x11: "reply-data-too-large", 0x13: "not-enough-data",
	0x14: "attribute-not-supported", 0x15: "too-much-data", 0x16: "object-does-not-exist",
	0x1e: "embedded-service-error", 0x1f: "vendor-specific-error", 0x20: "invalid-parameter",
	0x26: "path-size-invalid",
}

// replyOne reads the reply to one request.
func (e *ENIP) replyOne(p *dissect.Packet, st *enipFlow, rq cipReq, b []byte, out dissect.Sink) {
	if len(b) < 4 || b[0]&0x7f != rq.svc {
		return
	}
	if gs := b[2]; gs != 0 && gs != 0x06 {
		k := uint32(rq.class)<<16 | uint32(rq.svc)<<8 | uint32(gs)
		for _, x := range st.errs[:st.nerr] {
			if x == k {
				return
			}
		}
		if int(st.nerr) >= len(st.errs) {
			return
		}
		st.errs[st.nerr] = k
		st.nerr++
		name := "unknown"
		if int(gs) < len(cipGeneralStatus) && cipGeneralStatus[gs] != "" {
			name = cipGeneralStatus[gs]
		}
		e.emit(p, out, enipServer(p), AttrCIPError, "cip:"+cipServiceName(rq.svc, rq.class)+" status 0x"+cipHex8(gs)+" "+name, enipClient(p))
		return
	}
	if (rq.svc == svcForwardOpen || rq.svc == svcLargeFwdOpen) && rq.class == cipClassCM {
		if data, ok := cipReplyData(b); ok && len(data) >= 8 && rq.slot != 0 {
			st.conns[st.connNext%uint8(len(st.conns))] = enipConn{
				ot: binary.LittleEndian.Uint32(data), to: binary.LittleEndian.Uint32(data[4:]),
				port: rq.port, slot: rq.slot,
			}
			st.connNext++
		}
		return
	}
	if rq.class != cipClassIdentity {
		return
	}
	data, ok := cipReplyData(b)
	if !ok {
		return
	}
	var id cipIdentity
	switch rq.svc {
	case svcGetAll:
		id.parseAll(data)
	case svcGetSingle:
		id.parseAttr(rq.attr, data)
	case svcGetList:
		if len(data) < 2 {
			return
		}
		n := int(binary.LittleEndian.Uint16(data))
		r := data[2:]
		for i := 0; i < n && i < 16 && len(r) >= 4; i++ {
			a := binary.LittleEndian.Uint16(r)
			status := binary.LittleEndian.Uint16(r[2:])
			r = r[4:]
			if status != 0 {
				continue
			}
			used := id.parseAttr(a, r)
			if used < 0 {
				break
			}
			r = r[used:]
		}
	default:
		return
	}
	if id.has == 0 {
		return
	}
	if rq.slot != 0 {
		slot := int(rq.slot - 1)
		if slot < 64 && st.modules&(1<<slot) == 0 && id.has&idName != 0 {
			st.modules |= 1 << slot
			e.emit(p, out, enipServer(p), AttrCIPModule, "port "+strconv.Itoa(int(rq.port))+" slot "+strconv.Itoa(slot)+": "+id.describe(), netip.Addr{})
		}
		return
	}
	e.identity(p, st, enipServer(p), &id, out)
}

// Identity object attributes present (cipIdentity.has bits).
const (
	idVendor = 1 << iota
	idType
	idProduct
	idRevision
	idStatus
	idSerial
	idName
	idState
)

// cipIdentity is what an Identity object or a ListIdentity reply states.
type cipIdentity struct {
	has                   uint16
	vendor, devType, prod uint16
	major, minor          uint8
	status                uint16
	serial                uint32
	name                  []byte
	state                 uint8
}

// parseAll reads a Get_Attributes_All reply of the Identity object
// (attributes 1-7, and 8 when present).
func (id *cipIdentity) parseAll(b []byte) {
	if len(b) < 15 {
		return
	}
	id.vendor = binary.LittleEndian.Uint16(b)
	id.devType = binary.LittleEndian.Uint16(b[2:])
	id.prod = binary.LittleEndian.Uint16(b[4:])
	id.major, id.minor = b[6], b[7]
	id.status = binary.LittleEndian.Uint16(b[8:])
	id.serial = binary.LittleEndian.Uint32(b[10:])
	id.has = idVendor | idType | idProduct | idRevision | idStatus | idSerial
	nl := int(b[14])
	if nl > len(b)-15 {
		return
	}
	id.name = b[15 : 15+nl]
	id.has |= idName
	if len(b) > 15+nl {
		id.state = b[15+nl]
		id.has |= idState
	}
}

// parseAttr reads one attribute's value and returns the bytes it used, or
// -1 when the attribute is not known.
func (id *cipIdentity) parseAttr(a uint16, b []byte) int {
	switch a {
	case 1, 2, 3, 4, 5, 9:
		if len(b) < 2 {
			return -1
		}
		v := binary.LittleEndian.Uint16(b)
		switch a {
		case 1:
			id.vendor, id.has = v, id.has|idVendor
		case 2:
			id.devType, id.has = v, id.has|idType
		case 3:
			id.prod, id.has = v, id.has|idProduct
		case 4:
			id.major, id.minor, id.has = b[0], b[1], id.has|idRevision
		case 5:
			id.status, id.has = v, id.has|idStatus
		}
		return 2
	case 6:
		if len(b) < 4 {
			return -1
		}
		id.serial, id.has = binary.LittleEndian.Uint32(b), id.has|idSerial
		return 4
	case 7:
		if len(b) < 1 || int(b[0]) > len(b)-1 {
			return -1
		}
		id.name, id.has = b[1:1+int(b[0])], id.has|idName
		return 1 + int(b[0])
	case 8, 10:
		if len(b) < 1 {
			return -1
		}
		if a == 8 {
			id.state, id.has = b[0], id.has|idState
		}
		return 1
	}
	return -1
}

func (id *cipIdentity) vendorName() string {
	if n := CIPVendor(id.vendor); n != "" {
		return n
	}
	return "CIP vendor " + strconv.Itoa(int(id.vendor))
}

func (id *cipIdentity) devTypeName() string {
	s := "0x" + cipHex16(id.devType)
	if t, ok := cipDeviceTypes[id.devType]; ok {
		s += " " + t.name
	}
	return s
}

// describe is the one-line description of a module.
func (id *cipIdentity) describe() string {
	var parts []string
	if id.has&idVendor != 0 {
		parts = append(parts, id.vendorName())
	}
	if id.has&idName != 0 {
		parts = append(parts, cipText(id.name))
	}
	if id.has&idType != 0 {
		parts = append(parts, "type "+id.devTypeName())
	}
	if id.has&idProduct != 0 {
		parts = append(parts, "product "+strconv.Itoa(int(id.prod)))
	}
	if id.has&idRevision != 0 {
		parts = append(parts, "rev "+strconv.Itoa(int(id.major))+"."+strconv.Itoa(int(id.minor)))
	}
	if id.has&idSerial != 0 {
		parts = append(parts, "serial 0x"+cipHex32(id.serial))
	}
	return strings.Join(parts, " ")
}

// hash is a digest of the identity, to emit a device's identity once.
func (id *cipIdentity) hash() uint64 {
	h := uint64(14695981039346656037)
	mix := func(v uint64) { h ^= v; h *= 1099511628211 }
	mix(uint64(id.has))
	mix(uint64(id.vendor)<<32 | uint64(id.devType)<<16 | uint64(id.prod))
	mix(uint64(id.major)<<8 | uint64(id.minor))
	mix(uint64(id.serial))
	mix(uint64(id.state)<<16 | uint64(id.status))
	for _, c := range id.name {
		mix(uint64(c))
	}
	return h
}

// DefaultENIPDevices bounds the devices whose last identity an ENIP
// remembers (to emit ListIdentity answers once per device).
const DefaultENIPDevices = 4096

// identity emits what id states about the device at ip, unless the same
// identity was emitted for it already.
func (e *ENIP) identity(p *dissect.Packet, st *enipFlow, ip netip.Addr, id *cipIdentity, out dissect.Sink) {
	h := id.hash()
	for _, x := range st.ids {
		if x == h {
			return
		}
	}
	st.ids[st.idNext%uint8(len(st.ids))] = h
	st.idNext++
	e.mu.Lock()
	if e.seen == nil {
		e.seen = map[netip.Addr]uint64{}
	}
	if old, ok := e.seen[ip]; ok && old == h {
		e.mu.Unlock()
		return
	}
	if len(e.seen) >= DefaultENIPDevices {
		for k := range e.seen {
			delete(e.seen, k)
			break
		}
	}
	e.seen[ip] = h
	e.mu.Unlock()
	none := netip.Addr{}
	if id.has&idVendor != 0 {
		if n := CIPVendor(id.vendor); n != "" { // an unlisted id stays raw
			e.emit(p, out, ip, dissect.AttrVendor, n, none)
		}
		e.emit(p, out, ip, AttrCIPVendorID, strconv.Itoa(int(id.vendor)), none)
	}
	if id.has&idType != 0 {
		e.emit(p, out, ip, AttrCIPDeviceType, id.devTypeName(), none)
		if c := CIPDeviceClass(id.devType); c != "" {
			e.emit(p, out, ip, dissect.AttrClass, c, none)
		}
	}
	if id.has&idProduct != 0 {
		e.emit(p, out, ip, AttrCIPProductCode, strconv.Itoa(int(id.prod)), none)
	}
	if id.has&idRevision != 0 {
		e.emit(p, out, ip, dissect.AttrFirmware, strconv.Itoa(int(id.major))+"."+strconv.Itoa(int(id.minor)), none)
	}
	if id.has&idSerial != 0 {
		e.emit(p, out, ip, dissect.AttrSerial, "0x"+cipHex32(id.serial), none)
	}
	if id.has&idName != 0 {
		if v := cipText(id.name); v != "" {
			e.emit(p, out, ip, dissect.AttrModel, v, none)
		}
	}
	if id.has&idStatus != 0 {
		e.emit(p, out, ip, AttrCIPStatus, "0x"+cipHex16(id.status), none)
	}
	if id.has&idState != 0 {
		e.emit(p, out, ip, AttrCIPState, "0x"+cipHex8(id.state), none)
	}
}

// listIdentity reads a ListIdentity reply (CIP vol. 2, 2-4.3.2): a common
// packet format whose 0x0c items hold the identity; the device is the
// packet's sender.
func (e *ENIP) listIdentity(p *dissect.Packet, st *enipFlow, b []byte, out dissect.Sink) {
	if len(b) < 2 {
		return
	}
	n := int(binary.LittleEndian.Uint16(b))
	b = b[2:]
	for i := 0; i < n && i < 4 && len(b) >= 4; i++ {
		t := binary.LittleEndian.Uint16(b)
		l := int(binary.LittleEndian.Uint16(b[2:]))
		if l > len(b)-4 {
			return
		}
		item := b[4 : 4+l]
		b = b[4+l:]
		// version (2), socket address (16), vendor (2), device type (2),
		// product code (2), revision (2), status (2), serial (4), name
		// (short string), state (1).
		if t != cpfListIdentity || len(item) < 2+16+15 {
			continue
		}
		var id cipIdentity
		id.parseAll(item[18:])
		if id.has == 0 {
			continue
		}
		ip := p.SrcIP
		if st.flags&enEmSocket == 0 {
			st.flags |= enEmSocket
			sa := item[2:18]
			if binary.BigEndian.Uint16(sa) == 2 {
				addr := netip.AddrFrom4([4]byte(sa[4:8]))
				e.emit(p, out, ip, AttrENIPSocket, netip.AddrPortFrom(addr, binary.BigEndian.Uint16(sa[2:])).String(), netip.Addr{})
			}
		}
		e.identity(p, st, ip, &id, out)
	}
}

// textValue returns b cleaned as modbus text is, valid UTF-8.
func cipText(b []byte) string {
	return strings.ToValidUTF8(string(cleanText(b)), "\uFFFD")
}

const cipHexDigits = "0123456789abcdef"

func cipHex8(v uint8) string { return string([]byte{cipHexDigits[v>>4], cipHexDigits[v&15]}) }
func cipHex16(v uint16) string {
	return cipHex8(uint8(v>>8)) + cipHex8(uint8(v))
}
func cipHex32(v uint32) string { return cipHex16(uint16(v>>16)) + cipHex16(uint16(v)) }

func (e *ENIP) emit(p *dissect.Packet, out dissect.Sink, ip netip.Addr, attr, value string, peer netip.Addr) {
	out.Observe(dissect.Observation{Time: p.Time, IP: ip, Attr: attr, Value: value, Protocol: "enip", Peer: peer})
}

func init() { register(40, "enip", func() dissect.Dissector { return NewENIP() }) }
