package it

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
	"github.com/passivesensor/sensor/internal/testcorpus"
)

const krbCorpus = "Malcolm-PCAP__pcaps__protocols__KRB5.pcap"

// TestKerberosCorpus compares, message by message, the client realm, the
// client and service principals the pipeline reads with tshark's
// kerberos.realm / kerberos.crealm, kerberos.CNameString and
// kerberos.SNameString (components joined by "/"), and the NetBIOS
// address (kerberos.addr_nb) with the client's hostname.
func TestKerberosCorpus(t *testing.T) {
	path, out := appCorpus(t, krbCorpus, NewKerberos())
	domain, cname, sname, host, kdc := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	rows := testcorpus.Tshark(t, path, "kerberos.msg_type", "kerberos.msg_type", "ip.src", "ip.dst",
		"kerberos.realm", "kerberos.crealm", "kerberos.CNameString", "kerberos.SNameString", "kerberos.addr_nb")
	for _, r := range rows {
		mt, _, _ := strings.Cut(r[0], ",")
		realms := strings.Split(r[3], ",")
		snames := strings.Split(r[6], ",")
		join := func(s []string) string { return strings.Join(s, "/") }
		switch mt {
		case "10", "12": // AS-REQ, TGS-REQ: about the sender
			kdc[r[2]+" "+RoleKerberosKDC] = true
			if r[3] != "" {
				domain[r[1]+" "+realms[len(realms)-1]] = true // req-body realm comes last
			}
			if r[5] != "" && mt == "10" {
				cname[r[1]+" "+join(strings.Split(r[5], ","))] = true
			}
			if strings.Contains(r[0], ",14") && len(snames) > 2 {
				// An AP-REQ in padata (TGS-REQ, FAST armor) holds a
				// ticket whose krbtgt/REALM comes first.
				snames = snames[2:]
			}
			if r[6] != "" {
				sname[r[1]+" "+join(snames)] = true
			}
			if r[7] != "" {
				host[r[1]+" "+strings.TrimSpace(r[7])] = true
			}
		case "11", "13", "30": // AS-REP, TGS-REP, KRB-ERROR: about the receiver
			kdc[r[1]+" "+RoleKerberosKDC] = true
			if r[4] != "" {
				domain[r[2]+" "+r[4]] = true
			}
			if r[5] != "" {
				cname[r[2]+" "+join(strings.Split(r[5], ","))] = true
			}
			if r[6] != "" {
				sname[r[2]+" "+join(snames)] = true
			}
		}
	}
	appSameSet(t, "domain", appObserved(out, dissect.AttrDomain), domain)
	appSameSet(t, "cname", appObserved(out, AttrKerberosCName), cname)
	appSameSet(t, "sname", appObserved(out, AttrKerberosSName), sname)
	appSameSet(t, "kdc", appObserved(out, dissect.AttrRole), kdc)
	gotHost := appObserved(out, dissect.AttrHostname)
	for h := range host {
		if !gotHost[h] {
			t.Errorf("NetBIOS address %q not a hostname; got %v", h, gotHost)
		}
	}
}

// krbTLV encodes a DER element.
func krbTLV(tag byte, v ...[]byte) []byte { return snmpTLV(tag, v...) }

// krbPrincipalDER encodes a PrincipalName (RFC 4120 section 5.2.2).
func krbPrincipalDER(typ byte, parts ...string) []byte {
	var ss [][]byte
	for _, p := range parts {
		ss = append(ss, krbTLV(0x1b, []byte(p)))
	}
	return krbTLV(0x30, krbTLV(0xa0, krbTLV(0x02, []byte{typ})), krbTLV(0xa1, krbTLV(0x30, ss...)))
}

// krbTestASReq builds an AS-REQ (RFC 4120 section 5.4.1) for a machine
// account, with a NetBIOS address (section 7.5.3, addr-type 20).
func krbTestASReq(cname string) []byte {
	body := krbTLV(0x30,
		krbTLV(0xa0, krbTLV(0x03, []byte{0, 0x40, 0x81, 0, 0x10})),
		krbTLV(0xa1, krbPrincipalDER(1, cname)),
		krbTLV(0xa2, krbTLV(0x1b, []byte("PLANT.EXAMPLE"))),
		krbTLV(0xa3, krbPrincipalDER(2, "krbtgt", "PLANT.EXAMPLE")),
		krbTLV(0xa5, krbTLV(0x18, []byte("20370913024805Z"))),
		krbTLV(0xa7, krbTLV(0x02, []byte{0x12, 0x34})),
		krbTLV(0xa8, krbTLV(0x30, krbTLV(0x02, []byte{18}), krbTLV(0x02, []byte{23}))),
		krbTLV(0xa9, krbTLV(0x30, krbTLV(0x30, krbTLV(0xa0, krbTLV(0x02, []byte{20})), krbTLV(0xa1, krbTLV(0x04, []byte("ENG-WS01        ")))))),
	)
	return krbTLV(0x6a, krbTLV(0x30,
		krbTLV(0xa1, krbTLV(0x02, []byte{5})),
		krbTLV(0xa2, krbTLV(0x02, []byte{10})),
		krbTLV(0xa4, body)))
}

