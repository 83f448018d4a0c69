package ot

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
)

// Profinet EtherType and the UDP port of its connection management
// (DCE/RPC, "PNIO-CM").
const (
	EtherTypeProfinet = 0x8892
	PNIOCMPort        = 34964
)

// Profinet roles (dissect.AttrRole values).
const (
	RoleProfinetIODevice     = "profinet-io-device"
	RoleProfinetIOController = "profinet-io-controller"
	RoleProfinetIOSupervisor = "profinet-io-supervisor"
	RoleProfinetDCPClient    = "profinet-dcp-client" // sends Identify, Get or Set requests
)

// Attributes the Profinet dissectors emit besides the dissect.Attr* ones.
const (
	// AttrProfinetVendorID and AttrProfinetDeviceID are the DCP device id
	// option: "0x002a", "0x0a01".
	AttrProfinetVendorID = "profinet.vendor_id"
	AttrProfinetDeviceID = "profinet.device_id"
	// AttrProfinetDeviceRole is the DCP device role: "io-device,io-controller".
	AttrProfinetDeviceRole = "profinet.device_role"
	AttrProfinetAlias      = "profinet.alias"
	AttrProfinetInstance   = "profinet.instance"
	AttrProfinetOEMID      = "profinet.oem_id"
	// AttrProfinetNetmask and AttrProfinetGateway are the DCP IP suboption.
	AttrProfinetNetmask = "profinet.netmask"
	AttrProfinetGateway = "profinet.gateway"
	// AttrProfinetDCPSet flags a DCP Set request about the target device
	// (the frame's destination MAC): what is set, and by whom:
	// `name-of-station="plc1" ip=10.0.0.5/255.255.255.0 gw 10.0.0.1 by 00:1b:1b:01:02:03`.
	AttrProfinetDCPSet = "profinet.dcp_set"
	// AttrProfinetARUUID is the application relation a controller (Peer)
	// connects to an IO device with.
	AttrProfinetARUUID = "profinet.ar_uuid"
	// AttrProfinetWrite flags a client (Peer) writing records to the device.
	AttrProfinetWrite = "profinet.write"
)

// profinetVendors names the Profinet vendor ids known from public facts
// (device descriptions and product documentation); others are shown raw.
var profinetVendors = map[uint16]string{
	0x002a: "Siemens AG",
	0x00b0: "Phoenix Contact",
	0x015a: "GE Intelligent Platforms",
}

// ProfinetVendor returns the name of a Profinet vendor id, or "".
func ProfinetVendor(id uint16) string { return profinetVendors[id] }

// DCP frame ids (IEC 61158-6-10).
const (
	dcpHello      = 0xfefc
	dcpGetSet     = 0xfefd
	dcpIdentReq   = 0xfefe
	dcpIdentResp  = 0xfeff
	dcpSvcGet     = 3
	dcpSvcSet     = 4
	dcpSvcIdent   = 5
	dcpSvcHello   = 6
	dcpHeaderLen  = 12 // frame id, service id, type, xid, delay, length
	dcpMaxDevices = 4096
)

// ProfinetDCP reads Profinet DCP (IEC 61158-6-10, discovery and basic
// configuration) on EtherType 0x8892, VLAN-tagged or not. Identify
// responses and Hello requests state the sender's identity: NameOfStation
// (dissect.AttrName), type of station (dissect.AttrModel), vendor and device
// id, device role, alias, instance, OEM id and its IP settings; the
// frame's source MAC is the device's own (DCP states it). Set requests are
// flagged (AttrProfinetDCPSet) on the target device. Facts are emitted once
// per device, again only when they change.
type ProfinetDCP struct {
	mu   sync.Mutex
	seen map[capture.MAC]uint64 // hash of the last identity or set emitted
}

// NewProfinetDCP returns a Profinet DCP dissector.
func NewProfinetDCP() *ProfinetDCP { return &ProfinetDCP{} }

// Name returns "profinet-dcp".
func (*ProfinetDCP) Name() string { return "profinet-dcp" }

// Wants asks for EtherType 0x8892.
func (*ProfinetDCP) Wants() dissect.Wants {
	return dissect.Wants{EtherTypes: []uint16{EtherTypeProfinet}}
}

