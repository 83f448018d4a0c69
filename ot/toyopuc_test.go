package ot

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
)

// No public TOYOPUC capture exists and Wireshark 4.0 has no dissector for
// the computer link: these tests use frames built from the public
// computer link summary (pytoyopuc-computerlink docs/COMPUTER_LINK_SPEC.md,
// "1. Frame format": FT at 0, RC at 1, LL LH at 2-3 counting the bytes
// from CMD on, CMD at 4; "Clock access" and "CPU status access": the
// request and response bytes given there; "Relay command": the D0100-D0102
// read through link 2 / exchange 3 given byte for byte; "Error response
// codes": 80 10 01 00 40) and its frame builders (toyopuc/protocol.py:
// word read 1C address+count, word write 1D address+values).

// toyoFrame builds a frame: FT, RC, length of cmd and data, cmd, data.
func toyoFrame(ft, rc, cmd byte, data ...byte) []byte {
	l := 1 + len(data)
	return append([]byte{ft, rc, byte(l), byte(l >> 8), cmd}, data...)
}

var (
	toyoCli    = netip.MustParseAddrPort("10.8.0.5:12000")
	toyoSrvTCP = netip.MustParseAddrPort("10.8.0.101:1025")
	toyoSrvUDP = netip.MustParseAddrPort("10.8.0.101:1027")
)

// toyoSession is a client's session: request, response pairs.
func toyoSession() [][2][]byte {
	return [][2][]byte{
		// CPU status read and its reply: Data1 0x81 (RUN, PC10 mode).
		{{0x00, 0x00, 0x03, 0x00, 0x32, 0x11, 0x00},
			{0x80, 0x00, 0x0b, 0x00, 0x32, 0x11, 0x00, 0x81, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02}},
		// Clock read, the response body observed in the summary.
		{{0x00, 0x00, 0x03, 0x00, 0x32, 0x70, 0x00},
			{0x80, 0x00, 0x0a, 0x00, 0x32, 0x70, 0x00, 0x04, 0x17, 0x06, 0x12, 0x00, 0x00, 0x04}},
		// Word read D0100 (word address 0x1100), one word.
		{toyoFrame(0, 0, 0x1c, 0x00, 0x11, 0x01, 0x00), toyoFrame(0x80, 0, 0x1c, 0x34, 0x12)},
		// Word write D0100 = 0x1234.
		{toyoFrame(0, 0, 0x1d, 0x00, 0x11, 0x34, 0x12), toyoFrame(0x80, 0, 0x1d)},
		// Relay: D0100-D0102 on link 2 / exchange 3, byte for byte.
		{{0x00, 0x00, 0x0d, 0x00, 0x60, 0x02, 0x03, 0x00, 0x05, 0x05, 0x00, 0x1c, 0x00, 0x11, 0x03, 0x00, 0x00},
			{0x80, 0x00, 0x0f, 0x00, 0x60, 0x02, 0x03, 0x00, 0x06, 0x07, 0x00, 0x1c, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x00}},
		// Word read out of range: NAK 0x40.
		{toyoFrame(0, 0, 0x1c, 0x00, 0x30, 0x01, 0x00), {0x80, 0x10, 0x01, 0x00, 0x40}},
	}
}

// toyoRun plays a session on f, TCP segments split in two.
func toyoRun(t *testing.T, d *Toyopuc, f *flow.Flow, session [][2][]byte) collect {
	t.Helper()
	var out collect
	seq := [2]uint32{}
	for i, ex := range session {
		for dir, b := range ex {
			if i == 0 && dir == 0 && !d.Probe(vndPkt(f, flow.FromClient, 0, b)) {
				t.Fatalf("Probe rejected %x", b)
			}
			if f.Proto == 17 {
				d.Handle(vndPkt(f, flow.Dir(dir), 0, b), &out)
				continue
			}
			d.Handle(vndPkt(f, flow.Dir(dir), seq[dir], b[:3]), &out)
			d.Handle(vndPkt(f, flow.Dir(dir), seq[dir]+3, b[3:]), &out)
			seq[dir] += uint32(len(b))
		}
	}
	return out
}

