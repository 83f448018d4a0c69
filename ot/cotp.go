package ot

import (
	"encoding/binary"
	"slices"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
)

// ISO transport over TCP (RFC 1006, "ISO-on-TCP"): TCP port 102 carries
// TPKT packets (version 3, reserved 0, length including the header), each
// holding one ISO 8073 COTP TPDU. S7comm, S7comm-plus and MMS (IEC 61850)
// share the port; their dissectors tell each other apart from the first
// octet of the COTP user data: 0x32 S7comm, 0x72 S7comm-plus, an ISO 8327
// session SPDU for MMS.

// ISOTSAPPort is the registered TCP port of ISO transport services on TCP.
const ISOTSAPPort = 102

// COTP TPDU codes (ISO 8073 §13.1, high nibble of the second octet).
const (
	cotpCR = 0xE0 // connection request
	cotpCC = 0xD0 // connection confirm
	cotpDR = 0x80 // disconnect request
	cotpDC = 0xC0 // disconnect confirm
	cotpDT = 0xF0 // data
	cotpED = 0x10 // expedited data
	cotpAK = 0x60 // data acknowledgement
	cotpEA = 0x20 // expedited data acknowledgement
	cotpRJ = 0x50 // reject
	cotpER = 0x70 // TPDU error
)

const (
	tpktHeaderLen = 4
	cotpStreamMax = 32 << 10 // a TPDU of the largest size (8192) and more in one segment
	cotpFragMax   = 32 << 10
)

// cotpTPDU checks the TPKT and COTP headers at the start of b and returns
// the TPKT length, the COTP code and the TPDU's user data (for CR and CC,
// the variable part: the parameters). ok is false when b does not start
// with a plausible TPKT; n is 0 when more bytes are needed.
func cotpTPDU(b []byte) (n int, code byte, hdr, user []byte, ok bool) {
	if len(b) < tpktHeaderLen {
		return 0, 0, nil, nil, len(b) == 0 || b[0] == 3 && (len(b) < 2 || b[1] == 0)
	}
	if b[0] != 3 || b[1] != 0 {
		return 0, 0, nil, nil, false
	}
	l := int(binary.BigEndian.Uint16(b[2:]))
	if l < tpktHeaderLen+3 {
		return 0, 0, nil, nil, false
	}
	if len(b) < tpktHeaderLen+2 {
		return 0, 0, nil, nil, true
	}
	li := int(b[4])
	code = b[5] & 0xF0
	if li < 2 || li > l-tpktHeaderLen-1 {
		return 0, 0, nil, nil, false
	}
	switch code {
	case cotpDT:
		if li != 2 {
			return 0, 0, nil, nil, false
		}
	case cotpCR, cotpCC:
		if li < 6 {
			return 0, 0, nil, nil, false
		}
	case cotpDR, cotpDC, cotpED, cotpAK, cotpEA, cotpRJ, cotpER:
	default:
		return 0, 0, nil, nil, false
	}
	if len(b) < l {
		return 0, code, nil, nil, true
	}
	t := b[tpktHeaderLen:l]
	hdr = t[:li+1]
	user = t[li+1:]
	if code == cotpCR || code == cotpCC {
		user = t[7 : li+1] // after LI, code, dst-ref, src-ref, class
	}
	return l, code, hdr, user, true
}

// cotpTSAP returns a CR or CC's calling (0xC1) and called (0xC2) TSAPs
// from its parameters (ISO 8073 §13.3.4).
func cotpTSAP(params []byte) (calling, called []byte) {
	for len(params) >= 2 {
		code, l := params[0], int(params[1])
		if l > len(params)-2 {
			return
		}
		switch code {
		case 0xC1:
			calling = params[2 : 2+l]
		case 0xC2:
			called = params[2 : 2+l]
		}
		params = params[2+l:]
	}
	return
}

