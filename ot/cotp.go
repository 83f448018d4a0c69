package ot

import (
	"encoding/binary"
	"slices"

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
	cotpStreamMax = 8 << 10
	cotpFragMax   = 16 << 10
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

// cotpFirstData returns the user data of the first TPKT of a segment when
// it is a COTP DT, for probes. A DT that is not the last of its TSDU
// (EOT clear) still gives its first octets.
func cotpFirstData(b []byte) ([]byte, bool) {
	n, code, _, user, ok := cotpTPDU(b)
	if !ok || n == 0 || code != cotpDT {
		return nil, false
	}
	return user, true
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

// cotpPending holds the TSAPs of a connection request seen before any
// dissector claimed the flow; the claiming dissector reads them.
type cotpPending struct {
	calling, called []byte
}

// cotpRemember keeps the TSAPs of a CR (or CC) starting p's payload in
// p.Flow.State, when the state is free or already a *cotpPending.
func cotpRemember(p *dissect.Packet) {
	if p.Flow == nil {
		return
	}
	n, code, _, params, ok := cotpTPDU(p.Payload)
	if !ok || n == 0 || code != cotpCR && code != cotpCC {
		return
	}
	calling, called := cotpTSAP(params)
	switch st := p.Flow.State.(type) {
	case nil:
		p.Flow.State = &cotpPending{slices.Clone(calling), slices.Clone(called)}
	case *cotpPending:
		if code == cotpCR || st.called == nil {
			st.calling, st.called = slices.Clone(calling), slices.Clone(called)
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
