package ot

import (
	"bytes"
	"net/netip"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
)

// Niagara Fox ports: 1911 plain, 4911 over TLS (only its plain-text start,
// if any, can be read).
var FoxPorts = []uint16{1911, 4911}

// Fox roles (dissect.AttrRole values).
const (
	RoleFoxServer        = "fox-server"        // answers the hello
	RoleFoxClient        = "fox-client"        // opens the session
	RoleNiagaraStation   = "niagara-station"   // app.name Station
	RoleNiagaraWorkbench = "niagara-workbench" // app.name Workbench
)

// Attributes the Fox dissector emits besides the dissect.Attr* ones.
const (
	AttrFoxVersion = "fox.version"  // fox protocol version
	AttrFoxApp     = "fox.app"      // "Station 3.5.41.1": app.name and app.version
	AttrFoxVM      = "fox.vm"       // "J9 2.3": vm.name and vm.version
	AttrFoxHostID  = "fox.host_id"  // hostId, Niagara's licence host id
	AttrFoxBrand   = "fox.brand_id" // brandId (vykon, ...)
	AttrFoxAddress = "fox.host_address"
)

// The hello exchange (as read by nmap's fox-info script): a line
// "fox a <n> -1 fox hello", then "{", then one "key=type:value" line per
// field (s: string, i: integer, b: bytes, o: object), then "};;".
var (
	foxPrefix = []byte("fox a ")
	foxHello  = []byte("fox hello")
	foxEnd    = []byte("};;")
)

// Fox reads the Niagara Fox hello exchange of Tridium Niagara stations
// and Workbench. The "fox a" message start confirms the protocol. From
// each side's hello it learns the host name, station name, Niagara
// application and version (a station's version is its firmware), Java VM,
// OS, host id and brand, and the roles. Each side's hello is read once
// per flow; the rest of the session is not read.
type Fox struct{}

// NewFox returns a Fox dissector.
func NewFox() *Fox { return &Fox{} }

// Name returns "fox".
func (*Fox) Name() string { return "fox" }

// Wants asks for TCP 1911 and 4911, and heuristic probing.
func (*Fox) Wants() dissect.Wants { return dissect.Wants{TCPPorts: FoxPorts, Heuristic: true} }

type foxFlow struct {
	s     [2]dissect.Stream
	done  [2]bool
	roles bool
}

// Probe accepts a TCP segment starting "fox a " followed by a digit.
func (f *Fox) Probe(p *dissect.Packet) bool {
	if p.Flow == nil || p.Flow.Proto != capture.ProtoTCP {
		return false
	}
	b := p.Payload
	return len(b) > len(foxPrefix) && bytes.HasPrefix(b, foxPrefix) && b[len(foxPrefix)] >= '0' && b[len(foxPrefix)] <= '9'
}

// foxMaxHello bounds the bytes buffered while waiting for a hello's end.
const foxMaxHello = 8 << 10

// Handle buffers each side's first message until "};;" and reads it if it
// is a hello.
func (f *Fox) Handle(p *dissect.Packet, out dissect.Sink) {
	if p.Flow == nil || p.Flow.Proto != capture.ProtoTCP || len(p.Payload) == 0 {
		return
	}
	st, ok := p.Flow.State.(*foxFlow)
	if !ok {
		st = &foxFlow{}
		p.Flow.State = st
	}
	d := p.Dir & 1
	if st.done[d] {
		return
	}
	if !st.roles {
		st.roles = true
		vndEmit(out, p, "fox", p.Server(), dissect.AttrRole, RoleFoxServer, netip.Addr{})
		vndEmit(out, p, "fox", p.Client(), dissect.AttrRole, RoleFoxClient, netip.Addr{})
	}
	s := &st.s[d]
	s.Max = foxMaxHello
	if s.Push(p.TCPSeq, p.Payload) {
		// A gap or an overflow: the hello is lost on this side.
		st.done[d] = true
		st.s[d] = dissect.Stream{}
		return
	}
	b := s.Bytes()
	end := bytes.Index(b, foxEnd)
	if end < 0 {
		if !bytes.HasPrefix(b, foxPrefix[:min(len(b), len(foxPrefix))]) {
			st.done[d] = true
			st.s[d] = dissect.Stream{}
		}
		return
	}
	st.done[d] = true
	f.hello(p, b[:end], out)
	st.s[d] = dissect.Stream{} // release the buffer
}

// hello reads one message; only "fox hello" messages are used.
func (f *Fox) hello(p *dissect.Packet, b []byte, out dissect.Sink) {
	nl := bytes.IndexByte(b, '\n')
	if nl < 0 || !bytes.HasPrefix(b, foxPrefix) || !bytes.Contains(b[:nl], foxHello) {
		return
	}
	ip := p.SrcIP
	var appName, appVer, vmName, vmVer, osName, osVer []byte
	for rest := b[nl+1:]; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		key, val, ok := bytes.Cut(line, []byte("=s:"))
		if !ok || len(val) == 0 {
			continue
		}
		switch string(key) {
		case "fox.version":
			f.emit(p, out, ip, AttrFoxVersion, val)
		case "hostName":
			if _, err := netip.ParseAddr(string(val)); err != nil {
				f.emit(p, out, ip, dissect.AttrHostname, val)
			}
		case "hostAddress":
			f.emit(p, out, ip, AttrFoxAddress, val)
		case "station.name":
			f.emit(p, out, ip, dissect.AttrName, val)
		case "hostId":
			f.emit(p, out, ip, AttrFoxHostID, val)
		case "brandId":
			f.emit(p, out, ip, AttrFoxBrand, val)
		case "app.name":
			appName = val
		case "app.version":
			appVer = val
		case "vm.name":
			vmName = val
		case "vm.version":
			vmVer = val
		case "os.name":
			osName = val
		case "os.version":
			osVer = val
		}
	}
	if v := foxJoin(appName, appVer); v != nil {
		f.emit(p, out, ip, AttrFoxApp, v)
	}
	switch string(appName) {
	case "Station":
		vndEmit(out, p, "fox", ip, dissect.AttrRole, RoleNiagaraStation, netip.Addr{})
		if len(appVer) > 0 {
			f.emit(p, out, ip, dissect.AttrFirmware, append([]byte("Niagara "), appVer...))
		}
	case "Workbench":
		vndEmit(out, p, "fox", ip, dissect.AttrRole, RoleNiagaraWorkbench, netip.Addr{})
	}
	if v := foxJoin(vmName, vmVer); v != nil {
		f.emit(p, out, ip, AttrFoxVM, v)
	}
	if v := foxJoin(osName, osVer); v != nil {
		f.emit(p, out, ip, dissect.AttrOS, v)
	}
}

// foxJoin returns "name version", or whichever is set, or nil.
func foxJoin(name, version []byte) []byte {
	switch {
	case len(name) > 0 && len(version) > 0:
		return append(append(append([]byte(nil), name...), ' '), version...)
	case len(name) > 0:
		return name
	}
	return version
}

func (f *Fox) emit(p *dissect.Packet, out dissect.Sink, ip netip.Addr, attr string, v []byte) {
	if s := vndText(v); s != "" {
		vndEmit(out, p, "fox", ip, attr, s, netip.Addr{})
	}
}

func init() { register(64, "fox", func() dissect.Dissector { return NewFox() }) }
