package ot

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
)

// MMS roles (dissect.AttrRole values): the server is the IED (protection
// relay, bay controller, gateway), the client the SCADA or station HMI.
const (
	RoleMMSServer = "mms-server"
	RoleMMSClient = "mms-client"
)

// Attributes the MMS dissector emits besides the dissect.Attr* ones.
const (
	// AttrMMSLogicalDevices is emitted about a server each time a
	// GetNameList answer listing its domains (IEC 61850 logical devices)
	// adds names: the sorted, comma-separated names seen on the flow.
	AttrMMSLogicalDevices = "mms.logical_devices"
	// AttrMMSWrite flags a client (Peer) writing variables.
	AttrMMSWrite = "mms.write"
	// AttrMMSProgram flags a client (Peer) changing what the server runs:
	// domain download, load, delete; program invocation create, delete.
	AttrMMSProgram = "mms.program"
	// AttrMMSControl flags a client (Peer) starting, stopping, resuming,
	// resetting or killing a program invocation.
	AttrMMSControl = "mms.control"
	// AttrMMSFile flags a client (Peer) renaming, deleting or pushing
	// files (obtainFile).
	AttrMMSFile   = "mms.file"
	mmsMaxDomains = 64
)

// Confirmed service request tags (ISO 9506-2 §7, ConfirmedServiceRequest).
var mmsServiceNames = [...]string{
	0: "status", 1: "get-name-list", 2: "identify", 3: "rename", 4: "read", 5: "write",
	6: "get-variable-access-attributes", 7: "define-named-variable", 8: "define-scattered-access",
	9: "get-scattered-access-attributes", 10: "delete-variable-access", 11: "define-named-variable-list",
	12: "get-named-variable-list-attributes", 13: "delete-named-variable-list", 14: "define-named-type",
	15: "get-named-type-attributes", 16: "delete-named-type", 17: "input", 18: "output", 19: "take-control",
	20: "relinquish-control", 21: "define-semaphore", 22: "delete-semaphore", 23: "report-semaphore-status",
	24: "report-pool-semaphore-status", 25: "report-semaphore-entry-status", 26: "initiate-download-sequence",
	27: "download-segment", 28: "terminate-download-sequence", 29: "initiate-upload-sequence",
	30: "upload-segment", 31: "terminate-upload-sequence", 32: "request-domain-download",
	33: "request-domain-upload", 34: "load-domain-content", 35: "store-domain-content", 36: "delete-domain",
	37: "get-domain-attributes", 38: "create-program-invocation", 39: "delete-program-invocation",
	40: "start", 41: "stop", 42: "resume", 43: "reset", 44: "kill", 45: "get-program-invocation-attributes",
	46: "obtain-file", 47: "define-event-condition", 48: "delete-event-condition",
	49: "get-event-condition-attributes", 50: "report-event-condition-status",
	51: "alter-event-condition-monitoring", 52: "trigger-event", 53: "define-event-action",
	54: "delete-event-action", 55: "get-event-action-attributes", 56: "report-event-action-status",
	57: "define-event-enrollment", 58: "delete-event-enrollment", 59: "alter-event-enrollment",
	60: "report-event-enrollment-status", 61: "get-event-enrollment-attributes",
	62: "acknowledge-event-notification", 63: "get-alarm-summary", 64: "get-alarm-enrollment-summary",
	65: "read-journal", 66: "write-journal", 67: "initialize-journal", 68: "report-journal-status",
	69: "create-journal", 70: "delete-journal", 71: "get-capability-list", 72: "file-open",
	73: "file-read", 74: "file-close", 75: "file-rename", 76: "file-delete", 77: "file-directory",
}

const (
	mmsSvcInitiate = len(mmsServiceNames)
	mmsSvcConclude = mmsSvcInitiate + 1
	mmsNumServices = mmsSvcConclude + 1
)

var mmsServices [mmsNumServices]string

