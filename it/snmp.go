package it

import (
	"bytes"
	_ "embed"
	"net/netip"
	"strconv"
	"strings"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
)

// SNMP UDP ports (RFC 3417 section 3).
const (
	SNMPPort     = 161
	SNMPTrapPort = 162
)

// Attributes the SNMP dissector emits, about the agent.
const (
	AttrSNMPSysDescr    = "snmp.sys_descr"     // sysDescr.0, raw
	AttrSNMPSysObjectID = "snmp.sys_object_id" // sysObjectID.0, dotted
	AttrSNMPSysLocation = "snmp.sys_location"  // sysLocation.0, raw
	AttrSNMPSysContact  = "snmp.sys_contact"   // sysContact.0, raw
	AttrSNMPVersion     = "snmp.version"       // "1", "2c", "3"
)

// Roles the SNMP dissector gives.
const (
	RoleSNMPAgent   = "snmp-agent"
	RoleSNMPManager = "snmp-manager"
)

const snmpMaxPackets = 64 // datagrams read per flow

// PDU tags (RFC 3416 section 3, RFC 1157 section 4).
const (
	snmpGetRequest     = 0xa0
	snmpGetNextRequest = 0xa1
	snmpResponse       = 0xa2
	snmpSetRequest     = 0xa3
	snmpTrapV1         = 0xa4
	snmpGetBulk        = 0xa5
	snmpInform         = 0xa6
	snmpTrapV2         = 0xa7
	snmpReport         = 0xa8
)

// sysPrefix is the BER content of 1.3.6.1.2.1.1 (the system group, RFC
// 3418); the objects read are sysPrefix + {n, 0}.
var sysPrefix = []byte{0x2b, 6, 1, 2, 1, 1}

// enterprisesTSV holds the IANA private enterprise numbers, "id\tname" per
// line sorted by id, after one comment line; make enterprises-data
// regenerates it.
//
//go:embed data/enterprises.tsv
var enterprisesTSV string

// EnterpriseName returns the organisation IANA registered private
// enterprise number id to (the N of 1.3.6.1.4.1.N), or "". It searches the
// embedded registry in place, allocating nothing.
func EnterpriseName(id uint32) string {
	s := enterprisesTSV
	lo, hi := 0, len(s)
	for lo < hi {
		mid := lo + (hi-lo)/2
		start := strings.LastIndexByte(s[:mid], '\n') + 1
		if start < lo {
			start = lo
		}
		end := strings.IndexByte(s[start:], '\n')
		next := len(s)
		if end >= 0 {
			next = start + end + 1
		} else {
			end = len(s) - start
		}
		line := s[start : start+end]
		tab := strings.IndexByte(line, '\t')
		n, err := strconv.ParseUint(line[:max(tab, 0)], 10, 32)
		switch {
		case tab < 0 || err != nil:
			lo = next
		case uint32(n) == id:
			return line[tab+1:]
		case uint32(n) < id:
			lo = next
		default:
			hi = start
		}
	}
	return ""
}

// SNMP reads SNMP v1 and v2c (RFC 1157, RFC 3416) on UDP ports 161 and
// 162 with its own bounded BER reader. From agents' Response and Trap
// varbinds it learns the system group (RFC 3418): sysDescr (kept raw),
// sysObjectID (and the maker its enterprise number names, from the IANA
// registry), sysName (the agent's hostname), sysLocation and sysContact;
// from every message, the agent and manager roles. SNMPv3 messages give
// roles and version only (their PDUs are usually encrypted).
//
// The community string is never stored nor emitted: it is a password.
//
// A flow is read for at most 64 datagrams; each fact is emitted once per
// flow.
type SNMP struct{}

// NewSNMP returns an SNMP dissector.
func NewSNMP() *SNMP { return &SNMP{} }

func init() { register(83, "snmp", func() dissect.Dissector { return NewSNMP() }) }

// Name returns "snmp".
func (*SNMP) Name() string { return "snmp" }

