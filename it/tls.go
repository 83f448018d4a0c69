package it

import (
	"crypto/md5"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
)

// Attributes the TLS dissector emits.
const (
	AttrTLSSNI     = "tls.sni"      // about the client: the server_name it asked for (Peer the server)
	AttrTLSJA3     = "tls.ja3"      // about the client: JA3 MD5
	AttrTLSJA3Full = "tls.ja3_full" // about the client: the JA3 string hashed
	AttrTLSJA4     = "tls.ja4"      // about the client: JA4 (FoxIO, TLS over TCP)
	AttrTLSALPN    = "tls.alpn"     // about the client: ALPN protocols offered, comma-separated
	AttrTLSVersion = "tls.version"  // about the server: version chosen ("1.2", "1.3")
	AttrTLSCipher  = "tls.cipher"   // about the server: cipher suite chosen, "0xc02f"
	// Server certificate (TLS 1.0-1.2 only: TLS 1.3 encrypts it), about
	// the server: subject common name, organisation, DNS and IP subject
	// alternative names (comma-separated), issuer common name (or whole
	// issuer name when it has none), validity (RFC 3339).
	AttrTLSCertSubject   = "tls.cert_subject"
	AttrTLSCertOrg       = "tls.cert_org"
	AttrTLSCertSANs      = "tls.cert_sans"
	AttrTLSCertIssuer    = "tls.cert_issuer"
	AttrTLSCertNotBefore = "tls.cert_not_before"
	AttrTLSCertNotAfter  = "tls.cert_not_after"
)

// Bounds of the TLS dissector.
const (
	tlsMaxRecord    = 16384 + 2048 // TLSCiphertext bound (RFC 5246 section 6.2.3)
	tlsMaxHandshake = 24 << 10     // handshake bytes reassembled per direction
	tlsMaxCert      = 16 << 10     // longest certificate parsed
	tlsMaxPackets   = 24           // payload packets read per flow
)

// TLS record content types (RFC 5246 section 6.2.1) and handshake types
// (section 7.4).
const (
	tlsChangeCipherSpec = 20
	tlsAlert            = 21
	tlsHandshake        = 22
	tlsApplicationData  = 23
	tlsHeartbeat        = 24

	tlsClientHello = 1
	tlsServerHello = 2
	tlsCertificate = 11
	tlsHelloDone   = 14
)

// tlsPorts are the TCP ports that nominate TLS: HTTPS, LDAPS, IMAPS, POP3S,
// SMTPS, DNS over TLS, SIPS, OPC UA (HTTPS binding), MQTT over TLS, ...
var tlsPorts = []uint16{443, 8443, 636, 993, 995, 465, 853, 5061, 4840, 4843, 8883, 5671, 3269, 989, 990, 992, 994, 5986, 6514}

// TLS reads the TLS handshake (RFC 5246, RFC 8446) on TCP. From the
// client's ClientHello it learns the server name asked for (SNI), the ALPN
// protocols offered and the client's JA3 and JA4 fingerprints; from the
// ServerHello the version and cipher suite chosen; from the server's
// Certificate message, which only TLS 1.2 and older send in clear, the
// leaf certificate's subject, SANs, issuer and validity.
//
// A port nominates it and the record header confirms it; on other ports
// a handshake record holding a ClientHello or ServerHello is enough. Each
// direction is put back in order with a dissect.Stream; handshake messages
// spanning records are reassembled up to 24 KiB. A direction is read until
// it changes cipher spec (or sends application data), and a flow for at
// most 24 payload packets; each fact is emitted once per flow.
type TLS struct {
	// prints caches the fingerprints of the ClientHellos seen, by a hash
	// of what the fingerprints read: a client sends the same hello on
	// each connection. Bounded: cleared when full.
	prints map[uint64]tlsPrints
	// certs caches what the leaf certificates seen say, by a hash of
	// their DER: a server sends the same one on each connection.
	certs map[uint64]*tlsCert
}

// tlsCert is what the TLS dissector reads of a certificate.
type tlsCert struct {
	subject, org, sans, issuer, notBefore, notAfter string
}

