// Package capture reads frames from pcap/pcapng files and live sniffing
// interfaces, decodes them down to L4 and counts what it sees.
//
// A Source hands out frames without copying: the Data slice of a Frame is
// valid only until the next call to Next on the same Source. The Decoder
// fills a caller-owned Packet whose slices point into that frame.
package capture

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// LinkType is a pcap link-layer header type (LINKTYPE_* of tcpdump.org).
type LinkType uint16

// Link types the decoder understands.
const (
	LinkNull      LinkType = 0   // BSD loopback, host-order family
	LinkEthernet  LinkType = 1   // IEEE 802.3 Ethernet
	LinkRaw       LinkType = 101 // raw IPv4 or IPv6, no link header
	LinkLoop      LinkType = 108 // OpenBSD loopback, network-order family
	LinkLinuxSLL  LinkType = 113 // Linux cooked capture v1
	LinkIPv4      LinkType = 228 // raw IPv4
	LinkIPv6      LinkType = 229 // raw IPv6
	LinkLinuxSLL2 LinkType = 276 // Linux cooked capture v2
)

// Frame is one captured frame.
type Frame struct {
	// Data is the captured bytes; valid until the next Next call.
	Data []byte
	// Time is when the frame was captured.
	Time time.Time
	// WireLen is the frame's length on the wire (may exceed len(Data)).
	WireLen int
	// LinkType says how Data begins.
	LinkType LinkType
	// Interface is the index of the sniffing interface (or file) in the
	// source's list.
	Interface int
}

// Source hands out frames one at a time. Next returns io.EOF at the end of a
// file, or when a live source has been closed.
type Source interface {
	Next() (Frame, error)
	// Stats returns the counters kept so far.
	Stats() Stats
	Close() error
}

// ErrIdle is returned by Next of a live source whose idle timeout is set
// (see IdleSource) when no frame arrived within it. It is not an end: the
// source stays open and the next Next waits again. A run loop uses it to do
// its periodic work (flow expiry, report flushes) on a quiet link.
var ErrIdle = errors.New("capture: no frame within the idle timeout")

// IdleSource is a live source whose Next can give up waiting: after
// SetIdleTimeout(d) with d > 0, Next returns ErrIdle when no frame came for
// d (the raw socket: between d/2 and d). Zero, the default, waits for a
// frame or Close. Set it from the goroutine that reads, or before reading.
type IdleSource interface {
	Source
	SetIdleTimeout(d time.Duration)
}

// Stats are the counters a source and the decoder keep.
type Stats struct {
	Frames       uint64 // frames handed out
	Bytes        uint64 // bytes on the wire of those frames
	KernelDrops  uint64 // frames the kernel dropped (ring full)
	Duplicates   uint64 // frames suppressed as SPAN duplicates
	DecodeErrors uint64 // frames the decoder could not read
	Fragments    uint64 // IP fragments seen
}

// Add adds o's counters to s.
func (s *Stats) Add(o Stats) {
	s.Frames += o.Frames
	s.Bytes += o.Bytes
	s.KernelDrops += o.KernelDrops
	s.Duplicates += o.Duplicates
	s.DecodeErrors += o.DecodeErrors
	s.Fragments += o.Fragments
}

// MAC is an Ethernet address. The zero MAC means "unknown".
type MAC [6]byte

// IsZero reports whether m is the zero (unknown) address.
func (m MAC) IsZero() bool { return m == MAC{} }

// IsBroadcast reports whether m is ff:ff:ff:ff:ff:ff.
func (m MAC) IsBroadcast() bool { return m == MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff} }

// IsMulticast reports whether the group bit is set (broadcast included).
func (m MAC) IsMulticast() bool { return m[0]&1 == 1 }

// IsLocal reports whether the locally-administered bit is set.
func (m MAC) IsLocal() bool { return m[0]&2 == 2 }

func (m MAC) String() string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

// Tunnel says how the frame reached us when a mirror encapsulated it.
type Tunnel uint8

// Encapsulations the decoder removes.
const (
	TunnelNone    Tunnel = iota
	TunnelGRE            // plain GRE carrying Ethernet (0x6558) or IP
	TunnelERSPAN2        // ERSPAN type II (GRE 0x88BE)
	TunnelERSPAN3        // ERSPAN type III (GRE 0x22EB)
)

// IP protocol numbers the decoder reads.
const (
	ProtoICMP   uint8 = 1
	ProtoTCP    uint8 = 6
	ProtoUDP    uint8 = 17
	ProtoGRE    uint8 = 47
	ProtoICMPv6 uint8 = 58
)

// TCP flag bits as in the TCP header.
const (
	TCPFin uint8 = 0x01
	TCPSyn uint8 = 0x02
	TCPRst uint8 = 0x04
	TCPPsh uint8 = 0x08
	TCPAck uint8 = 0x10
)

// Packet is a decoded frame: the innermost Ethernet, IP and L4 headers once
// mirror encapsulation has been removed. Slices point into the frame's data.
// A Packet is reused from frame to frame; Reset clears it.
type Packet struct {
	Time      time.Time
	Interface int
	WireLen   int // length on the wire of the whole (outer) frame

	Tunnel Tunnel

	HasEth    bool
	SrcMAC    MAC
	DstMAC    MAC
	VLANs     [2]uint16 // outer first; NumVLANs says how many are set
	NumVLANs  int
	EtherType uint16 // innermost EtherType (or derived from SLL/raw link)

	// IP fields; SrcIP is invalid (zero) when the frame carries no IP.
	SrcIP    netip.Addr
	DstIP    netip.Addr
	IPProto  uint8
	TTL      uint8 // TTL or IPv6 hop limit
	IPLen    int   // IP total length (header + payload)
	Fragment bool  // this is an IP fragment (first or later)
	IPID     uint16
	IPDF     bool // don't-fragment bit (IPv4)

	SrcPort, DstPort uint16
	TCPFlags         uint8
	TCPSeq, TCPAck   uint32
	TCPWindow        uint16
	TCPOptions       []byte // raw TCP options (for stack fingerprints)

	ICMPType, ICMPCode uint8
	// ICMPRest is bytes 4-7 of the ICMP header, big-endian: identifier
	// and sequence of an echo, the flags of a Neighbor Advertisement, the
	// hop limit, flags and router lifetime of a Router Advertisement.
	ICMPRest uint32

	// Payload is the L4 payload for TCP/UDP, the message after the ICMP
	// header for ICMP, or the bytes after the EtherType for non-IP frames
	// (ARP, LLDP, Profinet, EtherCAT, ...).
	Payload []byte
}

// Reset clears p for reuse without releasing anything.
func (p *Packet) Reset() { *p = Packet{} }

// HasIP reports whether p carries an IP header.
func (p *Packet) HasIP() bool { return p.SrcIP.IsValid() }
