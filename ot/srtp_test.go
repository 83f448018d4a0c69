package ot

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"testing"

	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
)

// No public SRTP capture is in the corpus: these tests build messages
// after the DFRWS 2017 SRTP paper and the public GE SRTP Wireshark plug-in
// (56-byte header: type at 0, text length at 4 LE, sequence at 30, mailbox
// type at 31, service request code at 42).

// srtpMsg builds a message of type typ and mailbox type mbox, with the
// service code (or NACK major status) at 42 and minor at 43.
func srtpMsg(typ, seq, mbox, code, minor byte, text []byte) []byte {
	b := make([]byte, srtpHeaderLen, srtpHeaderLen+len(text))
	b[0] = typ
	binary.LittleEndian.PutUint16(b[4:], uint16(len(text)))
	b[2], b[30], b[31] = seq, seq, mbox
	b[32], b[36], b[40], b[41] = 0x10, 0x10, 1, 1
	b[42], b[43] = code, minor
	return append(b, text...)
}

var (
	srtpCli = netip.MustParseAddrPort("10.7.0.5:50800")
	srtpSrv = netip.MustParseAddrPort("10.7.0.60:18245")
)

func srtpSession() [][2][]byte {
	return [][2][]byte{
		{make([]byte, srtpHeaderLen), append([]byte{1}, make([]byte, srtpHeaderLen-1)...)},
		{srtpMsg(2, 1, 0xc0, 0x43, 0, nil), srtpMsg(3, 1, 0x94, 0, 0, make([]byte, 40))},
		{srtpMsg(2, 2, 0xc0, 0x04, 0x08, nil), srtpMsg(3, 2, 0xd4, 0, 0, nil)},
		{srtpMsg(2, 3, 0x80, 0x07, 0x08, []byte{1, 2, 3, 4}), srtpMsg(3, 3, 0xd4, 0, 0, nil)},
		{srtpMsg(2, 4, 0xc0, 0x23, 0, nil), srtpMsg(3, 4, 0xd1, 5, 1, nil)},
		{srtpMsg(2, 5, 0xc0, 0x40, 0, nil), srtpMsg(3, 5, 0xd4, 0, 0, nil)},
	}
}

// TestSRTPSpecBuilt: services, flags and a NACK, with messages split.
func TestSRTPSpecBuilt(t *testing.T) {
	d := NewSRTP()
	f := tcpFlow(srtpCli, srtpSrv)
	var out collect
	seq := [2]uint32{}
	for i, ex := range srtpSession() {
		for dir, b := range ex {
			if i == 0 && dir == 0 && !d.Probe(vndPkt(f, flow.FromClient, 0, b)) {
				t.Fatal("Probe rejected the connection request")
			}
			d.Handle(vndPkt(f, flow.Dir(dir), seq[dir], b[:30]), &out)
			d.Handle(vndPkt(f, flow.Dir(dir), seq[dir]+30, b[30:]), &out)
			seq[dir] += uint32(len(b))
		}
	}
	got := vndFacts(out)
	srv := "10.7.0.60"
	for k, w := range map[string][]string{
		srv + " service":            {"srtp:0x43 return-controller-type-and-id", "srtp:0x04 read-system-memory", "srtp:0x07 write-system-memory", "srtp:0x23 set-plc-state", "srtp:0x40 program-load"},
		srv + " " + AttrSRTPWrite:   {"srtp:0x07 write-system-memory"},
		srv + " " + AttrSRTPControl: {"srtp:0x23 set-plc-state"},
		srv + " " + AttrSRTPProgram: {"srtp:0x40 program-load"},
		srv + " " + AttrSRTPError:   {"srtp nack 5/1"},
		srv + " role":               {RoleSRTPServer},
		"10.7.0.5 role":             {RoleSRTPClient},
	} {
		if !slices.Equal(got[k], w) {
			t.Errorf("%s: got %q, want %q", k, got[k], w)
		}
	}
}

// TestSRTPNotSRTP: other traffic on 18245 is not taken.
func TestSRTPNotSRTP(t *testing.T) {
	d := NewSRTP()
	badMbox := srtpMsg(2, 1, 0x55, 0x04, 0, nil)
	badLen := srtpMsg(2, 1, 0xc0, 0x04, 0, nil)
	badLen[5] = 0xff
	conn := make([]byte, srtpHeaderLen)
	conn[4] = 1
	for _, b := range [][]byte{[]byte("GET / HTTP/1.1\r\n\r\n"), badMbox, badLen, conn, srtpMsg(9, 1, 0xc0, 0, 0, nil)} {
		if d.Probe(vndPkt(tcpFlow(srtpCli, srtpSrv), flow.FromClient, 0, b)) {
			t.Errorf("Probe(%x) = true", b)
		}
	}
}

// TestSRTPTruncated offers every prefix of every message.
func TestSRTPTruncated(t *testing.T) {
	for _, ex := range srtpSession() {
		for _, s := range ex {
			for n := 0; n <= len(s); n++ {
				vndFuzz(t, NewSRTP(), tcpFlow(srtpCli, srtpSrv), s[:n], flow.FromClient, n/2)
			}
		}
	}
}

// TestSRTPAllocs: steady polling allocates nothing.
func TestSRTPAllocs(t *testing.T) {
	d := NewSRTP()
	f := tcpFlow(srtpCli, srtpSrv)
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	ex := srtpSession()[2]
	pc, ps := vndPkt(f, flow.FromClient, 0, ex[0]), vndPkt(f, flow.FromServer, 0, ex[1])
	step := func() {
		d.Handle(pc, sink)
		pc.TCPSeq += uint32(len(ex[0]))
		d.Handle(ps, sink)
		ps.TCPSeq += uint32(len(ex[1]))
	}
	step()
	if n := testing.AllocsPerRun(1000, step); n != 0 {
		t.Errorf("%v allocations per exchange", n)
	}
}

// FuzzSRTP feeds arbitrary segments.
func FuzzSRTP(f *testing.F) {
	for _, ex := range srtpSession() {
		f.Add(ex[0], uint8(0), uint8(20))
		f.Add(ex[1], uint8(1), uint8(40))
	}
	f.Fuzz(func(t *testing.T, b []byte, mode, cut uint8) {
		vndFuzz(t, NewSRTP(), tcpFlow(srtpCli, srtpSrv), b, flow.Dir(mode&1), int(cut))
	})
}

// BenchmarkSRTPHandle measures a memory read and its ACK.
func BenchmarkSRTPHandle(b *testing.B) {
	d := NewSRTP()
	f := tcpFlow(srtpCli, srtpSrv)
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	ex := srtpSession()[2]
	pc, ps := vndPkt(f, flow.FromClient, 0, ex[0]), vndPkt(f, flow.FromServer, 0, ex[1])
	b.ReportAllocs()
	for b.Loop() {
		d.Handle(pc, sink)
		pc.TCPSeq += uint32(len(ex[0]))
		d.Handle(ps, sink)
		ps.TCPSeq += uint32(len(ex[1]))
	}
}
