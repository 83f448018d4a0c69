package ot

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"slices"
	"testing"

	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
	"github.com/passivesensor/sensor/internal/testcorpus"
)

// TestMELSOFTCorpus reads ITI's MELSOFT capture (GX Works polling and
// modifying devices of an iQ-F CPU on 5562). Wireshark 4.0 has no MELSOFT
// dissector, so tshark gives the raw payloads and the test reads the
// command codes at the offsets the published MELSOFT plug-in gives
// (request magic 0x57, command code at 0x2d): the sensor must report the
// same codes, the roles, the write flag and the route.
func TestMELSOFTCorpus(t *testing.T) {
	path := testcorpus.File(t, "ICS-Security-Tools__pcaps__MELSEC__melsoft_129_clean.pcap")
	want := map[string]bool{}
	var plc, eng string
	for _, r := range vndTshark(t, path, "tcp.len > 0", "ip.src", "ip.dst", "tcp.payload") {
		b, err := hex.DecodeString(r[2])
		if err != nil || len(b) < 0x2f || b[0] != 0x57 {
			continue
		}
		want["melsoft:"+hex.EncodeToString(b[0x2d:0x2f])] = true
		plc, eng = r[1], r[0]
	}
	if len(want) == 0 {
		t.Fatal("no MELSOFT request in the capture")
	}
	out := vndRunFile(t, path, NewMELSOFT())
	got := vndFacts(out)
	var codes []string
	for _, v := range got[plc+" service"] {
		codes = append(codes, v[:len("melsoft:0000")])
	}
	if !mapsEqual(mapOf(codes), want) {
		t.Errorf("commands %q, payloads say %v", codes, keys(want))
	}
	for k, w := range map[string][]string{
		plc + " role":                {RoleMELSOFTServer},
		eng + " role":                {RoleMELSOFTClient},
		plc + " " + AttrMELSOFTWrite: {"melsoft:0410 modify-value"},
		plc + " " + AttrMELSOFTRoute: {"0.255.03ff.0"},
	} {
		if !slices.Equal(got[k], w) {
			t.Errorf("%s: got %q, want %q", k, got[k], w)
		}
	}
	vndOnce(t, out, 1)
}

func mapOf(s []string) map[string]bool {
	m := map[string]bool{}
	for _, v := range s {
		m[v] = true
	}
	return m
}

// slmp3E builds a 3E binary request (SLMP Reference Manual SH-080956ENG
// 4.1: subheader 5000, network, station, I/O LE, multidrop, length LE,
// monitoring timer, command, subcommand, data).
func slmp3E(cmd, sub uint16, data ...byte) []byte {
	b := []byte{0x50, 0x00, 0x00, 0xff, 0xff, 0x03, 0x00}
	b = binary.LittleEndian.AppendUint16(b, uint16(6+len(data)))
	b = binary.LittleEndian.AppendUint16(b, 0x0010)
	b = binary.LittleEndian.AppendUint16(b, cmd)
	b = binary.LittleEndian.AppendUint16(b, sub)
	return append(b, data...)
}

// slmp3EResp builds a 3E binary response (4.2: subheader D000, the
// request's route, length LE, end code, data).
func slmp3EResp(end uint16, data ...byte) []byte {
	b := []byte{0xd0, 0x00, 0x00, 0xff, 0xff, 0x03, 0x00}
	b = binary.LittleEndian.AppendUint16(b, uint16(2+len(data)))
	b = binary.LittleEndian.AppendUint16(b, end)
	return append(b, data...)
}

// slmp4E wraps a 3E frame as 4E: subheader 5400/D400, serial, 0000.
func slmp4E(serial uint16, f []byte) []byte {
	b := []byte{f[0] + 4, 0}
	b = binary.LittleEndian.AppendUint16(b, serial)
	b = append(b, 0, 0)
	return append(b, f[2:]...)
}

// slmpTypeNameReply: model name (16 characters, space padded), model code
// (SLMP Reference Manual, Read Type Name 0101).
func slmpTypeNameReply(model string, code uint16) []byte {
	d := []byte(model + "                ")[:16]
	return slmp3EResp(0, binary.LittleEndian.AppendUint16(d, code)...)
}

var (
	slmpCli = netip.MustParseAddrPort("10.4.0.5:50123")
	slmpSrv = netip.MustParseAddrPort("10.4.0.30:5000")
)

