package ot

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
	"github.com/passivesensor/sensor/internal/testcorpus"
)

var finsCorpus = []string{
	"ICS-Pcaps__OMRON__omron.pcap",
	"ICS-Pcaps__OMRON__omron2.pcap",
	"Malcolm-Test-Artifacts__pcap__protocols__OmronFINS.pcap", // FINS/UDP and FINS/TCP
	"ICS-Pcaps__Mergecap__kokteyl.pcap",
}

// TestFINSCorpus compares, on every FINS capture of the corpus, what the
// sensor learns with what tshark's omron dissector reads: the command
// codes each server is sent (omron.command of frames whose ICF response
// bit is clear, by ip.dst), the controller model and version of every
// Controller Data Read reply (omron.controller.model/version, by ip.src),
// the source node addresses (omron.sna/sa1/sa2 by ip.src) and FINS/TCP's
// node address exchange (omron.tcp.client/server_node_address).
func TestFINSCorpus(t *testing.T) {
	for _, name := range finsCorpus {
		t.Run(name, func(t *testing.T) {
			path := testcorpus.File(t, name)
			want := map[string][]string{}
			rows := testcorpus.Tshark(t, path, "omron && !icmp", "ip.src", "ip.dst", "omron.icf", "omron.command",
				"omron.controller.model", "omron.controller.version", "omron.sna", "omron.sa1", "omron.sa2")
			if len(rows) == 0 {
				t.Fatalf("tshark read no FINS frame in %s", name)
			}
			for _, r := range rows {
				icf, _ := strconv.ParseUint(strings.TrimPrefix(r[2], "0x"), 16, 8)
				cmd := strings.TrimPrefix(r[3], "0x")
				if icf&0x40 == 0 && cmd != "" {
					want[r[1]+" service"] = append(want[r[1]+" service"], cmd)
				}
				if r[4] != "" {
					want[r[0]+" model"] = append(want[r[0]+" model"], r[4])
					want[r[0]+" firmware"] = append(want[r[0]+" firmware"], r[5])
				}
				n1, _ := strconv.ParseUint(strings.TrimPrefix(r[6], "0x"), 16, 8)
				n2, _ := strconv.ParseUint(strings.TrimPrefix(r[7], "0x"), 16, 8)
				n3, _ := strconv.ParseUint(strings.TrimPrefix(r[8], "0x"), 16, 8)
				if n2 != 0 {
					want[r[0]+" fins.node"] = append(want[r[0]+" fins.node"], strconv.Itoa(int(n1))+"."+strconv.Itoa(int(n2))+"."+strconv.Itoa(int(n3)))
				}
			}
			for _, r := range testcorpus.Tshark(t, path, "omron.tcp.command == 1", "ip.src", "ip.dst", "omron.tcp.client_node_address", "omron.tcp.server_node_address") {
				want[r[1]+" fins.node"] = append(want[r[1]+" fins.node"], "0."+r[2]+".0")
				want[r[0]+" fins.node"] = append(want[r[0]+" fins.node"], "0."+r[3]+".0")
			}
			out := runFile(t, path, NewFINS())
			got := vndFacts(out)
			for k, v := range got {
				if strings.HasSuffix(k, " service") {
					for i := range v {
						v[i], _, _ = strings.Cut(strings.TrimPrefix(v[i], "fins:"), " ")
					}
				}
			}
			for k, w := range want {
				if g, w := vndSet(got[k]), vndSet(w); !slices.Equal(g, w) {
					t.Errorf("%s: got %q, tshark %q", k, g, w)
				}
			}
			for k := range got {
				if _, ok := want[k]; !ok && (strings.HasSuffix(k, " model") || strings.HasSuffix(k, " service") || strings.HasSuffix(k, " fins.node")) {
					t.Errorf("%s: got %q, tshark has none", k, got[k])
				}
			}
			vndOnce(t, out, 8)
			t.Logf("%d frames, %d observations", len(rows), len(out))
		})
	}
}

