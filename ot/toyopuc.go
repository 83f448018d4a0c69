package ot

import (
	"encoding/binary"
	"net/netip"
	"strings"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
)

// TOYOPUC computer link (JTEKT TOYOPUC PLCs and their 2ET Ethernet
// modules). The ports are set in the PLC's link parameters; the ones
// read are those of the public configuration examples: TCP 1025 and 1026,
// UDP 1027. The payload, never the port, confirms the protocol.
var (
	ToyopucTCPPorts = []uint16{1025, 1026}
	ToyopucUDPPorts = []uint16{1027}
)

// Toyopuc roles (dissect.AttrRole values).
const (
	RoleToyopucServer = "toyopuc-server" // the PLC answering computer link commands
	RoleToyopucClient = "toyopuc-client" // HMI, SCADA or engineering host sending them
)

// Attributes the Toyopuc dissector emits besides the dissect.Attr* ones.
const (
	// AttrToyopucWrite flags a client (Peer) writing PLC memory, the
	// clock or the flash file register.
	AttrToyopucWrite = "toyopuc.write"
	// AttrToyopucRelay is a relay path (command 0x60) the PLC forwards
	// commands along to other CPUs: "link 0x12 station 0x0002", hops
	// joined by " > ".
	AttrToyopucRelay = "toyopuc.relay"
	// AttrToyopucCPUState is the CPU status the PLC reports (command
	// 0x32/11): "run", "stop", mode and failure flags, emitted when it
	// changes.
	AttrToyopucCPUState = "toyopuc.cpu_state"
	// AttrToyopucNAK is an error response: "toyopuc nak 0x40".
	AttrToyopucNAK = "toyopuc.nak"
)

// Frame (public TOYOPUC computer link summaries of the 2ET module, see
// the pytoyopuc-computerlink COMPUTER_LINK_SPEC and its protocol
// builders): FT (0x00 command, 0x80 response), RC (0x00, or 0x10 NAK on a
// response), LL LH (little-endian count of the bytes from CMD on), CMD,
// data. A NAK carries its error code in the CMD byte.
const (
	toyoHeaderLen = 5
	toyoMaxLen    = 4096 // a word read is limited to 0x200 words; relays to 550 bytes
	toyoFTCommand = 0x00
	toyoFTResp    = 0x80
	toyoRCNAK     = 0x10
	toyoRelay     = 0x60
	toyoMaxHops   = 4 // relays nest four deep at most
	toyoMaxPaths  = 8 // relay paths remembered per flow
)

// Commands. Command 0x32 is keyed with its first subcommand byte
// (0x3211 CPU status read, 0x3270 clock read, 0x3271 clock write).
var toyoServices = newVndTable("toyopuc", toyoCode, []vndCommand{
	{0x1c, "word-read", vndRead},
	{0x1d, "word-write", vndWrite},
	{0x1e, "byte-read", vndRead},
	{0x1f, "byte-write", vndWrite},
	{0x20, "bit-read", vndRead},
	{0x21, "bit-write", vndWrite},
	{0x22, "multi-word-read", vndRead},
	{0x23, "multi-word-write", vndWrite},
	{0x24, "multi-byte-read", vndRead},
	{0x25, "multi-byte-write", vndWrite},
	{0x3211, "cpu-status-read", vndRead},
	{0x3270, "clock-read", vndRead},
	{0x3271, "clock-write", vndWrite},
	{0x60, "relay", vndRead},
	{0x94, "ext-word-read", vndRead},
	{0x95, "ext-word-write", vndWrite},
	{0x96, "ext-byte-read", vndRead},
	{0x97, "ext-byte-write", vndWrite},
	{0x98, "ext-multi-read", vndRead},
	{0x99, "ext-multi-write", vndWrite},
	{0xa0, "cpu-status-read-a0", vndRead},
	{0xc2, "pc10-block-read", vndRead},
	{0xc3, "pc10-block-write", vndWrite},
	{0xc4, "pc10-multi-read", vndRead},
	{0xc5, "pc10-multi-write", vndWrite},
	{0xca, "fr-register", vndWrite},
})

var toyoFlags = [4]string{vndWrite: AttrToyopucWrite}

// toyoCode renders "1c" or, for command 0x32, "32/11".
func toyoCode(c uint16) string {
	h := vndHex4(c)
	if c > 0xff {
		return h[:2] + "/" + h[2:]
	}
	return h[2:]
}

// toyoKey returns the table key of a command whose CMD byte starts b.
func toyoKey(b []byte) uint16 {
	if b[0] == 0x32 && len(b) > 1 {
		return 0x3200 | uint16(b[1])
	}
	return uint16(b[0])
}

