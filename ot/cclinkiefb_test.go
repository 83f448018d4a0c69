package ot

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"slices"
	"strconv"
	"testing"

	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
	"github.com/passivesensor/sensor/internal/testcorpus"
)

// TestCCIEFBCorpus reads the zeek-parser-CCLinkFieldBasic capture (a
// master broadcasting cyclic requests, one slave answering). Wireshark
// 4.0 has no dissector for the protocol: tshark gives addresses and
// payloads, and the test takes the master id (request offset 47) and the
// slave list (offset 67, 4 bytes each, count at 61) from the bytes at the
// offsets of the published c-link stack's frame structures. The sensor
// must report that master, each listed slave with its station number, and
// the roles, all once.
func TestCCIEFBCorpus(t *testing.T) {
	path := testcorpus.File(t, "zeek-parser-CCLinkFieldBasic__testing__Traces__cclink_ief_basic_only.pcap")
	masters, stations := map[string]bool{}, map[string]string{}
	responders := map[string]bool{}
	for _, r := range testcorpus.Tshark(t, path, "udp.port == 61450", "ip.src", "udp.payload") {
		b, _ := hex.DecodeString(r[1])
		if len(b) < 67 {
			continue
		}
		switch b[0] {
		case 0x50:
			id := binary.LittleEndian.Uint32(b[47:])
			m := netip.AddrFrom4([4]byte{byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)})
			if m.String() != r[0] {
				t.Fatalf("master id %s from %s", m, r[0])
			}
			masters[r[0]] = true
			n := int(binary.LittleEndian.Uint16(b[61:]))
			for i := 0; i < n; i++ {
				s := binary.LittleEndian.Uint32(b[67+4*i:])
				ip := netip.AddrFrom4([4]byte{byte(s >> 24), byte(s >> 16), byte(s >> 8), byte(s)})
				stations[ip.String()] = "group " + strconv.Itoa(int(b[51])) + " station " + strconv.Itoa(i+1)
			}
		case 0xd0:
			responders[r[0]] = true
		}
	}
	if len(masters) == 0 || len(stations) == 0 {
		t.Fatal("no cyclic request in the capture")
	}
	out := runFile(t, path, NewCCIEFB())
	got := vndFacts(out)
	for m := range masters {
		if !slices.Equal(got[m+" role"], []string{RoleCCIEFBMaster}) {
			t.Errorf("master %s roles %q", m, got[m+" role"])
		}
	}
	for s, w := range stations {
		if !slices.Equal(got[s+" "+AttrCCIEFBStation], []string{w}) {
			t.Errorf("slave %s station %q, request says %q", s, got[s+" "+AttrCCIEFBStation], w)
		}
		if !responders[s] {
			t.Errorf("slave %s never answers in the capture", s)
		}
		if !slices.Contains(got[s+" role"], RoleCCIEFBSlave) {
			t.Errorf("slave %s roles %q", s, got[s+" role"])
		}
	}
	vndOnce(t, out, 2)
}

// cciefbRequest builds a cyclic request (layout in cclinkiefb.go) from
// master for slaves.
func cciefbRequest(master netip.Addr, group byte, slaves ...netip.Addr) []byte {
	b := []byte{0x50, 0x00, 0x00, 0xff, 0xff, 0x03, 0x00, 0, 0, 0, 0, 0x70, 0x0e, 0, 0}
	b = append(b, 1, 0, 0, 0, 36, 0)
	b = append(b, make([]byte, 14)...)
	b = append(b, 1, 0, 0, 0)         // master running
	b = append(b, make([]byte, 8)...) // clock
	m := master.As4()
	b = append(b, m[3], m[2], m[1], m[0], group, 0, 1, 0, 0xf4, 1, 3, 0, 1, 0)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(slaves)))
	b = append(b, 0, 0, 0, 0)
	for _, s := range slaves {
		a := s.As4()
		b = append(b, a[3], a[2], a[1], a[0])
	}
	b = append(b, make([]byte, 72*len(slaves))...)
	binary.LittleEndian.PutUint16(b[7:], uint16(len(b)-9))
	return b
}

