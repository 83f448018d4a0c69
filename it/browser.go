package it

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strconv"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
)

// Attributes the browser dissector emits besides the dissect.Attr* ones.
const (
	AttrBrowserOSVersion  = "browser.os_version"  // "major.minor" of a host announcement, e.g. "10.0"
	AttrBrowserServerType = "browser.server_type" // server type bits by name, comma-separated
	AttrBrowserComment    = "browser.comment"
)

// Browser protocol opcodes (MS-BRWS section 2.2).
const (
	BrowserHostAnnouncement        = 0x01
	BrowserDomainAnnouncement      = 0x0C
	BrowserLocalMasterAnnouncement = 0x0F
)

// browserServerTypes names the server type bits (MS-BRWS section 2.2.1.1,
// SV_TYPE_* of MS-RAP section 2.5.5.2.1), least significant first.
var browserServerTypes = [32]string{
	"workstation", "server", "sql", "domain-controller",
	"backup-domain-controller", "time-source", "apple", "novell",
	"domain-member", "print", "dialin", "unix",
	"nt", "wfw", "mfpn", "nt-server",
	"potential-browser", "backup-browser", "master-browser", "domain-master-browser",
	"osf", "vms", "windows", "dfs",
	"cluster-nt", "terminal-server", "cluster-vs-nt", "",
	"dce", "alternate-xport", "local-list-only", "domain-enum",
}

// Server type bits that decide what a host announcement says.
const (
	svTypeDomainCtrl = 0x00000008
	svTypeUnix       = 0x00000800 // Samba and other Unix servers
	svTypeNT         = 0x00001000
	svTypeServerNT   = 0x00008000
	svTypeMaster     = 0x00040000
)

// BrowserAnnouncement is a HostAnnouncement, LocalMasterAnnouncement or
// DomainAnnouncement (MS-BRWS section 2.2: HostAnnouncement 2.2.1,
// DomainAnnouncement 2.2.7, LocalMasterAnnouncement laid out as a host
// announcement), with the NetBIOS datagram that carried it. Byte slices
// point into the message.
type BrowserAnnouncement struct {
	Opcode      uint8
	SourceIP    netip.Addr // from the NetBIOS datagram header
	Destination NBName     // the datagram's destination name
	ServerName  []byte     // MachineGroup for a DomainAnnouncement
	OSMajor     uint8      // version fields at offsets 22 and 23
	OSMinor     uint8
	ServerType  uint32
	Comment     []byte // LocalMasterBrowserName for a DomainAnnouncement
}

// ParseBrowser reads b, the payload of a UDP datagram to port 138: a
// NetBIOS datagram (RFC 1002 section 4.4.1) holding an SMB
// Transaction request (MS-CIFS section 2.2.4.33) written to the
// \MAILSLOT\BROWSE mailslot (MS-MAIL), whose data is a browser
// announcement. It reports false for anything else, including fragments
// of a datagram. ParseBrowser allocates nothing.
func ParseBrowser(b []byte, a *BrowserAnnouncement) bool {
	*a = BrowserAnnouncement{}
	smb, ok := nbDatagram(b, a)
	if !ok {
		return false
	}
	data, ok := browseMailslot(smb)
	if !ok || len(data) < 32 {
		return false
	}
	a.Opcode = data[0]
	switch a.Opcode {
	case BrowserHostAnnouncement, BrowserDomainAnnouncement, BrowserLocalMasterAnnouncement:
	default:
		return false
	}
	a.ServerName = nulTerm(data[6:22])
	a.OSMajor, a.OSMinor = data[22], data[23]
	a.ServerType = binary.LittleEndian.Uint32(data[24:28])
	a.Comment = nulTerm(data[32:])
	return true
}

