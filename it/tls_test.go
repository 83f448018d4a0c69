package it

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
	"github.com/passivesensor/sensor/internal/testcorpus"
)

const tlsCorpus = "ct-samples__Protocols__DLMS-COSEM__Matousp-PCAPs__DLMSDirector.pcap"

// TestTLSCorpus compares what the pipeline reads of the corpus's TLS 1.2
// handshake with tshark: SNI (tls.handshake.extensions_server_name), JA3
// (tls.handshake.ja3, tls.handshake.ja3_full), ALPN
// (tls.handshake.extensions_alpn_str), ServerHello version and cipher
// (tls.handshake.version, tls.handshake.ciphersuite), and the leaf
// certificate (tls.handshake.certificate, read by openssl x509).
func TestTLSCorpus(t *testing.T) {
	path, out := appCorpus(t, tlsCorpus, NewTLS())
	const hello = "tls.handshake.type==1"
	appSameSet(t, "sni", appObserved(out, AttrTLSSNI), appTsharkSet(t, path, hello, "ip.src", "tls.handshake.extensions_server_name", false))
	appSameSet(t, "ja3", appObserved(out, AttrTLSJA3), appTsharkSet(t, path, hello, "ip.src", "tls.handshake.ja3", false))
	appSameSet(t, "ja3_full", appObserved(out, AttrTLSJA3Full), appTsharkSet(t, path, hello, "ip.src", "tls.handshake.ja3_full", false))
	appSameSet(t, "alpn", appObserved(out, AttrTLSALPN), appTsharkSet(t, path, hello, "ip.src", "tls.handshake.extensions_alpn_str", false))
	rows := testcorpus.Tshark(t, path, "tls.handshake.type==2", "ip.src", "tls.handshake.version", "tls.handshake.ciphersuite")
	if len(rows) != 1 {
		t.Fatalf("tshark: %d ServerHellos, want 1", len(rows))
	}
	if rows[0][1] != "0x0303" {
		t.Fatalf("tshark: version %s", rows[0][1])
	}
	appSameSet(t, "version", appObserved(out, AttrTLSVersion), map[string]bool{rows[0][0] + " 1.2": true})
	appSameSet(t, "cipher", appObserved(out, AttrTLSCipher), map[string]bool{rows[0][0] + " " + rows[0][2]: true})
	tlsCheckCert(t, path, out)
}

// tlsCheckCert compares the certificate facts with what openssl reads of
// the first certificate tshark finds in the capture.
func tlsCheckCert(t *testing.T, path string, out collect) {
	t.Helper()
	rows := testcorpus.Tshark(t, path, "tls.handshake.certificate", "ip.src", "tls.handshake.certificate")
	if len(rows) != 1 {
		t.Fatalf("tshark: %d certificate messages, want 1", len(rows))
	}
	der, err := hex.DecodeString(strings.ReplaceAll(strings.Split(rows[0][1], ",")[0], ":", ""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed: it reads the certificate tshark extracts")
	}
	f := filepath.Join(t.TempDir(), "leaf.der")
	if err := os.WriteFile(f, der, 0o644); err != nil {
		t.Fatal(err)
	}
	o, err := exec.Command("openssl", "x509", "-inform", "DER", "-in", f, "-noout", "-nameopt", "sep_multiline,utf8", "-subject", "-issuer", "-enddate", "-ext", "subjectAltName").Output()
	if err != nil {
		t.Fatalf("openssl: %v", err)
	}
	var subjCN, subjO, issCN, notAfter string
	var sans []string
	section := ""
	for _, l := range strings.Split(string(o), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "subject="):
			section = "s"
		case strings.HasPrefix(l, "issuer="):
			section = "i"
		case strings.HasPrefix(l, "notAfter="):
			at, err := time.Parse("Jan _2 15:04:05 2006 MST", strings.TrimPrefix(l, "notAfter="))
			if err != nil {
				t.Fatal(err)
			}
			notAfter = at.UTC().Format(time.RFC3339)
		case strings.HasPrefix(l, "CN=") && section == "s":
			subjCN = l[3:]
		case strings.HasPrefix(l, "O=") && section == "s":
			subjO = l[2:]
		case strings.HasPrefix(l, "CN=") && section == "i":
			issCN = l[3:]
		case strings.HasPrefix(l, "DNS:") || strings.HasPrefix(l, "IP Address:"):
			for _, s := range strings.Split(l, ", ") {
				_, v, _ := strings.Cut(s, ":")
				sans = append(sans, v)
			}
		}
	}
	srv := rows[0][0]
	for attr, want := range map[string]string{
		AttrTLSCertSubject: subjCN, AttrTLSCertOrg: subjO, AttrTLSCertIssuer: issCN,
		AttrTLSCertSANs: strings.Join(sans, ","), AttrTLSCertNotAfter: notAfter,
	} {
		exp := map[string]bool{}
		if want != "" {
			exp[srv+" "+want] = true
		}
		if got := appObserved(out, attr); len(got) != len(exp) || (len(exp) == 1 && !got[srv+" "+want]) {
			t.Errorf("%s: got %v, want %v (openssl)", attr, got, exp)
		}
	}
}

