package ot

import (
	"encoding/binary"
	"slices"
	"testing"

	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
)

// SRTP ACK replies built after the DFRWS 2017 paper's Table 4 (mailbox
// type D4 at byte 31) with the PLC status word at bytes 54-55, little
// endian, as CISA's ICSNPP GE SRTP analyzer reads it; its bits are GE
// GFK-0529 Table 3-8's (4 PLC fault present, 5 I/O fault present, 6
// programmer attachment, 9 OEM protected, 12-15 PLC state).

// srtpAck returns an ACK reply (D4) with status word w.
func srtpAck(seq byte, w uint16) []byte {
	b := srtpMsg(3, seq, 0xd4, 0, 0, nil)
	binary.LittleEndian.PutUint16(b[srtpStatusWord:], w)
	return b
}

// TestSRTPStatusSpecBuilt: the PLC state of ACK replies is reported when
// its state or standing flags change, not for the since-last-read and
// sweep flags, and not from NACKs or ACKs with text.
func TestSRTPStatusSpecBuilt(t *testing.T) {
	withText := srtpMsg(3, 9, 0x94, 0, 0, make([]byte, 8))
	binary.LittleEndian.PutUint16(withText[srtpStatusWord:], 0x2000)
	nack := srtpMsg(3, 10, 0xd1, 5, 1, nil)
	binary.LittleEndian.PutUint16(nack[srtpStatusWord:], 0x2000)
	replies := [][]byte{
		srtpAck(1, 0x0000|1<<4),           // run, PLC fault present
		srtpAck(2, 0x0000|1<<4|1<<2|1<<0), // + since-last-read, oversweep: same report
		srtpAck(3, 0x0000|1<<4|1<<7|1<<8), // + switch positions: same report
		srtpAck(4, 0x3000|1<<6),           // stop, faulted, programmer attached
		withText,                          // not read
		nack,                              // not read
		srtpAck(5, 0x6000|1<<5|1<<9),      // stop, I/O enabled, I/O fault, OEM protected
		srtpAck(6, 0x9000),                // a state GFK-0529 does not name
	}
	d := NewSRTP()
	f := tcpFlow(srtpCli, srtpSrv)
	var out collect
	seq := [2]uint32{}
	for i, r := range replies {
		req := srtpMsg(2, byte(i+1), 0xc0, 0x00, 0, nil)
		d.Handle(vndPkt(f, flow.FromClient, seq[0], req), &out)
		seq[0] += uint32(len(req))
		d.Handle(vndPkt(f, flow.FromServer, seq[1], r), &out)
		seq[1] += uint32(len(r))
	}
	want := []string{
		"run, I/O enabled, PLC fault present",
		"stop, faulted, programmer attached",
		"stop, I/O enabled, I/O fault present, OEM protected",
		"state 9",
	}
	if got := vndFacts(out)["10.7.0.60 "+AttrSRTPPLCState]; !slices.Equal(got, want) {
		t.Errorf("PLC states %q, want %q", got, want)
	}
}

// TestSRTPStatusAllocs: polling a PLC whose state holds allocates nothing.
func TestSRTPStatusAllocs(t *testing.T) {
	d := NewSRTP()
	f := tcpFlow(srtpCli, srtpSrv)
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	req, ack := srtpMsg(2, 1, 0xc0, 0x00, 0, nil), srtpAck(1, 0x0000)
	pc, ps := vndPkt(f, flow.FromClient, 0, req), vndPkt(f, flow.FromServer, 0, ack)
	step := func() {
		d.Handle(pc, sink)
		pc.TCPSeq += uint32(len(req))
		d.Handle(ps, sink)
		ps.TCPSeq += uint32(len(ack))
	}
	step()
	if n := testing.AllocsPerRun(1000, step); n != 0 {
		t.Errorf("%v allocations per exchange", n)
	}
}