// TestKerberosMachineAccountTCP writes an AS-REQ of a machine account over
// TCP (4-byte record mark, section 7.2.2) split over two segments, checks
// tshark reads it, and that the client's hostname and realm are learnt.
func TestKerberosMachineAccountTCP(t *testing.T) {
	msg := krbTestASReq("ENG-WS01$")
	rec := append([]byte{0, 0, byte(len(msg) >> 8), byte(len(msg))}, msg...)
	cli := netip.MustParseAddrPort("10.1.1.30:49700")
	path := appWritePcap(t, false, cli, netip.MustParseAddrPort("10.1.1.10:88"), []appSeg{{false, rec[:20]}, {false, rec[20:]}})
	rows := testcorpus.Tshark(t, path, "kerberos.msg_type == 10", "kerberos.CNameString", "kerberos.realm", "kerberos.addr_nb", "_ws.malformed")
	if len(rows) != 1 || rows[0][0] != "ENG-WS01$" || rows[0][3] != "" {
		t.Fatalf("tshark reads %q", rows)
	}
	got := map[string][]string{}
	for _, o := range appRunFile(t, path, NewKerberos()) {
		if o.IP == cli.Addr() {
			got[o.Attr] = append(got[o.Attr], o.Value)
		}
	}
	if strings.Join(got[dissect.AttrHostname], ",") != "ENG-WS01" || strings.Join(got[dissect.AttrDomain], ",") != rows[0][1] ||
		strings.Join(got[AttrKerberosCName], ",") != rows[0][0] {
		t.Errorf("got %v", got)
	}
}

// TestKerberosHostPrincipal: host/name.domain gives hostname and FQDN.
func TestKerberosHostPrincipal(t *testing.T) {
	d := NewKerberos()
	f := &flow.Flow{Proto: 17, Client: netip.MustParseAddrPort("10.0.0.1:40000"), Server: netip.MustParseAddrPort("10.0.0.2:88")}
	body := krbTLV(0x30, krbTLV(0xa1, krbPrincipalDER(3, "host", "hmi2.plant.example")), krbTLV(0xa2, krbTLV(0x1b, []byte("PLANT.EXAMPLE"))))
	msg := krbTLV(0x6a, krbTLV(0x30, krbTLV(0xa1, krbTLV(0x02, []byte{5})), krbTLV(0xa2, krbTLV(0x02, []byte{10})), krbTLV(0xa4, body)))
	p := appTCPPkt(f, flow.FromClient, 0, msg)
	if !d.Probe(p) {
		t.Fatal("Probe refused an AS-REQ")
	}
	var out collect
	d.Handle(p, &out)
	got := map[string]string{}
	for _, o := range out {
		got[o.Attr] = o.Value
	}
	if got[dissect.AttrHostname] != "hmi2" || got[dissect.AttrFQDN] != "hmi2.plant.example" || got[AttrKerberosCName] != "host/hmi2.plant.example" {
		t.Errorf("got %v", got)
	}
}

func FuzzKerberos(f *testing.F) {
	msg := krbTestASReq("ENG-WS01$")
	f.Add(append([]byte{1}, msg...))
	f.Add(append([]byte{0, 0, 0, 0, byte(len(msg))}, msg...))
	f.Fuzz(func(t *testing.T, data []byte) { appFuzz(t, NewKerberos(), data, 88) })
}

func BenchmarkKerberosASReq(b *testing.B) {
	d := NewKerberos()
	out := dissect.SinkFunc(func(dissect.Observation) {})
	f := &flow.Flow{Proto: 17, Client: netip.MustParseAddrPort("10.0.0.1:40000"), Server: netip.MustParseAddrPort("10.0.0.2:88")}
	p := appTCPPkt(f, flow.FromClient, 0, krbTestASReq("ENG-WS01$"))
	b.ReportAllocs()
	for b.Loop() {
		f.State = nil
		d.Handle(p, out)
	}
}
