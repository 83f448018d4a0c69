package it

import (
	"bytes"
	"slices"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
)

// Attributes the HTTP dissector emits besides the dissect.Attr* ones.
const (
	AttrHTTPUserAgent = "http.user_agent" // about the client: its User-Agent header
	AttrHTTPServer    = "http.server"     // about the server: its Server header
	// AttrHTTPHost is the Host header a client sent, about the server. It is
	// the name the client used, not necessarily the server's own hostname.
	AttrHTTPHost = "http.host"
	// UPnP device description (UPnP Device Architecture 2.0 section 2.3),
	// about the server that returned it; manufacturer, modelName and
	// serialNumber are emitted as dissect.AttrVendor, AttrModel, AttrSerial.
	AttrHTTPUPnPFriendlyName = "upnp.friendly_name"
	AttrHTTPUPnPModelNumber  = "upnp.model_number"
	AttrHTTPUPnPDeviceType   = "upnp.device_type"
	AttrHTTPUPnPUDN          = "upnp.udn"
)

// Bounds of the HTTP dissector.
const (
	httpMaxPackets  = 64            // payload packets read per flow
	httpMaxMessages = 8             // messages read per direction
	httpMaxHeader   = 8 << 10       // a header block longer than this is skipped
	httpMaxBody     = 32 << 10      // longest UPnP description read
	httpLineProbe   = httpMaxHeader // longest start line waited for
	httpKeepBuffer  = 4 << 10       // a larger empty buffer is released
)

// httpPorts are the TCP ports that nominate HTTP.
var httpPorts = []uint16{80, 8080, 8000, 8008, 8081, 8088, 8888, 3128, 5000, 49152, 2869}

// HTTP reads HTTP/1.0 and 1.1 (RFC 9112) on the usual web ports and, by its
// request or status line, on any TCP port. From requests it learns the
// client's User-Agent and the Host it asked for (about the server); from
// responses the Server header and, when a UPnP device description crosses
// the wire (an XML body holding <root><device>), the device's friendly
// name, manufacturer, model name and number, serial number, device type and
// UDN. Bodies are skipped by their Content-Length; a UPnP description is
// read whole when it is at most 32 KiB, with Content-Length or chunked.
//
// Each direction is put back in order with a dissect.Stream; after a gap
// the dissector waits for a segment that starts with a request or status
// line. A flow is read for at most 64 payload packets and 8 messages per
// direction; each fact is emitted once per flow.
type HTTP struct{}

// NewHTTP returns an HTTP dissector.
func NewHTTP() *HTTP { return &HTTP{} }

func init() { register(80, "http", func() dissect.Dissector { return NewHTTP() }) }

// Name returns "http".
func (*HTTP) Name() string { return "http" }

// Wants asks for the web ports and heuristic probing on other TCP ports.
func (*HTTP) Wants() dissect.Wants {
	return dissect.Wants{TCPPorts: httpPorts, Heuristic: true}
}

// httpFlow is the per-flow state.
type httpFlow struct {
	s    [2]dissect.Stream
	seen appFacts
	skip [2]int   // body bytes still to skip
	body [2]int   // UPnP body length to read (-1: chunked), when xml
	xml  [2]bool  // reading a UPnP body
	msgs [2]uint8 // messages read
	pkts uint8
	done bool
	upnp bool // a description was read
}

// httpRequestLine reports whether line is "METHOD target HTTP/1.x".
func httpRequestLine(line []byte) bool {
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || !appIsMethod(line[:sp]) {
		return false
	}
	rest := line[sp+1:]
	sp2 := bytes.LastIndexByte(rest, ' ')
	if sp2 <= 0 {
		return false
	}
	v := rest[sp2+1:]
	return len(v) == 8 && bytes.HasPrefix(v, []byte("HTTP/1.")) && v[7] >= '0' && v[7] <= '9'
}

