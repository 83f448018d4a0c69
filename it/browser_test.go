package it

import (
	"encoding/binary"
	"strconv"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/internal/testcorpus"
)

// browserFiles are corpus captures with host, local master and domain
// announcements from Windows 2000 to 10 and Samba.
var browserFiles = []string{
	"ICS-Pcaps__IEC60870-104__50.pcap",
	"ICS-Pcaps__LocalPCAP__104ikiIP.pcap",
	"ICS-Pcaps__LocalPCAP__similator.pcap",
	"ICS-Pcaps__NetBIOS__LANtastic1_00028_20100407020810.pcap",
	"ICS-Pcaps__NetBIOS__Misc_NetBIOS_Traffic.pcap",
	"ICS-Security-Tools__pcaps__beckoff__addroute1.pcapng",
	"ICS-Security-Tools__pcaps__openics__EIP-RemoteModeChangeAttempt.pcap",
	"Malcolm-PCAP__pcaps__protocols__Tunnels.pcap",
	"ct-samples__Protocols__IEC61850__GOOSE__GE---Multilin-UR---Digital-Protection-Relay__GOOSE-and-MMS.pcapng",
	"suricata-verify__tests__smb2-ntlmssp-negotiateflags__input.pcap",
}

// browserTypeMask turns the names of browser.server_type back into bits.
func browserTypeMask(t *testing.T, names string) uint32 {
	t.Helper()
	var m uint32
	for _, n := range strings.Split(names, ",") {
		found := false
		for i, s := range browserServerTypes {
			if s == n {
				m |= 1 << i
				found = true
			}
		}
		if !found && strings.HasPrefix(n, "0x") {
			v, err := strconv.ParseUint(n[2:], 16, 32)
			if err == nil {
				m |= uint32(v)
				found = true
			}
		}
		if !found {
			t.Fatalf("unknown server type name %q", n)
		}
	}
	return m
}

// TestBrowserCorpus compares every UDP announcement of real captures with
// tshark: browser.server (NetBIOS name or workgroup), browser.os_major and
// os_minor, browser.server_type (bit by bit), browser.comment,
// browser.mb_server (master browser of a domain announcement) and
// nbdgm.destination_name (the workgroup a host announces to), about the
// datagram's nbdgm.src.ip.
func TestBrowserCorpus(t *testing.T) {
	for _, name := range browserFiles {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := testcorpus.File(t, name)
			out := discRun(t, path, NewBrowser())
			discCheckObs(t, "browser", out)
			rows := testcorpus.Tshark(t, path, "udp && (browser.command==1 || browser.command==0x0f || browser.command==0x0c)",
				"browser.command", "nbdgm.src.ip", "browser.server", "browser.os_major", "browser.os_minor", "browser.server_type", "browser.comment", "browser.mb_server", "nbdgm.destination_name")
			if len(rows) == 0 {
				t.Fatal("tshark shows no announcement")
			}
			for _, r := range rows {
				ip := r[1]
				if r[0] == "0x0c" {
					if !discHas(out, ip, dissect.AttrDomain, r[2]) || !discHas(out, ip, dissect.AttrHostname, r[7]) {
						t.Errorf("domain announcement %q by %q from %s: got %v", r[2], r[7], ip, out)
					}
					continue
				}
				if !discHas(out, ip, dissect.AttrHostname, r[2]) {
					t.Errorf("%s: no hostname %q", ip, r[2])
				}
				if !discHas(out, ip, AttrBrowserOSVersion, r[3]+"."+r[4]) {
					t.Errorf("%s: no os version %s.%s: %v", ip, r[3], r[4], discFind(out, ip, AttrBrowserOSVersion))
				}
				want, err := strconv.ParseUint(strings.TrimPrefix(r[5], "0x"), 16, 32)
				if err != nil {
					t.Fatalf("server type %q: %v", r[5], err)
				}
				ok := false
				for _, v := range discFind(out, ip, AttrBrowserServerType) {
					ok = ok || browserTypeMask(t, v) == uint32(want)
				}
				if !ok {
					t.Errorf("%s: server type %s not among %q", ip, r[5], discFind(out, ip, AttrBrowserServerType))
				}
				if r[6] != "" && !discHas(out, ip, AttrBrowserComment, r[6]) {
					t.Errorf("%s: no comment %q", ip, r[6])
				}
				wg, _, _ := strings.Cut(r[8], "<")
				if !discHas(out, ip, dissect.AttrDomain, wg) {
					t.Errorf("%s: no workgroup %q", ip, wg)
				}
			}
		})
	}
}

