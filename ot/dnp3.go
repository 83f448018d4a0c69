package ot

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
)

// DNP3Port is the registered TCP and UDP port of DNP3 (IEEE 1815-2012,
// annex on IP networking).
const DNP3Port = 20000

// DNP3 roles (dissect.AttrRole values). An outstation is an RTU or IED;
// the inventory derives its class from the role.
const (
	RoleDNP3Master     = "dnp3-master"
	RoleDNP3Outstation = "dnp3-outstation"
)

// Attributes the DNP3 dissector emits besides the dissect.Attr* ones.
const (
	// AttrDNP3Address is a device's link-layer address (decimal), emitted
	// about the IP sending frames from it, once per flow per address.
	AttrDNP3Address = "dnp3.address"
	// AttrDNP3Write flags a master (Peer) writing to an outstation
	// (function 2). Value as for dissect.AttrService.
	AttrDNP3Write = "dnp3.write"
	// AttrDNP3Control flags a master (Peer) operating outputs: select,
	// operate, direct operate (functions 3-6).
	AttrDNP3Control = "dnp3.control"
	// AttrDNP3Restart flags a master (Peer) restarting an outstation: cold
	// or warm restart (functions 13, 14).
	AttrDNP3Restart = "dnp3.restart"
	// AttrDNP3Program flags a master (Peer) changing what an outstation
	// runs: initialize data, initialize/start/stop application, save or
	// activate configuration (functions 15-19, 31).
	AttrDNP3Program = "dnp3.program"
	// AttrDNP3File flags a master (Peer) using file transfer (25-30).
	AttrDNP3File = "dnp3.file"
	// AttrDNP3UserID is device attribute 246 (user-assigned id code or
	// number), AttrDNP3Location 245 (user-assigned location),
	// AttrDNP3Name 247 (user-assigned device name, also dissect.AttrName).
	AttrDNP3UserID   = "dnp3.user_id"
	AttrDNP3Location = "dnp3.location"
	AttrDNP3Name     = "dnp3.device_name"
)

// DNP3 link layer (IEEE 1815-2012 §9.2): start 0x05 0x64, length (octets
// after it, CRCs excluded: control, destination, source and user data),
// control, destination (LE), source (LE), header CRC; then user data in
// blocks of 16 octets each followed by a CRC.
const (
	dnp3HeaderLen = 10
	dnp3MaxFrame  = 292 // 10 + 250 user octets + 16 block CRCs
	dnp3MaxFrag   = 4096
	dnp3CtlDIR    = 0x80 // frame from the master
	dnp3CtlPRM    = 0x40 // primary (initiating) station
)

// Application function codes (IEEE 1815-2012 §4.2.2.5, table 4-1).
var dnp3FuncNames = [256]string{
	0: "confirm", 1: "read", 2: "write", 3: "select", 4: "operate",
	5: "direct-operate", 6: "direct-operate-no-ack", 7: "immediate-freeze",
	8: "immediate-freeze-no-ack", 9: "freeze-clear", 10: "freeze-clear-no-ack",
	11: "freeze-at-time", 12: "freeze-at-time-no-ack", 13: "cold-restart",
	14: "warm-restart", 15: "initialize-data", 16: "initialize-application",
	17: "start-application", 18: "stop-application", 19: "save-configuration",
	20: "enable-unsolicited", 21: "disable-unsolicited", 22: "assign-class",
	23: "delay-measurement", 24: "record-current-time", 25: "open-file",
	26: "close-file", 27: "delete-file", 28: "get-file-info",
	29: "authenticate-file", 30: "abort-file", 31: "activate-config",
	32: "authenticate-request", 33: "authenticate-request-no-ack",
	129: "response", 130: "unsolicited-response", 131: "authenticate-response",
}

var dnp3Services [256]string

func init() {
	for fc, n := range dnp3FuncNames {
		if n == "" {
			n = "function-" + strconv.Itoa(fc)
		}
		dnp3Services[fc] = "dnp3:" + n
	}
}

// DNP3Service returns the dissect.AttrService value of application
// function code fc: "dnp3:read", "dnp3:direct-operate", ...
func DNP3Service(fc uint8) string { return dnp3Services[fc] }

// dnp3Flag returns the attribute flagging function fc, or "".
func dnp3Flag(fc uint8) string {
	switch {
	case fc == 2:
		return AttrDNP3Write
	case fc >= 3 && fc <= 6:
		return AttrDNP3Control
	case fc == 13 || fc == 14:
		return AttrDNP3Restart
	case fc >= 15 && fc <= 19, fc == 31:
		return AttrDNP3Program
	case fc >= 25 && fc <= 30:
		return AttrDNP3File
	}
	return ""
}

