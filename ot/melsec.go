package ot

import (
	"encoding/binary"
	"net/netip"
	"strconv"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
)

// Mitsubishi Electric MELSEC protocols: SLMP (the MC protocol's binary
// 3E and 4E frames) and MELSOFT (the engineering protocol of GX Works).

// Ports that nominate SLMP: it has no registered port; these are the
// defaults of Mitsubishi's Ethernet modules and the ports engineering
// tools propose. Any other port is read when a request and its response
// both have valid frames.
var SLMPPorts = []uint16{1025, 1026, 5000, 5001, 5002, 5010, 5011}

// MELSOFT connection ports: 5007 (Q, iQ-R), 5562 (iQ-F).
var MELSOFTPorts = []uint16{5007, 5562}

// Roles (dissect.AttrRole values).
const (
	RoleSLMPServer    = "slmp-server"
	RoleSLMPClient    = "slmp-client"
	RoleMELSOFTServer = "melsoft-server" // the PLC
	RoleMELSOFTClient = "melsoft-client" // the engineering tool
)

// Attributes the SLMP and MELSOFT dissectors emit besides dissect.Attr*.
const (
	// AttrSLMPRoute is an access route a server is addressed by:
	// "network.station.io.multidrop" (0.255.03ff.0 is the CPU of the
	// station the client is connected to). One per route per flow.
	AttrSLMPRoute = "slmp.route"
	// AttrSLMPModelCode is the model code of a Read Type Name reply (hex).
	AttrSLMPModelCode = "slmp.model_code"
	// AttrSLMPWrite, AttrSLMPProgram and AttrSLMPControl flag a client
	// (Peer) writing devices or buffer memory, writing or deleting files,
	// and changing the CPU's state (remote RUN/STOP/PAUSE/RESET, latch
	// clear, password lock/unlock).
	AttrSLMPWrite   = "slmp.write"
	AttrSLMPProgram = "slmp.program"
	AttrSLMPControl = "slmp.control"
	// AttrMELSOFTModelCode is the model code of a CPU model reply (hex).
	AttrMELSOFTModelCode = "melsoft.model_code"
	// AttrMELSOFTRoute is the route of a MELSOFT request, as for SLMP.
	AttrMELSOFTRoute = "melsoft.route"
	// AttrMELSOFTWrite, AttrMELSOFTProgram, AttrMELSOFTControl flag a
	// client (Peer) modifying device values, writing files, or changing
	// the CPU's state.
	AttrMELSOFTWrite   = "melsoft.write"
	AttrMELSOFTProgram = "melsoft.program"
	AttrMELSOFTControl = "melsoft.control"
)

// SLMP commands (SLMP Reference Manual SH-080956ENG, 5.1 "Command list").
var slmpCommands = newVndTable("slmp", vndHex4, []vndCommand{
	{0x0401, "device-read", vndRead},
	{0x1401, "device-write", vndWrite},
	{0x0403, "device-read-random", vndRead},
	{0x1402, "device-write-random", vndWrite},
	{0x0801, "device-entry-monitor", vndRead},
	{0x0802, "device-execute-monitor", vndRead},
	{0x0406, "device-read-block", vndRead},
	{0x1406, "device-write-block", vndWrite},
	{0x0601, "memory-read", vndRead},
	{0x1601, "memory-write", vndWrite},
	{0x0613, "extend-unit-read", vndRead},
	{0x1613, "extend-unit-write", vndWrite},
	{0x1001, "remote-run", vndControl},
	{0x1002, "remote-stop", vndControl},
	{0x1003, "remote-pause", vndControl},
	{0x1005, "remote-latch-clear", vndControl},
	{0x1006, "remote-reset", vndControl},
	{0x0101, "read-type-name", vndRead},
	{0x1630, "remote-password-unlock", vndControl},
	{0x1631, "remote-password-lock", vndControl},
	{0x0619, "self-test", vndRead},
	{0x1617, "clear-error", vndWrite},
	{0x1810, "file-read-directory", vndRead},
	{0x1811, "file-search-directory", vndRead},
	{0x1820, "file-new", vndProgram},
	{0x1822, "file-delete", vndProgram},
	{0x1824, "file-copy", vndProgram},
	{0x1825, "file-change-state", vndProgram},
	{0x1826, "file-change-date", vndProgram},
	{0x1827, "file-open", vndRead},
	{0x1828, "file-read", vndRead},
	{0x1829, "file-write", vndProgram},
	{0x182a, "file-close", vndRead},
})