// TestBrowserOS checks the OS names given to the announcements of the
// corpus: Windows 10 (10.0) is left to the fingerprints, Samba (Unix bit,
// 4.9) is not Windows, 5.1 and 5.2 workstations and servers are named.
func TestBrowserOS(t *testing.T) {
	cases := []struct {
		maj, min uint8
		typ      uint32
		want     string
	}{
		{10, 0, 0x00051007, ""},
		{4, 9, 0x00849a03, ""},
		{5, 1, 0x00051003, "Windows XP"},
		{5, 2, 0x00829003, "Windows Server 2003"},
		{6, 1, 0x00001003, "Windows 7"},
		{6, 1, 0x00009003, "Windows Server 2008 R2"},
		{6, 1, 0x00000003, ""}, // neither NT bit: not a Windows NT host
	}
	for _, c := range cases {
		if got := BrowserOS(c.maj, c.min, c.typ); got != c.want {
			t.Errorf("BrowserOS(%d.%d, %#x) = %q, want %q", c.maj, c.min, c.typ, got, c.want)
		}
	}
	// And on a capture: the Windows Server 2003 hosts of the openics set.
	path := testcorpus.File(t, "ICS-Security-Tools__pcaps__openics__EIP-RemoteModeChangeAttempt.pcap")
	out := discRun(t, path, NewBrowser())
	if !discHas(out, "192.168.10.24", dissect.AttrOS, "Windows Server 2003") {
		t.Errorf("WIN2K3LAB024: got %v", out)
	}
}

// browserAnnouncement builds a HostAnnouncement (MS-BRWS 2.2.1) in an SMB
// Transaction to \MAILSLOT\BROWSE (MS-MAIL 2.2.1) in a broadcast NetBIOS
// datagram (RFC 1002 4.4.1) from src to workgroup<1D>.
func browserAnnouncement(op byte, src [4]byte, host, workgroup, comment string, major, minor byte, typ uint32) []byte {
	data := []byte{op, 3, 0x60, 0xea, 0, 0}
	var sn [16]byte
	copy(sn[:], host)
	data = append(data, sn[:]...)
	data = append(data, major, minor)
	data = binary.LittleEndian.AppendUint32(data, typ)
	data = append(data, 15, 1, 0x55, 0xaa)
	data = append(append(data, comment...), 0)

	const mailslot = "\\MAILSLOT\\BROWSE\x00"
	smb := []byte("\xffSMB\x25")
	smb = append(smb, make([]byte, 27)...)
	words := make([]byte, 17*2)
	binary.LittleEndian.PutUint16(words[2:], uint16(len(data))) // total data count
	binary.LittleEndian.PutUint16(words[22:], uint16(len(data)))
	dataOff := 32 + 1 + len(words) + 2 + len(mailslot)
	binary.LittleEndian.PutUint16(words[24:], uint16(dataOff))
	words[26] = 3                                // setup count
	binary.LittleEndian.PutUint16(words[28:], 1) // mailslot write
	binary.LittleEndian.PutUint16(words[30:], 1) // priority
	binary.LittleEndian.PutUint16(words[32:], 2) // class: unreliable
	smb = append(smb, 17)
	smb = append(smb, words...)
	smb = binary.LittleEndian.AppendUint16(smb, uint16(len(mailslot)+len(data)))
	smb = append(smb, mailslot...)
	smb = append(smb, data...)

	dg := []byte{0x11, 0x02, 0x12, 0x34}
	dg = append(dg, src[:]...)
	dg = append(dg, 0, 138)
	names := append(nbEncode(host, 0), nbEncode(workgroup, 0x1d)...)
	dg = binary.BigEndian.AppendUint16(dg, uint16(len(names)+len(smb)))
	dg = append(dg, 0, 0)
	dg = append(dg, names...)
	return append(dg, smb...)
}

