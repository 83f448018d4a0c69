package ot

import (
	"encoding/binary"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
	"github.com/passivesensor/sensor/internal/testcorpus"
)

// dnp3Corpus are the DNP3 captures compared with tshark by default; set
// OT_ALL_CORPUS=1 to compare every DNP3 capture of the corpus.
var dnp3Corpus = []string{
	"ICS-Pcaps__DNP3__dnp3_test_data_part1.pcap",
	"ICS-Pcaps__DNP3__DNP3ValueAnalog.pcap",
	"ICS-Pcaps__DNP3__dnp3_select_operate.pcap",
	"ICS-Pcaps__DNP3__dnp3_write.pcap",
	"ICS-Security-Tools__pcaps__dnp3__cold_restart_and_response.pcap",
	"ICS-Security-Tools__pcaps__dnp3__dnp3_test_data_part2.pcap",
	"ICS-Security-Tools__pcaps__dnp3__file_list_directory.pcap",
	"ICS-Security-Tools__pcaps__dnp3__full_exchange.pcap",
	"ICS-Security-Tools__pcaps__dnp3__dataset_exchange.pcap",
	"ICS-Security-Tools__pcaps__dnp3__unsolcited_response_and_confirm.pcap",
	"ICS-Security-Tools__pcaps__bro__dnp3__dnp3_file_del.pcap",
	"ICS-Security-Tools__pcaps__openics__DNP3-Malformed.pcap",
	"Malcolm-PCAP__pcaps__protocols__DNP3.pcap",
	"ICS-Security-Tools__pcaps__dnp3__opendnp3-3__conformance__8.4.1.2.1__dump.pcap",
}

func dnp3CorpusFiles(t *testing.T) []string {
	if os.Getenv("OT_ALL_CORPUS") == "" {
		return dnp3Corpus
	}
	var names []string
	ents, _ := os.ReadDir(testcorpus.Dir(t))
	for _, e := range ents {
		if strings.Contains(strings.ToLower(e.Name()), "dnp") {
			names = append(names, e.Name())
		}
	}
	return names
}

// TestDNP3Corpus compares, on DNP3 captures of the corpus, what the
// sensor's pipeline learns with what tshark reads: link source addresses
// per sending IP (dnp3.src), master/outstation roles from the DIR bit
// (dnp3.ctl.dir) and request function codes per outstation (dnp3.al.func,
// ip.dst).
func TestDNP3Corpus(t *testing.T) {
	for _, name := range dnp3CorpusFiles(t) {
		t.Run(name, func(t *testing.T) {
			path := testcorpus.File(t, name)
			wantAddr, wantRole, wantSvc := map[string]bool{}, map[string]bool{}, map[string]bool{}
			for _, r := range testcorpus.Tshark(t, path, "dnp3 && !dnp3.al.fragment.overlap.conflict", "ip.src", "ip.dst", "dnp3.src", "dnp3.ctl.dir", "dnp3.al.func") {
				for _, s := range strings.Split(r[2], ",") {
					if a, err := strconv.Atoi(s); err == nil && a < 0xfff0 {
						wantAddr[r[0]+" "+s] = true
					}
				}
				for _, d := range strings.Split(r[3], ",") {
					switch d {
					case "1", "True":
						wantRole[r[0]+" "+RoleDNP3Master] = true
					case "0", "False":
						wantRole[r[0]+" "+RoleDNP3Outstation] = true
					}
				}
				for _, s := range strings.Split(r[4], ",") {
					if fc, err := strconv.Atoi(s); err == nil && fc < 128 {
						wantSvc[r[1]+" "+r[0]+" "+DNP3Service(uint8(fc))] = true
					}
				}
			}
			if len(wantAddr) == 0 {
				if !slices.Contains(dnp3Corpus, name) {
					t.Skipf("tshark reads no well-formed DNP3 frame in %s", name)
				}
				t.Fatalf("tshark read no DNP3 frame in %s", name)
			}
			out := runFile(t, path, NewDNP3())
			gotAddr, gotRole, gotSvc := map[string]bool{}, map[string]bool{}, map[string]bool{}
			for _, o := range out {
				switch o.Attr {
				case AttrDNP3Address:
					gotAddr[o.IP.String()+" "+o.Value] = true
				case dissect.AttrRole:
					gotRole[o.IP.String()+" "+o.Value] = true
				case dissect.AttrService:
					gotSvc[o.IP.String()+" "+o.Peer.String()+" "+o.Value] = true
				}
			}
			if !mapsEqual(gotAddr, wantAddr) {
				t.Errorf("addresses (ip dnp3.src):\n got %v\nwant %v", keys(gotAddr), keys(wantAddr))
			}
			if !mapsEqual(gotRole, wantRole) {
				t.Errorf("roles:\n got %v\nwant %v", keys(gotRole), keys(wantRole))
			}
			if !mapsEqual(gotSvc, wantSvc) {
				t.Errorf("services (outstation master function):\n got %v\nwant %v", keys(gotSvc), keys(wantSvc))
			}
		})
	}
}

