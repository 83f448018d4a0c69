package ot

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
)

// BACnetPort is the registered UDP port of BACnet/IP (0xBAC0).
const BACnetPort = 47808

// BACnet roles (dissect.AttrRole values).
const (
	RoleBACnetDevice        = "bacnet-device"         // answers Who-Is with I-Am
	RoleBACnetClient        = "bacnet-client"         // sends Who-Is or confirmed requests
	RoleBACnetServer        = "bacnet-server"         // answers confirmed requests
	RoleBACnetBBMD          = "bacnet-bbmd"           // BACnet broadcast management device
	RoleBACnetForeignDevice = "bacnet-foreign-device" // registers with a BBMD
	RoleBACnetRouter        = "bacnet-router"         // routes between BACnet networks
)

// Attributes the BACnet dissector emits besides the dissect.Attr* ones.
const (
	AttrBACnetInstance     = "bacnet.device_instance"
	AttrBACnetVendorID     = "bacnet.vendor_id"
	AttrBACnetMaxAPDU      = "bacnet.max_apdu"
	AttrBACnetSegmentation = "bacnet.segmentation"
	AttrBACnetAppVersion   = "bacnet.application_software_version"
	AttrBACnetLocation     = "bacnet.location"
	AttrBACnetDescription  = "bacnet.description"
	// AttrBACnetRemoteDevice describes a device on another BACnet network
	// (behind the router that sent the packet, NPDU source network and
	// address): "net 5 mac 0x1b: device 1234 vendor 5 model-name=...".
	AttrBACnetRemoteDevice = "bacnet.remote_device"
	// AttrBACnetWrite flags a client (Peer) writing to the device
	// (WriteProperty, WritePropertyMultiple, Add/RemoveListElement,
	// Create/DeleteObject, WriteGroup). Value as for dissect.AttrService.
	AttrBACnetWrite = "bacnet.write"
	// AttrBACnetDCC flags DeviceCommunicationControl (silencing a device).
	AttrBACnetDCC = "bacnet.device_communication_control"
	// AttrBACnetReinitialize flags ReinitializeDevice (a restart).
	AttrBACnetReinitialize = "bacnet.reinitialize"
	// AttrBACnetFileWrite flags AtomicWriteFile (program or firmware transfer).
	AttrBACnetFileWrite = "bacnet.file_write"
	// AttrBACnetError is an Error, Reject or Abort answer, once per flow
	// per kind: "bacnet:readProperty error property/unknown-property".
	AttrBACnetError = "bacnet.error"
	// AttrBACnetForeignTTL is a foreign device's registration time-to-live.
	AttrBACnetForeignTTL = "bacnet.foreign_ttl"
)

var bacConfirmed = [...]string{
	"acknowledgeAlarm", "confirmedCOVNotification", "confirmedEventNotification", "getAlarmSummary",
	"getEnrollmentSummary", "subscribeCOV", "atomicReadFile", "atomicWriteFile", "addListElement",
	"removeListElement", "createObject", "deleteObject", "readProperty", "readPropertyConditional",
	"readPropertyMultiple", "writeProperty", "writePropertyMultiple", "deviceCommunicationControl",
	"confirmedPrivateTransfer", "confirmedTextMessage", "reinitializeDevice", "vtOpen", "vtClose",
	"vtData", "authenticate", "requestKey", "readRange", "lifeSafetyOperation", "subscribeCOVProperty",
	"getEventInformation", "subscribeCOVPropertyMultiple", "confirmedCOVNotificationMultiple",
	"confirmedAuditNotification", "auditLogQuery",
}

var bacUnconfirmed = [...]string{
	"i-Am", "i-Have", "unconfirmedCOVNotification", "unconfirmedEventNotification",
	"unconfirmedPrivateTransfer", "unconfirmedTextMessage", "timeSynchronization", "who-Has", "who-Is",
	"utcTimeSynchronization", "writeGroup", "unconfirmedCOVNotificationMultiple",
	"unconfirmedAuditNotification", "who-Am-I", "you-Are",
}

