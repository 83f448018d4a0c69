package ot

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"testing"

	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
)

// No public DeltaV capture exists and Wireshark has no DeltaV dissector:
// these tests use messages built from the wrapper layout that Apache PLC4X
// documented from captures of a DeltaV training system
// (src/site/asciidoc/protocols/delta-v/index.adoc, "The Wrapper
// Protocol": FA CE at 0, payload length at 2, type at 4, message id at 6,
// sender id at 8, timestamp at 10-12, 80 04 00 at 13-15 (00 44 00 on the
// connection types 3 and 4), payload, 2-byte checksum; acknowledgements
// have length 0 and repeat type and id), the payload types and their
// directions of its decoder (plc4j/protocols/delta-v PoC.java), and one
// message given there byte for byte (read-data.adoc, "0x0403 (before
// registration)").

// dvMsg builds a message: header, payload, a checksum (its algorithm is
// unknown and not checked).
func dvMsg(typ, id, sender uint16, payload []byte) []byte {
	b := []byte{0xfa, 0xce, 0, 0, 0, 0, 0, 0, 0, 0, 0x63, 0xb8, 0x54, 0x80, 0x04, 0x00}
	if typ == deltavConnect || typ == deltavConnected {
		b[13], b[14] = 0x00, 0x44
	}
	binary.BigEndian.PutUint16(b[2:], uint16(len(payload)))
	binary.BigEndian.PutUint16(b[4:], typ)
	binary.BigEndian.PutUint16(b[6:], id)
	binary.BigEndian.PutUint16(b[8:], sender)
	b = append(b, payload...)
	return append(b, 0x94, 0x17)
}

// dvData builds a data message of payload type pt with n more bytes.
func dvData(id, sender, pt uint16, n int) []byte {
	p := binary.BigEndian.AppendUint16(nil, pt)
	return dvMsg(deltavData, id, sender, append(p, make([]byte, n)...))
}

// dvPublished0403 is the data-change message of read-data.adoc, byte for
// byte: length 0x32, type 2, id 0x3346, sender 0x000b, payload type 0403.
var dvPublished0403 = []byte{
	0xfa, 0xce, 0x00, 0x32, 0x00, 0x02, 0x33, 0x46, 0x00, 0x0b, 0x63, 0xb8, 0x54, 0x80, 0x04, 0x00,
	0x04, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x52, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x04, 0x00, 0x00, 0x00, 0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x04,
	0x04, 0x8f, 0x17, 0xb8, 0x00, 0x2f, 0x01, 0x36, 0x04, 0x8f, 0x17, 0xb8,
	0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00,
	0x94, 0x17,
}

var (
	dvWS   = netip.MustParseAddrPort("10.4.0.21:18507")
	dvCtrl = netip.MustParseAddrPort("10.4.0.12:18507")
)

// dvStep is one datagram: from the workstation or not.
type dvStep struct {
	fromWS bool
	b      []byte
}

// dvSession is an operator station connecting to a controller, as the
// PLC4X sequence diagrams draw it: connection request and response, the
// version information both ways (each acknowledged), a subscription, a
// data change and a sync.
func dvSession() []dvStep {
	return []dvStep{
		{true, dvMsg(deltavConnect, 0x1000, 0x000d, nil)},
		{false, dvMsg(deltavConnected, 0x1000, 0x0002, nil)},
		{true, dvData(0x1001, 0x000d, 0x0501, 40)},
		{false, dvMsg(deltavData, 0x1001, 0x0002, nil)},
		{false, dvData(0x2001, 0x0002, 0x0502, 40)},
		{true, dvMsg(deltavData, 0x2001, 0x000d, nil)},
		{true, dvData(0x1002, 0x000d, 0x1b01, 60)},
		{false, dvData(0x2002, 0x0002, 0x1b02, 60)},
		{false, dvPublished0403},
		{true, dvMsg(deltavData, 0x3346, 0x000d, nil)},
		{false, dvMsg(deltavSync, 0x2003, 0x0002, nil)},
		{true, dvMsg(deltavSync, 0x1003, 0x000d, nil)},
	}
}