// nbDatagram checks the header of a whole direct or broadcast NetBIOS
// datagram and returns its user data.
func nbDatagram(b []byte, a *BrowserAnnouncement) ([]byte, bool) {
	if len(b) < 14+34+34 {
		return nil, false
	}
	if b[0] < 0x10 || b[0] > 0x12 || b[1]&0x03 != 0x02 || b[1]&0xf0 != 0 {
		return nil, false // not DIRECT_UNIQUE/GROUP or BROADCAST; or a fragment
	}
	a.SourceIP = netip.AddrFrom4([4]byte(b[4:8]))
	l := int(binary.BigEndian.Uint16(b[10:]))
	if binary.BigEndian.Uint16(b[12:]) != 0 {
		return nil, false // PACKET_OFFSET of a fragment
	}
	end := 14 + l
	if l < 68 || end > len(b) {
		return nil, false // shorter than two names, or cut short
	}
	_, off, ok := decodeNBName(b[:end], 14, false)
	if !ok {
		return nil, false
	}
	a.Destination, off, ok = decodeNBName(b[:end], off, false)
	if !ok {
		return nil, false
	}
	return b[off:end], true
}

// browseMailslot returns the data of an SMB Transaction written to the
// \MAILSLOT\BROWSE mailslot.
func browseMailslot(smb []byte) ([]byte, bool) {
	const hdr = 32
	if len(smb) < hdr+1 || string(smb[:4]) != "\xffSMB" || smb[4] != 0x25 {
		return nil, false
	}
	wc := int(smb[hdr])
	if wc < 14 || hdr+1+2*wc+2 > len(smb) {
		return nil, false
	}
	w := smb[hdr+1:]
	dataCount := int(binary.LittleEndian.Uint16(w[22:]))
	dataOff := int(binary.LittleEndian.Uint16(w[24:]))
	setup := int(w[26])
	if wc != 14+setup {
		return nil, false
	}
	bc := int(binary.LittleEndian.Uint16(smb[hdr+1+2*wc:]))
	bs := smb[hdr+1+2*wc+2:]
	if bc > len(bs) {
		bc = len(bs)
	}
	name := bs[:bc]
	if i := bytes.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	if !bytes.EqualFold(name, []byte(`\MAILSLOT\BROWSE`)) {
		return nil, false
	}
	if dataOff < hdr || dataOff+dataCount > len(smb) {
		return nil, false
	}
	return smb[dataOff : dataOff+dataCount], true
}

