package ot

import (
	"encoding/binary"
	"net/netip"
	"strconv"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
)

// FINSPort is the registered UDP and TCP port of Omron FINS.
const FINSPort = 9600

// FINS roles (dissect.AttrRole values): the node sending commands and the
// node answering them.
const (
	RoleFINSServer = "fins-server"
	RoleFINSClient = "fins-client"
)

// Attributes the FINS dissector emits besides the dissect.Attr* ones.
const (
	// AttrFINSNode is the FINS address a device uses, "network.node.unit"
	// in decimal (0.200.0): the source address of the frames it sends, or
	// the node addresses FINS/TCP's node address exchange assigns.
	AttrFINSNode = "fins.node"
	// AttrFINSWrite flags a client (Peer) writing to the server's memory,
	// parameters, clock, files or forced bits. Value as dissect.AttrService.
	AttrFINSWrite = "fins.write"
	// AttrFINSProgram flags a client (Peer) reading, writing, clearing or
	// protecting the server's program area.
	AttrFINSProgram = "fins.program"
	// AttrFINSControl flags a client (Peer) changing the server's operating
	// mode (RUN 0401, STOP 0402) or resetting it.
	AttrFINSControl = "fins.control"
	// AttrFINSError is the error code of a FINS/TCP header (a refused node
	// address exchange), about the server, once per flow.
	AttrFINSError = "fins.tcp_error"
)

// FINS command codes (MRC, SRC), from the FINS Commands Reference Manual
// (Omron W227/W342, section 5 "FINS commands").
var finsCommands = newVndTable("fins", vndHex4, []vndCommand{
	{0x0101, "memory-area-read", vndRead},
	{0x0102, "memory-area-write", vndWrite},
	{0x0103, "memory-area-fill", vndWrite},
	{0x0104, "multiple-memory-area-read", vndRead},
	{0x0105, "memory-area-transfer", vndWrite},
	{0x0201, "parameter-area-read", vndRead},
	{0x0202, "parameter-area-write", vndWrite},
	{0x0203, "parameter-area-clear", vndWrite},
	{0x0220, "data-link-table-read", vndRead},
	{0x0221, "data-link-table-write", vndWrite},
	{0x0304, "program-area-protect", vndProgram},
	{0x0305, "program-area-protect-clear", vndProgram},
	{0x0306, "program-area-read", vndProgram},
	{0x0307, "program-area-write", vndProgram},
	{0x0308, "program-area-clear", vndProgram},
	{0x0401, "run", vndControl},
	{0x0402, "stop", vndControl},
	{0x0403, "reset", vndControl},
	{0x0501, "controller-data-read", vndRead},
	{0x0502, "connection-data-read", vndRead},
	{0x0601, "controller-status-read", vndRead},
	{0x0602, "network-status-read", vndRead},
	{0x0603, "data-link-status-read", vndRead},
	{0x0620, "cycle-time-read", vndRead},
	{0x0701, "clock-read", vndRead},
	{0x0702, "clock-write", vndWrite},
	{0x0801, "loopback-test", vndRead},
	{0x0802, "broadcast-test-results-read", vndRead},
	{0x0803, "broadcast-test-data-send", vndRead},
	{0x0920, "message-read-clear", vndRead},
	{0x0c01, "access-right-acquire", vndRead},
	{0x0c02, "access-right-forced-acquire", vndControl},
	{0x0c03, "access-right-release", vndRead},
	{0x2101, "error-clear", vndWrite},
	{0x2102, "error-log-read", vndRead},
	{0x2103, "error-log-clear", vndWrite},
	{0x2201, "file-name-read", vndRead},
	{0x2202, "single-file-read", vndRead},
	{0x2203, "file-write", vndWrite},
	{0x2204, "file-memory-format", vndWrite},
	{0x2205, "file-delete", vndWrite},
	{0x2206, "volume-label-create-delete", vndWrite},
	{0x2207, "file-copy", vndWrite},
	{0x2208, "file-name-change", vndWrite},
	{0x2209, "file-data-check", vndRead},
	{0x220a, "memory-area-file-transfer", vndWrite},
	{0x220b, "parameter-area-file-transfer", vndWrite},
	{0x220c, "program-area-file-transfer", vndProgram},
	{0x220f, "file-memory-index-read", vndRead},
	{0x2210, "file-memory-read", vndRead},
	{0x2211, "file-memory-write", vndWrite},
	{0x2215, "create-delete-directory", vndWrite},
	{0x2301, "forced-set-reset", vndWrite},
	{0x2302, "forced-set-reset-cancel", vndWrite},
	{0x230a, "multiple-forced-status-read", vndRead},
	{0x2601, "name-set", vndWrite},
	{0x2602, "name-delete", vndWrite},
	{0x2603, "name-read", vndRead},
})

