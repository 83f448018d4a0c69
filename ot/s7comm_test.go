package ot

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
	"github.com/passivesensor/sensor/internal/testcorpus"
)

var s7Corpus = []string{
	"ICS-Pcaps__S7COMM__s2.pcap",
	"ICS-Pcaps__S7COMM__s3.pcap",
	"ICS-Pcaps__S7COMM__s4.pcap",
	"ICS-Pcaps__S7COMM__s5.pcap",
	"ICS-Security-Tools__pcaps__s7__snap7_s300_everything.pcapng",
	"ct-samples__Protocols__S7comm__Plant1_S7comm.pcap",
}

// s7Tshark gathers what tshark reads of a capture: roles and job/userdata
// services per (server, client), SZL 0x0011 and 0x001C identity per server,
// rack and slot from the called TSAP of connection requests.
func s7Tshark(t *testing.T, path string) (svc, roles, ident map[string]bool) {
	svc, roles, ident = map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, r := range testcorpus.Tshark(t, path, "s7comm.header.rosctr==1 || s7comm.param.userdata.type==4",
		"ip.src", "ip.dst", "s7comm.header.rosctr", "s7comm.param.func", "s7comm.param.userdata.funcgroup", "s7comm.param.userdata.subfunc") {
		roles[r[1]+" "+RoleS7Server] = true
		roles[r[0]+" "+RoleS7Client] = true
		funcs, groups, subs := strings.Split(r[3], ","), strings.Split(r[4], ","), strings.Split(r[5], ",")
		for _, f := range funcs {
			if fc, err := strconv.ParseUint(strings.TrimPrefix(f, "0x"), 16, 8); err == nil {
				svc[r[1]+" "+r[0]+" "+S7Service(byte(fc))] = true
			}
		}
		for i := range groups {
			g, err1 := strconv.Atoi(groups[i])
			s, err2 := strconv.Atoi(subs[min(i, len(subs)-1)])
			if err1 == nil && err2 == nil && s < 16 {
				svc[r[1]+" "+r[0]+" "+s7Services[256+g<<4|s]] = true
			}
		}
	}
	// SZL 0x0011: index 1 MLFB (model), index 6 (or 1) module version
	// (hardware), index 7 firmware release.
	for _, r := range testcorpus.Tshark(t, path, "s7comm.szl.xy11.0001.index", "ip.src", "s7comm.szl.xy11.0001.index", "s7comm.szl.xy11.0001.anz", "s7comm.szl.xy11.0001.ausbg", "s7comm.szl.xy11.0001.ausbe") {
		idx, mlfb, bg, be := strings.Split(r[1], ","), strings.Split(r[2], ","), strings.Split(r[3], ","), strings.Split(r[4], ",")
		hw := ""
		for i := range idx {
			g, _ := strconv.Atoi(bg[i])
			e, _ := strconv.Atoi(be[i])
			switch idx[i] {
			case "0x0001":
				ident[r[0]+" model="+strings.TrimSpace(mlfb[i])] = true
				if hw == "" {
					hw = s7Version(uint16(g), uint16(e))
				}
			case "0x0006":
				hw = s7Version(uint16(g), uint16(e))
			case "0x0007":
				ident[r[0]+" firmware="+s7Version(uint16(g), uint16(e))] = true
			}
		}
		ident[r[0]+" hardware="+hw] = true
	}
	attrs := map[string]string{
		"s7comm.szl.001c.0001.name": AttrS7SystemName, "s7comm.szl.001c.0002.name": dissect.AttrName,
		"s7comm.szl.001c.0003.tag": AttrS7PlantID, "s7comm.szl.001c.0004.copyright": AttrS7Copyright,
		"s7comm.szl.001c.0005.serialn": dissect.AttrSerial, "s7comm.szl.001c.0007.cputypname": AttrS7ModuleType,
		"s7comm.szl.001c.0008.snmcmmc": AttrS7MemoryCard, "s7comm.szl.001c.000b.loc_id": AttrS7Location,
	}
	fields := []string{"ip.src"}
	for f := range attrs {
		fields = append(fields, f)
	}
	for _, r := range testcorpus.Tshark(t, path, "s7comm.szl.001c.000x.index", fields...) {
		for i, f := range fields[1:] {
			if v := strings.TrimSpace(r[i+1]); v != "" {
				ident[r[0]+" "+attrs[f]+"="+v] = true
			}
		}
	}
	for _, r := range testcorpus.Tshark(t, path, "cotp.type==0x0e && s7comm || cotp.type==0x0e && tcp.port==102", "ip.dst", "cotp.dst-tsap") {
		if len(r[1]) == 6 && strings.HasPrefix(r[1], "0x") {
			v, _ := strconv.ParseUint(r[1][2:], 16, 16)
			ident[r[0]+" s7.rack="+strconv.Itoa(int(v&0xff)>>5)] = true
			ident[r[0]+" s7.slot="+strconv.Itoa(int(v&0x1f))] = true
		}
	}
	return svc, roles, ident
}

