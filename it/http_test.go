package it

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
	"github.com/passivesensor/sensor/internal/testcorpus"
)

var httpCorpus = []string{
	"Malcolm-PCAP__pcaps__protocols__NTLM.pcap",
	"nDPI__tests__cfgs__default__pcap__1kxun.pcap",
	"ICS-Pcaps__HTTP__http_gzip.pcap",
	"ICS-Pcaps__NetBIOS__Misc_NetBIOS_Traffic.pcap",
}

// TestHTTPCorpus compares, on the corpus's HTTP captures read through the
// sensor's pipeline, the User-Agent of each client, the Host each server
// was asked for and the Server header of each server with tshark's
// http.user_agent, http.host and http.server.
func TestHTTPCorpus(t *testing.T) {
	for _, name := range httpCorpus {
		t.Run(name, func(t *testing.T) {
			path, out := appCorpus(t, name, NewHTTP())
			ua := appTsharkSet(t, path, "http.request && tcp", "ip.src", "http.user_agent", false)
			host := appTsharkSet(t, path, "http.request && tcp", "ip.dst", "http.host", false)
			// A response whose body the capture does not hold whole is
			// not an http.response to tshark unless it stops waiting
			// for the body.
			srv := appTsharkOpts(t, path, []string{"http.desegment_body:FALSE"}, "http.response && tcp", "ip.src", "http.server")
			if len(ua) > 0 {
				appSameSet(t, "http.user_agent", appObserved(out, AttrHTTPUserAgent), ua)
			}
			appSameSet(t, "http.host", appObserved(out, AttrHTTPHost), host)
			if len(srv) > 0 {
				appSameSet(t, "http.server", appObserved(out, AttrHTTPServer), srv)
			}
		})
	}
}

// upnpDescription is a device description as UPnP Device Architecture 2.0
// section 2.3 lays it out, with an embedded device whose identity must not
// be taken for the root device's.
const upnpDescription = `<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
<specVersion><major>1</major><minor>0</minor></specVersion>
<device>
<deviceType>urn:schemas-upnp-org:device:MediaServer:1</deviceType>
<friendlyName>NAS &amp; Media</friendlyName>
<manufacturer>Synology</manufacturer>
<modelName>DS920+</modelName>
<modelNumber>DS920+ 7.2</modelNumber>
<serialNumber>2080PDN123456</serialNumber>
<UDN>uuid:73796E6F-6473-6D00-0000-001132aabbcc</UDN>
<deviceList><device><deviceType>urn:x:device:Sub:1</deviceType><manufacturer>Other</manufacturer><modelName>Sub</modelName></device></deviceList>
</device>
</root>
`