// dcpFrame checks a DCP header and returns its blocks.
func dcpFrame(b []byte) (fid uint16, svc, typ uint8, blocks []byte, ok bool) {
	if len(b) < dcpHeaderLen {
		return
	}
	fid = binary.BigEndian.Uint16(b)
	if fid < dcpHello || fid > dcpIdentResp {
		return
	}
	svc, typ = b[2], b[3]
	switch {
	case fid == dcpHello && svc != dcpSvcHello,
		fid == dcpGetSet && svc != dcpSvcGet && svc != dcpSvcSet,
		fid == dcpIdentReq && svc != dcpSvcIdent,
		fid == dcpIdentResp && svc != dcpSvcIdent:
		return
	}
	l := int(binary.BigEndian.Uint16(b[10:]))
	if l > len(b)-dcpHeaderLen {
		return
	}
	return fid, svc, typ, b[dcpHeaderLen : dcpHeaderLen+l], true
}

// Probe reports whether the frame is a DCP message.
func (d *ProfinetDCP) Probe(p *dissect.Packet) bool {
	if p.HasIP() || p.EtherType != EtherTypeProfinet {
		return false
	}
	_, _, _, _, ok := dcpFrame(p.Payload)
	return ok
}

// dcpIdentity is what an Identify response or Hello states.
type dcpIdentity struct {
	name, model, alias     []byte
	vendor, device         uint16
	oemVendor, oemDevice   uint16
	instance               uint16
	role                   uint8
	ip, mask, gw           [4]byte
	hasID, hasOEM, hasInst bool
	hasIP                  bool
}

// dcpBlocks calls f for each block: option, suboption, and its data (after
// the block info or qualifier when withInfo).
func dcpBlocks(b []byte, withInfo bool, f func(opt, sub uint8, data []byte)) {
	for i := 0; i < 64 && len(b) >= 4; i++ {
		opt, sub := b[0], b[1]
		l := int(binary.BigEndian.Uint16(b[2:]))
		if l > len(b)-4 {
			return
		}
		data := b[4 : 4+l]
		if withInfo && !(opt == 0xff) {
			if len(data) < 2 {
				data = nil
			} else {
				data = data[2:]
			}
		}
		if data != nil {
			f(opt, sub, data)
		}
		n := 4 + l + l&1
		if n > len(b) {
			return
		}
		b = b[n:]
	}
}

// Handle reads a DCP frame.
func (d *ProfinetDCP) Handle(p *dissect.Packet, out dissect.Sink) {
	if p.HasIP() || p.EtherType != EtherTypeProfinet {
		return
	}
	fid, svc, typ, blocks, ok := dcpFrame(p.Payload)
	if !ok {
		return
	}
	switch {
	case fid == dcpIdentResp && typ == 1, fid == dcpHello, fid == dcpGetSet && svc == dcpSvcGet && typ == 1:
		var id dcpIdentity
		dcpBlocks(blocks, true, id.block)
		d.identity(p, &id, out)
	case fid == dcpGetSet && svc == dcpSvcSet && typ == 0:
		d.set(p, blocks, out)
	case fid == dcpIdentReq && typ == 0 || fid == dcpGetSet && svc == dcpSvcGet && typ == 0:
		if d.once(p.SrcMAC, 1) {
			d.emit(p, out, p.SrcMAC, netip.Addr{}, dissect.AttrRole, RoleProfinetDCPClient)
		}
	}
}

func (id *dcpIdentity) block(opt, sub uint8, b []byte) {
	switch {
	case opt == 1 && (sub == 2 || sub == 3) && len(b) >= 12:
		id.ip, id.mask, id.gw = [4]byte(b[0:4]), [4]byte(b[4:8]), [4]byte(b[8:12])
		id.hasIP = true
	case opt == 2 && sub == 1:
		id.model = b
	case opt == 2 && sub == 2:
		id.name = b
	case opt == 2 && sub == 3 && len(b) >= 4:
		id.vendor, id.device, id.hasID = binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[2:]), true
	case opt == 2 && sub == 4 && len(b) >= 1:
		id.role = b[0]
	case opt == 2 && sub == 6:
		id.alias = b
	case opt == 2 && sub == 7 && len(b) >= 2:
		id.instance, id.hasInst = binary.BigEndian.Uint16(b), true
	case opt == 2 && sub == 8 && len(b) >= 4:
		id.oemVendor, id.oemDevice, id.hasOEM = binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[2:]), true
	}
}