// httpRequestStart reports whether b starts "METHOD /" or
// "METHOD http://" and is a long segment (the start of a long request
// line).
func httpRequestStart(b []byte) bool {
	sp := bytes.IndexByte(b, ' ')
	if len(b) < 256 || sp <= 0 || !appIsMethod(b[:sp]) {
		return false
	}
	t := b[sp+1:]
	return bytes.HasPrefix(t, []byte("/")) || bytes.HasPrefix(t, []byte("http://"))
}

// httpStatusLine reports whether line is "HTTP/1.x NNN ..." and returns the
// status code.
func httpStatusLine(line []byte) (int, bool) {
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, false
	}
	code, ok := appAtoi(line[9:12])
	if !ok || code < 100 || code > 599 || (len(line) > 12 && line[12] != ' ') {
		return 0, false
	}
	return code, true
}

// Probe reports whether p's payload starts with an HTTP/1.x request line
// or status line.
func (*HTTP) Probe(p *dissect.Packet) bool {
	if p.Flow == nil || p.Flow.Proto != capture.ProtoTCP {
		return false
	}
	line, _, ok := appNextLine(p.Payload)
	if !ok {
		// A request line longer than the segment: on a web port, its
		// method and the start of the target are enough.
		return (slices.Contains(httpPorts, p.Flow.Server.Port()) || slices.Contains(httpPorts, p.Flow.Client.Port())) && httpRequestStart(line)
	}
	if httpRequestLine(line) {
		return true
	}
	_, ok = httpStatusLine(line)
	return ok
}

// Handle reads the messages of a claimed flow.
func (h *HTTP) Handle(p *dissect.Packet, out dissect.Sink) {
	if p.Flow == nil || p.Flow.Proto != capture.ProtoTCP || len(p.Payload) == 0 {
		return
	}
	st, ok := p.Flow.State.(*httpFlow)
	if !ok {
		st = &httpFlow{}
		st.s[0].Max = httpMaxHeader
		st.s[1].Max = httpMaxBody + httpMaxHeader
		p.Flow.State = st
	}
	if st.done {
		return
	}
	st.pkts++
	if st.pkts > httpMaxPackets {
		h.finish(st)
		return
	}
	d := p.Dir & 1
	s := &st.s[d]
	if s.Push(p.TCPSeq, p.Payload) {
		st.skip[d], st.xml[d] = 0, false
	}
	e := appEmitter{out: out, p: p, seen: &st.seen, proto: "http"}
	for i := 0; i < 4; i++ {
		b := s.Bytes()
		if len(b) == 0 {
			break
		}
		if st.skip[d] > 0 {
			n := min(st.skip[d], len(b))
			s.Consume(n)
			st.skip[d] -= n
			continue
		}
		if st.xml[d] {
			if !h.readBody(st, d, s, &e) {
				break
			}
			continue
		}
		if !h.message(st, d, s, &e) {
			break
		}
		if len(s.Bytes()) == 0 && cap(s.Bytes()) > httpKeepBuffer {
			// Between messages: give a grown buffer back rather than
			// hold it for the life of the flow.
			*s = dissect.Stream{Max: s.Max}
		}
		st.msgs[d]++
		if st.msgs[0] >= httpMaxMessages && st.msgs[1] >= httpMaxMessages {
			h.finish(st)
			return
		}
	}
}

// finish stops reading the flow and frees its buffers.
func (*HTTP) finish(st *httpFlow) {
	st.done = true
	st.s = [2]dissect.Stream{}
}