// cciefbResponse builds a cyclic response from slave.
func cciefbResponse(slave netip.Addr, group byte, vendor uint16, model uint32, version uint16) []byte {
	b := []byte{0xd0, 0x00, 0x00, 0xff, 0xff, 0x03, 0x00, 0, 0, 0, 0}
	b = append(b, 1, 0, 0, 0, 40, 0)
	b = append(b, make([]byte, 14)...)
	b = binary.LittleEndian.AppendUint16(b, vendor)
	b = append(b, 0, 0)
	b = binary.LittleEndian.AppendUint32(b, model)
	b = binary.LittleEndian.AppendUint16(b, version)
	b = append(b, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0)
	a := slave.As4()
	b = append(b, a[3], a[2], a[1], a[0], group, 0, 1, 0)
	b = append(b, make([]byte, 72)...)
	binary.LittleEndian.PutUint16(b[7:], uint16(len(b)-9))
	return b
}

var (
	cciefbMaster = netip.MustParseAddr("10.6.0.1")
	cciefbSlaves = []netip.Addr{netip.MustParseAddr("10.6.0.11"), netip.MustParseAddr("10.6.0.12")}
)

// TestCCIEFBSpecBuilt: a two-slave group; a slave's vendor and model codes.
func TestCCIEFBSpecBuilt(t *testing.T) {
	d := NewCCIEFB()
	fr := vndUDPFlow(netip.AddrPortFrom(cciefbMaster, CCIEFBPort), netip.MustParseAddrPort("10.6.0.255:61450"))
	fs := vndUDPFlow(netip.AddrPortFrom(cciefbSlaves[1], CCIEFBPort), netip.AddrPortFrom(cciefbMaster, CCIEFBPort))
	var out collect
	for range 3 {
		for _, c := range []struct {
			f *flow.Flow
			b []byte
		}{{fr, cciefbRequest(cciefbMaster, 1, cciefbSlaves...)}, {fs, cciefbResponse(cciefbSlaves[1], 1, 0x0001, 0x1234, 2)}} {
			p := vndPkt(c.f, flow.FromClient, 0, c.b)
			if !d.Probe(p) {
				t.Fatalf("Probe rejected %x", c.b)
			}
			d.Handle(p, &out)
		}
	}
	got := vndFacts(out)
	for k, w := range map[string][]string{
		"10.6.0.1 role":                     {RoleCCIEFBMaster},
		"10.6.0.1 " + AttrCCIEFBGroup:       {"group 1: 2 stations"},
		"10.6.0.11 " + AttrCCIEFBStation:    {"group 1 station 1"},
		"10.6.0.12 " + AttrCCIEFBStation:    {"group 1 station 2"},
		"10.6.0.12 " + AttrCCIEFBVendorCode: {"1"},
		"10.6.0.12 " + AttrCCIEFBModelCode:  {"1234"},
		"10.6.0.12 " + AttrCCIEFBVersion:    {"2"},
		"10.6.0.12 role":                    {RoleCCIEFBSlave, RoleCCIEFBSlave},
	} {
		if !slices.Equal(got[k], w) {
			t.Errorf("%s: got %q, want %q", k, got[k], w)
		}
	}
}

// TestCCIEFBNotOther: SLMP frames of other commands are not taken.
func TestCCIEFBNotOther(t *testing.T) {
	d := NewCCIEFB()
	f := vndUDPFlow(netip.MustParseAddrPort("10.6.0.5:61450"), netip.MustParseAddrPort("10.6.0.6:61450"))
	req := cciefbRequest(cciefbMaster, 1, cciefbSlaves...)
	other := slices.Clone(req)
	other[11] = 0x01 // command 0E01
	for _, b := range [][]byte{slmp3E(0x0401, 0, 0, 0, 0, 0xa8, 1, 0), other, req[:len(req)-1], []byte("hello")} {
		if d.Probe(vndPkt(vndUDPFlow(f.Client, f.Server), flow.FromClient, 0, b)) {
			t.Errorf("Probe(%x) = true", b)
		}
	}
}