func (id *dcpIdentity) hash() uint64 {
	h := uint64(14695981039346656037)
	mix := func(b []byte) {
		for _, c := range b {
			h ^= uint64(c)
			h *= 1099511628211
		}
		h ^= 0xff
		h *= 1099511628211
	}
	mix(id.name)
	mix(id.model)
	mix(id.alias)
	mix(id.ip[:])
	mix(id.mask[:])
	mix(id.gw[:])
	mix([]byte{byte(id.vendor >> 8), byte(id.vendor), byte(id.device >> 8), byte(id.device), id.role,
		byte(id.instance >> 8), byte(id.instance), byte(id.oemVendor >> 8), byte(id.oemVendor), byte(id.oemDevice >> 8), byte(id.oemDevice)})
	return h
}

// once reports whether the fact with hash h about mac is new, remembering it.
func (d *ProfinetDCP) once(mac capture.MAC, h uint64) bool {
	k := mac
	k[0] ^= byte(h>>56) | 1 // one entry per MAC and kind of fact
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seen == nil {
		d.seen = map[capture.MAC]uint64{}
	}
	if old, ok := d.seen[k]; ok && old == h {
		return false
	}
	if len(d.seen) >= dcpMaxDevices {
		for x := range d.seen {
			delete(d.seen, x)
			break
		}
	}
	d.seen[k] = h
	return true
}

func dcpRoles(r uint8) string {
	var s []string
	for i, n := range []string{"io-device", "io-controller", "io-multidevice", "io-supervisor"} {
		if r&(1<<i) != 0 {
			s = append(s, n)
		}
	}
	return strings.Join(s, ",")
}

func (d *ProfinetDCP) identity(p *dissect.Packet, id *dcpIdentity, out dissect.Sink) {
	h := id.hash() &^ (0xff << 56)
	h |= 2 << 56
	if !d.once(p.SrcMAC, h) {
		return
	}
	mac := p.SrcMAC
	var ip netip.Addr
	if id.hasIP && id.ip != [4]byte{} {
		ip = netip.AddrFrom4(id.ip)
		d.emit(p, out, mac, netip.Addr{}, dissect.AttrIP, ip.String())
		d.emit(p, out, mac, ip, AttrProfinetNetmask, netip.AddrFrom4(id.mask).String())
		if id.gw != [4]byte{} {
			d.emit(p, out, mac, ip, AttrProfinetGateway, netip.AddrFrom4(id.gw).String())
		}
	}
	if v := cipText(id.name); v != "" {
		d.emit(p, out, mac, ip, dissect.AttrName, v)
	}
	if v := cipText(id.model); v != "" {
		d.emit(p, out, mac, ip, dissect.AttrModel, v)
	}
	if v := cipText(id.alias); v != "" {
		d.emit(p, out, mac, ip, AttrProfinetAlias, v)
	}
	if id.hasID {
		d.emit(p, out, mac, ip, AttrProfinetVendorID, "0x"+cipHex16(id.vendor))
		d.emit(p, out, mac, ip, AttrProfinetDeviceID, "0x"+cipHex16(id.device))
		if v := ProfinetVendor(id.vendor); v != "" {
			d.emit(p, out, mac, ip, dissect.AttrVendor, v)
		}
	}
	if id.hasOEM {
		d.emit(p, out, mac, ip, AttrProfinetOEMID, "0x"+cipHex16(id.oemVendor)+"/0x"+cipHex16(id.oemDevice))
	}
	if id.hasInst {
		d.emit(p, out, mac, ip, AttrProfinetInstance, strconv.Itoa(int(id.instance)))
	}
	if id.role != 0 {
		d.emit(p, out, mac, ip, AttrProfinetDeviceRole, dcpRoles(id.role))
		for i, r := range []string{RoleProfinetIODevice, RoleProfinetIOController, "", RoleProfinetIOSupervisor} {
			if r != "" && id.role&(1<<i) != 0 {
				d.emit(p, out, mac, ip, dissect.AttrRole, r)
			}
		}
	}
}

