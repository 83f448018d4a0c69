package it

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/internal/testcorpus"
)

// wsdFiles hold Windows hosts' Probe, Resolve, Hello and ProbeMatches
// messages.
var wsdFiles = []string{
	"ICS-Pcaps__IEC61850__pres1.pcap",
	"ICS-Pcaps__LLDP__simens.pcap",
	"ICS-Security-Tools__pcaps__s7__S7Comm__wrapup.pcapng",
	"ICS-Pcaps__CIP__CIPvalue.pcap",
}

// wsdOracle reads the fields with encoding/xml: the text of the first
// element of each local name, the Action's last segment.
func wsdOracle(t testing.TB, b []byte) map[string]string {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(b))
	got := map[string]string{}
	var stack []string
	inBody := false
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			stack = append(stack, tk.Name.Local)
			if tk.Name.Local == "Body" {
				inBody = true
			}
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) == 0 {
				continue
			}
			name := stack[len(stack)-1]
			if name != "Action" && !inBody {
				continue
			}
			if _, ok := got[name]; !ok {
				got[name] = strings.Join(strings.Fields(string(tk)), " ")
			}
		}
	}
	if a, ok := got["Action"]; ok {
		got["Action"] = a[strings.LastIndex(a, "/")+1:]
	}
	return got
}

// wsdTshark reads the WS-Discovery messages of a capture with tshark's
// XML dissector (heuristic xml_udp, off by default): per message, the
// text of the first element of each local name (Action in the header;
// Address, Types, Scopes, XAddrs in the body) as its detail view shows
// them, a start tag on one line and its character data on the next.
func wsdTshark(t testing.TB, path string) []map[string]string {
	t.Helper()
	testcorpus.NeedTshark(t)
	out, err := exec.Command("tshark", "-r", path, "--enable-heuristic", "xml_udp", "-Y", "udp.port==3702 && xml", "-O", "xml", "-V").Output()
	if err != nil {
		t.Fatalf("tshark on %s: %v", path, err)
	}
	var msgs []map[string]string
	var cur map[string]string
	inBody := false
	lines := strings.Split(string(out), "\n")
	for i, l := range lines {
		l = strings.TrimSpace(l)
		if l == "eXtensible Markup Language" {
			cur = map[string]string{}
			msgs = append(msgs, cur)
			inBody = false
			continue
		}
		if cur == nil || !strings.HasPrefix(l, "<") || strings.HasPrefix(l, "</") || strings.HasPrefix(l, "<?") {
			continue
		}
		name := strings.TrimSuffix(strings.Fields(strings.TrimPrefix(l, "<"))[0], ">")
		local := name[strings.LastIndex(name, ":")+1:]
		if local == "Body" {
			inBody = true
		}
		if i+1 >= len(lines) || (local != "Action" && !inBody) {
			continue
		}
		text := strings.TrimSpace(lines[i+1])
		if strings.HasPrefix(text, "<") {
			continue // an element holding elements
		}
		if _, ok := cur[local]; !ok {
			cur[local] = text
		}
	}
	for _, m := range msgs {
		if a, ok := m["Action"]; ok {
			m["Action"] = a[strings.LastIndex(a, "/")+1:]
		}
	}
	return msgs
}