// toyoRequestOK checks a command's length (l, from CMD on) against the
// layout the public builders give for the fixed-size ones.
func toyoRequestOK(key uint16, l int) bool {
	switch key {
	case 0x1c, 0x1e: // address, count
		return l == 5
	case 0x20: // bit address
		return l == 3
	case 0x94, 0x96: // No., address, count
		return l == 6
	case 0x3211, 0x3270, 0xa0: // subcommand
		return l == 3
	case 0x3271: // subcommand, 7 BCD clock bytes
		return l == 10
	case 0xc2: // 32-bit address, count
		return l == 7
	case 0xca: // Ex No.
		return l == 2
	case 0x60: // link, station, ENQ, inner LL LH CMD
		return l >= 8
	}
	_, known := toyoServices.lookup(key)
	return known && l >= 2
}

// toyoHeader checks a frame header at the start of b and returns the
// frame's length.
func toyoHeader(b []byte) (int, bool) {
	if len(b) < toyoHeaderLen {
		return 0, false
	}
	l := int(binary.LittleEndian.Uint16(b[2:]))
	if l < 1 || l > toyoMaxLen {
		return 0, false
	}
	if len(b) < 4+min(l, 3) {
		// Too little to check the command: the caller waits for the
		// rest (Probe only accepts whole frames).
		return 4 + l, b[0] == toyoFTCommand && b[1] == 0 || b[0] == toyoFTResp && (b[1] == 0 || b[1] == toyoRCNAK)
	}
	switch {
	case b[0] == toyoFTCommand && b[1] == 0:
		return 4 + l, toyoRequestOK(toyoKey(b[4:min(len(b), 4+l)]), l)
	case b[0] == toyoFTResp && b[1] == toyoRCNAK:
		return 4 + l, true
	case b[0] == toyoFTResp && b[1] == 0:
		_, known := toyoServices.lookup(toyoKey(b[4:min(len(b), 4+l)]))
		return 4 + l, known
	}
	return 0, false
}

// Toyopuc reads the TOYOPUC computer link of JTEKT PLCs over TCP and
// UDP. A frame header with a known command whose length fits confirms
// it. It learns the PLC (role, class plc, vendor JTEKT) and its clients,
// the commands each client sends (dissect.AttrService, Peer the client)
// with a flag for writes, the relay paths the PLC forwards commands
// along (a relayed command is reported on the relaying PLC, the only one
// on the wire), the CPU status it reports (run/stop, PC10/PC3 mode, failures)
// and error responses. The computer link carries no model, firmware or
// name: the PLC is reported by its role and state.
type Toyopuc struct{}

// NewToyopuc returns a Toyopuc dissector.
func NewToyopuc() *Toyopuc { return &Toyopuc{} }

// Name returns "toyopuc".
func (*Toyopuc) Name() string { return "toyopuc" }

// Wants asks for TCP 1025 and 1026 and UDP 1027.
func (*Toyopuc) Wants() dissect.Wants {
	return dissect.Wants{TCPPorts: ToyopucTCPPorts, UDPPorts: ToyopucUDPPorts}
}

type toyoFlow struct {
	s        [2]dissect.Stream
	services bitset256
	other    vndCodes
	naks     bitset256
	paths    [toyoMaxPaths][toyoMaxHops]uint32 // link<<16 | station, +1 in the top byte
	npaths   uint8
	state    uint32 // last CPU state emitted, +1
	roles    bool
}

// Probe accepts a segment or datagram starting with a whole valid frame;
// a datagram must hold exactly one.
func (t *Toyopuc) Probe(p *dissect.Packet) bool {
	if p.Flow == nil {
		return false
	}
	n, ok := toyoHeader(p.Payload)
	if !ok || len(p.Payload) < n {
		return false
	}
	switch p.Flow.Proto {
	case capture.ProtoUDP:
		return len(p.Payload) == n
	case capture.ProtoTCP:
		return true
	}
	return false
}

// Handle reads the frames of a segment or datagram.
func (t *Toyopuc) Handle(p *dissect.Packet, out dissect.Sink) {
	if p.Flow == nil || len(p.Payload) == 0 {
		return
	}
	st := flowState[toyoFlow](p.Flow)
	switch p.Flow.Proto {
	case capture.ProtoUDP:
		if n, ok := toyoHeader(p.Payload); ok && n == len(p.Payload) {
			t.frame(p, st, p.Payload, out)
		}
	case capture.ProtoTCP:
		tcpRecords(&st.s[p.Dir&1], p, toyoHeaderLen, toyoHeader, func(b []byte) { t.frame(p, st, b, out) })
	}
}

