package ot

import (
	"encoding/binary"
	"fmt"
	"github.com/passivesensor/sensor/internal/testcorpus"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
)

var modbusCorpus = []string{
	"ICS-Pcaps__LocalPCAP__ModbusFloat.pcap",
	"ICS-Pcaps__LocalPCAP__modbusAnalog.pcap",
	"ICS-Pcaps__MODBUS__modbus-encapsulated-transport.pcap",
	"ICS-Security-Tools__pcaps__ModbusTCP__ModbusTCP.pcap",
	"ICS-Security-Tools__pcaps__ModbusTCP__mb2.pcap",
	"zeek__testing__btest__Traces__modbus__modbus-eit.pcap",
}

// adu builds a Modbus/TCP ADU.
func adu(tid uint16, unit uint8, pdu ...byte) []byte {
	b := make([]byte, 7, 7+len(pdu))
	binary.BigEndian.PutUint16(b, tid)
	binary.BigEndian.PutUint16(b[4:], uint16(len(pdu)+1))
	b[6] = unit
	return append(b, pdu...)
}

// devIDResponse builds a Read Device Identification response holding objs
// (id, value pairs).
func devIDResponse(tid uint16, unit uint8, objs ...any) []byte {
	pdu := []byte{fcMEI, meiDeviceID, 1, 0x81, 0, 0, byte(len(objs) / 2)}
	for i := 0; i+1 < len(objs); i += 2 {
		v := objs[i+1].(string)
		pdu = append(pdu, byte(objs[i].(int)), byte(len(v)))
		pdu = append(pdu, v...)
	}
	return adu(tid, unit, pdu...)
}

var (
	cliAP = netip.MustParseAddrPort("10.1.1.10:40001")
	srvAP = netip.MustParseAddrPort("10.1.1.20:502")
)

// tcpFlow returns a fresh TCP flow between cli and srv.
func tcpFlow(cli, srv netip.AddrPort) *flow.Flow {
	return &flow.Flow{Proto: capture.ProtoTCP, Client: cli, Server: srv}
}

// pkt returns a packet of f in direction dir.
func pkt(f *flow.Flow, dir flow.Dir, seq uint32, payload []byte) *dissect.Packet {
	src, dst := f.Client, f.Server
	if dir == flow.FromServer {
		src, dst = dst, src
	}
	return &dissect.Packet{
		Packet: &capture.Packet{
			SrcIP: src.Addr(), DstIP: dst.Addr(), SrcPort: src.Port(), DstPort: dst.Port(),
			IPProto: capture.ProtoTCP, TCPSeq: seq, Payload: payload,
		},
		Flow: f, Dir: dir,
	}
}

// triple is what tshark and the dissector both say of a request.
type triple struct {
	server string
	unit   int
	fc     int
}