// TestWSDCorpus reads every WS-Discovery message of real captures with
// ParseWSD, with tshark's XML dissector (xml.tag, xml.cdata) and with
// encoding/xml and compares Action, Address, Types, Scopes and XAddrs; a
// Probe's Types are the client's probe types, a Hello's or ProbeMatch's
// the device's.
func TestWSDCorpus(t *testing.T) {
	for _, name := range wsdFiles {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := testcorpus.File(t, name)
			pkts := discPackets(t, path, discUDP(WSDPort))
			oracle := wsdTshark(t, path)
			if len(oracle) != len(pkts) || len(oracle) == 0 {
				t.Fatalf("tshark reads %d WS-Discovery messages, the sensor decodes %d datagrams on 3702", len(oracle), len(pkts))
			}
			out := discRun(t, path, NewWSD())
			discCheckObs(t, "wsd", out)
			announced := map[string]bool{} // hosts that sent an identity message
			for _, p := range pkts {
				var m WSDMessage
				if ParseWSD(p.Payload, &m) && (string(m.Action) == "Hello" || string(m.Action) == "ProbeMatches" || string(m.Action) == "ResolveMatches") {
					announced[p.SrcIP.String()] = true
				}
			}
			identities := 0
			defer func() { t.Logf("%d identity messages", identities) }()
			for i, p := range pkts {
				var m WSDMessage
				if !ParseWSD(p.Payload, &m) {
					t.Fatalf("%s: not read: %q", p.SrcIP, p.Payload)
				}
				want := wsdOracle(t, p.Payload)
				for _, k := range []string{"Action", "Address", "Types", "Scopes", "XAddrs"} {
					if want[k] != oracle[i][k] {
						t.Errorf("message %d %s: encoding/xml %q, tshark %q", i, k, want[k], oracle[i][k])
					}
				}
				for _, f := range []struct {
					name string
					got  []byte
				}{{"Action", m.Action}, {"Address", m.Address}, {"Types", m.Types}, {"Scopes", m.Scopes}, {"XAddrs", m.XAddrs}} {
					if strings.Join(strings.Fields(string(f.got)), " ") != want[f.name] {
						t.Errorf("%s %s: %q, encoding/xml %q", p.SrcIP, f.name, f.got, want[f.name])
					}
				}
				ip := p.SrcIP.String()
				switch want["Action"] {
				case "Probe":
					if !discHas(out, ip, AttrWSDProbeTypes, want["Types"]) {
						t.Errorf("%s: probe types %q not learnt", ip, want["Types"])
					}
				case "Hello", "ProbeMatches", "ResolveMatches":
					identities++
					if !discHas(out, ip, AttrWSDTypes, want["Types"]) || !discHas(out, ip, AttrWSDXAddrs, want["XAddrs"]) || !discHas(out, ip, AttrWSDAddress, want["Address"]) {
						t.Errorf("%s: %s types %q xaddrs %q address %q not learnt: %v", ip, want["Action"], want["Types"], want["XAddrs"], want["Address"], out)
					}
				default:
					for _, o := range out {
						if o.IP == p.SrcIP && o.Attr != AttrWSDProbeTypes && o.Attr != dissect.AttrProtocol && !announced[ip] {
							t.Errorf("%s taught %s=%q", want["Action"], o.Attr, o.Value)
						}
					}
				}
			}
		})
	}
}

// wsdHello builds a Hello of the 2005/04 WS-Discovery draft that Windows
// and WSD printers speak (section 4.1), with an XML comment and an empty
// element to skip.
func wsdHello(types, xaddrs, scopes string) []byte {
	return []byte(fmt.Sprintf(`<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:wsd="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:wsdp="http://schemas.xmlsoap.org/ws/2006/02/devprof" xmlns:wprt="http://schemas.microsoft.com/windows/2006/08/wdp/print">
<soap:Header><wsa:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</wsa:To><wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Hello</wsa:Action><wsa:MessageID>urn:uuid:6f0b4c1e-3c1a-4c55-9d3e-1b9a7f3c0a01</wsa:MessageID><wsd:AppSequence InstanceId="7" MessageNumber="1"/></soap:Header>
<soap:Body><wsd:Hello><!-- <wsd:Types>not this</wsd:Types> --><wsa:EndpointReference><wsa:Address>urn:uuid:16a65700-007c-1000-bb49-0022582cd001</wsa:Address></wsa:EndpointReference>
<wsd:Types>%s</wsd:Types><wsd:Scopes>%s</wsd:Scopes>
<wsd:XAddrs>%s</wsd:XAddrs><wsd:MetadataVersion>3</wsd:MetadataVersion></wsd:Hello></soap:Body></soap:Envelope>`, types, scopes, xaddrs))
}

