package ot

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
)

// IEC104Port is the registered TCP port of IEC 60870-5-104.
const IEC104Port = 2404

// IEC 60870-5-104 roles (dissect.AttrRole values): the controlling station
// (SCADA master, gateway) starts data transfer and sends commands; the
// controlled station (RTU, IED, substation gateway) sends monitoring data.
const (
	RoleIEC104Controlling = "iec104-controlling"
	RoleIEC104Controlled  = "iec104-controlled"
)

// Attributes the IEC 104 dissector emits besides the dissect.Attr* ones.
const (
	// AttrIEC104CommonAddresses is emitted about a controlled station each
	// time a new common address of ASDU is seen in its traffic: the sorted,
	// comma-separated addresses seen.
	AttrIEC104CommonAddresses = "iec104.common_addresses"
	// AttrIEC104Control flags a controlling station (Peer) sending process
	// commands (C_SC ... C_BO, types 45-64). Value as dissect.AttrService.
	AttrIEC104Control = "iec104.control"
	// AttrIEC104Interrogation flags (counter) interrogation commands
	// (C_IC_NA_1, C_CI_NA_1).
	AttrIEC104Interrogation = "iec104.interrogation"
	// AttrIEC104ClockSync flags clock synchronisation (C_CS_NA_1).
	AttrIEC104ClockSync = "iec104.clock_sync"
	// AttrIEC104ResetProcess flags reset process commands (C_RP_NA_1).
	AttrIEC104ResetProcess = "iec104.reset_process"
	// AttrIEC104Parameter flags parameter loading (P_ME_*, P_AC_NA_1).
	AttrIEC104Parameter = "iec104.parameter"
	// AttrIEC104File flags file transfer (F_* types 120-127).
	AttrIEC104File = "iec104.file"
	// AttrIEC104StartDT flags a controlling station (Peer) starting data
	// transfer (U-format STARTDT act).
	AttrIEC104StartDT = "iec104.startdt"
)

// DefaultIEC104Stations bounds the controlled stations whose common
// addresses an IEC104 remembers; each keeps at most iec104MaxCAs.
const (
	DefaultIEC104Stations = 4096
	iec104MaxCAs          = 64
)

// Type identifications (IEC 60870-5-101 §7.2.1.1, IEC 60870-5-104 §8).
var iec104TypeNames = [128]string{
	1: "M_SP_NA_1", 2: "M_SP_TA_1", 3: "M_DP_NA_1", 4: "M_DP_TA_1", 5: "M_ST_NA_1", 6: "M_ST_TA_1",
	7: "M_BO_NA_1", 8: "M_BO_TA_1", 9: "M_ME_NA_1", 10: "M_ME_TA_1", 11: "M_ME_NB_1", 12: "M_ME_TB_1",
	13: "M_ME_NC_1", 14: "M_ME_TC_1", 15: "M_IT_NA_1", 16: "M_IT_TA_1", 17: "M_EP_TA_1", 18: "M_EP_TB_1",
	19: "M_EP_TC_1", 20: "M_PS_NA_1", 21: "M_ME_ND_1", 30: "M_SP_TB_1", 31: "M_DP_TB_1", 32: "M_ST_TB_1",
	33: "M_BO_TB_1", 34: "M_ME_TD_1", 35: "M_ME_TE_1", 36: "M_ME_TF_1", 37: "M_IT_TB_1", 38: "M_EP_TD_1",
	39: "M_EP_TE_1", 40: "M_EP_TF_1", 45: "C_SC_NA_1", 46: "C_DC_NA_1", 47: "C_RC_NA_1", 48: "C_SE_NA_1",
	49: "C_SE_NB_1", 50: "C_SE_NC_1", 51: "C_BO_NA_1", 58: "C_SC_TA_1", 59: "C_DC_TA_1", 60: "C_RC_TA_1",
	61: "C_SE_TA_1", 62: "C_SE_TB_1", 63: "C_SE_TC_1", 64: "C_BO_TA_1", 70: "M_EI_NA_1", 100: "C_IC_NA_1",
	101: "C_CI_NA_1", 102: "C_RD_NA_1", 103: "C_CS_NA_1", 104: "C_TS_NA_1", 105: "C_RP_NA_1", 106: "C_CD_NA_1",
	107: "C_TS_TA_1", 110: "P_ME_NA_1", 111: "P_ME_NB_1", 112: "P_ME_NC_1", 113: "P_AC_NA_1", 120: "F_FR_NA_1",
	121: "F_SR_NA_1", 122: "F_SC_NA_1", 123: "F_LS_NA_1", 124: "F_AF_NA_1", 125: "F_SG_NA_1", 126: "F_DR_TA_1",
	127: "F_SC_NB_1",
}

