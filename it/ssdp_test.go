package it

import (
	"fmt"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/internal/testcorpus"
)

// ssdpFiles are corpus captures with NOTIFY, search responses and
// M-SEARCH requests, over IPv4 and IPv6.
var ssdpFiles = []string{
	"ICS-Security-Tools__pcaps__C37.118__C37118__c37118_1100_unclean.pcap",
	"ICS-Pcaps__NetBIOS__LANtastic1_00028_20100407020810.pcap",
	"ICS-Pcaps__LLDP__simens.pcap",
	"ICS-Security-Tools__pcaps__s7__S7Comm__wrapup.pcapng",
	"nDPI__tests__cfgs__default__pcap__1kxun.pcap",
}

// ssdpHeader returns the value of header name among tshark's
// http.request.line or http.response.line values ("ST: x\r\n,...").
func ssdpHeader(lines, name string) string {
	for _, l := range strings.Split(lines, "\\r\\n") {
		l = strings.TrimPrefix(l, ",")
		k, v, ok := strings.Cut(l, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// TestSSDPCorpus compares what SSDP learns from real captures with tshark:
// http.server, http.location and http.user_agent, and the NT, ST, NTS and
// USN headers of http.request.line / http.response.line. Every announced
// device or service type and UUID is in the host's list, every search
// target in the client's (but for searches of one device by UUID, which
// say nothing about the client).
func TestSSDPCorpus(t *testing.T) {
	for _, name := range ssdpFiles {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := testcorpus.File(t, name)
			out := discRun(t, path, NewSSDP())
			discCheckObs(t, "ssdp", out)
			rows := testcorpus.Tshark(t, path, "ssdp", "ip.src", "ipv6.src", "http.request.method", "http.response.code", "http.server", "http.location", "http.user_agent", "http.request.line", "http.response.line", "http.unknown_header")
			if len(rows) == 0 {
				t.Fatal("tshark shows no SSDP")
			}
			last := func(ip, attr string) string {
				vs := discFind(out, ip, attr)
				if len(vs) == 0 {
					return ""
				}
				return vs[len(vs)-1]
			}
			checked := 0
			for _, r := range rows {
				ip := r[0]
				if ip == "" {
					ip = r[1]
				}
				lines := r[7] + "\\r\\n" + r[8] + "\\r\\n" + r[9]
				nt := ssdpHeader(lines, "NT") + ssdpHeader(lines, "ST")
				switch {
				case r[2] == "M-SEARCH":
					if r[6] != "" && !discHas(out, ip, AttrSSDPUserAgent, r[6]) {
						t.Errorf("%s: no user agent %q", ip, r[6])
					}
					if !strings.HasPrefix(nt, "uuid:") && !strings.Contains(" "+last(ip, AttrSSDPSearch)+" ", " "+nt+" ") {
						t.Errorf("%s: search %q not in %q", ip, nt, last(ip, AttrSSDPSearch))
					}
				case r[2] == "NOTIFY" && ssdpHeader(lines, "NTS") != "ssdp:alive", r[2] == "" && r[3] != "200":
					continue
				default:
					if !discHas(out, ip, AttrSSDPServer, r[4]) || !discHas(out, ip, AttrSSDPLocation, r[5]) {
						t.Errorf("%s: server %q location %q not learnt", ip, r[4], r[5])
					}
					uuid, _, _ := strings.Cut(strings.TrimPrefix(ssdpHeader(lines, "USN"), "uuid:"), "::")
					if uuid != "" && !strings.Contains(last(ip, AttrSSDPUUID), uuid) {
						t.Errorf("%s: uuid %q not in %q", ip, uuid, last(ip, AttrSSDPUUID))
					}
					attr := ""
					switch {
					case strings.Contains(nt, ":device:"):
						attr = AttrSSDPDeviceTypes
					case strings.Contains(nt, ":service:"):
						attr = AttrSSDPServiceTypes
					}
					if attr != "" && len(strings.Fields(last(ip, attr))) < maxSSDPTypes && !strings.Contains(" "+last(ip, attr)+" ", " "+nt+" ") {
						t.Errorf("%s: %q not in %s %q", ip, nt, attr, last(ip, attr))
					}
				}
				checked++
			}
			if checked == 0 {
				t.Fatal("nothing compared")
			}
		})
	}
}

// ssdpNotify builds an ssdp:alive NOTIFY (UPnP Device Architecture 2.0
// section 1.2.2).
func ssdpNotify(host, nt, uuid, server string) []byte {
	usn := "uuid:" + uuid
	if !strings.HasPrefix(nt, "uuid:") {
		usn += "::" + nt
	}
	return []byte(fmt.Sprintf("NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nCACHE-CONTROL: max-age=1800\r\nLOCATION: http://%s:80/upnp/desc.xml\r\nNT: %s\r\nNTS: ssdp:alive\r\nSERVER: %s\r\nUSN: %s\r\nBOOTID.UPNP.ORG: 1\r\n\r\n", host, nt, server, usn))
}

// TestSSDPRepeats checks that a device's announcements, repeated, are
// said once, and that its types are gathered into one list.
func TestSSDPRepeats(t *testing.T) {
	d := NewSSDP()
	var out collect
	types := []string{"upnp:rootdevice", "urn:schemas-upnp-org:device:Printer:1", "urn:schemas-upnp-org:service:PrintBasic:1", "urn:schemas-upnp-org:device:Basic:1"}
	for range 3 {
		for _, nt := range types {
			p := discPacket("10.10.0.45", "239.255.255.250", 1900, 1900, capture.ProtoUDP, ssdpNotify("10.10.0.45", nt, "16a65700-007c-1000-bb49-0022582cd001", "Linux/3.4 UPnP/1.0 Printer/1.0"))
			if !d.Probe(p) {
				t.Fatal("probe refused a NOTIFY")
			}
			d.Handle(p, &out)
		}
	}
	if got := discFind(out, "10.10.0.45", AttrSSDPDeviceTypes); len(got) != 2 || got[1] != "urn:schemas-upnp-org:device:Basic:1 urn:schemas-upnp-org:device:Printer:1" {
		t.Errorf("device types %q", got)
	}
	if got := discFind(out, "10.10.0.45", AttrSSDPServer); len(got) != 1 {
		t.Errorf("server said %d times", len(got))
	}
	// 3 types lists, one of services, one UUID list, server, location.
	if len(out) != 2+1+1+1+1 {
		t.Errorf("%d observations: %v", len(out), out)
	}
}

// TestSSDPEphemeralResponse checks that a search response from a port
// other than 1900 is found by its payload through the registry, and that
// an HTTP 200 over UDP without SSDP headers is not taken for one.
func TestSSDPEphemeralResponse(t *testing.T) {
	mac := capture.MAC{0x00, 0x04, 0x20, 1, 2, 3}
	resp := []byte("HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=100\r\nEXT:\r\nLOCATION: http://10.1.0.9:49152/description.xml\r\nSERVER: Linux/3.14 UPnP/1.0 IpBridge/1.26.0\r\nST: upnp:rootdevice\r\nUSN: uuid:2f402f80-da50-11e1-9b23-001788255acc::upnp:rootdevice\r\n\r\n")
	other := []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	path := discPcap(t, [][]byte{
		udpFrame(t, mac, "10.1.0.9", "10.1.0.7", 49153, 50123, resp),
		udpFrame(t, mac, "10.1.0.10", "10.1.0.7", 49153, 50124, other),
	})
	out := discRun(t, path, NewSSDP())
	if !discHas(out, "10.1.0.9", AttrSSDPServer, "Linux/3.14 UPnP/1.0 IpBridge/1.26.0") || !discHas(out, "10.1.0.9", AttrSSDPUUID, "2f402f80-da50-11e1-9b23-001788255acc") {
		t.Errorf("response from an ephemeral port: %v", out)
	}
	for _, o := range out {
		if o.IP.String() == "10.1.0.10" || o.Peer.String() == "10.1.0.10" {
			t.Errorf("plain HTTP over UDP taken for SSDP: %+v", o)
		}
	}
}

func ssdpSeeds(t testing.TB) [][]byte {
	seeds := [][]byte{
		ssdpNotify("10.0.0.1", "urn:schemas-upnp-org:device:Printer:1", "u", "s"),
		[]byte("M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: ssdp:all\r\nUSER-AGENT: Windows/10.0 UPnP/2.0 x/1\r\n\r\n"),
		[]byte("HTTP/1.1 200 OK\r\nST: upnp:rootdevice\r\nUSN: uuid:x::upnp:rootdevice\r\nSERVER: s\r\n\r\n"),
	}
	for _, p := range discCorpusPackets(t, ssdpFiles[0], discUDP(SSDPPort)) {
		seeds = append(seeds, p.Payload)
	}
	return seeds
}

func TestSSDPAllocs(t *testing.T) {
	d := NewSSDP()
	var out collect
	for _, s := range ssdpSeeds(t)[:3] {
		p := discPacket("10.0.0.1", "239.255.255.250", 1900, 1900, capture.ProtoUDP, s)
		d.Handle(p, &out)
		if n := testing.AllocsPerRun(200, func() {
			if d.Probe(p) {
				d.Handle(p, &out)
			}
		}); n != 0 {
			t.Errorf("repeated %q: %v allocations", s[:10], n)
		}
	}
}

func BenchmarkSSDP(b *testing.B) {
	d := NewSSDP()
	p := discPacket("10.0.0.1", "239.255.255.250", 1900, 1900, capture.ProtoUDP, ssdpSeeds(b)[0])
	var out collect
	b.ReportAllocs()
	for b.Loop() {
		if d.Probe(p) {
			d.Handle(p, &out)
		}
	}
}

func FuzzSSDP(f *testing.F) {
	for _, s := range ssdpSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d := NewSSDP()
		p := discPacket("10.0.0.1", "239.255.255.250", 1900, 1900, capture.ProtoUDP, b)
		var m SSDPMessage
		if d.Probe(p) != ParseSSDP(b, &m) {
			t.Fatalf("Probe and ParseSSDP disagree on %q", b)
		}
		var out collect
		d.Handle(p, &out)
		discCheckObs(t, "ssdp", out)
	})
}