// TestSLMPSpecBuilt: no public SLMP capture exists; frames are built from
// the SLMP Reference Manual. Read Type Name over 3E and 4E, a device write
// and a remote STOP, on TCP (split) and UDP.
func TestSLMPSpecBuilt(t *testing.T) {
	for _, proto := range []string{"tcp", "tcp-4e", "udp"} {
		d := NewSLMP()
		f := tcpFlow(slmpCli, slmpSrv)
		wrap := func(_ uint16, b []byte) []byte { return b }
		switch proto {
		case "udp":
			f = vndUDPFlow(slmpCli, slmpSrv)
		case "tcp-4e":
			wrap = slmp4E
		}
		var out collect
		seq := [2]uint32{}
		send := func(dir flow.Dir, b []byte) {
			if proto != "udp" {
				d.Handle(vndPkt(f, dir, seq[dir], b[:5]), &out)
				d.Handle(vndPkt(f, dir, seq[dir]+5, b[5:]), &out)
			} else {
				d.Handle(vndPkt(f, dir, seq[dir], b), &out)
			}
			seq[dir] += uint32(len(b))
		}
		req := wrap(1, slmp3E(0x0101, 0))
		if !d.Probe(vndPkt(f, flow.FromClient, 0, req)) {
			t.Fatalf("%s: Probe rejected Read Type Name", proto)
		}
		send(flow.FromClient, req)
		send(flow.FromClient, wrap(2, slmp3E(0x1401, 0, 0x64, 0, 0, 0xa8, 1, 0, 0x39, 0x30)))
		send(flow.FromServer, wrap(1, slmpTypeNameReply("R04CPU", 0x4800)))
		send(flow.FromServer, wrap(2, slmp3EResp(0)))
		send(flow.FromClient, wrap(3, slmp3E(0x1002, 0, 1, 0)))
		send(flow.FromServer, wrap(3, slmp3EResp(0)))
		got := vndFacts(out)
		srv, cli := slmpSrv.Addr().String(), slmpCli.Addr().String()
		for k, w := range map[string][]string{
			srv + " model":                {"R04CPU"},
			srv + " " + AttrSLMPModelCode: {"4800"},
			srv + " class":                {dissect.ClassPLC},
			srv + " role":                 {RoleSLMPServer},
			cli + " role":                 {RoleSLMPClient},
			srv + " " + AttrSLMPRoute:     {"0.255.03ff.0"},
			srv + " " + AttrSLMPWrite:     {"slmp:1401 device-write"},
			srv + " " + AttrSLMPControl:   {"slmp:1002 remote-stop"},
		} {
			if !slices.Equal(got[k], w) {
				t.Errorf("%s %s: got %q, want %q", proto, k, got[k], w)
			}
		}
	}
}

// TestSLMPHeuristic: on a port that does not nominate SLMP, a request and
// its response claim the flow; a response alone or text does not.
func TestSLMPHeuristic(t *testing.T) {
	cli := netip.MustParseAddrPort("10.4.0.5:50124")
	srv := netip.MustParseAddrPort("10.4.0.30:7777")
	for _, c := range []struct {
		name  string
		segs  []seg
		claim bool
	}{
		{"pair", []seg{{false, slmp3E(0x0101, 0)}, {true, slmpTypeNameReply("Q03UDVCPU", 0x366)}}, true},
		{"response only", []seg{{true, slmpTypeNameReply("Q03UDVCPU", 0x366)}, {true, slmp3EResp(0)}}, false},
		{"unknown command", []seg{{false, slmp3E(0x7777, 0)}, {true, slmp3EResp(0)}}, false},
		{"text", []seg{{false, []byte("PING\r\n")}, {true, []byte("PONG\r\n")}}, false},
	} {
		out := runFile(t, writePcap(t, cli, srv, c.segs), NewSLMP())
		claimed := false
		for _, o := range out {
			claimed = claimed || o.Attr == dissect.AttrProtocol
		}
		if claimed != c.claim {
			t.Errorf("%s: claimed %v, want %v (%v)", c.name, claimed, c.claim, out)
		}
	}
}

// TestMELSOFTSpecBuilt: a remote STOP request built after the published
// layout.
func TestMELSOFTSpecBuilt(t *testing.T) {
	d := NewMELSOFT()
	f := tcpFlow(netip.MustParseAddrPort("10.4.0.5:50200"), netip.MustParseAddrPort("10.4.0.31:5007"))
	req := melsoftRequest(0x1002, []byte{0, 0})
	p := vndPkt(f, flow.FromClient, 0, req)
	if !d.Probe(p) {
		t.Fatal("Probe rejected a MELSOFT request")
	}
	var out collect
	d.Handle(p, &out)
	got := vndFacts(out)
	if w := []string{"melsoft:1002 remote-stop"}; !slices.Equal(got["10.4.0.31 "+AttrMELSOFTControl], w) {
		t.Errorf("control flag %q, want %q", got["10.4.0.31 "+AttrMELSOFTControl], w)
	}
}

