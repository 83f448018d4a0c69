package ot

import (
	"encoding/binary"
	"net/netip"
	"strconv"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
)

// OptoMMPPort is the TCP and UDP port of Opto 22's OptoMMP memory-mapped
// protocol (SNAP PAC, groov EPIC and their I/O units).
const OptoMMPPort = 2001

// OptoMMP roles (dissect.AttrRole values).
const (
	RoleOptoMMPServer = "optommp-server" // the controller or brain
	RoleOptoMMPClient = "optommp-client" // PAC Control, PAC Manager, HMI
)

// Attributes the OptoMMP dissector emits besides the dissect.Attr* ones.
const (
	// AttrOptoMMPUnitType is the unit type code of the status area (hex).
	AttrOptoMMPUnitType = "optommp.unit_type"
	// AttrOptoMMPWrite flags a client (Peer) writing the server's memory
	// map: the areas written, sorted ("optommp:write config,scratchpad";
	// areas: status, config, io, scratchpad, other).
	AttrOptoMMPWrite = "optommp.write"
)

// OptoMMP packets are IEEE 1394 asynchronous transactions (OptoMMP
// Protocol Guide, form 1465): destination id (2), transaction label (6
// bits) and retry code (2), tcode (4 bits) and priority (4), source id (2),
// then for requests the 48-bit destination offset (2 + 4), for responses
// the rcode (4 bits) and 44 reserved bits; block transactions add the
// data length (2) and extended tcode (2) before the data; quadlets carry
// 4 data bytes instead.
const (
	mmpWriteQuadReq  = 0
	mmpWriteBlockReq = 1
	mmpWriteResp     = 2
	mmpReadQuadReq   = 4
	mmpReadBlockReq  = 5
	mmpReadQuadResp  = 6
	mmpReadBlockResp = 7
	mmpMaxBlock      = 2048
	mmpPending       = 8
)

// The status area of the memory map (OptoMMP Protocol Guide, "Status
// Read" area at FFFF F030 0000): firmware version at 1C (4 bytes,
// a.b.c.d), unit type at 20 (4), unit description at 80 (text).
const (
	mmpStatusBase  = 0xfffff0300000
	mmpFirmware    = mmpStatusBase + 0x1c
	mmpUnitType    = mmpStatusBase + 0x20
	mmpDescription = mmpStatusBase + 0x80
	mmpDescLen     = 32
)

// OptoMMP reads Opto 22's OptoMMP on TCP and UDP 2001. A well-formed
// request (tcode, lengths agreeing with the datagram or segment) confirms
// it. It learns the roles, writes to the memory map (flagged by area), and
// from the replies to reads of the status area the firmware version, unit
// type and unit description (the model). A server answering a status read
// is a controller or I/O brain; no class is guessed.
type OptoMMP struct{}

// NewOptoMMP returns an OptoMMP dissector.
func NewOptoMMP() *OptoMMP { return &OptoMMP{} }

// Name returns "optommp".
func (*OptoMMP) Name() string { return "optommp" }

// Wants asks for TCP and UDP 2001.
func (*OptoMMP) Wants() dissect.Wants {
	return dissect.Wants{TCPPorts: []uint16{OptoMMPPort}, UDPPorts: []uint16{OptoMMPPort}}
}

type mmpRead struct {
	tl     uint8
	offset uint64
}

type mmpFlow struct {
	pend   [mmpPending]mmpRead
	npend  uint8
	writes uint8 // write areas flagged
	flags  uint8
}

const (
	mmpEmRoles = 1 << iota
	mmpEmFirmware
	mmpEmUnitType
	mmpEmDesc
)

// mmpPacket checks one packet at the start of b and returns its tcode and
// length.
func mmpPacket(b []byte) (tcode uint8, n int, ok bool) {
	if len(b) < 12 {
		return 0, 0, false
	}
	tcode = b[3] >> 4
	switch tcode {
	case mmpWriteResp, mmpReadQuadReq:
		n = 12
	case mmpWriteQuadReq, mmpReadQuadResp:
		n = 16
	case mmpReadBlockReq:
		n = 16
	case mmpWriteBlockReq, mmpReadBlockResp:
		if len(b) < 16 {
			return 0, 0, false
		}
		l := int(binary.BigEndian.Uint16(b[12:]))
		if l > mmpMaxBlock {
			return 0, 0, false
		}
		n = 16 + l
	default:
		return 0, 0, false
	}
	if b[3]&0x0f != 0 || b[2]&0x03 != 0 { // priority and retry code are 0
		return 0, 0, false
	}
	return tcode, n, true
}

// Probe accepts a request filling the datagram or segment exactly.
func (m *OptoMMP) Probe(p *dissect.Packet) bool {
	if p.Flow == nil || (p.Flow.Proto != capture.ProtoTCP && p.Flow.Proto != capture.ProtoUDP) || p.Dir != flow.FromClient {
		return false
	}
	tcode, n, ok := mmpPacket(p.Payload)
	if !ok || n != len(p.Payload) {
		return false
	}
	switch tcode {
	case mmpWriteQuadReq, mmpWriteBlockReq, mmpReadQuadReq, mmpReadBlockReq:
		return binary.BigEndian.Uint16(p.Payload[6:]) == 0xffff // offsets live in FFFF xxxx xxxx
	}
	return false
}

