package ot

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
	"github.com/passivesensor/sensor/internal/testcorpus"
)

var iec104Corpus = []string{
	"ICS-Pcaps__IEC60870-104__50.pcap",
	"ICS-Pcaps__IEC60870-104__58_59.pcap",
	"ICS-Pcaps__IEC60870-104__59.pcap",
	"ICS-Pcaps__IEC60870-104__60.pcap",
	"ICS-Pcaps__IEC60870-104__61.pcap",
	"ICS-Pcaps__IEC60870-104__62.pcap",
	"ICS-Pcaps__IEC60870-104__63_1.pcap",
	"ICS-Pcaps__IEC60870-104__64.pcap",
	"ICS-Pcaps__LocalPCAP__104ikiIP.pcap",
	"ICS-Pcaps__LocalPCAP__104value.pcap",
	"ct-samples__Protocols__IEC60870__IEC-5-104__JavaRMI_and_IEC_Misc.pcap",
}

// TestIEC104Corpus compares the sensor's reading of the corpus's IEC 104
// captures with tshark's: the common addresses of ASDU
// (iec60870_asdu.addr) and type ids (iec60870_asdu.typeid) per controlled
// station, whose side is told by the type id and cause of transmission
// (iec60870_asdu.causetx) and STARTDT act (iec60870_104.utype).
func TestIEC104Corpus(t *testing.T) {
	for _, name := range iec104Corpus {
		t.Run(name, func(t *testing.T) {
			path := testcorpus.File(t, name)
			wantCA, wantSvc, wantRoles := map[string][]int{}, map[string]bool{}, map[string]bool{}
			for _, r := range testcorpus.Tshark(t, path, "iec60870_104", "ip.src", "ip.dst", "iec60870_asdu.typeid", "iec60870_asdu.causetx", "iec60870_asdu.addr", "iec60870_104.utype") {
				for _, u := range strings.Split(r[5], ",") {
					if u == "0x00000001" || u == "0x00000004" { // STARTDT act, STOPDT act
						wantRoles[r[0]+" "+RoleIEC104Controlling] = true
						wantRoles[r[1]+" "+RoleIEC104Controlled] = true
					}
				}
				if r[2] == "" {
					continue
				}
				typs, cots, cas := strings.Split(r[2], ","), strings.Split(r[3], ","), strings.Split(r[4], ",")
				for i := range typs {
					typ, _ := strconv.Atoi(typs[i])
					cot, _ := strconv.Atoi(cots[i])
					ca, _ := strconv.Atoi(cas[i])
					controlled, controlling := r[0], r[1]
					if !iec104Monitor(uint8(typ)) && (cot == 6 || cot == 8) {
						controlled, controlling = controlling, controlled
					}
					wantRoles[controlled+" "+RoleIEC104Controlled] = true
					wantRoles[controlling+" "+RoleIEC104Controlling] = true
					if !slices.Contains(wantCA[controlled], ca) {
						wantCA[controlled] = append(wantCA[controlled], ca)
					}
					wantSvc[controlled+" "+controlling+" "+IEC104Service(uint8(typ))] = true
				}
			}
			if len(wantRoles) == 0 {
				t.Fatalf("tshark read no IEC 104 in %s", name)
			}
			gotCA, gotSvc, gotRoles := map[string]string{}, map[string]bool{}, map[string]bool{}
			for _, o := range runFile(t, path, NewIEC104()) {
				switch o.Attr {
				case AttrIEC104CommonAddresses:
					gotCA[o.IP.String()] = o.Value
				case dissect.AttrService:
					gotSvc[o.IP.String()+" "+o.Peer.String()+" "+o.Value] = true
				case dissect.AttrRole:
					gotRoles[o.IP.String()+" "+o.Value] = true
				}
			}
			for st, cas := range wantCA {
				slices.Sort(cas)
				var s []string
				for _, c := range cas {
					s = append(s, strconv.Itoa(c))
				}
				if gotCA[st] != strings.Join(s, ",") {
					t.Errorf("common addresses of %s: got %q, want %q", st, gotCA[st], strings.Join(s, ","))
				}
			}
			if len(gotCA) != len(wantCA) {
				t.Errorf("stations with common addresses: got %v, want %v", gotCA, wantCA)
			}
			if !mapsEqual(gotSvc, wantSvc) {
				t.Errorf("services:\n got %v\nwant %v", keys(gotSvc), keys(wantSvc))
			}
			// Roles are decided once per flow from the first telling APDU:
			// each is one tshark says.
			for r := range gotRoles {
				if !wantRoles[r] {
					t.Errorf("role %s not in tshark's %v", r, keys(wantRoles))
				}
			}
		})
	}
}