// tlsPrints are a ClientHello's fingerprints.
type tlsPrints struct{ ja3, ja3Full, ja4 string }

// tlsMaxPrints bounds the fingerprint cache.
const tlsMaxPrints = 512

// NewTLS returns a TLS dissector. Each pipeline worker should hold its own
// (All returns fresh instances): a TLS is not safe for concurrent use.
func NewTLS() *TLS { return &TLS{prints: map[uint64]tlsPrints{}, certs: map[uint64]*tlsCert{}} }

func init() { register(81, "tls", func() dissect.Dissector { return NewTLS() }) }

// Name returns "tls".
func (*TLS) Name() string { return "tls" }

// Wants asks for the TLS ports and heuristic probing.
func (*TLS) Wants() dissect.Wants { return dissect.Wants{TCPPorts: tlsPorts, Heuristic: true} }

// tlsRecordHeader checks a record header and returns the record length.
func tlsRecordHeader(b []byte) (int, bool) {
	if len(b) < 5 || b[0] < tlsChangeCipherSpec || b[0] > tlsHeartbeat || b[1] != 3 || b[2] > 4 {
		return 0, false
	}
	n := int(binary.BigEndian.Uint16(b[3:5]))
	return n, n > 0 && n <= tlsMaxRecord
}

// Probe reports whether p's payload starts with a TLS handshake record
// whose first message is a ClientHello or ServerHello, of plausible length.
func (*TLS) Probe(p *dissect.Packet) bool {
	if p.Flow == nil || p.Flow.Proto != capture.ProtoTCP {
		return false
	}
	b := p.Payload
	n, ok := tlsRecordHeader(b)
	if !ok || b[0] != tlsHandshake || n < 4 || len(b) < 9 {
		return false
	}
	t := b[5]
	l := int(b[6])<<16 | int(b[7])<<8 | int(b[8])
	if (t != tlsClientHello && t != tlsServerHello) || l < 38 || l > tlsMaxHandshake {
		return false
	}
	// The hello's own version follows.
	return len(b) < 11 || b[9] == 3
}

// tlsFlow is the per-flow state.
type tlsFlow struct {
	s     [2]dissect.Stream
	hs    [2][]byte // partial handshake message
	seen  appFacts
	done  [2]bool
	tls13 bool
	pkts  uint8
}

// Handle reads the records of a claimed flow.
func (t *TLS) Handle(p *dissect.Packet, out dissect.Sink) {
	if p.Flow == nil || p.Flow.Proto != capture.ProtoTCP || len(p.Payload) == 0 {
		return
	}
	st, ok := p.Flow.State.(*tlsFlow)
	if !ok {
		st = &tlsFlow{}
		st.s[0].Max = tlsMaxRecord + 5
		st.s[1].Max = tlsMaxRecord + 5
		p.Flow.State = st
	}
	d := uint8(p.Dir & 1)
	if st.done[d] {
		return
	}
	st.pkts++
	if st.pkts > tlsMaxPackets {
		t.finish(st)
		return
	}
	s := &st.s[d]
	if s.Push(p.TCPSeq, p.Payload) {
		// A gap: the handshake cannot be followed any more.
		t.stop(st, d)
		return
	}
	e := appEmitter{out: out, p: p, seen: &st.seen, proto: "tls"}
	for !st.done[d] {
		b := s.Bytes()
		if len(b) < 5 {
			return
		}
		n, ok := tlsRecordHeader(b)
		if !ok {
			t.stop(st, d)
			return
		}
		if len(b) < 5+n {
			return
		}
		switch b[0] {
		case tlsHandshake:
			t.handshake(st, d, b[5:5+n], &e)
		case tlsChangeCipherSpec, tlsApplicationData:
			t.stop(st, d)
			return
		}
		s.Consume(5 + n)
	}
}

// stop ends the reading of direction d, and of the flow when both are done.
func (t *TLS) stop(st *tlsFlow, d uint8) {
	st.done[d] = true
	st.s[d] = dissect.Stream{}
	st.hs[d] = nil
	if st.done[0] && st.done[1] {
		t.finish(st)
	}
}