// TestFINSMalcolmIdentity states what a user sees of the CP1L in the
// Malcolm capture: model, version, class, roles and the write flags.
func TestFINSMalcolmIdentity(t *testing.T) {
	path := testcorpus.File(t, "Malcolm-Test-Artifacts__pcap__protocols__OmronFINS.pcap")
	got := vndFacts(runFile(t, path, NewFINS()))
	plc := "10.1.1.164"
	if m := vndSet(got[plc+" model"]); !slices.Equal(m, []string{"CP1L-EL20DR-D"}) {
		t.Errorf("model %q", m)
	}
	if v := vndSet(got[plc+" firmware"]); !slices.Equal(v, []string{"01.00"}) {
		t.Errorf("version %q", v)
	}
	if c := vndSet(got[plc+" class"]); !slices.Equal(c, []string{dissect.ClassPLC}) {
		t.Errorf("class %q", c)
	}
	if !slices.Contains(got[plc+" role"], RoleFINSServer) || !slices.Contains(got["10.1.1.173 role"], RoleFINSClient) {
		t.Errorf("roles: %v / %v", got[plc+" role"], got["10.1.1.173 role"])
	}
}

// finsFrame builds a FINS frame (FINS Commands Reference W342, 3-2):
// ICF, RSV 0, GCT 2, DNA, DA1, DA2, SNA, SA1, SA2, SID, MRC/SRC, data.
func finsFrame(resp bool, dst, src [3]byte, sid byte, code uint16, data ...byte) []byte {
	icf := byte(0x80)
	if resp {
		icf = 0xc0
	}
	b := []byte{icf, 0, 2, dst[0], dst[1], dst[2], src[0], src[1], src[2], sid, byte(code >> 8), byte(code)}
	return append(b, data...)
}

// finsTCP wraps a FINS frame in the FINS/TCP header (W421 7-4).
func finsTCP(cmd uint32, data []byte) []byte {
	b := []byte("FINS")
	b = binary.BigEndian.AppendUint32(b, uint32(8+len(data)))
	b = binary.BigEndian.AppendUint32(b, cmd)
	b = binary.BigEndian.AppendUint32(b, 0)
	return append(b, data...)
}

// finsControllerData builds a Controller Data Read reply: end code 0000,
// model and version in 20-byte fields, 40 bytes for system use.
func finsControllerData(dst, src [3]byte, model, version string) []byte {
	d := []byte{0, 0}
	d = append(d, pad(model, 20)...)
	d = append(d, pad(version, 20)...)
	d = append(d, make([]byte, 40)...)
	return finsFrame(true, dst, src, 1, 0x0501, d...)
}

func pad(s string, n int) []byte {
	b := make([]byte, n)
	copy(b, s)
	return b
}

var (
	finsCli = netip.MustParseAddrPort("10.2.0.5:9600")
	finsSrv = netip.MustParseAddrPort("10.2.0.10:9600")
	finsTCC = netip.MustParseAddrPort("10.2.0.5:50000")
)