// tlsExt builds one extension.
func tlsExt(typ uint16, data []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, typ)
	b = binary.BigEndian.AppendUint16(b, uint16(len(data)))
	return append(b, data...)
}

// tlsVec16 prefixes data with its 16-bit length.
func tlsVec16(data []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(data))), data...)
}

// tlsU16s encodes values.
func tlsU16s(vs ...uint16) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.BigEndian.AppendUint16(b, v)
	}
	return b
}

// tlsRecord wraps handshake messages of type typ in one record.
func tlsRecord(typ byte, body []byte) []byte {
	hs := []byte{typ, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}
	hs = append(hs, body...)
	rec := []byte{22, 3, 1}
	rec = binary.BigEndian.AppendUint16(rec, uint16(len(hs)))
	return append(rec, hs...)
}

// tlsSpecHello builds the ClientHello of the example of FoxIO's JA4
// specification (technical_details/JA4.md, "Example" and "Raw Output"):
// its ciphers and extensions in their original order (JA4_ro), with GREASE
// values added (RFC 8701) that both fingerprints must ignore. Each
// extension's data is laid out by its RFC (RFC 8446 section 4.2, RFC 6066,
// RFC 7301, RFC 8879, RFC 7685).
func tlsSpecHello() []byte {
	ciphers := tlsU16s(0x3a3a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035)
	host := "www.example.com"
	sni := append([]byte{0}, tlsVec16([]byte(host))...)
	alpn := append([]byte{2}, "h2"...)
	alpn = append(alpn, 8)
	alpn = append(alpn, "http/1.1"...)
	keyShare := tlsVec16(append(tlsU16s(0x001d, 32), make([]byte, 32)...))
	var exts []byte
	exts = append(exts, tlsExt(0x0a0a, nil)...) // GREASE
	exts = append(exts, tlsExt(0x001b, []byte{2, 0, 2})...)
	exts = append(exts, tlsExt(0x0000, tlsVec16(sni))...)
	exts = append(exts, tlsExt(0x0033, keyShare)...)
	exts = append(exts, tlsExt(0x0010, tlsVec16(alpn))...)
	exts = append(exts, tlsExt(0x4469, append([]byte{0, 3, 2}, "h2"...))...)
	exts = append(exts, tlsExt(0x0017, nil)...)
	exts = append(exts, tlsExt(0x002d, []byte{1, 1})...)
	exts = append(exts, tlsExt(0x000d, tlsVec16(tlsU16s(0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601)))...)
	exts = append(exts, tlsExt(0x0005, []byte{1, 0, 0, 0, 0})...)
	exts = append(exts, tlsExt(0x0023, nil)...)
	exts = append(exts, tlsExt(0x0012, nil)...)
	exts = append(exts, tlsExt(0x002b, append([]byte{6}, tlsU16s(0x5a5a, 0x0304, 0x0303)...))...)
	exts = append(exts, tlsExt(0xff01, []byte{0})...)
	exts = append(exts, tlsExt(0x000b, []byte{1, 0})...)
	exts = append(exts, tlsExt(0x000a, tlsVec16(tlsU16s(0x2a2a, 0x001d, 0x0017, 0x0018)))...)
	exts = append(exts, tlsExt(0x0015, make([]byte, 20))...)
	body := []byte{3, 3}
	body = append(body, make([]byte, 32)...)
	body = append(body, 0)
	body = append(body, tlsVec16(ciphers)...)
	body = append(body, 1, 0)
	body = append(body, tlsVec16(exts)...)
	return tlsRecord(1, body)
}