// dnp3Frame builds a link frame (IEEE 1815-2012 §9.2) with user data
// split in CRC'd 16-octet blocks.
func dnp3Frame(ctl byte, dst, src uint16, user []byte) []byte {
	h := []byte{0x05, 0x64, byte(5 + len(user)), ctl, byte(dst), byte(dst >> 8), byte(src), byte(src >> 8)}
	h = binary.LittleEndian.AppendUint16(h, dnp3CRC(h))
	for len(user) > 0 {
		k := min(16, len(user))
		h = append(h, user[:k]...)
		h = binary.LittleEndian.AppendUint16(h, dnp3CRC(user[:k]))
		user = user[k:]
	}
	return h
}

// dnp3Frames splits an application fragment into transport segments
// (§8.2: FIN, FIR, sequence) of at most 249 octets, each in a frame.
func dnp3Frames(ctl byte, dst, src uint16, seq byte, apdu []byte) []byte {
	var out []byte
	for i := 0; i == 0 || len(apdu) > 0; i++ {
		k := min(249, len(apdu))
		th := seq & 0x3f
		if i == 0 {
			th |= 0x40
		}
		if k == len(apdu) {
			th |= 0x80
		}
		out = append(out, dnp3Frame(ctl, dst, src, append([]byte{th}, apdu[:k]...))...)
		apdu = apdu[k:]
		seq++
	}
	return out
}

// dnp3AttrResponse builds a response (function 129) holding group 0
// device attributes, each as g0 vN qualifier 0x00 range 0-0, data type 1
// (VSTR), length, value (IEEE 1815-2012 §11.9, group 0).
func dnp3AttrResponse(seq byte, attrs ...any) []byte {
	a := []byte{0xc0 | seq, 129, 0, 0}
	for i := 0; i+1 < len(attrs); i += 2 {
		v := attrs[i+1].(string)
		a = append(a, 0, byte(attrs[i].(int)), 0x00, 0, 0, 1, byte(len(v)))
		a = append(a, v...)
	}
	return a
}

var (
	dnp3Master = netip.MustParseAddrPort("10.2.0.1:40000")
	dnp3Outst  = netip.MustParseAddrPort("10.2.0.2:20000")
)

const (
	dnp3CtlMasterReq = dnp3CtlDIR | dnp3CtlPRM | 4 // unconfirmed user data from the master
	dnp3CtlOutResp   = dnp3CtlPRM | 4
)

// TestDNP3DeviceAttributesTshark: a master reads all device attributes
// (g0v254); the outstation's response, over two transport segments, is
// read by tshark (dnp3.al.da.value) and by the sensor alike. Hand-built
// from IEEE 1815-2012 (no corpus capture carries group 0 identity).
func TestDNP3DeviceAttributesTshark(t *testing.T) {
	long := strings.Repeat("Substation 7 feeder bay ", 10)[:230]
	resp := dnp3AttrResponse(1,
		252, "Acme Grid Controls",
		250, "RTU-560 CMU",
		242, "4.2.1",
		243, "C",
		248, "SN1234567",
		245, long,
		246, "RTU-17",
	)
	req := []byte{0xc1, 1, 0, 254, 0x06}
	path := writePcap(t, dnp3Master, dnp3Outst, []seg{
		{false, dnp3Frames(dnp3CtlMasterReq, 10, 1, 0, req)},
		{true, dnp3Frames(dnp3CtlOutResp, 1, 10, 5, resp)},
	})
	rows := testcorpus.Tshark(t, path, "dnp3.al.da.value", "dnp3.al.da.value")
	if len(rows) != 1 {
		t.Fatalf("tshark: %d rows with attribute values, want 1 (reassembled)", len(rows))
	}
	vals := strings.Split(rows[0][0], ",")
	want := map[string]string{
		dissect.AttrVendor: vals[0], dissect.AttrModel: vals[1], dissect.AttrFirmware: vals[2],
		dissect.AttrHardware: vals[3], dissect.AttrSerial: vals[4], AttrDNP3Location: vals[5][:maxText], AttrDNP3UserID: vals[6],
	}
	got := map[string]string{}
	for _, o := range runFile(t, path, NewDNP3()) {
		if _, ok := want[o.Attr]; ok {
			if o.IP != dnp3Outst.Addr() {
				t.Errorf("%s about %v, want the outstation", o.Attr, o.IP)
			}
			got[o.Attr] = o.Value
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %q, want %q (tshark)", k, got[k], v)
		}
	}
}