// Handle reads the packets of a datagram or segment (each segment is
// expected to start a packet, as the protocol's clients send them).
func (m *OptoMMP) Handle(p *dissect.Packet, out dissect.Sink) {
	if p.Flow == nil || len(p.Payload) == 0 {
		return
	}
	st, ok := p.Flow.State.(*mmpFlow)
	if !ok {
		st = &mmpFlow{}
		p.Flow.State = st
	}
	b := p.Payload
	for i := 0; i < 16 && len(b) >= 12; i++ {
		tcode, n, ok := mmpPacket(b)
		if !ok || n > len(b) {
			return
		}
		m.packet(p, st, tcode, b[:n], out)
		b = b[n:]
	}
}

func (m *OptoMMP) packet(p *dissect.Packet, st *mmpFlow, tcode uint8, b []byte, out dissect.Sink) {
	if st.flags&mmpEmRoles == 0 {
		st.flags |= mmpEmRoles
		vndEmit(out, p, "optommp", p.Server(), dissect.AttrRole, RoleOptoMMPServer, netip.Addr{})
		vndEmit(out, p, "optommp", p.Client(), dissect.AttrRole, RoleOptoMMPClient, netip.Addr{})
	}
	tl := b[2] >> 2
	offset := uint64(binary.BigEndian.Uint16(b[6:]))<<32 | uint64(binary.BigEndian.Uint32(b[8:]))
	switch tcode {
	case mmpReadQuadReq, mmpReadBlockReq:
		if st.npend == mmpPending {
			copy(st.pend[:], st.pend[1:])
			st.npend--
		}
		st.pend[st.npend] = mmpRead{tl: tl, offset: offset}
		st.npend++
	case mmpWriteQuadReq, mmpWriteBlockReq:
		if _, bit := mmpArea(offset); st.writes&bit == 0 {
			st.writes |= bit
			var areas []string
			for _, a := range mmpAreas {
				if st.writes&a.bit != 0 {
					areas = append(areas, a.name)
				}
			}
			vndEmit(out, p, "optommp", p.Server(), AttrOptoMMPWrite, "optommp:write "+vndJoin(areas, ","), p.Client())
		}
	case mmpReadQuadResp, mmpReadBlockResp:
		if b[6]>>4 != 0 { // rcode: not complete
			return
		}
		var req mmpRead
		found := false
		for i := 0; i < int(st.npend); i++ {
			if st.pend[i].tl == tl {
				req, found = st.pend[i], true
				copy(st.pend[i:], st.pend[i+1:st.npend])
				st.npend--
				break
			}
		}
		if !found {
			return
		}
		data := b[12:]
		if tcode == mmpReadBlockResp {
			data = b[16:]
		}
		m.status(p, st, req.offset, data, out)
	}
}

var mmpAreas = []struct {
	name string
	bit  uint8
}{{"status", 1}, {"config", 2}, {"scratchpad", 4}, {"io", 8}, {"other", 16}}

// mmpArea names the memory-map area of a write.
func mmpArea(offset uint64) (string, uint8) {
	switch o := offset & 0xffffffff; {
	case o >= 0xf0300000 && o < 0xf0310000:
		return "status", 1
	case o >= 0xf0380000 && o < 0xf0400000, o >= 0xf0100000 && o < 0xf0200000:
		return "config", 2
	case o >= 0xf0d80000 && o < 0xf0e00000:
		return "scratchpad", 4
	case o >= 0xf0000000 && o < 0xf1000000:
		return "io", 8
	}
	return "other", 16
}

// status reads what a read of the status area returned: data holds the
// bytes from offset on.
func (m *OptoMMP) status(p *dissect.Packet, st *mmpFlow, offset uint64, data []byte, out dissect.Sink) {
	field := func(at uint64, n int) []byte {
		if at < offset || at-offset > uint64(len(data)) || int(at-offset)+n > len(data) {
			return nil
		}
		return data[at-offset : int(at-offset)+n]
	}
	srv := p.Server()
	if f := field(mmpFirmware, 4); f != nil && st.flags&mmpEmFirmware == 0 && (f[0]|f[1]|f[2]|f[3]) != 0 {
		st.flags |= mmpEmFirmware
		v := strconv.Itoa(int(f[0])) + "." + strconv.Itoa(int(f[1])) + "." + strconv.Itoa(int(f[2])) + "." + strconv.Itoa(int(f[3]))
		vndEmit(out, p, "optommp", srv, dissect.AttrFirmware, v, netip.Addr{})
	}
	if f := field(mmpUnitType, 4); f != nil && st.flags&mmpEmUnitType == 0 {
		if t := binary.BigEndian.Uint32(f); t != 0 {
			st.flags |= mmpEmUnitType
			vndEmit(out, p, "optommp", srv, AttrOptoMMPUnitType, strconv.FormatUint(uint64(t), 16), netip.Addr{})
		}
	}
	if st.flags&mmpEmDesc == 0 && mmpDescription >= offset && mmpDescription-offset < uint64(len(data)) {
		d := data[mmpDescription-offset:]
		if vndEmitText(out, p, "optommp", srv, dissect.AttrModel, d[:min(len(d), mmpDescLen)]) {
			st.flags |= mmpEmDesc
		}
	}
}

func init() { register(75, "optommp", func() dissect.Dissector { return NewOptoMMP() }) }
