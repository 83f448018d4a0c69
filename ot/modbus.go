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

// ModbusPort is the registered TCP port of Modbus/TCP.
const ModbusPort = 502

// DefaultModbusServers bounds the servers whose unit ids a Modbus remembers.
const DefaultModbusServers = 4096

// Modbus roles (dissect.AttrRole values).
const (
	RoleModbusServer = "modbus-server"
	RoleModbusClient = "modbus-client"
)

// Attributes the Modbus dissector emits besides the dissect.Attr* ones.
const (
	// AttrModbusUnitIDs is emitted about a server each time a new unit id
	// is seen addressed to it: the sorted, comma-separated unit ids seen.
	AttrModbusUnitIDs = "modbus.unit_ids"
	// AttrModbusWrite flags a client (Peer) writing to the server: function
	// codes 5, 6, 15, 16, 22, 23. Value as for dissect.AttrService.
	AttrModbusWrite = "modbus.write"
	// AttrModbusDiagnostics flags a client (Peer) using function 8.
	AttrModbusDiagnostics = "modbus.diagnostics"
	// AttrModbusDeviceIDRequest flags a client (Peer) reading the server's
	// device identification (function 43, MEI 14).
	AttrModbusDeviceIDRequest = "modbus.read_device_id"
	// AttrModbusException is emitted about a server answering a client
	// (Peer) with an exception, once per flow per function code: value
	// "modbus:3 read-holding-registers exception 2 illegal-data-address".
	AttrModbusException = "modbus.exception"
	// AttrModbusProductCode is device identification object 0x01.
	AttrModbusProductCode = "modbus.product_code"
	// AttrModbusVendorURL is device identification object 0x03.
	AttrModbusVendorURL = "modbus.vendor_url"
	// AttrModbusProductName is device identification object 0x04, also
	// reported as dissect.AttrModel when the same response holds no
	// ModelName (0x05).
	AttrModbusProductName = "modbus.product_name"
)

// MBAP header: transaction id (2), protocol id (2), length (2), unit id (1);
// the PDU (function code, data) follows.
const (
	mbapLen   = 7
	minLength = 2   // unit id + function code
	maxLength = 254 // unit id + 253-byte PDU
	maxADU    = 6 + maxLength
)

// Modbus function codes with a meaning of their own here.
const (
	fcDiagnostics = 8
	fcMEI         = 43
	meiCANopen    = 13
	meiDeviceID   = 14
	exceptionBit  = 0x80
)

// Function code names, from the Modbus Application Protocol Specification
// v1.1b3, sections 5.1 and 6.
var fcNames = [128]string{
	1:  "read-coils",
	2:  "read-discrete-inputs",
	3:  "read-holding-registers",
	4:  "read-input-registers",
	5:  "write-single-coil",
	6:  "write-single-register",
	7:  "read-exception-status",
	8:  "diagnostics",
	11: "get-comm-event-counter",
	12: "get-comm-event-log",
	15: "write-multiple-coils",
	16: "write-multiple-registers",
	17: "report-server-id",
	20: "read-file-record",
	21: "write-file-record",
	22: "mask-write-register",
	23: "read-write-multiple-registers",
	24: "read-fifo-queue",
	43: "encapsulated-interface-transport",
}

// Exception code names (section 7).
var exceptionNames = [...]string{
	1:  "illegal-function",
	2:  "illegal-data-address",
	3:  "illegal-data-value",
	4:  "server-device-failure",
	5:  "acknowledge",
	6:  "server-device-busy",
	8:  "memory-parity-error",
	10: "gateway-path-unavailable",
	11: "gateway-target-device-failed-to-respond",
}

// Service indexes: function codes 0..127 are themselves, 43/13 and 43/14
// have indexes of their own.
const (
	svcCANopen  = 128
	svcDeviceID = 129
	numServices = 130
)

// services holds the dissect.AttrService values, built once so that
// emitting allocates nothing.
var services [numServices]string

