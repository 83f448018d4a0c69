package it

import (
	"bytes"
	"encoding/binary"
	"net/netip"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
)

// KerberosPort is the KDC's TCP and UDP port (RFC 4120 section 7.2).
const KerberosPort = 88

// Attributes the Kerberos dissector emits, about the client.
const (
	// AttrKerberosCName is the client principal, components joined by
	// "/" ("alice", "HOST$", "host/pc1.example.com").
	AttrKerberosCName = "kerberos.cname"
	// AttrKerberosSName is a service principal the client asked a ticket
	// for ("krbtgt/EXAMPLE.COM", "cifs/fs1.example.com"), Peer the KDC.
	AttrKerberosSName = "kerberos.sname"
)

// RoleKerberosKDC is the role of the side answering Kerberos requests.
const RoleKerberosKDC = "kerberos-kdc"

const (
	krbMaxMessage  = 32 << 10 // longest TCP message read
	krbMaxMessages = 16       // messages read per flow
	krbMaxPackets  = 48       // payload packets read per flow
)

// Kerberos message tags: [APPLICATION n] constructed (RFC 4120 section 5).
const (
	krbASReq    = 0x6a // 10
	krbASRep    = 0x6b // 11
	krbTGSReq   = 0x6c // 12
	krbTGSRep   = 0x6d // 13
	krbError    = 0x7e // 30
	krbTicket   = 0x61 // 1
	derSequence = 0x30
)

// Kerberos reads Kerberos V5 (RFC 4120) on TCP and UDP port 88 with its
// own bounded DER walk. From AS-REQ and TGS-REQ it learns the client's
// realm (dissect.AttrDomain), client principal and the service principals
// it asks for; from AS-REP, TGS-REP and KRB-ERROR the client realm and
// principal the KDC names. A machine account ("PC1$") or host principal
// ("host/pc1.example.com") gives the client's hostname (and FQDN), and so
// does a NetBIOS address in the request body. The answering side gets the
// kerberos-kdc role.
//
// Over TCP each direction is put back in order with a dissect.Stream and
// read by its 4-byte record marks (section 7.2.2); a message longer than
// 32 KiB is skipped. A flow is read for at most 16 messages or 48 payload
// packets; each fact is emitted once per flow.
type Kerberos struct{}

// NewKerberos returns a Kerberos dissector.
func NewKerberos() *Kerberos { return &Kerberos{} }

func init() { register(84, "kerberos", func() dissect.Dissector { return NewKerberos() }) }

// Name returns "kerberos".
func (*Kerberos) Name() string { return "kerberos" }

// Wants asks for TCP and UDP port 88.
func (*Kerberos) Wants() dissect.Wants {
	return dissect.Wants{TCPPorts: []uint16{KerberosPort}, UDPPorts: []uint16{KerberosPort}}
}

// krbStart checks that b starts a Kerberos message: an application tag of
// a KDC message and a SEQUENCE inside. Only the header need be present.
func krbStart(b []byte) bool {
	if len(b) < 4 {
		return false
	}
	switch b[0] {
	case krbASReq, krbASRep, krbTGSReq, krbTGSRep, krbError:
	default:
		return false
	}
	i := 2
	if b[1]&0x80 != 0 {
		i += int(b[1] & 0x7f)
	}
	return i < len(b) && b[i] == derSequence
}

// Probe reports whether p's payload starts a Kerberos message (after the
// record mark over TCP).
func (*Kerberos) Probe(p *dissect.Packet) bool {
	if p.Flow == nil {
		return false
	}
	b := p.Payload
	switch p.Flow.Proto {
	case capture.ProtoUDP:
		return krbStart(b)
	case capture.ProtoTCP:
		if len(b) < 8 || b[0]&0x80 != 0 {
			return false
		}
		n := binary.BigEndian.Uint32(b)
		return n >= 4 && n <= 1<<20 && krbStart(b[4:])
	}
	return false
}

// krbFlow is the per-flow state.
type krbFlow struct {
	s    [2]dissect.Stream
	skip [2]int
	seen appFacts
	msgs uint8
	pkts uint8
	done bool
}

// Handle reads the messages of a claimed flow.
func (k *Kerberos) Handle(p *dissect.Packet, out dissect.Sink) {
	if p.Flow == nil || len(p.Payload) == 0 {
		return
	}
	st, ok := p.Flow.State.(*krbFlow)
	if !ok {
		st = &krbFlow{}
		p.Flow.State = st
	}
	if st.done {
		return
	}
	st.pkts++
	if st.pkts > krbMaxPackets || st.msgs >= krbMaxMessages {
		st.done = true
		st.s = [2]dissect.Stream{}
		return
	}
	e := appEmitter{out: out, p: p, seen: &st.seen, proto: "kerberos"}
	if p.Flow.Proto == capture.ProtoUDP {
		st.msgs++
		krbMessage(p.Payload, &e)
		return
	}
	if p.Flow.Proto != capture.ProtoTCP {
		return
	}
	d := p.Dir & 1
	s := &st.s[d]
	s.Max = krbMaxMessage + 4
	if s.Push(p.TCPSeq, p.Payload) {
		st.skip[d] = 0
	}
	for i := 0; i < 4; i++ {
		b := s.Bytes()
		if st.skip[d] > 0 {
			n := min(st.skip[d], len(b))
			s.Consume(n)
			st.skip[d] -= n
			continue
		}
		if len(b) < 4 {
			return
		}
		n := int(binary.BigEndian.Uint32(b) & 0x7fffffff)
		if !krbStart(b[4:min(len(b), 16)]) && len(b) >= 8 {
			s.Consume(len(b)) // not at a message: wait for one
			return
		}
		if n > krbMaxMessage {
			st.skip[d] = 4 + n
			continue
		}
		if len(b) < 4+n {
			return
		}
		st.msgs++
		krbMessage(b[4:4+n], &e)
		s.Consume(4 + n)
	}
}