// TestModbusCorpus compares, on every Modbus capture of the corpus, the
// (server, unit id, function code) of each request read through the
// sensor's pipeline with tshark's, and checks the observations made of them.
func TestModbusCorpus(t *testing.T) {
	for _, name := range modbusCorpus {
		t.Run(name, func(t *testing.T) {
			path := testcorpus.File(t, name)
			want := map[triple]bool{}
			for _, r := range testcorpus.Tshark(t, path, "modbus && mbtcp && tcp.dstport==502", "ip.dst", "mbtcp.unit_id", "modbus.func_code") {
				units, fcs := strings.Split(r[1], ","), strings.Split(r[2], ",")
				if len(units) != len(fcs) {
					t.Fatalf("tshark row %q: %d unit ids for %d function codes", r, len(units), len(fcs))
				}
				for i := range units {
					u, err1 := strconv.Atoi(units[i])
					fc, err2 := strconv.Atoi(fcs[i])
					if err1 != nil || err2 != nil {
						t.Fatalf("tshark row %q: not numbers", r)
					}
					want[triple{r[0], u, fc}] = true
				}
			}
			if len(want) == 0 {
				t.Fatalf("tshark found no Modbus request in %s", name)
			}
			m := NewModbus()
			got := map[triple]bool{}
			adus := 0
			m.onADU = func(p *dissect.Packet, a []byte) {
				adus++
				if p.DstPort == ModbusPort {
					got[triple{p.DstIP.String(), int(a[6]), int(a[7])}] = true
				}
			}
			out := runFile(t, path, m)
			if !mapsEqual(got, want) {
				t.Errorf("(server, unit, function) of requests:\n got %v\nwant %v", keys(got), keys(want))
			}

			// Observations: services per server equal the function codes,
			// unit ids per server equal tshark's, roles on both sides.
			wantSvc, wantUnits := map[string]bool{}, map[string][]int{}
			for k := range want {
				wantSvc[k.server+" "+strconv.Itoa(k.fc)] = true
				if !slices.Contains(wantUnits[k.server], k.unit) {
					wantUnits[k.server] = append(wantUnits[k.server], k.unit)
				}
			}
			gotSvc, gotUnits, roles := map[string]bool{}, map[string]string{}, map[string]bool{}
			perFlow := map[string]int{}
			for _, o := range out {
				switch o.Attr {
				case dissect.AttrService:
					fc, _, _ := strings.Cut(strings.TrimPrefix(o.Value, "modbus:"), " ")
					fc, _, _ = strings.Cut(fc, "/")
					gotSvc[o.IP.String()+" "+fc] = true
					perFlow[o.IP.String()+" "+o.Peer.String()+" "+o.Value]++
				case AttrModbusUnitIDs:
					gotUnits[o.IP.String()] = o.Value
				case dissect.AttrRole:
					roles[o.Value] = true
				}
			}
			if !mapsEqual(gotSvc, wantSvc) {
				t.Errorf("services: got %v, want %v", keys(gotSvc), keys(wantSvc))
			}
			for srv, us := range wantUnits {
				slices.Sort(us)
				var s []string
				for _, u := range us {
					s = append(s, strconv.Itoa(u))
				}
				if gotUnits[srv] != strings.Join(s, ",") {
					t.Errorf("unit ids of %s: got %q, want %q", srv, gotUnits[srv], strings.Join(s, ","))
				}
			}
			if !roles[RoleModbusServer] || !roles[RoleModbusClient] {
				t.Errorf("roles seen %v, want both", roles)
			}
			// Each service is emitted at most once per flow; flows are few
			// compared with requests.
			n := 0
			for _, c := range perFlow {
				n += c
			}
			t.Logf("%d ADUs, %d observations, %d service observations", adus, len(out), n)
			if len(out) > adus+8 && adus > 100 {
				t.Errorf("%d observations for %d ADUs: not once per flow", len(out), adus)
			}
		})
	}
}