// TestS7commCorpus compares the sensor's reading of the corpus's S7comm
// captures with tshark's: roles from the direction of jobs
// (s7comm.header.rosctr), services (s7comm.param.func,
// s7comm.param.userdata.funcgroup/subfunc), SZL identity
// (s7comm.szl.xy11.0001.*, s7comm.szl.001c.*) and rack/slot (cotp.dst-tsap).
func TestS7commCorpus(t *testing.T) {
	for _, name := range s7Corpus {
		t.Run(name, func(t *testing.T) {
			path := testcorpus.File(t, name)
			wantSvc, wantRoles, wantIdent := s7Tshark(t, path)
			if len(wantRoles) == 0 {
				t.Fatalf("tshark read no S7comm job in %s", name)
			}
			gotSvc, gotRoles, gotIdent := map[string]bool{}, map[string]bool{}, map[string]bool{}
			vendor := map[string]bool{}
			for _, o := range runFile(t, path, NewS7comm()) {
				switch o.Attr {
				case dissect.AttrService:
					gotSvc[o.IP.String()+" "+o.Peer.String()+" "+o.Value] = true
				case dissect.AttrRole:
					gotRoles[o.IP.String()+" "+o.Value] = true
				case dissect.AttrVendor:
					vendor[o.IP.String()+" "+o.Value] = true
				case dissect.AttrModel, dissect.AttrHardware, dissect.AttrFirmware, dissect.AttrName, dissect.AttrSerial,
					AttrS7SystemName, AttrS7PlantID, AttrS7Copyright, AttrS7ModuleType, AttrS7MemoryCard, AttrS7Location, AttrS7Rack, AttrS7Slot:
					gotIdent[o.IP.String()+" "+o.Attr+"="+o.Value] = true
				}
			}
			if !mapsEqual(gotSvc, wantSvc) {
				t.Errorf("services (server client service):\n got %v\nwant %v", keys(gotSvc), keys(wantSvc))
			}
			if !mapsEqual(gotRoles, wantRoles) {
				t.Errorf("roles:\n got %v\nwant %v", keys(gotRoles), keys(wantRoles))
			}
			if !mapsEqual(gotIdent, wantIdent) {
				t.Errorf("identity:\n got %v\nwant %v", keys(gotIdent), keys(wantIdent))
			}
			for r := range wantRoles {
				if srv, ok := strings.CutSuffix(r, " "+RoleS7Server); ok && !vendor[srv+" Siemens"] {
					t.Errorf("server %s: vendor Siemens not reported (%v)", srv, vendor)
				}
			}
			t.Logf("identity: %v", keys(gotIdent))
		})
	}
}

// tpkt wraps user data in TPKT and a COTP DT with EOT (RFC 1006 §6,
// ISO 8073 §13.7).
func tpkt(user []byte) []byte {
	b := []byte{3, 0, 0, 0, 2, 0xf0, 0x80}
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)+len(user)))
	return append(b, user...)
}

