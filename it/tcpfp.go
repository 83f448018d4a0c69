package it

import (
	"hash/maphash"
	"strconv"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
)

func init() { register(200, "tcpfp", func() dissect.Dissector { return NewTCPFP() }) }

// Attributes the TCP stack fingerprinter emits.
const (
	// AttrTCPSyn is the p0f v3 raw signature of a client's SYN
	// ("ver:ttl+dist:olen:mss:wsize,scale:olayout:quirks:pclass", the
	// first number being the TTL as seen), about the client.
	AttrTCPSyn = "tcp.syn"
	// AttrTCPSynAck is the same for a server's SYN-ACK, about the server.
	AttrTCPSynAck = "tcp.synack"
	// AttrTCPTSClock is emitted about a client whose SYNs toward one peer
	// carry TCP timestamps (RFC 7323) that no single clock explains: the
	// value jumps back, or forward faster than any stack's clock runs.
	// Several devices behind one address (NAT) do this.
	AttrTCPTSClock = "tcp.ts_clock"
)

// Bounds of the fingerprinter's state.
const (
	DefaultTCPFPSeen   = 8192 // (device, signature) pairs remembered
	DefaultTCPFPClocks = 4096 // (client, server) timestamp clocks followed
)

// p0f's limits (p0f config.h): a TTL this far below its initial value is
// no longer a guess of distance; clocks run at most MAX_TSCALE Hz;
// timestamps may go slightly back within TSTAMP_GRACE.
const (
	tcpfpMaxDist    = 35
	tcpfpMaxTSHz    = 1500
	tcpfpGraceNanos = 100e6
	tcpfpMaxTSNanos = 24 * 3600e9
)

// TCPFP computes TCP/IP stack signatures of SYN and SYN-ACK packets in
// p0f v3's format, from the IP header (version, TTL, DF, IP ID, options
// length) and the TCP header (MSS, window, window scale, option layout,
// quirks). It never claims a flow: the registry hands it the handshake
// of every TCP flow (dissect.Wants.TCPHandshake). Each signature is
// emitted once per device; which OS it means is the inventory's matter.
//
// What the decoder does not keep (IP ToS/ECN bits, the IPv4 must-be-zero
// bit, the IPv6 flow label, the urgent pointer) is not in the quirks: the
// ECN quirk comes from the TCP ECE/CWR flags alone.
type TCPFP struct {
	// MaxSeen and MaxClocks bound the state; defaults when zero.
	MaxSeen, MaxClocks int

	seed   maphash.Seed
	raw    map[uint64]struct{} // headers already fingerprinted (fast path)
	seen   map[uint64]struct{} // (device, signature) already emitted
	clocks map[uint64]tsClock
}

// tsClock is the last SYN timestamp seen from a client toward a server.
type tsClock struct {
	tsval    uint32
	at       int64 // packet time, Unix nanoseconds
	reported bool
}

// NewTCPFP returns a fingerprinter with default bounds.
func NewTCPFP() *TCPFP {
	return &TCPFP{seed: maphash.MakeSeed(), raw: map[uint64]struct{}{}, seen: map[uint64]struct{}{}, clocks: map[uint64]tsClock{}}
}

// Name implements dissect.Dissector.
func (*TCPFP) Name() string { return "tcpfp" }

// Wants implements dissect.Dissector.
func (*TCPFP) Wants() dissect.Wants { return dissect.Wants{TCPHandshake: true} }

// Probe implements dissect.Dissector: the fingerprinter claims no flow.
func (*TCPFP) Probe(*dissect.Packet) bool { return false }

// tcpSig is a decoded handshake packet.
type tcpSig struct {
	buf    [192]byte
	n      int
	mss    int
	ts1    uint32
	hasTS  bool
	tsAt   int      // offset of the timestamp option in the options
	layout [40]byte // option kinds, in order
	nopt   int
	eolPad int
	quirks uint32
	wscale int
}

