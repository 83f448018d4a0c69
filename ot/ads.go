package ot

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
)

// Beckhoff ADS/AMS ports: AMS over TCP, and the UDP port of the TwinCAT
// discovery and route service.
const (
	ADSPort          = 48898
	ADSDiscoveryPort = 48899
)

// ADS roles (dissect.AttrRole values).
const (
	RoleADSServer = "ads-server" // answers ADS commands (a TwinCAT runtime)
	RoleADSClient = "ads-client" // sends them (HMI, engineering, another PLC)
)

// Attributes the ADS dissector emits besides the dissect.Attr* ones.
const (
	// AttrADSNetID is the AMS Net Id a device uses ("5.13.117.96.1.1"):
	// the source Net Id of the AMS packets it sends on the flow, or the
	// one its discovery answer states.
	AttrADSNetID = "ads.ams_net_id"
	// AttrADSPort is the AMS ports a device uses on the flow, sorted and
	// comma-separated ("300,800,10000"): the target ports of the commands
	// it is sent (its ADS devices: 10000 system service, 800/801 or 851..
	// PLC runtimes, 300 I/O, 500 NC), and the source ports of the
	// commands it sends. At most adsMaxPorts per flow and side; emitted
	// when the list grows.
	AttrADSPort = "ads.ams_port"
	// AttrADSDevice is what Read Device Info replies say of the ADS
	// devices on the flow: "300 I/O Server 2.11.2100; 800 PLC Server
	// 2.11.2103" (AMS port, name, version; sorted, "; "-separated),
	// emitted when it grows.
	AttrADSDevice = "ads.device"
	// AttrADSWrite flags a client (Peer) writing (ADS Write, command 3).
	AttrADSWrite = "ads.write"
	// AttrADSControl flags a client (Peer) changing an ADS device's state
	// (Write Control, command 5): the states asked for, sorted and
	// comma-separated ("ads:5 write-control run,stop").
	AttrADSControl = "ads.control"
	// AttrADSTwinCAT is the TwinCAT version a discovery reply states.
	AttrADSTwinCAT = "ads.twincat_version"
)

// ADS commands (Beckhoff Information System, "ADS specification", TCP
// ADS commands: command ids 0x0000..0x0009).
var adsCommands = newVndTable("ads", vndDec, []vndCommand{
	{1, "read-device-info", vndRead},
	{2, "read", vndRead},
	{3, "write", vndWrite},
	{4, "read-state", vndRead},
	{5, "write-control", vndControl},
	{6, "add-device-notification", vndRead},
	{7, "delete-device-notification", vndRead},
	{8, "device-notification", vndRead},
	{9, "read-write", vndRead},
})

var adsFlags = [4]string{vndWrite: AttrADSWrite}

// ADS states of Write Control (ADSSTATE in the ADS specification).
var adsStates = [...]string{"invalid", "idle", "reset", "init", "start", "run", "stop", "savecfg", "loadcfg",
	"powerfailure", "powergood", "error", "shutdown", "suspend", "resume", "config", "reconfig"}

// AMS/TCP header: reserved (2, zero), length (4, little endian) of the AMS
// packet. AMS header (32 bytes): target Net Id (6), target port (2), source
// Net Id (6), source port (2), command id (2), state flags (2), data
// length (4), error code (4), invoke id (4); all little endian.
const (
	adsTCPHeaderLen = 6
	amsHeaderLen    = 32
	adsMaxLen       = 1 << 20
	adsMaxPorts     = 16

	// State flags: 0x0001 response, 0x0002 no return, 0x0004 ADS command,
	// 0x0008 system command, 0x0010 high priority, 0x0020 timestamp
	// added, 0x0040 UDP, 0x0080 init command, 0x8000 broadcast. Over TCP
	// the UDP bit and the undefined 0x7f00 are clear.
	adsStateResponse = 0x0001
	adsStateADSCmd   = 0x0004
	adsStateMask     = 0x7f40
)