func mapsEqual[K comparable](a, b map[K]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func keys[K comparable](m map[K]bool) []string {
	var s []string
	for k := range m {
		s = append(s, fmt.Sprint(k))
	}
	slices.Sort(s)
	return s
}

// seg is one TCP segment of a test capture.
type seg struct {
	FromServer bool
	Payload    []byte
}

// writePcap writes one TCP conversation (handshake, then segs) between cli
// and srv to a pcap file and returns its path.
func writePcap(t *testing.T, cli, srv netip.AddrPort, segs []seg) string {
	t.Helper()
	return conversation(t, false, cli, srv, segs)
}

// TestModbusDeviceIDTshark writes a Read Device Identification exchange,
// reads it with the sensor's pipeline and compares the identity learnt
// with the object values tshark reads.
func TestModbusDeviceIDTshark(t *testing.T) {
	testcorpus.NeedTshark(t)
	resp := devIDResponse(7, 1,
		objVendorName, "Schneider Electric",
		objProductCode, "BMX P34 2020",
		objMajorMinorRevision, "v2.70",
		objVendorURL, "http://www.schneider-electric.com",
		objProductName, "Modicon M340",
		objModelName, "BMX P34 2020 CPU",
		objUserApplicationName, "PUMPSTATION1")
	path := writePcap(t, cliAP, srvAP, []seg{
		{false, adu(7, 1, fcMEI, meiDeviceID, 1, 0)},
		{true, resp},
	})
	rows := testcorpus.Tshark(t, path, "modbus.object_str_value", "modbus.object_str_value")
	if len(rows) != 1 {
		t.Fatalf("tshark: %d rows with object values, want 1", len(rows))
	}
	vals := strings.Split(rows[0][0], ",")
	if len(vals) != 7 {
		t.Fatalf("tshark object values %q: want 7", vals)
	}
	attrs := []string{dissect.AttrVendor, AttrModbusProductCode, dissect.AttrFirmware, AttrModbusVendorURL, AttrModbusProductName, dissect.AttrModel, dissect.AttrName}
	out := runFile(t, path, NewModbus())
	got := map[string][]string{}
	for _, o := range out {
		if o.IP != srvAP.Addr() && o.Attr != dissect.AttrRole {
			t.Errorf("observation %+v is not about the server", o)
		}
		got[o.Attr] = append(got[o.Attr], o.Value)
	}
	for i, a := range attrs {
		if len(got[a]) != 1 || got[a][0] != vals[i] {
			t.Errorf("%s: got %q, want [%q] (tshark)", a, got[a], vals[i])
		}
	}
	if got[AttrModbusDeviceIDRequest] == nil || got[dissect.AttrService][0] != "modbus:43/14 read-device-identification" {
		t.Errorf("device identification request not flagged: %v", got)
	}
	if got[dissect.AttrClass] != nil {
		t.Errorf("class guessed: %v", got[dissect.AttrClass])
	}
}

// TestModbusProductNameAsModel: without ModelName, ProductName is the model.
func TestModbusProductNameAsModel(t *testing.T) {
	m := NewModbus()
	f := tcpFlow(cliAP, srvAP)
	var out collect
	m.Handle(pkt(f, flow.FromServer, 1, devIDResponse(1, 1, objVendorName, "ACME\x00\x00", objProductName, " PLC-9 ")), &out)
	got := map[string]string{}
	for _, o := range out {
		got[o.Attr] = o.Value
	}
	if got[dissect.AttrModel] != "PLC-9" || got[dissect.AttrVendor] != "ACME" {
		t.Errorf("got %v, want model PLC-9, vendor ACME", got)
	}
}

// TestModbusNotModbusOn502: other traffic on port 502 is not claimed.
func TestModbusNotModbusOn502(t *testing.T) {
	m := NewModbus()
	for _, payload := range [][]byte{
		[]byte("GET / HTTP/1.1\r\nHost: plc\r\n\r\n"),
		[]byte("HTTP/1.1 200 OK\r\n\r\n"),
		{0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03},
		adu(1, 1, 0),               // function code 0
		adu(1, 250, 3, 0, 0, 0, 1), // reserved unit id
		append(adu(1, 1, 3, 0, 0, 0, 1), "garbage after"...),
	} {
		f := tcpFlow(cliAP, srvAP)
		for _, dir := range []flow.Dir{flow.FromClient, flow.FromServer} {
			if m.Probe(pkt(f, dir, 1, payload)) {
				t.Errorf("Probe(%q, dir %d) = true on port 502", payload, dir)
			}
		}
	}
	// Through the registry, an HTTP conversation on 502 is not claimed.
	path := writePcap(t, cliAP, srvAP, []seg{
		{false, []byte("GET / HTTP/1.1\r\nHost: plc\r\n\r\n")},
		{true, []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")},
	})
	if out := runFile(t, path, NewModbus()); len(out) != 0 {
		t.Errorf("HTTP on 502: observations %v, want none", out)
	}
	// Modbus/TCP on 502 is.
	if !m.Probe(pkt(tcpFlow(cliAP, srvAP), flow.FromClient, 1, adu(1, 1, 3, 0, 0, 0, 1))) {
		t.Error("Probe rejected a read holding registers request on 502")
	}
}

// TestModbusHeuristic: on another port a flow is claimed only when the
// answer matches the request.
func TestModbusHeuristic(t *testing.T) {
	cli := netip.MustParseAddrPort("10.1.1.10:40002")
	srv := netip.MustParseAddrPort("10.1.1.20:5020")
	req := adu(9, 1, 3, 0, 0, 0, 2)
	cases := []struct {
		name  string
		segs  []seg
		claim bool
	}{
		{"match", []seg{{false, req}, {true, adu(9, 1, 3, 4, 0, 1, 0, 2)}}, true},
		{"exception", []seg{{false, req}, {true, adu(9, 1, 0x83, 2)}}, true},
		{"other tid", []seg{{false, req}, {true, adu(10, 1, 3, 4, 0, 1, 0, 2)}}, false},
		{"other fc", []seg{{false, req}, {true, adu(9, 1, 4, 4, 0, 1, 0, 2)}}, false},
		{"bad request length", []seg{{false, adu(9, 1, 3, 0, 0, 0, 2, 0)}, {true, adu(9, 1, 3, 4, 0, 1, 0, 2)}}, false},
		{"answer only", []seg{{true, adu(9, 1, 3, 4, 0, 1, 0, 2)}, {true, adu(10, 1, 3, 4, 0, 1, 0, 2)}}, false},
		{"text", []seg{{false, []byte("hello there\n")}, {true, []byte("hi\n")}}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := runFile(t, writePcap(t, cli, srv, c.segs), NewModbus())
			claimed := false
			for _, o := range out {
				if o.Attr == dissect.AttrProtocol {
					claimed = true
				}
			}
			if claimed != c.claim {
				t.Fatalf("claimed = %v, want %v (%v)", claimed, c.claim, out)
			}
			if c.claim {
				has := false
				for _, o := range out {
					has = has || (o.Attr == dissect.AttrService && o.Value == "modbus:3 read-holding-registers" && o.IP == srv.Addr() && o.Peer == cli.Addr())
				}
				if !has {
					t.Errorf("the probed request's service was not reported: %v", out)
				}
			}
		})
	}
}

// TestModbusSegments: an ADU split over segments is read whole, several
// ADUs in a segment are all read, and a gap is recovered from.
func TestModbusSegments(t *testing.T) {
	a1 := adu(1, 1, 3, 0, 0, 0, 10)
	a2 := adu(2, 2, 16, 0, 1, 0, 2, 4, 0, 1, 0, 2)
	a3 := adu(3, 3, 6, 0, 1, 0, 7)
	stream := append(append(append([]byte(nil), a1...), a2...), a3...)
	for _, cut := range [][]int{
		{len(stream)},              // all in one segment
		{3, 7, 9, 20, len(stream)}, // split everywhere
		{len(a1) + 2, len(stream) - 1, len(stream)},
	} {
		m := NewModbus()
		var got [][]byte
		m.onADU = func(_ *dissect.Packet, a []byte) { got = append(got, slices.Clone(a)) }
		f := tcpFlow(cliAP, srvAP)
		var out collect
		prev := 0
		for _, c := range cut {
			m.Handle(pkt(f, flow.FromClient, uint32(100+prev), stream[prev:c]), &out)
			prev = c
		}
		if len(got) != 3 || !slices.Equal(got[0], a1) || !slices.Equal(got[1], a2) || !slices.Equal(got[2], a3) {
			t.Errorf("cuts %v: read %x, want %x %x %x", cut, got, a1, a2, a3)
		}
		units := ""
		for _, o := range out {
			if o.Attr == AttrModbusUnitIDs {
				units = o.Value
			}
		}
		if units != "1,2,3" {
			t.Errorf("cuts %v: unit ids %q, want 1,2,3", cut, units)
		}
	}

	// A gap (lost segment) mid-ADU: the rest is dropped, the next ADU read.
	m := NewModbus()
	var got [][]byte
	m.onADU = func(_ *dissect.Packet, a []byte) { got = append(got, slices.Clone(a)) }
	f := tcpFlow(cliAP, srvAP)
	var out collect
	m.Handle(pkt(f, flow.FromClient, 100, a1[:5]), &out)
	m.Handle(pkt(f, flow.FromClient, 100+uint32(len(a1)), a2[:8]), &out) // lost a1[5:]
	m.Handle(pkt(f, flow.FromClient, 100+uint32(len(a1)+8), a2[8:]), &out)
	m.Handle(pkt(f, flow.FromClient, 500, a2[4:]), &out) // gap into the middle of an ADU
	m.Handle(pkt(f, flow.FromClient, 500+uint32(len(a2)-4), a3), &out)
	if len(got) != 2 || !slices.Equal(got[0], a2) || !slices.Equal(got[1], a3) {
		t.Errorf("after gaps: read %x, want %x %x", got, a2, a3)
	}
}

// TestModbusOncePerFlow: repeated requests emit nothing new; exceptions
// are counted and reported once per function.
func TestModbusOncePerFlow(t *testing.T) {
	m := NewModbus()
	f := tcpFlow(cliAP, srvAP)
	var out collect
	seq := [2]uint32{}
	send := func(dir flow.Dir, b []byte) {
		m.Handle(pkt(f, dir, seq[dir], b), &out)
		seq[dir] += uint32(len(b))
	}
	for i := range 50 {
		send(flow.FromClient, adu(uint16(i), 1, 5, 0, 1, 0xff, 0))
		send(flow.FromServer, adu(uint16(i), 1, 0x85, 2))
		send(flow.FromClient, adu(uint16(i), 1, 8, 0, 0, 0x12, 0x34))
	}
	if ModbusExceptions(f) != 50 {
		t.Errorf("exceptions counted %d, want 50", ModbusExceptions(f))
	}
	count := map[string]int{}
	for _, o := range out {
		count[o.Attr+"="+o.Value]++
	}
	want := map[string]int{
		"role=modbus-server":                      1,
		"role=modbus-client":                      1,
		"modbus.unit_ids=1":                       1,
		"service=modbus:5 write-single-coil":      1,
		"modbus.write=modbus:5 write-single-coil": 1,
		"service=modbus:8 diagnostics":            1,
		"modbus.diagnostics=modbus:8 diagnostics": 1,
		"modbus.exception=modbus:5 write-single-coil exception 2 illegal-data-address": 1,
	}
	if fmt.Sprint(count) != fmt.Sprint(want) {
		t.Errorf("observations:\n got %v\nwant %v", count, want)
	}
}

func modbusSeeds() [][]byte {
	return [][]byte{
		adu(1, 1, 3, 0, 0, 0, 10),
		adu(1, 1, 3, 4, 0, 1, 0, 2),
		adu(2, 255, 0x81, 1),
		adu(3, 1, 16, 0, 1, 0, 2, 4, 0, 1, 0, 2),
		adu(4, 0, fcMEI, meiDeviceID, 1, 0),
		devIDResponse(4, 0, objVendorName, "V", objProductName, "P", objModelName, "M", objUserApplicationName, "A"),
		append(adu(5, 1, 1, 0, 0, 0, 8), adu(6, 1, 2, 0, 0, 0, 8)...),
	}
}

// TestModbusTruncated offers every prefix of every seed, in both
// directions, on port 502 and elsewhere.
func TestModbusTruncated(t *testing.T) {
	m := NewModbus()
	for _, s := range modbusSeeds() {
		for n := 0; n <= len(s); n++ {
			for _, srv := range []netip.AddrPort{srvAP, netip.MustParseAddrPort("10.1.1.20:6000")} {
				for _, dir := range []flow.Dir{flow.FromClient, flow.FromServer} {
					f := tcpFlow(cliAP, srv)
					p := pkt(f, dir, 1, s[:n])
					m.Probe(p)
					m.Handle(p, dissect.SinkFunc(func(dissect.Observation) {}))
				}
			}
		}
	}
	// Device identification objects whose lengths run past the end.
	r := devIDResponse(1, 1, objVendorName, "Vendor", objModelName, "Model")
	for n := 15; n < len(r); n++ {
		b := slices.Clone(r[:n])
		binary.BigEndian.PutUint16(b[4:], uint16(n-6))
		m.Handle(pkt(tcpFlow(cliAP, srvAP), flow.FromServer, 1, b), dissect.SinkFunc(func(dissect.Observation) {}))
	}
}

// TestModbusAllocs: a claimed flow in steady state allocates nothing per
// packet.
func TestModbusAllocs(t *testing.T) {
	m := NewModbus()
	f := tcpFlow(cliAP, srvAP)
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	req := adu(1, 1, 3, 0, 0, 0, 10)
	resp := adu(1, 1, 3, 4, 0, 1, 0, 2)
	two := append(slices.Clone(req), req...)
	seq := [2]uint32{}
	pc, ps, p2 := pkt(f, flow.FromClient, 0, req), pkt(f, flow.FromServer, 0, resp), pkt(f, flow.FromClient, 0, two)
	step := func() {
		pc.TCPSeq = seq[0]
		m.Handle(pc, sink)
		seq[0] += uint32(len(req))
		ps.TCPSeq = seq[1]
		m.Handle(ps, sink)
		seq[1] += uint32(len(resp))
		p2.TCPSeq = seq[0]
		m.Handle(p2, sink)
		seq[0] += uint32(len(two))
	}
	step() // emits, creates the state
	if !m.Probe(pc) {
		t.Fatal("Probe rejected a request")
	}
	if n := testing.AllocsPerRun(1000, step); n != 0 {
		t.Errorf("Handle: %v allocations per 3 packets, want 0", n)
	}
	if n := testing.AllocsPerRun(1000, func() { m.Probe(pc) }); n != 0 {
		t.Errorf("Probe: %v allocations, want 0", n)
	}
}

// FuzzModbus feeds arbitrary segments to Probe and Handle, on 502 and on
// another port, in both directions, split in two.
func FuzzModbus(f *testing.F) {
	for _, s := range modbusSeeds() {
		f.Add(s, uint8(0), uint8(3))
	}
	f.Fuzz(func(t *testing.T, b []byte, mode, cut uint8) {
		m := NewModbus()
		srv := srvAP
		if mode&2 != 0 {
			srv = netip.MustParseAddrPort("10.1.1.20:6000")
		}
		fuzzSegments(t, m, tcpFlow(cliAP, srv), b, flow.Dir(mode&1), int(cut), valuesWithin(t, 4*maxText+64))
	})
}

// TestAll: All gives fresh instances, and a registry of them claims the
// Modbus flows of a corpus capture.
func TestAll(t *testing.T) {
	a, b := All(), All()
	if len(a) == 0 || a[0].Name() != "modbus" {
		t.Fatalf("All() = %v, want modbus first", a)
	}
	if a[0] == b[0] {
		t.Error("two calls of All share the Modbus instance")
	}
	out := runFile(t, testcorpus.File(t, "ICS-Pcaps__LocalPCAP__modbusAnalog.pcap"), All()...)
	claimed := 0
	for _, o := range out {
		if o.Attr == dissect.AttrProtocol && o.Value == "modbus" {
			claimed++
		}
	}
	if claimed == 0 {
		t.Errorf("no flow claimed by modbus: %v", out)
	}
}

// BenchmarkModbusHandle measures a claimed flow's request and response.
func BenchmarkModbusHandle(b *testing.B) {
	m := NewModbus()
	f := tcpFlow(cliAP, srvAP)
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	req, resp := adu(1, 1, 3, 0, 0, 0, 10), adu(1, 1, 3, 4, 0, 1, 0, 2)
	pc, ps := pkt(f, flow.FromClient, 0, req), pkt(f, flow.FromServer, 0, resp)
	b.ReportAllocs()
	for b.Loop() {
		m.Handle(pc, sink)
		pc.TCPSeq += uint32(len(req))
		m.Handle(ps, sink)
		ps.TCPSeq += uint32(len(resp))
	}
}