// message reads the header block at the start of s. It reports false when
// it must wait for more bytes (or dropped what it could not read).
func (h *HTTP) message(st *httpFlow, d flow.Dir, s *dissect.Stream, e *appEmitter) bool {
	b := s.Bytes()
	line, _, ok := appNextLine(b)
	if !ok {
		if len(b) > httpLineProbe {
			s.Consume(len(b))
		}
		return false
	}
	request := httpRequestLine(line)
	code, response := httpStatusLine(line)
	if !request && !response {
		s.Consume(len(b)) // not at a message start: wait for one
		return false
	}
	end := appHeaderEnd(b)
	if end < 0 {
		if len(b) >= httpMaxHeader {
			s.Consume(len(b))
		}
		return false
	}
	var (
		length            = -1
		chunked, xml      bool
		hdr               = b[:end]
		_, rest, _        = appNextLine(hdr)
		client, server    = e.src(), e.dst()
		ua, host, srvName []byte
	)
	if response {
		client, server = server, client
	}
	for len(rest) > 0 {
		var l []byte
		l, rest, _ = appNextLine(rest)
		if v, ok := appHeaderValue(l, "content-length"); ok {
			if n, ok := appAtoi(v); ok {
				length = n
			}
		} else if v, ok := appHeaderValue(l, "transfer-encoding"); ok {
			chunked = httpHasChunked(v)
		} else if v, ok := appHeaderValue(l, "content-type"); ok {
			xml = bytes.Contains(v, []byte("xml"))
		} else if v, ok := appHeaderValue(l, "user-agent"); ok && request {
			ua = v
		} else if v, ok := appHeaderValue(l, "host"); ok && request {
			host = v
		} else if v, ok := appHeaderValue(l, "server"); ok && response {
			srvName = v
		}
	}
	e.text(client, AttrHTTPUserAgent, ua, server)
	e.text(server, AttrHTTPHost, host, client)
	e.text(server, AttrHTTPServer, srvName, client)
	s.Consume(end)
	noBody := response && (code < 200 || code == 204 || code == 304)
	switch {
	case noBody:
	case response && code == 200 && xml && !st.upnp && (chunked || (length > 0 && length <= httpMaxBody)):
		st.xml[d] = true
		st.body[d] = length
		if chunked {
			st.body[d] = -1
		}
	case chunked:
		// Not read: skip what is buffered and wait for a segment that
		// starts a message.
		s.Consume(len(s.Bytes()))
	case length >= 0:
		st.skip[d] = length
	case response:
		s.Consume(len(s.Bytes())) // body until close
	}
	return true
}

// readBody reads a UPnP description body once it is whole. It reports
// false when it must wait for more bytes.
func (h *HTTP) readBody(st *httpFlow, d flow.Dir, s *dissect.Stream, e *appEmitter) bool {
	b := s.Bytes()
	n := st.body[d]
	var body []byte
	if n >= 0 {
		if len(b) < n {
			return false
		}
		body = b[:n]
	} else {
		var complete bool
		body, n, complete = httpDechunk(b)
		if !complete {
			if len(b) >= httpMaxBody {
				st.xml[d] = false
				s.Consume(len(b))
			}
			return false
		}
	}
	st.xml[d] = false
	if httpUPnP(body, e) {
		st.upnp = true
	}
	s.Consume(n)
	return true
}

// httpDechunk decodes a chunked body (RFC 9112 section 7.1) at the start of
// b in place. It reports the decoded body, the bytes of b it took
// (through the last chunk and trailers) and whether the body is whole.
func httpDechunk(b []byte) (body []byte, used int, complete bool) {
	// First pass: check the body is whole, without writing.
	i := 0
	for {
		line, _, ok := appNextLine(b[i:])
		if !ok {
			return nil, 0, false
		}
		lineLen := bytes.IndexByte(b[i:], '\n') + 1
		if semi := bytes.IndexByte(line, ';'); semi >= 0 {
			line = line[:semi]
		}
		size, ok := httpHex(bytes.TrimSpace(line))
		if !ok {
			return nil, 0, false
		}
		i += lineLen
		if size == 0 {
			end := appHeaderEnd(b[i:]) // trailers and the final empty line
			if end < 0 {
				return nil, 0, false
			}
			used = i + end
			break
		}
		if size > len(b) || i+size+2 > len(b) {
			return nil, 0, false
		}
		i += size + 2
	}
	// Second pass: move the chunk data together.
	w, r := 0, 0
	for {
		line, _, _ := appNextLine(b[r:])
		lineLen := bytes.IndexByte(b[r:], '\n') + 1
		if semi := bytes.IndexByte(line, ';'); semi >= 0 {
			line = line[:semi]
		}
		size, _ := httpHex(bytes.TrimSpace(line))
		r += lineLen
		if size == 0 {
			return b[:w], used, true
		}
		copy(b[w:], b[r:r+size])
		w += size
		r += size + 2
	}
}