// ADS discovery (UDP 48899), as answered by TwinCAT routers and read by
// public tools (nmap twincat-scan, pyads route functions): magic
// 03 66 14 71, invoke id (4), service (4 LE: 1 discovery request,
// 0x80000001 its reply; 6 add route, 0x80000006), AMS Net Id (6), AMS port
// (2), tag count (4), then tags of id (2), length (2), data: 5 host name,
// 3 TwinCAT version (major, minor, build LE), 4 OS version (Windows
// OSVERSIONINFO: size, major, minor, build, platform, 4 bytes each).
const (
	adsDiscHeaderLen = 24
	adsDiscResponse  = 0x80000000
	adsDiscSearch    = 1
	adsDiscAddRoute  = 6
	adsTagVersion    = 3
	adsTagOS         = 4
	adsTagHostname   = 5
	adsDiscMaxTags   = 32
)

var adsDiscoveryMagic = [4]byte{0x03, 0x66, 0x14, 0x71}

// ADS reads Beckhoff ADS over AMS/TCP (port 48898) and the TwinCAT
// discovery service (UDP 48899). The AMS/TCP and AMS headers confirm the
// protocol (reserved bytes zero, lengths agreeing, an ADS command id and
// state flags); the discovery magic confirms discovery.
//
// It learns the roles, the AMS Net Ids and ports of both sides, the ADS
// commands each client uses on each server (dissect.AttrService with Peer
// the client) with flags for writes and state changes, and what Read
// Device Info replies say of each ADS device (name, version, build; the
// first reply's version is the device's firmware, i.e. its TwinCAT
// version). A discovery reply gives the host name, AMS Net Id, TwinCAT
// version and OS. Each fact is emitted once per flow.
type ADS struct{}

// NewADS returns an ADS dissector.
func NewADS() *ADS { return &ADS{} }

// Name returns "ads".
func (*ADS) Name() string { return "ads" }

// Wants asks for TCP 48898 and UDP 48899.
func (*ADS) Wants() dissect.Wants {
	return dissect.Wants{TCPPorts: []uint16{ADSPort}, UDPPorts: []uint16{ADSDiscoveryPort}}
}

const (
	adsEmRoles = 1 << iota
	adsEmFirmware
	adsEmNetID0
	adsEmNetID1
	adsEmDisc
	adsEmRoute
)

type adsFlow struct {
	s        [2]dissect.Stream
	services bitset256
	other    vndCodes
	ports    [2][adsMaxPorts]uint16
	nports   [2]uint8
	devices  [adsMaxPorts]uint16 // AMS ports whose device info was emitted
	infos    [adsMaxPorts]string // and what it said
	ndevices uint8
	controls uint32 // ADS states whose Write Control was flagged
	flags    uint16
}

// amsHeader checks an AMS header at the start of b and returns the AMS
// packet's length (header and data).
func amsHeader(b []byte) (int, bool) {
	if len(b) < amsHeaderLen {
		return 0, false
	}
	cmd := binary.LittleEndian.Uint16(b[16:])
	state := binary.LittleEndian.Uint16(b[18:])
	if cmd == 0 || cmd > 9 || state&adsStateADSCmd == 0 || state&adsStateMask != 0 {
		return 0, false
	}
	n := binary.LittleEndian.Uint32(b[20:])
	if n > adsMaxLen {
		return 0, false
	}
	return amsHeaderLen + int(n), true
}

// adsTCPHeader checks the AMS/TCP header and the AMS header after it, and
// returns the frame's whole length.
func adsTCPHeader(b []byte) (int, bool) {
	if len(b) < adsTCPHeaderLen+amsHeaderLen || b[0] != 0 || b[1] != 0 {
		return 0, false
	}
	l := binary.LittleEndian.Uint32(b[2:])
	n, ok := amsHeader(b[adsTCPHeaderLen:])
	if !ok || uint32(n) != l {
		return 0, false
	}
	return adsTCPHeaderLen + n, true
}

// Probe confirms AMS/TCP or the discovery service.
func (a *ADS) Probe(p *dissect.Packet) bool {
	if p.Flow == nil {
		return false
	}
	switch p.Flow.Proto {
	case capture.ProtoTCP:
		_, ok := adsTCPHeader(p.Payload)
		return ok
	case capture.ProtoUDP:
		return adsDiscovery(p.Payload)
	}
	return false
}

func adsDiscovery(b []byte) bool {
	if len(b) < adsDiscHeaderLen || [4]byte(b[:4]) != adsDiscoveryMagic {
		return false
	}
	svc := binary.LittleEndian.Uint32(b[8:]) &^ adsDiscResponse
	return svc >= 1 && svc <= 0x10
}