var bacErrorClasses = [...]string{"device", "object", "property", "resources", "security", "services", "vt", "communication"}

var bacErrorCodes = [...]string{
	"other", "authentication-failed", "configuration-in-progress", "device-busy",
	"dynamic-creation-not-supported", "file-access-denied", "incompatible-security-levels",
	"inconsistent-parameters", "inconsistent-selection-criterion", "invalid-data-type",
	"invalid-file-access-method", "invalid-file-start-position", "invalid-operator-name",
	"invalid-parameter-data-type", "invalid-time-stamp", "key-generation-error",
	"missing-required-parameter", "no-objects-of-specified-type", "no-space-for-object",
	"no-space-to-add-list-element", "no-space-to-write-property", "no-vt-sessions-available",
	"property-is-not-a-list", "object-deletion-not-permitted", "object-identifier-already-exists",
	"operational-problem", "password-failure", "read-access-denied", "security-not-supported",
	"service-request-denied", "timeout", "unknown-object", "unknown-property", "", "unknown-vt-class",
	"unknown-vt-session", "unsupported-object-type", "value-out-of-range", "vt-session-already-closed",
	"vt-session-termination-failure", "write-access-denied", "character-set-not-supported",
	"invalid-array-index",
}

var bacRejectReasons = [...]string{
	"other", "buffer-overflow", "inconsistent-parameters", "invalid-parameter-data-type", "invalid-tag",
	"missing-required-parameter", "parameter-out-of-range", "too-many-arguments",
	"undefined-enumeration", "unrecognized-service",
}

var bacAbortReasons = [...]string{
	"other", "buffer-overflow", "invalid-apdu-in-this-state", "preempted-by-higher-priority-task",
	"segmentation-not-supported", "security-error", "insufficient-security", "window-size-out-of-range",
	"application-exceeded-reply-time", "out-of-resources", "tsm-timeout", "apdu-too-long",
}

var bacSegmentation = [...]string{"both", "transmit", "receive", "none"}

func bacName(names []string, i int, what string) string {
	if i >= 0 && i < len(names) && names[i] != "" {
		return names[i]
	}
	return what + "-" + strconv.Itoa(i)
}

// Device object properties read for identity (ASHRAE 135, 12.11).
const (
	propAppSoftwareVersion = 12
	propDescription        = 28
	propFirmwareRevision   = 44
	propLocation           = 58
	propModelName          = 70
	propObjectName         = 77
	propVendorIdentifier   = 120
	propVendorName         = 121
	propObjectIdentifier   = 75
	bacObjectDevice        = 8
	bacWildcard            = 4194303 // the instance that addresses any device
)

// BACnet reads BACnet/IP (ASHRAE 135, annex J: BVLL; clause 6: NPDU;
// clauses 20-21: APDU). UDP 47808 nominates it, and it is tried on other
// UDP ports: a BVLC header of type 0x81 with a known function and the
// datagram's length confirms it.
//
// It learns the BVLL roles (BBMD, foreign device, with the original source
// of Forwarded-NPDUs), routers, what I-Am says (device instance, max APDU,
// segmentation, vendor id and name from the BACnet vendor table), what
// ReadProperty and ReadPropertyMultiple answers on the Device object say
// (vendor-name, vendor-identifier, model-name, firmware-revision,
// application-software-version, object-name, location, description), the
// services each client uses on each device, with writes,
// DeviceCommunicationControl, ReinitializeDevice and AtomicWriteFile
// flagged, and Error, Reject and Abort answers. A device behind a BACnet
// router (an NPDU with a source network) is reported as
// AttrBACnetRemoteDevice of the router's address, never as the router's
// own identity. It never states a device class: BACnet does not say what
// a device is.
type BACnet struct {
	// onAPDU, when set (tests), is called with every APDU read and the
	// address it is about.
	onAPDU func(p *dissect.Packet, src netip.Addr, apdu []byte)
}