func (*TLS) finish(st *tlsFlow) {
	st.done = [2]bool{true, true}
	st.s = [2]dissect.Stream{}
	st.hs = [2][]byte{}
}

// handshake reads a handshake record's fragment, reassembling messages
// that span records.
func (t *TLS) handshake(st *tlsFlow, d uint8, frag []byte, e *appEmitter) {
	data := frag
	if len(st.hs[d]) > 0 {
		if len(st.hs[d])+len(frag) > tlsMaxHandshake {
			t.stop(st, d)
			return
		}
		st.hs[d] = append(st.hs[d], frag...)
		data = st.hs[d]
	}
	for len(data) >= 4 && !st.done[d] {
		typ := data[0]
		l := int(data[1])<<16 | int(data[2])<<8 | int(data[3])
		if l > tlsMaxHandshake {
			t.stop(st, d)
			return
		}
		if len(data) < 4+l {
			break
		}
		body := data[4 : 4+l]
		data = data[4+l:]
		switch {
		case typ == tlsClientHello && d == 0:
			t.clientHelloFacts(body, e)
			t.stop(st, d) // nothing more to learn from the client
		case typ == tlsServerHello && d == 1:
			if tlsServerHelloFacts(body, e) {
				st.tls13 = true
				t.stop(st, d) // the rest is encrypted
			}
		case typ == tlsCertificate && d == 1 && !st.tls13:
			t.certificateFacts(body, e)
		case typ == tlsHelloDone:
			t.stop(st, d)
		}
	}
	if st.done[d] {
		return
	}
	if len(data) == 0 {
		st.hs[d] = st.hs[d][:0]
		return
	}
	if len(st.hs[d]) > 0 {
		st.hs[d] = append(st.hs[d][:0], data...) // regions may overlap: append copies forward
		return
	}
	st.hs[d] = append(make([]byte, 0, len(data)+1024), data...)
}

// tlsGREASE reports whether v is a GREASE value (RFC 8701 section 2).
func tlsGREASE(v uint16) bool { return v&0x0f0f == 0x0a0a && v>>8 == v&0xff }

// tlsReader reads length-prefixed fields without reading past its slice.
type tlsReader struct {
	b   []byte
	bad bool
}