// dnp3Stream is a master/outstation conversation used by the segment
// tests: the master's requests and the outstation's response, each a
// message (an application fragment in one or more link frames).
func dnp3Stream() (req, resp [][]byte) {
	req = [][]byte{
		dnp3Frames(dnp3CtlMasterReq, 10, 1, 0, []byte{0xc0, 1, 0, 254, 0x06}),
		dnp3Frames(dnp3CtlMasterReq, 10, 1, 1, []byte{0xc1, 5, 12, 1, 0x28, 1, 0, 0, 0, 0x03, 1, 0x64, 0, 0, 0, 0x64, 0, 0, 0, 0}),
		dnp3Frames(dnp3CtlMasterReq, 10, 1, 2, []byte{0xc2, 13}),
	}
	resp = [][]byte{dnp3Frames(dnp3CtlOutResp, 1, 10, 0, dnp3AttrResponse(0, 250, strings.Repeat("M", 200), 252, strings.Repeat("V", 100)))}
	return req, resp
}

// TestDNP3Segments: frames split across segments, several frames per
// segment, retransmitted segments and a stream joined mid-way are read.
func TestDNP3Segments(t *testing.T) {
	req, resp := dnp3Stream()
	streamCase{
		newD: func() dissect.Dissector { return NewDNP3() }, cli: dnp3Master, srv: dnp3Outst, cliMsgs: req, srvMsgs: resp,
		must: []string{"service=dnp3:read", "service=dnp3:direct-operate", "dnp3.control=dnp3:direct-operate",
			"service=dnp3:cold-restart", "dnp3.restart=dnp3:cold-restart", "model=" + strings.Repeat("M", 128),
			"vendor=" + strings.Repeat("V", 100), "role=dnp3-master", "role=dnp3-outstation", "dnp3.address=1", "dnp3.address=10"},
		// Joined mid-way: the first bytes are the tail of a frame.
		cliFrom: 5, resync: true,
		midway:    []string{"service=dnp3:direct-operate", "service=dnp3:cold-restart", "vendor=" + strings.Repeat("V", 100)},
		notMidway: []string{"service=dnp3:read"},
	}.check(t)
	// A large segment (offloaded capture) holding many frames: the first
	// is read too.
	big := dnp3Frames(dnp3CtlMasterReq, 10, 1, 0, []byte{0xc0, 13})
	for i := range 120 {
		big = append(big, dnp3Frames(dnp3CtlMasterReq, 10, 1, byte(i+1), []byte{0xc0 | byte(i+1)&0x0f, 1, 60, 1, 0x06})...)
	}
	if got := handleSegs(NewDNP3(), tcpFlow(dnp3Master, dnp3Outst), []seg{{false, big}}, []uint32{0}); !got["service=dnp3:cold-restart"] || !got["service=dnp3:read"] {
		t.Errorf("%d-byte segment: %v", len(big), got)
	}
	// A lost segment of the response's second transport segment: the
	// fragment is dropped, not misread.
	r2 := slices.Clone(resp[0])
	lost := handleSegs(NewDNP3(), tcpFlow(dnp3Master, dnp3Outst), []seg{{true, r2[:292]}, {true, r2[300:]}}, []uint32{0, 300})
	if lost["vendor="+strings.Repeat("V", 100)] {
		t.Error("lost segment: read attributes from a broken fragment")
	}
}