var slmpFlags = [4]string{vndWrite: AttrSLMPWrite, vndProgram: AttrSLMPProgram, vndControl: AttrSLMPControl}

// MELSOFT command codes, as published with Nozomi Networks' MELSOFT
// Wireshark plug-in (Black Hat MEA 2023); 0411 (device monitor) seen in
// the public melsoft capture of ITI's ICS-Security-Tools; 0101 the CPU
// model read of the public melsecq-discover script.
var melsoftCommands = newVndTable("melsoft", vndHex4, []vndCommand{
	{0x0101, "read-cpu-model", vndRead},
	{0x0121, "open-initial", vndRead},
	{0x0131, "username-login", vndRead},
	{0x0132, "password-login", vndRead},
	{0x0133, "read-user-information-a", vndRead},
	{0x0134, "read-user-information-b", vndRead},
	{0x0150, "safety-run-mode-read", vndRead},
	{0x0410, "modify-value", vndWrite},
	{0x0411, "monitor", vndRead},
	{0x1001, "remote-run", vndControl},
	{0x1002, "remote-stop", vndControl},
	{0x1003, "remote-pause", vndControl},
	{0x1006, "remote-reset", vndControl},
	{0x1120, "safety-run-mode-change", vndControl},
	{0x1133, "user-information-registration", vndProgram},
	{0x1859, "file-list-read", vndRead},
	{0x1868, "file-read", vndProgram},
	{0x1869, "file-write", vndProgram},
})

var melsoftFlags = [4]string{vndWrite: AttrMELSOFTWrite, vndProgram: AttrMELSOFTProgram, vndControl: AttrMELSOFTControl}

// SLMP binary frames (SLMP Reference Manual, 4.1/4.2): 3E request
// 50 00, response D0 00; 4E request 54 00, response D4 00, each followed
// by a serial number (2) and 00 00. Then network no. (1), station no. (1),
// request destination module I/O no. (2, LE), multidrop station no. (1),
// data length (2, LE), and: a request's monitoring timer (2), command (2),
// subcommand (2), data; a response's end code (2), data.
const (
	slmpHeader3E  = 9
	slmpMaxLen    = 8192
	slmpMaxRoutes = 8
	slmpPending   = 8
	slmpTypeName  = 0x0101
)

// slmpFrame parses the frame at the start of b: whether it is a response,
// the offset of the network number, the frame's whole length, and the 4E
// serial (0 for 3E).
func slmpFrame(b []byte) (resp bool, off, n int, serial uint16, ok bool) {
	if len(b) < 2 || b[1] != 0 {
		return false, 0, 0, 0, false
	}
	switch b[0] {
	case 0x50, 0xd0:
	case 0x54, 0xd4:
		if len(b) < 6 || b[4] != 0 || b[5] != 0 {
			return false, 0, 0, 0, false
		}
		off, serial = 4, binary.LittleEndian.Uint16(b[2:])
	default:
		return false, 0, 0, 0, false
	}
	resp = b[0]&0x80 != 0
	if len(b) < off+slmpHeader3E {
		return false, 0, 0, 0, false
	}
	l := int(binary.LittleEndian.Uint16(b[off+7:]))
	min := 6 // timer, command, subcommand
	if resp {
		min = 2 // end code
	}
	if l < min || l > slmpMaxLen {
		return false, 0, 0, 0, false
	}
	return resp, off, off + slmpHeader3E + l, serial, true
}

// slmpRequest reports whether b is exactly one SLMP request with a known
// command and a subcommand of the documented form.
func slmpRequest(b []byte) bool {
	resp, off, n, _, ok := slmpFrame(b)
	if !ok || resp || n != len(b) {
		return false
	}
	cmd := binary.LittleEndian.Uint16(b[off+11:])
	sub := binary.LittleEndian.Uint16(b[off+13:])
	_, known := slmpCommands.lookup(cmd)
	// Subcommands are small: 0000-0003, 0080-0083 and a few more.
	return known && sub&0xff00 == 0
}

