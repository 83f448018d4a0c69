package dissect

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/flow"
)

// fake is a dissector that claims payloads starting with its magic.
type fake struct {
	name    string
	magic   string
	wants   Wants
	handled int
	probed  int
	emit    bool // Handle emits one observation
}

func (f *fake) Name() string { return f.name }
func (f *fake) Wants() Wants { return f.wants }
func (f *fake) Probe(p *Packet) bool {
	f.probed++
	return bytes.HasPrefix(p.Payload, []byte(f.magic))
}
func (f *fake) Handle(p *Packet, out Sink) {
	f.handled++
	if f.emit {
		out.Observe(Observation{Attr: "fake.seen", Value: f.name})
	}
}

type obs []Observation

func (o *obs) Observe(x Observation) { *o = append(*o, x) }

func tcpPacket(fl *flow.Flow, payload string) *Packet {
	cp := &capture.Packet{SrcIP: fl.Client.Addr(), DstIP: fl.Server.Addr(), IPProto: capture.ProtoTCP,
		SrcPort: fl.Client.Port(), DstPort: fl.Server.Port(), Payload: []byte(payload)}
	return &Packet{Packet: cp, Flow: fl}
}

func newFlow(sport uint16) *flow.Flow {
	return &flow.Flow{Proto: capture.ProtoTCP,
		Client: netip.MustParseAddrPort("10.0.0.1:50000"), Server: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.2"), sport)}
}

// A port only nominates: the payload decides, and the claim is reported
// as the server speaking the protocol.
func TestRegistryConfirmsFromPayload(t *testing.T) {
	mb := &fake{name: "modbus", magic: "MB", wants: Wants{TCPPorts: []uint16{502}}}
	r := NewRegistry(mb)
	var o obs
	f := newFlow(502)
	for i := 0; i < DefaultMaxTries; i++ {
		r.Dispatch(tcpPacket(f, "GET / HTTP/1.1"), &o)
	}
	if f.App != flow.AppNone || mb.handled != 0 || len(o) != 0 {
		t.Fatalf("HTTP on 502 claimed: App=%d handled=%d obs=%v", f.App, mb.handled, o)
	}
	f = newFlow(502)
	r.Dispatch(tcpPacket(f, "MB..."), &o)
	r.Dispatch(tcpPacket(f, "anything after the claim"), &o)
	if f.App != 1 || mb.handled != 2 {
		t.Fatalf("App=%d handled=%d, want claim by dissector 1 and both packets handled", f.App, mb.handled)
	}
	if len(o) != 1 || o[0].Attr != AttrProtocol || o[0].Value != "modbus" || o[0].IP != f.Server.Addr() || o[0].Peer != f.Client.Addr() {
		t.Fatalf("claim observation %+v", o)
	}
}

// A protocol on an unusual port is found by the heuristic dissectors, and a
// dissector nominated by port is not probed twice.
func TestRegistryHeuristic(t *testing.T) {
	a := &fake{name: "a", magic: "AA", wants: Wants{TCPPorts: []uint16{1000}, Heuristic: true}}
	b := &fake{name: "b", magic: "BB", wants: Wants{Heuristic: true}}
	r := NewRegistry(a, b)
	var o obs
	f := newFlow(1000)
	r.Dispatch(tcpPacket(f, "BB"), &o)
	if f.App != 2 {
		t.Fatalf("App=%d, want 2 (b by heuristic)", f.App)
	}
	if a.probed != 1 {
		t.Fatalf("a probed %d times, want once (by port only)", a.probed)
	}
	f = newFlow(4242)
	r.Dispatch(tcpPacket(f, "AA"), &o)
	if f.App != 1 {
		t.Fatalf("App=%d, want 1 (a on an unusual port)", f.App)
	}
}

// Frames without a flow go by EtherType, and packets without payload are
// not offered (save the handshake to those that ask for it).
func TestRegistryEtherTypeAndHandshake(t *testing.T) {
	arp := &fake{name: "arp", wants: Wants{EtherTypes: []uint16{0x0806}}, emit: true}
	syn := &fake{name: "p0f", magic: "zz", wants: Wants{TCPHandshake: true}}
	r := NewRegistry(arp, syn)
	var o obs
	src := capture.MAC{0, 1, 2, 3, 4, 5}
	r.Dispatch(&Packet{Packet: &capture.Packet{HasEth: true, SrcMAC: src, EtherType: 0x0806}}, &o)
	r.Dispatch(&Packet{Packet: &capture.Packet{HasEth: true, EtherType: 0x88cc}}, &o)
	if arp.handled != 1 || arp.probed != 1 {
		t.Fatalf("arp probed %d handled %d, want 1 and 1", arp.probed, arp.handled)
	}
	if len(o) != 2 || o[1].Attr != AttrProtocol || o[1].MAC != src || o[1].Value != "arp" {
		t.Fatalf("observations %+v, want the dissector's then arp from %s", o, src)
	}
	// A frame the dissector has nothing new about does not repeat the
	// protocol to the inventory.
	arp.emit = false
	r.Dispatch(&Packet{Packet: &capture.Packet{HasEth: true, SrcMAC: src, EtherType: 0x0806}}, &o)
	if len(o) != 2 {
		t.Fatalf("protocol repeated for a frame without news: %+v", o[2:])
	}
	o = nil
	f := newFlow(80)
	p := tcpPacket(f, "")
	p.TCPFlags = capture.TCPSyn
	r.Dispatch(p, &o)
	if syn.handled != 1 || f.Tries != 0 {
		t.Fatalf("handshake handled %d, tries %d", syn.handled, f.Tries)
	}
}

func TestRegistryDispatchAllocs(t *testing.T) {
	mb := &fake{name: "modbus", magic: "MB", wants: Wants{TCPPorts: []uint16{502}}}
	r := NewRegistry(mb)
	f := newFlow(502)
	var o obs
	r.Dispatch(tcpPacket(f, "MB"), &o)
	p := tcpPacket(f, "MB data")
	sink := SinkFunc(func(Observation) {})
	if n := testing.AllocsPerRun(1000, func() { r.Dispatch(p, sink) }); n != 0 {
		t.Fatalf("Dispatch on a claimed flow allocates %v times", n)
	}
}

func TestStream(t *testing.T) {
	var s Stream
	s.Push(100, []byte("hello "))
	s.Push(106, []byte("world"))
	if got := string(s.Bytes()); got != "hello world" {
		t.Fatalf("in order: %q", got)
	}
	s.Push(103, []byte("lo world!!")) // retransmission overlapping the end
	if got := string(s.Bytes()); got != "hello world!!" {
		t.Fatalf("overlap: %q", got)
	}
	s.Consume(6)
	if got := string(s.Bytes()); got != "world!!" {
		t.Fatalf("consume: %q", got)
	}
	if !s.Push(200, []byte("new")) || string(s.Bytes()) != "new" {
		t.Fatalf("gap not restarted: %q", s.Bytes())
	}
	s.Push(203, []byte("x")) // the next segment after a restart follows on
	if string(s.Bytes()) != "newx" {
		t.Fatalf("after restart: %q", s.Bytes())
	}
	small := Stream{Max: 8}
	small.Push(1, []byte("12345"))
	if !small.Push(6, []byte("6789")) || len(small.Bytes()) > 8 {
		t.Fatalf("bound not kept: %q", small.Bytes())
	}
	big := Stream{Max: 4}
	big.Push(1, []byte("abcdefgh"))
	if string(big.Bytes()) != "efgh" {
		t.Fatalf("oversized segment: %q", big.Bytes())
	}
	if big.Push(9, []byte("i")) != true || string(big.Bytes()) != "i" {
		t.Fatalf("full buffer not restarted at the next in-order segment: %q", big.Bytes())
	}
	if big.Push(10, []byte("j")) || string(big.Bytes()) != "ij" {
		t.Fatalf("sequence lost after an oversized segment: %q", big.Bytes())
	}
}
