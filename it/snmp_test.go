package it

import (
	"encoding/hex"
	"net/netip"
	"testing"

	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
	"github.com/passivesensor/sensor/internal/testcorpus"
)

const snmpCorpus = "zeek__testing__btest__Traces__snmp__snmpwalk-short.pcap"

// TestSNMPCorpus compares the system group the pipeline reads from an
// snmpwalk's GetResponses with tshark's snmp.name, snmp.value.octets and
// snmp.value.oid (snmp.data == 2: get-response), and the vendor named by
// the sysObjectID's enterprise number.
func TestSNMPCorpus(t *testing.T) {
	path, out := appCorpus(t, snmpCorpus, NewSNMP())
	want := map[string]map[string]bool{AttrSNMPSysDescr: {}, AttrSNMPSysObjectID: {}, dissect.AttrHostname: {}, dissect.AttrVendor: {}}
	for _, r := range testcorpus.Tshark(t, path, "snmp.data == 2", "ip.src", "snmp.name", "snmp.value.octets", "snmp.value.oid") {
		octets, _ := hex.DecodeString(r[2])
		switch r[1] {
		case "1.3.6.1.2.1.1.1.0":
			want[AttrSNMPSysDescr][r[0]+" "+string(octets)] = true
		case "1.3.6.1.2.1.1.2.0":
			want[AttrSNMPSysObjectID][r[0]+" "+r[3]] = true
			if r[3] == "1.3.6.1.4.1.8072.3.2.10" {
				want[dissect.AttrVendor][r[0]+" net-snmp"] = true
			}
		case "1.3.6.1.2.1.1.5.0":
			want[dissect.AttrHostname][r[0]+" "+string(octets)] = true
		}
	}
	for attr, w := range want {
		appSameSet(t, attr, appObserved(out, attr), w)
	}
	roles := appObserved(out, dissect.AttrRole)
	for _, r := range testcorpus.Tshark(t, path, "snmp.data == 2", "ip.src", "ip.dst") {
		if !roles[r[0]+" "+RoleSNMPAgent] || !roles[r[1]+" "+RoleSNMPManager] {
			t.Errorf("roles %v: want %s agent, %s manager", roles, r[0], r[1])
		}
	}
}

// snmpTLV encodes one BER element (X.690 section 8.1, short or long
// definite length).
func snmpTLV(tag byte, v ...[]byte) []byte {
	var c []byte
	for _, x := range v {
		c = append(c, x...)
	}
	b := []byte{tag}
	if len(c) < 128 {
		b = append(b, byte(len(c)))
	} else {
		b = append(b, 0x82, byte(len(c)>>8), byte(len(c)))
	}
	return append(b, c...)
}

// snmpOIDBytes encodes an OID of the system group: 1.3.6.1.2.1.1.n.0.
func snmpSysOID(n byte) []byte { return snmpTLV(0x06, []byte{0x2b, 6, 1, 2, 1, 1, n, 0}) }

// snmpV1Trap builds an SNMPv1 Trap-PDU (RFC 1157 section 4.1.6) carrying
// sysName and sysObjectID (Cisco: 1.3.6.1.4.1.9.1.1208) varbinds.
func snmpV1Trap() []byte {
	vbs := snmpTLV(0x30,
		snmpTLV(0x30, snmpSysOID(5), snmpTLV(0x04, []byte("sw-core-1"))),
		snmpTLV(0x30, snmpSysOID(2), snmpTLV(0x06, []byte{0x2b, 6, 1, 4, 1, 9, 1, 0x89, 0x38})))
	pdu := snmpTLV(0xa4,
		snmpTLV(0x06, []byte{0x2b, 6, 1, 4, 1, 9}), // enterprise
		snmpTLV(0x40, []byte{10, 1, 1, 2}),         // agent-addr
		snmpTLV(0x02, []byte{6}),                   // generic-trap
		snmpTLV(0x02, []byte{1}),                   // specific-trap
		snmpTLV(0x43, []byte{1, 0}),                // time-stamp
		vbs)
	return snmpTLV(0x30, snmpTLV(0x02, []byte{0}), snmpTLV(0x04, []byte("s3cr3t-community")), pdu)
}