// nulTerm returns b up to its first NUL.
func nulTerm(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

// Browser reads the announcements of the Common Internet File System
// Browser protocol (MS-BRWS) that Windows and Samba hosts broadcast in
// NetBIOS datagrams on UDP port 138: from a HostAnnouncement or
// LocalMasterAnnouncement the host's NetBIOS name, OS version
// ("browser.os_version", and dissect.AttrOS where the version names one
// Windows release), server type bits ("browser.server_type"), comment and
// workgroup (dissect.AttrDomain, from the name the announcement is sent
// to); from a DomainAnnouncement the workgroup and the master browser's
// name.
//
// Browser repeats nothing it said within DefaultDiscoveryRefresh.
type Browser struct {
	seen advertisers
}

// NewBrowser returns a browser announcement dissector.
func NewBrowser() *Browser { return &Browser{} }

// Name returns "browser".
func (*Browser) Name() string { return "browser" }

// Wants asks for UDP port 138.
func (*Browser) Wants() dissect.Wants { return dissect.Wants{UDPPorts: []uint16{NBDGMPort}} }

// Probe reports whether p's payload is a whole NetBIOS datagram with
// well-formed names. Datagrams that do not carry browser announcements
// are claimed too: the flow is NetBIOS datagram service.
func (*Browser) Probe(p *dissect.Packet) bool {
	if p == nil || p.Packet == nil {
		return false
	}
	var a BrowserAnnouncement
	_, ok := nbDatagram(p.Payload, &a)
	return ok
}

// Handle reads one datagram.
func (d *Browser) Handle(p *dissect.Packet, out dissect.Sink) {
	if p == nil || p.Packet == nil {
		return
	}
	var a BrowserAnnouncement
	if !ParseBrowser(p.Payload, &a) {
		return
	}
	ip := a.SourceIP
	if !unicastIPv4(ip.As4()) {
		ip = p.SrcIP
		if !ip.Is4() || !unicastIPv4(ip.As4()) {
			return
		}
	}
	var nb, cb [64]byte
	name := cleanText(nb[:0], a.ServerName, 16)
	comment := cleanText(cb[:0], a.Comment, 64)
	if len(name) == 0 {
		return
	}
	sum := nbDigest(ip, name, a.Opcode, false) ^ digest(comment)*7 ^ uint64(a.ServerType)<<16 ^ uint64(a.OSMajor)<<8 ^ uint64(a.OSMinor)
	if !d.seen.fresh(capture.MAC{}, sum, p.Time.UnixNano(), int64(DefaultDiscoveryRefresh)) {
		return
	}
	emit := func(attr, v string) {
		if v != "" {
			out.Observe(dissect.Observation{Time: p.Time, IP: ip, Attr: attr, Value: v, Protocol: "browser"})
		}
	}
	if a.Opcode == BrowserDomainAnnouncement {
		// Sent by a workgroup's master browser: ServerName is the
		// workgroup, Comment the master browser's own name.
		emit(dissect.AttrDomain, string(name))
		emit(dissect.AttrHostname, string(comment))
		emit(dissect.AttrRole, RoleMasterBrowser)
		return
	}
	emit(dissect.AttrHostname, string(name))
	var wb [64]byte
	if s := a.Destination.Suffix; s == NBSuffixMasterBrwsr || s == NBSuffixBrowserElec {
		emit(dissect.AttrDomain, string(a.Destination.Text(wb[:0])))
	}
	emit(AttrBrowserOSVersion, strconv.Itoa(int(a.OSMajor))+"."+strconv.Itoa(int(a.OSMinor)))
	emit(dissect.AttrOS, BrowserOS(a.OSMajor, a.OSMinor, a.ServerType))
	var tb [400]byte
	emit(AttrBrowserServerType, string(ServerTypeNames(tb[:0], a.ServerType)))
	emit(AttrBrowserComment, string(comment))
	if a.ServerType&svTypeDomainCtrl != 0 {
		emit(dissect.AttrRole, RoleDomainController)
	}
	if a.Opcode == BrowserLocalMasterAnnouncement || a.ServerType&svTypeMaster != 0 {
		emit(dissect.AttrRole, RoleMasterBrowser)
	}
}

// ServerTypeNames appends the names of the bits set in t to dst,
// comma-separated.
func ServerTypeNames(dst []byte, t uint32) []byte {
	for i, n := range browserServerTypes {
		if t&(1<<i) == 0 {
			continue
		}
		if n == "" {
			n = "0x" + strconv.FormatUint(1<<i, 16)
		}
		if len(dst) > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, n...)
	}
	return dst
}

// BrowserOS names the Windows release that announces version
// major.minor with server type t, or returns "" when the version names
// several (10.0 is Windows 10, 11 and Server 2016 to 2025) or the host is
// not Windows (Samba sets the Unix bit and announces a configured
// version). Releases are told from their server editions by the
// SV_TYPE_SERVER_NT bit.
func BrowserOS(major, minor uint8, t uint32) string {
	if t&svTypeUnix != 0 || t&(svTypeNT|svTypeServerNT) == 0 {
		return ""
	}
	server := t&svTypeServerNT != 0
	pick := func(ws, srv string) string {
		if server {
			return srv
		}
		return ws
	}
	switch uint16(major)<<8 | uint16(minor) {
	case 0x0400:
		return "Windows NT 4.0"
	case 0x0500:
		return "Windows 2000"
	case 0x0501:
		return pick("Windows XP", "")
	case 0x0502:
		return pick("", "Windows Server 2003")
	case 0x0600:
		return pick("Windows Vista", "Windows Server 2008")
	case 0x0601:
		return pick("Windows 7", "Windows Server 2008 R2")
	case 0x0602:
		return pick("Windows 8", "Windows Server 2012")
	case 0x0603:
		return pick("Windows 8.1", "Windows Server 2012 R2")
	}
	return ""
}

func init() { register(61, "browser", func() dissect.Dissector { return NewBrowser() }) }