// TestHTTPUPnPDescription writes a GET of a device description and its
// answer (Content-Length, then chunked and split over segments), checks
// tshark reads the XML's text, and that the dissector learns the root
// device's identity about the server.
func TestHTTPUPnPDescription(t *testing.T) {
	testcorpus.NeedTshark(t)
	cli := netip.MustParseAddrPort("10.1.1.5:50000")
	srv := netip.MustParseAddrPort("10.1.1.9:5000")
	req := []byte("GET /description.xml HTTP/1.1\r\nHost: 10.1.1.9:5000\r\nUser-Agent: Microsoft-Windows/10.0 UPnP/1.0\r\n\r\n")
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprint("chunked=", chunked), func(t *testing.T) {
			var segs []appSeg
			segs = append(segs, appSeg{false, req})
			if chunked {
				half := len(upnpDescription) / 2
				resp := "HTTP/1.1 200 OK\r\nServer: Linux/4.4 UPnP/1.0 DSM/7.2\r\nContent-Type: text/xml; charset=\"utf-8\"\r\nTransfer-Encoding: chunked\r\n\r\n" +
					fmt.Sprintf("%x\r\n%s\r\n", half, upnpDescription[:half])
				segs = append(segs, appSeg{true, []byte(resp)},
					appSeg{true, []byte(fmt.Sprintf("%X;ext=1\r\n%s\r\n0\r\n\r\n", len(upnpDescription)-half, upnpDescription[half:]))})
			} else {
				resp := fmt.Sprintf("HTTP/1.1 200 OK\r\nServer: Linux/4.4 UPnP/1.0 DSM/7.2\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n%s", len(upnpDescription), upnpDescription)
				segs = append(segs, appSeg{true, []byte(resp[:100])}, appSeg{true, []byte(resp[100:])})
			}
			path := appWritePcap(t, false, cli, srv, segs)
			rows := testcorpus.Tshark(t, path, "xml", "xml.cdata")
			if len(rows) != 1 || !strings.Contains(rows[0][0], "Synology") || !strings.Contains(rows[0][0], "DS920+") {
				t.Fatalf("tshark does not read the description: %q", rows)
			}
			srvName := testcorpus.Tshark(t, path, "http.server", "http.server")
			out := appRunFile(t, path, NewHTTP())
			got := map[string]string{}
			for _, o := range out {
				if o.Attr != dissect.AttrProtocol && o.Attr != AttrHTTPUserAgent && o.IP != srv.Addr() {
					t.Errorf("%+v is not about the server", o)
				}
				if _, dup := got[o.Attr]; dup {
					t.Errorf("%s emitted twice", o.Attr)
				}
				got[o.Attr] = o.Value
			}
			want := map[string]string{
				AttrHTTPUPnPFriendlyName: "NAS & Media", dissect.AttrVendor: "Synology", dissect.AttrModel: "DS920+",
				AttrHTTPUPnPModelNumber: "DS920+ 7.2", dissect.AttrSerial: "2080PDN123456",
				AttrHTTPUPnPDeviceType: "urn:schemas-upnp-org:device:MediaServer:1", AttrHTTPUPnPUDN: "uuid:73796E6F-6473-6D00-0000-001132aabbcc",
				AttrHTTPServer: srvName[0][0], AttrHTTPHost: "10.1.1.9:5000", AttrHTTPUserAgent: "Microsoft-Windows/10.0 UPnP/1.0",
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

// TestHTTPNotHTTP: a port nominates, the payload decides.
func TestHTTPNotHTTP(t *testing.T) {
	h := NewHTTP()
	f := &flow.Flow{Proto: 6, Client: netip.MustParseAddrPort("10.0.0.1:1234"), Server: netip.MustParseAddrPort("10.0.0.2:80")}
	for _, s := range []string{"\x16\x03\x01\x00\x05hello\r\n", "GET / SIP/2.0\r\n", "HTTP/1.1 99 x\r\n", "get / HTTP/1.1\r\n", "GET /\r\n"} {
		if h.Probe(appTCPPkt(f, flow.FromClient, 1, []byte(s))) {
			t.Errorf("Probe(%q) = true", s)
		}
	}
}

// TestHTTPBounded: a flow of many messages is read for a bounded number of
// packets and each fact emitted once.
func TestHTTPBounded(t *testing.T) {
	h := NewHTTP()
	f := &flow.Flow{Proto: 6, Client: netip.MustParseAddrPort("10.0.0.1:1234"), Server: netip.MustParseAddrPort("10.0.0.2:80")}
	var out collect
	seq := [2]uint32{}
	for i := 0; i < 500; i++ {
		req := []byte("GET /x HTTP/1.1\r\nHost: a\r\nUser-Agent: curl/8.0\r\n\r\n")
		resp := []byte("HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 3\r\n\r\nabc")
		h.Handle(appTCPPkt(f, flow.FromClient, seq[0], req), &out)
		seq[0] += uint32(len(req))
		h.Handle(appTCPPkt(f, flow.FromServer, seq[1], resp), &out)
		seq[1] += uint32(len(resp))
	}
	if len(out) != 3 {
		t.Errorf("got %d observations, want 3 (user agent, host, server): %v", len(out), out)
	}
	if st := f.State.(*httpFlow); !st.done || st.s[0].Bytes() != nil {
		t.Errorf("flow not given up after its bound")
	}
}

func httpSeeds() [][]byte {
	return [][]byte{
		[]byte("\x00GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: y\r\n\r\n"),
		[]byte("\x02HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n<root\r\n0\r\n\r\n"),
		append([]byte("\x40HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 900\r\n\r\n"), upnpDescription...),
	}
}

func FuzzHTTP(f *testing.F) {
	for _, s := range httpSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) { appFuzz(t, NewHTTP(), data, 80) })
}

func BenchmarkHTTPHandle(b *testing.B) {
	h := NewHTTP()
	req := []byte("GET /index.html HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64)\r\nAccept: */*\r\n\r\n")
	out := dissect.SinkFunc(func(dissect.Observation) {})
	f := &flow.Flow{Proto: 6, Client: netip.MustParseAddrPort("10.0.0.1:1234"), Server: netip.MustParseAddrPort("10.0.0.2:80")}
	p := appTCPPkt(f, flow.FromClient, 1, req)
	b.ReportAllocs()
	for b.Loop() {
		f.State = nil
		h.Handle(p, out)
	}
}