// cotpCRFrame builds a connection request with calling and called TSAPs.
func cotpCRFrame(code byte, calling, called []byte) []byte {
	t := []byte{0, code, 0, 0, 0, 1, 0, 0xc0, 1, 0x0a, 0xc1, byte(len(calling))}
	t = append(t, calling...)
	t = append(t, 0xc2, byte(len(called)))
	t = append(t, called...)
	t[0] = byte(len(t) - 1)
	b := []byte{3, 0, 0, 0}
	binary.BigEndian.PutUint16(b[2:], uint16(4+len(t)))
	return append(b, t...)
}

// s7PDU builds an S7comm PDU (header, parameter, data).
func s7PDU(rosctr byte, ref uint16, param, data []byte) []byte {
	b := []byte{0x32, rosctr, 0, 0, byte(ref >> 8), byte(ref), byte(len(param) >> 8), byte(len(param)), byte(len(data) >> 8), byte(len(data))}
	if rosctr == s7Ack || rosctr == s7AckData {
		b = append(b, 0, 0)
	}
	return slices.Concat(b, param, data)
}

// s7SZLRequest and s7SZLAnswer build userdata read-SZL PDUs (group 4,
// subfunction 1).
func s7SZLRequest(id, index uint16) []byte {
	return tpkt(s7PDU(s7Userdata, 1, []byte{0, 1, 0x12, 4, 0x11, 0x44, 1, 0}, []byte{0xff, 9, 0, 4, byte(id >> 8), byte(id), byte(index >> 8), byte(index)}))
}

func s7SZLAnswer(id uint16, recLen int, recs ...[]byte) []byte {
	d := []byte{0xff, 9, 0, 0, byte(id >> 8), byte(id), 0, 0, 0, byte(recLen), 0, byte(len(recs))}
	for _, r := range recs {
		d = append(d, r...)
	}
	binary.BigEndian.PutUint16(d[2:], uint16(len(d)-4))
	return tpkt(s7PDU(s7Userdata, 1, []byte{0, 1, 0x12, 8, 0x12, 0x84, 1, 1, 0, 0, 0, 0}, d))
}

// s7SZL11 and s7SZL1C build records of SZL 0x0011 and 0x001C.
func s7SZL11(index uint16, mlfb string, ausbg, ausbe uint16) []byte {
	r := make([]byte, 28)
	binary.BigEndian.PutUint16(r, index)
	copy(r[2:22], mlfb+strings.Repeat(" ", 20))
	binary.BigEndian.PutUint16(r[24:], ausbg)
	binary.BigEndian.PutUint16(r[26:], ausbe)
	return r
}

func s7SZL1C(index uint16, v string) []byte {
	r := make([]byte, 34)
	binary.BigEndian.PutUint16(r, index)
	copy(r[2:], v)
	return r
}

// s7Messages is a client's connection set-up, SZL reads and a PLC stop,
// and the PLC's answers, message by message.
func s7Messages() (cli, srv [][]byte) {
	cli = [][]byte{
		cotpCRFrame(cotpCR, []byte{1, 0}, []byte{3, 0x21}),
		tpkt(s7PDU(s7Job, 1, []byte{0xf0, 0, 0, 1, 0, 1, 3, 0xc0}, nil)),
		s7SZLRequest(0x11, 0),
		s7SZLRequest(0x1c, 0),
		tpkt(s7PDU(s7Job, 2, []byte{0x29, 0, 0, 0, 0, 0, 9, 'P', '_', 'P', 'R', 'O', 'G', 'R', 'A', 'M'}, nil)),
	}
	srv = [][]byte{
		cotpCRFrame(cotpCC, []byte{1, 0}, []byte{3, 0x21}),
		tpkt(s7PDU(s7AckData, 1, []byte{0xf0, 0, 0, 1, 0, 1, 3, 0xc0}, nil)),
		s7SZLAnswer(0x11, 28, s7SZL11(1, "6ES7 515-2AM02-0AB0", 3, 0), s7SZL11(6, "6ES7 515-2AM02-0AB0", 3, 0), s7SZL11(7, "", 'V'<<8|2, 0x0901)),
		s7SZLAnswer(0x1c, 34, s7SZL1C(1, "PLANT-A"), s7SZL1C(2, "PLC_1"), s7SZL1C(5, "S V-L9AB12342019"), s7SZL1C(7, "CPU 1515-2 PN")),
	}
	return cli, srv
}