func (r *tlsReader) next(n int) []byte {
	if r.bad || n > len(r.b) {
		r.bad = true
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *tlsReader) u8() int {
	v := r.next(1)
	if v == nil {
		return 0
	}
	return int(v[0])
}

func (r *tlsReader) u16() int {
	v := r.next(2)
	if v == nil {
		return 0
	}
	return int(binary.BigEndian.Uint16(v))
}

// ClientHello is what the TLS dissector reads of a ClientHello (RFC 8446
// section 4.1.2; RFC 5246 section 7.4.1.2), GREASE values removed.
type ClientHello struct {
	Version    uint16   // legacy_version
	Ciphers    []uint16 // cipher suites in order
	Extensions []uint16 // extension types in order
	Groups     []uint16 // supported_groups (10)
	Points     []uint8  // ec_point_formats (11)
	SigAlgs    []uint16 // signature_algorithms (13), in order
	Versions   []uint16 // supported_versions (43)
	SNI        string   // server_name (0), first host_name
	HasSNI     bool
	ALPN       []string // application_layer_protocol_negotiation (16)
}

// ParseClientHello reads a ClientHello handshake body (after the 4-byte
// handshake header). It reports false when the body is malformed.
func ParseClientHello(body []byte) (ClientHello, bool) {
	var h ClientHello
	r := tlsReader{b: body}
	h.Version = uint16(r.u16())
	r.next(32)     // random
	r.next(r.u8()) // session id
	cs := r.next(r.u16())
	r.next(r.u8()) // compression methods
	if r.bad || len(cs)%2 != 0 {
		return h, false
	}
	for i := 0; i+1 < len(cs); i += 2 {
		if v := binary.BigEndian.Uint16(cs[i:]); !tlsGREASE(v) {
			h.Ciphers = append(h.Ciphers, v)
		}
	}
	if len(r.b) < 2 {
		return h, true // no extensions
	}
	exts := tlsReader{b: r.next(r.u16())}
	if r.bad {
		return h, false
	}
	for len(exts.b) > 0 && !exts.bad {
		typ := uint16(exts.u16())
		data := tlsReader{b: exts.next(exts.u16())}
		if exts.bad {
			return h, false
		}
		if tlsGREASE(typ) {
			continue
		}
		h.Extensions = append(h.Extensions, typ)
		switch typ {
		case 0: // server_name (RFC 6066 section 3)
			h.HasSNI = true
			list := tlsReader{b: data.next(data.u16())}
			for len(list.b) > 0 && !list.bad {
				nt := list.u8()
				name := list.next(list.u16())
				if nt == 0 && h.SNI == "" && len(name) > 0 && !list.bad {
					var buf [4 * maxText]byte
					h.SNI = string(cleanText(buf[:0], name, maxText))
				}
			}
		case 10: // supported_groups
			h.Groups = tlsList16(data.next(data.u16()), h.Groups)
		case 11: // ec_point_formats
			h.Points = append(h.Points, data.next(data.u8())...)
		case 13: // signature_algorithms
			h.SigAlgs = tlsList16(data.next(data.u16()), h.SigAlgs)
		case 16: // ALPN (RFC 7301 section 3.1)
			list := tlsReader{b: data.next(data.u16())}
			for len(list.b) > 0 && !list.bad && len(h.ALPN) < 16 {
				if v := list.next(list.u8()); len(v) > 0 {
					h.ALPN = append(h.ALPN, string(v))
				}
			}
		case 43: // supported_versions (RFC 8446 section 4.2.1)
			h.Versions = tlsList16(data.next(data.u8()), h.Versions)
		}
	}
	return h, true
}

// tlsList16 appends the non-GREASE 16-bit values of b to dst.
func tlsList16(b []byte, dst []uint16) []uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		if v := binary.BigEndian.Uint16(b[i:]); !tlsGREASE(v) {
			dst = append(dst, v)
		}
	}
	return dst
}

// JA3String returns the JA3 string of h: SSLVersion,Ciphers,Extensions,
// EllipticCurves,EllipticCurvePointFormats in decimal, values joined by
// "-", GREASE removed (salesforce/ja3).
func (h *ClientHello) JA3String() string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(int(h.Version)))
	for _, list := range [][]uint16{h.Ciphers, h.Extensions, h.Groups} {
		b.WriteByte(',')
		for j, v := range list {
			if j > 0 {
				b.WriteByte('-')
			}
			b.WriteString(strconv.Itoa(int(v)))
		}
	}
	b.WriteByte(',')
	for j, v := range h.Points {
		if j > 0 {
			b.WriteByte('-')
		}
		b.WriteString(strconv.Itoa(int(v)))
	}
	return b.String()
}

// JA3 returns the MD5 of JA3String in lower-case hex.
func (h *ClientHello) JA3() string {
	sum := md5.Sum([]byte(h.JA3String()))
	return hex.EncodeToString(sum[:])
}