var finsFlags = [4]string{vndWrite: AttrFINSWrite, vndProgram: AttrFINSProgram, vndControl: AttrFINSControl}

// FINS header (FINS Commands Reference Manual, section 3-2 "FINS frames"):
// ICF, RSV, GCT, DNA, DA1, DA2, SNA, SA1, SA2, SID, then the command code
// (MRC, SRC); a response adds the end code (MRES, SRES) before its data.
const (
	finsHeaderLen = 10
	finsICFResp   = 0x40 // ICF bit 6: 1 response, 0 command
	finsICFRsv    = 0x3e // ICF bits 1-5: reserved, 0
)

// FINS/TCP (section 7 of the Ethernet Unit manuals, W421): "FINS" magic,
// length of what follows the length field, command, error code.
const (
	finsTCPHeaderLen = 16
	finsTCPNodeReq   = 0 // client node address data send (client to server)
	finsTCPNodeResp  = 1 // node address data send (server to client)
	finsTCPFrame     = 2 // FINS frame send
	finsTCPMaxLen    = 2048 + 8
	finsModelVersion = 20 // length of the model and the version fields of 0501
	finsCtrlDataRead = 0x0501
)

// FINS reads Omron FINS over UDP and TCP on port 9600. The header's
// reserved bits and command code confirm the protocol (and the "FINS"
// magic on TCP). It learns the roles (the node sending commands is the
// client, the one answering the server), the FINS node address each IP
// uses, the commands each client uses on each server with flags for
// writes, program area access and operating-mode changes, and what
// Controller Data Read (0501) answers say: controller model and version.
// A CPU unit answering 0501 is a PLC. Each fact is emitted once per flow.
type FINS struct{}

// NewFINS returns a FINS dissector.
func NewFINS() *FINS { return &FINS{} }

// Name returns "fins".
func (*FINS) Name() string { return "fins" }

// Wants asks for UDP and TCP port 9600.
func (*FINS) Wants() dissect.Wants {
	return dissect.Wants{TCPPorts: []uint16{FINSPort}, UDPPorts: []uint16{FINSPort}}
}

// Per-flow emitted flags.
const (
	finsEmRoles = 1 << iota
	finsEmModel
	finsEmVersion
	finsEmClass
	finsEmError
	finsEmTCPNodes
)

type finsFlow struct {
	s        [2]dissect.Stream
	services bitset256
	other    vndCodes
	nodes    [2]uint32 // node addresses emitted per direction, +1
	flags    uint16
}

// finsHeader reports whether b starts with a plausible FINS frame of at
// least a command code.
func finsHeader(b []byte) bool {
	if len(b) < finsHeaderLen+2 {
		return false
	}
	icf := b[0]
	if icf&finsICFRsv != 0 || b[1] != 0 || b[2] > 7 {
		return false
	}
	_, known := finsCommands.lookup(binary.BigEndian.Uint16(b[10:]))
	return known
}

// finsTCPHeader checks a FINS/TCP header and returns the frame's length.
func finsTCPHeader(b []byte) (int, bool) {
	if len(b) < finsTCPHeaderLen || string(b[:4]) != "FINS" {
		return 0, false
	}
	l := binary.BigEndian.Uint32(b[4:])
	if l < 8 || l > finsTCPMaxLen {
		return 0, false
	}
	if binary.BigEndian.Uint32(b[8:]) > 3 {
		return 0, false
	}
	return 8 + int(l), true
}

// Probe confirms FINS from the header (UDP) or the FINS/TCP header.
func (f *FINS) Probe(p *dissect.Packet) bool {
	if p.Flow == nil {
		return false
	}
	switch p.Flow.Proto {
	case capture.ProtoUDP:
		return finsHeader(p.Payload)
	case capture.ProtoTCP:
		n, ok := finsTCPHeader(p.Payload)
		if !ok {
			return false
		}
		if binary.BigEndian.Uint32(p.Payload[8:]) == finsTCPFrame && len(p.Payload) >= n {
			return finsHeader(p.Payload[finsTCPHeaderLen:n])
		}
		return true
	}
	return false
}

// Handle reads a FINS datagram or the FINS/TCP frames of a segment.
func (f *FINS) Handle(p *dissect.Packet, out dissect.Sink) {
	if p.Flow == nil || len(p.Payload) == 0 {
		return
	}
	st := flowState[finsFlow](p.Flow)
	if p.Flow.Proto == capture.ProtoUDP {
		f.frame(p, st, p.Payload, out)
		return
	}
	tcpRecords(&st.s[p.Dir&1], p, finsTCPHeaderLen, finsTCPHeader, func(b []byte) { f.tcpFrame(p, st, b, out) })
}

