package ot

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"testing"

	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
)

// No public Crimson v3 capture exists: the frames are those the public
// cr3-fingerprint NSE script sends (00 04 01 2B 1B 00 manufacturer,
// 00 04 01 2A 1A 00 model) and the answers it reads (the same header,
// then a NUL-terminated string; length counts the bytes after itself).

func crimsonReply(reg uint16, typ uint16, s string) []byte {
	b := []byte{0, 0}
	b = binary.BigEndian.AppendUint16(b, reg)
	b = binary.BigEndian.AppendUint16(b, typ)
	b = append(append(b, s...), 0)
	binary.BigEndian.PutUint16(b, uint16(len(b)-2))
	return b
}

var (
	crimsonManufacturerRead = []byte{0x00, 0x04, 0x01, 0x2b, 0x1b, 0x00}
	crimsonModelRead        = []byte{0x00, 0x04, 0x01, 0x2a, 0x1a, 0x00}
	crCli                   = netip.MustParseAddrPort("10.8.0.5:51000")
	crSrv                   = netip.MustParseAddrPort("10.8.0.80:789")
)

// TestCrimsonSpecBuilt reads the two identity reads and their answers,
// the second pair in one segment each way.
func TestCrimsonSpecBuilt(t *testing.T) {
	d := NewCrimson()
	f := tcpFlow(crCli, crSrv)
	if !d.Probe(vndPkt(f, flow.FromClient, 0, crimsonManufacturerRead)) {
		t.Fatal("Probe rejected the manufacturer read")
	}
	var out collect
	r1 := crimsonReply(crimsonManufacturer, 0x1b00, "Red Lion Controls")
	r2 := crimsonReply(crimsonModel, 0x1a00, "G310C2")
	d.Handle(vndPkt(f, flow.FromClient, 0, crimsonManufacturerRead), &out)
	d.Handle(vndPkt(f, flow.FromServer, 0, r1[:5]), &out)
	d.Handle(vndPkt(f, flow.FromServer, 5, r1[5:]), &out)
	d.Handle(vndPkt(f, flow.FromClient, 6, crimsonModelRead), &out)
	d.Handle(vndPkt(f, flow.FromServer, uint32(len(r1)), r2), &out)
	got := vndFacts(out)
	for k, w := range map[string][]string{
		"10.8.0.80 vendor":                 {"Red Lion Controls"},
		"10.8.0.80 model":                  {"G310C2"},
		"10.8.0.80 " + AttrCrimsonRegister: {"crimson:registers 012b", "crimson:registers 012a,012b"},
		"10.8.0.80 role":                   {RoleCrimsonServer},
	} {
		if !slices.Equal(got[k], w) {
			t.Errorf("%s: got %q, want %q", k, got[k], w)
		}
	}
}

// TestCrimsonNotCrimson: other traffic on 789 is not taken.
func TestCrimsonNotCrimson(t *testing.T) {
	d := NewCrimson()
	for _, b := range [][]byte{[]byte("GET / HTTP/1.1\r\n\r\n"), {0, 1, 2}, append(slices.Clone(crimsonModelRead), 0)} {
		if d.Probe(vndPkt(tcpFlow(crCli, crSrv), flow.FromClient, 0, b)) {
			t.Errorf("Probe(%x) = true", b)
		}
	}
}

// TestCrimsonTruncated offers every prefix.
func TestCrimsonTruncated(t *testing.T) {
	r := crimsonReply(crimsonModel, 0x1a00, "G310C2")
	for n := 0; n <= len(r); n++ {
		vndFuzz(t, NewCrimson(), tcpFlow(crCli, crSrv), r[:n], flow.FromServer, n/2)
	}
}

// TestCrimsonAllocs: steady traffic allocates nothing.
func TestCrimsonAllocs(t *testing.T) {
	d := NewCrimson()
	f := tcpFlow(crCli, crSrv)
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	r := crimsonReply(crimsonModel, 0x1a00, "G310C2")
	pc, ps := vndPkt(f, flow.FromClient, 0, crimsonModelRead), vndPkt(f, flow.FromServer, 0, r)
	step := func() {
		d.Handle(pc, sink)
		pc.TCPSeq += uint32(len(crimsonModelRead))
		d.Handle(ps, sink)
		ps.TCPSeq += uint32(len(r))
	}
	step()
	if n := testing.AllocsPerRun(1000, step); n != 0 {
		t.Errorf("%v allocations per exchange", n)
	}
}

// FuzzCrimson feeds arbitrary segments.
func FuzzCrimson(f *testing.F) {
	f.Add(crimsonManufacturerRead, uint8(0), uint8(3))
	f.Add(crimsonReply(crimsonModel, 0x1a00, "G310C2"), uint8(1), uint8(4))
	f.Fuzz(func(t *testing.T, b []byte, mode, cut uint8) {
		vndFuzz(t, NewCrimson(), tcpFlow(crCli, crSrv), b, flow.Dir(mode&1), int(cut))
	})
}

// BenchmarkCrimsonHandle measures a read and its answer.
func BenchmarkCrimsonHandle(b *testing.B) {
	d := NewCrimson()
	f := tcpFlow(crCli, crSrv)
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	r := crimsonReply(crimsonModel, 0x1a00, "G310C2")
	pc, ps := vndPkt(f, flow.FromClient, 0, crimsonModelRead), vndPkt(f, flow.FromServer, 0, r)
	b.ReportAllocs()
	for b.Loop() {
		d.Handle(pc, sink)
		pc.TCPSeq += uint32(len(crimsonModelRead))
		d.Handle(ps, sink)
		ps.TCPSeq += uint32(len(r))
	}
}