// Quirk bits, in p0f's printing order.
const (
	qDF uint32 = 1 << iota
	qNZID
	qZeroID
	qECN
	qZeroSeq
	qNZAck
	qZeroAck
	qURG
	qPush
	qZeroTS1
	qNZTS2
	qOptEOLNZ
	qExWS
	qOptBad
)

var quirkNames = [...]string{"df", "id+", "id-", "ecn", "seq-", "ack+", "ack-", "urgf+", "pushf+", "ts1-", "ts2+", "opt+", "exws", "bad"}

const (
	tcpECE = 0x40
	tcpCWR = 0x80
	tcpURG = 0x20
)

// Handle implements dissect.Dissector. It reads SYN and SYN-ACK packets.
func (d *TCPFP) Handle(p *dissect.Packet, out dissect.Sink) {
	if !p.HasIP() || p.IPProto != capture.ProtoTCP || p.TCPFlags&capture.TCPSyn == 0 || p.TCPFlags&capture.TCPRst != 0 {
		return
	}
	synack := p.TCPFlags&capture.TCPAck != 0
	var s tcpSig
	s.parseOptions(p.TCPOptions, !synack)
	s.quirks |= headerQuirks(p.Packet)
	if !synack && s.hasTS && p.Flow != nil && p.Dir == flow.FromClient {
		d.clock(p, s.ts1, out)
	}
	// Fast path: the header fields a signature is made of (timestamps
	// aside, which only their quirks enter) were seen from this device.
	var k [80]byte
	a := p.SrcIP.As16()
	n := copy(k[:], a[:])
	k[n], k[n+1], k[n+2], k[n+3], k[n+4] = p.TTL, byte(p.TCPWindow>>8), byte(p.TCPWindow), byte(s.quirks), byte(s.quirks>>8)
	k[n+5], k[n+6], k[n+7] = byte(s.quirks>>16), byte(p.IPLen-len(p.Payload)-len(p.TCPOptions)), boolByte(len(p.Payload) > 0)
	n += 8
	n += copy(k[n:], p.TCPOptions)
	if s.hasTS && s.tsAt+10 <= len(p.TCPOptions) {
		clear(k[n-len(p.TCPOptions)+s.tsAt+2 : n-len(p.TCPOptions)+s.tsAt+10])
	}
	rk := maphash.Bytes(d.seed, k[:n])
	if synack {
		rk = ^rk
	}
	if _, ok := d.raw[rk]; ok {
		return
	}
	max := d.MaxSeen
	if max <= 0 {
		max = DefaultTCPFPSeen
	}
	if len(d.raw) >= max {
		clear(d.raw)
	}
	d.raw[rk] = struct{}{}

	s.format(p.Packet, synack)
	attr := AttrTCPSyn
	if synack {
		attr = AttrTCPSynAck
	}
	key := maphash.Bytes(d.seed, a[:]) ^ maphash.Bytes(d.seed, s.buf[:s.n])
	if synack {
		key = ^key
	}
	if _, ok := d.seen[key]; ok {
		return
	}
	if len(d.seen) >= max {
		clear(d.seen)
	}
	d.seen[key] = struct{}{}
	out.Observe(dissect.Observation{Time: p.Time, IP: p.SrcIP, Attr: attr, Value: string(s.buf[:s.n]), Protocol: "tcpfp"})
}