// TestBrowserBuilt checks a built announcement against tshark and the
// dissector.
func TestBrowserBuilt(t *testing.T) {
	mac := capture.MAC{0x00, 0x15, 0x5d, 1, 2, 3}
	msg := browserAnnouncement(BrowserHostAnnouncement, [4]byte{10, 1, 0, 7}, "ENG-WS7", "PLANT", "line 3 engineering", 6, 1, 0x00001003|svTypeDomainCtrl)
	path := discPcap(t, [][]byte{udpFrame(t, mac, "10.1.0.7", "10.1.0.255", 138, 138, msg)})
	if w := discExpert(t, path); w != "" {
		t.Fatalf("tshark warns: %s", w)
	}
	rows := testcorpus.Tshark(t, path, "browser", "browser.server", "browser.os_major", "browser.os_minor", "browser.server_type", "browser.comment", "nbdgm.destination_name")
	if len(rows) != 1 || rows[0][0] != "ENG-WS7" || rows[0][1] != "6" || rows[0][3] != "0x0000100b" || rows[0][4] != "line 3 engineering" || rows[0][5] != "PLANT<1d>" {
		t.Fatalf("tshark reads %q", rows)
	}
	out := discRun(t, path, NewBrowser())
	for _, w := range [][2]string{{dissect.AttrHostname, "ENG-WS7"}, {dissect.AttrDomain, "PLANT"}, {AttrBrowserOSVersion, "6.1"}, {dissect.AttrOS, "Windows 7"},
		{AttrBrowserServerType, "workstation,server,domain-controller,nt"}, {AttrBrowserComment, "line 3 engineering"}, {dissect.AttrRole, RoleDomainController}} {
		if !discHas(out, "10.1.0.7", w[0], w[1]) {
			t.Errorf("no %s %q in %v", w[0], w[1], out)
		}
	}
}

func browserSeeds(t testing.TB) [][]byte {
	seeds := [][]byte{browserAnnouncement(1, [4]byte{10, 0, 0, 1}, "H", "W", "c", 10, 0, 0x1003)}
	for _, f := range []string{"ICS-Pcaps__NetBIOS__Misc_NetBIOS_Traffic.pcap", "suricata-verify__tests__smb2-ntlmssp-negotiateflags__input.pcap"} {
		for _, p := range discCorpusPackets(t, f, discUDP(NBDGMPort)) {
			seeds = append(seeds, p.Payload)
		}
	}
	return seeds
}

func TestBrowserTruncated(t *testing.T) {
	d := NewBrowser()
	for _, full := range browserSeeds(t) {
		for n := range len(full) {
			b := append([]byte(nil), full[:n]...)
			p := discPacket("10.0.0.1", "10.0.0.255", 138, 138, capture.ProtoUDP, b)
			var a BrowserAnnouncement
			if ParseBrowser(b, &a) && n < 14+68+32+33 {
				t.Fatalf("parsed %d bytes", n)
			}
			d.Probe(p)
			var out collect
			d.Handle(p, &out)
		}
	}
}

func TestBrowserAllocs(t *testing.T) {
	d := NewBrowser()
	p := discPacket("10.0.0.1", "10.0.0.255", 138, 138, capture.ProtoUDP, browserSeeds(t)[0])
	var out collect
	d.Handle(p, &out)
	if len(out) == 0 {
		t.Fatal("nothing learnt")
	}
	if n := testing.AllocsPerRun(200, func() {
		d.Probe(p)
		d.Handle(p, &out)
	}); n != 0 {
		t.Errorf("repeated announcement: %v allocations", n)
	}
}

func BenchmarkBrowser(b *testing.B) {
	d := NewBrowser()
	p := discPacket("10.0.0.1", "10.0.0.255", 138, 138, capture.ProtoUDP, browserSeeds(b)[0])
	var out collect
	b.ReportAllocs()
	for b.Loop() {
		if d.Probe(p) {
			d.Handle(p, &out)
		}
	}
}

func FuzzBrowser(f *testing.F) {
	for _, s := range browserSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d := NewBrowser()
		p := discPacket("10.0.0.1", "10.0.0.255", 138, 138, capture.ProtoUDP, b)
		d.Probe(p)
		var out collect
		d.Handle(p, &out)
		discCheckObs(t, "browser", out)
	})
}