func init() {
	for i, n := range mmsServiceNames {
		mmsServices[i] = "mms:" + n
	}
	mmsServices[mmsSvcInitiate] = "mms:initiate"
	mmsServices[mmsSvcConclude] = "mms:conclude"
}

// MMSService returns the dissect.AttrService value of confirmed service
// request tag n ("mms:read", "mms:get-name-list"), or "".
func MMSService(n int) string {
	if n < 0 || n >= len(mmsServiceNames) {
		return ""
	}
	return mmsServices[n]
}

func mmsFlag(n int) string {
	switch n {
	case 5:
		return AttrMMSWrite
	case 26, 27, 28, 32, 34, 36, 38, 39:
		return AttrMMSProgram
	case 40, 41, 42, 43, 44:
		return AttrMMSControl
	case 46, 75, 76:
		return AttrMMSFile
	}
	return ""
}

// BER (ITU-T X.690), definite lengths only.

// berTLV reads one element: its identifier octet, tag number, contents
// and what follows it.
func berTLV(b []byte) (id byte, tag int, content, rest []byte, ok bool) {
	if len(b) < 2 {
		return 0, 0, nil, nil, false
	}
	id = b[0]
	tag = int(id & 0x1f)
	i := 1
	if tag == 0x1f {
		tag = 0
		for n := 0; ; n++ {
			if i >= len(b) || n == 3 {
				return 0, 0, nil, nil, false
			}
			tag = tag<<7 | int(b[i]&0x7f)
			i++
			if b[i-1]&0x80 == 0 {
				break
			}
		}
	}
	if i >= len(b) {
		return 0, 0, nil, nil, false
	}
	l := int(b[i])
	i++
	if l&0x80 != 0 {
		n := l & 0x7f
		if n == 0 || n > 3 || i+n > len(b) {
			return 0, 0, nil, nil, false
		}
		l = 0
		for _, c := range b[i : i+n] {
			l = l<<8 | int(c)
		}
		i += n
	}
	if l > len(b)-i {
		return 0, 0, nil, nil, false
	}
	return id, tag, b[i : i+l], b[i+l:], true
}

// berChild returns the contents of the first element of b whose
// identifier octet is id.
func berChild(b []byte, id byte) ([]byte, bool) {
	for k := 0; k < 32 && len(b) > 0; k++ {
		x, _, c, rest, ok := berTLV(b)
		if !ok {
			return nil, false
		}
		if x == id {
			return c, true
		}
		b = rest
	}
	return nil, false
}

// berFind searches b depth-first, down to depth levels, for an element
// whose identifier octet is id and returns its contents.
func berFind(b []byte, id byte, depth int) ([]byte, bool) {
	for k := 0; k < 32 && len(b) > 0; k++ {
		x, _, c, rest, ok := berTLV(b)
		if !ok {
			return nil, false
		}
		if x == id {
			return c, true
		}
		if x&0x20 != 0 && depth > 0 {
			if r, ok := berFind(c, id, depth-1); ok {
				return r, true
			}
		}
		b = rest
	}
	return nil, false
}

func berUint(c []byte) (uint32, bool) {
	if len(c) == 0 || len(c) > 5 || len(c) == 5 && c[0] != 0 {
		return 0, false
	}
	var v uint32
	for _, x := range c {
		v = v<<8 | uint32(x)
	}
	return v, true
}

// ISO 8327-1 session SPDU identifiers.
const (
	spduGiveTokens = 0x01 // also DATA TRANSFER, in the same octet
	spduConnect    = 0x0D
	spduAccept     = 0x0E
)