// clock follows the client's timestamp clock toward this server (stacks
// that randomise the clock's offset do it per address pair) and reports,
// once per pair, a progression no single clock makes.
func (d *TCPFP) clock(p *dissect.Packet, ts uint32, out dissect.Sink) {
	src, dst := p.SrcIP.As16(), p.DstIP.As16()
	key := maphash.Bytes(d.seed, src[:]) ^ (maphash.Bytes(d.seed, dst[:]) * 31)
	now := p.Time.UnixNano()
	c, ok := d.clocks[key]
	if !ok {
		max := d.MaxClocks
		if max <= 0 {
			max = DefaultTCPFPClocks
		}
		if len(d.clocks) >= max {
			clear(d.clocks)
		}
		d.clocks[key] = tsClock{tsval: ts, at: now}
		return
	}
	dt := now - c.at
	if dt < 0 || dt > tcpfpMaxTSNanos {
		d.clocks[key] = tsClock{tsval: ts, at: now, reported: c.reported}
		return
	}
	use := dt
	if use < tcpfpGraceNanos {
		use = tcpfpGraceNanos
	}
	maxTicks := uint64(use) * tcpfpMaxTSHz / 1e9
	diff := ts - c.tsval // ticks forward, modulo 2^32
	bad := uint64(diff) > maxTicks && (dt >= tcpfpGraceNanos || uint64(^diff) > maxTicks)
	d.clocks[key] = tsClock{tsval: ts, at: now, reported: c.reported || bad}
	if bad && !c.reported {
		out.Observe(dissect.Observation{Time: p.Time, IP: p.SrcIP, Attr: AttrTCPTSClock,
			Value: "disagree toward " + p.DstIP.String(), Protocol: "tcpfp", Peer: p.DstIP})
	}
}

// headerQuirks returns the quirks of the IP and TCP headers (p0f's
// process.c rules).
func headerQuirks(p *capture.Packet) uint32 {
	var q uint32
	if p.SrcIP.Is4() {
		if p.IPDF {
			q |= qDF
			if p.IPID != 0 {
				q |= qNZID
			}
		} else if p.IPID == 0 {
			q |= qZeroID
		}
	}
	f := p.TCPFlags
	if f&(tcpECE|tcpCWR) != 0 {
		q |= qECN
	}
	if p.TCPSeq == 0 {
		q |= qZeroSeq
	}
	if f&capture.TCPAck != 0 {
		if p.TCPAck == 0 {
			q |= qZeroAck
		}
	} else if p.TCPAck&1 != 0 && f&capture.TCPRst == 0 {
		// p0f v3 tests "ack & !RST", the acknowledgment's low bit only;
		// signatures follow it so that they read the same as p0f's.
		q |= qNZAck
	}
	if f&tcpURG != 0 {
		q |= qURG
	}
	if f&capture.TCPPsh != 0 {
		q |= qPush
	}
	return q
}

// parseOptions walks the TCP options (RFC 9293 section 3.2; RFC 7323 for
// window scale and timestamps; RFC 2018 for SACK), bounded by o.
func (s *tcpSig) parseOptions(o []byte, syn bool) {
	for i := 0; i < len(o); {
		kind := o[i]
		if s.nopt < len(s.layout) {
			s.layout[s.nopt] = kind
			s.nopt++
		}
		switch kind {
		case 0: // end of option list: what follows is padding
			s.eolPad = len(o) - i - 1
			for _, b := range o[i+1:] {
				if b != 0 {
					s.quirks |= qOptEOLNZ
					break
				}
			}
			return
		case 1: // no-operation
			i++
			continue
		}
		if i+1 >= len(o) {
			s.quirks |= qOptBad
			return
		}
		l := int(o[i+1])
		if l < 2 || i+l > len(o) {
			s.quirks |= qOptBad
			return
		}
		v := o[i+2 : i+l]
		switch kind {
		case 2:
			if len(v) != 2 {
				s.quirks |= qOptBad
			} else {
				s.mss = int(v[0])<<8 | int(v[1])
			}
		case 3:
			if len(v) != 1 {
				s.quirks |= qOptBad
			} else {
				s.wscale = int(v[0])
				if s.wscale > 14 {
					s.quirks |= qExWS
				}
			}
		case 4:
			if len(v) != 0 {
				s.quirks |= qOptBad
			}
		case 8:
			if len(v) != 8 {
				s.quirks |= qOptBad
				break
			}
			s.hasTS, s.tsAt = true, i
			s.ts1 = uint32(v[0])<<24 | uint32(v[1])<<16 | uint32(v[2])<<8 | uint32(v[3])
			ts2 := uint32(v[4])<<24 | uint32(v[5])<<16 | uint32(v[6])<<8 | uint32(v[7])
			if s.ts1 == 0 {
				s.quirks |= qZeroTS1
			}
			if syn && ts2 != 0 {
				s.quirks |= qNZTS2
			}
		}
		i += l
	}
}

