package it

import (
	"encoding/binary"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/internal/testcorpus"
)

// nbnsTsharkName splits tshark's nbns.name ("KW-VLIPC<00> (Workstation)")
// into the name and its suffix.
func nbnsTsharkName(t *testing.T, s string) (string, byte) {
	t.Helper()
	s, _, _ = strings.Cut(s, ",")
	i := strings.LastIndex(s, "<")
	if i < 0 || i+3 >= len(s) {
		t.Fatalf("tshark name %q has no suffix", s)
	}
	v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
	if err != nil {
		t.Fatalf("tshark name %q: %v", s, err)
	}
	return strings.TrimRight(s[:i], " "), byte(v)
}

// nbnsExpect is what a name with suffix and group flag means, per
// the suffix table of MS-NBTE / RFC 1001 usage, written out here
// independently of nbNameMeaning.
func nbnsExpect(suffix byte, group bool) string {
	switch {
	case (suffix == 0x00 || suffix == 0x20) && !group:
		return dissect.AttrHostname
	case (suffix == 0x00 || suffix == 0x1e || suffix == 0x1c) && group, suffix == 0x1d && !group, suffix == 0x1b && !group:
		return dissect.AttrDomain
	}
	return ""
}

// TestNBNSRegistrationsCorpus checks, on real captures, that every name a
// node registers (tshark nbns.name, nbns.nb_flags.group, nbns.addr) is
// learnt for the address registered with the meaning its suffix gives,
// and that no other name becomes a hostname (<03> messenger names carry
// user names).
func TestNBNSRegistrationsCorpus(t *testing.T) {
	files := []string{
		"icsnpp-profinet-io-cm__testing__traces__profinet_io_cm_mixed_2.pcapng",
		"suricata-verify__tests__smb2-ntlmssp-negotiateflags__input.pcap",
		"ICS-Pcaps__NetBIOS__Misc_NetBIOS_Traffic.pcap",
		"ICS-Security-Tools__pcaps__openics__EIP-ControlProtocolChangeAttempt.pcap",
	}
	for _, name := range files {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := testcorpus.File(t, name)
			out := discRun(t, path, NewNBNS())
			discCheckObs(t, "nbns", out)
			rows := testcorpus.Tshark(t, path, "nbns.nb_flags && ((nbns.flags.opcode==5 && nbns.flags.response==0) || (nbns.flags.opcode==0 && nbns.flags.response==1 && nbns.flags.rcode==0))",
				"nbns.name", "nbns.nb_flags.group", "nbns.addr")
			if len(rows) == 0 {
				t.Fatal("tshark shows no registration or positive answer")
			}
			want := map[string]bool{}
			for _, r := range rows {
				n, suffix := nbnsTsharkName(t, r[0])
				attr := nbnsExpect(suffix, r[1] == "1" || r[1] == "True")
				if attr == "" {
					continue
				}
				for _, ip := range strings.Split(r[2], ",") {
					want[attr+" "+ip+" "+n] = true
					if !discHas(out, ip, attr, n) {
						t.Errorf("%s<%02x> at %s: no %s %q; got %v", n, suffix, ip, attr, n, out)
					}
				}
			}
			for _, o := range out {
				if o.Attr == dissect.AttrHostname && !want[o.Attr+" "+o.IP.String()+" "+o.Value] {
					t.Errorf("hostname %q for %s that no <00>/<20> name gave", o.Value, o.IP)
				}
			}
		})
	}
}