// mmsSession reads the session SPDU(s) at the start of b and returns its
// kind and the presentation PPDU it carries.
func mmsSession(b []byte) (si byte, ppdu []byte, ok bool) {
	if len(b) < 2 {
		return 0, nil, false
	}
	switch b[0] {
	case spduGiveTokens:
		// GIVE TOKENS (LI 0) then DATA TRANSFER (LI 0), then user data.
		if len(b) < 5 || b[1] != 0 || b[2] != 1 || b[3] != 0 {
			return 0, nil, false
		}
		return spduGiveTokens, b[4:], true
	case spduConnect, spduAccept:
		l, i := int(b[1]), 2
		if l == 0xff {
			if len(b) < 4 {
				return 0, nil, false
			}
			l, i = int(b[2])<<8|int(b[3]), 4
		}
		if l > len(b)-i {
			return 0, nil, false
		}
		// Parameters: PI/PGI code, length, value; session user data is
		// PGI 0xC1 (connect) or 0xC1 (accept), extended user data 0xC2.
		params := b[i : i+l]
		for k := 0; k < 32 && len(params) >= 2; k++ {
			code, pl, j := params[0], int(params[1]), 2
			if pl == 0xff {
				if len(params) < 4 {
					break
				}
				pl, j = int(params[2])<<8|int(params[3]), 4
			}
			if pl > len(params)-j {
				break
			}
			if code == 0xC1 || code == 0xC2 {
				return b[0], params[j : j+pl], true
			}
			params = params[j+pl:]
		}
		return b[0], nil, true
	}
	return 0, nil, false
}

// mmsPDU returns the MMS PDU a data-phase presentation PPDU carries:
// fully-encoded-data [APPLICATION 1] { PDV-list { context id,
// single-ASN1-type [0] MMS-PDU } } (ISO 8823-1).
func mmsPDU(ppdu []byte) ([]byte, bool) {
	fed, ok := berChild(ppdu, 0x61)
	if !ok {
		return nil, false
	}
	pdv, ok := berChild(fed, 0x30)
	if !ok {
		return nil, false
	}
	return berChild(pdv, 0xa0)
}

// mmsConnectPDU returns the MMS PDU (initiate) carried in the ACSE
// user-information of a CP or CPA PPDU: ... AARQ/AARE { user-information
// [30] { EXTERNAL { single-ASN1-type [0] MMS-PDU } } } (ISO 8650-1).
func mmsConnectPDU(ppdu []byte) ([]byte, bool) {
	ui, ok := berFind(ppdu, 0xbe, 8)
	if !ok {
		return nil, false
	}
	ext, ok := berChild(ui, 0x28)
	if !ok {
		return nil, false
	}
	return berChild(ext, 0xa0)
}

// mmsFirst returns the MMS PDU a COTP data TSDU carries, for probes.
func mmsFirst(user []byte) ([]byte, bool) {
	si, ppdu, ok := mmsSession(user)
	if !ok {
		return nil, false
	}
	if si == spduGiveTokens {
		return mmsPDU(ppdu)
	}
	return mmsConnectPDU(ppdu)
}

// MMS reads ISO 9506 MMS (the client/server protocol of IEC 61850 and
// ICCP) over the ISO stack on TCP 102: COTP, session (ISO 8327),
// presentation (ISO 8823) and ACSE (ISO 8650). Port 102 nominates it; a
// COTP data TSDU holding a session SPDU whose presentation data is an MMS
// PDU confirms it (S7comm's 0x32 and S7comm-plus's 0x72 never are).
//
// It learns the server and client roles from who sends confirmed
// requests, the services each client uses on each server (dissect.
// AttrService, Peer the client: initiate, read, write, get-name-list,
// identify, ...), writes, program and domain changes, start/stop/reset,
// file changes; the vendor, model and revision of Identify answers; and
// the domain names (IEC 61850 logical devices) of GetNameList answers to
// requests for the domain class.
//
// Each direction is put back in order; TSDUs spread over COTP DTs are
// reassembled up to 32 KiB. Each fact is emitted once per flow.
type MMS struct{}

// NewMMS returns an MMS dissector.
func NewMMS() *MMS { return &MMS{} }

// Name returns "mms".
func (*MMS) Name() string { return "mms" }

// Wants asks for TCP port 102.
func (*MMS) Wants() dissect.Wants { return dissect.Wants{TCPPorts: []uint16{ISOTSAPPort}} }