var iec104Services [128]string

func init() {
	for t, n := range iec104TypeNames {
		if n != "" {
			iec104Services[t] = "iec104:" + strconv.Itoa(t) + " " + n
		}
	}
}

// IEC104Service returns the dissect.AttrService value of type id t:
// "iec104:45 C_SC_NA_1", or "" for a type id not defined.
func IEC104Service(t uint8) string {
	if t >= 128 {
		return ""
	}
	return iec104Services[t]
}

// iec104Monitor reports whether type id t is only sent by controlled
// stations (process information and system information in the monitor
// direction).
func iec104Monitor(t uint8) bool { return t >= 1 && t <= 44 || t == 70 }

func iec104Flag(t uint8) string {
	switch {
	case t >= 45 && t <= 64:
		return AttrIEC104Control
	case t == 100 || t == 101:
		return AttrIEC104Interrogation
	case t == 103:
		return AttrIEC104ClockSync
	case t == 105:
		return AttrIEC104ResetProcess
	case t >= 110 && t <= 113:
		return AttrIEC104Parameter
	case t >= 120 && t <= 127:
		return AttrIEC104File
	}
	return ""
}

// APCI (IEC 60870-5-104 §5): start 0x68, length of the APDU after it
// (4..253), four control octets; I format (bit 0 of the first 0) carries
// an ASDU: type id, variable structure qualifier, cause of transmission
// (2 octets), common address (2 octets, LE), information objects.
const (
	iec104Start     = 0x68
	iec104MaxLen    = 253
	iec104UStartAct = 0x07
	iec104UStartCon = 0x0b
	iec104UStopAct  = 0x13
	iec104UStopCon  = 0x23
	iec104UTestAct  = 0x43
	iec104UTestCon  = 0x83
	iec104COTAct    = 6
	iec104COTDeact  = 8
)

// iec104APDU checks the APCI at the start of b and returns the APDU's
// whole length.
func iec104APDU(b []byte) (n int, ok bool) {
	if len(b) < 6 || b[0] != iec104Start || b[1] < 4 || b[1] > iec104MaxLen {
		return 0, false
	}
	c := b[2]
	switch {
	case c&1 == 0: // I format: carries an ASDU
		if b[1] < 4+6 || b[4]&1 != 0 {
			return 0, false
		}
	case c&3 == 1: // S format
		if b[1] != 4 || c != 1 || b[3] != 0 || b[4]&1 != 0 {
			return 0, false
		}
	default: // U format: exactly one function bit
		if b[1] != 4 || b[3] != 0 || b[4] != 0 || b[5] != 0 {
			return 0, false
		}
		switch c {
		case iec104UStartAct, iec104UStartCon, iec104UStopAct, iec104UStopCon, iec104UTestAct, iec104UTestCon:
		default:
			return 0, false
		}
	}
	return 2 + int(b[1]), true
}