// dvRun plays steps on a flow whose client sent the first datagram.
func dvRun(t *testing.T, steps []dvStep) collect {
	t.Helper()
	cli, srv := dvWS, dvCtrl
	if !steps[0].fromWS {
		cli, srv = srv, cli
	}
	f := vndUDPFlow(cli, srv)
	d := NewDeltaV()
	var out collect
	for i, s := range steps {
		dir := flow.FromClient
		if s.fromWS != steps[0].fromWS {
			dir = flow.FromServer
		}
		p := vndPkt(f, dir, 0, s.b)
		if i == 0 && !d.Probe(p) {
			t.Fatalf("Probe rejected %x", s.b)
		}
		d.Handle(p, &out)
	}
	return out
}

// TestDeltaVPLC4XPublishedMessage: the message PLC4X gives byte for byte is
// accepted whole, and its payload type (0403, sent by controllers) makes
// its sender the controller.
func TestDeltaVPLC4XPublishedMessage(t *testing.T) {
	typ, payload, ok := deltavMessage(dvPublished0403)
	if !ok || typ != deltavData || len(payload) != 0x32 || binary.BigEndian.Uint16(payload) != 0x0403 {
		t.Fatalf("deltavMessage = %d, %d bytes, %v", typ, len(payload), ok)
	}
	got := vndFacts(dvRun(t, []dvStep{{false, dvPublished0403}}))
	for k, w := range map[string][]string{
		"10.4.0.12 role":    {RoleDeltaVController},
		"10.4.0.12 vendor":  {"Emerson"},
		"10.4.0.12 service": {"deltav:0403 data-change"},
		"10.4.0.21 role":    {RoleDeltaVWorkstation},
	} {
		if !slices.Equal(got[k], w) {
			t.Errorf("%s: got %q, want %q", k, got[k], w)
		}
	}
}

// TestDeltaVSpecBuilt: roles, vendor and the payload types of a session,
// whichever side started the flow; acknowledgements and syncs say nothing.
func TestDeltaVSpecBuilt(t *testing.T) {
	session := dvSession()
	for _, steps := range [][]dvStep{session, session[4:]} {
		out := dvRun(t, steps)
		got := vndFacts(out)
		wantServices := []string{"deltav:0501 workstation-version-info", "deltav:0502 controller-version-info",
			"deltav:1b01 subscribe-request", "deltav:1b02 subscribe-reply", "deltav:0403 data-change"}
		if len(steps) != len(session) {
			wantServices = wantServices[1:]
		}
		for k, w := range map[string][]string{
			"10.4.0.12 role":    {RoleDeltaVController},
			"10.4.0.12 vendor":  {"Emerson"},
			"10.4.0.12 service": wantServices,
			"10.4.0.21 role":    {RoleDeltaVWorkstation},
		} {
			if !slices.Equal(got[k], w) {
				t.Errorf("%d steps, %s: got %q, want %q", len(steps), k, got[k], w)
			}
		}
		for _, o := range out {
			if o.Attr == dissect.AttrService && o.Peer != dvWS.Addr() {
				t.Errorf("service %q with peer %s", o.Value, o.Peer)
			}
		}
		vndOnce(t, out, 1)
	}
}

// TestDeltaVConnectionResponseSpecBuilt: a connection response with a payload is
// the controller's; its empty acknowledgement and an empty request are not
// taken for one.
func TestDeltaVConnectionResponseSpecBuilt(t *testing.T) {
	got := vndFacts(dvRun(t, []dvStep{
		{true, dvMsg(deltavConnect, 1, 0x0d, nil)},
		{true, dvMsg(deltavConnected, 1, 0x0d, nil)},
	}))
	if len(got) != 0 {
		t.Errorf("empty connection messages gave %v", got)
	}
	got = vndFacts(dvRun(t, []dvStep{
		{true, dvMsg(deltavConnect, 1, 0x0d, nil)},
		{false, dvMsg(deltavConnected, 1, 0x02, []byte{0, 1, 2, 3})},
	}))
	if w := []string{RoleDeltaVController}; !slices.Equal(got["10.4.0.12 role"], w) {
		t.Errorf("controller role %q, want %q", got["10.4.0.12 role"], w)
	}
	if w := []string{RoleDeltaVWorkstation}; !slices.Equal(got["10.4.0.21 role"], w) {
		t.Errorf("workstation role %q, want %q", got["10.4.0.21 role"], w)
	}
}