// Probe reports whether p starts a COTP DT carrying an MMS PDU in an ISO
// session; a connection request is remembered for the claiming dissector.
func (*MMS) Probe(p *dissect.Packet) bool {
	user, ok := cotpProbeData(p)
	if !ok {
		return false
	}
	pdu, ok := mmsFirst(user)
	if !ok {
		return false
	}
	id, _, _, _, ok := berTLV(pdu)
	if !ok {
		return false
	}
	switch id {
	case 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa8, 0xa9, 0xaa, 0x8b, 0x8c, 0xa5, 0x85, 0x86:
		return true
	}
	return false
}

// mmsFlow is the per-flow state. Both sides of an association may send
// requests (ICCP peers do), so what is emitted is kept per direction of
// the requests (dir) or of the answers.
type mmsFlow struct {
	cotpConn
	services [2][2]uint64 // service indexes emitted, per requesting direction
	emitted  [2]uint8     // per requesting direction
	pending  [4]uint32    // invoke ids of GetNameList requests for domains, +1
	npend    uint8
	domains  []string
}

const (
	mmsemRoles = 1 << iota
	mmsemVendor
	mmsemModel
	mmsemRevision
)

// Handle reads the TPDUs of a claimed flow's packet.
func (m *MMS) Handle(p *dissect.Packet, out dissect.Sink) {
	cotpHandle(p, out, nil, m.tsdu)
}

// tsdu reads the MMS PDU of a TSDU.
func (m *MMS) tsdu(p *dissect.Packet, st *mmsFlow, user []byte, out dissect.Sink) {
	if pdu, ok := mmsFirst(user); ok {
		m.pdu(p, st, pdu, out)
	}
}

// pdu reads one MMS PDU (ISO 9506-2 §7: MMSpdu).
func (m *MMS) pdu(p *dissect.Packet, st *mmsFlow, b []byte, out dissect.Sink) {
	id, _, c, _, ok := berTLV(b)
	if !ok {
		return
	}
	request := false
	switch id {
	case 0xa0, 0xa8, 0x8b: // confirmed request, initiate, conclude request
		request = true
	case 0xa1, 0xa9, 0x8c: // confirmed response, initiate, conclude response
	default:
		return
	}
	cli, srv := p.SrcIP, p.DstIP
	dir := p.Dir & 1 // direction of the requests
	if !request {
		cli, srv = srv, cli
		dir ^= 1
	}
	em := &st.emitted[dir]
	if *em&mmsemRoles == 0 {
		*em |= mmsemRoles
		mmsEmit(p, out, srv, dissect.AttrRole, RoleMMSServer, netip.Addr{})
		mmsEmit(p, out, cli, dissect.AttrRole, RoleMMSClient, netip.Addr{})
	}
	switch id {
	case 0xa8:
		m.service(p, st, dir, mmsSvcInitiate, srv, cli, out)
		return
	case 0x8b:
		m.service(p, st, dir, mmsSvcConclude, srv, cli, out)
		return
	case 0xa9, 0x8c:
		return
	}
	// invokeID, then (requests) optional listOfModifier, then the service.
	_, _, inv, rest, ok := berTLV(c)
	if !ok || len(c) == 0 || c[0] != 0x02 {
		return
	}
	invoke, _ := berUint(inv)
	if len(rest) > 0 && rest[0] == 0x30 {
		_, _, _, rest, ok = berTLV(rest)
		if !ok {
			return
		}
	}
	sid, tag, sc, _, ok := berTLV(rest)
	if !ok || sid&0xc0 != 0x80 {
		return
	}
	if request {
		if tag < len(mmsServiceNames) {
			m.service(p, st, dir, tag, srv, cli, out)
		}
		if tag == 1 && sid == 0xa1 {
			m.nameListRequest(st, invoke, sc)
		}
		return
	}
	switch {
	case tag == 2 && sid == 0xa2:
		m.identify(p, em, sc, srv, out)
	case tag == 1 && sid == 0xa1:
		m.nameListResponse(p, st, invoke, sc, srv, out)
	}
}

