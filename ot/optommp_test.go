package ot

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
	"github.com/passivesensor/sensor/internal/testcorpus"
)

// No public OptoMMP capture is in the corpus: packets are built from the
// OptoMMP Protocol Guide (IEEE 1394 asynchronous packets) and the status
// area layout public tools read; tshark's optommp dissector is the oracle
// for the transaction codes, offsets and returned bytes.

// mmpReadBlock builds a read block request for n bytes at offset.
func mmpReadBlock(tl byte, offset uint64, n uint16) []byte {
	b := []byte{0, 0, tl << 2, mmpReadBlockReq << 4, 0, 0}
	b = binary.BigEndian.AppendUint16(b, uint16(offset>>32))
	b = binary.BigEndian.AppendUint32(b, uint32(offset))
	b = binary.BigEndian.AppendUint16(b, n)
	return append(b, 0, 0)
}

// mmpReadBlockReply answers with data.
func mmpReadBlockReply(tl byte, data []byte) []byte {
	b := []byte{0, 0, tl << 2, mmpReadBlockResp << 4, 0, 0, 0, 0, 0, 0, 0, 0}
	b = binary.BigEndian.AppendUint16(b, uint16(len(data)))
	b = append(b, 0, 0)
	return append(b, data...)
}

// mmpWriteQuad writes 4 bytes at offset.
func mmpWriteQuad(tl byte, offset uint64, v uint32) []byte {
	b := []byte{0, 0, tl << 2, mmpWriteQuadReq << 4, 0, 0}
	b = binary.BigEndian.AppendUint16(b, uint16(offset>>32))
	b = binary.BigEndian.AppendUint32(b, uint32(offset))
	return binary.BigEndian.AppendUint32(b, v)
}

// mmpStatusArea returns the first 0xa0 bytes of a status area.
func mmpStatusArea(fw [4]byte, unitType uint32, desc string) []byte {
	d := make([]byte, 0xa0)
	copy(d[0x1c:], fw[:])
	binary.BigEndian.PutUint32(d[0x20:], unitType)
	copy(d[0x80:], desc)
	return d
}

var (
	mmpCli = netip.MustParseAddrPort("10.8.0.5:50900")
	mmpSrv = netip.MustParseAddrPort("10.8.0.70:2001")
)

// TestOptoMMPTshark writes a status read and a write, and compares the
// identity learnt with the bytes tshark's optommp dissector shows at the
// status area's offsets.
func TestOptoMMPTshark(t *testing.T) {
	testcorpus.NeedTshark(t)
	area := mmpStatusArea([4]byte{10, 2, 0, 3}, 0x0000_7a05, "SNAP-PAC-R1")
	path := writePcap(t, mmpCli, mmpSrv, []seg{
		{false, mmpReadBlock(1, mmpStatusBase, uint16(len(area)))},
		{true, mmpReadBlockReply(1, area)},
		{false, mmpWriteQuad(2, 0xfffff0d83000, 7)},
		{true, []byte{0, 0, 2 << 2, mmpWriteResp << 4, 0, 0, 0, 0, 0, 0, 0, 0}},
	})
	rows := testcorpus.TsharkDecode(t, path, "tcp.port==2001,optommp", "optommp", "tcp.srcport", "optommp.tcode", "optommp.destination_offset", "optommp.data_block_byte")
	if len(rows) != 4 {
		t.Fatalf("tshark read %d OptoMMP packets, want 4: %q", len(rows), rows)
	}
	var data []byte
	for _, r := range rows {
		if r[3] != "" && r[0] == "2001" {
			h := strings.NewReplacer(":", "", ",", "").Replace(r[3])
			data, _ = hex.DecodeString(h)
		}
	}
	if len(data) < 0xa0 {
		t.Fatalf("tshark shows %d reply bytes", len(data))
	}
	wantFW := strings.Join([]string{itoaB(data[0x1c]), itoaB(data[0x1d]), itoaB(data[0x1e]), itoaB(data[0x1f])}, ".")
	wantDesc := string(data[0x80:0x8b])
	out := runFile(t, path, NewOptoMMP())
	got := vndFacts(out)
	srv := mmpSrv.Addr().String()
	for k, w := range map[string][]string{
		srv + " firmware":               {wantFW},
		srv + " model":                  {wantDesc},
		srv + " " + AttrOptoMMPUnitType: {"7a05"},
		srv + " " + AttrOptoMMPWrite:    {"optommp:write scratchpad"},
		srv + " role":                   {RoleOptoMMPServer},
	} {
		if !slices.Equal(got[k], w) {
			t.Errorf("%s: got %q, want %q", k, got[k], w)
		}
	}
}