// s7Conversation is s7Messages as the two streams.
func s7Conversation() (cli, srv []byte) {
	c, s := s7Messages()
	return slices.Concat(c...), slices.Concat(s...)
}

var (
	s7Cli = netip.MustParseAddrPort("10.3.0.1:40100")
	s7Srv = netip.MustParseAddrPort("10.3.0.2:102")
)

// TestS7commSegments: TPKTs split across segments, several per segment,
// retransmissions, and a stream joined mid-way (hand-built from the
// S7comm layout tshark reads, ISO 8073 and RFC 1006).
func TestS7commSegments(t *testing.T) {
	cli, srv := s7Messages()
	want := []string{"s7.rack=1", "s7.slot=1", "s7.connection_type=3", "role=s7-server", "role=s7-client", "vendor=Siemens",
		"service=s7comm:setup-communication", "service=s7comm:read-szl", "service=s7comm:plc-stop", "s7.control=s7comm:plc-stop",
		"model=6ES7 515-2AM02-0AB0", "hardware=3", "firmware=V2.9.1", "s7.system_name=PLANT-A", "name=PLC_1",
		"serial=S V-L9AB12342019", "s7.module_type=CPU 1515-2 PN", "s7.szl_read=0x0011/0x0000"}
	streamCase{
		newD: func() dissect.Dissector { return NewS7comm() }, cli: s7Cli, srv: s7Srv, cliMsgs: cli, srvMsgs: srv, must: want,
		// Joined mid-way: inside the CR, so no TSAP; the rest is read.
		cliFrom: 5, srvFrom: 7, resync: true, midway: want[3:], notMidway: []string{"s7.rack=1"},
	}.check(t)
}

// TestS7commCOTPSegmented: an SZL answer carried in two COTP DTs (the
// first without EOT) is reassembled.
func TestS7commCOTPSegmented(t *testing.T) {
	_, srv := s7Conversation()
	ans := s7SZLAnswer(0x1c, 34, s7SZL1C(2, "PLC_9"))[7:]
	a := []byte{3, 0, 0, 0, 2, 0xf0, 0x00}
	a = append(a, ans[:20]...)
	binary.BigEndian.PutUint16(a[2:], uint16(len(a)))
	both := slices.Concat(srv[:0], a, tpkt(ans[20:]))
	got := handleSegs(NewS7comm(), tcpFlow(s7Cli, s7Srv), []seg{{true, both}}, []uint32{0})
	if !got["name=PLC_9"] {
		t.Errorf("COTP-segmented answer not read: %v", keys(got))
	}
}

// TestS7commProbe: S7comm-plus, MMS and other traffic on 102 are not
// S7comm.
func TestS7commProbe(t *testing.T) {
	s := NewS7comm()
	for _, b := range [][]byte{
		tpkt([]byte{0x72, 1, 0, 0x10}),
		tpkt([]byte{1, 0, 1, 0, 0x61, 0x10}),
		[]byte("GET / HTTP/1.1\r\n\r\n"),
		tpkt([]byte{0x32, 9, 0, 0, 0, 0, 0, 0, 0, 0}),
	} {
		if s.Probe(pkt(tcpFlow(s7Cli, s7Srv), flow.FromClient, 0, b)) {
			t.Errorf("Probe(%x) = true", b)
		}
	}
	cli, _ := s7Conversation()
	f := tcpFlow(s7Cli, s7Srv)
	if s.Probe(pkt(f, flow.FromClient, 0, cli[:22])) {
		t.Error("Probe claimed a connection request")
	}
	if _, ok := f.State.(*cotpPending); !ok {
		t.Errorf("connection request not remembered: %T", f.State)
	}
	if !s.Probe(pkt(f, flow.FromClient, 22, cli[22:])) {
		t.Error("Probe rejected a setup communication job")
	}
}