// JA4 returns the JA4 fingerprint of h sent over TCP, as FoxIO's JA4
// specification (technical_details/JA4.md) defines it:
// t{version}{d|i}{ciphers:02}{extensions:02}{alpn}_{sha256(sorted
// ciphers)[:12]}_{sha256(sorted extensions less SNI and ALPN "_"
// signature algorithms)[:12]}.
func (h *ClientHello) JA4() string {
	v := h.Version
	if len(h.Versions) > 0 {
		v = slices.Max(h.Versions)
	}
	var ver string
	switch v {
	case 0x0304:
		ver = "13"
	case 0x0303:
		ver = "12"
	case 0x0302:
		ver = "11"
	case 0x0301:
		ver = "10"
	case 0x0300:
		ver = "s3"
	case 0x0002, 0x0200:
		ver = "s2"
	default:
		ver = "00"
	}
	sni := "i"
	if h.HasSNI {
		sni = "d"
	}
	alpn := "00"
	if len(h.ALPN) > 0 {
		a := h.ALPN[0]
		f, l := a[0], a[len(a)-1]
		if tlsAlnum(f) && tlsAlnum(l) {
			alpn = string([]byte{f, l})
		} else {
			x := hex.EncodeToString([]byte(a))
			alpn = string([]byte{x[0], x[len(x)-1]})
		}
	}
	a := "t" + ver + sni + tlsCount(len(h.Ciphers)) + tlsCount(len(h.Extensions)) + alpn

	cs := slices.Clone(h.Ciphers)
	slices.Sort(cs)
	bpart := "000000000000"
	if len(cs) > 0 {
		bpart = tlsHash12(tlsHexList(cs))
	}
	var exts []uint16
	for _, x := range h.Extensions {
		if x != 0 && x != 16 {
			exts = append(exts, x)
		}
	}
	slices.Sort(exts)
	cpart := "000000000000"
	if len(exts) > 0 || len(h.SigAlgs) > 0 {
		s := tlsHexList(exts)
		if len(h.SigAlgs) > 0 {
			s += "_" + tlsHexList(h.SigAlgs)
		}
		cpart = tlsHash12(s)
	}
	return a + "_" + bpart + "_" + cpart
}

func tlsAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func tlsCount(n int) string {
	n = min(n, 99)
	return string([]byte{byte('0' + n/10), byte('0' + n%10)})
}

func tlsHexList(vs []uint16) string {
	b := make([]byte, 0, len(vs)*5)
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, hex.EncodeToString([]byte{byte(v >> 8), byte(v)})...)
	}
	return string(b)
}

func tlsHash12(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:6])
}

// key hashes what JA3 and JA4 read of h (FNV-1a, 64 bits).
func (h *ClientHello) key() uint64 {
	k := uint64(14695981039346656037)
	mix := func(v uint16) {
		k ^= uint64(v)
		k *= 1099511628211
	}
	mix(h.Version)
	for _, list := range [...][]uint16{h.Ciphers, h.Extensions, h.Groups, h.SigAlgs, h.Versions} {
		mix(0xffff)
		for _, v := range list {
			mix(v)
		}
	}
	mix(0xffff)
	for _, v := range h.Points {
		mix(uint16(v))
	}
	mix(0xffff)
	if len(h.ALPN) > 0 {
		for i := 0; i < len(h.ALPN[0]); i++ {
			mix(uint16(h.ALPN[0][i]))
		}
	}
	if h.HasSNI {
		mix(1)
	}
	return k
}

// clientHelloFacts emits what a ClientHello says about the client.
func (t *TLS) clientHelloFacts(body []byte, e *appEmitter) {
	h, ok := ParseClientHello(body)
	if !ok {
		return
	}
	if t.prints == nil {
		t.prints = map[uint64]tlsPrints{}
	}
	k := h.key()
	fp, ok := t.prints[k]
	if !ok {
		fp = tlsPrints{ja3: h.JA3(), ja3Full: h.JA3String(), ja4: h.JA4()}
		if len(t.prints) >= tlsMaxPrints {
			clear(t.prints)
		}
		t.prints[k] = fp
	}
	client, server := e.src(), e.dst()
	e.str(client, AttrTLSSNI, h.SNI, server)
	e.str(client, AttrTLSJA3, fp.ja3, server)
	e.str(client, AttrTLSJA3Full, fp.ja3Full, server)
	e.str(client, AttrTLSJA4, fp.ja4, server)
	if len(h.ALPN) > 0 {
		var buf [4 * maxText]byte
		e.raw(client, AttrTLSALPN, cleanText(buf[:0], []byte(strings.Join(h.ALPN, ",")), maxText), server)
	}
}