// TestTLSFingerprintsSpecExample checks JA4 against the value FoxIO's
// specification gives for its example ClientHello (tshark 4.0 has no JA4
// field), and JA3 (hash and string) against tshark's on the same packet.
func TestTLSFingerprintsSpecExample(t *testing.T) {
	hello := tlsSpecHello()
	h, ok := ParseClientHello(hello[9:])
	if !ok {
		t.Fatal("ParseClientHello failed on the spec example")
	}
	if got, want := h.JA4(), "t13d1516h2_8daaf6152771_e5627efa2ab1"; got != want {
		t.Errorf("JA4 = %s, want %s (FoxIO JA4 spec example)", got, want)
	}
	cli := netip.MustParseAddrPort("10.2.0.5:51000")
	srv := netip.MustParseAddrPort("93.184.216.34:443")
	path := appWritePcap(t, false, cli, srv, []appSeg{{false, hello[:60]}, {false, hello[60:]}})
	rows := testcorpus.Tshark(t, path, "tls.handshake.type==1", "tls.handshake.ja3", "tls.handshake.ja3_full", "tls.handshake.extensions_server_name", "_ws.malformed")
	if len(rows) != 1 || rows[0][3] != "" {
		t.Fatalf("tshark does not read the ClientHello cleanly: %q", rows)
	}
	out := appRunFile(t, path, NewTLS())
	got := map[string]string{}
	for _, o := range out {
		got[o.Attr] = o.Value
	}
	for attr, want := range map[string]string{AttrTLSJA3: rows[0][0], AttrTLSJA3Full: rows[0][1], AttrTLSSNI: rows[0][2],
		AttrTLSJA4: "t13d1516h2_8daaf6152771_e5627efa2ab1", AttrTLSALPN: "h2,http/1.1"} {
		if got[attr] != want {
			t.Errorf("%s = %q, want %q", attr, got[attr], want)
		}
	}
}

// TestTLSJA4Cases checks the parts of JA4 the example does not reach
// (spec sections "TLS and DTLS Version", "SNI", "ALPN Extension Value",
// "Extension hash" without signature algorithms).
func TestTLSJA4Cases(t *testing.T) {
	h := ClientHello{Version: 0x0301, Ciphers: []uint16{0x002f}, Extensions: []uint16{0x0010, 0x000a}, ALPN: []string{"\xabx\xcd"}}
	want := "t10i0102ad_" + tlsHash12("002f") + "_" + tlsHash12("000a")
	if got := h.JA4(); got != want {
		t.Errorf("JA4 = %s, want %s", got, want)
	}
	h = ClientHello{Version: 0x0303}
	if got, want := h.JA4(), "t12i000000_000000000000_000000000000"; got != want {
		t.Errorf("empty JA4 = %s, want %s", got, want)
	}
}

// tlsServerFlight builds a TLS 1.2 ServerHello (RFC 5246 section 7.4.1.3),
// Certificate (section 7.4.2) and ServerHelloDone in one record.
func tlsServerFlight(t *testing.T, der []byte) []byte {
	sh := []byte{3, 3}
	sh = append(sh, make([]byte, 32)...)
	sh = append(sh, 0, 0xc0, 0x2f, 0)
	sh = append(sh, tlsVec16(tlsExt(0xff01, []byte{0}))...)
	certs := []byte{byte(len(der) >> 16), byte(len(der) >> 8), byte(len(der))}
	certs = append(certs, der...)
	cm := []byte{byte(len(certs) >> 16), byte(len(certs) >> 8), byte(len(certs))}
	cm = append(cm, certs...)
	var hs []byte
	for _, m := range []struct {
		typ  byte
		body []byte
	}{{2, sh}, {11, cm}, {14, nil}} {
		hs = append(hs, m.typ, byte(len(m.body)>>16), byte(len(m.body)>>8), byte(len(m.body)))
		hs = append(hs, m.body...)
	}
	rec := []byte{22, 3, 3}
	rec = binary.BigEndian.AppendUint16(rec, uint16(len(hs)))
	return append(rec, hs...)
}

// tlsTestCert makes a certificate for a PLC's web server.
func tlsTestCert(t *testing.T) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), zeroReader{})
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42),
		Subject:      pkix.Name{CommonName: "plc-line1.plant.example", Organization: []string{"Example Automation"}},
		Issuer:       pkix.Name{CommonName: "Plant CA"},
		NotBefore:    time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
		DNSNames:     []string{"plc-line1.plant.example", "plc-line1"},
		IPAddresses:  []net.IP{net.ParseIP("10.1.1.20")},
	}
	der, err := x509.CreateCertificate(zeroReader{}, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

type zeroReader struct{}

func (zeroReader) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = 7
	}
	return len(b), nil
}

