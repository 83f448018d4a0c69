package ot

import (
	"encoding/binary"
	"net/netip"
	"strconv"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
)

// CCIEFBPort is the UDP port of CC-Link IE Field Basic cyclic data.
const CCIEFBPort = 61450

// CC-Link IE Field Basic roles (dissect.AttrRole values).
const (
	RoleCCIEFBMaster = "cclink-iefb-master"
	RoleCCIEFBSlave  = "cclink-iefb-slave"
)

// Attributes the CC-Link IE Field Basic dissector emits.
const (
	// AttrCCIEFBStation is a slave's place in its master's cyclic data:
	// "group 1 station 3" (station numbers count occupied stations from
	// 1 in the order of the master's slave list).
	AttrCCIEFBStation = "cclinkiefb.station"
	// AttrCCIEFBGroup is a master's group: "group 1: 4 stations".
	AttrCCIEFBGroup = "cclinkiefb.group"
	// AttrCCIEFBVendorCode, AttrCCIEFBModelCode and AttrCCIEFBVersion are
	// the vendor code, model code and equipment version a slave states in
	// its responses (hex), when not zero.
	AttrCCIEFBVendorCode = "cclinkiefb.vendor_code"
	AttrCCIEFBModelCode  = "cclinkiefb.model_code"
	AttrCCIEFBVersion    = "cclinkiefb.equipment_version"
	// AttrCCIEFBSlaveError is a slave's error code, when not zero.
	AttrCCIEFBSlaveError = "cclinkiefb.slave_error"
)

// Cyclic data frames (CC-Link IE Field Basic specification, BAP-C2010;
// layout as implemented by rt-labs' open-source c-link stack). All
// numbers little endian except the subheader.
//
// Request, master to slaves: subheader 50 00, 00, FF, FF 03, 00, data
// length (from byte 9), 00 00, command 0E70, subcommand 0000 (15 bytes);
// protocol version (2), 0000, offset of cyclic info = 36 (2), 14 zero
// bytes; master local unit info (2), 0000, clock (8); master id (4, its
// IPv4 address), group no (1), 00, frame sequence (2), timeout (2),
// parallel-off timeout count (2), parameter no (2), total occupied
// stations n (2), cyclic transmission state (2), 0000; then n slave ids
// (4 each: the slave's IPv4 address, FFFFFFFF for the further stations of
// a slave occupying several), RY and RWw data.
//
// Response, slave to master: subheader D0 00, 00, FF, FF 03, 00, data
// length, 00 00 (11 bytes); protocol version (2), end code (2), offset =
// 40 (2), 14 zero bytes; vendor code (2), 0000, model code (4), equipment
// version (2), 0000, slave local unit info (2), slave error code (2),
// local management info (4); slave id (4), group no (1), 00, frame
// sequence (2); then RX and RWr data.
const (
	cciefbCommand      = 0x0e70
	cciefbReqMin       = 67
	cciefbRespMin      = 59
	cciefbMaxStations  = 16
	cciefbMultiStation = 0xffffffff
)

var cciefbHeader = [7]byte{0x00, 0x00, 0x00, 0xff, 0xff, 0x03, 0x00}

// CCIEFB reads CC-Link IE Field Basic cyclic data on UDP 61450. The
// SLMP-style header with command 0E70 and the cyclic header's offset
// confirm it. It learns the master (from its requests: its id, group and
// the number of occupied stations), each slave listed by the master with
// its group and station number, and what each slave says of itself in
// its responses (vendor code, model code, equipment version, error code).
// Facts are emitted once per flow, and again when they change.
type CCIEFB struct{}

// NewCCIEFB returns a CC-Link IE Field Basic dissector.
func NewCCIEFB() *CCIEFB { return &CCIEFB{} }

// Name returns "cclink-iefb".
func (*CCIEFB) Name() string { return "cclink-iefb" }

// Wants asks for UDP 61450.
func (*CCIEFB) Wants() dissect.Wants { return dissect.Wants{UDPPorts: []uint16{CCIEFBPort}} }

type cciefbFlow struct {
	// Request side: the slave list last reported (IPv4 as uint32), the
	// group and station count.
	slaves [cciefbMaxStations]uint32
	group  uint16 // group<<8 | stations, +1
	master bool
	// Response side: the slave's last reported identity and error.
	ident   [4]uint32 // vendor, model, version, error; +1 when set
	station bool
}