// iec104I builds an I-format APDU holding an ASDU with one information
// object (IEC 60870-5-104 §5.1, IEC 60870-5-101 §7.2).
func iec104I(ns, nr uint16, typ, cot byte, ca uint16, obj ...byte) []byte {
	asdu := append([]byte{typ, 1, cot, 0, byte(ca), byte(ca >> 8), 1, 0, 0}, obj...)
	b := []byte{iec104Start, byte(4 + len(asdu)), byte(ns << 1), byte(ns >> 7), byte(nr << 1), byte(nr >> 7)}
	return append(b, asdu...)
}

func iec104U(c byte) []byte { return []byte{iec104Start, 4, c, 0, 0, 0} }

var (
	iec104Master = netip.MustParseAddrPort("10.4.0.1:40200")
	iec104RTU    = netip.MustParseAddrPort("10.4.0.2:2404")
)

// iec104Messages is a STARTDT, interrogation, a command and a clock
// synchronisation, and the answers and measurements, APDU by APDU.
func iec104Messages() (cli, srv [][]byte) {
	cli = [][]byte{iec104U(iec104UStartAct), iec104I(0, 0, 100, 6, 7, 20), iec104I(1, 3, 45, 6, 7, 1), iec104I(2, 3, 103, 6, 65535, 0, 0, 0, 0, 0, 0, 0)}
	srv = [][]byte{iec104U(iec104UStartCon), iec104I(0, 1, 100, 7, 7, 20), iec104I(1, 1, 13, 20, 7, 0, 0, 0x80, 0x3f, 0), iec104I(2, 1, 13, 3, 8, 0, 0, 0x80, 0x3f, 0)}
	return cli, srv
}

// iec104Conversation is iec104Messages as the two streams.
func iec104Conversation() (cli, srv []byte) {
	c, s := iec104Messages()
	return slices.Concat(c...), slices.Concat(s...)
}

// TestIEC104Segments: APDUs split across segments, several per segment,
// retransmissions, and a stream joined mid-way (hand-built from IEC
// 60870-5-104 §5).
func TestIEC104Segments(t *testing.T) {
	cli, srv := iec104Messages()
	rtu, master := iec104RTU.Addr().String()+" ", iec104Master.Addr().String()+" "
	streamCase{
		newD: func() dissect.Dissector { return NewIEC104() }, cli: iec104Master, srv: iec104RTU, cliMsgs: cli, srvMsgs: srv,
		must: []string{rtu + "role=iec104-controlled", master + "role=iec104-controlling", "service=iec104:100 C_IC_NA_1", "iec104.interrogation=iec104:100 C_IC_NA_1",
			"service=iec104:45 C_SC_NA_1", "iec104.control=iec104:45 C_SC_NA_1", "iec104.clock_sync=iec104:103 C_CS_NA_1",
			"service=iec104:13 M_ME_NC_1", "iec104.common_addresses=7,8,65535", "iec104.startdt=iec104:startdt"},
		cliFrom: 8, srvFrom: 9, resync: true,
		midway:    []string{"service=iec104:45 C_SC_NA_1", "service=iec104:13 M_ME_NC_1", rtu + "role=iec104-controlled"},
		notMidway: []string{"iec104.startdt=iec104:startdt"},
	}.check(t)
	// The roles are about the right stations in every case above; a
	// role about any other address fails here.
	for _, wrong := range []string{master + "role=iec104-controlled", rtu + "role=iec104-controlling"} {
		if got := handleSegs(NewIEC104(), tcpFlow(iec104Master, iec104RTU), []seg{{false, slices.Concat(cli...)}, {true, slices.Concat(srv...)}}, []uint32{0, 0}); got[wrong] {
			t.Errorf("observed %s", wrong)
		}
	}
	// A large segment (offloaded capture) holding many APDUs.
	var big []byte
	big = append(big, iec104I(0, 1, 1, 3, 9, 0x01)...)
	for i := range 200 {
		big = append(big, iec104I(uint16(i+1), 1, 13, 3, 8, 0, 0, 0x80, 0x3f, 0)...)
	}
	got := handleSegs(NewIEC104(), tcpFlow(iec104Master, iec104RTU), []seg{{true, big}}, []uint32{0})
	for _, w := range []string{"service=iec104:1 M_SP_NA_1", "iec104.common_addresses=8,9"} {
		if !got[w] {
			t.Errorf("large segment: missing %s in %v", w, keys(got))
		}
	}
}