// cotpPending is the state of an ISO-on-TCP flow not yet claimed: the
// TSAPs of its connection request, and a TPKT header sent in a segment of
// its own (some stacks send the 4 octets apart from the TPDU).
type cotpPending struct {
	calling, called []byte
	hdr             [2][4]byte
	hdrSeq          [2]uint32
	hasHdr          [2]bool
	forgiven        uint8
	lastKey         uint64 // packet last forgiven: several probes share it
	buf             []byte
}

// cotpMaxForgiven bounds the set-up packets that do not count as tries.
const cotpMaxForgiven = 8

func cotpPendingOf(p *dissect.Packet) *cotpPending {
	switch st := p.Flow.State.(type) {
	case nil:
		pend := &cotpPending{}
		p.Flow.State = pend
		return pend
	case *cotpPending:
		return st
	}
	return nil
}

// forgive keeps a connection set-up packet (CR, CC, a lone TPKT header)
// from using up one of the flow's tries: the first data TPDU, which tells
// S7comm from S7comm-plus from MMS, may come after six such packets.
func (c *cotpPending) forgive(p *dissect.Packet) {
	key := uint64(p.TCPSeq)<<8 | uint64(p.Dir&1)<<1 | 1
	if c.lastKey == key {
		return
	}
	c.lastKey = key
	if c.forgiven < cotpMaxForgiven && p.Flow.Tries > 0 {
		c.forgiven++
		p.Flow.Tries--
	}
}

// cotpProbeData returns the user data of the COTP DT starting p's payload
// (joined to a TPKT header sent alone just before), for probes. A CR or CC
// has its TSAPs remembered, and a lone TPKT header is kept, in
// p.Flow.State (a *cotpPending, when the state is free or already one: a
// dissector claiming the flow must overwrite a State it does not know).
func cotpProbeData(p *dissect.Packet) ([]byte, bool) {
	if p.Flow == nil || p.Flow.Proto != capture.ProtoTCP {
		return nil, false
	}
	b := p.Payload
	d := p.Dir & 1
	if len(b) == tpktHeaderLen && b[0] == 3 && b[1] == 0 && binary.BigEndian.Uint16(b[2:]) >= tpktHeaderLen+3 {
		if pend := cotpPendingOf(p); pend != nil {
			copy(pend.hdr[d][:], b)
			pend.hdrSeq[d] = p.TCPSeq
			pend.hasHdr[d] = true
			pend.forgive(p)
		}
		return nil, false
	}
	pend, _ := p.Flow.State.(*cotpPending)
	if pend != nil && pend.hasHdr[d] {
		if pend.hdrSeq[d]+tpktHeaderLen == p.TCPSeq && len(b) > 0 && b[0] != 3 {
			pend.buf = append(append(pend.buf[:0], pend.hdr[d][:]...), b...)
			b = pend.buf
		} else {
			pend.hasHdr[d] = false
		}
	}
	n, code, _, user, ok := cotpTPDU(b)
	if !ok || n == 0 {
		return nil, false
	}
	switch code {
	case cotpDT:
		return user, true
	case cotpCR, cotpCC:
		if pend == nil {
			pend = cotpPendingOf(p)
		}
		if pend != nil {
			calling, called := cotpTSAP(user)
			if code == cotpCR || pend.called == nil {
				pend.calling, pend.called = slices.Clone(calling), slices.Clone(called)
			}
			pend.forgive(p)
		}
	}
	return nil, false
}

// cotpResume starts a claimed flow's streams with a TPKT header a probe
// kept (the packet being handled holds the rest of its TPDU).
func cotpResume(pend *cotpPending, c *[2]cotpDir) {
	if pend == nil {
		return
	}
	for d := range 2 {
		if pend.hasHdr[d] {
			c[d].push(pend.hdrSeq[d], pend.hdr[d][:])
			c[d].off = 0
		}
	}
}

// cotpConn is the part of an ISO-on-TCP dissector's flow state that puts
// both directions of the connection back in order. The state embeds it.
type cotpConn struct{ dirs [2]cotpDir }