// Wants asks for UDP ports 161 and 162.
func (*SNMP) Wants() dissect.Wants {
	return dissect.Wants{UDPPorts: []uint16{SNMPPort, SNMPTrapPort}}
}

// berTLV reads one BER element with a one-byte tag and a definite length
// of at most 4 length bytes.
func berTLV(b []byte) (tag byte, val, rest []byte, ok bool) {
	if len(b) < 2 || b[0]&0x1f == 0x1f {
		return 0, nil, nil, false
	}
	tag = b[0]
	l := int(b[1])
	i := 2
	if l&0x80 != 0 {
		n := l & 0x7f
		if n == 0 || n > 4 || len(b) < 2+n {
			return 0, nil, nil, false
		}
		l = 0
		for _, c := range b[2 : 2+n] {
			l = l<<8 | int(c)
		}
		i += n
		if l < 0 {
			return 0, nil, nil, false
		}
	}
	if l > len(b)-i {
		return 0, nil, nil, false
	}
	return tag, b[i : i+l], b[i+l:], true
}

// berInt reads a small non-negative INTEGER's content.
func berInt(v []byte) (int, bool) {
	if len(v) == 0 || len(v) > 4 || v[0]&0x80 != 0 {
		return 0, false
	}
	n := 0
	for _, c := range v {
		n = n<<8 | int(c)
	}
	return n, true
}

// snmpHeader reads version, community (skipped) and the PDU's tag and
// content.
func snmpHeader(b []byte) (version int, pduTag byte, pdu []byte, ok bool) {
	tag, msg, _, ok := berTLV(b)
	if !ok || tag != 0x30 {
		return 0, 0, nil, false
	}
	tag, v, msg, ok := berTLV(msg)
	if !ok || tag != 0x02 {
		return 0, 0, nil, false
	}
	version, ok = berInt(v)
	if !ok || (version != 0 && version != 1 && version != 3) {
		return 0, 0, nil, false
	}
	if version == 3 {
		// msgGlobalData: a SEQUENCE.
		tag, _, _, ok = berTLV(msg)
		return version, 0, nil, ok && tag == 0x30
	}
	tag, _, msg, ok = berTLV(msg) // community: never kept
	if !ok || tag != 0x04 {
		return 0, 0, nil, false
	}
	pduTag, pdu, _, ok = berTLV(msg)
	if !ok || pduTag < snmpGetRequest || pduTag > snmpReport {
		return 0, 0, nil, false
	}
	return version, pduTag, pdu, true
}

// Probe reports whether p's payload is an SNMP message.
func (*SNMP) Probe(p *dissect.Packet) bool {
	if p.Flow == nil || p.Flow.Proto != capture.ProtoUDP {
		return false
	}
	_, _, _, ok := snmpHeader(p.Payload)
	return ok
}

// snmpFlow is the per-flow state.
type snmpFlow struct {
	seen appFacts
	pkts uint8
}

// Handle reads a datagram of a claimed flow.
func (s *SNMP) Handle(p *dissect.Packet, out dissect.Sink) {
	if p.Flow == nil || p.Flow.Proto != capture.ProtoUDP {
		return
	}
	st, ok := p.Flow.State.(*snmpFlow)
	if !ok {
		st = &snmpFlow{}
		p.Flow.State = st
	}
	if st.pkts >= snmpMaxPackets || st.seen.full() {
		return
	}
	st.pkts++
	version, tag, pdu, ok := snmpHeader(p.Payload)
	if !ok {
		return
	}
	e := appEmitter{out: out, p: p, seen: &st.seen, proto: "snmp"}
	src, dst := e.src(), e.dst()
	agent, manager := netip.Addr{}, netip.Addr{}
	switch tag {
	case snmpGetRequest, snmpGetNextRequest, snmpSetRequest, snmpGetBulk:
		manager, agent = src, dst
	case snmpResponse, snmpTrapV1, snmpTrapV2, snmpReport:
		agent, manager = src, dst
	case 0: // v3: by port
		switch {
		case p.DstPort == SNMPPort:
			manager, agent = src, dst
		case p.SrcPort == SNMPPort || p.DstPort == SNMPTrapPort:
			agent, manager = src, dst
		}
	}
	e.str(agent, dissect.AttrRole, RoleSNMPAgent, manager)
	e.str(manager, dissect.AttrRole, RoleSNMPManager, agent)
	switch version {
	case 0:
		e.str(src, AttrSNMPVersion, "1", dst)
	case 1:
		e.str(src, AttrSNMPVersion, "2c", dst)
	case 3:
		e.str(src, AttrSNMPVersion, "3", dst)
	}
	switch tag {
	case snmpResponse, snmpTrapV2:
		snmpVarbinds(pdu, 3, &e)
	case snmpTrapV1:
		// enterprise, agent-addr, generic-trap, specific-trap, time-stamp
		snmpVarbinds(pdu, 5, &e)
	}
}