// NewBACnet returns a BACnet/IP dissector.
func NewBACnet() *BACnet { return &BACnet{} }

// Name returns "bacnet".
func (*BACnet) Name() string { return "bacnet" }

// Wants asks for UDP 47808 and heuristic probing of other UDP ports.
func (*BACnet) Wants() dissect.Wants {
	return dissect.Wants{UDPPorts: []uint16{BACnetPort}, Heuristic: true}
}

// bvlc checks the BVLC header and returns the function. exact is whether
// the header's length is the datagram's (some stacks send a wrong length;
// on port 47808 the datagram is read whole all the same, as Wireshark does).
func bvlc(b []byte) (fn uint8, exact, ok bool) {
	if len(b) < 4 || b[0] != 0x81 || b[1] > 0x0c {
		return 0, false, false
	}
	l := int(binary.BigEndian.Uint16(b[2:]))
	return b[1], l == len(b), l >= 4
}

// Probe reports whether p's payload is a BVLL message; on ports other than
// 47808 it must also carry a valid NPDU (version 1).
func (c *BACnet) Probe(p *dissect.Packet) bool {
	if p.Flow == nil || p.Flow.Proto != capture.ProtoUDP {
		return false
	}
	fn, exact, ok := bvlc(p.Payload)
	if !ok {
		return false
	}
	if p.SrcPort == BACnetPort || p.DstPort == BACnetPort {
		return true
	}
	if !exact {
		return false
	}
	switch fn {
	case 0x04:
		return len(p.Payload) > 11 && p.Payload[10] == 1
	case 0x09, 0x0a, 0x0b:
		return len(p.Payload) > 5 && p.Payload[4] == 1
	}
	return false
}

// Per-flow emitted keys: kind<<24 | value.
const (
	bacKeyRole = iota + 1
	bacKeyService
	bacKeyProp
	bacKeyError
	bacKeyIAm
	bacKeyRemote
	bacMaxKeys = 48
)

// bacnetFlow is the per-flow state.
type bacnetFlow struct {
	keys  [bacMaxKeys]uint32
	nkeys uint8
}

// add adds k and reports whether it was new and there was room.
func (st *bacnetFlow) add(k uint32) bool {
	for _, x := range st.keys[:st.nkeys] {
		if x == k {
			return false
		}
	}
	if int(st.nkeys) >= len(st.keys) {
		return false
	}
	st.keys[st.nkeys] = k
	st.nkeys++
	return true
}

// bacSrc is who an APDU is about: the B/IP address (the packet's source,
// or the original source of a Forwarded-NPDU) and, for a device behind a
// router, its network and MAC address.
type bacSrc struct {
	ip   netip.Addr
	net  uint16
	sadr []byte
}

