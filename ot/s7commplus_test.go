package ot

import (
	"encoding/hex"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
	"github.com/passivesensor/sensor/internal/testcorpus"
)

var s7pCorpus = []string{
	"ICS-Pcaps__COTP__cotp.pcap",
	"ICS-Pcaps__COTP__CotpAnalog.pcap",
	"ICS-Pcaps__COTP__cip_cotp_proces.pcap",
}

var s7pTypeRE = regexp.MustCompile(`[0-9]+;([ -:<-~]+?) *;(V[0-9.]+)`)

// TestS7commPlusCorpus reads the corpus's S7comm-plus captures. tshark
// 4.0 has no S7comm-plus dissector, so the oracle is tshark's COTP
// (cotp.type 0x0f, its user data as data.data): the PDUs starting with
// 0x72 tell the roles (opcode 0x31 request from the client), and the
// "<n>;<order number>;V<version>" string, where a server sends one, is
// found in the raw bytes with a regular expression.
func TestS7commPlusCorpus(t *testing.T) {
	for _, name := range s7pCorpus {
		t.Run(name, func(t *testing.T) {
			path := testcorpus.File(t, name)
			wantRoles, wantIdent := map[string]bool{}, map[string]bool{}
			for _, r := range testcorpus.Tshark(t, path, "cotp.type==0x0f && data.data", "ip.src", "ip.dst", "data.data") {
				b, err := hex.DecodeString(strings.Split(r[2], ",")[0])
				if err != nil || len(b) < 5 || b[0] != 0x72 {
					continue
				}
				op := b[4]
				if b[1] == 3 && len(b) > 5+int(b[4]) {
					op = b[5+int(b[4])]
				}
				switch op {
				case s7pOpRequest:
					wantRoles[r[1]+" "+RoleS7Server], wantRoles[r[0]+" "+RoleS7Client] = true, true
				case s7pOpResponse:
					wantRoles[r[0]+" "+RoleS7Server], wantRoles[r[1]+" "+RoleS7Client] = true, true
					wantIdent[r[0]+" vendor=Siemens"] = true
					if m := s7pTypeRE.FindSubmatch(b); m != nil {
						wantIdent[r[0]+" model="+string(m[1])] = true
						wantIdent[r[0]+" firmware="+string(m[2])] = true
					}
				}
			}
			if len(wantRoles) == 0 {
				t.Fatalf("no S7comm-plus PDU found by tshark in %s", name)
			}
			gotRoles, gotIdent := map[string]bool{}, map[string]bool{}
			for _, o := range runFile(t, path, All()...) {
				if o.Attr == dissect.AttrProtocol && o.IP.String() != "" && strings.HasPrefix(o.Value, "s7") && o.Value != "s7comm-plus" {
					t.Errorf("flow of %v claimed by %s", o.IP, o.Value)
				}
				if o.Protocol != "s7comm-plus" {
					continue
				}
				switch o.Attr {
				case dissect.AttrRole:
					gotRoles[o.IP.String()+" "+o.Value] = true
				case dissect.AttrVendor, dissect.AttrModel, dissect.AttrFirmware:
					gotIdent[o.IP.String()+" "+o.Attr+"="+o.Value] = true
				}
			}
			if !mapsEqual(gotRoles, wantRoles) {
				t.Errorf("roles:\n got %v\nwant %v", keys(gotRoles), keys(wantRoles))
			}
			if !mapsEqual(gotIdent, wantIdent) {
				t.Errorf("identity:\n got %v\nwant %v", keys(gotIdent), keys(wantIdent))
			}
			t.Logf("identity %v", keys(gotIdent))
		})
	}
}

// s7pPDU builds a version 1 S7comm-plus PDU in a COTP DT: header, opcode,
// reserved, function, reserved, sequence, items, trailer.
func s7pPDU(op byte, fc uint16, items []byte) []byte {
	d := slices.Concat([]byte{op, 0, 0, byte(fc >> 8), byte(fc), 0, 0, 0, 1}, items)
	b := slices.Concat([]byte{0x72, 1, byte(len(d) >> 8), byte(len(d))}, d, []byte{0x72, 1, 0, 0})
	return tpkt(b)
}

// s7pCreateObjectAnswer holds a WString attribute (0xa3, id, flags 0,
// datatype 0x15, length, text) with the PLC's type string.
func s7pCreateObjectAnswer(typ string) []byte {
	items := []byte{0x36, 0, 2, 0x87, 0x35, 0xa1, 0, 0, 1, 0x20, 0xa3, 0x82, 0x3f, 0, 0x15, byte(len(typ))}
	return s7pPDU(s7pOpResponse, s7pCreateObj, append(append(items, typ...), 0xa2, 0, 0, 0, 0))
}