// SLMP reads the binary 3E and 4E frames of SLMP (the MC protocol) over
// TCP and UDP. It learns the roles, the routes each server is addressed
// by, the commands each client uses (with flags for device writes, file
// and program changes, and remote RUN/STOP/PAUSE/RESET), and what Read
// Type Name (0101) replies say: the CPU model name and model code, and
// that the device is a PLC. ASCII frames are not read.
type SLMP struct{}

// NewSLMP returns an SLMP dissector.
func NewSLMP() *SLMP { return &SLMP{} }

// Name returns "slmp".
func (*SLMP) Name() string { return "slmp" }

// Wants asks for the usual ports over TCP and UDP, and heuristic probing.
func (*SLMP) Wants() dissect.Wants {
	return dissect.Wants{TCPPorts: SLMPPorts, UDPPorts: SLMPPorts, Heuristic: true}
}

const (
	slmpEmRoles = 1 << iota
	slmpEmModel
)

type slmpFlow struct {
	s        [2]dissect.Stream
	services bitset256
	other    vndCodes
	routes   [slmpMaxRoutes]uint64
	nroutes  uint8
	// Commands of requests not yet answered, oldest first, with their
	// 4E serial numbers.
	pend  [slmpPending]uint32 // serial<<16 | command
	npend uint8
	flags uint8
}

// slmpProbe is the state of a flow on a port that does not nominate SLMP
// after one side sent a valid request.
type slmpProbe struct {
	serial uint16
	dir    flow.Dir
}

// Probe: on a nominating port a whole request with a known command, or a
// whole response; elsewhere a request, then a response of the same serial
// from the other side. The request is remembered in p.Flow.State (a
// *slmpProbe, only when State is nil or already one).
func (s *SLMP) Probe(p *dissect.Packet) bool {
	if p.Flow == nil {
		return false
	}
	b := p.Payload
	nominated := false
	for _, port := range SLMPPorts {
		if p.Flow.Server.Port() == port || p.Flow.Client.Port() == port {
			nominated = true
		}
	}
	if slmpRequest(b) {
		if nominated {
			return true
		}
		_, _, _, serial, _ := slmpFrame(b)
		switch st := p.Flow.State.(type) {
		case nil:
			p.Flow.State = &slmpProbe{serial: serial, dir: p.Dir}
		case *slmpProbe:
			*st = slmpProbe{serial: serial, dir: p.Dir}
		}
		return false
	}
	resp, _, n, serial, ok := slmpFrame(b)
	if !ok || !resp || n != len(b) {
		return false
	}
	if nominated {
		return true
	}
	st, ok := p.Flow.State.(*slmpProbe)
	return ok && st.serial == serial && st.dir != p.Dir
}

// Handle reads the SLMP frames of a segment or datagram.
func (s *SLMP) Handle(p *dissect.Packet, out dissect.Sink) {
	if p.Flow == nil || len(p.Payload) == 0 {
		return
	}
	st := flowState[slmpFlow](p.Flow)
	if p.Flow.Proto == capture.ProtoUDP {
		if _, _, n, _, ok := slmpFrame(p.Payload); ok && n <= len(p.Payload) {
			s.frame(p, st, p.Payload[:n], out)
		}
		return
	}
	tcpRecords(&st.s[p.Dir&1], p, 2, slmpLength, func(b []byte) { s.frame(p, st, b, out) })
}

// slmpLength returns the length of the frame b starts, asking for more
// bytes when b holds a frame header cut short.
func slmpLength(b []byte) (int, bool) {
	_, _, n, _, ok := slmpFrame(b)
	if !ok && len(b) < 15 && (b[0] == 0x50 || b[0] == 0xd0 || b[0] == 0x54 || b[0] == 0xd4) {
		return 15, true
	}
	return n, ok
}

