package it

import (
	"bytes"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
)

// Attributes the SSH dissector emits, about the side that sent the banner.
const (
	// AttrSSHBanner is the whole identification string, e.g.
	// "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6".
	AttrSSHBanner = "ssh.banner"
	// AttrSSHSoftware is its softwareversion part: "OpenSSH_8.9p1".
	AttrSSHSoftware = "ssh.software"
)

// Roles the SSH dissector gives.
const (
	RoleSSHServer = "ssh-server"
	RoleSSHClient = "ssh-client"
)

const (
	sshMaxLine    = 255 // RFC 4253 section 4.2: at most 255 characters
	sshMaxPackets = 4   // payload packets read per direction
	sshMaxLines   = 8   // lines before the version string (server only)
)

// SSH reads the identification strings ("SSH-protoversion-softwareversion
// comments", RFC 4253 section 4.2) both sides send in clear at the start
// of an SSH connection, on port 22 or, by the "SSH-" prefix, any TCP port.
// It emits each side's banner and software version, and the operating
// system only where the banner states it (the comment of Debian's and
// Ubuntu's OpenSSH packages, FreeBSD's, or "OpenSSH_for_Windows"). It reads
// at most 4 payload packets of each direction and then ignores the flow.
type SSH struct{}

// NewSSH returns an SSH dissector.
func NewSSH() *SSH { return &SSH{} }

func init() { register(82, "ssh", func() dissect.Dissector { return NewSSH() }) }

// Name returns "ssh".
func (*SSH) Name() string { return "ssh" }

// Wants asks for TCP port 22 and heuristic probing.
func (*SSH) Wants() dissect.Wants {
	return dissect.Wants{TCPPorts: []uint16{22, 2222}, Heuristic: true}
}

// sshVersion reports whether b starts an SSH identification string:
// "SSH-1.x-", "SSH-2.0-".
func sshVersion(b []byte) bool {
	return len(b) >= 8 && bytes.HasPrefix(b, []byte("SSH-")) && (b[4] == '1' || b[4] == '2') && b[5] == '.' &&
		b[6] >= '0' && b[6] <= '9'
}

// Probe reports whether p's payload starts with an SSH identification
// string.
func (*SSH) Probe(p *dissect.Packet) bool {
	return p.Flow != nil && p.Flow.Proto == capture.ProtoTCP && sshVersion(p.Payload)
}

// sshFlow is the per-flow state.
type sshFlow struct {
	seen appFacts
	pkts [2]uint8
	done [2]bool
}

// Handle reads the identification strings of a claimed flow.
func (*SSH) Handle(p *dissect.Packet, out dissect.Sink) {
	if p.Flow == nil || p.Flow.Proto != capture.ProtoTCP || len(p.Payload) == 0 {
		return
	}
	st, ok := p.Flow.State.(*sshFlow)
	if !ok {
		st = &sshFlow{}
		p.Flow.State = st
	}
	d := p.Dir & 1
	if st.done[d] {
		return
	}
	st.pkts[d]++
	if st.pkts[d] > sshMaxPackets {
		st.done[d] = true
		return
	}
	b := p.Payload
	for i := 0; i < sshMaxLines && len(b) > 0; i++ {
		line, rest, ok := appNextLine(b)
		if len(line) > sshMaxLine {
			line = line[:sshMaxLine]
		}
		if sshVersion(line) {
			e := appEmitter{out: out, p: p, seen: &st.seen, proto: "ssh"}
			sshFacts(line, &e, d == 1)
			st.done[d] = true
			return
		}
		if !ok {
			return
		}
		b = rest
	}
}

// sshFacts emits what an identification string says about its sender.
func sshFacts(line []byte, e *appEmitter, server bool) {
	src, dst := e.src(), e.dst()
	e.text(src, AttrSSHBanner, line, dst)
	if server {
		e.str(src, dissect.AttrRole, RoleSSHServer, dst)
	} else {
		e.str(src, dissect.AttrRole, RoleSSHClient, dst)
	}
	// "SSH-" protoversion "-" softwareversion SP comments
	rest := line[4:]
	i := bytes.IndexByte(rest, '-')
	if i < 0 {
		return
	}
	sw := rest[i+1:]
	var comment []byte
	if j := bytes.IndexByte(sw, ' '); j >= 0 {
		sw, comment = sw[:j], sw[j+1:]
	}
	e.text(src, AttrSSHSoftware, sw, dst)
	if os := sshOS(sw, comment); os != "" {
		e.str(src, dissect.AttrOS, os, dst)
	}
}

// sshOS returns the operating system a banner states, or "".
func sshOS(sw, comment []byte) string {
	if appHasPrefixFold(sw, "OPENSSH_FOR_WINDOWS") {
		return "Windows"
	}
	for _, os := range [...]struct{ key, name string }{
		{"UBUNTU", "Ubuntu"},
		{"DEBIAN", "Debian"},
		{"RASPBIAN", "Raspbian"},
		{"FREEBSD", "FreeBSD"},
		{"NETBSD", "NetBSD"},
		{"OPENBSD", "OpenBSD"},
	} {
		for k := 0; k+len(os.key) <= len(comment); k++ {
			if appHasPrefixFold(comment[k:], os.key) {
				return os.name
			}
		}
	}
	return ""
}