// TestWSDBuilt checks a printer's Hello and an ONVIF camera's
// ProbeMatches built from the specifications against tshark's XML
// dissector and encoding/xml, and what WSD learns.
func TestWSDBuilt(t *testing.T) {
	hello := wsdHello("wsdp:Device wprt:PrintDeviceType", "http://10.10.0.45:3911/ http://[fe80::200:74ff:fe9a:1]:3911/", "")
	matches := bytes.ReplaceAll(wsdHello("dn:NetworkVideoTransmitter tds:Device", "http://10.1.0.80/onvif/device_service",
		"onvif://www.onvif.org/type/video_encoder onvif://www.onvif.org/hardware/DS-2CD2142FWD-I onvif://www.onvif.org/name/Line%203%20camera"),
		[]byte("Hello"), []byte("ProbeMatches"))
	mac := capture.MAC{0x00, 0x00, 0x74, 0x9a, 0, 1}
	frames := [][]byte{
		udpFrame(t, mac, "10.10.0.45", "239.255.255.250", 3702, 3702, hello),
		udpFrame(t, mac, "10.1.0.80", "10.1.0.7", 3702, 50123, matches),
	}
	path := discPcap(t, frames)
	// Windows answers from an ephemeral port: the flow is found by its
	// payload (tshark is not shown this one: it does not try XML there).
	ephemeral := discRun(t, discPcap(t, [][]byte{udpFrame(t, mac, "10.1.0.81", "10.1.0.7", 50200, 50123, matches)}), NewWSD())
	if !discHas(ephemeral, "10.1.0.81", AttrWSDTypes, "dn:NetworkVideoTransmitter tds:Device") || !discHas(ephemeral, "", dissect.AttrProtocol, "wsd") {
		t.Errorf("ProbeMatches between ephemeral ports: %v", ephemeral)
	}
	if w := discExpert(t, path); w != "" {
		t.Fatalf("tshark warns: %s", w)
	}
	oracle := wsdTshark(t, path)
	if len(oracle) != 2 {
		t.Fatalf("tshark reads %d messages", len(oracle))
	}
	for i, b := range [][]byte{hello, matches} {
		var m WSDMessage
		if !ParseWSD(b, &m) {
			t.Fatal("not read")
		}
		want := wsdOracle(t, b)
		for _, k := range []string{"Action", "Address", "Types", "Scopes", "XAddrs"} {
			if want[k] != oracle[i][k] {
				t.Errorf("message %d %s: encoding/xml %q, tshark %q", i, k, want[k], oracle[i][k])
			}
		}
		if string(m.Types) != want["Types"] || string(m.Address) != want["Address"] || string(m.XAddrs) != want["XAddrs"] || string(m.Scopes) != want["Scopes"] {
			t.Errorf("read %+v, encoding/xml %v", m, want)
		}
	}
	out := discRun(t, path, NewWSD())
	discCheckObs(t, "wsd", out)
	for _, w := range [][3]string{
		{"10.10.0.45", AttrWSDTypes, "wsdp:Device wprt:PrintDeviceType"},
		{"10.10.0.45", AttrWSDXAddrs, "http://10.10.0.45:3911/ http://[fe80::200:74ff:fe9a:1]:3911/"},
		{"10.10.0.45", AttrWSDAddress, "urn:uuid:16a65700-007c-1000-bb49-0022582cd001"},
		{"10.10.0.45", dissect.AttrClass, dissect.ClassPrinter},
		{"10.1.0.80", dissect.AttrClass, dissect.ClassCamera},
		{"10.1.0.80", dissect.AttrModel, "DS-2CD2142FWD-I"},
		{"10.1.0.80", dissect.AttrName, "Line 3 camera"},
	} {
		if !discHas(out, w[0], w[1], w[2]) {
			t.Errorf("no %s %q about %s in %v", w[1], w[2], w[0], out)
		}
	}
}

func wsdSeeds(t testing.TB) [][]byte {
	seeds := [][]byte{wsdHello("wsdp:Device pub:Computer", "http://10.0.0.1:5357/x", "onvif://www.onvif.org/hardware/A%41"), []byte("<a><Action>x/discovery/Probe</Action><Body/><Types/>")}
	for _, p := range discCorpusPackets(t, wsdFiles[2], discUDP(WSDPort)) {
		seeds = append(seeds, p.Payload)
	}
	return seeds
}

func TestWSDAllocs(t *testing.T) {
	d := NewWSD()
	var out collect
	for _, s := range wsdSeeds(t)[:1] {
		p := discPacket("10.0.0.1", "239.255.255.250", 3702, 3702, capture.ProtoUDP, s)
		d.Handle(p, &out)
		if n := testing.AllocsPerRun(100, func() {
			if d.Probe(p) {
				d.Handle(p, &out)
			}
		}); n != 0 {
			t.Errorf("repeated Hello: %v allocations", n)
		}
	}
}

func BenchmarkWSD(b *testing.B) {
	d := NewWSD()
	p := discPacket("10.0.0.1", "239.255.255.250", 3702, 3702, capture.ProtoUDP, wsdSeeds(b)[0])
	var out collect
	b.ReportAllocs()
	for b.Loop() {
		if d.Probe(p) {
			d.Handle(p, &out)
		}
	}
}

func FuzzWSD(f *testing.F) {
	for _, s := range wsdSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d := NewWSD()
		p := discPacket("10.0.0.1", "239.255.255.250", 3702, 3702, capture.ProtoUDP, b)
		d.Probe(p)
		var out collect
		d.Handle(p, &out)
		discCheckObs(t, "wsd", out)
	})
}