func init() {
	for fc := 1; fc < 128; fc++ {
		name := fcNames[fc]
		switch {
		case name != "":
		case fc >= 65 && fc <= 72, fc >= 100 && fc <= 110:
			name = "user-defined"
		default:
			name = "unassigned"
		}
		services[fc] = "modbus:" + strconv.Itoa(fc) + " " + name
	}
	services[svcCANopen] = "modbus:43/13 can-general-reference"
	services[svcDeviceID] = "modbus:43/14 read-device-identification"
}

// ModbusService returns the dissect.AttrService value of a request with
// function code fc and, for function 43, MEI type mei:
// "modbus:3 read-holding-registers", "modbus:43/14 read-device-identification".
func ModbusService(fc, mei uint8) string {
	if fc == 0 || fc >= 128 {
		return ""
	}
	return services[serviceIndex(fc, mei)]
}

func serviceIndex(fc, mei uint8) int {
	if fc == fcMEI {
		switch mei {
		case meiCANopen:
			return svcCANopen
		case meiDeviceID:
			return svcDeviceID
		}
	}
	return int(fc & 0x7f)
}

// isWrite reports whether fc changes the server's data.
func isWrite(fc uint8) bool {
	switch fc {
	case 5, 6, 15, 16, 22, 23:
		return true
	}
	return false
}

// Modbus reads Modbus/TCP (Modbus Messaging on TCP/IP Implementation Guide
// v1.0b; Modbus Application Protocol v1.1b3). Port 502 nominates it; the
// MBAP header confirms it. On other ports it claims a flow only when a
// client's request and the server's answer both have valid headers and
// match (same transaction id, unit id and function code).
//
// It learns the roles (modbus-server, modbus-client), the unit ids each
// server is addressed by, the function codes each client uses on each
// server (dissect.AttrService with Peer the client), writes, diagnostics,
// exceptions, and what Read Device Identification answers say (vendor,
// product code, revision, URL, product and model name, application name).
// It never guesses a device class.
//
// Each direction of a flow is put back in order with a dissect.Stream, so
// an ADU split over segments is read, and so are several ADUs in one
// segment; after a gap it resynchronises on the next valid MBAP header.
// Each observation is emitted once per flow.
//
// A Modbus is safe for use by several goroutines; all the same, each
// pipeline worker should hold its own, as returned by All.
type Modbus struct {
	// MaxServers bounds the table of unit ids seen per server;
	// DefaultModbusServers when zero.
	MaxServers int

	mu    sync.Mutex
	units map[netip.Addr]*bitset256

	// onADU, when set (tests), is called with every ADU read.
	onADU func(p *dissect.Packet, adu []byte)
}

// NewModbus returns a Modbus dissector with default bounds.
func NewModbus() *Modbus {
	return &Modbus{MaxServers: DefaultModbusServers}
}

// Name returns "modbus".
func (*Modbus) Name() string { return "modbus" }

// Wants asks for TCP port 502 and for heuristic probing on other ports.
func (*Modbus) Wants() dissect.Wants {
	return dissect.Wants{TCPPorts: []uint16{ModbusPort}, Heuristic: true}
}

// bitset256 is a set of bytes.
type bitset256 [4]uint64

func (b *bitset256) has(i int) bool { return b[i>>6&3]&(1<<(i&63)) != 0 }

// add adds i and reports whether it was new.
func (b *bitset256) add(i int) bool {
	if b.has(i) {
		return false
	}
	b[i>>6&3] |= 1 << (i & 63)
	return true
}

// Per-flow "emitted" flags.
const (
	emRoles = 1 << iota
	emDevVendor
	emDevProductCode
	emDevRevision
	emDevURL
	emDevProductName
	emDevModelName
	emDevAppName
)

// modbusFlow is the per-flow state.
type modbusFlow struct {
	s        [2]dissect.Stream
	services bitset256 // service indexes emitted (AttrService)
	excepts  bitset256 // function codes whose exception was emitted
	units    bitset256 // unit ids already passed to the server table
	flags    uint16
	// Exceptions counts exception responses on the flow.
	exceptions uint32
}

// modbusPending is the state of a flow on a heuristic port whose client
// sent one valid request: the server's answer must match it.
type modbusPending struct {
	tid  uint16
	unit uint8
	fc   uint8
	mei  uint8
}