// TestNBNSNodeStatusCorpus checks a real NBSTAT reply: the names (tshark
// nbns.netbios_name, nbns.name_flags.group) and the unit id
// (nbns.unit_id) bound to the responder.
func TestNBNSNodeStatusCorpus(t *testing.T) {
	path := testcorpus.File(t, "ICS-Security-Tools__pcaps__beckoff__addroute1.pcapng")
	out := discRun(t, path, NewNBNS())
	discCheckObs(t, "nbns", out)
	rows := testcorpus.Tshark(t, path, "nbns.type==33 && nbns.flags.response==1", "ip.src", "nbns.netbios_name", "nbns.name_flags.group", "nbns.unit_id")
	if len(rows) == 0 {
		t.Fatal("tshark shows no node status reply")
	}
	for _, r := range rows {
		ip, names, groups := r[0], strings.Split(r[1], ","), strings.Split(r[2], ",")
		var host, domain string
		for i, n := range names {
			g := i < len(groups) && (groups[i] == "1" || groups[i] == "True")
			if !g && host == "" {
				host = n
			}
			if g && domain == "" {
				domain = n
			}
		}
		if !discHas(out, ip, dissect.AttrHostname, host) || !discHas(out, ip, dissect.AttrDomain, domain) {
			t.Errorf("%s: want hostname %q domain %q, got %v", ip, host, domain, out)
		}
		found := false
		for _, o := range out {
			if o.Attr == dissect.AttrIP && o.IP.String() == ip && o.MAC.String() == r[3] {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no binding to unit id %s", ip, r[3])
		}
		listed := strings.Join(discFind(out, ip, AttrNBNSNames), ",")
		for _, n := range names {
			if !strings.Contains(listed, n+"<") {
				t.Errorf("%s: name %q missing from %q", ip, n, listed)
			}
		}
	}
}

// nbEncode is the first-level encoding of RFC 1001 section 14.1, written
// independently of decodeNBName.
func nbEncode(name string, suffix byte) []byte {
	var raw [16]byte
	copy(raw[:], fmt.Sprintf("%-15s", name))
	raw[15] = suffix
	b := []byte{32}
	for _, c := range raw {
		b = append(b, 'A'+c>>4, 'A'+c&15)
	}
	return append(b, 0)
}

// nbnsBuildReg builds a name registration request (RFC 1002 section
// 4.2.2) for name<suffix> at ip.
func nbnsBuildReg(id uint16, name string, suffix byte, group bool, ip net.IP) []byte {
	b := []byte{byte(id >> 8), byte(id), 0x29, 0x10, 0, 1, 0, 0, 0, 0, 0, 1}
	b = append(b, nbEncode(name, suffix)...)
	b = append(b, 0, 0x20, 0, 1) // NB, IN
	b = append(b, 0xc0, 0x0c, 0, 0x20, 0, 1, 0, 0x04, 0x93, 0xe0, 0, 6)
	flags := uint16(0)
	if group {
		flags = 0x8000
	}
	b = binary.BigEndian.AppendUint16(b, flags)
	return append(b, ip.To4()...)
}

// nbnsNodeStatus builds a node status response (RFC 1002 section 4.2.18)
// listing names, with unit id mac.
func nbnsNodeStatus(id uint16, names []NBName, mac capture.MAC) []byte {
	b := []byte{byte(id >> 8), byte(id), 0x84, 0x00, 0, 0, 0, 1, 0, 0, 0, 0}
	b = append(b, nbEncode("*", 0)...)
	rd := []byte{byte(len(names))}
	for _, n := range names {
		rd = append(rd, n.Raw[:15]...)
		rd = append(rd, n.Suffix)
		if n.Group {
			rd = append(rd, 0x84, 0)
		} else {
			rd = append(rd, 0x04, 0)
		}
	}
	rd = append(rd, mac[:]...)
	rd = append(rd, make([]byte, 40)...)
	b = append(b, 0, 0x21, 0, 1, 0, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(rd)))
	return append(b, rd...)
}

func nbName(s string, suffix byte, group bool) NBName {
	var n NBName
	copy(n.Raw[:], fmt.Sprintf("%-15s", s))
	n.Raw[15], n.Suffix, n.Group = suffix, suffix, group
	return n
}

