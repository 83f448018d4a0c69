// Package flow keeps a bounded, bidirectional table of the conversations
// seen on the wire: who started them, who answered, and how much went each
// way, with a slot for the state of the protocol dissector that reads them.
package flow

import (
	"net/netip"
	"time"

	"github.com/passivesensor/sensor/capture"
)

// Dir is the direction of a packet within its flow.
type Dir uint8

// Directions.
const (
	FromClient Dir = 0 // sent by the side that started the flow
	FromServer Dir = 1 // sent by the side that answered
)

// Flow is one bidirectional conversation, keyed by protocol and both
// endpoints. Client is the side that started it (sender of the SYN, or of
// the first packet when no handshake was seen, corrected by port heuristics).
type Flow struct {
	Proto     uint8 // capture.ProtoTCP, ProtoUDP, ...
	Client    netip.AddrPort
	Server    netip.AddrPort
	ClientMAC capture.MAC // source MAC of the client's packets (as seen)
	ServerMAC capture.MAC
	VLAN      uint16 // innermost VLAN of the first packet, 0 for none

	First, Last time.Time
	Packets     [2]uint64 // indexed by Dir
	Bytes       [2]uint64 // IP bytes, indexed by Dir

	// Answered is set once the server side has sent a packet (for TCP: a
	// SYN-ACK or data), i.e. the server port is open.
	Answered bool
	// SawSYN is set when the flow was seen from its TCP handshake.
	SawSYN bool

	// App is the dissector index that claimed the flow (see package
	// dissect); 0 while undecided, AppNone once no dissector wanted it.
	App int16
	// Tries counts payload packets offered to dissectors while undecided.
	Tries uint8
	// State is the claiming dissector's per-flow state.
	State any

	// Reported holds the counters already handed to a traffic report, so
	// that each interval reports only its own share.
	ReportedPackets [2]uint64
	ReportedBytes   [2]uint64
}

// AppNone marks a flow that no dissector claimed.
const AppNone int16 = -1