func itoaB(b byte) string { return strconv.Itoa(int(b)) }

// TestOptoMMPNotOther: other traffic on 2001 is not taken.
func TestOptoMMPNotOther(t *testing.T) {
	d := NewOptoMMP()
	long := append(mmpReadBlock(1, mmpStatusBase, 16), 0)
	lowOffset := mmpReadBlock(1, 0x1234, 16)
	for _, b := range [][]byte{[]byte("GET / HTTP/1.1\r\n\r\n"), long, lowOffset, mmpReadBlockReply(1, make([]byte, 8))} {
		if d.Probe(vndPkt(tcpFlow(mmpCli, mmpSrv), flow.FromClient, 0, b)) {
			t.Errorf("Probe(%x) = true", b)
		}
	}
}

func mmpSeeds() [][]byte {
	return [][]byte{
		mmpReadBlock(1, mmpStatusBase, 0xa0),
		mmpReadBlockReply(1, mmpStatusArea([4]byte{10, 2, 0, 3}, 1, "SNAP-PAC-S1")),
		mmpWriteQuad(2, 0xfffff0380000, 1),
		{0, 0, 3 << 2, mmpReadQuadReq << 4, 0, 0, 0xff, 0xff, 0xf0, 0x30, 0x00, 0x1c},
		{0, 0, 3 << 2, mmpReadQuadResp << 4, 0, 0, 0, 0, 0, 0, 0, 0, 10, 2, 0, 3},
	}
}

// TestOptoMMPQuadlet: a quadlet read of the firmware version.
func TestOptoMMPQuadlet(t *testing.T) {
	d := NewOptoMMP()
	f := vndUDPFlow(mmpCli, mmpSrv)
	var out collect
	s := mmpSeeds()
	d.Handle(vndPkt(f, flow.FromClient, 0, s[3]), &out)
	d.Handle(vndPkt(f, flow.FromServer, 0, s[4]), &out)
	if fw := vndFacts(out)[mmpSrv.Addr().String()+" firmware"]; !slices.Equal(fw, []string{"10.2.0.3"}) {
		t.Errorf("firmware %q", fw)
	}
}

// TestOptoMMPTruncated offers every prefix of every seed.
func TestOptoMMPTruncated(t *testing.T) {
	for _, s := range mmpSeeds() {
		for n := 0; n <= len(s); n++ {
			d := NewOptoMMP()
			f := tcpFlow(mmpCli, mmpSrv)
			d.Handle(vndPkt(f, flow.FromClient, 0, mmpReadBlock(1, mmpStatusBase, 0xa0)), dissect.SinkFunc(func(dissect.Observation) {}))
			vndFuzz(t, d, f, s[:n], flow.FromServer, n)
		}
	}
}

// TestOptoMMPAllocs: steady polling allocates nothing.
func TestOptoMMPAllocs(t *testing.T) {
	d := NewOptoMMP()
	f := tcpFlow(mmpCli, mmpSrv)
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	s := mmpSeeds()
	pc, ps := vndPkt(f, flow.FromClient, 0, s[0]), vndPkt(f, flow.FromServer, 0, s[1])
	step := func() { d.Handle(pc, sink); d.Handle(ps, sink) }
	step()
	if n := testing.AllocsPerRun(1000, step); n != 0 {
		t.Errorf("%v allocations per exchange", n)
	}
}

// FuzzOptoMMP feeds arbitrary segments after a status read.
func FuzzOptoMMP(f *testing.F) {
	for _, s := range mmpSeeds() {
		f.Add(s, uint8(1))
	}
	f.Fuzz(func(t *testing.T, b []byte, mode uint8) {
		d := NewOptoMMP()
		fl := tcpFlow(mmpCli, mmpSrv)
		if mode&2 != 0 {
			fl = vndUDPFlow(mmpCli, mmpSrv)
		}
		d.Handle(vndPkt(fl, flow.FromClient, 0, mmpReadBlock(1, mmpStatusBase, 0xa0)), dissect.SinkFunc(func(dissect.Observation) {}))
		vndFuzz(t, d, fl, b, flow.Dir(mode&1), len(b))
	})
}

// BenchmarkOptoMMPHandle measures a status read and its reply.
func BenchmarkOptoMMPHandle(b *testing.B) {
	d := NewOptoMMP()
	f := tcpFlow(mmpCli, mmpSrv)
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	s := mmpSeeds()
	pc, ps := vndPkt(f, flow.FromClient, 0, s[0]), vndPkt(f, flow.FromServer, 0, s[1])
	b.ReportAllocs()
	for b.Loop() {
		d.Handle(pc, sink)
		d.Handle(ps, sink)
	}
}