// ModbusExceptions returns how many exception responses the Modbus
// dissector has read on f (0 if f is not a Modbus flow).
func ModbusExceptions(f *flow.Flow) uint32 {
	if f == nil {
		return 0
	}
	if st, ok := f.State.(*modbusFlow); ok {
		return st.exceptions
	}
	return 0
}

// validUnit reports whether u is a unit id a Modbus/TCP device uses:
// 0 (broadcast), 1..247, or 255 (the TCP server itself).
func validUnit(u uint8) bool { return u <= 247 || u == 255 }

// header checks the MBAP header at the start of b (at least 8 bytes: the
// header and the function code) and returns the ADU length. A request's
// function code must be 1..127; a response's may have the exception bit.
// strict asks for a publicly assigned function code.
func header(b []byte, response, strict bool) (n int, ok bool) {
	if len(b) < mbapLen+1 {
		return 0, false
	}
	if b[2] != 0 || b[3] != 0 {
		return 0, false
	}
	l := int(binary.BigEndian.Uint16(b[4:6]))
	if l < minLength || l > maxLength || !validUnit(b[6]) {
		return 0, false
	}
	fc := b[7]
	if fc&exceptionBit != 0 {
		if !response || l != 3 {
			return 0, false
		}
		fc &^= exceptionBit
	}
	if fc == 0 {
		return 0, false
	}
	if strict && fcNames[fc] == "" {
		return 0, false
	}
	return 6 + l, true
}

// fitsSegment reports whether a segment starting with a valid ADU of n
// bytes holds whole ADUs, or the first part of one.
func fitsSegment(b []byte, n int, response bool) bool {
	for i := 0; i < 8 && len(b) > n; i++ {
		b = b[n:]
		if len(b) < mbapLen+1 {
			// The start of the next ADU: its protocol id, if there, is 0.
			for j := 2; j < 4 && j < len(b); j++ {
				if b[j] != 0 {
					return false
				}
			}
			return true
		}
		var ok bool
		if n, ok = header(b, response, false); !ok {
			return false
		}
	}
	return true
}

// Probe reports whether p's payload starts with a Modbus/TCP ADU. On port
// 502 a valid MBAP header with a plausible unit id and function code, and
// a segment made of whole ADUs (or the start of one), is enough. On other
// ports the client's request is remembered in the flow's state and the
// flow is claimed only when the server's answer matches it. That request
// is kept in p.Flow.State (a *modbusPending, only when State is nil or
// already one): a dissector claiming the flow later must overwrite a State
// of a type it does not know.
func (m *Modbus) Probe(p *dissect.Packet) bool {
	if p.Flow == nil || p.Flow.Proto != capture.ProtoTCP {
		return false
	}
	b := p.Payload
	response := p.Dir == flow.FromServer
	if p.Flow.Server.Port() == ModbusPort || p.Flow.Client.Port() == ModbusPort {
		n, ok := header(b, response, false)
		return ok && fitsSegment(b, n, response)
	}
	n, ok := header(b, response, true)
	if !ok || len(b) != n {
		return false
	}
	req := modbusPending{tid: binary.BigEndian.Uint16(b), unit: b[6], fc: b[7]}
	if len(b) > 8 {
		req.mei = b[8]
	}
	if !response {
		if !plausibleRequest(b) {
			return false
		}
		switch st := p.Flow.State.(type) {
		case nil:
			p.Flow.State = &req
		case *modbusPending:
			*st = req
		}
		return false
	}
	st, ok := p.Flow.State.(*modbusPending)
	if !ok {
		return false
	}
	return st.tid == req.tid && st.unit == req.unit && st.fc == req.fc&^exceptionBit &&
		(st.fc != fcMEI || req.fc&exceptionBit != 0 || st.mei == req.mei)
}

// plausibleRequest checks the length of a request ADU against what its
// function code asks for, where the spec fixes it.
func plausibleRequest(b []byte) bool {
	l := len(b) - 7 // PDU length
	switch b[7] {
	case 1, 2, 3, 4, 5, 6:
		return l == 5
	case 7, 11, 12, 17:
		return l == 1
	case 15, 16:
		return l >= 6 && int(b[12]) == l-6
	case 22:
		return l == 7
	case 23:
		return l >= 10 && int(b[16]) == l-10
	case fcMEI:
		return l >= 2 && (b[8] == meiCANopen || b[8] == meiDeviceID)
	}
	return true
}