// TestFINSSpecBuilt runs frames built from the FINS reference over UDP and
// TCP (a split FINS/TCP frame) and checks flags, identity and bounds.
func TestFINSSpecBuilt(t *testing.T) {
	d := NewFINS()
	pc, ps := [3]byte{0, 5, 0}, [3]byte{0, 10, 0}
	for _, proto := range []string{"udp", "tcp"} {
		var f *flow.Flow
		wrap := func(b []byte) []byte { return b }
		if proto == "udp" {
			f = vndUDPFlow(finsCli, finsSrv)
		} else {
			f = tcpFlow(finsTCC, finsSrv)
			wrap = func(b []byte) []byte { return finsTCP(finsTCPFrame, b) }
		}
		var out collect
		seq := [2]uint32{}
		send := func(dir flow.Dir, b []byte) {
			b = wrap(b)
			if proto == "tcp" && len(b) > 20 { // split every frame
				d.Handle(vndPkt(f, dir, seq[dir], b[:7]), &out)
				d.Handle(vndPkt(f, dir, seq[dir]+7, b[7:]), &out)
			} else {
				d.Handle(vndPkt(f, dir, seq[dir], b), &out)
			}
			seq[dir] += uint32(len(b))
		}
		if !d.Probe(vndPkt(f, flow.FromClient, 0, wrap(finsFrame(false, ps, pc, 1, 0x0501)))) {
			t.Fatalf("%s: Probe rejected a Controller Data Read command", proto)
		}
		for i := 0; i < 3; i++ {
			send(flow.FromClient, finsFrame(false, ps, pc, 1, 0x0501))
			send(flow.FromServer, finsControllerData(pc, ps, "CJ2M-CPU33", "02.01"))
			send(flow.FromClient, finsFrame(false, ps, pc, 2, 0x0102, 0x82, 0, 100, 0, 0, 1, 0, 7))
			send(flow.FromClient, finsFrame(false, ps, pc, 3, 0x0402, 0xff, 0xff))
			send(flow.FromClient, finsFrame(false, ps, pc, 4, 0x0307, 0xff, 0xff))
		}
		got := vndFacts(out)
		srv, cli := finsSrv.Addr().String(), finsCli.Addr().String()
		for k, w := range map[string][]string{
			srv + " model":        {"CJ2M-CPU33"},
			srv + " firmware":     {"02.01"},
			srv + " class":        {"plc"},
			srv + " role":         {RoleFINSServer},
			cli + " role":         {RoleFINSClient},
			srv + " fins.node":    {"0.10.0"},
			cli + " fins.node":    {"0.5.0"},
			srv + " fins.write":   {"fins:0102 memory-area-write"},
			srv + " fins.control": {"fins:0402 stop"},
			srv + " fins.program": {"fins:0307 program-area-write"},
			srv + " service":      {"fins:0501 controller-data-read", "fins:0102 memory-area-write", "fins:0402 stop", "fins:0307 program-area-write"},
		} {
			if !slices.Equal(got[k], w) {
				t.Errorf("%s %s: got %q, want %q", proto, k, got[k], w)
			}
		}
	}
}

// TestFINSAreaDataNotModel: a Controller Data Read reply to parameter 01
// (area data only: binary) is not taken for a model.
func TestFINSAreaDataNotModel(t *testing.T) {
	d := NewFINS()
	f := vndUDPFlow(finsCli, finsSrv)
	area := []byte{0, 0, 0x00, 0x28, 0x17, 0x00, 0x00, 0x00, 0x80, 0x00}
	area = append(area, make([]byte, 40)...)
	var out collect
	d.Handle(vndPkt(f, flow.FromServer, 0, finsFrame(true, [3]byte{0, 5, 0}, [3]byte{0, 10, 0}, 1, 0x0501, area...)), &out)
	for _, o := range out {
		if o.Attr == dissect.AttrModel || o.Attr == dissect.AttrFirmware {
			t.Errorf("area data read as %s %q", o.Attr, o.Value)
		}
	}
}