// cciefbFrame reports whether b is a whole cyclic request or response.
func cciefbFrame(b []byte) (resp, ok bool) {
	if len(b) < 15 || b[1] != cciefbHeader[1] || [5]byte(b[2:7]) != [5]byte(cciefbHeader[2:7]) {
		return false, false
	}
	if int(binary.LittleEndian.Uint16(b[7:])) != len(b)-9 {
		return false, false
	}
	switch b[0] {
	case 0x50:
		if len(b) < cciefbReqMin || binary.LittleEndian.Uint16(b[11:]) != cciefbCommand || binary.LittleEndian.Uint16(b[13:]) != 0 ||
			binary.LittleEndian.Uint16(b[19:]) != 36 {
			return false, false
		}
		return false, true
	case 0xd0:
		if len(b) < cciefbRespMin || binary.LittleEndian.Uint16(b[15:]) != 40 {
			return false, false
		}
		return true, true
	}
	return false, false
}

// Probe accepts a whole cyclic request or response.
func (c *CCIEFB) Probe(p *dissect.Packet) bool {
	if p.Flow == nil || p.Flow.Proto != capture.ProtoUDP {
		return false
	}
	_, ok := cciefbFrame(p.Payload)
	return ok
}

// Handle reads a cyclic request or response.
func (c *CCIEFB) Handle(p *dissect.Packet, out dissect.Sink) {
	if p.Flow == nil || p.Flow.Proto != capture.ProtoUDP {
		return
	}
	b := p.Payload
	resp, ok := cciefbFrame(b)
	if !ok {
		return
	}
	st, isSt := p.Flow.State.(*cciefbFlow)
	if !isSt {
		st = &cciefbFlow{}
		p.Flow.State = st
	}
	if resp {
		c.response(p, st, b, out)
	} else {
		c.request(p, st, b, out)
	}
}

func (c *CCIEFB) request(p *dissect.Packet, st *cciefbFlow, b []byte, out dissect.Sink) {
	master := p.SrcIP
	if !st.master {
		st.master = true
		vndEmit(out, p, "cclink-iefb", master, dissect.AttrRole, RoleCCIEFBMaster, netip.Addr{})
	}
	group := b[51]
	n := int(binary.LittleEndian.Uint16(b[61:]))
	if n == 0 || n > cciefbMaxStations || len(b) < cciefbReqMin+4*n {
		return
	}
	if g := uint16(group)<<8 | uint16(n) + 1; st.group != g {
		st.group = g
		vndEmit(out, p, "cclink-iefb", master, AttrCCIEFBGroup,
			"group "+strconv.Itoa(int(group))+": "+strconv.Itoa(n)+" stations", netip.Addr{})
	}
	for i := 0; i < n; i++ {
		id := binary.LittleEndian.Uint32(b[cciefbReqMin+4*i:])
		if id == st.slaves[i] {
			continue
		}
		st.slaves[i] = id
		if id == cciefbMultiStation || id == 0 {
			continue
		}
		slave := netip.AddrFrom4([4]byte{byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)})
		vndEmit(out, p, "cclink-iefb", slave, dissect.AttrRole, RoleCCIEFBSlave, netip.Addr{})
		vndEmit(out, p, "cclink-iefb", slave, AttrCCIEFBStation,
			"group "+strconv.Itoa(int(group))+" station "+strconv.Itoa(i+1), master)
	}
}

func (c *CCIEFB) response(p *dissect.Packet, st *cciefbFlow, b []byte, out dissect.Sink) {
	slave := p.SrcIP
	if !st.station {
		st.station = true
		vndEmit(out, p, "cclink-iefb", slave, dissect.AttrRole, RoleCCIEFBSlave, netip.Addr{})
	}
	vals := [4]uint32{
		uint32(binary.LittleEndian.Uint16(b[31:])),
		binary.LittleEndian.Uint32(b[35:]),
		uint32(binary.LittleEndian.Uint16(b[39:])),
		uint32(binary.LittleEndian.Uint16(b[45:])),
	}
	attrs := [4]string{AttrCCIEFBVendorCode, AttrCCIEFBModelCode, AttrCCIEFBVersion, AttrCCIEFBSlaveError}
	for i, v := range vals {
		if v == 0 || st.ident[i] == v+1 {
			continue
		}
		st.ident[i] = v + 1
		vndEmit(out, p, "cclink-iefb", slave, attrs[i], strconv.FormatUint(uint64(v), 16), netip.Addr{})
	}
}

func init() { register(68, "cclink-iefb", func() dissect.Dissector { return NewCCIEFB() }) }
