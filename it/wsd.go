package it

import (
	"bytes"
	"net/netip"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
)

// WSDPort is the UDP port of WS-Discovery (SOAP-over-UDP).
const WSDPort = 3702

// Attributes the WS-Discovery dissector emits.
const (
	AttrWSDTypes      = "wsd.types"       // Types of a target service: "wsdp:Device wprt:PrintDeviceType"
	AttrWSDXAddrs     = "wsd.xaddrs"      // transport addresses (URLs) of the target service
	AttrWSDAddress    = "wsd.address"     // endpoint reference address: "urn:uuid:..."
	AttrWSDScopes     = "wsd.scopes"      // scopes of the target service
	AttrWSDProbeTypes = "wsd.probe_types" // Types a client probes for
)

// maxWSDMessage bounds the bytes of a message read.
const maxWSDMessage = 16 << 10

// WSDMessage is a WS-Discovery message (WS-Discovery 1.1 and the 2005
// draft Windows uses) as far as the dissector reads it. Slices point into
// the payload, trimmed of white space; entities are not expanded.
type WSDMessage struct {
	Action  []byte // last segment of the wsa:Action: "Hello", "ProbeMatches", ...
	Address []byte // of the first endpoint reference in the body
	Types   []byte
	Scopes  []byte
	XAddrs  []byte
}

// wsdDiscovery is what the Action URIs of both WS-Discovery versions
// hold ("http://schemas.xmlsoap.org/ws/2005/04/discovery/Hello",
// "http://docs.oasis-open.org/ws-dd/ns/discovery/2009/01/Hello").
var wsdDiscovery = []byte("/discovery/")

// ParseWSD reads a SOAP envelope of WS-Discovery with a bounded scan that
// allocates nothing: the Action header, then in the body the first
// endpoint reference address, Types, Scopes and XAddrs. It reports false
// when b is not an XML envelope with a WS-Discovery action.
func ParseWSD(b []byte, m *WSDMessage) bool {
	*m = WSDMessage{}
	if len(b) > maxWSDMessage {
		b = b[:maxWSDMessage]
	}
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 || b[0] != '<' {
		return false
	}
	action, rest, ok := xmlElemText(b, "Action")
	if !ok {
		return false
	}
	i := bytes.LastIndex(action, wsdDiscovery)
	if i < 0 || i+len(wsdDiscovery) == len(action) {
		return false
	}
	m.Action = action[i+len(wsdDiscovery):]
	body, _ := xmlAfter(rest, "Body")
	if body == nil {
		body, _ = xmlAfter(b, "Body") // Action after the body would be odd, not wrong
	}
	if body == nil {
		return true
	}
	m.Address, _, _ = xmlElemText(body, "Address")
	m.Types, _, _ = xmlElemText(body, "Types")
	m.Scopes, _, _ = xmlElemText(body, "Scopes")
	m.XAddrs, _, _ = xmlElemText(body, "XAddrs")
	return true
}

// xmlAfter returns what follows the first start tag of local name local,
// and whether that tag was an empty element.
func xmlAfter(b []byte, local string) (after []byte, empty bool) {
	for {
		name, end, empty, ok := xmlNextStart(b)
		if !ok {
			return nil, false
		}
		if xmlLocal(name) == local {
			return b[end:], empty
		}
		b = b[end:]
	}
}

// xmlElemText finds the first start tag of local name local in b and
// returns its text up to the next tag, trimmed, and what follows.
func xmlElemText(b []byte, local string) (text, rest []byte, ok bool) {
	b, empty := xmlAfter(b, local)
	if b == nil {
		return nil, nil, false
	}
	if empty {
		return nil, b, true
	}
	i := bytes.IndexByte(b, '<')
	if i < 0 {
		return nil, nil, false
	}
	return bytes.TrimSpace(b[:i]), b[i:], true
}

// xmlNextStart finds the next start tag in b and returns its qualified
// name, the offset after it and whether it is an empty element ("<a/>").
// Comments, processing instructions, end tags and declarations are
// skipped.
func xmlNextStart(b []byte) (name []byte, end int, empty, ok bool) {
	off := 0
	for {
		i := bytes.IndexByte(b[off:], '<')
		if i < 0 {
			return nil, 0, false, false
		}
		off += i + 1
		gt := bytes.IndexByte(b[off:], '>')
		if gt < 0 {
			return nil, 0, false, false
		}
		tag := b[off : off+gt]
		off += gt + 1
		if len(tag) == 0 || tag[0] == '/' || tag[0] == '?' || tag[0] == '!' {
			continue
		}
		n := 0
		for n < len(tag) && tag[n] != ' ' && tag[n] != '\t' && tag[n] != '\r' && tag[n] != '\n' && tag[n] != '/' {
			n++
		}
		return tag[:n], off, tag[len(tag)-1] == '/', true
	}
}

// xmlLocal returns the local part of a qualified name.
func xmlLocal(name []byte) string {
	if i := bytes.LastIndexByte(name, ':'); i >= 0 {
		name = name[i+1:]
	}
	return string(name) // compared at once: the conversion does not allocate
}

// WSD reads WS-Discovery on UDP port 3702. From a target service's Hello,
// ProbeMatches or ResolveMatches it learns the service's Types (Windows
// computers are pub:Computer, printers wprt:PrintDeviceType, ONVIF
// cameras NetworkVideoTransmitter), its transport addresses (XAddrs),
// endpoint reference address and scopes, and from ONVIF scopes the model
// and name; from a client's Probe the Types it looks for.
//
// WSD repeats nothing it said within DefaultDiscoveryRefresh.
type WSD struct {
	seen advertisers
}

// NewWSD returns a WS-Discovery dissector.
func NewWSD() *WSD { return &WSD{} }

