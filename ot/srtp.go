package ot

import (
	"encoding/binary"
	"net/netip"
	"strconv"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
)

// SRTPPort is the TCP port of GE's Service Request Transport Protocol.
const SRTPPort = 18245

// SRTP roles (dissect.AttrRole values).
const (
	RoleSRTPServer = "srtp-server" // the PLC (Series 90, RX3i, RX7i)
	RoleSRTPClient = "srtp-client" // HMI, engineering (Proficy) or another PLC
)

// Attributes the SRTP dissector emits besides the dissect.Attr* ones.
const (
	// AttrSRTPWrite, AttrSRTPProgram and AttrSRTPControl flag a client
	// (Peer) writing memory, storing or loading programs and
	// configuration, and changing the PLC's state or privilege level.
	AttrSRTPWrite   = "srtp.write"
	AttrSRTPProgram = "srtp.program"
	AttrSRTPControl = "srtp.control"
	// AttrSRTPError is a server's error NACK (major/minor status), once
	// per flow per major status: "srtp nack 5/1".
	AttrSRTPError = "srtp.nack"
)

// Service request codes (DFRWS 2017 "Leveraging the SRTP protocol for
// over-the-network memory acquisition of a GE Fanuc Series 90-30", and
// the public Wireshark GE SRTP plug-in that follows it).
var srtpServices = newVndTable("srtp", func(c uint16) string { return "0x" + vndHex4(c)[2:] }, []vndCommand{
	{0x00, "plc-short-status", vndRead},
	{0x03, "return-control-program-names", vndRead},
	{0x04, "read-system-memory", vndRead},
	{0x05, "read-task-memory", vndRead},
	{0x06, "read-program-block-memory", vndRead},
	{0x07, "write-system-memory", vndWrite},
	{0x08, "write-task-memory", vndWrite},
	{0x09, "write-program-block-memory", vndWrite},
	{0x15, "establish-datagram", vndRead},
	{0x16, "update-datagram", vndRead},
	{0x17, "cancel-datagram", vndRead},
	{0x20, "programmer-logon", vndControl},
	{0x21, "change-privilege-level", vndControl},
	{0x22, "set-controller-id", vndProgram},
	{0x23, "set-plc-state", vndControl},
	{0x24, "set-plc-time-date", vndWrite},
	{0x25, "return-plc-time-date", vndRead},
	{0x38, "return-fault-table", vndRead},
	{0x39, "clear-fault-table", vndWrite},
	{0x3f, "program-store", vndProgram},
	{0x40, "program-load", vndProgram},
	{0x43, "return-controller-type-and-id", vndRead},
	{0x44, "toggle-force-system-memory", vndWrite},
	{0x48, "write-datagram", vndWrite},
})

var srtpFlags = [4]string{vndWrite: AttrSRTPWrite, vndProgram: AttrSRTPProgram, vndControl: AttrSRTPControl}

// SRTP messages: a 56-byte header, then text of the length at bytes 4-5
// (little endian). Byte 0: 00 connection request, 01 its reply, 02
// request, 03 reply. Byte 30: sequence number; byte 31: mailbox type
// (C0 initial request, 80 initial request with text, D4 completion ACK,
// 94 completion ACK with text, D1 error NACK); bytes 32-39 mailbox source
// and destination; byte 42: the service request code of a request, the
// major error status of a NACK (minor at 43).
const (
	srtpHeaderLen = 56
	srtpMaxText   = 8192
)

// SRTP reads GE SRTP on TCP 18245. The 56-byte header with a known type
// and mailbox type confirms it (or the all-zero connection request and
// its reply). It learns the roles, the service requests each client makes
// (dissect.AttrService, Peer the client) with flags for memory writes,
// program store/load and state or privilege changes, error NACKs, and
// the PLC state its ACK replies carry (see srtp_status.go). The data of
// the controller type and ID reply (service 0x43) has no public layout
// and is not read: the PLC is reported by its role and state.
type SRTP struct{}

// NewSRTP returns an SRTP dissector.
func NewSRTP() *SRTP { return &SRTP{} }

// Name returns "srtp".
func (*SRTP) Name() string { return "srtp" }

// Wants asks for TCP 18245.
func (*SRTP) Wants() dissect.Wants { return dissect.Wants{TCPPorts: []uint16{SRTPPort}} }

type srtpFlow struct {
	s        [2]dissect.Stream
	services bitset256
	other    vndCodes
	nacks    bitset256
	status   uint32 // last PLC status reported, +1
	roles    bool
}

// srtpHeader checks a message header and returns the message's length.
func srtpHeader(b []byte) (int, bool) {
	if len(b) < srtpHeaderLen {
		return 0, false
	}
	n := srtpHeaderLen + int(binary.LittleEndian.Uint16(b[4:]))
	switch b[0] {
	case 0x00, 0x01: // connection request and reply: header only
		return srtpHeaderLen, n == srtpHeaderLen
	case 0x02, 0x03:
	default:
		return 0, false
	}
	switch b[31] {
	case 0xc0, 0x80, 0xd4, 0x94, 0xd1:
	default:
		return 0, false
	}
	return n, n-srtpHeaderLen <= srtpMaxText
}

// Probe accepts a segment starting with a valid header.
func (s *SRTP) Probe(p *dissect.Packet) bool {
	if p.Flow == nil || p.Flow.Proto != capture.ProtoTCP {
		return false
	}
	_, ok := srtpHeader(p.Payload)
	return ok
}

// Handle reads the messages of a segment.
func (s *SRTP) Handle(p *dissect.Packet, out dissect.Sink) {
	if p.Flow == nil || p.Flow.Proto != capture.ProtoTCP || len(p.Payload) == 0 {
		return
	}
	st := flowState[srtpFlow](p.Flow)
	tcpRecords(&st.s[p.Dir&1], p, srtpHeaderLen, srtpHeader, func(b []byte) { s.message(p, st, b, out) })
}

func (s *SRTP) message(p *dissect.Packet, st *srtpFlow, b []byte, out dissect.Sink) {
	if !st.roles {
		st.roles = true
		vndEmit(out, p, "srtp", p.Server(), dissect.AttrRole, RoleSRTPServer, netip.Addr{})
		vndEmit(out, p, "srtp", p.Client(), dissect.AttrRole, RoleSRTPClient, netip.Addr{})
	}
	srv, cli := p.Server(), p.Client()
	switch {
	case b[0] == 0x02 && (b[31] == 0xc0 || b[31] == 0x80):
		vndService(out, p, "srtp", srtpServices, &st.services, &st.other, srv, cli, uint16(b[42]), srtpFlags)
	case b[0] == 0x03 && b[31] == 0xd4:
		s.status(p, st, b, out)
	case b[0] == 0x03 && b[31] == 0xd1:
		if st.nacks.add(int(b[42])) {
			vndEmit(out, p, "srtp", srv, AttrSRTPError,
				"srtp nack "+strconv.Itoa(int(b[42]))+"/"+strconv.Itoa(int(b[43])), cli)
		}
	}
}

func init() { register(69, "srtp", func() dissect.Dissector { return NewSRTP() }) }