// Handle reads the AMS/TCP frames of a segment, or a discovery datagram.
func (a *ADS) Handle(p *dissect.Packet, out dissect.Sink) {
	if p.Flow == nil || len(p.Payload) == 0 {
		return
	}
	st := flowState[adsFlow](p.Flow)
	if p.Flow.Proto == capture.ProtoUDP {
		a.discovery(p, st, p.Payload, out)
		return
	}
	tcpRecords(&st.s[p.Dir&1], p, adsTCPHeaderLen+amsHeaderLen, adsTCPHeader, func(b []byte) { a.ams(p, st, b[adsTCPHeaderLen:], out) })
}

// ams reads one AMS packet (header, then ADS data, possibly cut short).
func (a *ADS) ams(p *dissect.Packet, st *adsFlow, b []byte, out dissect.Sink) {
	cmd := binary.LittleEndian.Uint16(b[16:])
	resp := binary.LittleEndian.Uint16(b[18:])&adsStateResponse != 0
	srv, cli := roles(out, p, "ads", resp, st.flags&adsEmRoles != 0, RoleADSServer, RoleADSClient)
	st.flags |= adsEmRoles
	d := p.Dir & 1
	if flag := uint16(adsEmNetID0) << d; st.flags&flag == 0 {
		st.flags |= flag
		vndEmit(out, p, "ads", p.SrcIP, AttrADSNetID, amsNetID(b[8:14]), netip.Addr{})
	}
	// The port the sender uses: the target port of a command is the
	// receiver's, the source port the sender's.
	a.port(p, st, d, p.SrcIP, binary.LittleEndian.Uint16(b[14:]), out)
	if !resp {
		a.port(p, st, d^1, p.DstIP, binary.LittleEndian.Uint16(b[6:]), out)
	}
	data := b[amsHeaderLen:]
	if !resp {
		vndService(out, p, "ads", adsCommands, &st.services, &st.other, srv, cli, cmd, adsFlags)
		if cmd == 5 {
			// Write Control: ADS state (2), device state (2), length (4).
			if len(data) >= 2 {
				s := binary.LittleEndian.Uint16(data)
				if int(s) < len(adsStates) && st.controls&(1<<s) == 0 {
					st.controls |= 1 << s
					var names []string
					for i, n := range adsStates {
						if st.controls&(1<<i) != 0 {
							names = append(names, n)
						}
					}
					vndEmit(out, p, "ads", srv, AttrADSControl, "ads:5 write-control "+vndJoin(names, ","), cli)
				}
			}
		}
		return
	}
	if cmd != 1 || binary.LittleEndian.Uint32(b[24:]) != 0 {
		return
	}
	// Read Device Info reply: result (4), major (1), minor (1), build (2),
	// device name (16). The replying port is the response's source port.
	if len(data) < 24 || binary.LittleEndian.Uint32(data) != 0 {
		return
	}
	port := binary.LittleEndian.Uint16(b[14:])
	for i := 0; i < int(st.ndevices); i++ {
		if st.devices[i] == port {
			return
		}
	}
	if int(st.ndevices) == len(st.devices) {
		return
	}
	st.devices[st.ndevices] = port
	version := strconv.Itoa(int(data[4])) + "." + strconv.Itoa(int(data[5])) + "." + strconv.Itoa(int(binary.LittleEndian.Uint16(data[6:])))
	name := vndText(data[8:24])
	v := strconv.Itoa(int(port)) + " " + version
	if name != "" {
		v = strconv.Itoa(int(port)) + " " + name + " " + version
	}
	st.infos[st.ndevices] = v
	st.ndevices++
	vndEmit(out, p, "ads", srv, AttrADSDevice, adsDevices(st.infos[:st.ndevices]), netip.Addr{})
	if st.flags&adsEmFirmware == 0 {
		st.flags |= adsEmFirmware
		vndEmit(out, p, "ads", srv, dissect.AttrFirmware, "TwinCAT "+version, netip.Addr{})
	}
}

