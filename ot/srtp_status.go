package ot

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"

	"github.com/passivesensor/sensor/dissect"
)

// AttrSRTPPLCState is the state a GE PLC reports in the status word of its
// SRTP ACK replies: "run, I/O enabled", "stop, faulted", ..., followed by
// the fault, programmer and OEM protection flags that are set; emitted
// when it changes.
const AttrSRTPPLCState = "srtp.plc_state"

// The ACK reply (mailbox type D4) carries the PLC's status in its last
// bytes: DFRWS 2017 SRTP paper, Table 4 "ACK reply message structure", as
// CISA's ICSNPP GE SRTP analyzer reads it (analyzer/ge_srtp.spicy, type
// Reply): byte 42 status, 43 minor status, 44-49 return data, 50 control
// program number, 51 privilege level, 52-53 last sweep time, 54-55 the PLC
// status word (little endian), whose bits are those of GE's Series 90 SNP
// manual GFK-0529, Table 3-8 "Bits of the PLC Status Word": 0 oversweep,
// 1 constant sweep mode, 2 PLC fault entry since last read, 3 I/O fault
// entry since last read, 4 PLC fault entry present, 5 I/O fault entry
// present, 6 programmer attachment, 7 front panel enable switch, 8 front
// panel run switch, 9 OEM protected, 12-15 PLC state.
const (
	srtpStatusWord = 54
	// srtpStatusMask keeps the state and the standing flags; the
	// since-last-read flags, the sweep flags and the switch positions
	// change too often, or say too little, to be reported.
	srtpStatusMask = 0xf000 | 1<<4 | 1<<5 | 1<<6 | 1<<9
)

// srtpStates names the PLC states (bits 12-15; GFK-0529 Table 3-8, as the
// ICSNPP analyzer's PLC_State enumeration lists them).
var srtpStates = [...]string{
	"run, I/O enabled", "run, I/O disabled", "stop, I/O disabled", "stop, faulted",
	"halted", "suspended", "stop, I/O enabled",
}

// srtpPLCState renders the reported bits of a status word.
func srtpPLCState(w uint16) string {
	var sb strings.Builder
	if s := int(w >> 12); s < len(srtpStates) {
		sb.WriteString(srtpStates[s])
	} else {
		sb.WriteString("state " + strconv.Itoa(s))
	}
	for _, f := range [...]struct {
		bit  uint16
		name string
	}{{1 << 4, "PLC fault present"}, {1 << 5, "I/O fault present"}, {1 << 6, "programmer attached"}, {1 << 9, "OEM protected"}} {
		if w&f.bit != 0 {
			sb.WriteString(", ")
			sb.WriteString(f.name)
		}
	}
	return sb.String()
}

// status reads the status word of an ACK reply b (a whole 56-byte header
// at least) and emits the PLC state when it changed on the flow.
func (s *SRTP) status(p *dissect.Packet, st *srtpFlow, b []byte, out dissect.Sink) {
	w := binary.LittleEndian.Uint16(b[srtpStatusWord:]) & srtpStatusMask
	if st.status == uint32(w)+1 {
		return
	}
	st.status = uint32(w) + 1
	vndEmit(out, p, "srtp", p.Server(), AttrSRTPPLCState, srtpPLCState(w), netip.Addr{})
}