// Name returns "wsd".
func (*WSD) Name() string { return "wsd" }

// Wants asks for UDP port 3702, and to be tried on other UDP flows:
// ProbeMatches and ResolveMatches go back to the port a Probe came from,
// and Windows sends them from an ephemeral port.
func (*WSD) Wants() dissect.Wants { return dissect.Wants{UDPPorts: []uint16{WSDPort}, Heuristic: true} }

// Probe reports whether p is a UDP datagram whose payload is an XML
// envelope whose start holds a WS-Discovery action.
func (*WSD) Probe(p *dissect.Packet) bool {
	if p == nil || p.Packet == nil || p.IPProto != capture.ProtoUDP {
		return false
	}
	b := p.Payload
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 || b[0] != '<' {
		return false
	}
	if len(b) > 2048 {
		b = b[:2048]
	}
	return bytes.Contains(b, []byte("Envelope")) && bytes.Contains(b, wsdDiscovery)
}

// Handle reads one message.
func (d *WSD) Handle(p *dissect.Packet, out dissect.Sink) {
	if p == nil || p.Packet == nil || !usableSource(p.SrcIP) {
		return
	}
	var m WSDMessage
	if !ParseWSD(p.Payload, &m) {
		return
	}
	ip := p.SrcIP
	var buf, cbuf [4 * maxText]byte
	emit := func(attr string, v []byte) {
		v = cleanText(cbuf[:0], collapseSpace(buf[:0], v, 2*maxText), 2*maxText)
		if len(v) == 0 || !d.seen.fresh(capture.MAC{}, factDigest(ip, attr, v), p.Time.UnixNano(), int64(DefaultDiscoveryRefresh)) {
			return
		}
		out.Observe(dissect.Observation{Time: p.Time, IP: ip, Attr: attr, Value: string(v), Protocol: "wsd"})
	}
	switch string(m.Action) {
	case "Probe":
		emit(AttrWSDProbeTypes, m.Types)
		return
	case "Hello", "ProbeMatches", "ResolveMatches":
	default:
		return
	}
	emit(AttrWSDTypes, m.Types)
	emit(AttrWSDXAddrs, m.XAddrs)
	emit(AttrWSDAddress, m.Address)
	emit(AttrWSDScopes, m.Scopes)
	switch {
	case hasQNameLocal(m.Types, "PrintDeviceType"), hasQNameLocal(m.Types, "ScanDeviceType"):
		emit(dissect.AttrClass, []byte(dissect.ClassPrinter))
	case hasQNameLocal(m.Types, "NetworkVideoTransmitter"):
		emit(dissect.AttrClass, []byte(dissect.ClassCamera))
	}
	for s := m.Scopes; len(s) > 0; {
		var scope []byte
		scope, s = nextField(s)
		for _, kv := range [...]struct {
			prefix, attr string
		}{{"onvif://www.onvif.org/hardware/", dissect.AttrModel}, {"onvif://www.onvif.org/name/", dissect.AttrName}} {
			if v, ok := bytes.CutPrefix(scope, []byte(kv.prefix)); ok && len(v) > 0 {
				var ub [maxText]byte
				emit(kv.attr, pctDecode(ub[:0], v))
			}
		}
	}
}

// pctDecode appends the URI path segment b to dst with its %XX escapes
// (RFC 3986 section 2.1) decoded, up to maxText bytes; a malformed escape
// is kept as it is.
func pctDecode(dst, b []byte) []byte {
	unhex := func(c byte) (byte, bool) {
		switch {
		case '0' <= c && c <= '9':
			return c - '0', true
		case 'a' <= c && c <= 'f':
			return c - 'a' + 10, true
		case 'A' <= c && c <= 'F':
			return c - 'A' + 10, true
		}
		return 0, false
	}
	for i := 0; i < len(b) && len(dst) < maxText; i++ {
		c := b[i]
		if c == '%' && i+2 < len(b) {
			hi, ok1 := unhex(b[i+1])
			lo, ok2 := unhex(b[i+2])
			if ok1 && ok2 {
				dst = append(dst, hi<<4|lo)
				i += 2
				continue
			}
		}
		dst = append(dst, c)
	}
	return dst
}

// usableSource reports whether a is an address a message can come from.
func usableSource(a netip.Addr) bool {
	return a.IsValid() && !a.IsUnspecified() && !a.IsMulticast() && !a.IsLoopback() && a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// nextField returns the first white-space-separated field of b and the rest.
func nextField(b []byte) (field, rest []byte) {
	b = bytes.TrimLeft(b, " \t\r\n")
	i := bytes.IndexAny(b, " \t\r\n")
	if i < 0 {
		return b, nil
	}
	return b[:i], b[i:]
}

// hasQNameLocal reports whether the list of qualified names in b holds
// one of local name local.
func hasQNameLocal(b []byte, local string) bool {
	for len(b) > 0 {
		var f []byte
		f, b = nextField(b)
		if len(f) > 0 && xmlLocal(f) == local {
			return true
		}
	}
	return false
}

// collapseSpace appends the fields of b to dst joined by single spaces,
// cleaned of control characters and cut to at most max bytes.
func collapseSpace(dst, b []byte, max int) []byte {
	dst = dst[:0]
	for len(b) > 0 {
		var f []byte
		f, b = nextField(b)
		if len(f) == 0 {
			break
		}
		if len(dst)+1+len(f) > max {
			break
		}
		if len(dst) > 0 {
			dst = append(dst, ' ')
		}
		n := len(dst)
		dst = append(dst, f...)
		for i := n; i < len(dst); i++ {
			if dst[i] < 0x20 || dst[i] == 0x7f {
				dst[i] = '?'
			}
		}
	}
	return dst
}

func init() { register(65, "wsd", func() dissect.Dissector { return NewWSD() }) }
