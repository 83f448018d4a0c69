package it

import (
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
	"github.com/passivesensor/sensor/internal/testcorpus"
)

const sshCorpus = "zeek__testing__btest__Traces__ssh__ssh.pcap"

// TestSSHCorpus compares each side's banner read through the pipeline
// with tshark's ssh.protocol and, on ports where tshark does not look for
// SSH, with the first line of the undissected payload (data.data) starting
// "SSH-"; it checks software and OS follow from the banner.
func TestSSHCorpus(t *testing.T) {
	path, out := appCorpus(t, sshCorpus, NewSSH())
	want := map[string]bool{}
	for _, r := range testcorpus.Tshark(t, path, "ssh.protocol || data.data[0:4] == 53:53:48:2d", "ip.src", "ssh.protocol", "data.data") {
		if r[1] != "" {
			want[r[0]+" "+r[1]] = true
			continue
		}
		b, err := hex.DecodeString(r[2])
		if err != nil {
			t.Fatal(err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		want[r[0]+" "+strings.TrimSuffix(line, "\r")] = true
	}
	appSameSet(t, "ssh.banner", appObserved(out, AttrSSHBanner), want)
	sw := map[string]bool{}
	oses := map[string]bool{}
	for k := range want {
		ip, banner, _ := strings.Cut(k, " ")
		rest := banner[strings.Index(banner[4:], "-")+5:]
		s, comment, _ := strings.Cut(rest, " ")
		sw[ip+" "+s] = true
		if strings.Contains(strings.ToLower(comment), "ubuntu") { // "Debian-5ubuntu1.1" is an Ubuntu package
			oses[ip+" Ubuntu"] = true
		}
	}
	appSameSet(t, "ssh.software", appObserved(out, AttrSSHSoftware), sw)
	appSameSet(t, "os", appObserved(out, dissect.AttrOS), oses)
}

// TestSSHOS: the OS only where the banner states it (RFC 4253 section 4.2
// comments as distributions write them).
func TestSSHOS(t *testing.T) {
	for banner, want := range map[string]string{
		"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3":  "Debian",
		"SSH-2.0-OpenSSH_7.9 FreeBSD-20200214":    "FreeBSD",
		"SSH-2.0-OpenSSH_for_Windows_8.1":         "Windows",
		"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6": "Ubuntu",
		"SSH-2.0-dropbear_2022.83":                "",
		"SSH-2.0-Cisco-1.25":                      "",
		"SSH-2.0-OpenSSH_7.4":                     "",
	} {
		d := NewSSH()
		f := &flow.Flow{Proto: 6, Client: netip.MustParseAddrPort("10.0.0.1:1234"), Server: netip.MustParseAddrPort("10.0.0.2:22")}
		var out collect
		// A server may send other lines before its version string.
		d.Handle(appTCPPkt(f, flow.FromServer, 1, []byte("Welcome\r\n"+banner+"\r\n")), &out)
		got := ""
		for _, o := range out {
			if o.Attr == dissect.AttrOS {
				got = o.Value
			}
			if o.Attr == AttrSSHBanner && o.Value != banner {
				t.Errorf("banner %q, want %q", o.Value, banner)
			}
		}
		if got != want {
			t.Errorf("%s: OS %q, want %q", banner, got, want)
		}
	}
}

// TestSSHGivesUp: after the banner, the encrypted packets are not read.
func TestSSHGivesUp(t *testing.T) {
	d := NewSSH()
	f := &flow.Flow{Proto: 6, Client: netip.MustParseAddrPort("10.0.0.1:1234"), Server: netip.MustParseAddrPort("10.0.0.2:22")}
	var out collect
	d.Handle(appTCPPkt(f, flow.FromClient, 1, []byte("SSH-2.0-PuTTY_Release_0.78\r\n")), &out)
	n := len(out)
	for i := 0; i < 100; i++ {
		d.Handle(appTCPPkt(f, flow.FromClient, 1, []byte("SSH-2.0-Other\r\n")), &out)
	}
	if len(out) != n || n == 0 {
		t.Errorf("observations %d then %d", n, len(out))
	}
}

func FuzzSSH(f *testing.F) {
	f.Add([]byte("\x00SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6\r\n"))
	f.Add([]byte("\x02x\r\nSSH-1.99-Cisco-1.25\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) { appFuzz(t, NewSSH(), data, 22) })
}

func BenchmarkSSHHandle(b *testing.B) {
	d := NewSSH()
	out := dissect.SinkFunc(func(dissect.Observation) {})
	f := &flow.Flow{Proto: 6, Client: netip.MustParseAddrPort("10.0.0.1:1234"), Server: netip.MustParseAddrPort("10.0.0.2:22")}
	p := appTCPPkt(f, flow.FromServer, 1, []byte("SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6\r\n"))
	b.ReportAllocs()
	for b.Loop() {
		f.State = nil
		d.Handle(p, out)
	}
}
