package ot

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"

	"github.com/passivesensor/sensor/dissect"
)

// S7 roles (dissect.AttrRole values): the server is the PLC (or a CP in
// its rack), the client an HMI, SCADA server or engineering station (or a
// PLC reading another with PUT/GET).
const (
	RoleS7Server = "s7-server"
	RoleS7Client = "s7-client"
)

// Attributes the S7comm dissector emits besides the dissect.Attr* ones.
const (
	// AttrS7Rack and AttrS7Slot are the rack and slot of the CPU a client
	// connects to, from the called TSAP of the COTP connection request
	// (second octet: rack in the top 3 bits, slot in the low 5).
	AttrS7Rack = "s7.rack"
	AttrS7Slot = "s7.slot"
	// AttrS7ConnectionType is the first octet of the called TSAP: 1 PG
	// (programming device), 2 OP (operator panel), 3 S7 basic, ...
	AttrS7ConnectionType = "s7.connection_type"
	// AttrS7Write flags a client (Peer) writing variables (job 0x05).
	AttrS7Write = "s7.write"
	// AttrS7Program flags a client (Peer) changing the PLC's program:
	// request download, download block, download ended, and PI services
	// inserting, deleting or compressing blocks.
	AttrS7Program = "s7.program"
	// AttrS7Upload flags a client (Peer) uploading blocks (reading the
	// program out of the PLC).
	AttrS7Upload = "s7.upload"
	// AttrS7Control flags a client (Peer) stopping or starting the PLC:
	// PLC stop (0x29), PLC control (0x28: warm/hot restart, ...), setting
	// its clock, or setting a session password.
	AttrS7Control = "s7.control"
	// SZL 0x001C component identification records.
	AttrS7SystemName     = "s7.system_name" // index 1: automation system name
	AttrS7PlantID        = "s7.plant_id"    // index 3: plant designation
	AttrS7Copyright      = "s7.copyright"   // index 4
	AttrS7ModuleType     = "s7.module_type" // index 7: module type name
	AttrS7MemoryCard     = "s7.memory_card" // index 8: memory card serial number
	AttrS7Location       = "s7.location"    // index 0xB: location designation
	AttrS7SZLRead        = "s7.szl_read"    // a client (Peer) reading an SZL: "0x001c/0x0000"
	AttrS7PIService      = "s7.pi_service"  // a PI service name a client (Peer) called
	siemensVendor        = "Siemens"
	s7MaxSZLReadsPerFlow = 16
)

// S7comm header (protocol id 0x32): ROSCTR, redundancy id (2), PDU
// reference (2), parameter length (2), data length (2), and for ack and
// ack-data an error class and code.
const (
	s7ProtoID     = 0x32
	s7Job         = 1
	s7Ack         = 2
	s7AckData     = 3
	s7Userdata    = 7
	s7HeaderLen   = 10
	s7AckHeadeLen = 12
)

// Job function codes.
var s7FuncNames = map[byte]string{
	0x00: "cpu-services",
	0x04: "read-var",
	0x05: "write-var",
	0x1a: "request-download",
	0x1b: "download-block",
	0x1c: "download-ended",
	0x1d: "start-upload",
	0x1e: "upload",
	0x1f: "end-upload",
	0x28: "plc-control",
	0x29: "plc-stop",
	0xf0: "setup-communication",
}

// Userdata function groups and subfunctions.
func s7UserdataName(group, sub byte) string {
	switch group {
	case 0:
		return "programmer-commands"
	case 1:
		return "mode-transition"
	case 2:
		return "cyclic-data"
	case 3:
		switch sub {
		case 1:
			return "list-blocks"
		case 2:
			return "list-blocks-of-type"
		case 3:
			return "get-block-info"
		}
		return "block-functions"
	case 4:
		switch sub {
		case 1:
			return "read-szl"
		case 2:
			return "message-service"
		case 3:
			return "diagnostic-message"
		}
		return "cpu-functions"
	case 5:
		switch sub {
		case 1:
			return "plc-password"
		case 2:
			return "clean-session"
		}
		return "security"
	case 6:
		return "programmed-block-communication"
	case 7:
		switch sub {
		case 1:
			return "read-clock"
		case 2:
			return "set-clock"
		case 3:
			return "read-clock-following"
		case 4:
			return "set-clock"
		}
		return "time-functions"
	case 0xf:
		return "nc-programming"
	}
	return "userdata-" + strconv.Itoa(int(group)) + "-" + strconv.Itoa(int(sub))
}