// port emits an AMS port of ip (side d of the flow) once.
func (a *ADS) port(p *dissect.Packet, st *adsFlow, d flow.Dir, ip netip.Addr, port uint16, out dissect.Sink) {
	ps := &st.ports[d]
	for i := 0; i < int(st.nports[d]); i++ {
		if ps[i] == port {
			return
		}
	}
	if int(st.nports[d]) == len(ps) {
		return
	}
	ps[st.nports[d]] = port
	st.nports[d]++
	sorted := slices.Clone(ps[:st.nports[d]])
	slices.Sort(sorted)
	var b []byte
	for i, x := range sorted {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, uint64(x), 10)
	}
	vndEmit(out, p, "ads", ip, AttrADSPort, string(b), netip.Addr{})
}

// adsDevices renders the device infos of a flow, sorted by AMS port.
func adsDevices(infos []string) string {
	s := slices.Clone(infos)
	slices.SortFunc(s, func(a, b string) int {
		pa, _, _ := strings.Cut(a, " ")
		pb, _, _ := strings.Cut(b, " ")
		na, _ := strconv.Atoi(pa)
		nb, _ := strconv.Atoi(pb)
		return na - nb
	})
	return strings.Join(s, "; ")
}

// amsNetID renders a 6-byte AMS Net Id.
func amsNetID(b []byte) string {
	var buf [24]byte
	s := buf[:0]
	for i, c := range b[:6] {
		if i > 0 {
			s = append(s, '.')
		}
		s = strconv.AppendUint(s, uint64(c), 10)
	}
	return string(s)
}

// discovery reads a discovery datagram: the reply tells who the sender is.
func (a *ADS) discovery(p *dissect.Packet, st *adsFlow, b []byte, out dissect.Sink) {
	if !adsDiscovery(b) {
		return
	}
	svc := binary.LittleEndian.Uint32(b[8:])
	if svc&adsDiscResponse == 0 {
		if svc == adsDiscAddRoute && st.flags&adsEmRoute == 0 {
			st.flags |= adsEmRoute
			vndEmit(out, p, "ads", p.DstIP, dissect.AttrService, "ads:discovery add-route", p.SrcIP)
		}
		return
	}
	if svc != adsDiscResponse|adsDiscSearch || st.flags&adsEmDisc != 0 {
		return
	}
	st.flags |= adsEmDisc
	dev := p.SrcIP
	vndEmit(out, p, "ads", dev, AttrADSNetID, amsNetID(b[12:18]), netip.Addr{})
	vndEmit(out, p, "ads", dev, dissect.AttrRole, RoleADSServer, netip.Addr{})
	n := binary.LittleEndian.Uint32(b[20:])
	t := b[adsDiscHeaderLen:]
	for i := 0; i < int(min(n, adsDiscMaxTags)) && len(t) >= 4; i++ {
		id := binary.LittleEndian.Uint16(t)
		l := int(binary.LittleEndian.Uint16(t[2:]))
		if l > len(t)-4 {
			return
		}
		v := t[4 : 4+l]
		t = t[4+l:]
		switch id {
		case adsTagHostname:
			if h := vndText(v); h != "" {
				vndEmit(out, p, "ads", dev, dissect.AttrHostname, h, netip.Addr{})
			}
		case adsTagVersion:
			if len(v) >= 4 {
				tc := strconv.Itoa(int(v[0])) + "." + strconv.Itoa(int(v[1])) + "." + strconv.Itoa(int(binary.LittleEndian.Uint16(v[2:])))
				vndEmit(out, p, "ads", dev, AttrADSTwinCAT, tc, netip.Addr{})
			}
		case adsTagOS:
			if os := adsOS(v); os != "" {
				vndEmit(out, p, "ads", dev, dissect.AttrOS, os, netip.Addr{})
			}
		}
	}
}

// adsOS renders an OSVERSIONINFO (size, major, minor, build, platform id).
func adsOS(v []byte) string {
	if len(v) < 20 {
		return ""
	}
	major := binary.LittleEndian.Uint32(v[4:])
	minor := binary.LittleEndian.Uint32(v[8:])
	build := binary.LittleEndian.Uint32(v[12:])
	ver := strconv.FormatUint(uint64(major), 10) + "." + strconv.FormatUint(uint64(minor), 10)
	switch binary.LittleEndian.Uint32(v[16:]) {
	case 2: // VER_PLATFORM_WIN32_NT
		return "Windows NT " + ver + " build " + strconv.FormatUint(uint64(build), 10)
	case 3: // VER_PLATFORM_WIN32_CE
		return "Windows CE " + ver
	}
	return ""
}

func init() { register(61, "ads", func() dissect.Dissector { return NewADS() }) }