// state returns the flow's Modbus state, creating it on first use (and
// reading the request a heuristic probe remembered).
func (m *Modbus) state(p *dissect.Packet, out dissect.Sink) *modbusFlow {
	if st, ok := p.Flow.State.(*modbusFlow); ok {
		return st
	}
	st := &modbusFlow{}
	pend, _ := p.Flow.State.(*modbusPending)
	p.Flow.State = st
	if pend != nil {
		m.request(p, st, pend.unit, pend.fc, pend.mei, out)
	}
	return st
}

// Handle reads the ADUs of a claimed flow's packet.
func (m *Modbus) Handle(p *dissect.Packet, out dissect.Sink) {
	if p.Flow == nil || p.Flow.Proto != capture.ProtoTCP || len(p.Payload) == 0 {
		return
	}
	st := m.state(p, out)
	dir := p.Dir & 1
	s := &st.s[dir]
	s.Push(p.TCPSeq, p.Payload)
	response := dir == flow.FromServer
	b := s.Bytes()
	off := 0
	for len(b)-off >= mbapLen+1 {
		adu := b[off:]
		n, ok := header(adu, response, false)
		if !ok {
			// Lost the boundaries: drop what is buffered, the next
			// segment most likely starts an ADU.
			off = len(b)
			break
		}
		if len(adu) < n {
			break
		}
		m.adu(p, st, adu[:n], response, out)
		off += n
	}
	s.Consume(off)
}

// adu reads one whole ADU.
func (m *Modbus) adu(p *dissect.Packet, st *modbusFlow, adu []byte, response bool, out dissect.Sink) {
	if m.onADU != nil {
		m.onADU(p, adu)
	}
	if st.flags&emRoles == 0 {
		st.flags |= emRoles
		m.emit(p, out, p.Server(), dissect.AttrRole, RoleModbusServer, netip.Addr{})
		m.emit(p, out, p.Client(), dissect.AttrRole, RoleModbusClient, netip.Addr{})
	}
	unit, fc := adu[6], adu[7]
	var mei uint8
	if len(adu) > 8 {
		mei = adu[8]
	}
	if !response {
		m.request(p, st, unit, fc, mei, out)
		return
	}
	if fc&exceptionBit != 0 {
		st.exceptions++
		fc &^= exceptionBit
		if st.excepts.add(int(fc)) {
			code := int(adu[8])
			name := "unknown"
			if code < len(exceptionNames) && exceptionNames[code] != "" {
				name = exceptionNames[code]
			}
			m.emit(p, out, p.Server(), AttrModbusException,
				services[fc]+" exception "+strconv.Itoa(code)+" "+name, p.Client())
		}
		return
	}
	if fc == fcMEI && mei == meiDeviceID {
		m.deviceID(p, st, adu[8:], out)
	}
}

// request learns from a client's request: the unit id and the service.
func (m *Modbus) request(p *dissect.Packet, st *modbusFlow, unit, fc, mei uint8, out dissect.Sink) {
	if st.units.add(int(unit)) {
		m.addUnit(p, unit, out)
	}
	if fc == 0 || fc >= 128 {
		return
	}
	i := serviceIndex(fc, mei)
	if !st.services.add(i) {
		return
	}
	srv, cli := p.Server(), p.Client()
	m.emit(p, out, srv, dissect.AttrService, services[i], cli)
	switch {
	case isWrite(fc):
		m.emit(p, out, srv, AttrModbusWrite, services[i], cli)
	case fc == fcDiagnostics:
		m.emit(p, out, srv, AttrModbusDiagnostics, services[i], cli)
	case i == svcDeviceID:
		m.emit(p, out, srv, AttrModbusDeviceIDRequest, services[i], cli)
	}
}