// Handle reads a BVLL message.
func (c *BACnet) Handle(p *dissect.Packet, out dissect.Sink) {
	if p.Flow == nil {
		return
	}
	fn, _, ok := bvlc(p.Payload)
	if !ok {
		return
	}
	st, _ := p.Flow.State.(*bacnetFlow)
	if st == nil {
		st = &bacnetFlow{}
		p.Flow.State = st
	}
	b := p.Payload[4:]
	src := bacSrc{ip: p.SrcIP}
	switch fn {
	case 0x04: // Forwarded-NPDU: original B/IP address (6), NPDU
		if len(b) < 6 {
			return
		}
		c.role(p, st, p.SrcIP, RoleBACnetBBMD, 1, out)
		src.ip = netip.AddrFrom4([4]byte(b[:4]))
		b = b[6:]
	case 0x05: // Register-Foreign-Device: TTL (2)
		c.role(p, st, p.SrcIP, RoleBACnetForeignDevice, 2, out)
		c.role(p, st, p.DstIP, RoleBACnetBBMD, 3, out)
		if len(b) >= 2 && st.add(bacKeyRole<<24|0xffff) {
			c.emit(p, out, p.SrcIP, AttrBACnetForeignTTL, strconv.Itoa(int(binary.BigEndian.Uint16(b))), netip.Addr{})
		}
		return
	case 0x01, 0x02, 0x06, 0x08, 0x09: // BDT/FDT management, Distribute-Broadcast: to a BBMD
		if !p.DstIP.IsMulticast() && p.DstIP != enipBroadcast {
			c.role(p, st, p.DstIP, RoleBACnetBBMD, 3, out)
		}
		if fn != 0x09 {
			return
		}
	case 0x03, 0x07: // Read-BDT-Ack, Read-FDT-Ack: from a BBMD
		c.role(p, st, p.SrcIP, RoleBACnetBBMD, 1, out)
		return
	case 0x0a, 0x0b:
	default:
		return
	}
	if !src.ip.IsValid() || src.ip.IsUnspecified() {
		src.ip = p.SrcIP
	}
	c.npdu(p, st, src, b, out)
}

// npdu reads an NPDU (clause 6.2) and the APDU it carries.
func (c *BACnet) npdu(p *dissect.Packet, st *bacnetFlow, src bacSrc, b []byte, out dissect.Sink) {
	if len(b) < 2 || b[0] != 1 {
		return
	}
	ctl := b[1]
	b = b[2:]
	if ctl&0x20 != 0 { // DNET, DLEN, DADR
		if len(b) < 3 || len(b) < 3+int(b[2]) {
			return
		}
		b = b[3+int(b[2]):]
	}
	if ctl&0x08 != 0 { // SNET, SLEN, SADR
		if len(b) < 3 || len(b) < 3+int(b[2]) || b[2] == 0 {
			return
		}
		src.net = binary.BigEndian.Uint16(b)
		src.sadr = b[3 : 3+int(b[2])]
		b = b[3+int(b[2]):]
		c.role(p, st, src.ip, RoleBACnetRouter, 4, out)
	}
	if ctl&0x20 != 0 { // hop count
		if len(b) < 1 {
			return
		}
		b = b[1:]
	}
	if ctl&0x80 != 0 { // network layer message
		if len(b) >= 1 && (b[0] == 0x01 || b[0] == 0x03 || b[0] == 0x05 || b[0] == 0x06) {
			// I-Am-Router-To-Network, Router-Busy/Available, Initialize-Routing-Table-Ack
			c.role(p, st, src.ip, RoleBACnetRouter, 4, out)
		}
		return
	}
	c.apdu(p, st, src, b, out)
}