// TestS7commPlusSegments: the session set-up split across segments, with
// retransmissions, and the PLC's type string read from it.
func TestS7commPlusSegments(t *testing.T) {
	cli := [][]byte{cotpCRFrame(cotpCR, []byte{1, 0}, []byte("SIMATIC-ROOT-HMI")), s7pPDU(s7pOpRequest, s7pCreateObj, []byte{0, 0, 1, 0x20, 0x36}),
		s7pPDU(s7pOpRequest, 0x0542, []byte{0, 0, 1, 0x20, 0x34})}
	srv := [][]byte{cotpCRFrame(cotpCC, []byte{1, 0}, []byte("SIMATIC-ROOT-HMI")), s7pCreateObjectAnswer("1;6ES7 516-3AN01-0AB0 ;V2.8")}
	streamCase{
		newD: func() dissect.Dissector { return NewS7commPlus() }, cli: s7Cli, srv: s7Srv, cliMsgs: cli, srvMsgs: srv,
		must: []string{"role=s7-server", "role=s7-client", "vendor=Siemens", "model=6ES7 516-3AN01-0AB0", "firmware=V2.8",
			"service=s7comm-plus:create-object", "s7plus.write=s7comm-plus:set-multi-variables", "s7plus.version=1", "s7plus.tsap=SIMATIC-ROOT-HMI"},
		// Mid-way: the answer alone, from inside the connection confirm,
		// still names the PLC.
		cliFrom: len(slices.Concat(cli...)), srvFrom: 22, resync: true, midway: []string{"model=6ES7 516-3AN01-0AB0"},
	}.check(t)
}

// TestS7commPlusProbe: S7comm, MMS and junk are not S7comm-plus.
func TestS7commPlusProbe(t *testing.T) {
	s := NewS7commPlus()
	for _, c := range []struct {
		b    []byte
		want bool
	}{
		{s7pPDU(s7pOpRequest, s7pCreateObj, nil), true},
		{tpkt(s7PDU(s7Job, 1, []byte{0xf0, 0, 0, 1, 0, 1, 3, 0xc0}, nil)), false},
		{tpkt([]byte{1, 0, 1, 0, 0x61, 0x03, 0x30, 0x01, 0x00}), false},
		{tpkt([]byte{0x72, 9, 0, 0}), false},
	} {
		if got := s.Probe(pkt(tcpFlow(s7Cli, s7Srv), flow.FromClient, 0, c.b)); got != c.want {
			t.Errorf("Probe(%x) = %v, want %v", c.b, got, c.want)
		}
	}
	if _, _, ok := s7pTypeString([]byte("1;;V1")); ok {
		t.Error("type string without order number accepted")
	}
}

// s7pGetVars is the steady state of a claimed flow: a GetMultiVariables
// request and its answer, again and again.
func s7pGetVars() func() {
	f := tcpFlow(s7Cli, s7Srv)
	req := s7pPDU(s7pOpRequest, 0x054c, []byte{0, 0, 1, 0x20, 0x34, 1, 2, 3, 4})
	resp := s7pPDU(s7pOpResponse, 0x054c, []byte{0x34, 0, 1, 2, 3, 4, 5})
	return exchange(NewS7commPlus(), pkt(f, flow.FromClient, 0, req), pkt(f, flow.FromServer, 0, resp))
}

// TestS7commPlusAllocs: steady state allocates nothing per packet.
func TestS7commPlusAllocs(t *testing.T) { noAllocs(t, s7pGetVars()) }

// FuzzS7commPlus feeds arbitrary segments to Probe and Handle.
func FuzzS7commPlus(f *testing.F) {
	f.Add(s7pCreateObjectAnswer("1;6ES7 516-3AN01-0AB0 ;V2.8"), uint8(1), uint8(10))
	f.Add(s7pPDU(s7pOpRequest, s7pCreateObj, []byte{0, 0, 1, 0x20, 0x36}), uint8(0), uint8(10))
	f.Fuzz(func(t *testing.T, b []byte, mode, cut uint8) {
		fuzzSegments(t, NewS7commPlus(), tcpFlow(s7Cli, s7Srv), b, flow.Dir(mode&1), int(cut), valuesWithin(t, 4*maxText))
	})
}

// BenchmarkS7commPlusHandle measures a GetMultiVariables request and answer.
func BenchmarkS7commPlusHandle(b *testing.B) { benchSteps(b, s7pGetVars()) }