// s7Services holds the AttrService values: indexes 0..255 job function
// codes, 256 + group<<4 | sub userdata functions (sub < 16 only).
var s7Services [512]string

func init() {
	for fc := range 256 {
		n, ok := s7FuncNames[byte(fc)]
		if !ok {
			n = "function-0x" + strconv.FormatUint(uint64(fc), 16)
		}
		s7Services[fc] = "s7comm:" + n
	}
	for g := range 16 {
		for s := range 16 {
			s7Services[256+g<<4|s] = "s7comm:" + s7UserdataName(byte(g), byte(s))
		}
	}
}

// S7Service returns the dissect.AttrService value of a job's function
// code: "s7comm:read-var", "s7comm:plc-stop", ...
func S7Service(fc byte) string { return s7Services[fc] }

func s7Flag(i int) string {
	switch i {
	case 0x05:
		return AttrS7Write
	case 0x1a, 0x1b, 0x1c:
		return AttrS7Program
	case 0x1d, 0x1e, 0x1f:
		return AttrS7Upload
	case 0x28, 0x29, 256 + 7<<4 | 2, 256 + 7<<4 | 4, 256 + 5<<4 | 1:
		return AttrS7Control
	}
	return ""
}

// S7comm reads Siemens S7 communication (S7-300/400, and S7-1200/1500
// with PUT/GET) over COTP and TPKT on TCP 102. Port 102 nominates it; a
// COTP data TPDU whose user data starts with protocol id 0x32 and a valid
// ROSCTR confirms it. A connection request seen before is remembered and
// read when the flow is claimed.
//
// It learns: the server (PLC) and client roles from who sends jobs and
// who answers; "Siemens" as the server's vendor once it answers (the
// protocol is Siemens's own); rack, slot and connection type from the
// called TSAP; the job functions each client uses (dissect.AttrService,
// Peer the client), writes, program downloads, uploads, stops and starts,
// PI services, SZL reads; and the identity in SZL answers: 0x0011 module
// identification (order number as the model, hardware version, firmware
// version, boot loader) and 0x001C component identification (system
// name, module name as the device's name, plant designation, copyright,
// serial number, module type, memory card serial number, location).
//
// Each direction is put back in order (dissect.Stream), TPKTs split over
// segments or several per segment are read, and a TSDU sent in several
// COTP DTs is reassembled (bounded). Each fact is emitted once per flow.
type S7comm struct{}

// NewS7comm returns an S7comm dissector.
func NewS7comm() *S7comm { return &S7comm{} }

// Name returns "s7comm".
func (*S7comm) Name() string { return "s7comm" }

// Wants asks for TCP port 102.
func (*S7comm) Wants() dissect.Wants { return dissect.Wants{TCPPorts: []uint16{ISOTSAPPort}} }

// s7Header checks an S7comm PDU header and returns the parameter and data
// parts.
func s7Header(b []byte) (rosctr byte, param, data []byte, ok bool) {
	if len(b) < s7HeaderLen || b[0] != s7ProtoID {
		return 0, nil, nil, false
	}
	rosctr = b[1]
	hl := s7HeaderLen
	switch rosctr {
	case s7Job, s7Userdata:
	case s7Ack, s7AckData:
		hl = s7AckHeadeLen
	default:
		return 0, nil, nil, false
	}
	pl, dl := int(binary.BigEndian.Uint16(b[6:])), int(binary.BigEndian.Uint16(b[8:]))
	if len(b) < hl || hl+pl+dl > len(b) {
		return rosctr, nil, nil, false
	}
	return rosctr, b[hl : hl+pl], b[hl+pl : hl+pl+dl], true
}