// frame reads one whole frame.
func (t *Toyopuc) frame(p *dissect.Packet, st *toyoFlow, b []byte, out dissect.Sink) {
	plc, cli := p.DstIP, p.SrcIP
	if b[0] == toyoFTResp {
		plc, cli = p.SrcIP, p.DstIP
	}
	if !st.roles {
		st.roles = true
		vndEmit(out, p, "toyopuc", plc, dissect.AttrRole, RoleToyopucServer, netip.Addr{})
		vndEmit(out, p, "toyopuc", cli, dissect.AttrRole, RoleToyopucClient, netip.Addr{})
		vndEmit(out, p, "toyopuc", plc, dissect.AttrClass, dissect.ClassPLC, netip.Addr{})
		vndEmit(out, p, "toyopuc", plc, dissect.AttrVendor, "JTEKT", netip.Addr{})
	}
	body := b[4:] // CMD and data
	switch {
	case b[0] == toyoFTCommand:
		t.command(p, st, body, plc, cli, out)
	case b[1] == toyoRCNAK:
		if len(body) == 1 && st.naks.add(int(body[0])) {
			vndEmit(out, p, "toyopuc", plc, AttrToyopucNAK, "toyopuc nak 0x"+vndHex4(uint16(body[0]))[2:], cli)
		}
	case (body[0] == 0x32 && len(body) == 11 && body[1] == 0x11 && body[2] == 0x00) ||
		(body[0] == 0xa0 && len(body) == 11 && body[1] == 0x01 && body[2] == 0x10):
		t.status(p, st, plc, body[3], body[4], out)
	}
}

// command reports a command and, through relays, the commands it wraps.
func (t *Toyopuc) command(p *dissect.Packet, st *toyoFlow, b []byte, plc, cli netip.Addr, out dissect.Sink) {
	var hops [toyoMaxHops]uint32
	n := 0
	for len(b) > 0 {
		vndService(out, p, "toyopuc", toyoServices, &st.services, &st.other, plc, cli, toyoKey(b), toyoFlags)
		// A relay: link, station (LE), ENQ 0x05, inner LL LH, inner CMD.
		if b[0] != toyoRelay || len(b) < 8 || b[4] != 0x05 || n == toyoMaxHops {
			break
		}
		hops[n] = 1<<24 | uint32(b[1])<<16 | uint32(binary.LittleEndian.Uint16(b[2:]))
		n++
		l := int(binary.LittleEndian.Uint16(b[5:]))
		b = b[7:min(len(b), 7+l)]
	}
	if n > 0 {
		t.relay(p, st, plc, cli, hops, out)
	}
}

// relay emits a relay path the first time the flow shows it.
func (t *Toyopuc) relay(p *dissect.Packet, st *toyoFlow, plc, cli netip.Addr, hops [toyoMaxHops]uint32, out dissect.Sink) {
	for i := 0; i < int(st.npaths); i++ {
		if st.paths[i] == hops {
			return
		}
	}
	if int(st.npaths) == toyoMaxPaths {
		return
	}
	st.paths[st.npaths] = hops
	st.npaths++
	var sb strings.Builder
	for i, h := range hops {
		if h == 0 {
			break
		}
		if i > 0 {
			sb.WriteString(" > ")
		}
		sb.WriteString("link 0x")
		sb.WriteString(vndHex4(uint16(h >> 16 & 0xff))[2:])
		sb.WriteString(" station 0x")
		sb.WriteString(vndHex4(uint16(h)))
	}
	vndEmit(out, p, "toyopuc", plc, AttrToyopucRelay, sb.String(), cli)
}

// status emits the CPU state (Data1 and Data2 of the CPU status reply)
// when it changes.
func (t *Toyopuc) status(p *dissect.Packet, st *toyoFlow, plc netip.Addr, d1, d2 byte, out dissect.Sink) {
	key := (uint32(d1&0xc3)<<8 | uint32(d2&0xe0)) + 1
	if st.state == key {
		return
	}
	st.state = key
	var parts []string
	switch {
	case d1&0x80 != 0:
		parts = append(parts, "run")
	case d1&0x40 != 0:
		parts = append(parts, "stop")
	default:
		parts = append(parts, "not running")
	}
	if d1&0x01 != 0 {
		parts = append(parts, "PC10 mode")
	}
	if d1&0x02 != 0 {
		parts = append(parts, "PC3 mode")
	}
	for _, f := range [...]struct {
		bit  byte
		name string
	}{{0x80, "fatal failure"}, {0x40, "faint failure"}, {0x20, "alarm"}} {
		if d2&f.bit != 0 {
			parts = append(parts, f.name)
		}
	}
	vndEmit(out, p, "toyopuc", plc, AttrToyopucCPUState, strings.Join(parts, ", "), netip.Addr{})
}

func init() { register(100, "toyopuc", func() dissect.Dissector { return NewToyopuc() }) }