// snmpVarbinds skips the first skip elements of a PDU and reads its
// variable bindings, emitting the system group's objects about the sender.
func snmpVarbinds(pdu []byte, skip int, e *appEmitter) {
	for i := 0; i < skip; i++ {
		var ok bool
		if _, _, pdu, ok = berTLV(pdu); !ok {
			return
		}
	}
	tag, list, _, ok := berTLV(pdu)
	if !ok || tag != 0x30 {
		return
	}
	src, dst := e.src(), e.dst()
	for n := 0; len(list) > 0 && n < 256; n++ {
		tag, vb, rest, ok := berTLV(list)
		if !ok || tag != 0x30 {
			return
		}
		list = rest
		tag, name, vb, ok := berTLV(vb)
		if !ok || tag != 0x06 {
			return
		}
		vtag, val, _, ok := berTLV(vb)
		if !ok || len(name) != len(sysPrefix)+2 || !bytes.HasPrefix(name, sysPrefix) || name[len(name)-1] != 0 {
			continue
		}
		switch obj := name[len(sysPrefix)]; {
		case obj == 2 && vtag == 0x06:
			oid, ok := berOID(val)
			if !ok {
				continue
			}
			e.str(src, AttrSNMPSysObjectID, oid, dst)
			if n, ok := enterpriseOf(oid); ok {
				e.str(src, dissect.AttrVendor, EnterpriseName(n), dst)
			}
		case vtag != 0x04:
		case obj == 1:
			e.text(src, AttrSNMPSysDescr, val, dst)
		case obj == 4:
			e.text(src, AttrSNMPSysContact, val, dst)
		case obj == 5:
			e.text(src, dissect.AttrHostname, val, dst)
		case obj == 6:
			e.text(src, AttrSNMPSysLocation, val, dst)
		}
	}
}

// berOID returns an OBJECT IDENTIFIER's content as a dotted string.
func berOID(v []byte) (string, bool) {
	if len(v) == 0 || len(v) > 128 {
		return "", false
	}
	var b []byte
	var x uint64
	first := true
	for i, c := range v {
		x = x<<7 | uint64(c&0x7f)
		if x > 1<<32 {
			return "", false
		}
		if c&0x80 != 0 {
			if i == len(v)-1 {
				return "", false
			}
			continue
		}
		if first {
			first = false
			switch {
			case x < 40:
				b = append(b, '0', '.')
				b = strconv.AppendUint(b, x, 10)
			case x < 80:
				b = append(b, '1', '.')
				b = strconv.AppendUint(b, x-40, 10)
			default:
				b = append(b, '2', '.')
				b = strconv.AppendUint(b, x-80, 10)
			}
		} else {
			b = append(b, '.')
			b = strconv.AppendUint(b, x, 10)
		}
		x = 0
	}
	return string(b), true
}

// enterpriseOf returns N of an OID under 1.3.6.1.4.1.N.
func enterpriseOf(oid string) (uint32, bool) {
	const pfx = "1.3.6.1.4.1."
	if !strings.HasPrefix(oid, pfx) {
		return 0, false
	}
	s := oid[len(pfx):]
	if i := strings.IndexByte(s, '.'); i >= 0 {
		s = s[:i]
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err == nil
}