// apdu reads an APDU (clause 20.1).
func (c *BACnet) apdu(p *dissect.Packet, st *bacnetFlow, src bacSrc, b []byte, out dissect.Sink) {
	if len(b) < 2 {
		return
	}
	if c.onAPDU != nil {
		c.onAPDU(p, src.ip, b)
	}
	dst := p.DstIP
	switch b[0] >> 4 {
	case 0: // Confirmed-Request: flags, max segs/APDU, invoke id, [seq, window], service
		i := 3
		if b[0]&0x08 != 0 {
			i = 5
		}
		if len(b) <= i {
			return
		}
		svc := int(b[i])
		c.role(p, st, src.ip, RoleBACnetClient, 5, out)
		if !dst.IsMulticast() && dst != enipBroadcast {
			c.role(p, st, dst, RoleBACnetServer, 6, out)
		}
		if !st.add(bacKeyService<<24 | uint32(svc)) {
			return
		}
		v := "bacnet:" + bacName(bacConfirmed[:], svc, "confirmed")
		c.emit(p, out, dst, dissect.AttrService, v, src.ip)
		switch svc {
		case 8, 9, 10, 11, 15, 16:
			c.emit(p, out, dst, AttrBACnetWrite, v, src.ip)
		case 17:
			c.emit(p, out, dst, AttrBACnetDCC, v, src.ip)
		case 20:
			c.emit(p, out, dst, AttrBACnetReinitialize, v, src.ip)
		case 7:
			c.emit(p, out, dst, AttrBACnetFileWrite, v, src.ip)
		}
	case 1: // Unconfirmed-Request
		svc := int(b[1])
		switch svc {
		case 0:
			c.iAm(p, st, src, b[2:], out)
		case 8:
			c.role(p, st, src.ip, RoleBACnetClient, 5, out)
		case 10:
			if st.add(bacKeyService<<24 | 0x100 | uint32(svc)) {
				c.emit(p, out, src.ip, AttrBACnetWrite, "bacnet:writeGroup", netip.Addr{})
			}
		}
	case 3: // Complex-ACK: flags, invoke id, [seq, window], service
		if b[0]&0x08 != 0 || len(b) < 3 { // segments are not reassembled
			return
		}
		c.role(p, st, src.ip, RoleBACnetServer, 6, out)
		switch b[2] {
		case 12:
			c.readPropertyACK(p, st, src, b[3:], out)
		case 14:
			c.readPropertyMultipleACK(p, st, src, b[3:], out)
		}
	case 5: // Error: invoke id, service, error class, error code (enumerated)
		if len(b) < 3 {
			return
		}
		svc := int(b[2])
		r := b[3:]
		if len(r) > 0 && r[0] == 0x0e { // some services wrap the error in context tag 0
			r = r[1:]
		}
		cls, n := bacUnsigned(r, 9)
		if n <= 0 {
			return
		}
		code, m := bacUnsigned(r[n:], 9)
		if m <= 0 {
			return
		}
		c.answerError(p, st, src, 1, uint32(svc)<<16|uint32(cls&0xff)<<8|uint32(code&0xff),
			"bacnet:"+bacName(bacConfirmed[:], svc, "confirmed")+" error "+bacName(bacErrorClasses[:], int(cls), "class")+"/"+bacName(bacErrorCodes[:], int(code), "code"), out)
	case 6: // Reject: invoke id, reason
		if len(b) < 3 {
			return
		}
		c.answerError(p, st, src, 2, uint32(b[2]), "bacnet:reject "+bacName(bacRejectReasons[:], int(b[2]), "reason"), out)
	case 7: // Abort: flags (server bit), invoke id, reason
		if len(b) < 3 {
			return
		}
		c.answerError(p, st, src, 3, uint32(b[2]), "bacnet:abort "+bacName(bacAbortReasons[:], int(b[2]), "reason"), out)
	}
}

func (c *BACnet) answerError(p *dissect.Packet, st *bacnetFlow, src bacSrc, kind, k uint32, v string, out dissect.Sink) {
	if st.add(bacKeyError<<24 | kind<<20 | k&0xfffff) {
		c.emit(p, out, src.ip, AttrBACnetError, v, p.DstIP)
	}
}

// bacTag reads a tag header (clause 20.2.1): number, context class,
// length/value/type, and the header's size; n <= 0 when malformed.
func bacTag(b []byte) (num uint8, ctx bool, lvt uint32, n int) {
	if len(b) < 1 {
		return 0, false, 0, 0
	}
	num, ctx, lvt, n = b[0]>>4, b[0]&0x08 != 0, uint32(b[0]&7), 1
	if num == 0x0f {
		if len(b) < 2 {
			return 0, false, 0, 0
		}
		num, n = b[1], 2
	}
	if lvt == 5 {
		if len(b) < n+1 {
			return 0, false, 0, 0
		}
		lvt = uint32(b[n])
		n++
		switch lvt {
		case 254:
			if len(b) < n+2 {
				return 0, false, 0, 0
			}
			lvt = uint32(binary.BigEndian.Uint16(b[n:]))
			n += 2
		case 255:
			if len(b) < n+4 {
				return 0, false, 0, 0
			}
			lvt = binary.BigEndian.Uint32(b[n:])
			n += 4
		}
	}
	return num, ctx, lvt, n
}