// dnp3CRCTable is the table of the DNP3 CRC (polynomial 0x3D65, bits
// reflected, complemented; §9.2.4.2).
var dnp3CRCTable = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i)
		for range 8 {
			if c&1 != 0 {
				c = c>>1 ^ 0xA6BC
			} else {
				c >>= 1
			}
		}
		t[i] = c
	}
	return t
}()

func dnp3CRC(b []byte) uint16 {
	var c uint16
	for _, x := range b {
		c = c>>8 ^ dnp3CRCTable[byte(c)^x]
	}
	return ^c
}

// dnp3Header checks the link header at the start of b and returns the
// whole frame's length (with CRCs).
func dnp3Header(b []byte) (n int, ok bool) {
	if len(b) < dnp3HeaderLen || b[0] != 0x05 || b[1] != 0x64 || b[2] < 5 {
		return 0, false
	}
	if dnp3CRC(b[:8]) != binary.LittleEndian.Uint16(b[8:]) {
		return 0, false
	}
	user := int(b[2]) - 5
	return dnp3HeaderLen + user + 2*((user+15)/16), true
}

// DNP3 reads DNP3 over TCP and UDP (IEEE 1815-2012): the link frames'
// addresses and direction, the transport segments and the application
// requests and responses. Port 20000 nominates it and a link header with
// a valid CRC confirms it, on any port.
//
// It learns the master and outstation roles from the link DIR bit (set on
// frames the master sends), each side's link addresses, the function codes
// each master uses on each outstation (dissect.AttrService, Peer the
// master), writes, controls, restarts, application and configuration
// changes, file transfers, and the device attributes (group 0) an
// outstation returns: 242 software version, 243 hardware version, 248
// serial number, 250 product name and model, 252 manufacturer, 245
// location, 246 user-assigned id, 247 device name. Group 0 objects are read
// when a response starts with them (the sizes of other groups' objects are
// not tabled, so a response mixing groups is read up to the first
// non-group-0 object).
//
// Over TCP each direction is put back in order with a dissect.Stream and
// resynchronised on the next valid link header after a gap; application
// fragments spanning transport segments are reassembled up to 4096 octets,
// only when they hold device attributes. Each observation is emitted once
// per flow.
//
// A DNP3 keeps a scratch buffer: each pipeline worker holds its own, as
// returned by All.
type DNP3 struct {
	user [250]byte // a frame's user data, CRCs stripped
}

// NewDNP3 returns a DNP3 dissector.
func NewDNP3() *DNP3 { return &DNP3{} }

// Name returns "dnp3".
func (*DNP3) Name() string { return "dnp3" }

// Wants asks for TCP and UDP port 20000 and for heuristic probing.
func (*DNP3) Wants() dissect.Wants {
	return dissect.Wants{TCPPorts: []uint16{DNP3Port}, UDPPorts: []uint16{DNP3Port}, Heuristic: true}
}

// Probe reports whether the payload starts with a DNP3 link header whose
// CRC is valid (a CRC over 8 octets leaves 1 in 65536 random payloads).
func (*DNP3) Probe(p *dissect.Packet) bool {
	if p.Flow == nil {
		return false
	}
	_, ok := dnp3Header(p.Payload)
	return ok
}

// dnp3Dir is the state of one direction of a flow.
type dnp3Dir struct {
	s     dissect.Stream
	frag  []byte // reassembled application fragment (device attributes only)
	seq   int8   // next transport sequence expected; -1 when not reassembling
	addrs [4]uint16
	naddr uint8
	role  bool // role emitted
}

// dnp3Flow is the per-flow state.
type dnp3Flow struct {
	d        [2]dnp3Dir
	services [4]uint64 // function codes emitted
	flags    uint16    // device attributes emitted (bit per dnp3Attrs index)
}

func (d *DNP3) state(p *dissect.Packet) *dnp3Flow {
	if st, ok := p.Flow.State.(*dnp3Flow); ok {
		return st
	}
	st := &dnp3Flow{}
	for i := range st.d {
		st.d[i].seq = -1 // streams keep the default bound: a segment may hold many frames
	}
	p.Flow.State = st
	return st
}