// frame reads one whole SLMP frame. The client sends requests; which side
// opened the flow does not matter (UDP).
func (s *SLMP) frame(p *dissect.Packet, st *slmpFlow, b []byte, out dissect.Sink) {
	resp, off, _, serial, _ := slmpFrame(b)
	srv, cli := roles(out, p, "slmp", resp, st.flags&slmpEmRoles != 0, RoleSLMPServer, RoleSLMPClient)
	st.flags |= slmpEmRoles
	h := b[off:]
	if !resp {
		if len(h) < 15 {
			return
		}
		melsecRoute(p, out, "slmp", AttrSLMPRoute, &st.routes, &st.nroutes, srv, h[2:])
		cmd := binary.LittleEndian.Uint16(h[11:])
		vndService(out, p, "slmp", slmpCommands, &st.services, &st.other, srv, cli, cmd, slmpFlags)
		if st.npend == slmpPending {
			copy(st.pend[:], st.pend[1:])
			st.npend--
		}
		st.pend[st.npend] = uint32(serial)<<16 | uint32(cmd)
		st.npend++
		return
	}
	// A response answers the oldest pending request of its serial.
	var cmd uint16
	found := false
	for i := 0; i < int(st.npend); i++ {
		if uint16(st.pend[i]>>16) == serial {
			cmd, found = uint16(st.pend[i]), true
			copy(st.pend[i:], st.pend[i+1:st.npend])
			st.npend--
			break
		}
	}
	if !found || cmd != slmpTypeName || len(h) < 11 || binary.LittleEndian.Uint16(h[9:]) != 0 {
		return
	}
	// Read Type Name reply data: CPU model name (16 ASCII characters,
	// space padded), model code (2, LE) (SLMP Reference Manual 5.9).
	d := h[11:]
	if len(d) < 18 || st.flags&slmpEmModel != 0 || !vndPrintable(d[:16]) {
		return
	}
	st.flags |= slmpEmModel
	if m := vndText(d[:16]); m != "" {
		vndEmit(out, p, "slmp", srv, dissect.AttrModel, m, netip.Addr{})
	}
	vndEmit(out, p, "slmp", srv, AttrSLMPModelCode, vndHex4(binary.LittleEndian.Uint16(d[16:])), netip.Addr{})
	vndEmit(out, p, "slmp", srv, dissect.AttrClass, dissect.ClassPLC, netip.Addr{})
}

// melsecRoute emits the route of a request (h at its network number:
// network, station, I/O (LE), multidrop) once per flow.
func melsecRoute(p *dissect.Packet, out dissect.Sink, proto, attr string, routes *[slmpMaxRoutes]uint64, n *uint8, srv netip.Addr, h []byte) {
	r := uint64(h[0])<<32 | uint64(h[1])<<24 | uint64(binary.LittleEndian.Uint16(h[2:]))<<8 | uint64(h[4])
	for i := 0; i < int(*n); i++ {
		if routes[i] == r {
			return
		}
	}
	if int(*n) == len(routes) {
		return
	}
	routes[*n] = r
	*n++
	v := strconv.Itoa(int(h[0])) + "." + strconv.Itoa(int(h[1])) + "." + vndHex4(binary.LittleEndian.Uint16(h[2:])) + "." + strconv.Itoa(int(h[4]))
	vndEmit(out, p, proto, srv, attr, v, netip.Addr{})
}

// MELSOFT frames (layout as published with Nozomi Networks' MELSOFT
// Wireshark plug-in): magic 57 00 or 57 01 (request) or D7 00 (response);
// request network number at 9, station at 10, I/O number at 11 (LE);
// length of what follows byte 21 at 19 (LE); then a command header whose
// third byte is the length of the rest of it (24 bytes in all in iQ-R
// requests, 26 in responses, 12 and 14 on the Q series), then the command
// code (2, big endian). The CPU model read (command 0101, as the public
// melsecq-discover script sends it to Q-series CPUs) is answered with the
// command code, 4 bytes, the CPU model name (16 characters, space padded)
// and the model code (2, LE).
const (
	melsoftHeaderLen = 0x15
	melsoftMaxLen    = 8192
	melsoftCPUModel  = 0x0101
)

// melsoftCommand returns the offset of the command code of frame b, or 0
// when b is too short to hold it.
func melsoftCommand(b []byte) int {
	if len(b) < melsoftHeaderLen+3 {
		return 0
	}
	off := melsoftHeaderLen + 2 + int(b[melsoftHeaderLen+2])
	if off+2 > len(b) {
		return 0
	}
	return off
}