// TestToyopucSpecBuilt: roles, commands, the write flag, the relay path,
// the CPU state and a NAK, over TCP (split segments) and UDP.
func TestToyopucSpecBuilt(t *testing.T) {
	for _, f := range []*flow.Flow{tcpFlow(toyoCli, toyoSrvTCP), vndUDPFlow(toyoCli, toyoSrvUDP)} {
		got := vndFacts(toyoRun(t, NewToyopuc(), f, toyoSession()))
		plc := "10.8.0.101"
		for k, w := range map[string][]string{
			plc + " service": {"toyopuc:32/11 cpu-status-read", "toyopuc:32/70 clock-read", "toyopuc:1c word-read",
				"toyopuc:1d word-write", "toyopuc:60 relay"},
			plc + " " + AttrToyopucWrite:    {"toyopuc:1d word-write"},
			plc + " " + AttrToyopucRelay:    {"link 0x02 station 0x0003"},
			plc + " " + AttrToyopucCPUState: {"run, PC10 mode"},
			plc + " " + AttrToyopucNAK:      {"toyopuc nak 0x40"},
			plc + " role":                   {RoleToyopucServer},
			plc + " class":                  {dissect.ClassPLC},
			plc + " vendor":                 {"JTEKT"},
			"10.8.0.5 role":                 {RoleToyopucClient},
		} {
			if !slices.Equal(got[k], w) {
				t.Errorf("proto %d %s: got %q, want %q", f.Proto, k, got[k], w)
			}
		}
	}
}

// TestToyopucNestedRelayAndState: a two-hop relay (the summary's nesting:
// each hop prepends link, station, ENQ, length) reports the path and the
// inner command; a CPU state change is reported, a repeat is not.
func TestToyopucNestedRelayAndState(t *testing.T) {
	inner := []byte{0x32, 0x11, 0x00}
	hop2 := append([]byte{0x60, 0x02, 0x04, 0x00, 0x05, byte(len(inner)), 0}, inner...)
	hop2 = append(hop2, 0)
	req := toyoFrame(0, 0, 0x60, append([]byte{0x12, 0x02, 0x00, 0x05, byte(len(hop2)), 0}, append(hop2, 0)...)...)
	status := func(d1, d2 byte) []byte {
		return toyoFrame(0x80, 0, 0x32, 0x11, 0x00, d1, d2, 0, 0, 0, 0, 0, 0)
	}
	session := [][2][]byte{
		{req, toyoFrame(0x80, 0, 0x60, 0x12, 0x02, 0x00, 0x06, 0x01, 0x00, 0x60)},
		{toyoFrame(0, 0, 0x32, 0x11, 0x00), status(0x81, 0)},
		{toyoFrame(0, 0, 0x32, 0x11, 0x00), status(0x81, 0)},
		{toyoFrame(0, 0, 0x32, 0x11, 0x00), status(0x41, 0x80)},
		{toyoFrame(0, 0, 0x32, 0x11, 0x00), status(0x41, 0x80)},
	}
	out := toyoRun(t, NewToyopuc(), vndUDPFlow(toyoCli, toyoSrvUDP), session)
	got := vndFacts(out)
	if w := []string{"link 0x12 station 0x0002 > link 0x02 station 0x0004"}; !slices.Equal(got["10.8.0.101 "+AttrToyopucRelay], w) {
		t.Errorf("relay: got %q, want %q", got["10.8.0.101 "+AttrToyopucRelay], w)
	}
	if w := []string{"run, PC10 mode", "stop, PC10 mode, fatal failure"}; !slices.Equal(got["10.8.0.101 "+AttrToyopucCPUState], w) {
		t.Errorf("cpu state: got %q, want %q", got["10.8.0.101 "+AttrToyopucCPUState], w)
	}
	if !slices.Contains(got["10.8.0.101 service"], "toyopuc:32/11 cpu-status-read") {
		t.Errorf("the relayed command is missing: %q", got["10.8.0.101 service"])
	}
	vndOnce(t, out, 1)
}