// bacUnsigned reads an application-tagged unsigned or enumerated value
// (tag 2 or 9) — or a context-tagged one, when appTag is 0xff — and
// returns it and the bytes used (<= 0 when not one).
func bacUnsigned(b []byte, appTag uint8) (uint32, int) {
	num, ctx, l, n := bacTag(b)
	if n <= 0 || l > 4 || l == 0 || len(b) < n+int(l) {
		return 0, -1
	}
	if appTag != 0xff && (ctx || num != appTag) && !(appTag == 9 && !ctx && num == 2) {
		return 0, -1
	}
	var v uint32
	for _, x := range b[n : n+int(l)] {
		v = v<<8 | uint32(x)
	}
	return v, n + int(l)
}

// iAm reads an I-Am (clause 16.10.2): object identifier, max APDU length
// accepted, segmentation supported, vendor id, all application-tagged.
func (c *BACnet) iAm(p *dissect.Packet, st *bacnetFlow, src bacSrc, b []byte, out dissect.Sink) {
	num, ctx, l, n := bacTag(b)
	if n <= 0 || ctx || num != 12 || l != 4 || len(b) < n+4 {
		return
	}
	oid := binary.BigEndian.Uint32(b[n:])
	if oid>>22 != bacObjectDevice {
		return
	}
	b = b[n+4:]
	maxAPDU, n1 := bacUnsigned(b, 2)
	if n1 <= 0 {
		return
	}
	seg, n2 := bacUnsigned(b[n1:], 9)
	if n2 <= 0 {
		return
	}
	vendor, n3 := bacUnsigned(b[n1+n2:], 2)
	if n3 <= 0 {
		return
	}
	inst := oid & 0x3fffff
	k := uint32(bacKeyIAm)
	if src.net != 0 {
		k = bacKeyRemote
	}
	if !st.add(k<<24 | 1<<23 | inst) {
		return
	}
	vname := BACnetVendor(vendor)
	if src.net != 0 {
		d := "device " + strconv.Itoa(int(inst)) + " vendor " + strconv.Itoa(int(vendor))
		if vname != "" {
			d += " " + vname
		}
		c.emit(p, out, src.ip, AttrBACnetRemoteDevice, bacRemote(src)+d, netip.Addr{})
		return
	}
	c.role(p, st, src.ip, RoleBACnetDevice, 7, out)
	none := netip.Addr{}
	c.emit(p, out, src.ip, AttrBACnetInstance, strconv.Itoa(int(inst)), none)
	c.emit(p, out, src.ip, AttrBACnetVendorID, strconv.Itoa(int(vendor)), none)
	if vname != "" {
		c.emit(p, out, src.ip, dissect.AttrVendor, vname, none)
	}
	c.emit(p, out, src.ip, AttrBACnetMaxAPDU, strconv.Itoa(int(maxAPDU)), none)
	c.emit(p, out, src.ip, AttrBACnetSegmentation, bacName(bacSegmentation[:], int(seg), "segmentation"), none)
}

// bacRemote is the prefix naming a device behind a router.
func bacRemote(src bacSrc) string {
	var sb strings.Builder
	sb.WriteString("net ")
	sb.WriteString(strconv.Itoa(int(src.net)))
	sb.WriteString(" mac 0x")
	for _, x := range src.sadr {
		sb.WriteString(cipHex8(x))
	}
	sb.WriteString(": ")
	return sb.String()
}