// melsoftFrame checks the frame header at the start of b and returns
// whether it is a response and the frame's length.
func melsoftFrame(b []byte) (resp bool, n int, ok bool) {
	if len(b) < melsoftHeaderLen {
		return false, 0, false
	}
	switch {
	case b[0] == 0x57 && b[1] <= 1:
	case b[0] == 0xd7 && b[1] == 0:
		resp = true
	default:
		return false, 0, false
	}
	l := int(binary.LittleEndian.Uint16(b[0x13:]))
	if l < 8 || l > melsoftMaxLen {
		return false, 0, false
	}
	return resp, melsoftHeaderLen + l, true
}

// MELSOFT reads the MELSOFT engineering protocol of Mitsubishi PLCs (GX
// Works to a CPU). The frame magic and length confirm it. It learns the
// roles (the engineering tool sending requests and the PLC answering),
// the route each request addresses, and the commands used, with flags for
// device value changes, file (program) reads and writes, and remote
// RUN/STOP/PAUSE/RESET, and from a CPU model reply (command 0101) the CPU
// model name and code, and that the device is a PLC.
type MELSOFT struct{}

// NewMELSOFT returns a MELSOFT dissector.
func NewMELSOFT() *MELSOFT { return &MELSOFT{} }

// Name returns "melsoft".
func (*MELSOFT) Name() string { return "melsoft" }

// Wants asks for TCP 5007 and 5562.
func (*MELSOFT) Wants() dissect.Wants { return dissect.Wants{TCPPorts: MELSOFTPorts} }

type melsoftFlow struct {
	s        [2]dissect.Stream
	services bitset256
	other    vndCodes
	routes   [slmpMaxRoutes]uint64
	nroutes  uint8
	roles    bool
	model    bool
}

// Probe accepts a segment that starts with a MELSOFT frame holding its
// command code, and whose length fits the segment.
func (m *MELSOFT) Probe(p *dissect.Packet) bool {
	if p.Flow == nil || p.Flow.Proto != capture.ProtoTCP {
		return false
	}
	_, n, ok := melsoftFrame(p.Payload)
	return ok && n <= len(p.Payload) && melsoftCommand(p.Payload[:n]) > 0
}

// Handle reads the MELSOFT frames of a segment.
func (m *MELSOFT) Handle(p *dissect.Packet, out dissect.Sink) {
	if p.Flow == nil || p.Flow.Proto != capture.ProtoTCP || len(p.Payload) == 0 {
		return
	}
	st := flowState[melsoftFlow](p.Flow)
	tcpRecords(&st.s[p.Dir&1], p, melsoftHeaderLen, melsoftLength, func(b []byte) {
		resp, _, _ := melsoftFrame(b)
		m.frame(p, st, b, resp, out)
	})
}

// melsoftLength returns the length of the frame b starts.
func melsoftLength(b []byte) (int, bool) {
	_, n, ok := melsoftFrame(b)
	return n, ok
}

func (m *MELSOFT) frame(p *dissect.Packet, st *melsoftFlow, b []byte, resp bool, out dissect.Sink) {
	srv, cli := roles(out, p, "melsoft", resp, st.roles, RoleMELSOFTServer, RoleMELSOFTClient)
	st.roles = true
	off := melsoftCommand(b)
	if off == 0 {
		return
	}
	cmd := binary.BigEndian.Uint16(b[off:])
	if resp {
		// CPU model reply: command, 4 bytes, model (16), model code (2).
		d := b[off:]
		if cmd != melsoftCPUModel || st.model || len(d) < 24 || !vndPrintable(d[6:22]) {
			return
		}
		st.model = true
		if vndEmitText(out, p, "melsoft", srv, dissect.AttrModel, d[6:22]) {
			vndEmit(out, p, "melsoft", srv, AttrMELSOFTModelCode, vndHex4(binary.LittleEndian.Uint16(d[22:])), netip.Addr{})
			vndEmit(out, p, "melsoft", srv, dissect.AttrClass, dissect.ClassPLC, netip.Addr{})
		}
		return
	}
	melsecRoute(p, out, "melsoft", AttrMELSOFTRoute, &st.routes, &st.nroutes, srv, b[9:14])
	vndService(out, p, "melsoft", melsoftCommands, &st.services, &st.other, srv, cli, cmd, melsoftFlags)
}

func init() {
	register(62, "slmp", func() dissect.Dissector { return NewSLMP() })
	register(63, "melsoft", func() dissect.Dissector { return NewMELSOFT() })
}