// tlsServerHelloFacts emits the version and cipher a ServerHello chose; it
// reports whether the version is TLS 1.3 (supported_versions, RFC 8446
// section 4.2.1).
func tlsServerHelloFacts(body []byte, e *appEmitter) (tls13 bool) {
	r := tlsReader{b: body}
	v := uint16(r.u16())
	r.next(32)
	r.next(r.u8())
	cipher := r.u16()
	r.u8() // compression
	if r.bad {
		return false
	}
	if len(r.b) >= 2 {
		exts := tlsReader{b: r.next(r.u16())}
		for len(exts.b) > 0 && !exts.bad {
			typ := exts.u16()
			data := exts.next(exts.u16())
			if typ == 43 && len(data) == 2 {
				v = binary.BigEndian.Uint16(data)
			}
		}
	}
	server, client := e.src(), e.dst()
	var name string
	switch v {
	case 0x0300:
		name = "ssl3"
	case 0x0301:
		name = "1.0"
	case 0x0302:
		name = "1.1"
	case 0x0303:
		name = "1.2"
	case 0x0304:
		name = "1.3"
	default:
		name = "0x" + strconv.FormatUint(uint64(v), 16)
	}
	e.str(server, AttrTLSVersion, name, client)
	e.str(server, AttrTLSCipher, "0x"+hex.EncodeToString([]byte{byte(cipher >> 8), byte(cipher)}), client)
	e.str(server, dissect.AttrRole, "tls-server", client)
	return v == 0x0304
}

// certificateFacts reads the leaf of a Certificate message (RFC 5246
// section 7.4.2) and emits its identity about the server.
func (t *TLS) certificateFacts(body []byte, e *appEmitter) {
	r := tlsReader{b: body}
	list := tlsReader{b: r.next(int(uint32(r.u8())<<16 | uint32(r.u16())))}
	if r.bad || len(list.b) < 3 {
		return
	}
	l := int(list.u8())<<16 | list.u16()
	der := list.next(l)
	if list.bad || len(der) == 0 || len(der) > tlsMaxCert {
		return
	}
	// The length and the last bytes (the signature's) tell certificates
	// apart without hashing them whole.
	k := uint64(14695981039346656037) ^ uint64(len(der))
	for _, c := range der[max(0, len(der)-96):] {
		k = (k ^ uint64(c)) * 1099511628211
	}
	if t.certs == nil {
		t.certs = map[uint64]*tlsCert{}
	}
	c, ok := t.certs[k]
	if !ok {
		c = parseTLSCert(der)
		if len(t.certs) >= tlsMaxPrints {
			clear(t.certs)
		}
		t.certs[k] = c // nil when unreadable: not parsed again
	}
	if c == nil {
		return
	}
	server, client := e.src(), e.dst()
	e.str(server, AttrTLSCertSubject, c.subject, client)
	e.str(server, AttrTLSCertOrg, c.org, client)
	e.str(server, AttrTLSCertSANs, c.sans, client)
	e.str(server, AttrTLSCertIssuer, c.issuer, client)
	e.str(server, AttrTLSCertNotBefore, c.notBefore, client)
	e.str(server, AttrTLSCertNotAfter, c.notAfter, client)
}

// parseTLSCert reads a DER certificate, or returns nil.
func parseTLSCert(der []byte) *tlsCert {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil
	}
	var buf [4 * maxText]byte
	text := func(s string) string { return string(cleanText(buf[:0], []byte(s), maxText)) }
	issuer := cert.Issuer.CommonName
	if issuer == "" {
		issuer = cert.Issuer.String()
	}
	return &tlsCert{
		subject:   text(cert.Subject.CommonName),
		org:       text(strings.Join(cert.Subject.Organization, ",")),
		sans:      text(strings.Join(certSANs(cert), ",")),
		issuer:    text(issuer),
		notBefore: cert.NotBefore.UTC().Format(time.RFC3339),
		notAfter:  cert.NotAfter.UTC().Format(time.RFC3339),
	}
}

// certSANs returns the DNS names and IP addresses a certificate names.
func certSANs(c *x509.Certificate) []string {
	out := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		if a, ok := netip.AddrFromSlice(ip); ok {
			out = append(out, a.Unmap().String())
		}
	}
	return out
}