// readPropertyACK reads a ReadProperty-ACK (clause 15.5.1.3): [0] object
// identifier, [1] property identifier, [2] array index, [3] value.
func (c *BACnet) readPropertyACK(p *dissect.Packet, st *bacnetFlow, src bacSrc, b []byte, out dissect.Sink) {
	num, ctx, l, n := bacTag(b)
	if n <= 0 || !ctx || num != 0 || l != 4 || len(b) < n+4 {
		return
	}
	oid := binary.BigEndian.Uint32(b[n:])
	b = b[n+4:]
	prop, m := bacUnsigned(b, 0xff)
	if m <= 0 {
		return
	}
	b = b[m:]
	if num, ctx, l, n = bacTag(b); n > 0 && ctx && num == 2 && l != 6 { // array index
		if len(b) < n+int(l) {
			return
		}
		return // an element of an array: not one of the identity properties
	}
	if num, ctx, l, n = bacTag(b); n <= 0 || !ctx || num != 3 || l != 6 {
		return
	}
	c.property(p, st, src, oid, prop, b[n:], out)
}

// readPropertyMultipleACK reads a ReadPropertyMultiple-ACK (clause
// 15.7.1.3): for each object, [0] object identifier, [1] { [2] property,
// [3] array index, [4] { value } or [5] { error } }.
func (c *BACnet) readPropertyMultipleACK(p *dissect.Packet, st *bacnetFlow, src bacSrc, b []byte, out dissect.Sink) {
	for obj := 0; obj < 64 && len(b) > 0; obj++ {
		num, ctx, l, n := bacTag(b)
		if n <= 0 || !ctx || num != 0 || l != 4 || len(b) < n+4 {
			return
		}
		oid := binary.BigEndian.Uint32(b[n:])
		b = b[n+4:]
		if num, ctx, l, n = bacTag(b); n <= 0 || !ctx || num != 1 || l != 6 {
			return
		}
		b = b[n:]
		for i := 0; i < 256; i++ {
			num, ctx, l, n = bacTag(b)
			if n <= 0 {
				return
			}
			if ctx && num == 1 && l == 7 { // end of this object's results
				b = b[n:]
				break
			}
			prop, m := bacUnsigned(b, 0xff)
			if m <= 0 || !ctx || num != 2 {
				return
			}
			b = b[m:]
			if num, ctx, l, n = bacTag(b); n > 0 && ctx && num == 3 && l <= 4 { // array index
				if len(b) < n+int(l) {
					return
				}
				b = b[n+int(l):]
				prop = 0xffffffff // an array element: not an identity property
			}
			num, ctx, l, n = bacTag(b)
			if n <= 0 || !ctx || l != 6 || (num != 4 && num != 5) {
				return
			}
			inner := b[n:]
			if num == 4 && prop != 0xffffffff {
				c.property(p, st, src, oid, prop, inner, out)
			}
			// Skip to the matching closing tag.
			rest := bacSkipConstructed(inner, num)
			if rest == nil {
				return
			}
			b = rest
		}
	}
}

// bacSkipConstructed returns what follows the closing tag matching an
// opening tag number num, whose contents start b; nil when malformed.
func bacSkipConstructed(b []byte, num uint8) []byte {
	depth := 0
	for i := 0; i < 4096 && len(b) > 0; i++ {
		tn, ctx, l, n := bacTag(b)
		if n <= 0 {
			return nil
		}
		switch {
		case ctx && l == 6:
			depth++
			b = b[n:]
		case ctx && l == 7:
			if depth == 0 {
				if tn != num {
					return nil
				}
				return b[n:]
			}
			depth--
			b = b[n:]
		case !ctx && tn == 1: // application boolean: value in the header
			b = b[n:]
		default:
			if len(b) < n+int(l) {
				return nil
			}
			b = b[n+int(l):]
		}
	}
	return nil
}