// TestTLSServerCertificate writes a TLS 1.2 handshake whose server flight
// spans three segments and compares the certificate facts with openssl's
// reading of the certificate tshark extracts.
func TestTLSServerCertificate(t *testing.T) {
	testcorpus.NeedTshark(t)
	cli := netip.MustParseAddrPort("10.1.1.5:50001")
	srv := netip.MustParseAddrPort("10.1.1.20:443")
	flight := tlsServerFlight(t, tlsTestCert(t))
	third := len(flight) / 3
	path := appWritePcap(t, false, cli, srv, []appSeg{
		{false, tlsSpecHello()},
		{true, flight[:third]}, {true, flight[third : 2*third]}, {true, flight[2*third:]},
	})
	out := appRunFile(t, path, NewTLS())
	tlsCheckCert(t, path, out)
	if got := appObserved(out, AttrTLSCertSANs); !got["10.1.1.20 plc-line1.plant.example,plc-line1,10.1.1.20"] {
		t.Errorf("SANs %v", got)
	}
}

// TestTLSGivesUp: after the handshake, application data is not read.
func TestTLSGivesUp(t *testing.T) {
	d := NewTLS()
	f := &flow.Flow{Proto: 6, Client: netip.MustParseAddrPort("10.0.0.1:1234"), Server: netip.MustParseAddrPort("10.0.0.2:443")}
	var out collect
	hello := tlsSpecHello()
	d.Handle(appTCPPkt(f, flow.FromClient, 1, hello), &out)
	app := append([]byte{23, 3, 3, 0, 100}, make([]byte, 100)...)
	for i := 0; i < 100; i++ {
		d.Handle(appTCPPkt(f, flow.FromClient, uint32(1+len(hello)+i*len(app)), app), &out)
	}
	st := f.State.(*tlsFlow)
	if !st.done[0] || st.s[0].Bytes() != nil {
		t.Errorf("client direction still read after its ClientHello")
	}
}

func tlsSeeds(t testing.TB) [][]byte {
	hello := tlsSpecHello()
	return [][]byte{append([]byte{0}, hello...), append([]byte{0x40}, hello...)}
}

func FuzzTLS(f *testing.F) {
	for _, s := range tlsSeeds(f) {
		f.Add(s)
	}
	fl := tlsServerFlight(&testing.T{}, []byte{0x30, 3, 1, 2, 3})
	f.Add(append([]byte{2}, fl...))
	f.Fuzz(func(t *testing.T, data []byte) {
		appFuzz(t, NewTLS(), data, 443)
		ParseClientHello(data)
	})
}

func BenchmarkTLSClientHello(b *testing.B) {
	d := NewTLS()
	hello := tlsSpecHello()
	out := dissect.SinkFunc(func(dissect.Observation) {})
	f := &flow.Flow{Proto: 6, Client: netip.MustParseAddrPort("10.0.0.1:1234"), Server: netip.MustParseAddrPort("10.0.0.2:443")}
	p := appTCPPkt(f, flow.FromClient, 1, hello)
	b.ReportAllocs()
	for b.Loop() {
		f.State = nil
		d.Handle(p, out)
	}
}

// TestTLSCacheAcrossFlows: a second connection to the same server, with
// the same client, emits the same facts (read from the caches).
func TestTLSCacheAcrossFlows(t *testing.T) {
	d := NewTLS()
	flight := tlsServerFlight(t, tlsTestCert(t))
	var first []string
	for i := 0; i < 2; i++ {
		f := &flow.Flow{Proto: 6, Client: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), uint16(40000+i)), Server: netip.MustParseAddrPort("10.0.0.2:443")}
		var out collect
		d.Handle(appTCPPkt(f, flow.FromClient, 1, tlsSpecHello()), &out)
		d.Handle(appTCPPkt(f, flow.FromServer, 1, flight), &out)
		var got []string
		for _, o := range out {
			got = append(got, o.Attr+"="+o.Value)
		}
		if i == 0 {
			first = got
			continue
		}
		if strings.Join(got, "\n") != strings.Join(first, "\n") || len(got) < 12 {
			t.Errorf("second flow:\n%s\nfirst:\n%s", strings.Join(got, "\n"), strings.Join(first, "\n"))
		}
	}
}