// TestToyopucNotToyopuc: other traffic on the computer link ports is not
// taken.
func TestToyopucNotToyopuc(t *testing.T) {
	d := NewToyopuc()
	wordRead := toyoFrame(0, 0, 0x1c, 0x00, 0x11, 0x01, 0x00)
	for _, c := range []struct {
		udp bool
		b   []byte
	}{
		{false, []byte("GET / HTTP/1.1\r\n\r\n")},
		{false, []byte{0x05, 0x00, 0x0b, 0x03, 0x10, 0x00, 0x00, 0x00, 0x48, 0x00}},    // DCE/RPC bind
		{false, toyoFrame(0, 0, 0x1c, 0x00, 0x11, 0x01)},                               // word read, length 4
		{false, toyoFrame(0, 0, 0x55, 0x00, 0x11)},                                     // unknown command
		{false, toyoFrame(0, 0, 0x32, 0x99, 0x00)},                                     // unknown subcommand
		{false, toyoFrame(0, 1, 0x1c, 0x00, 0x11, 0x01, 0x00)},                         // RC set on a request
		{false, toyoFrame(0x40, 0, 0x1c, 0x00, 0x11, 0x01, 0x00)},                      // FT
		{false, wordRead[:7]},                                                          // cut
		{true, append(slices.Clone(wordRead), 0)},                                      // trailing byte in a datagram
		{true, []byte{0x00, 0x00, 0x00, 0x00, 0x1c}},                                   // zero length
		{true, []byte{0x00, 0x00, 0xff, 0xff, 0x1c, 0, 0, 0}},                          // length too large
		{true, toyoFrame(0x80, 0, 0x77, 0x00)},                                         // response, unknown command
		{true, toyoFrame(0x80, 0x20, 0x1c, 0x00)},                                      // RC neither 0 nor NAK
		{true, toyoFrame(0, 0, 0x60, 0x02, 0x03, 0x00, 0x05)},                          // relay without inner
		{false, toyoFrame(0, 0, 0x32, 0x71, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00)}, // clock write, short
	} {
		f := tcpFlow(toyoCli, toyoSrvTCP)
		if c.udp {
			f = vndUDPFlow(toyoCli, toyoSrvUDP)
		}
		if d.Probe(vndPkt(f, flow.FromClient, 0, c.b)) {
			t.Errorf("Probe(%x) = true", c.b)
		}
	}
}

// TestToyopucTruncated offers every prefix of every frame.
func TestToyopucTruncated(t *testing.T) {
	for _, ex := range toyoSession() {
		for _, s := range ex {
			for n := 0; n <= len(s); n++ {
				vndFuzz(t, NewToyopuc(), tcpFlow(toyoCli, toyoSrvTCP), s[:n], flow.FromClient, n/2)
				vndFuzz(t, NewToyopuc(), vndUDPFlow(toyoCli, toyoSrvUDP), s[:n], flow.FromServer, n)
			}
		}
	}
}

// TestToyopucAllocs: steady polling allocates nothing.
func TestToyopucAllocs(t *testing.T) {
	for _, f := range []*flow.Flow{tcpFlow(toyoCli, toyoSrvTCP), vndUDPFlow(toyoCli, toyoSrvUDP)} {
		d := NewToyopuc()
		sink := dissect.SinkFunc(func(dissect.Observation) {})
		ex := toyoSession()[0]
		pc, ps := vndPkt(f, flow.FromClient, 0, ex[0]), vndPkt(f, flow.FromServer, 0, ex[1])
		step := func() {
			d.Handle(pc, sink)
			pc.TCPSeq += uint32(len(ex[0]))
			d.Handle(ps, sink)
			ps.TCPSeq += uint32(len(ex[1]))
		}
		step()
		if n := testing.AllocsPerRun(1000, step); n != 0 {
			t.Errorf("proto %d: %v allocations per exchange", f.Proto, n)
		}
	}
}

// FuzzToyopuc feeds arbitrary segments and datagrams.
func FuzzToyopuc(f *testing.F) {
	for _, ex := range toyoSession() {
		f.Add(ex[0], uint8(0), uint8(3))
		f.Add(ex[1], uint8(3), uint8(40))
	}
	f.Fuzz(func(t *testing.T, b []byte, mode, cut uint8) {
		fl := tcpFlow(toyoCli, toyoSrvTCP)
		if mode&2 != 0 {
			fl = vndUDPFlow(toyoCli, toyoSrvUDP)
		}
		vndFuzz(t, NewToyopuc(), fl, b, flow.Dir(mode&1), int(cut))
	})
}

// BenchmarkToyopucHandle measures a CPU status poll and its reply over
// TCP.
func BenchmarkToyopucHandle(b *testing.B) {
	d := NewToyopuc()
	f := tcpFlow(toyoCli, toyoSrvTCP)
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	ex := toyoSession()[0]
	pc, ps := vndPkt(f, flow.FromClient, 0, ex[0]), vndPkt(f, flow.FromServer, 0, ex[1])
	b.ReportAllocs()
	for b.Loop() {
		d.Handle(pc, sink)
		pc.TCPSeq += uint32(len(ex[0]))
		d.Handle(ps, sink)
		ps.TCPSeq += uint32(len(ex[1]))
	}
}