// TestDeltaVUnusualPort: a registry finds DeltaV on ports other than
// 18507 by its payload.
func TestDeltaVUnusualPort(t *testing.T) {
	reg := dissect.NewRegistry(NewDeltaV())
	f := vndUDPFlow(netip.MustParseAddrPort("10.4.0.21:40001"), netip.MustParseAddrPort("10.4.0.12:40002"))
	var out collect
	reg.Dispatch(vndPkt(f, flow.FromServer, 0, dvPublished0403), &out)
	got := vndFacts(out)
	if w := []string{"deltav"}; !slices.Equal(got["10.4.0.12 protocol"], w) {
		t.Errorf("protocol %q, want %q", got["10.4.0.12 protocol"], w)
	}
	if w := []string{RoleDeltaVController}; !slices.Equal(got["10.4.0.12 role"], w) {
		t.Errorf("role %q, want %q", got["10.4.0.12 role"], w)
	}
}

// TestDeltaVNotDeltaV: other traffic on 18507 is not taken.
func TestDeltaVNotDeltaV(t *testing.T) {
	long := slices.Clone(dvPublished0403)
	long = append(long, 0)
	badMagic := slices.Clone(dvPublished0403)
	badMagic[1] = 0xcf
	badType := slices.Clone(dvPublished0403)
	badType[5] = 0x05
	badConst := slices.Clone(dvPublished0403)
	badConst[15] = 0x01
	badConst2 := slices.Clone(dvPublished0403)
	badConst2[14] = 0x05
	dns := []byte{0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 3, 'w', 'w', 'w', 0, 0, 1, 0, 1}
	for _, b := range [][]byte{long, long[:len(long)-2], badMagic, badType, badConst, badConst2, dns, dvPublished0403[:17]} {
		if NewDeltaV().Probe(vndPkt(vndUDPFlow(dvWS, dvCtrl), flow.FromClient, 0, b)) {
			t.Errorf("Probe(%x) = true", b)
		}
	}
	if NewDeltaV().Probe(vndPkt(tcpFlow(dvWS, dvCtrl), flow.FromClient, 0, dvPublished0403)) {
		t.Error("Probe accepted a TCP segment")
	}
}

// TestDeltaVTruncated offers every prefix of every message.
func TestDeltaVTruncated(t *testing.T) {
	for _, s := range dvSession() {
		for n := 0; n <= len(s.b); n++ {
			vndFuzz(t, NewDeltaV(), vndUDPFlow(dvWS, dvCtrl), s.b[:n], flow.FromClient, n)
		}
	}
}

// TestDeltaVAllocs: steady data changes and their acknowledgements
// allocate nothing.
func TestDeltaVAllocs(t *testing.T) {
	d := NewDeltaV()
	f := vndUDPFlow(dvCtrl, dvWS)
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	pc := vndPkt(f, flow.FromClient, 0, dvPublished0403)
	ps := vndPkt(f, flow.FromServer, 0, dvMsg(deltavData, 0x3346, 0x000d, nil))
	step := func() {
		d.Handle(pc, sink)
		d.Handle(ps, sink)
	}
	step()
	if n := testing.AllocsPerRun(1000, step); n != 0 {
		t.Errorf("%v allocations per exchange", n)
	}
}

// FuzzDeltaV feeds arbitrary datagrams.
func FuzzDeltaV(f *testing.F) {
	for _, s := range dvSession() {
		f.Add(s.b, uint8(0), uint8(len(s.b)))
	}
	f.Fuzz(func(t *testing.T, b []byte, mode, cut uint8) {
		vndFuzz(t, NewDeltaV(), vndUDPFlow(dvWS, dvCtrl), b, flow.Dir(mode&1), int(cut))
	})
}

// BenchmarkDeltaVHandle measures a data change and its acknowledgement.
func BenchmarkDeltaVHandle(b *testing.B) {
	d := NewDeltaV()
	f := vndUDPFlow(dvCtrl, dvWS)
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	pc := vndPkt(f, flow.FromClient, 0, dvPublished0403)
	ps := vndPkt(f, flow.FromServer, 0, dvMsg(deltavData, 0x3346, 0x000d, nil))
	b.ReportAllocs()
	for b.Loop() {
		d.Handle(pc, sink)
		d.Handle(ps, sink)
	}
}