// Handle reads the link frames of a claimed flow's packet.
func (d *DNP3) Handle(p *dissect.Packet, out dissect.Sink) {
	if p.Flow == nil || len(p.Payload) == 0 {
		return
	}
	st := d.state(p)
	dir := &st.d[p.Dir&1]
	if p.Flow.Proto != capture.ProtoTCP {
		b := p.Payload
		for len(b) >= dnp3HeaderLen {
			n, ok := dnp3Header(b)
			if !ok || n > len(b) {
				return
			}
			d.frame(p, st, dir, b[:n], out)
			b = b[n:]
		}
		return
	}
	dir.s.Push(p.TCPSeq, p.Payload)
	b := dir.s.Bytes()
	off := 0
	for len(b)-off >= dnp3HeaderLen {
		n, ok := dnp3Header(b[off:])
		if !ok {
			// Lost the boundaries: look for the next valid header.
			off++
			for off+1 < len(b) && !(b[off] == 0x05 && b[off+1] == 0x64) {
				off++
			}
			continue
		}
		if len(b)-off < n {
			break
		}
		d.frame(p, st, dir, b[off:off+n], out)
		off += n
	}
	if len(b)-off == 1 && b[off] != 0x05 {
		off = len(b)
	}
	dir.s.Consume(off)
}

// frame reads one whole link frame (header CRC checked).
func (d *DNP3) frame(p *dissect.Packet, st *dnp3Flow, dir *dnp3Dir, f []byte, out dissect.Sink) {
	ctl := f[3]
	src := binary.LittleEndian.Uint16(f[6:])
	if !dir.role {
		dir.role = true
		role := RoleDNP3Outstation
		if ctl&dnp3CtlDIR != 0 {
			role = RoleDNP3Master
		}
		dnp3Emit(p, out, p.SrcIP, dissect.AttrRole, role, netip.Addr{})
	}
	if src < 0xFFF0 { // 0xFFF0-0xFFFF are reserved / broadcast
		known := false
		for i := range int(dir.naddr) {
			known = known || dir.addrs[i] == src
		}
		if !known && int(dir.naddr) < len(dir.addrs) {
			dir.addrs[dir.naddr] = src
			dir.naddr++
			dnp3Emit(p, out, p.SrcIP, AttrDNP3Address, strconv.Itoa(int(src)), netip.Addr{})
		}
	}
	fn := ctl & 0x0f
	if ctl&dnp3CtlPRM == 0 || (fn != 3 && fn != 4) || len(f) <= dnp3HeaderLen+2 {
		return // link-layer service frame: no user data
	}
	// The first block holds the transport header, the application header
	// and the first object header: enough for most frames. The other
	// blocks are checked and copied only when their data is kept (device
	// attributes).
	body := f[dnp3HeaderLen:]
	k := min(16, len(body)-2)
	if dnp3CRC(body[:k]) != binary.LittleEndian.Uint16(body[k:]) {
		dir.seq = -1
		return
	}
	th := body[0]
	need := th&0x40 == 0 && dir.seq >= 0 || th&0x40 != 0 && k >= 6 && body[2] >= 129 && body[5] == 0
	seg := body[1:k]
	if need {
		user := d.user[:]
		n := 0
		for b := body; len(b) > 2; {
			k := min(16, len(b)-2)
			if dnp3CRC(b[:k]) != binary.LittleEndian.Uint16(b[k:]) {
				dir.seq = -1
				return
			}
			n += copy(user[n:], b[:k])
			b = b[k+2:]
		}
		seg = user[1:n]
	}
	fir, fin, seq := th&0x40 != 0, th&0x80 != 0, int8(th&0x3f)
	if fir {
		dir.seq = -1
		if fin {
			d.apdu(p, st, seg, out)
			return
		}
		// A fragment over several segments: kept only when it holds
		// device attributes (a response starting with group 0).
		if len(seg) >= 6 && seg[1] >= 129 && seg[4] == 0 {
			d.apdu(p, st, seg, nil) // function code, role facts
			dir.frag = append(dir.frag[:0], seg...)
			dir.seq = (seq + 1) & 0x3f
		} else {
			d.apdu(p, st, seg, out)
		}
		return
	}
	if dir.seq < 0 || seq != dir.seq {
		dir.seq = -1
		return
	}
	if len(dir.frag)+len(seg) > dnp3MaxFrag {
		dir.seq = -1
		dir.frag = dir.frag[:0]
		return
	}
	dir.frag = append(dir.frag, seg...)
	dir.seq = (seq + 1) & 0x3f
	if fin {
		dir.seq = -1
		d.apdu(p, st, dir.frag, out)
		if cap(dir.frag) > 2*dnp3MaxFrame {
			dir.frag = nil // do not keep a large buffer per flow
		} else {
			dir.frag = dir.frag[:0]
		}
	}
}