// Probe reports whether p starts a COTP DT carrying an S7comm PDU; a
// connection request or confirm is remembered for the dissector that
// claims the flow.
func (*S7comm) Probe(p *dissect.Packet) bool {
	user, ok := cotpProbeData(p)
	if !ok {
		return false
	}
	if len(user) < s7HeaderLen || user[0] != s7ProtoID {
		return false
	}
	switch user[1] {
	case s7Job, s7Ack, s7AckData, s7Userdata:
		return user[2] == 0 && user[3] == 0 // redundancy id is 0
	}
	return false
}

// s7Flow is the per-flow state.
type s7Flow struct {
	cotpConn
	services [8]uint64 // indexes of s7Services emitted
	emitted  uint32
	szlReads uint8
	szlCont  uint8 // data unit reference + 1 of an SZL answer whose rest follows
	// An SZL answer being read: its id's low octet, records left, and a
	// record begun in the previous PDU.
	szlID    byte
	szlTailN uint8
	szlLeft  uint16
	szlTail  [34]byte
	hw1, hw6 string // module versions of SZL 0x0011 indexes 1 and 6
}

// Emitted flags.
const (
	s7emRoles = 1 << iota
	s7emVendor
	s7emTSAP
	s7emModel
	s7emHardware
	s7emFirmware
	s7emSZL1C // 0x001C index i uses s7emSZL1C << i
)

// tsap reads the called (server's) TSAP of a connection request.
func (s *S7comm) tsap(p *dissect.Packet, st *s7Flow, called []byte, out dissect.Sink) {
	if len(called) != 2 || st.emitted&s7emTSAP != 0 {
		return
	}
	st.emitted |= s7emTSAP
	srv := p.Server()
	s7Emit(p, out, srv, AttrS7ConnectionType, strconv.Itoa(int(called[0])), p.Client())
	s7Emit(p, out, srv, AttrS7Rack, strconv.Itoa(int(called[1]>>5)), netip.Addr{})
	s7Emit(p, out, srv, AttrS7Slot, strconv.Itoa(int(called[1]&0x1f)), netip.Addr{})
}

// Handle reads the TPKTs of a claimed flow's packet.
func (s *S7comm) Handle(p *dissect.Packet, out dissect.Sink) {
	cotpHandle(p, out, s.tsap, s.pdu)
}

// pdu reads one S7comm PDU.
func (s *S7comm) pdu(p *dissect.Packet, st *s7Flow, b []byte, out dissect.Sink) {
	rosctr, param, data, ok := s7Header(b)
	if !ok {
		return
	}
	var request bool
	switch rosctr {
	case s7Job:
		request = true
	case s7Userdata:
		// Parameter head 00 01 12, length, method, type|group, subfunction.
		if len(param) < 8 || param[0] != 0 || param[1] != 1 || param[2] != 0x12 {
			return
		}
		request = param[5]>>4 == 4
	}
	// The side that sends requests is the client; the other the server.
	srv, cli := roles(out, p, "s7comm", !request, st.emitted&s7emRoles != 0, RoleS7Server, RoleS7Client)
	st.emitted |= s7emRoles
	if !request && st.emitted&s7emVendor == 0 {
		st.emitted |= s7emVendor
		s7Emit(p, out, srv, dissect.AttrVendor, siemensVendor, netip.Addr{})
	}
	switch {
	case rosctr == s7Job && len(param) > 0:
		s.service(p, st, int(param[0]), srv, cli, out)
		if param[0] == 0x28 {
			s.piService(p, st, param, srv, cli, out)
		}
	case rosctr == s7Userdata && request:
		group, sub := param[5]&0x0f, param[6]
		if sub < 16 {
			s.service(p, st, 256+int(group)<<4|int(sub), srv, cli, out)
		}
		if group == 4 && sub == 1 && len(data) >= 8 && st.szlReads < s7MaxSZLReadsPerFlow {
			st.szlReads++
			id, idx := binary.BigEndian.Uint16(data[4:]), binary.BigEndian.Uint16(data[6:])
			s7Emit(p, out, srv, AttrS7SZLRead, "0x"+hex4(id)+"/0x"+hex4(idx), cli)
		}
	case rosctr == s7Userdata && param[5]>>4 == 8 && param[5]&0x0f == 4 && param[6] == 1:
		// An answer too long for one PDU comes in several, the first with
		// the SZL header; each but the last says more follow (§ userdata
		// parameter: data unit reference, last data unit).
		if len(param) < 12 {
			s.szl(p, st, data, srv, out)
			return
		}
		ref, more := param[8], param[9] != 0
		if st.szlCont != 0 && st.szlCont-1 == ref {
			if !more {
				st.szlCont = 0
			}
			s.szlMore(p, st, data, srv, out)
			return
		}
		st.szlCont = 0
		if more {
			st.szlCont = ref + 1
		}
		s.szl(p, st, data, srv, out)
	}
}

