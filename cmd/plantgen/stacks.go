package main

import (
	"encoding/binary"
	"net/netip"

	"github.com/gopacket/gopacket/layers"
)

// Stack is how a device's TCP/IP stack opens connections: the initial TTL,
// the SYN and SYN-ACK windows, and which TCP options it sends in which
// order (RFC 9293 MSS, RFC 7323 window scale and timestamps, RFC 2018
// SACK-permitted). Passive fingerprinting tells stacks apart by these.
type Stack struct {
	Name         string
	TTL          uint8
	Window       uint16 // in a SYN
	SynAckWindow uint16
	MSS          uint16
	WScale       uint8
	Layout       []layers.TCPOptionKind // option order; NOP pads
	DF           bool                   // IPv4 don't-fragment
	ZeroIDSynAck bool                   // IP ID 0 in SYN-ACKs (Linux)
}

// The stacks of the plant's devices, as those systems send them.
var (
	// Windows 10/11: 64240 (44 x MSS), scale 8, MSS,NOP,WS,NOP,NOP,SACK-permitted.
	StackWindows = Stack{Name: "Windows 10", TTL: 128, Window: 64240, SynAckWindow: 65535, MSS: 1460, WScale: 8,
		Layout: []layers.TCPOptionKind{layers.TCPOptionKindMSS, layers.TCPOptionKindNop, layers.TCPOptionKindWindowScale,
			layers.TCPOptionKindNop, layers.TCPOptionKindNop, layers.TCPOptionKindSACKPermitted}, DF: true}
	// A Windows host one router away: the same stack, one hop of TTL spent.
	StackWindowsRouted = func() Stack { s := StackWindows; s.TTL--; return s }()
	// Linux 4.x: 29200 (20 x MSS), scale 7, MSS,SACK-permitted,TS,NOP,WS; SYN-ACKs with IP ID 0.
	StackLinux = Stack{Name: "Linux 4", TTL: 64, Window: 29200, SynAckWindow: 14480, MSS: 1460, WScale: 7,
		Layout: []layers.TCPOptionKind{layers.TCPOptionKindMSS, layers.TCPOptionKindSACKPermitted, layers.TCPOptionKindTimestamps,
			layers.TCPOptionKindNop, layers.TCPOptionKindWindowScale}, DF: true, ZeroIDSynAck: true}
	// An embedded controller's stack: MSS only, 8 KiB window, no DF, as
	// PLC communication modules answer on 502 and 102.
	StackEmbedded = Stack{Name: "embedded", TTL: 64, Window: 8192, SynAckWindow: 8192, MSS: 1460,
		Layout: []layers.TCPOptionKind{layers.TCPOptionKindMSS}}
)

// deviceStacks names each plant device's stack; others open connections
// as Windows clients and answer as Linux servers.
var deviceStacks = map[netip.Addr]*Stack{
	hmi.IP:     &StackWindows,
	eng.IP:     &StackWindows,
	office1.IP: &StackWindowsRouted,
	office2.IP: &StackWindowsRouted,
	plc1.IP:    &StackEmbedded,
	plc2.IP:    &StackEmbedded,
	router.IP:  &StackLinux,
	swtch.IP:   &StackLinux,
}

func stackOf(ip netip.Addr, def *Stack) *Stack {
	if s := deviceStacks[ip]; s != nil {
		return s
	}
	return def
}

// options returns the stack's SYN (or SYN-ACK) options in its order.
func (s *Stack) options(tsval, tsecr uint32) []layers.TCPOption {
	var out []layers.TCPOption
	for _, k := range s.Layout {
		switch k {
		case layers.TCPOptionKindMSS:
			out = append(out, layers.TCPOption{OptionType: k, OptionLength: 4, OptionData: binary.BigEndian.AppendUint16(nil, s.MSS)})
		case layers.TCPOptionKindNop:
			out = append(out, layers.TCPOption{OptionType: k, OptionLength: 1})
		case layers.TCPOptionKindWindowScale:
			out = append(out, layers.TCPOption{OptionType: k, OptionLength: 3, OptionData: []byte{s.WScale}})
		case layers.TCPOptionKindSACKPermitted:
			out = append(out, layers.TCPOption{OptionType: k, OptionLength: 2})
		case layers.TCPOptionKindTimestamps:
			d := binary.BigEndian.AppendUint32(nil, tsval)
			out = append(out, layers.TCPOption{OptionType: k, OptionLength: 10, OptionData: binary.BigEndian.AppendUint32(d, tsecr)})
		}
	}
	return out
}