// guessDist is p0f's distance from the TTL seen to the next initial TTL
// above it.
func guessDist(ttl uint8) int {
	switch {
	case ttl <= 32:
		return 32 - int(ttl)
	case ttl <= 64:
		return 64 - int(ttl)
	case ttl <= 128:
		return 128 - int(ttl)
	}
	return 255 - int(ttl)
}

// winMulti is p0f's reading of a window as a multiple of the MSS or the
// MTU: the multiplier, whether it is of the MTU, or -1.
func winMulti(win, mss int, ipv6, ts bool, hdr int) (int, bool) {
	if win == 0 || mss < 100 {
		return -1, false
	}
	try := func(div int) bool { return div > 0 && win%div == 0 }
	switch {
	case try(mss):
		return win / mss, false
	case ts && try(mss-12):
		return win / (mss - 12), false
	case try(1500 - 40):
		return win / 1460, false
	case try(1500 - 52):
		return win / 1448, false
	case ipv6 && try(1500-60):
		return win / 1440, false
	case ipv6 && try(1500-72):
		return win / 1428, false
	case try(mss + 40):
		return win / (mss + 40), true
	case try(mss + hdr):
		return win / (mss + hdr), true
	case ipv6 && try(mss+60):
		return win / (mss + 60), true
	case try(1500):
		return win / 1500, true
	}
	return -1, false
}

func (s *tcpSig) add(b []byte) { s.n += copy(s.buf[s.n:], b) }

func (s *tcpSig) addStr(str string) { s.n += copy(s.buf[s.n:], str) }

func (s *tcpSig) addUint(v int) {
	var tmp [20]byte
	s.add(strconv.AppendUint(tmp[:0], uint64(v), 10))
}

// format writes the p0f raw signature into s.buf.
func (s *tcpSig) format(p *capture.Packet, synack bool) {
	v6 := !p.SrcIP.Is4()
	if v6 {
		s.addStr("6:")
	} else {
		s.addStr("4:")
	}
	s.addUint(int(p.TTL))
	if d := guessDist(p.TTL); d > tcpfpMaxDist {
		s.addStr("+?:")
	} else {
		s.addStr("+")
		s.addUint(d)
		s.addStr(":")
	}
	tcpHdr := 20 + len(p.TCPOptions)
	olen := 0
	ipHdr := 40
	if !v6 {
		olen = p.IPLen - 20 - tcpHdr - len(p.Payload)
		if olen < 0 || olen > 40 {
			olen = 0
		}
		ipHdr = 20 + olen
	}
	s.addUint(olen)
	s.addStr(":")
	s.addUint(s.mss)
	s.addStr(":")
	win := int(p.TCPWindow)
	if m, mtu := winMulti(win, s.mss, v6, s.hasTS, ipHdr+tcpHdr); m > 0 {
		if mtu {
			s.addStr("mtu*")
		} else {
			s.addStr("mss*")
		}
		s.addUint(m)
	} else {
		s.addUint(win)
	}
	s.addStr(",")
	s.addUint(s.wscale)
	s.addStr(":")
	for i, k := range s.layout[:s.nopt] {
		if i > 0 {
			s.addStr(",")
		}
		switch k {
		case 0:
			s.addStr("eol+")
			s.addUint(s.eolPad)
		case 1:
			s.addStr("nop")
		case 2:
			s.addStr("mss")
		case 3:
			s.addStr("ws")
		case 4:
			s.addStr("sok")
		case 5:
			s.addStr("sack")
		case 8:
			s.addStr("ts")
		default:
			s.addStr("?")
			s.addUint(int(k))
		}
	}
	s.addStr(":")
	first := true
	for i, name := range quirkNames {
		if s.quirks&(1<<i) == 0 {
			continue
		}
		if !first {
			s.addStr(",")
		}
		s.addStr(name)
		first = false
	}
	if len(p.Payload) > 0 {
		s.addStr(":+")
	} else {
		s.addStr(":0")
	}
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}