// IEC104 reads IEC 60870-5-104. Port 2404 nominates it and a valid APCI
// confirms it; on other ports only a segment of whole U-format APDUs
// (STARTDT, STOPDT, TESTFR) is taken for it.
//
// It learns the controlling and controlled stations (from STARTDT/STOPDT
// activations, commands in activation, monitor-direction type ids), the
// common addresses of ASDU each controlled station answers for, and the
// type ids each controlling station uses with each controlled station
// (dissect.AttrService about the controlled station, Peer the
// controlling), flagging process commands, interrogations, clock
// synchronisation, reset process, parameter loading and file transfer
// when sent in activation.
//
// Each direction is put back in order (dissect.Stream); APDUs split over
// segments or several per segment are read; after a gap it resynchronises
// on the next valid APCI. Each fact is emitted once per flow (common
// addresses when the station's set grows).
//
// An IEC104 is safe for use by several goroutines; all the same, each
// pipeline worker should hold its own, as returned by All.
type IEC104 struct {
	// MaxStations bounds the table of common addresses per station;
	// DefaultIEC104Stations when zero.
	MaxStations int

	mu  sync.Mutex
	cas map[netip.Addr][]uint16

	onASDU func(p *dissect.Packet, asdu []byte)
}

// NewIEC104 returns an IEC104 dissector with default bounds.
func NewIEC104() *IEC104 { return &IEC104{MaxStations: DefaultIEC104Stations} }

// Name returns "iec104".
func (*IEC104) Name() string { return "iec104" }

// Wants asks for TCP port 2404 and heuristic probing.
func (*IEC104) Wants() dissect.Wants {
	return dissect.Wants{TCPPorts: []uint16{IEC104Port}, Heuristic: true}
}

// Probe reports whether the segment is made of whole APDUs (on 2404, or
// the start of one after them), or, elsewhere, of U-format APDUs only.
func (*IEC104) Probe(p *dissect.Packet) bool {
	if p.Flow == nil || p.Flow.Proto != capture.ProtoTCP {
		return false
	}
	b := p.Payload
	onPort := p.Flow.Server.Port() == IEC104Port || p.Flow.Client.Port() == IEC104Port
	for i := 0; i < 16 && len(b) > 0; i++ {
		n, ok := iec104APDU(b)
		if !ok {
			return false
		}
		if !onPort && n != 6 || !onPort && b[2]&3 != 3 {
			return false
		}
		if n > len(b) {
			return onPort && i > 0
		}
		b = b[n:]
	}
	return len(b) == 0
}

type iec104Flow struct {
	s        [2]dissect.Stream
	services [2]uint64 // type ids emitted (bit per type id)
	flags    [2]uint64 // type ids flagged
	roles    bool
	startdt  bool
	cas      [8]uint16 // common addresses passed to the station table
	ncas     uint8
}

func (d *IEC104) state(p *dissect.Packet) *iec104Flow {
	if st, ok := p.Flow.State.(*iec104Flow); ok {
		return st
	}
	st := &iec104Flow{}
	p.Flow.State = st
	return st
}

// Handle reads the APDUs of a claimed flow's packet.
func (d *IEC104) Handle(p *dissect.Packet, out dissect.Sink) {
	if p.Flow == nil || p.Flow.Proto != capture.ProtoTCP || len(p.Payload) == 0 {
		return
	}
	st := d.state(p)
	s := &st.s[p.Dir&1]
	s.Push(p.TCPSeq, p.Payload)
	b := s.Bytes()
	off := 0
	for len(b)-off >= 6 {
		n, ok := iec104APDU(b[off:])
		if !ok {
			off++
			for off < len(b) && b[off] != iec104Start {
				off++
			}
			continue
		}
		if len(b)-off < n {
			break
		}
		d.apdu(p, st, b[off:off+n], out)
		off += n
	}
	if off < len(b) && b[off] != iec104Start {
		off = len(b)
	}
	s.Consume(off)
}