// TestSNMPTrapV1 writes a v1 trap from the spec's layout, checks tshark
// reads its varbinds, and that the agent's name and maker are learnt and
// the community is in no observation.
func TestSNMPTrapV1(t *testing.T) {
	path := appWritePcap(t, true, netip.MustParseAddrPort("10.1.1.2:50162"), netip.MustParseAddrPort("10.1.1.100:162"), []appSeg{{false, snmpV1Trap()}})
	rows := testcorpus.Tshark(t, path, "snmp.trap_element", "snmp.value.octets", "snmp.value.oid", "_ws.malformed")
	if len(rows) != 1 || rows[0][1] != "1.3.6.1.4.1.9.1.1208" || rows[0][2] != "" {
		t.Fatalf("tshark reads %q", rows)
	}
	name, _ := hex.DecodeString(rows[0][0])
	out := appRunFile(t, path, NewSNMP())
	got := map[string]string{}
	for _, o := range out {
		if o.Value == "s3cr3t-community" {
			t.Errorf("community emitted: %+v", o)
		}
		if o.IP.String() == "10.1.1.2" {
			got[o.Attr] = o.Value
		}
	}
	if got[dissect.AttrHostname] != string(name) || got[AttrSNMPSysObjectID] != rows[0][1] || got[dissect.AttrVendor] != "ciscoSystems" || got[dissect.AttrRole] != RoleSNMPAgent {
		t.Errorf("got %v", got)
	}
}

// TestEnterpriseName checks lookups at both ends of the embedded registry
// and in between.
func TestEnterpriseName(t *testing.T) {
	for id, want := range map[uint32]string{0: "Reserved", 9: "ciscoSystems", 311: "Microsoft", 8072: "net-snmp", 4294967295: "", 123456789: ""} {
		if got := EnterpriseName(id); got != want {
			t.Errorf("EnterpriseName(%d) = %q, want %q", id, got, want)
		}
	}
}

func FuzzSNMP(f *testing.F) {
	f.Add(append([]byte{1}, snmpV1Trap()...))
	resp := snmpTLV(0x30, snmpTLV(0x02, []byte{1}), snmpTLV(0x04, []byte("public")),
		snmpTLV(0xa2, snmpTLV(0x02, []byte{1}), snmpTLV(0x02, []byte{0}), snmpTLV(0x02, []byte{0}),
			snmpTLV(0x30, snmpTLV(0x30, snmpSysOID(1), snmpTLV(0x04, []byte("Linux"))))))
	f.Add(append([]byte{3}, resp...))
	f.Fuzz(func(t *testing.T, data []byte) {
		appFuzz(t, NewSNMP(), data, 161)
		berOID(data)
	})
}

func BenchmarkSNMPResponse(b *testing.B) {
	d := NewSNMP()
	resp := snmpTLV(0x30, snmpTLV(0x02, []byte{1}), snmpTLV(0x04, []byte("public")),
		snmpTLV(0xa2, snmpTLV(0x02, []byte{1}), snmpTLV(0x02, []byte{0}), snmpTLV(0x02, []byte{0}),
			snmpTLV(0x30, snmpTLV(0x30, snmpSysOID(1), snmpTLV(0x04, []byte("Linux sw 5.10"))),
				snmpTLV(0x30, snmpSysOID(2), snmpTLV(0x06, []byte{0x2b, 6, 1, 4, 1, 0xbf, 0x08, 3, 2, 10})))))
	out := dissect.SinkFunc(func(dissect.Observation) {})
	f := &flow.Flow{Proto: 17, Client: netip.MustParseAddrPort("10.0.0.1:40000"), Server: netip.MustParseAddrPort("10.0.0.2:161")}
	p := appTCPPkt(f, flow.FromServer, 0, resp)
	b.ReportAllocs()
	for b.Loop() {
		f.State = nil
		d.Handle(p, out)
	}
}