func hex4(v uint16) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[v>>12], digits[v>>8&15], digits[v>>4&15], digits[v&15]})
}

func (s *S7comm) service(p *dissect.Packet, st *s7Flow, i int, srv, cli netip.Addr, out dissect.Sink) {
	if st.services[i>>6]&(1<<(i&63)) != 0 {
		return
	}
	st.services[i>>6] |= 1 << (i & 63)
	s7Emit(p, out, srv, dissect.AttrService, s7Services[i], cli)
	if f := s7Flag(i); f != "" {
		s7Emit(p, out, srv, f, s7Services[i], cli)
	}
}

// piService reads the service name of a PI service job (0x28): function,
// 7 reserved octets, parameter block length (2), parameter block, name
// length (1), name ("P_PROGRAM" start, "_INSE" insert block, ...).
func (s *S7comm) piService(p *dissect.Packet, st *s7Flow, param []byte, srv, cli netip.Addr, out dissect.Sink) {
	if len(param) < 10 {
		return
	}
	pl := int(binary.BigEndian.Uint16(param[8:]))
	b := param[10:]
	if pl > len(b)-1 {
		return
	}
	b = b[pl:]
	n := int(b[0])
	if n == 0 || n > len(b)-1 {
		return
	}
	name := cleanText(b[1 : 1+n])
	if len(name) == 0 {
		return
	}
	v := strings.ToValidUTF8(string(name), "\uFFFD")
	s7Emit(p, out, srv, AttrS7PIService, v, cli)
	switch v {
	case "_INSE", "_DELE", "_GARB", "_MODU":
		s7Emit(p, out, srv, AttrS7Program, "s7comm:plc-control "+v, cli)
	}
}

// szl reads the first PDU of a Read SZL answer: return code, transport
// size, length (2), SZL id (2), index (2), record length (2), record
// count (2), then the records (the rest may follow in other PDUs).
func (s *S7comm) szl(p *dissect.Packet, st *s7Flow, data []byte, srv netip.Addr, out dissect.Sink) {
	st.szlLeft = 0
	if len(data) < 12 || data[0] != 0xff {
		return
	}
	id := binary.BigEndian.Uint16(data[4:])
	rl, n := int(binary.BigEndian.Uint16(data[8:])), int(binary.BigEndian.Uint16(data[10:]))
	switch {
	case id&0xff == 0x11 && rl == 28, id&0xff == 0x1c && rl == 34:
	default:
		return
	}
	st.szlID, st.szlLeft, st.szlTailN = byte(id), uint16(min(n, 64)), 0
	st.hw1, st.hw6 = "", ""
	s.szlRecords(p, st, data[12:], srv, out)
}

// szlMore reads a following PDU of an SZL answer: return code, transport
// size, length, then more records (the first may complete one begun in
// the previous PDU).
func (s *S7comm) szlMore(p *dissect.Packet, st *s7Flow, data []byte, srv netip.Addr, out dissect.Sink) {
	if st.szlLeft == 0 || len(data) < 4 || data[0] != 0xff {
		st.szlLeft = 0
		return
	}
	s.szlRecords(p, st, data[4:], srv, out)
}