// set reads a Set request: blocks with a qualifier (2 bytes) before data.
func (d *ProfinetDCP) set(p *dissect.Packet, blocks []byte, out dissect.Sink) {
	var sb strings.Builder
	dcpBlocks(blocks, true, func(opt, sub uint8, b []byte) {
		if sb.Len() > 4*maxText {
			return
		}
		if sb.Len() > 0 {
			sb.WriteByte(' ')
		}
		switch {
		case opt == 1 && sub == 2 && len(b) >= 12:
			sb.WriteString("ip=" + netip.AddrFrom4([4]byte(b[:4])).String() + "/" + netip.AddrFrom4([4]byte(b[4:8])).String() + " gw " + netip.AddrFrom4([4]byte(b[8:12])).String())
		case opt == 2 && sub == 2:
			sb.WriteString("name-of-station=" + strconv.Quote(cipText(b)))
		case opt == 5 && sub == 1:
			sb.WriteString("control=start")
		case opt == 5 && sub == 2:
			sb.WriteString("control=stop")
		case opt == 5 && sub == 3:
			sb.WriteString("control=signal")
		case opt == 5 && (sub == 5 || sub == 6):
			sb.WriteString("control=factory-reset")
		default:
			sb.WriteString("option=" + strconv.Itoa(int(opt)) + "/" + strconv.Itoa(int(sub)))
		}
	})
	if sb.Len() == 0 {
		return
	}
	sb.WriteString(" by " + p.SrcMAC.String())
	v := sb.String()
	h := uint64(14695981039346656037)
	for i := 0; i < len(v); i++ {
		h ^= uint64(v[i])
		h *= 1099511628211
	}
	h = h&^(0xff<<56) | 3<<56
	if d.once(p.DstMAC, h) {
		d.emit(p, out, p.DstMAC, netip.Addr{}, AttrProfinetDCPSet, v)
	}
	if d.once(p.SrcMAC, 1) {
		d.emit(p, out, p.SrcMAC, netip.Addr{}, dissect.AttrRole, RoleProfinetDCPClient)
	}
}

func (d *ProfinetDCP) emit(p *dissect.Packet, out dissect.Sink, mac capture.MAC, ip netip.Addr, attr, value string) {
	out.Observe(dissect.Observation{Time: p.Time, MAC: mac, IP: ip, Attr: attr, Value: value, Protocol: "profinet-dcp"})
}

// PNIO-CM interface UUIDs (IEC 61158-6-10): device, controller,
// supervisor, parameter server; the first four bytes differ.
var pnioInterfaces = map[uint32]string{
	0xdea00001: "device", 0xdea00002: "controller", 0xdea00003: "supervisor", 0xdea00004: "parameter-server",
}

var pnioOps = [...]string{"connect", "release", "read", "write", "control", "read-implicit"}

// ProfinetCM reads Profinet IO connection management: DCE/RPC
// (connectionless, DCE 1.1 chapter 12) on UDP 34964 with the PNIO
// interfaces; the interface UUID confirms it. Connect requests state the roles (IO controller or
// supervisor, and IO device), the application relation's UUID and the
// initiator's station name; the operations each controller uses on each
// device are its services, record writes flagged.
type ProfinetCM struct{}

// NewProfinetCM returns a Profinet connection-management dissector.
func NewProfinetCM() *ProfinetCM { return &ProfinetCM{} }

// Name returns "profinet-cm".
func (*ProfinetCM) Name() string { return "profinet-cm" }

// Wants asks for UDP 34964 and for heuristic probing of other UDP ports
// (after the endpoint mapper, devices answer on ports of their own).
func (*ProfinetCM) Wants() dissect.Wants {
	return dissect.Wants{UDPPorts: []uint16{PNIOCMPort}, Heuristic: true}
}

const dcerpcHeaderLen = 80

// pnioHeader checks a connectionless DCE/RPC header with a PNIO interface
// and returns the packet type, opnum, the interface's first word and the
// body.
func pnioHeader(b []byte) (ptype uint8, op uint16, iface uint32, body []byte, ok bool) {
	if len(b) < dcerpcHeaderLen || b[0] != 4 {
		return
	}
	le := b[4]&0x10 != 0
	u16 := binary.BigEndian.Uint16
	u32 := binary.BigEndian.Uint32
	if le {
		u16 = binary.LittleEndian.Uint16
		u32 = binary.LittleEndian.Uint32
	}
	iface = u32(b[24:])
	if _, known := pnioInterfaces[iface]; !known || u16(b[28:]) != 0x6c97 || u16(b[30:]) != 0x11d1 ||
		string(b[32:40]) != "\x82\x71\x00\xa0\x24\x42\xdf\x7d" {
		return
	}
	ptype = b[1]
	op = u16(b[68:])
	fl := int(u16(b[74:]))
	if fl > len(b)-dcerpcHeaderLen {
		return
	}
	return ptype, op, iface, b[dcerpcHeaderLen : dcerpcHeaderLen+fl], true
}