// TestNBNSBuilt checks messages built from RFC 1002 (sections 4.2.2 and
// 4.2.18) against tshark, then what the dissector learns from them: the
// <1C> group makes a domain controller, <1D> a master browser.
func TestNBNSBuilt(t *testing.T) {
	mac := capture.MAC{0x00, 0x15, 0x5d, 0x0a, 0x0b, 0x0c}
	msgs := [][]byte{
		nbnsBuildReg(1, "DC01", 0x1c, true, net.IPv4(10, 1, 0, 5)),
		nbnsBuildReg(2, "PLANT", 0x1d, false, net.IPv4(10, 1, 0, 5)),
		nbnsNodeStatus(3, []NBName{nbName("ENG-WS7", 0x00, false), nbName("PLANT", 0x00, true), nbName("ENG-WS7", 0x20, false)}, mac),
	}
	var frames [][]byte
	for _, m := range msgs {
		frames = append(frames, udpFrame(t, mac, "10.1.0.5", "10.1.0.255", 137, 137, m))
	}
	path := discPcap(t, frames)
	if w := discExpert(t, path); w != "" {
		t.Fatalf("tshark warns: %s", w)
	}
	rows := testcorpus.Tshark(t, path, "nbns", "nbns.name", "nbns.netbios_name", "nbns.unit_id")
	if len(rows) != 3 || !strings.HasPrefix(rows[0][0], "DC01<1c>") || !strings.HasPrefix(rows[1][0], "PLANT<1d>") || rows[2][1] != "ENG-WS7,PLANT,ENG-WS7" || rows[2][2] != mac.String() {
		t.Fatalf("tshark reads %q", rows)
	}
	out := discRun(t, path, NewNBNS())
	discCheckObs(t, "nbns", out)
	for _, w := range [][2]string{{dissect.AttrDomain, "DC01"}, {dissect.AttrRole, RoleDomainController}, {dissect.AttrDomain, "PLANT"}, {dissect.AttrRole, RoleMasterBrowser}, {dissect.AttrHostname, "ENG-WS7"}, {AttrNBNSNames, "ENG-WS7<00>,PLANT<00>g,ENG-WS7<20>"}} {
		if !discHas(out, "10.1.0.5", w[0], w[1]) {
			t.Errorf("no %s %q in %v", w[0], w[1], out)
		}
	}
	// Repeated messages say nothing new.
	d := NewNBNS()
	var again collect
	for range 3 {
		for _, m := range msgs {
			d.Handle(discPacket("10.1.0.5", "10.1.0.255", 137, 137, capture.ProtoUDP, m), &again)
		}
	}
	if len(again) != len(out)-len(discFind(out, "", dissect.AttrProtocol)) {
		t.Errorf("three rounds gave %d observations, one gave %d", len(again), len(out))
	}
}

// nbnsSeeds returns real and built name service messages.
func nbnsSeeds(t testing.TB) [][]byte {
	seeds := [][]byte{
		nbnsBuildReg(1, "HOST", 0, false, net.IPv4(10, 0, 0, 1)),
		nbnsNodeStatus(3, []NBName{nbName("H", 0, false)}, capture.MAC{0, 1, 2, 3, 4, 5}),
	}
	for _, f := range []string{"ICS-Security-Tools__pcaps__beckoff__addroute1.pcapng", "suricata-verify__tests__smb2-ntlmssp-negotiateflags__input.pcap"} {
		for _, p := range discCorpusPackets(t, f, discUDP(NBNSPort)) {
			seeds = append(seeds, p.Payload)
		}
	}
	return seeds
}

// TestNBNSTruncated offers every prefix of every seed: no panic, and the
// probe never accepts less than a header and one name.
func TestNBNSTruncated(t *testing.T) {
	d := NewNBNS()
	for _, full := range nbnsSeeds(t) {
		for n := range len(full) {
			b := append([]byte(nil), full[:n]...)
			p := discPacket("10.0.0.1", "10.0.0.2", 137, 137, capture.ProtoUDP, b)
			if d.Probe(p) && n < 12+34 {
				t.Fatalf("probe accepted %d bytes", n)
			}
			var out collect
			d.Handle(p, &out)
		}
	}
}

func TestNBNSAllocs(t *testing.T) {
	d := NewNBNS()
	var out collect
	for _, m := range nbnsSeeds(t)[:2] {
		p := discPacket("10.0.0.1", "10.0.0.2", 137, 137, capture.ProtoUDP, m)
		d.Handle(p, &out) // first time: emits
		if n := testing.AllocsPerRun(200, func() {
			if !d.Probe(p) {
				t.Fatal("probe refused")
			}
			d.Handle(p, &out)
		}); n != 0 {
			t.Errorf("Probe+Handle of a repeated message: %v allocations", n)
		}
	}
}

func BenchmarkNBNS(b *testing.B) {
	d := NewNBNS()
	p := discPacket("10.0.0.1", "10.0.0.2", 137, 137, capture.ProtoUDP, nbnsSeeds(b)[0])
	var out collect
	b.ReportAllocs()
	for b.Loop() {
		if d.Probe(p) {
			d.Handle(p, &out)
		}
	}
}

func FuzzNBNS(f *testing.F) {
	for _, s := range nbnsSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d := NewNBNS()
		p := discPacket("10.0.0.1", "10.0.0.2", 137, 137, capture.ProtoUDP, b)
		d.Probe(p)
		var out collect
		d.Handle(p, &out)
		discCheckObs(t, "nbns", out)
	})
}