// TestIEC104RolesFromConnection: with only test frames and
// acknowledgements, the side that connected to port 2404 is the
// controlling station.
func TestIEC104RolesFromConnection(t *testing.T) {
	path := writePcap(t, iec104Master, iec104RTU, []seg{
		{true, iec104U(iec104UTestAct)}, {false, iec104U(iec104UTestCon)},
		{false, []byte{iec104Start, 4, 1, 0, 2, 0}},
	})
	got := map[string]bool{}
	for _, o := range runFile(t, path, NewIEC104()) {
		if o.Attr == dissect.AttrRole {
			got[o.IP.String()+" "+o.Value] = true
		}
	}
	want := map[string]bool{iec104RTU.Addr().String() + " " + RoleIEC104Controlled: true, iec104Master.Addr().String() + " " + RoleIEC104Controlling: true}
	if !mapsEqual(got, want) {
		t.Errorf("roles %v, want %v", keys(got), keys(want))
	}
}

// TestIEC104Probe: on 2404 a segment of whole APDUs is taken; elsewhere
// only U-format APDUs; other bytes never.
func TestIEC104Probe(t *testing.T) {
	d := NewIEC104()
	other := netip.MustParseAddrPort("10.4.0.2:2500")
	cli, _ := iec104Conversation()
	for _, c := range []struct {
		srv  netip.AddrPort
		b    []byte
		want bool
	}{
		{iec104RTU, cli, true},
		{iec104RTU, iec104U(iec104UTestAct), true},
		{iec104RTU, []byte{0x68, 4, 0x05, 0, 0, 0}, false},
		{iec104RTU, []byte("hello world\n"), false},
		{iec104RTU, append(iec104U(iec104UTestAct), 0x41), false},
		{other, iec104U(iec104UStartAct), true},
		{other, cli, false},
	} {
		if got := d.Probe(pkt(tcpFlow(iec104Master, c.srv), flow.FromClient, 0, c.b)); got != c.want {
			t.Errorf("Probe(%v, %x) = %v, want %v", c.srv, c.b, got, c.want)
		}
	}
}

// iec104Spontaneous is the steady state of a claimed flow: a measurement
// and its S-frame acknowledgement, again and again.
func iec104Spontaneous() func() {
	f := tcpFlow(iec104Master, iec104RTU)
	a := iec104I(1, 1, 13, 3, 8, 0, 0, 0x80, 0x3f, 0)
	s := []byte{iec104Start, 4, 1, 0, 2, 0}
	return exchange(NewIEC104(), pkt(f, flow.FromServer, 0, a), pkt(f, flow.FromClient, 0, s))
}

// TestIEC104Allocs: steady state allocates nothing per packet.
func TestIEC104Allocs(t *testing.T) { noAllocs(t, iec104Spontaneous()) }

// FuzzIEC104 feeds arbitrary segments to Probe and Handle.
func FuzzIEC104(f *testing.F) {
	cli, srv := iec104Conversation()
	f.Add(cli, uint8(0), uint8(7))
	f.Add(srv, uint8(1), uint8(20))
	f.Fuzz(func(t *testing.T, b []byte, mode, cut uint8) {
		fuzzSegments(t, NewIEC104(), tcpFlow(iec104Master, iec104RTU), b, flow.Dir(mode&1), int(cut), valuesWithin(t, 64*6))
	})
}

// BenchmarkIEC104Handle measures a spontaneous measurement and an S-frame.
func BenchmarkIEC104Handle(b *testing.B) { benchSteps(b, iec104Spontaneous()) }