// property emits one Device object property's value (b starts at the
// value's first tag).
func (c *BACnet) property(p *dissect.Packet, st *bacnetFlow, src bacSrc, oid, prop uint32, b []byte, out dissect.Sink) {
	if oid>>22 != bacObjectDevice {
		return
	}
	var attr string
	switch prop {
	case propVendorName:
		attr = dissect.AttrVendor
	case propModelName:
		attr = dissect.AttrModel
	case propFirmwareRevision:
		attr = dissect.AttrFirmware
	case propAppSoftwareVersion:
		attr = AttrBACnetAppVersion
	case propObjectName:
		attr = dissect.AttrName
	case propLocation:
		attr = AttrBACnetLocation
	case propDescription:
		attr = AttrBACnetDescription
	case propVendorIdentifier:
		attr = AttrBACnetVendorID
	case propObjectIdentifier:
		attr = AttrBACnetInstance
	default:
		return
	}
	var v string
	switch prop {
	case propVendorIdentifier:
		id, n := bacUnsigned(b, 2)
		if n <= 0 {
			return
		}
		v = strconv.Itoa(int(id))
	case propObjectIdentifier:
		num, ctx, l, n := bacTag(b)
		if n <= 0 || ctx || num != 12 || l != 4 || len(b) < n+4 {
			return
		}
		id := binary.BigEndian.Uint32(b[n:])
		if id>>22 != bacObjectDevice || id&0x3fffff == bacWildcard {
			return
		}
		v = strconv.Itoa(int(id & 0x3fffff))
	default:
		num, ctx, l, n := bacTag(b)
		if n <= 0 || ctx || num != 7 || l < 1 || len(b) < n+int(l) {
			return
		}
		v = bacString(b[n], b[n+1:n+int(l)])
		if v == "" {
			return
		}
	}
	k := bacKeyProp<<24 | (oid&0x3fff)<<8 | prop&0xff
	if src.net != 0 {
		k = bacKeyRemote<<24 | (oid&0x3fff)<<8 | prop&0xff
	}
	if !st.add(k) {
		return
	}
	inst := strconv.Itoa(int(oid & 0x3fffff))
	if src.net != 0 {
		c.emit(p, out, src.ip, AttrBACnetRemoteDevice, bacRemote(src)+"device "+inst+" "+attr+"="+v, netip.Addr{})
		return
	}
	if oid&0x3fffff != bacWildcard && st.add(bacKeyIAm<<24|oid&0x3fffff) {
		c.emit(p, out, src.ip, AttrBACnetInstance, inst, netip.Addr{})
	}
	c.emit(p, out, src.ip, attr, v, netip.Addr{})
}

// bacString decodes a CharacterString (clause 20.2.9) of character set cs.
func bacString(cs byte, b []byte) string {
	if len(b) > 4*maxText {
		b = b[:4*maxText]
	}
	switch cs {
	case 4: // UCS-2, big-endian
		u := make([]uint16, 0, len(b)/2)
		for i := 0; i+1 < len(b); i += 2 {
			u = append(u, binary.BigEndian.Uint16(b[i:]))
		}
		return strings.TrimSpace(string(cleanText([]byte(string(utf16.Decode(u))))))
	case 5: // ISO 8859-1
		r := make([]rune, 0, len(b))
		for _, x := range b {
			r = append(r, rune(x))
		}
		return cipText([]byte(string(r)))
	}
	return cipText(b)
}

func (c *BACnet) role(p *dissect.Packet, st *bacnetFlow, ip netip.Addr, role string, k uint32, out dissect.Sink) {
	a := ip.As16()
	if !ip.IsValid() || !st.add(bacKeyRole<<24|k<<16|uint32(a[14])<<8|uint32(a[15])) {
		return
	}
	c.emit(p, out, ip, dissect.AttrRole, role, netip.Addr{})
}

func (c *BACnet) emit(p *dissect.Packet, out dissect.Sink, ip netip.Addr, attr, value string, peer netip.Addr) {
	out.Observe(dissect.Observation{Time: p.Time, IP: ip, Attr: attr, Value: value, Protocol: "bacnet", Peer: peer})
}

func init() { register(45, "bacnet", func() dissect.Dissector { return NewBACnet() }) }