// tcpFrame reads one FINS/TCP frame.
func (f *FINS) tcpFrame(p *dissect.Packet, st *finsFlow, b []byte, out dissect.Sink) {
	cmd := binary.BigEndian.Uint32(b[8:])
	if e := binary.BigEndian.Uint32(b[12:]); e != 0 && st.flags&finsEmError == 0 {
		st.flags |= finsEmError
		vndEmit(out, p, "fins", p.Server(), AttrFINSError, "0x"+strconv.FormatUint(uint64(e), 16), p.Client())
	}
	switch cmd {
	case finsTCPFrame:
		f.frame(p, st, b[finsTCPHeaderLen:], out)
	case finsTCPNodeResp:
		// Client node address (4 bytes), server node address (4 bytes).
		if len(b) < finsTCPHeaderLen+8 || p.Dir != flow.FromServer || st.flags&finsEmTCPNodes != 0 {
			return
		}
		st.flags |= finsEmTCPNodes
		cli := binary.BigEndian.Uint32(b[16:])
		srv := binary.BigEndian.Uint32(b[20:])
		if cli > 0 && cli < 255 {
			vndEmit(out, p, "fins", p.Client(), AttrFINSNode, "0."+strconv.Itoa(int(cli))+".0", netip.Addr{})
		}
		if srv > 0 && srv < 255 {
			vndEmit(out, p, "fins", p.Server(), AttrFINSNode, "0."+strconv.Itoa(int(srv))+".0", netip.Addr{})
		}
	}
}

// frame reads one FINS frame (header, command code, data).
func (f *FINS) frame(p *dissect.Packet, st *finsFlow, b []byte, out dissect.Sink) {
	if !finsHeader(b) {
		return
	}
	resp := b[0]&finsICFResp != 0
	code := binary.BigEndian.Uint16(b[10:])
	// The sender is the client of a command and the server of a response,
	// whichever side opened the flow (FINS/UDP nodes often both use 9600).
	srv, cli := roles(out, p, "fins", resp, st.flags&finsEmRoles != 0, RoleFINSServer, RoleFINSClient)
	st.flags |= finsEmRoles
	// The source address (SNA, SA1, SA2) is the sender's own.
	node := uint32(b[6])<<16 | uint32(b[7])<<8 | uint32(b[8])
	if d := p.Dir & 1; st.nodes[d] != node+1 && b[7] != 0 {
		st.nodes[d] = node + 1
		vndEmit(out, p, "fins", p.SrcIP, AttrFINSNode,
			strconv.Itoa(int(b[6]))+"."+strconv.Itoa(int(b[7]))+"."+strconv.Itoa(int(b[8])), netip.Addr{})
	}
	if !resp {
		vndService(out, p, "fins", finsCommands, &st.services, &st.other, srv, cli, code, finsFlags)
		return
	}
	// Response: end code (MRES, SRES), then data. MRES bit 7 flags a relay
	// error, SRES bits 6 and 7 a CPU error; the rest is 0 on success.
	if code != finsCtrlDataRead || len(b) < 14 || b[12]&0x7f != 0 || b[13]&0x3f != 0 {
		return
	}
	f.controllerData(p, st, b[14:], b[8], out)
}

// controllerData reads a Controller Data Read response's data: controller
// model (20 bytes ASCII), controller version (20 bytes), then data for
// system use and the area data (FINS Commands Reference, 5-3-1). A
// request for the area data only (parameter 01) is answered without model
// and version; its first bytes are binary, which the printable check
// rejects.
func (f *FINS) controllerData(p *dissect.Packet, st *finsFlow, d []byte, unit byte, out dissect.Sink) {
	if len(d) < 2*finsModelVersion || !vndPrintable(d[:finsModelVersion]) {
		return
	}
	srv := p.SrcIP
	if st.flags&finsEmModel == 0 {
		st.flags |= finsEmModel
		if m := vndText(d[:finsModelVersion]); m != "" {
			vndEmit(out, p, "fins", srv, dissect.AttrModel, m, netip.Addr{})
		}
	}
	if st.flags&finsEmVersion == 0 && vndPrintable(d[finsModelVersion:2*finsModelVersion]) {
		st.flags |= finsEmVersion
		if v := vndText(d[finsModelVersion : 2*finsModelVersion]); v != "" {
			vndEmit(out, p, "fins", srv, dissect.AttrFirmware, v, netip.Addr{})
		}
	}
	// Unit address 0 is the CPU unit: the answering node is a PLC.
	if unit == 0 && st.flags&finsEmClass == 0 {
		st.flags |= finsEmClass
		vndEmit(out, p, "fins", srv, dissect.AttrClass, dissect.ClassPLC, netip.Addr{})
	}
}

func init() { register(60, "fins", func() dissect.Dissector { return NewFINS() }) }