// Probe reports whether the datagram is a PNIO DCE/RPC message.
func (c *ProfinetCM) Probe(p *dissect.Packet) bool {
	if p.Flow == nil || p.Flow.Proto != capture.ProtoUDP {
		return false
	}
	_, _, _, _, ok := pnioHeader(p.Payload)
	return ok
}

// pnioFlow is the per-flow state.
type pnioFlow struct {
	ops   uint8 // operations emitted
	roles bool
	ars   [4][16]byte
	nars  uint8
}

// Handle reads a PNIO DCE/RPC message.
func (c *ProfinetCM) Handle(p *dissect.Packet, out dissect.Sink) {
	if p.Flow == nil {
		return
	}
	ptype, op, iface, body, ok := pnioHeader(p.Payload)
	if !ok || ptype != 0 || iface != 0xdea00001 { // requests to an IO device
		return
	}
	st, _ := p.Flow.State.(*pnioFlow)
	if st == nil {
		st = &pnioFlow{}
		p.Flow.State = st
	}
	dev, ctl := p.DstIP, p.SrcIP
	if int(op) < len(pnioOps) && st.ops&(1<<op) == 0 {
		st.ops |= 1 << op
		v := "pnio:" + pnioOps[op]
		c.emit(p, out, dev, dissect.AttrService, v, ctl)
		if op == 3 {
			c.emit(p, out, dev, AttrProfinetWrite, v, ctl)
		}
	}
	// NDR args: ArgsMaximum, ArgsLength, MaximumCount, Offset, ActualCount.
	if op != 0 || len(body) < 20 {
		return
	}
	blocks := body[20:]
	for i := 0; i < 32 && len(blocks) >= 6; i++ {
		bt := binary.BigEndian.Uint16(blocks)
		bl := int(binary.BigEndian.Uint16(blocks[2:]))
		if bl < 2 || bl > len(blocks)-4 {
			return
		}
		data := blocks[6 : 4+bl] // after type, length, version
		blocks = blocks[4+bl:]
		if bt != 0x0101 || len(data) < 52 {
			continue
		}
		// ARBlockReq: ARType, ARUUID, SessionKey, CMInitiatorMacAdd,
		// CMInitiatorObjectUUID, ARProperties, timeout factor, UDP RT port,
		// StationNameLength, CMInitiatorStationName.
		arType := binary.BigEndian.Uint16(data)
		ar := [16]byte(data[2:18])
		nl := int(binary.BigEndian.Uint16(data[50:]))
		if nl > len(data)-52 {
			return
		}
		name := cipText(data[52 : 52+nl])
		if !st.roles {
			st.roles = true
			role := RoleProfinetIOController
			if arType == 0x0006 {
				role = RoleProfinetIOSupervisor
			}
			c.emit(p, out, ctl, dissect.AttrRole, role, netip.Addr{})
			c.emit(p, out, dev, dissect.AttrRole, RoleProfinetIODevice, netip.Addr{})
			if name != "" {
				c.emit(p, out, ctl, dissect.AttrName, name, netip.Addr{})
			}
		}
		for _, x := range st.ars[:st.nars] {
			if x == ar {
				return
			}
		}
		if int(st.nars) < len(st.ars) {
			st.ars[st.nars] = ar
			st.nars++
			c.emit(p, out, dev, AttrProfinetARUUID, pnioUUID(ar), ctl)
		}
	}
}

// pnioUUID formats a UUID held big-endian (as PNIO blocks hold them).
func pnioUUID(u [16]byte) string {
	var sb strings.Builder
	for i, x := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			sb.WriteByte('-')
		}
		sb.WriteString(cipHex8(x))
	}
	return sb.String()
}

func (c *ProfinetCM) emit(p *dissect.Packet, out dissect.Sink, ip netip.Addr, attr, value string, peer netip.Addr) {
	out.Observe(dissect.Observation{Time: p.Time, IP: ip, Attr: attr, Value: value, Protocol: "profinet-cm", Peer: peer})
}

func init() {
	register(50, "profinet-dcp", func() dissect.Dissector { return NewProfinetDCP() })
	register(51, "profinet-cm", func() dissect.Dissector { return NewProfinetCM() })
}
