package dissect

import (
	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/flow"
)

// AttrProtocol is emitted by the registry when a dissector claims a flow
// (IP is the server, Peer the client, Value the protocol name) and for each
// link-layer frame a dissector reads (MAC is the frame's source).
const AttrProtocol = "protocol"

// DefaultMaxTries is how many payload packets of an unclaimed flow are
// offered to dissectors before the flow is given up as unknown.
const DefaultMaxTries = 4

// Registry hands packets to the dissectors that want them. Build it once
// with Register, then call Dispatch from one goroutine per Registry user;
// Dispatch itself keeps no per-call state and allocates nothing unless a
// dissector emits.
type Registry struct {
	ds        []Dissector
	tcp       map[uint16][]int16
	udp       map[uint16][]int16
	ether     map[uint16][]int16
	ipproto   [256][]int16
	heuristic []int16
	handshake []int16
	MaxTries  uint8
	counted   countingSink // reused for link-layer frames
}

// countingSink passes observations on and counts them.
type countingSink struct {
	out Sink
	n   int
}

func (c *countingSink) Observe(o Observation) {
	c.n++
	c.out.Observe(o)
}

// NewRegistry returns a registry holding ds, in order of precedence.
func NewRegistry(ds ...Dissector) *Registry {
	r := &Registry{
		tcp:      map[uint16][]int16{},
		udp:      map[uint16][]int16{},
		ether:    map[uint16][]int16{},
		MaxTries: DefaultMaxTries,
	}
	for _, d := range ds {
		r.Register(d)
	}
	return r
}

// Register adds d after those already registered.
func (r *Registry) Register(d Dissector) {
	r.ds = append(r.ds, d)
	id := int16(len(r.ds)) // flow.App ids start at 1
	w := d.Wants()
	for _, p := range w.TCPPorts {
		r.tcp[p] = append(r.tcp[p], id)
	}
	for _, p := range w.UDPPorts {
		r.udp[p] = append(r.udp[p], id)
	}
	for _, e := range w.EtherTypes {
		r.ether[e] = append(r.ether[e], id)
	}
	for _, p := range w.IPProtos {
		r.ipproto[p] = append(r.ipproto[p], id)
	}
	if w.Heuristic {
		r.heuristic = append(r.heuristic, id)
	}
	if w.TCPHandshake {
		r.handshake = append(r.handshake, id)
	}
}

// Dissectors returns the registered dissectors in order.
func (r *Registry) Dissectors() []Dissector { return r.ds }

// Name returns the name of the dissector with flow.App id, or "".
func (r *Registry) Name(id int16) string {
	if id <= 0 || int(id) > len(r.ds) {
		return ""
	}
	return r.ds[id-1].Name()
}

// Dispatch offers p to the dissectors that want it.
func (r *Registry) Dispatch(p *Packet, out Sink) {
	if p.Flow == nil {
		var cands []int16
		if p.HasIP() {
			cands = r.ipproto[p.IPProto]
		} else {
			cands = r.ether[p.EtherType]
		}
		for _, id := range cands {
			d := r.ds[id-1]
			if d.Probe(p) {
				r.counted = countingSink{out: out}
				d.Handle(p, &r.counted)
				if r.counted.n > 0 && !p.HasIP() && p.HasEth {
					// A link-layer protocol is never routed: the frame's
					// source is the device speaking it. Said only when the
					// dissector had news, which it rate-limits itself, so
					// the inventory is not locked per frame.
					out.Observe(Observation{Time: p.Time, MAC: p.SrcMAC, Attr: AttrProtocol, Value: d.Name(), Protocol: d.Name()})
				}
			}
		}
		return
	}
	f := p.Flow
	if f.Proto == capture.ProtoTCP && p.TCPFlags&capture.TCPSyn != 0 {
		for _, id := range r.handshake {
			r.ds[id-1].Handle(p, out)
		}
	}
	if len(p.Payload) == 0 {
		return
	}
	switch {
	case f.App > 0:
		r.ds[f.App-1].Handle(p, out)
		return
	case f.App == flow.AppNone:
		return
	}
	if f.Proto == capture.ProtoTCP && len(p.Payload) == 1 && p.TCPFlags&(capture.TCPSyn|capture.TCPFin) == 0 {
		// A TCP keep-alive probe (one octet below the window, RFC 1122
		// §4.2.3.6) is not the protocol's data: it must not use up the
		// tries of a flow that starts with idle keep-alives.
		return
	}
	ports := r.udp
	if f.Proto == capture.ProtoTCP {
		ports = r.tcp
	} else if f.Proto != capture.ProtoUDP {
		f.App = flow.AppNone
		return
	}
	if id := r.probe(p, ports[f.Server.Port()], nil); id > 0 {
		r.claim(p, id, out)
		return
	}
	if f.Client.Port() != f.Server.Port() {
		if id := r.probe(p, ports[f.Client.Port()], nil); id > 0 {
			r.claim(p, id, out)
			return
		}
	}
	if id := r.probe(p, r.heuristic, ports); id > 0 {
		r.claim(p, id, out)
		return
	}
	f.Tries++
	if f.Tries >= r.MaxTries {
		f.App = flow.AppNone
	}
}

// probe returns the first of cands whose Probe accepts p. Candidates that
// ports already nominated for this flow are skipped (they said no).
func (r *Registry) probe(p *Packet, cands []int16, ports map[uint16][]int16) int16 {
	var sp, cp []int16 // looked up once, not per candidate
	if ports != nil && len(cands) > 0 {
		sp, cp = ports[p.Flow.Server.Port()], ports[p.Flow.Client.Port()]
	}
	for _, id := range cands {
		if has(sp, id) || has(cp, id) {
			continue
		}
		if r.ds[id-1].Probe(p) {
			return id
		}
	}
	return 0
}

func has(ids []int16, id int16) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func (r *Registry) claim(p *Packet, id int16, out Sink) {
	f := p.Flow
	f.App = id
	d := r.ds[id-1]
	out.Observe(Observation{
		Time:     p.Time,
		IP:       f.Server.Addr(),
		Attr:     AttrProtocol,
		Value:    d.Name(),
		Protocol: d.Name(),
		Peer:     f.Client.Addr(),
	})
	d.Handle(p, out)
}
