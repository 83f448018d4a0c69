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

var mmsCorpus = []string{
	"ICS-Pcaps__IEC61850__mms2.pcap",
	"ICS-Pcaps__IEC61850__mmsy.pcap",
	"ICS-Security-Tools__pcaps__IEC61850__8d7c7db0-9804-012b-b2a6-0016cb8cea27.pcap",
	"ct-samples__Protocols__IEC61850__GOOSE__GE---Multilin-UR---Digital-Protection-Relay__GOOSE-and-MMS.pcapng",
}

// TestMMSCorpus compares the sensor's reading of the corpus's MMS captures
// with tshark's: services per (server, client) (mms.confirmedServiceRequest,
// mms.initiate_RequestPDU_element), roles from the direction of requests,
// Identify answers (mms.vendorName, mms.modelName, mms.revision) and the
// domain names of GetNameList answers (mms.Identifier) to requests for
// the domain class (mms.objectClass 9) in the VMD's scope (mms.objectScope 0).
func TestMMSCorpus(t *testing.T) {
	for _, name := range mmsCorpus {
		t.Run(name, func(t *testing.T) {
			path := testcorpus.File(t, name)
			wantSvc, wantRoles, wantIdent := map[string]bool{}, map[string]bool{}, map[string]bool{}
			domainReq := map[string]bool{} // "client server invoke"
			for _, r := range testcorpus.Tshark(t, path, "mms.confirmedServiceRequest || mms.initiate_RequestPDU_element",
				"ip.src", "ip.dst", "mms.confirmedServiceRequest", "mms.invokeID", "mms.objectClass", "mms.objectScope", "mms.initiate_RequestPDU_element") {
				wantRoles[r[1]+" "+RoleMMSServer] = true
				wantRoles[r[0]+" "+RoleMMSClient] = true
				if r[6] != "" {
					wantSvc[r[1]+" "+r[0]+" mms:initiate"] = true
				}
				for _, s := range strings.Split(r[2], ",") {
					if n, err := strconv.Atoi(s); err == nil {
						wantSvc[r[1]+" "+r[0]+" "+MMSService(n)] = true
					}
				}
				if r[2] == "1" && r[4] == "9" && r[5] == "0" {
					domainReq[r[0]+" "+r[1]+" "+r[3]] = true
				}
			}
			if len(wantRoles) == 0 {
				t.Fatalf("tshark read no MMS request in %s", name)
			}
			domains := map[string][]string{}
			for _, r := range testcorpus.Tshark(t, path, "mms.confirmedServiceResponse==1", "ip.src", "ip.dst", "mms.invokeID", "mms.Identifier") {
				if domainReq[r[1]+" "+r[0]+" "+r[2]] && r[3] != "" {
					for _, d := range strings.Split(r[3], ",") {
						if !slices.Contains(domains[r[0]], d) {
							domains[r[0]] = append(domains[r[0]], d)
						}
					}
				}
			}
			for srv, ds := range domains {
				slices.Sort(ds)
				wantIdent[srv+" "+AttrMMSLogicalDevices+"="+strings.Join(ds, ",")] = true
			}
			for _, r := range testcorpus.Tshark(t, path, "mms.vendorName", "ip.src", "mms.vendorName", "mms.modelName", "mms.revision") {
				wantIdent[r[0]+" vendor="+r[1]] = true
				wantIdent[r[0]+" model="+r[2]] = true
				wantIdent[r[0]+" firmware="+r[3]] = true
			}
			gotSvc, gotRoles, gotIdent := map[string]bool{}, map[string]bool{}, map[string]bool{}
			for _, o := range runFile(t, path, NewMMS()) {
				switch o.Attr {
				case dissect.AttrService:
					if o.Value != "mms:conclude" {
						gotSvc[o.IP.String()+" "+o.Peer.String()+" "+o.Value] = true
					}
				case dissect.AttrRole:
					gotRoles[o.IP.String()+" "+o.Value] = true
				case dissect.AttrVendor, dissect.AttrModel, dissect.AttrFirmware, AttrMMSLogicalDevices:
					gotIdent[o.IP.String()+" "+o.Attr+"="+o.Value] = true
				}
			}
			if !mapsEqual(gotSvc, wantSvc) {
				t.Errorf("services:\n got %v\nwant %v", keys(gotSvc), keys(wantSvc))
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

// BER and ISO stack builders for hand-made MMS (X.690; ISO 8327-1 §8.3
// GIVE TOKENS + DATA TRANSFER; ISO 8823-1 fully-encoded-data).

func ber(id byte, content ...[]byte) []byte {
	c := slices.Concat(content...)
	b := []byte{id}
	switch {
	case len(c) < 0x80:
		b = append(b, byte(len(c)))
	case len(c) < 0x100:
		b = append(b, 0x81, byte(len(c)))
	default:
		b = append(b, 0x82, byte(len(c)>>8), byte(len(c)))
	}
	return append(b, c...)
}

func berStr(id byte, s string) []byte { return ber(id, []byte(s)) }

// mmsData wraps an MMS PDU in session DT, presentation data and COTP.
func mmsData(pdu []byte) []byte {
	return tpkt(slices.Concat([]byte{1, 0, 1, 0}, ber(0x61, ber(0x30, []byte{2, 1, 3}, ber(0xa0, pdu)))))
}

func mmsRequest(invoke byte, service []byte) []byte {
	return mmsData(ber(0xa0, []byte{2, 1, invoke}, service))
}

func mmsResponse(invoke byte, service []byte) []byte {
	return mmsData(ber(0xa1, []byte{2, 1, invoke}, service))
}

// mmsIdentifyAnswer builds an Identify response (ISO 9506-2 §10.1).
func mmsIdentifyAnswer(invoke byte, vendor, model, rev string) []byte {
	return mmsResponse(invoke, ber(0xa2, berStr(0x80, vendor), berStr(0x81, model), berStr(0x82, rev)))
}

// mmsDomainList builds a GetNameList request for domains and its answer.
func mmsDomainList(invoke byte, names ...string) (req, resp []byte) {
	req = mmsRequest(invoke, ber(0xa1, ber(0xa0, []byte{0x80, 1, 9}), ber(0xa1, []byte{0x80, 0})))
	var ids [][]byte
	for _, n := range names {
		ids = append(ids, berStr(0x1a, n))
	}
	resp = mmsResponse(invoke, ber(0xa1, ber(0xa0, ids...), []byte{0x81, 1, 0}))
	return req, resp
}

var (
	mmsCli = netip.MustParseAddrPort("10.5.0.1:40300")
	mmsSrv = netip.MustParseAddrPort("10.5.0.2:102")
)

// mmsInitiate builds an initiate-RequestPDU (tag 0xa8) or -ResponsePDU
// (0xa9) (ISO 9506-2 §8.2): local detail, max outstanding calling and
// called, nesting level, init detail { version 1, parameter CBB, services
// supported }.
func mmsInitiate(tag byte) []byte {
	return ber(tag, []byte{0x80, 3, 0, 0xfd, 0xe8, 0x81, 1, 5, 0x82, 1, 5, 0x83, 1, 10},
		ber(0xa4, []byte{0x80, 1, 1, 0x81, 3, 5, 0xf1, 0, 0x82, 12, 3, 0xee, 0x1c, 0, 0, 4, 8, 0, 0, 0x79, 0xef, 0x18}))
}

// mmsConnect builds a session CONNECT SPDU (ISO 8327-1 §8.3.1) carrying a
// presentation CP-type (ISO 8823-1 §8.2: normal mode, contexts 1 ACSE and
// 3 MMS with BER) whose user data is an ACSE AARQ (ISO 8650-1) holding an
// MMS initiate request.
func mmsConnect() []byte {
	aarq := ber(0x60, ber(0xa1, []byte{6, 5, 0x28, 0xca, 0x22, 2, 3}),
		ber(0xbe, ber(0x28, []byte{2, 1, 3}, ber(0xa0, mmsInitiate(0xa8)))))
	cp := ber(0x31, ber(0xa0, []byte{0x80, 1, 1}), ber(0xa2,
		[]byte{0x81, 4, 0, 0, 0, 1, 0x82, 4, 0, 0, 0, 1},
		ber(0xa4, ber(0x30, []byte{2, 1, 1, 6, 4, 0x52, 1, 0, 1}, ber(0x30, []byte{6, 2, 0x51, 1})),
			ber(0x30, []byte{2, 1, 3, 6, 5, 0x28, 0xca, 0x22, 2, 1}, ber(0x30, []byte{6, 2, 0x51, 1}))),
		ber(0x61, ber(0x30, []byte{2, 1, 1}, ber(0xa0, aarq)))))
	return mmsSPDU(spduConnect, cp)
}

// mmsAccept builds the session ACCEPT SPDU answering mmsConnect: a CPA-type
// with both contexts accepted and an ACSE AARE holding the initiate
// response.
func mmsAccept() []byte {
	aare := ber(0x61, ber(0xa1, []byte{6, 5, 0x28, 0xca, 0x22, 2, 3}), ber(0xa2, []byte{2, 1, 0}),
		ber(0xa3, ber(0xa1, []byte{2, 1, 0})),
		ber(0xbe, ber(0x28, []byte{2, 1, 3}, ber(0xa0, mmsInitiate(0xa9)))))
	cpa := ber(0x31, ber(0xa0, []byte{0x80, 1, 1}), ber(0xa2,
		[]byte{0x83, 4, 0, 0, 0, 1},
		ber(0xa5, ber(0x30, []byte{0x80, 1, 0, 0x81, 2, 0x51, 1}), ber(0x30, []byte{0x80, 1, 0, 0x81, 2, 0x51, 1})),
		ber(0x61, ber(0x30, []byte{2, 1, 1}, ber(0xa0, aare)))))
	return mmsSPDU(spduAccept, cpa)
}

// mmsSPDU builds a CONNECT or ACCEPT SPDU: connect/accept item (protocol
// options 0, version 2), session user requirements (duplex), calling and
// called session selectors (connect only), session user data (PGI 0xC1).
func mmsSPDU(si byte, user []byte) []byte {
	params := []byte{0x05, 6, 0x13, 1, 0, 0x16, 1, 2, 0x14, 2, 0, 2}
	if si == spduConnect {
		params = append(params, 0x33, 2, 0, 1, 0x34, 2, 0, 1)
	}
	params = append(params, 0xc1)
	if len(user) < 0xff {
		params = append(params, byte(len(user)))
	} else {
		params = append(params, 0xff, byte(len(user)>>8), byte(len(user)))
	}
	params = append(params, user...)
	b := []byte{si}
	if len(params) < 0xff {
		b = append(b, byte(len(params)))
	} else {
		b = append(b, 0xff, byte(len(params)>>8), byte(len(params)))
	}
	return tpkt(append(b, params...))
}

// mmsMessages is an association, Identify, GetNameList of the domains and
// a write, message by message.
func mmsMessages() (cli, srv [][]byte) {
	dreq, dresp := mmsDomainList(2, "IED1LD0", "IED1PROT", "IED1CTRL")
	cli = [][]byte{cotpCRFrame(cotpCR, []byte{0, 1}, []byte{0, 1}), mmsConnect(), mmsRequest(1, []byte{0x82, 0}), dreq,
		mmsRequest(3, ber(0xa5, ber(0xa0, ber(0x30)), ber(0xa0, []byte{0x83, 1, 0xff})))}
	srv = [][]byte{cotpCRFrame(cotpCC, []byte{0, 1}, []byte{0, 1}), mmsAccept(), mmsIdentifyAnswer(1, "ACME Relays", "PR-7000", "3.1.4"), dresp}
	return cli, srv
}

// mmsConversation is mmsMessages as the two streams.
func mmsConversation() (cli, srv []byte) {
	c, s := mmsMessages()
	return slices.Concat(c...), slices.Concat(s...)
}

// TestMMSIdentifyTshark: a hand-built Identify and GetNameList exchange
// (ISO 9506-2) is read alike by tshark (mms.vendorName, mms.modelName,
// mms.revision, mms.Identifier) and the sensor.
func TestMMSIdentifyTshark(t *testing.T) {
	cli, srv := mmsConversation()
	path := writePcap(t, mmsCli, mmsSrv, []seg{{false, cli[:22]}, {true, srv[:22]}, {false, cli[22:]}, {true, srv[22:]}})
	rows := testcorpus.Tshark(t, path, "mms.vendorName || mms.Identifier", "mms.vendorName", "mms.modelName", "mms.revision", "mms.Identifier")
	want := map[string]bool{}
	for _, r := range rows {
		if r[0] != "" {
			want["vendor="+r[0]], want["model="+r[1]], want["firmware="+r[2]] = true, true, true
		}
		if r[3] != "" {
			ds := strings.Split(r[3], ",")
			slices.Sort(ds)
			want[AttrMMSLogicalDevices+"="+strings.Join(ds, ",")] = true
		}
	}
	if len(want) != 4 {
		t.Fatalf("tshark read %v, want vendor, model, revision and domains", rows)
	}
	got := map[string]bool{}
	for _, o := range runFile(t, path, All()...) {
		if o.Attr == dissect.AttrProtocol && o.Value != "mms" {
			t.Errorf("flow claimed by %s", o.Value)
		}
		switch o.Attr {
		case dissect.AttrVendor, dissect.AttrModel, dissect.AttrFirmware, AttrMMSLogicalDevices:
			got[o.Attr+"="+o.Value] = true
			if o.IP != mmsSrv.Addr() {
				t.Errorf("%s about %v, want the server", o.Attr, o.IP)
			}
		case AttrMMSWrite:
			got[o.Attr+"="+o.Value] = true
		}
	}
	want[AttrMMSWrite+"=mms:write"] = true
	if !mapsEqual(got, want) {
		t.Errorf("got %v, want %v", keys(got), keys(want))
	}
}

// TestMMSSegments: TPKTs split across segments, several per segment,
// retransmissions, and a stream joined mid-way.
func TestMMSSegments(t *testing.T) {
	cli, srv := mmsMessages()
	cs, ss := slices.Concat(cli...), slices.Concat(srv...)
	streamCase{
		newD: func() dissect.Dissector { return NewMMS() }, cli: mmsCli, srv: mmsSrv, cliMsgs: cli, srvMsgs: srv,
		must: []string{"vendor=ACME Relays", "model=PR-7000", "firmware=3.1.4", "mms.logical_devices=IED1CTRL,IED1LD0,IED1PROT", "service=mms:initiate",
			"service=mms:identify", "service=mms:get-name-list", "service=mms:write", "role=mms-server", "role=mms-client"},
		cliFrom: len(cs) - 140, srvFrom: len(ss) - 100, resync: true,
		midway: []string{"mms.logical_devices=IED1CTRL,IED1LD0,IED1PROT", "service=mms:write"},
	}.check(t)
}

// TestMMSProbe: S7comm and S7comm-plus on 102 are not MMS.
func TestMMSProbe(t *testing.T) {
	m := NewMMS()
	cli, _ := mmsConversation()
	for _, c := range []struct {
		b    []byte
		want bool
	}{
		{cli[22:], true},
		{tpkt(s7PDU(s7Job, 1, []byte{0xf0, 0, 0, 1, 0, 1, 3, 0xc0}, nil)), false},
		{tpkt([]byte{0x72, 1, 0, 10, 0x31, 0, 0, 4, 0xca}), false},
		{tpkt([]byte{1, 0, 1, 0, 0x61, 0x03, 0x30, 0x01, 0x00}), false},
	} {
		if got := m.Probe(pkt(tcpFlow(mmsCli, mmsSrv), flow.FromClient, 0, c.b)); got != c.want {
			t.Errorf("Probe(%x) = %v, want %v", c.b, got, c.want)
		}
	}
}

// mmsRead is the steady state of a claimed flow: a read request and its
// answer, again and again.
func mmsRead() func() {
	f := tcpFlow(mmsCli, mmsSrv)
	req := mmsRequest(9, ber(0xa4, ber(0xa1, ber(0xa0, ber(0x30, ber(0xa0, ber(0xa1, berStr(0x1a, "IED1LD0"), berStr(0x1a, "MMXU1$MX$TotW"))))))))
	resp := mmsResponse(9, ber(0xa4, ber(0xa1, ber(0xa2, []byte{0x87, 5, 8, 0x41, 0x20, 0, 0}))))
	return exchange(NewMMS(), pkt(f, flow.FromClient, 0, req), pkt(f, flow.FromServer, 0, resp))
}

// TestMMSAllocs: steady state allocates nothing per packet.
func TestMMSAllocs(t *testing.T) { noAllocs(t, mmsRead()) }

// FuzzMMS feeds arbitrary segments to Probe and Handle.
func FuzzMMS(f *testing.F) {
	cli, srv := mmsConversation()
	f.Add(cli, uint8(0), uint8(30))
	f.Add(srv, uint8(1), uint8(40))
	f.Fuzz(func(t *testing.T, b []byte, mode, cut uint8) {
		fuzzSegments(t, NewMMS(), tcpFlow(mmsCli, mmsSrv), b, flow.Dir(mode&1), int(cut), valuesWithin(t, (maxText+1)*mmsMaxDomains))
	})
}

// BenchmarkMMSHandle measures a read request and its answer.
func BenchmarkMMSHandle(b *testing.B) { benchSteps(b, mmsRead()) }