func (m *MMS) service(p *dissect.Packet, st *mmsFlow, dir flow.Dir, i int, srv, cli netip.Addr, out dissect.Sink) {
	svc := &st.services[dir]
	if svc[i>>6]&(1<<(i&63)) != 0 {
		return
	}
	svc[i>>6] |= 1 << (i & 63)
	mmsEmit(p, out, srv, dissect.AttrService, mmsServices[i], cli)
	if f := mmsFlag(i); f != "" {
		mmsEmit(p, out, srv, f, mmsServices[i], cli)
	}
}

// identify reads an Identify answer: vendorName [0], modelName [1],
// revision [2] (VisibleStrings), listOfAbstractSyntaxes [3].
func (m *MMS) identify(p *dissect.Packet, em *uint8, b []byte, srv netip.Addr, out dissect.Sink) {
	for k := 0; k < 8 && len(b) > 0; k++ {
		id, _, c, rest, ok := berTLV(b)
		if !ok {
			return
		}
		b = rest
		var attr string
		var flag uint8
		switch id {
		case 0x80:
			attr, flag = dissect.AttrVendor, mmsemVendor
		case 0x81:
			attr, flag = dissect.AttrModel, mmsemModel
		case 0x82:
			attr, flag = dissect.AttrFirmware, mmsemRevision
		default:
			continue
		}
		v := cleanText(c)
		if len(v) == 0 || *em&flag != 0 {
			continue
		}
		*em |= flag
		mmsEmit(p, out, srv, attr, strings.ToValidUTF8(string(v), "\uFFFD"), netip.Addr{})
	}
}

// nameListRequest remembers the invoke id of a GetNameList request for
// the domain class (objectClass [0] { basicObjectClass [0] 9 }) in the
// VMD's scope (objectScope [1] { vmdSpecific [0] NULL }).
func (m *MMS) nameListRequest(st *mmsFlow, invoke uint32, b []byte) {
	oc, ok := berChild(b, 0xa0)
	if !ok {
		return
	}
	cls, ok := berChild(oc, 0x80)
	if v, okv := berUint(cls); !ok || !okv || v != 9 {
		return
	}
	scope, ok := berChild(b, 0xa1)
	if !ok || len(scope) < 2 || scope[0] != 0x80 {
		return
	}
	st.pending[st.npend%uint8(len(st.pending))] = invoke + 1
	st.npend++
}

// nameListResponse reads the identifiers of a GetNameList answer
// (listOfIdentifier [0] { VisibleString ... }, moreFollows [1]) to a
// remembered domain request.
func (m *MMS) nameListResponse(p *dissect.Packet, st *mmsFlow, invoke uint32, b []byte, srv netip.Addr, out dissect.Sink) {
	i := slices.Index(st.pending[:], invoke+1)
	if i < 0 {
		return
	}
	st.pending[i] = 0
	list, ok := berChild(b, 0xa0)
	if !ok {
		return
	}
	grew := false
	for k := 0; k < 256 && len(list) > 0; k++ {
		id, _, c, rest, ok := berTLV(list)
		if !ok {
			break
		}
		list = rest
		v := cleanText(c)
		if id != 0x1a || len(v) == 0 || len(st.domains) >= mmsMaxDomains {
			continue
		}
		s := strings.ToValidUTF8(string(v), "\uFFFD")
		j, found := slices.BinarySearch(st.domains, s)
		if !found {
			st.domains = slices.Insert(st.domains, j, s)
			grew = true
		}
	}
	if grew {
		mmsEmit(p, out, srv, AttrMMSLogicalDevices, strings.Join(st.domains, ","), netip.Addr{})
	}
}

func mmsEmit(p *dissect.Packet, out dissect.Sink, ip netip.Addr, attr, value string, peer netip.Addr) {
	out.Observe(dissect.Observation{Time: p.Time, IP: ip, Attr: attr, Value: value, Protocol: "mms", Peer: peer})
}

func init() { register(24, "mms", func() dissect.Dissector { return NewMMS() }) }