// s7ReadVar is the steady state of a claimed flow: a read-var job and its
// answer, again and again.
func s7ReadVar() func() {
	f := tcpFlow(s7Cli, s7Srv)
	req := tpkt(s7PDU(s7Job, 5, []byte{4, 1, 0x12, 0x0a, 0x10, 2, 0, 10, 0, 1, 0x84, 0, 0, 0}, nil))
	resp := tpkt(s7PDU(s7AckData, 5, []byte{4, 1}, []byte{0xff, 4, 0, 80, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}))
	return exchange(NewS7comm(), pkt(f, flow.FromClient, 0, req), pkt(f, flow.FromServer, 0, resp))
}

// TestS7commAllocs: steady state allocates nothing per packet.
func TestS7commAllocs(t *testing.T) { noAllocs(t, s7ReadVar()) }

func s7Seeds() [][]byte {
	cli, srv := s7Conversation()
	return [][]byte{cli, srv, tpkt(s7PDU(s7Job, 2, []byte{0x28, 0, 0, 0, 0, 0, 0, 0xfd, 0, 0, 5, '_', 'I', 'N', 'S', 'E'}, nil))}
}

// FuzzS7comm feeds arbitrary segments to Probe and Handle.
func FuzzS7comm(f *testing.F) {
	for _, s := range s7Seeds() {
		f.Add(s, uint8(0), uint8(30))
	}
	f.Fuzz(func(t *testing.T, b []byte, mode, cut uint8) {
		fuzzSegments(t, NewS7comm(), tcpFlow(s7Cli, s7Srv), b, flow.Dir(mode&1), int(cut), valuesWithin(t, 4*maxText+64))
	})
}

// BenchmarkS7commHandle measures a read-var job and its answer.
func BenchmarkS7commHandle(b *testing.B) { benchSteps(b, s7ReadVar()) }

// TestS7commLoneTPKTHeaders: a stack that sends each TPKT header in a
// segment of its own (as the corpus's ICCP capture does) still has its
// flow claimed after the connection set-up, and its TSAP read.
func TestS7commLoneTPKTHeaders(t *testing.T) {
	cli, srv := s7Conversation()
	var segs []seg
	split := func(b []byte, fromServer bool, n int) {
		for i := 0; i < n && len(b) >= 4; i++ {
			l := int(binary.BigEndian.Uint16(b[2:]))
			segs = append(segs, seg{fromServer, b[:4]}, seg{fromServer, b[4:l]})
			b = b[l:]
		}
	}
	// CR, CC, setup job, its answer, then the SZL exchanges: six set-up
	// packets before the first S7comm PDU.
	split(cli, false, 1)
	split(srv, true, 1)
	cr := int(binary.BigEndian.Uint16(cli[2:]))
	cc := int(binary.BigEndian.Uint16(srv[2:]))
	split(cli[cr:], false, 1)
	split(srv[cc:], true, 1)
	rest := cli[cr+int(binary.BigEndian.Uint16(cli[cr+2:])):]
	segs = append(segs, seg{false, rest})
	out := runFile(t, writePcap(t, s7Cli, s7Srv, segs), All()...)
	got := map[string]bool{}
	for _, o := range out {
		got[o.Attr+"="+o.Value] = true
	}
	for _, w := range []string{"protocol=s7comm", "s7.rack=1", "s7.slot=1", "service=s7comm:setup-communication", "service=s7comm:read-szl"} {
		if !got[w] {
			t.Errorf("missing %s in %v", w, keys(got))
		}
	}
}
