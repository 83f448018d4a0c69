package ot

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
)

// No public capture of ProConOS exists: these tests build the info
// request and reply as Digital Bond's proconos-info script exchanges them
// (request CC 01 00 0B 40 02 00 00 47 EE; reply CC 01 ... with
// NUL-terminated strings at 12, 44 and 77, then two more).

var proconosInfoRequest = []byte{0xcc, 0x01, 0x00, 0x0b, 0x40, 0x02, 0x00, 0x00, 0x47, 0xee}

func proconosInfoReply(runtime, plcType, project, boot, source string) []byte {
	b := make([]byte, proconosOffProject)
	b[0], b[1] = proconosMagic, 0x01
	copy(b[proconosOffRuntime:], runtime)
	copy(b[proconosOffType:], plcType)
	for _, s := range []string{project, boot, source} {
		b = append(append(b, s...), 0)
	}
	return append(b, make([]byte, 16)...)
}

var (
	pcoCli = netip.MustParseAddrPort("10.7.0.5:50700")
	pcoSrv = netip.MustParseAddrPort("10.7.0.51:20547")
)

// TestProConOSSpecBuilt reads the info exchange.
func TestProConOSSpecBuilt(t *testing.T) {
	d := NewProConOS()
	f := tcpFlow(pcoCli, pcoSrv)
	p := vndPkt(f, flow.FromClient, 0, proconosInfoRequest)
	if !d.Probe(p) {
		t.Fatal("Probe rejected the info request")
	}
	var out collect
	d.Handle(p, &out)
	d.Handle(vndPkt(f, flow.FromServer, 0, proconosInfoReply("ProConOS V3.0.1040 Oct 29 2002", "ADAM5510KW 1.24 Build 005", "510-projec", "510-projec", "Exist")), &out)
	got := vndFacts(out)
	for k, w := range map[string][]string{
		"10.7.0.51 firmware":                   {"ProConOS V3.0.1040 Oct 29 2002"},
		"10.7.0.51 model":                      {"ADAM5510KW 1.24 Build 005"},
		"10.7.0.51 " + AttrProConOSProject:     {"510-projec"},
		"10.7.0.51 " + AttrProConOSBootProject: {"510-projec"},
		"10.7.0.51 " + AttrProConOSSource:      {"Exist"},
		"10.7.0.51 class":                      {dissect.ClassPLC},
		"10.7.0.51 role":                       {RoleProConOSServer},
	} {
		if !slices.Equal(got[k], w) {
			t.Errorf("%s: got %q, want %q", k, got[k], w)
		}
	}
}

// TestProConOSNotProConOS: PC Worx and text are not ProConOS.
func TestProConOSNotProConOS(t *testing.T) {
	d := NewProConOS()
	for _, b := range [][]byte{pcworxMsg(0x06, 0, 2, 0, 0, 0, 0), []byte("hello world\r\n"), proconosInfoRequest[:5]} {
		if d.Probe(vndPkt(tcpFlow(pcoCli, pcoSrv), flow.FromClient, 0, b)) {
			t.Errorf("Probe(%x) = true", b)
		}
	}
}

// TestProConOSTruncated offers every prefix of the reply.
func TestProConOSTruncated(t *testing.T) {
	r := proconosInfoReply("ProConOS V3", "PLC", "p", "b", "Exist")
	for n := 0; n <= len(r); n++ {
		vndFuzz(t, NewProConOS(), tcpFlow(pcoCli, pcoSrv), r[:n], flow.FromServer, n)
	}
}

// TestProConOSAllocs: after the reply, packets cost nothing.
func TestProConOSAllocs(t *testing.T) {
	d := NewProConOS()
	f := tcpFlow(pcoCli, pcoSrv)
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	pc := vndPkt(f, flow.FromClient, 0, proconosInfoRequest)
	ps := vndPkt(f, flow.FromServer, 0, proconosInfoReply("ProConOS V3", "PLC", "p", "b", "Exist"))
	step := func() { d.Handle(pc, sink); d.Handle(ps, sink) }
	step()
	if n := testing.AllocsPerRun(1000, step); n != 0 {
		t.Errorf("%v allocations per exchange", n)
	}
}

// FuzzProConOS feeds arbitrary segments.
func FuzzProConOS(f *testing.F) {
	f.Add(proconosInfoRequest, uint8(0))
	f.Add(proconosInfoReply("ProConOS V3", "PLC", "p", "b", "Exist"), uint8(1))
	f.Fuzz(func(t *testing.T, b []byte, mode uint8) {
		vndFuzz(t, NewProConOS(), tcpFlow(pcoCli, pcoSrv), b, flow.Dir(mode&1), len(b))
	})
}

// BenchmarkProConOSHandle measures the info exchange on a read flow.
func BenchmarkProConOSHandle(b *testing.B) {
	d := NewProConOS()
	f := tcpFlow(pcoCli, pcoSrv)
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	pc := vndPkt(f, flow.FromClient, 0, proconosInfoRequest)
	ps := vndPkt(f, flow.FromServer, 0, proconosInfoReply("ProConOS V3", "PLC", "p", "b", "Exist"))
	b.ReportAllocs()
	for b.Loop() {
		d.Handle(pc, sink)
		d.Handle(ps, sink)
	}
}