func (s *S7comm) szlRecords(p *dissect.Packet, st *s7Flow, b []byte, srv netip.Addr, out dissect.Sink) {
	rl := 28
	if st.szlID == 0x1c {
		rl = 34
	}
	if st.szlTailN > 0 {
		k := min(rl-int(st.szlTailN), len(b))
		copy(st.szlTail[st.szlTailN:], b[:k])
		st.szlTailN += uint8(k)
		b = b[k:]
		if int(st.szlTailN) < rl {
			return
		}
		st.szlTailN = 0
		s.szlRecord(p, st, st.szlTail[:rl], srv, out)
	}
	for st.szlLeft > 0 && len(b) >= rl {
		s.szlRecord(p, st, b[:rl], srv, out)
		b = b[rl:]
	}
	if st.szlLeft > 0 && len(b) > 0 {
		st.szlTailN = uint8(copy(st.szlTail[:], b))
	}
	if st.szlLeft == 0 && st.szlID == 0x11 {
		hw := st.hw6
		if hw == "" {
			hw = st.hw1
		}
		s.once(p, st, s7emHardware, srv, dissect.AttrHardware, hw, out)
	}
}

// szlRecord reads one record of SZL 0x0011 (index, MLFB (20), module type
// id, version (Ausbg), release (Ausbe)) or 0x001C (index, 32 characters).
func (s *S7comm) szlRecord(p *dissect.Packet, st *s7Flow, r []byte, srv netip.Addr, out dissect.Sink) {
	st.szlLeft--
	idx := binary.BigEndian.Uint16(r)
	if st.szlID == 0x11 {
		mlfb := cleanText(r[2:22])
		ausbg, ausbe := binary.BigEndian.Uint16(r[24:]), binary.BigEndian.Uint16(r[26:])
		switch idx {
		case 1:
			if len(mlfb) > 0 {
				s.once(p, st, s7emModel, srv, dissect.AttrModel, strings.ToValidUTF8(string(mlfb), "\uFFFD"), out)
			}
			if st.emitted&s7emHardware == 0 {
				st.hw1 = s7Version(ausbg, ausbe)
			}
		case 6:
			if st.emitted&s7emHardware == 0 {
				st.hw6 = s7Version(ausbg, ausbe)
			}
		case 7:
			s.once(p, st, s7emFirmware, srv, dissect.AttrFirmware, s7Version(ausbg, ausbe), out)
		}
		return
	}
	var attr string
	switch idx {
	case 1:
		attr = AttrS7SystemName
	case 2:
		attr = dissect.AttrName
	case 3:
		attr = AttrS7PlantID
	case 4:
		attr = AttrS7Copyright
	case 5:
		attr = dissect.AttrSerial
	case 7:
		attr = AttrS7ModuleType
	case 8:
		attr = AttrS7MemoryCard
	case 0xb:
		attr = AttrS7Location
	default:
		return
	}
	if v := cleanText(r[2:]); len(v) > 0 {
		s.once(p, st, s7emSZL1C<<idx, srv, attr, strings.ToValidUTF8(string(v), "\uFFFD"), out)
	}
}

// s7Version renders an SZL 0x0011 version: "V3.2.6" when the first octet
// is 'V' (firmware releases: 'V', major; minor, patch), else the version
// of the module as a number.
func s7Version(ausbg, ausbe uint16) string {
	if ausbg>>8 == 'V' {
		return "V" + strconv.Itoa(int(ausbg&0xff)) + "." + strconv.Itoa(int(ausbe>>8)) + "." + strconv.Itoa(int(ausbe&0xff))
	}
	if ausbg == 0 || ausbg == 0x2020 {
		return ""
	}
	return strconv.Itoa(int(ausbg))
}

func (s *S7comm) once(p *dissect.Packet, st *s7Flow, flag uint32, ip netip.Addr, attr, v string, out dissect.Sink) {
	if st.emitted&flag != 0 || v == "" {
		return
	}
	st.emitted |= flag
	s7Emit(p, out, ip, attr, v, netip.Addr{})
}

func s7Emit(p *dissect.Packet, out dissect.Sink, ip netip.Addr, attr, value string, peer netip.Addr) {
	out.Observe(dissect.Observation{Time: p.Time, IP: ip, Attr: attr, Value: value, Protocol: "s7comm", Peer: peer})
}

func init() { register(21, "s7comm", func() dissect.Dissector { return NewS7comm() }) }