// httpHex parses a chunk size of at most 7 hex digits.
func httpHex(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 7 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			n = n<<4 | int(c-'0')
		case 'a' <= c && c <= 'f':
			n = n<<4 | int(c-'a'+10)
		case 'A' <= c && c <= 'F':
			n = n<<4 | int(c-'A'+10)
		default:
			return 0, false
		}
	}
	return n, true
}

// httpUPnP reads a UPnP device description (UPnP Device Architecture 2.0
// section 2.3: <root><device>...) and emits the root device's identity
// about the sender. It reports whether body was one.
func httpUPnP(body []byte, e *appEmitter) bool {
	root := bytes.Index(body, []byte("<root"))
	if root < 0 {
		return false
	}
	body = body[root:]
	dev := bytes.Index(body, []byte("<device>"))
	if dev < 0 {
		return false
	}
	body = body[dev:]
	// The root device's own elements come before its deviceList and
	// serviceList; embedded devices follow in deviceList.
	if i := bytes.Index(body, []byte("<deviceList")); i >= 0 {
		body = body[:i]
	}
	ip, peer := e.src(), e.dst()
	var buf [4 * maxText]byte
	for _, f := range [...]struct{ tag, attr string }{
		{"friendlyName", AttrHTTPUPnPFriendlyName},
		{"manufacturer", dissect.AttrVendor},
		{"modelName", dissect.AttrModel},
		{"modelNumber", AttrHTTPUPnPModelNumber},
		{"serialNumber", dissect.AttrSerial},
		{"deviceType", AttrHTTPUPnPDeviceType},
		{"UDN", AttrHTTPUPnPUDN},
	} {
		v := xmlElement(body, f.tag)
		if v == nil {
			continue
		}
		e.text(ip, f.attr, xmlUnescape(buf[:0], v), peer)
	}
	return true
}

// xmlElement returns the text of the first <tag>text</tag> in b.
func xmlElement(b []byte, tag string) []byte {
	for i := 0; i < len(b); {
		j := bytes.Index(b[i:], []byte(tag))
		if j < 0 {
			return nil
		}
		j += i
		i = j + len(tag)
		if j == 0 || b[j-1] != '<' || i >= len(b) || b[i] != '>' {
			continue
		}
		v := b[i+1:]
		k := bytes.IndexByte(v, '<')
		if k < 0 {
			return nil
		}
		return bytes.TrimSpace(v[:k])
	}
	return nil
}

// xmlUnescape appends v to dst with the five predefined XML entities and
// numeric character references below 128 decoded.
func xmlUnescape(dst, v []byte) []byte {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c != '&' {
			dst = append(dst, c)
			continue
		}
		semi := bytes.IndexByte(v[i:], ';')
		if semi < 0 || semi > 8 {
			dst = append(dst, c)
			continue
		}
		ent := v[i+1 : i+semi]
		switch string(ent) {
		case "amp":
			dst = append(dst, '&')
		case "lt":
			dst = append(dst, '<')
		case "gt":
			dst = append(dst, '>')
		case "quot":
			dst = append(dst, '"')
		case "apos":
			dst = append(dst, '\'')
		default:
			if len(ent) > 1 && ent[0] == '#' {
				if n, ok := appAtoi(ent[1:]); ok && n < 128 {
					dst = append(dst, byte(n))
					break
				}
			}
			dst = append(dst, v[i:i+semi+1]...)
		}
		i += semi
	}
	return dst
}

// httpHasChunked reports whether a Transfer-Encoding value names chunked
// (any case).
func httpHasChunked(v []byte) bool {
	for i := 0; i+7 <= len(v); i++ {
		if appHasPrefixFold(v[i:], "CHUNKED") {
			return true
		}
	}
	return false
}