func cciefbSeeds() [][]byte {
	return [][]byte{cciefbRequest(cciefbMaster, 1, cciefbSlaves...), cciefbResponse(cciefbSlaves[0], 1, 1, 2, 3)}
}

// TestCCIEFBTruncated offers every prefix and every station count.
func TestCCIEFBTruncated(t *testing.T) {
	for _, s := range cciefbSeeds() {
		for n := 0; n <= len(s); n++ {
			b := slices.Clone(s[:n])
			if n >= 9 {
				binary.LittleEndian.PutUint16(b[7:], uint16(n-9))
			}
			vndFuzz(t, NewCCIEFB(), vndUDPFlow(netip.MustParseAddrPort("10.6.0.1:61450"), netip.MustParseAddrPort("10.6.0.255:61450")), b, flow.FromClient, n)
		}
	}
	for n := 0; n < 70; n++ {
		b := cciefbRequest(cciefbMaster, 1, cciefbSlaves...)
		binary.LittleEndian.PutUint16(b[61:], uint16(n))
		vndFuzz(t, NewCCIEFB(), vndUDPFlow(netip.MustParseAddrPort("10.6.0.1:61450"), netip.MustParseAddrPort("10.6.0.255:61450")), b, flow.FromClient, len(b))
	}
}

// TestCCIEFBAllocs: steady cyclic traffic allocates nothing.
func TestCCIEFBAllocs(t *testing.T) {
	d := NewCCIEFB()
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	f := vndUDPFlow(netip.AddrPortFrom(cciefbMaster, CCIEFBPort), netip.AddrPortFrom(cciefbSlaves[0], CCIEFBPort))
	req := vndPkt(f, flow.FromClient, 0, cciefbRequest(cciefbMaster, 1, cciefbSlaves...))
	resp := vndPkt(f, flow.FromServer, 0, cciefbResponse(cciefbSlaves[0], 1, 1, 2, 3))
	step := func() { d.Probe(req); d.Handle(req, sink); d.Handle(resp, sink) }
	step()
	if n := testing.AllocsPerRun(1000, step); n != 0 {
		t.Errorf("%v allocations per cycle", n)
	}
}

// FuzzCCIEFB feeds arbitrary datagrams.
func FuzzCCIEFB(f *testing.F) {
	for _, s := range vndCorpusPayloads("zeek-parser-CCLinkFieldBasic__testing__Traces__cclink_ief_basic_only.pcap", 64) {
		f.Add(s, uint8(0))
	}
	for _, s := range cciefbSeeds() {
		f.Add(s, uint8(0))
	}
	f.Fuzz(func(t *testing.T, b []byte, mode uint8) {
		vndFuzz(t, NewCCIEFB(), vndUDPFlow(netip.MustParseAddrPort("10.6.0.1:61450"), netip.MustParseAddrPort("10.6.0.255:61450")), b, flow.Dir(mode&1), len(b))
	})
}

// BenchmarkCCIEFBHandle measures one cyclic request and response.
func BenchmarkCCIEFBHandle(b *testing.B) {
	d := NewCCIEFB()
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	f := vndUDPFlow(netip.AddrPortFrom(cciefbMaster, CCIEFBPort), netip.AddrPortFrom(cciefbSlaves[0], CCIEFBPort))
	req := vndPkt(f, flow.FromClient, 0, cciefbRequest(cciefbMaster, 1, cciefbSlaves...))
	resp := vndPkt(f, flow.FromServer, 0, cciefbResponse(cciefbSlaves[0], 1, 1, 2, 3))
	b.ReportAllocs()
	for b.Loop() {
		d.Handle(req, sink)
		d.Handle(resp, sink)
	}
}