// melsoftRequest builds a request: 21-byte header (magic 5700, network 0
// at 9, station FF at 10, I/O 03FF at 11, length at 19), a 24-byte
// command header, the command code, reference, data length, data.
func melsoftRequest(cmd uint16, data []byte) []byte {
	b := make([]byte, melsoftHeaderLen+0x18)
	b[0], b[10], b[11], b[12] = 0x57, 0xff, 0xff, 0x03
	b[0x15], b[0x17] = 0x1c, 0x16
	b = binary.BigEndian.AppendUint16(b, cmd)
	b = binary.LittleEndian.AppendUint16(b, 1)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(data)))
	b = append(b, data...)
	b = append(b, 0, 0, 0) // footer: size, no parameters
	binary.LittleEndian.PutUint16(b[0x13:], uint16(len(b)-melsoftHeaderLen))
	return b
}

// TestMELSECNotOther: neither dissector takes other traffic.
func TestMELSECNotOther(t *testing.T) {
	s, m := NewSLMP(), NewMELSOFT()
	for _, b := range [][]byte{
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		append(slmp3E(0x0401, 0, 0, 0, 0, 0xa8, 1, 0), 0), // length disagrees
		slmp3E(0x0401, 0x1234),                            // subcommand
		[]byte("W\x00" + string(make([]byte, 60))),
	} {
		if s.Probe(vndPkt(tcpFlow(slmpCli, slmpSrv), flow.FromClient, 0, b)) {
			t.Errorf("SLMP Probe(%x) = true", b)
		}
		if m.Probe(vndPkt(tcpFlow(slmpCli, netip.MustParseAddrPort("10.4.0.31:5007")), flow.FromClient, 0, b)) {
			t.Errorf("MELSOFT Probe(%x) = true", b)
		}
	}
}

func melsecSeeds() [][]byte {
	return [][]byte{
		slmp3E(0x0101, 0),
		slmpTypeNameReply("R04CPU", 0x4800),
		slmp4E(7, slmp3E(0x1001, 0, 1, 0)),
		slmp4E(7, slmpTypeNameReply("FX5U-32MR/ES", 0x4a21)),
		melsoftRequest(0x0410, []byte{1, 0, 0x60, 0, 0, 0, 0, 0, 0x19, 0}),
		melsoftRequest(0x1869, nil),
	}
}

// TestMELSECTruncated offers every prefix of every seed to both.
func TestMELSECTruncated(t *testing.T) {
	for _, s := range melsecSeeds() {
		for n := 0; n <= len(s); n++ {
			vndFuzz(t, NewSLMP(), tcpFlow(slmpCli, slmpSrv), s[:n], flow.FromServer, n/2)
			vndFuzz(t, NewSLMP(), vndUDPFlow(slmpCli, slmpSrv), s[:n], flow.FromClient, n)
			vndFuzz(t, NewMELSOFT(), tcpFlow(slmpCli, slmpSrv), s[:n], flow.FromClient, n/3)
		}
	}
}

// TestMELSECAllocs: steady state allocates nothing per packet.
func TestMELSECAllocs(t *testing.T) {
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	s := NewSLMP()
	f := vndUDPFlow(slmpCli, slmpSrv)
	req, resp := vndPkt(f, flow.FromClient, 0, slmp3E(0x0401, 0, 0, 0, 0, 0xa8, 1, 0)), vndPkt(f, flow.FromServer, 0, slmp3EResp(0, 1, 0))
	step := func() { s.Handle(req, sink); s.Handle(resp, sink) }
	step()
	if n := testing.AllocsPerRun(1000, step); n != 0 {
		t.Errorf("SLMP: %v allocations per exchange", n)
	}
	m := NewMELSOFT()
	mf := tcpFlow(slmpCli, slmpSrv)
	mb := melsoftRequest(0x0411, make([]byte, 20))
	mp := vndPkt(mf, flow.FromClient, 0, mb)
	mstep := func() { m.Handle(mp, sink); mp.TCPSeq += uint32(len(mb)) }
	mstep()
	if n := testing.AllocsPerRun(1000, mstep); n != 0 {
		t.Errorf("MELSOFT: %v allocations per request", n)
	}
}