// addUnit adds unit to the server's set and emits the set when it grew.
func (m *Modbus) addUnit(p *dissect.Packet, unit uint8, out dissect.Sink) {
	srv := p.Server()
	m.mu.Lock()
	if m.units == nil {
		m.units = map[netip.Addr]*bitset256{}
	}
	set := m.units[srv]
	if set == nil {
		max := m.MaxServers
		if max <= 0 {
			max = DefaultModbusServers
		}
		if len(m.units) >= max {
			for k := range m.units { // evict one, any
				delete(m.units, k)
				break
			}
		}
		set = &bitset256{}
		m.units[srv] = set
	}
	if !set.add(int(unit)) {
		m.mu.Unlock()
		return
	}
	var sb strings.Builder
	for i := 0; i < 256; i++ {
		if set.has(i) {
			if sb.Len() > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(strconv.Itoa(i))
		}
	}
	m.mu.Unlock()
	m.emit(p, out, srv, AttrModbusUnitIDs, sb.String(), netip.Addr{})
}

// Device identification objects (section 6.21).
const (
	objVendorName          = 0x00
	objProductCode         = 0x01
	objMajorMinorRevision  = 0x02
	objVendorURL           = 0x03
	objProductName         = 0x04
	objModelName           = 0x05
	objUserApplicationName = 0x06
)

// deviceID reads a Read Device Identification response; pdu starts at the
// MEI type: MEI, read device id code, conformity level, more follows, next
// object id, number of objects, then objects (id, length, value).
func (m *Modbus) deviceID(p *dissect.Packet, st *modbusFlow, pdu []byte, out dissect.Sink) {
	if len(pdu) < 6 {
		return
	}
	objs := pdu[6:]
	hasModel := false
	for b, k := objs, 0; len(b) >= 2 && k < int(pdu[5]); k++ {
		if b[0] == objModelName && len(cleanText(b[2:2+min(int(b[1]), len(b)-2)])) > 0 {
			hasModel = true
		}
		if int(b[1]) > len(b)-2 {
			break
		}
		b = b[2+int(b[1]):]
	}
	srv := p.Server()
	for k := 0; len(objs) >= 2 && k < int(pdu[5]); k++ {
		id, l := objs[0], int(objs[1])
		if l > len(objs)-2 {
			return // truncated
		}
		v := cleanText(objs[2 : 2+l])
		objs = objs[2+l:]
		if len(v) == 0 {
			continue
		}
		var attr string
		var flag uint16
		switch id {
		case objVendorName:
			attr, flag = dissect.AttrVendor, emDevVendor
		case objProductCode:
			attr, flag = AttrModbusProductCode, emDevProductCode
		case objMajorMinorRevision:
			attr, flag = dissect.AttrFirmware, emDevRevision
		case objVendorURL:
			attr, flag = AttrModbusVendorURL, emDevURL
		case objProductName:
			attr, flag = AttrModbusProductName, emDevProductName
		case objModelName:
			attr, flag = dissect.AttrModel, emDevModelName
		case objUserApplicationName:
			attr, flag = dissect.AttrName, emDevAppName
		default:
			continue
		}
		if st.flags&flag != 0 {
			continue
		}
		st.flags |= flag
		s := strings.ToValidUTF8(string(v), "\uFFFD")
		m.emit(p, out, srv, attr, s, netip.Addr{})
		if id == objProductName && !hasModel {
			m.emit(p, out, srv, dissect.AttrModel, s, netip.Addr{})
		}
	}
}

// maxText bounds the text values reported.
const maxText = 128

// cleanText trims b of NULs, spaces and control bytes at either end, cuts
// it at the first NUL and bounds it to maxText bytes.
func cleanText(b []byte) []byte {
	for i, c := range b {
		if c == 0 {
			b = b[:i]
			break
		}
	}
	for len(b) > 0 && b[0] <= ' ' {
		b = b[1:]
	}
	for len(b) > 0 && b[len(b)-1] <= ' ' {
		b = b[:len(b)-1]
	}
	if len(b) > maxText {
		b = b[:maxText]
	}
	return b
}

func (m *Modbus) emit(p *dissect.Packet, out dissect.Sink, ip netip.Addr, attr, value string, peer netip.Addr) {
	out.Observe(dissect.Observation{
		Time:     p.Time,
		IP:       ip,
		Attr:     attr,
		Value:    value,
		Protocol: "modbus",
		Peer:     peer,
	})
}

func init() { register(10, "modbus", func() dissect.Dissector { return NewModbus() }) }