// apdu reads an application fragment (§4.2.2): control, function code,
// for responses the internal indications, then objects. out nil reads the
// first part of a fragment whose objects follow later.
func (d *DNP3) apdu(p *dissect.Packet, st *dnp3Flow, a []byte, out dissect.Sink) {
	if len(a) < 2 {
		return
	}
	fc := a[1]
	if fc < 128 {
		if out == nil {
			return
		}
		// A request: the receiver is the outstation, the sender the master.
		if st.services[fc>>6]&(1<<(fc&63)) != 0 {
			return
		}
		st.services[fc>>6] |= 1 << (fc & 63)
		dnp3Emit(p, out, p.DstIP, dissect.AttrService, dnp3Services[fc], p.SrcIP)
		if flag := dnp3Flag(fc); flag != "" {
			dnp3Emit(p, out, p.DstIP, flag, dnp3Services[fc], p.SrcIP)
		}
		return
	}
	if out == nil || fc == 131 || len(a) < 4 {
		return
	}
	d.deviceAttrs(p, st, a[4:], out)
}

// Device attribute variations of group 0 read here (§ A.1, table 11-1 of
// IEEE 1815-2012 group 0).
var dnp3Attrs = [...]struct {
	v    byte
	attr string
}{
	{242, dissect.AttrFirmware},
	{243, dissect.AttrHardware},
	{248, dissect.AttrSerial},
	{250, dissect.AttrModel},
	{252, dissect.AttrVendor},
	{245, AttrDNP3Location},
	{246, AttrDNP3UserID},
	{247, AttrDNP3Name},
}

// deviceAttrs reads group 0 objects at the start of a response's object
// headers. Each: group, variation, qualifier, range, then per item an
// optional index prefix, data type code, length and value (§ 11.9).
func (d *DNP3) deviceAttrs(p *dissect.Packet, st *dnp3Flow, b []byte, out dissect.Sink) {
	for k := 0; k < 32 && len(b) >= 3 && b[0] == 0; k++ {
		v, q := b[1], b[2]
		b = b[3:]
		prefix := int(q >> 4 & 7)
		var count int
		switch q & 0x0f {
		case 0: // 1-octet start, stop
			if len(b) < 2 || b[1] < b[0] {
				return
			}
			count, b = int(b[1])-int(b[0])+1, b[2:]
		case 1:
			if len(b) < 4 {
				return
			}
			s, e := binary.LittleEndian.Uint16(b), binary.LittleEndian.Uint16(b[2:])
			if e < s {
				return
			}
			count, b = int(e-s)+1, b[4:]
		case 7:
			if len(b) < 1 {
				return
			}
			count, b = int(b[0]), b[1:]
		case 8:
			if len(b) < 2 {
				return
			}
			count, b = int(binary.LittleEndian.Uint16(b)), b[2:]
		case 6:
			count = 0 // no objects (a request's "all")
		default:
			return
		}
		var plen int
		switch prefix {
		case 0:
		case 1:
			plen = 1
		case 2:
			plen = 2
		case 3:
			plen = 4
		default:
			return
		}
		for i := 0; i < count && i < 64; i++ {
			if len(b) < plen+2 {
				return
			}
			b = b[plen:]
			typ, l := b[0], int(b[1])
			if len(b) < 2+l {
				return
			}
			val := b[2 : 2+l]
			b = b[2+l:]
			if typ != 1 { // VSTR only: the identity attributes are strings
				continue
			}
			for j, a := range dnp3Attrs {
				if a.v != v || st.flags&(1<<j) != 0 {
					continue
				}
				s := cleanText(val)
				if len(s) == 0 {
					break
				}
				st.flags |= 1 << j
				txt := strings.ToValidUTF8(string(s), "\uFFFD")
				dnp3Emit(p, out, p.SrcIP, a.attr, txt, netip.Addr{})
				if a.attr == AttrDNP3Name {
					dnp3Emit(p, out, p.SrcIP, dissect.AttrName, txt, netip.Addr{})
				}
			}
		}
	}
}

func dnp3Emit(p *dissect.Packet, out dissect.Sink, ip netip.Addr, attr, value string, peer netip.Addr) {
	out.Observe(dissect.Observation{Time: p.Time, IP: ip, Attr: attr, Value: value, Protocol: "dnp3", Peer: peer})
}

func init() { register(20, "dnp3", func() dissect.Dissector { return NewDNP3() }) }