// FuzzSLMP feeds arbitrary payloads over TCP and UDP.
func FuzzSLMP(f *testing.F) {
	for _, s := range melsecSeeds() {
		f.Add(s, uint8(0), uint8(5))
	}
	f.Fuzz(func(t *testing.T, b []byte, mode, cut uint8) {
		fl := tcpFlow(slmpCli, slmpSrv)
		if mode&2 != 0 {
			fl = vndUDPFlow(slmpCli, slmpSrv)
		}
		vndFuzz(t, NewSLMP(), fl, b, flow.Dir(mode&1), int(cut))
	})
}

// FuzzMELSOFT feeds arbitrary segments.
func FuzzMELSOFT(f *testing.F) {
	for _, s := range vndCorpusPayloads("ICS-Security-Tools__pcaps__MELSEC__melsoft_129_clean.pcap", 64) {
		f.Add(s, uint8(0), uint8(5))
	}
	for _, s := range melsecSeeds() {
		f.Add(s, uint8(0), uint8(5))
	}
	f.Fuzz(func(t *testing.T, b []byte, mode, cut uint8) {
		vndFuzz(t, NewMELSOFT(), tcpFlow(slmpCli, slmpSrv), b, flow.Dir(mode&1), int(cut))
	})
}

// BenchmarkSLMPHandle measures a device read and its response over UDP.
func BenchmarkSLMPHandle(b *testing.B) {
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	s := NewSLMP()
	f := vndUDPFlow(slmpCli, slmpSrv)
	req, resp := vndPkt(f, flow.FromClient, 0, slmp3E(0x0401, 0, 0, 0, 0, 0xa8, 1, 0)), vndPkt(f, flow.FromServer, 0, slmp3EResp(0, 1, 0))
	b.ReportAllocs()
	for b.Loop() {
		s.Handle(req, sink)
		s.Handle(resp, sink)
	}
}

// BenchmarkMELSOFTHandle measures one monitor request segment.
func BenchmarkMELSOFTHandle(b *testing.B) {
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	m := NewMELSOFT()
	f := tcpFlow(slmpCli, slmpSrv)
	mb := melsoftRequest(0x0411, make([]byte, 20))
	p := vndPkt(f, flow.FromClient, 0, mb)
	b.ReportAllocs()
	for b.Loop() {
		m.Handle(p, sink)
		p.TCPSeq += uint32(len(mb))
	}
}

// melsoftQFrame builds a Q-series style frame: 21-byte header (magic,
// route 0/FF/03FF, length at 19), a command header of hdr bytes whose
// third byte gives the rest of its length, then body.
func melsoftQFrame(resp bool, hdr int, body []byte) []byte {
	b := make([]byte, melsoftHeaderLen+hdr)
	b[0] = 0x57
	if resp {
		b[0] = 0xd7
	}
	b[10], b[11], b[12] = 0xff, 0xff, 0x03
	b[melsoftHeaderLen+2] = byte(hdr - 2)
	b = append(b, body...)
	binary.LittleEndian.PutUint16(b[0x13:], uint16(len(b)-melsoftHeaderLen))
	return b
}

// TestMELSOFTCPUModelSpecBuilt: the CPU model read (0101) and its reply
// built after the layout the public melsecq-discover script uses with
// Q-series CPUs (12- and 14-byte command headers; model at 6 after the
// command code, model code after it).
func TestMELSOFTCPUModelSpecBuilt(t *testing.T) {
	d := NewMELSOFT()
	f := tcpFlow(netip.MustParseAddrPort("10.4.0.5:50210"), netip.MustParseAddrPort("10.4.0.32:5007"))
	req := melsoftQFrame(false, 12, []byte{0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01})
	resp := melsoftQFrame(true, 14, append([]byte{0x01, 0x01, 0x01, 0x00, 0x00, 0x00}, []byte("Q06UDVCPU       \x66\x03")...))
	if !d.Probe(vndPkt(f, flow.FromClient, 0, req)) {
		t.Fatal("Probe rejected a Q-series CPU model read")
	}
	var out collect
	d.Handle(vndPkt(f, flow.FromClient, 0, req), &out)
	d.Handle(vndPkt(f, flow.FromServer, 0, resp), &out)
	got := vndFacts(out)
	for k, w := range map[string][]string{
		"10.4.0.32 model":                   {"Q06UDVCPU"},
		"10.4.0.32 " + AttrMELSOFTModelCode: {"0366"},
		"10.4.0.32 class":                   {dissect.ClassPLC},
		"10.4.0.32 service":                 {"melsoft:0101 read-cpu-model"},
	} {
		if !slices.Equal(got[k], w) {
			t.Errorf("%s: got %q, want %q", k, got[k], w)
		}
	}
}