func (c *cotpConn) cotp() *cotpConn { return c }

// cotpHandle reads a claimed flow's TCP packet p for a dissector of
// ISO-on-TCP whose flow state is a *T (embedding a cotpConn). It makes the
// state when the flow has none yet, carrying on from a connection request
// Probe remembered, puts p's bytes back in order in their direction, and
// hands on each whole TPDU: the called TSAP of a connection request to tsap
// (when not nil), the user data of a data TPDU (a whole TSDU) to data.
func cotpHandle[T any, PT interface {
	*T
	cotp() *cotpConn
}](p *dissect.Packet, out dissect.Sink, tsap, data func(p *dissect.Packet, st PT, b []byte, out dissect.Sink)) {
	if p.Flow == nil || p.Flow.Proto != capture.ProtoTCP || len(p.Payload) == 0 {
		return
	}
	st, ok := p.Flow.State.(PT)
	if !ok {
		st = new(T)
		pend, _ := p.Flow.State.(*cotpPending)
		p.Flow.State = st
		if pend != nil && tsap != nil {
			tsap(p, st, pend.called, out)
		}
		cotpResume(pend, &st.cotp().dirs)
	}
	c := &st.cotp().dirs[p.Dir&1]
	c.push(p.TCPSeq, p.Payload)
	for {
		code, _, user, ok := c.next()
		if !ok {
			return
		}
		switch {
		case code == cotpCR && tsap != nil:
			_, called := cotpTSAP(user)
			tsap(p, st, called, out)
		case code == cotpDT:
			data(p, st, user, out)
		}
	}
}

// cotpDir puts one direction of an ISO-on-TCP flow back in order and
// hands out its TPDUs, with the user data of a TSDU sent over several DT
// TPDUs reassembled (bounded).
type cotpDir struct {
	s        dissect.Stream
	off      int
	frag     []byte
	fragDone bool
	fragBad  bool
}

// push adds a segment; then call next until it reports false.
func (c *cotpDir) push(seq uint32, payload []byte) {
	if c.s.Max == 0 {
		c.s.Max = cotpStreamMax
	}
	if c.s.Push(seq, payload) {
		c.frag = c.frag[:0]
		c.fragBad = false
	}
	c.off = 0
}

// next returns the next whole TPDU: its code, its header and its user
// data (for DT, the whole reassembled TSDU once its last DT is read).
func (c *cotpDir) next() (code byte, hdr, user []byte, ok bool) {
	if c.fragDone {
		c.fragDone = false
		if cap(c.frag) > 2*cotpStreamMax {
			c.frag = nil
		} else {
			c.frag = c.frag[:0]
		}
	}
	for {
		b := c.s.Bytes()[c.off:]
		if len(b) == 0 {
			c.end()
			return 0, nil, nil, false
		}
		n, code, hdr, user, valid := cotpTPDU(b)
		if !valid {
			// Lost the boundaries: find the next plausible TPKT.
			c.fragBad = len(c.frag) > 0
			c.off++
			for c.off < len(c.s.Bytes()) && c.s.Bytes()[c.off] != 3 {
				c.off++
			}
			continue
		}
		if n == 0 {
			c.end()
			return 0, nil, nil, false
		}
		c.off += n
		if code != cotpDT {
			return code, hdr, user, true
		}
		eot := hdr[2]&0x80 != 0
		if !eot || len(c.frag) > 0 || c.fragBad {
			if len(c.frag)+len(user) > cotpFragMax {
				c.fragBad = true
			}
			if !c.fragBad {
				c.frag = append(c.frag, user...)
			}
			if !eot {
				continue
			}
			if c.fragBad {
				c.fragBad = false
				c.frag = c.frag[:0]
				continue
			}
			c.fragDone = true
			return code, hdr, c.frag, true
		}
		return code, hdr, user, true
	}
}

// end drops the TPDUs read.
func (c *cotpDir) end() {
	c.s.Consume(c.off)
	c.off = 0
}
