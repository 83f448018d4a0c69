package ot

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"testing"

	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
)

// No public capture of PC Worx exists: these tests build the messages
// that Digital Bond's pcworx-info script sends and reads (request header
// 01, type, big-endian length; info reply 81 with NUL-terminated strings
// at 30, 66, 79, 91 and 152).

// pcworxMsg builds a request of type t with body.
func pcworxMsg(t byte, body ...byte) []byte {
	b := []byte{pcworxReq, t, 0, 0}
	b = append(b, body...)
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return b
}

// pcworxInfoReply builds the info reply of a controller.
func pcworxInfoReply(plcType, fw, date, tm, model string) []byte {
	b := make([]byte, 200)
	b[0], b[1] = pcworxResp, pcworxTypeInfo
	copy(b[pcworxOffType:], plcType)
	copy(b[pcworxOffFW:], fw)
	copy(b[pcworxOffFWDate:], date)
	copy(b[pcworxOffFWTime:], tm)
	copy(b[pcworxOffModel:], model)
	return b
}

var (
	pcwCli = netip.MustParseAddrPort("10.7.0.5:50600")
	pcwSrv = netip.MustParseAddrPort("10.7.0.50:1962")
)

func pcworxSession() [][2][]byte {
	return [][2][]byte{
		{pcworxMsg(0x01, []byte("\x00\x00\x00\x00\x78\x80\x00\x03\x00\x0cIBETH01N0_M\x00")...), append([]byte{0x81, 0x01, 0, 0x20}, make([]byte, 28)...)},
		{pcworxMsg(0x05, 0, 1, 0, 0, 0x78, 0x80, 0, 0x42, 0, 0, 0, 6, 0, 4, 2, 0x95, 0, 0), []byte{0x81, 0x05, 0, 8, 0, 0, 0, 0}},
		{pcworxMsg(0x06, 0, 2, 0, 0, 0, 0, 0, 0x42, 4, 0), pcworxInfoReply("ILC 330 ETH", "3.95T", "Mar  2 2012", "09:39:02", "2737193")},
	}
}

// TestPCWorxSpecBuilt reads an info exchange as pcworx-info makes it.
func TestPCWorxSpecBuilt(t *testing.T) {
	d := NewPCWorx()
	f := tcpFlow(pcwCli, pcwSrv)
	var out collect
	seq := [2]uint32{}
	for i, ex := range pcworxSession() {
		p := vndPkt(f, flow.FromClient, seq[0], ex[0])
		if i == 0 && !d.Probe(p) {
			t.Fatal("Probe rejected the session request")
		}
		d.Handle(p, &out)
		d.Handle(vndPkt(f, flow.FromServer, seq[1], ex[1]), &out)
		seq[0] += uint32(len(ex[0]))
		seq[1] += uint32(len(ex[1]))
	}
	got := vndFacts(out)
	for k, w := range map[string][]string{
		"10.7.0.50 model":                     {"ILC 330 ETH"},
		"10.7.0.50 firmware":                  {"3.95T"},
		"10.7.0.50 " + AttrPCWorxFirmwareDate: {"Mar  2 2012 09:39:02"},
		"10.7.0.50 " + AttrPCWorxOrderNumber:  {"2737193"},
		"10.7.0.50 class":                     {dissect.ClassPLC},
		"10.7.0.50 role":                      {RolePCWorxServer},
		"10.7.0.5 role":                       {RolePCWorxClient},
	} {
		if !slices.Equal(got[k], w) {
			t.Errorf("%s: got %q, want %q", k, got[k], w)
		}
	}
}

// TestPCWorxNotPCWorx: other traffic on 1962 (ProConOS, text) is not taken.
func TestPCWorxNotPCWorx(t *testing.T) {
	d := NewPCWorx()
	bad := pcworxMsg(0x06, 1, 2, 3)
	bad[3]++
	for _, b := range [][]byte{{0xcc, 0x01, 0x00, 0x0b, 0x40, 0x02, 0x00, 0x00, 0x47, 0xee}, []byte("GET / HTTP/1.0\r\n\r\n"), bad, pcworxMsg(0x30)} {
		if d.Probe(vndPkt(tcpFlow(pcwCli, pcwSrv), flow.FromClient, 0, b)) {
			t.Errorf("Probe(%x) = true", b)
		}
	}
	// An info reply without an info request is not read.
	var out collect
	f := tcpFlow(pcwCli, pcwSrv)
	d.Handle(vndPkt(f, flow.FromClient, 0, pcworxMsg(0x05, 0)), &out)
	d.Handle(vndPkt(f, flow.FromServer, 0, pcworxInfoReply("X", "1", "", "", "1")), &out)
	for _, o := range out {
		if o.Attr == dissect.AttrModel {
			t.Errorf("read a reply to another request: %+v", o)
		}
	}
}

// TestPCWorxTruncated offers every prefix of every message.
func TestPCWorxTruncated(t *testing.T) {
	for _, ex := range pcworxSession() {
		for _, s := range ex {
			for n := 0; n <= len(s); n++ {
				d := NewPCWorx()
				f := tcpFlow(pcwCli, pcwSrv)
				d.Handle(vndPkt(f, flow.FromClient, 0, pcworxMsg(0x06, 0)), dissect.SinkFunc(func(dissect.Observation) {}))
				vndFuzz(t, d, f, s[:n], flow.FromServer, n)
			}
		}
	}
}

// TestPCWorxAllocs: after the info reply, packets cost nothing.
func TestPCWorxAllocs(t *testing.T) {
	d := NewPCWorx()
	f := tcpFlow(pcwCli, pcwSrv)
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	ex := pcworxSession()[2]
	pc, ps := vndPkt(f, flow.FromClient, 0, ex[0]), vndPkt(f, flow.FromServer, 0, ex[1])
	step := func() { d.Handle(pc, sink); d.Handle(ps, sink) }
	step()
	if n := testing.AllocsPerRun(1000, step); n != 0 {
		t.Errorf("%v allocations per exchange", n)
	}
}

// FuzzPCWorx feeds arbitrary segments after an info request.
func FuzzPCWorx(f *testing.F) {
	for _, ex := range pcworxSession() {
		f.Add(ex[0], uint8(0))
		f.Add(ex[1], uint8(1))
	}
	f.Fuzz(func(t *testing.T, b []byte, mode uint8) {
		d := NewPCWorx()
		fl := tcpFlow(pcwCli, pcwSrv)
		d.Handle(vndPkt(fl, flow.FromClient, 0, pcworxMsg(0x06, 0)), dissect.SinkFunc(func(dissect.Observation) {}))
		vndFuzz(t, d, fl, b, flow.Dir(mode&1), len(b)/2)
	})
}

// BenchmarkPCWorxHandle measures an info exchange on a fresh flow.
func BenchmarkPCWorxHandle(b *testing.B) {
	d := NewPCWorx()
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	ex := pcworxSession()[2]
	f := tcpFlow(pcwCli, pcwSrv)
	pc, ps := vndPkt(f, flow.FromClient, 0, ex[0]), vndPkt(f, flow.FromServer, 0, ex[1])
	b.ReportAllocs()
	for b.Loop() {
		d.Handle(pc, sink)
		d.Handle(ps, sink)
	}
}