// TestDNP3UDP reads frames carried in UDP datagrams, through the pipeline.
func TestDNP3UDP(t *testing.T) {
	req, resp := dnp3Stream()
	path := dnp3WriteUDP(t, netip.MustParseAddrPort("10.2.0.1:20000"), netip.MustParseAddrPort("10.2.0.2:20000"), [][]byte{slices.Concat(req...), slices.Concat(resp...)})
	got := map[string]bool{}
	for _, o := range runFile(t, path, NewDNP3()) {
		got[o.IP.String()+" "+o.Attr+"="+o.Value] = true
	}
	for _, w := range []string{"10.2.0.1 role=dnp3-master", "10.2.0.2 role=dnp3-outstation", "10.2.0.2 service=dnp3:cold-restart", "10.2.0.2 model=" + strings.Repeat("M", 128), "10.2.0.1 dnp3.address=1"} {
		if !got[w] {
			t.Errorf("missing %s in %v", w, keys(got))
		}
	}
}

// dnp3WriteUDP writes datagrams alternately from a and b.
func dnp3WriteUDP(t *testing.T, a, b netip.AddrPort, dgs [][]byte) string {
	t.Helper()
	segs := make([]seg, len(dgs))
	for i, d := range dgs {
		segs[i] = seg{FromServer: i%2 == 1, Payload: d}
	}
	return conversation(t, true, a, b, segs)
}

// TestDNP3NotOnPort: other traffic on 20000 is not claimed.
func TestDNP3NotOnPort(t *testing.T) {
	d := NewDNP3()
	bad := dnp3Frame(dnp3CtlMasterReq, 10, 1, []byte{0xc0, 0xc0, 1})
	bad[8] ^= 1 // header CRC
	for _, b := range [][]byte{[]byte("GET / HTTP/1.1\r\n\r\n"), {0x05, 0x64, 0x05}, bad} {
		if d.Probe(pkt(tcpFlow(dnp3Master, dnp3Outst), flow.FromClient, 0, b)) {
			t.Errorf("Probe(%x) = true", b)
		}
	}
	if !d.Probe(pkt(tcpFlow(dnp3Master, dnp3Outst), flow.FromClient, 0, dnp3Frame(0xc9, 10, 1, nil))) {
		t.Error("Probe rejected a request link status frame")
	}
}

// dnp3Poll is the steady state of a claimed flow: a read request and its
// response, again and again.
func dnp3Poll() func() {
	f := tcpFlow(dnp3Master, dnp3Outst)
	req := dnp3Frames(dnp3CtlMasterReq, 10, 1, 0, []byte{0xc0, 1, 60, 2, 0x06})
	resp := dnp3Frames(dnp3CtlOutResp, 1, 10, 0, []byte{0xc0, 129, 0, 0, 30, 1, 0, 0, 0, 1, 0, 0})
	return exchange(NewDNP3(), pkt(f, flow.FromClient, 0, req), pkt(f, flow.FromServer, 0, resp))
}

// TestDNP3Allocs: steady state allocates nothing per packet.
func TestDNP3Allocs(t *testing.T) { noAllocs(t, dnp3Poll()) }

func dnp3Seeds() [][]byte {
	req, resp := dnp3Stream()
	return [][]byte{slices.Concat(req...), slices.Concat(resp...), dnp3Frame(0xc9, 10, 1, nil), dnp3Frames(dnp3CtlOutResp, 1, 10, 0, dnp3AttrResponse(0, 242, "1.0"))}
}

// FuzzDNP3 feeds arbitrary segments to Probe and Handle over TCP and UDP.
func FuzzDNP3(f *testing.F) {
	for _, s := range dnp3Seeds() {
		f.Add(s, uint8(0), uint8(40))
	}
	f.Fuzz(func(t *testing.T, b []byte, mode, cut uint8) {
		fl := tcpFlow(dnp3Master, dnp3Outst)
		if mode&2 != 0 {
			fl.Proto = capture.ProtoUDP
		}
		fuzzSegments(t, NewDNP3(), fl, b, flow.Dir(mode&1), int(cut), valuesWithin(t, 4*maxText+64))
	})
}

// BenchmarkDNP3Handle measures a claimed flow's request and response.
func BenchmarkDNP3Handle(b *testing.B) { benchSteps(b, dnp3Poll()) }