// krbMessage reads one message and emits what it says.
func krbMessage(b []byte, e *appEmitter) {
	tag, body, _, ok := berTLV(b)
	if !ok {
		return
	}
	tag2, seq, _, ok := berTLV(body)
	if !ok || tag2 != derSequence {
		return
	}
	src, dst := e.src(), e.dst()
	switch tag {
	case krbASReq, krbTGSReq:
		e.str(dst, dissect.AttrRole, RoleKerberosKDC, src)
		reqBody := derField(seq, 4)
		tag, rb, _, ok := berTLV(reqBody)
		if !ok || tag != derSequence {
			return
		}
		krbClient(src, dst, derField(rb, 2), derField(rb, 1), e)
		krbSName(src, dst, derField(rb, 3), e)
		krbAddresses(src, dst, derField(rb, 9), e)
	case krbASRep, krbTGSRep:
		e.str(src, dissect.AttrRole, RoleKerberosKDC, dst)
		krbClient(dst, src, derField(seq, 3), derField(seq, 4), e)
		if tag, t, _, ok := berTLV(derField(seq, 5)); ok && tag == krbTicket {
			if tag, ts, _, ok := berTLV(t); ok && tag == derSequence {
				krbSName(dst, src, derField(ts, 2), e)
			}
		}
	case krbError:
		e.str(src, dissect.AttrRole, RoleKerberosKDC, dst)
		krbClient(dst, src, derField(seq, 7), derField(seq, 8), e)
		krbSName(dst, src, derField(seq, 10), e)
	}
}

// derField returns the content of context-tagged field [n] of a SEQUENCE's
// content, or nil.
func derField(seq []byte, n int) []byte {
	for len(seq) > 0 {
		tag, v, rest, ok := berTLV(seq)
		if !ok {
			return nil
		}
		if tag == 0xa0|byte(n) {
			return v
		}
		seq = rest
	}
	return nil
}

// krbString reads a KerberosString (GeneralString, or another string type
// some implementations use).
func krbString(b []byte) []byte {
	tag, v, _, ok := berTLV(b)
	if !ok || (tag != 0x1b && tag != 0x0c && tag != 0x16 && tag != 0x13) {
		return nil
	}
	return v
}

// krbPrincipal joins a PrincipalName's components with "/" into dst; it
// returns the components count.
func krbPrincipal(dst []byte, b []byte) ([]byte, int) {
	tag, seq, _, ok := berTLV(b)
	if !ok || tag != derSequence {
		return dst, 0
	}
	tag, list, _, ok := berTLV(derField(seq, 1))
	if !ok || tag != derSequence {
		return dst, 0
	}
	n := 0
	for len(list) > 0 && n < 8 {
		tag, v, rest, ok := berTLV(list)
		if !ok || (tag != 0x1b && tag != 0x0c && tag != 0x16 && tag != 0x13) {
			break
		}
		list = rest
		if n > 0 {
			dst = append(dst, '/')
		}
		dst = append(dst, v...)
		n++
	}
	return dst, n
}

// krbClient emits a client's realm and principal, and its hostname when
// the principal is a machine's.
func krbClient(client, kdc netip.Addr, realm, cname []byte, e *appEmitter) {
	e.text(client, dissect.AttrDomain, krbString(realm), kdc)
	var buf [2 * maxText]byte
	name, n := krbPrincipal(buf[:0], cname)
	if n == 0 || len(name) > maxText {
		return
	}
	e.text(client, AttrKerberosCName, name, kdc)
	switch {
	case n == 1 && len(name) > 1 && name[len(name)-1] == '$':
		e.text(client, dissect.AttrHostname, name[:len(name)-1], kdc)
	case n == 2 && appHasPrefixFold(name, "HOST/"):
		host := name[5:]
		if i := bytes.IndexByte(host, '.'); i > 0 {
			e.text(client, dissect.AttrFQDN, host, kdc)
			host = host[:i]
		}
		e.text(client, dissect.AttrHostname, host, kdc)
	}
}

// krbSName emits a service principal a client asked for.
func krbSName(client, kdc netip.Addr, sname []byte, e *appEmitter) {
	var buf [2 * maxText]byte
	if name, n := krbPrincipal(buf[:0], sname); n > 0 && len(name) <= maxText {
		e.text(client, AttrKerberosSName, name, kdc)
	}
}

// krbAddresses reads a request's HostAddresses and emits a NetBIOS name
// (addr-type 20, RFC 4120 section 7.5.3) as the client's hostname.
func krbAddresses(client, kdc netip.Addr, b []byte, e *appEmitter) {
	tag, list, _, ok := berTLV(b)
	if !ok || tag != derSequence {
		return
	}
	for i := 0; len(list) > 0 && i < 8; i++ {
		tag, ha, rest, ok := berTLV(list)
		if !ok || tag != derSequence {
			return
		}
		list = rest
		_, t, _, ok := berTLV(derField(ha, 0))
		if !ok {
			continue
		}
		typ, ok := berInt(t)
		if !ok || typ != 20 {
			continue
		}
		if tag, v, _, ok := berTLV(derField(ha, 1)); ok && tag == 0x04 {
			e.text(client, dissect.AttrHostname, bytes.TrimRight(v, " \x00"), kdc)
		}
	}
}