func (d *IEC104) apdu(p *dissect.Packet, st *iec104Flow, a []byte, out dissect.Sink) {
	c := a[2]
	if !st.roles && c != iec104UStartAct && c != iec104UStopAct && c&1 != 0 &&
		p.Flow.SawSYN && p.Flow.Server.Port() == IEC104Port {
		// Only test frames and acknowledgements so far: the controlling
		// station is the one that connected to the controlled station's
		// port 2404, where IEC 60870-5-104 has controlled stations listen.
		d.roles(p, st, p.Server(), p.Client(), out)
	}
	if c&3 == 3 {
		if (c == iec104UStartAct || c == iec104UStopAct) && !st.roles {
			d.roles(p, st, p.DstIP, p.SrcIP, out)
		}
		if c == iec104UStartAct && !st.startdt {
			st.startdt = true
			iec104Emit(p, out, p.DstIP, AttrIEC104StartDT, "iec104:startdt", p.SrcIP)
		}
		return
	}
	if c&1 != 0 {
		return
	}
	asdu := a[6:]
	if d.onASDU != nil {
		d.onASDU(p, asdu)
	}
	typ, cot := asdu[0], asdu[2]&0x3f
	if typ >= 128 || iec104TypeNames[typ] == "" {
		return
	}
	// Who is the controlled station: the sender of monitor information
	// and of confirmations; the receiver of activations.
	controlled, controlling := p.SrcIP, p.DstIP
	if !iec104Monitor(typ) && (cot == iec104COTAct || cot == iec104COTDeact) {
		controlled, controlling = controlling, controlled
	}
	if !st.roles {
		d.roles(p, st, controlled, controlling, out)
	}
	d.commonAddress(p, st, controlled, binary.LittleEndian.Uint16(asdu[4:]), out)
	bit := uint64(1) << (typ & 63)
	if st.services[typ>>6]&bit == 0 {
		st.services[typ>>6] |= bit
		iec104Emit(p, out, controlled, dissect.AttrService, iec104Services[typ], controlling)
	}
	if f := iec104Flag(typ); f != "" && cot == iec104COTAct && controlling == p.SrcIP && st.flags[typ>>6]&bit == 0 {
		st.flags[typ>>6] |= bit
		iec104Emit(p, out, controlled, f, iec104Services[typ], controlling)
	}
}

func (d *IEC104) roles(p *dissect.Packet, st *iec104Flow, controlled, controlling netip.Addr, out dissect.Sink) {
	st.roles = true
	iec104Emit(p, out, controlled, dissect.AttrRole, RoleIEC104Controlled, netip.Addr{})
	iec104Emit(p, out, controlling, dissect.AttrRole, RoleIEC104Controlling, netip.Addr{})
}

// commonAddress adds ca to the controlled station's set and emits the set
// when it grew.
func (d *IEC104) commonAddress(p *dissect.Packet, st *iec104Flow, station netip.Addr, ca uint16, out dissect.Sink) {
	for i := range int(st.ncas) {
		if st.cas[i] == ca {
			return
		}
	}
	if int(st.ncas) < len(st.cas) {
		st.cas[st.ncas] = ca
		st.ncas++
	}
	d.mu.Lock()
	if d.cas == nil {
		d.cas = map[netip.Addr][]uint16{}
	}
	set, ok := d.cas[station]
	if !ok {
		max := d.MaxStations
		if max <= 0 {
			max = DefaultIEC104Stations
		}
		if len(d.cas) >= max {
			for k := range d.cas {
				delete(d.cas, k)
				break
			}
		}
	}
	i, found := slices.BinarySearch(set, ca)
	if found || len(set) >= iec104MaxCAs {
		d.mu.Unlock()
		return
	}
	set = slices.Insert(set, i, ca)
	d.cas[station] = set
	var sb strings.Builder
	for j, v := range set {
		if j > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.Itoa(int(v)))
	}
	d.mu.Unlock()
	iec104Emit(p, out, station, AttrIEC104CommonAddresses, sb.String(), netip.Addr{})
}

func iec104Emit(p *dissect.Packet, out dissect.Sink, ip netip.Addr, attr, value string, peer netip.Addr) {
	out.Observe(dissect.Observation{Time: p.Time, IP: ip, Attr: attr, Value: value, Protocol: "iec104", Peer: peer})
}

func init() { register(23, "iec104", func() dissect.Dissector { return NewIEC104() }) }