// TestFINSNotFINS: other traffic on 9600 is not claimed.
func TestFINSNotFINS(t *testing.T) {
	d := NewFINS()
	for _, b := range [][]byte{
		[]byte("GET / HTTP/1.1\r\n\r\n"),
		{0x80, 0, 2, 0, 10, 0, 0, 5, 0, 1, 0x99, 0x01}, // unknown command
		{0x82, 0, 2, 0, 10, 0, 0, 5, 0, 1, 0x01, 0x01}, // reserved ICF bit
		{0x80, 1, 2, 0, 10, 0, 0, 5, 0, 1, 0x01, 0x01}, // RSV not 0
		[]byte("FINX\x00\x00\x00\x0c\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
	} {
		for _, f := range []*flow.Flow{vndUDPFlow(finsCli, finsSrv), tcpFlow(finsTCC, finsSrv)} {
			if d.Probe(vndPkt(f, flow.FromClient, 0, b)) {
				t.Errorf("Probe(%x) = true", b)
			}
		}
	}
}

func finsSeeds() [][]byte {
	pc, ps := [3]byte{0, 5, 0}, [3]byte{0, 10, 0}
	return [][]byte{
		finsFrame(false, ps, pc, 1, 0x0501),
		finsControllerData(pc, ps, "CJ2M-CPU33", "02.01"),
		finsTCP(finsTCPFrame, finsControllerData(pc, ps, "CP1L", "1.0")),
		finsTCP(finsTCPNodeResp, []byte{0, 0, 0, 5, 0, 0, 0, 10}),
		finsTCP(finsTCPNodeReq, []byte{0, 0, 0, 0}),
		finsFrame(false, ps, pc, 3, 0x0402, 0xff, 0xff),
	}
}

// TestFINSTruncated offers every prefix of every seed.
func TestFINSTruncated(t *testing.T) {
	d := NewFINS()
	for _, s := range finsSeeds() {
		for n := 0; n <= len(s); n++ {
			for _, f := range []*flow.Flow{vndUDPFlow(finsCli, finsSrv), tcpFlow(finsTCC, finsSrv)} {
				vndFuzz(t, d, f, s[:n], flow.FromServer, n/2)
			}
		}
	}
}

// TestFINSAllocs: steady state allocates nothing per packet.
func TestFINSAllocs(t *testing.T) {
	d := NewFINS()
	f := vndUDPFlow(finsCli, finsSrv)
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	req := vndPkt(f, flow.FromClient, 0, finsFrame(false, [3]byte{0, 10, 0}, [3]byte{0, 5, 0}, 1, 0x0101, 0x82, 0, 0, 0, 0, 10))
	resp := vndPkt(f, flow.FromServer, 0, finsControllerData([3]byte{0, 5, 0}, [3]byte{0, 10, 0}, "CJ2M", "1"))
	step := func() { d.Probe(req); d.Handle(req, sink); d.Handle(resp, sink) }
	step()
	if n := testing.AllocsPerRun(1000, step); n != 0 {
		t.Errorf("%v allocations per exchange, want 0", n)
	}
}

// FuzzFINS feeds arbitrary payloads over UDP and TCP in both directions.
func FuzzFINS(f *testing.F) {
	for _, s := range vndCorpusPayloads("Malcolm-Test-Artifacts__pcap__protocols__OmronFINS.pcap", 64) {
		f.Add(s, uint8(0), uint8(9))
	}
	for _, s := range vndCorpusPayloads("ICS-Pcaps__OMRON__omron.pcap", 64) {
		f.Add(s, uint8(0), uint8(9))
	}
	for _, s := range finsSeeds() {
		f.Add(s, uint8(0), uint8(9))
	}
	f.Fuzz(func(t *testing.T, b []byte, mode, cut uint8) {
		fl := vndUDPFlow(finsCli, finsSrv)
		if mode&2 != 0 {
			fl = tcpFlow(finsTCC, finsSrv)
		}
		vndFuzz(t, NewFINS(), fl, b, flow.Dir(mode&1), int(cut))
	})
}

// BenchmarkFINSHandle measures a command and its Controller Data Read reply.
func BenchmarkFINSHandle(b *testing.B) {
	d := NewFINS()
	f := vndUDPFlow(finsCli, finsSrv)
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	req := vndPkt(f, flow.FromClient, 0, finsFrame(false, [3]byte{0, 10, 0}, [3]byte{0, 5, 0}, 1, 0x0101, 0x82, 0, 0, 0, 0, 10))
	resp := vndPkt(f, flow.FromServer, 0, finsControllerData([3]byte{0, 5, 0}, [3]byte{0, 10, 0}, "CJ2M", "1"))
	b.ReportAllocs()
	for b.Loop() {
		d.Handle(req, sink)
		d.Handle(resp, sink)
	}
}
