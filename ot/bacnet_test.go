package ot

import (
	"bufio"
	"bytes"
	"net/netip"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
	"github.com/passivesensor/sensor/internal/testcorpus"
)

// BACnet/IP captures of the corpus.
var bacnetCorpus = []string{
	"icsnpp-bacnet__testing__traces__bacnet_example.pcap",
	"ICS-Pcaps__BacNET__bacnet-services.pcap",
	"ICS-Pcaps__BacNET__bacnet_test.pcap",
	"ICS-Pcaps__BacNET__BACnetARRAY-elements.pcap",
	"ICS-Pcaps__BacNET__BACnet-MSTP-SNAP-Mixed.pcap",
	"ICS-Pcaps__BacNET__bacnet-properties.pcap",
	"ICS-Pcaps__BacNET__BACnetDeviceObjectReference.pcap",
	"ICS-Pcaps__BacNET__BACnetL_SchedRPM.pcap",
}

// TestBACnetIAmTshark compares what I-Am says (device instance, vendor id
// and the vendor's name) with tshark's bacapp.instance_number and
// bacapp.vendor_identifier, for I-Ams sent by the B/IP device itself (no
// NPDU source network: bacnet.snet absent).
func TestBACnetIAmTshark(t *testing.T) {
	n := 0
	for _, name := range bacnetCorpus {
		path := testcorpus.File(t, name)
		rows := testcorpus.Tshark(t, path, "bacapp.unconfirmed_service==0 && bvlc.function!=0x04 && !bacnet.snet && udp",
			"ip.src", "bacapp.instance_number", "bacapp.vendor_identifier")
		if len(rows) == 0 {
			continue
		}
		got := obsSet(runFile(t, path, NewBACnet()))
		for _, r := range rows {
			if strings.HasSuffix(r[0], ".255") {
				continue // a directed broadcast as source address: no device's own
			}
			vendor, _ := strconv.Atoi(r[2])
			want := []string{AttrBACnetInstance + "=" + r[1], AttrBACnetVendorID + "=" + r[2]}
			if v := BACnetVendor(uint32(vendor)); v != "" {
				want = append(want, dissect.AttrVendor+"="+v, dissect.AttrRole+"="+RoleBACnetDevice)
			}
			for _, w := range want {
				if !got[r[0]+" "+w] {
					t.Errorf("%s: %s %s missing", name, r[0], w)
				}
			}
			n++
		}
	}
	if n == 0 {
		t.Fatal("no I-Am in the corpus")
	}
}

var (
	bacPropLine = regexp.MustCompile(`^\s+(vendor-name|model-name|firmware-revision|application-software-version|object-name|location|description): .*?'(.*)'$`)
	bacObjLine  = regexp.MustCompile(`^\s+ObjectIdentifier: ([a-z-]+), (\d+)$`)
	bacIPLine   = regexp.MustCompile(`^Internet Protocol Version 4, Src: ([0-9.]+),`)
)

// bacnetTsharkProps reads, from tshark's dissection of readProperty and
// readPropertyMultiple ACKs of devices on the B/IP network itself, the
// Device object's string properties: "IP property=value".
func bacnetTsharkProps(t *testing.T, path string) map[string]bool {
	testcorpus.NeedTshark(t)
	out, err := exec.Command("tshark", "-r", path, "-Y", "bacapp.type==3 && (bacapp.confirmed_service==12 || bacapp.confirmed_service==14) && !bacnet.snet && udp", "-O", "bacapp").Output()
	if err != nil {
		t.Fatalf("tshark %s: %v", path, err)
	}
	m := map[string]bool{}
	var ip, obj string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		l := sc.Text()
		if g := bacIPLine.FindStringSubmatch(l); g != nil {
			ip, obj = g[1], ""
		} else if g := bacObjLine.FindStringSubmatch(l); g != nil && !strings.HasPrefix(l, "        ") {
			obj = g[1]
		} else if g := bacPropLine.FindStringSubmatch(l); g != nil && obj == "device" {
			if v := strings.TrimSpace(g[2]); v != "" {
				m[ip+" "+g[1]+"="+v] = true
			}
		}
	}
	return m
}

// TestBACnetPropertiesTshark compares the Device object properties read
// from ReadProperty(-Multiple) ACKs (vendor-name, model-name,
// firmware-revision, application-software-version, object-name, location,
// description) with the strings tshark's bacapp dissector shows.
func TestBACnetPropertiesTshark(t *testing.T) {
	attrOf := map[string]string{
		"vendor-name": dissect.AttrVendor, "model-name": dissect.AttrModel, "firmware-revision": dissect.AttrFirmware,
		"application-software-version": AttrBACnetAppVersion, "object-name": dissect.AttrName,
		"location": AttrBACnetLocation, "description": AttrBACnetDescription,
	}
	n := 0
	for _, name := range bacnetCorpus {
		path := testcorpus.File(t, name)
		want := bacnetTsharkProps(t, path)
		if len(want) == 0 {
			continue
		}
		got := obsSet(runFile(t, path, NewBACnet()))
		for w := range want {
			ip, rest, _ := strings.Cut(w, " ")
			prop, v, _ := strings.Cut(rest, "=")
			if !got[ip+" "+attrOf[prop]+"="+v] {
				t.Errorf("%s: %s %s=%q not read (as %s)", name, ip, prop, v, attrOf[prop])
			}
			n++
		}
	}
	if n < 10 {
		t.Fatalf("only %d device properties in the corpus", n)
	}
}

// TestBACnetServicesTshark compares the confirmed services requested of
// each device, and the Error, Reject and Abort answers, with tshark's
// bacapp.confirmed_service, bacapp.error_class/error_code,
// bacapp.reject_reason and bacapp.abort_reason; roles follow requests.
func TestBACnetServicesTshark(t *testing.T) {
	for _, name := range bacnetCorpus {
		path := testcorpus.File(t, name)
		want := map[string]bool{}
		for _, r := range testcorpus.Tshark(t, path, "udp && (bacapp.type>=5 || bacapp.type==0 && !bvlc.function==0x04)", "ip.src", "ip.dst", "bacapp.type",
			"bacapp.confirmed_service", "bacapp.error_class", "bacapp.error_code", "bacapp.reject_reason", "bacapp.abort_reason") {
			n := func(i int) int { v, _ := strconv.Atoi(r[i]); return v }
			switch r[2] {
			case "0":
				want[r[1]+" service=bacnet:"+bacConfirmed[n(3)]] = true
			case "5":
				want[r[0]+" "+AttrBACnetError+"=bacnet:"+bacConfirmed[n(3)]+" error "+bacName(bacErrorClasses[:], n(4), "class")+"/"+bacName(bacErrorCodes[:], n(5), "code")] = true
			case "6":
				want[r[0]+" "+AttrBACnetError+"=bacnet:reject "+bacName(bacRejectReasons[:], n(6), "reason")] = true
			case "7":
				want[r[0]+" "+AttrBACnetError+"=bacnet:abort "+bacName(bacAbortReasons[:], n(7), "reason")] = true
			}
		}
		if len(want) == 0 {
			continue
		}
		out := runFile(t, path, NewBACnet())
		got := obsSet(out, dissect.AttrService, AttrBACnetError)
		for w := range want {
			if !got[w] {
				t.Errorf("%s: %s not observed", name, w)
			}
		}
		for g := range got {
			if !want[g] {
				t.Errorf("%s: observed %s that tshark does not see", name, g)
			}
		}
		for _, o := range out {
			if o.Attr == dissect.AttrService && o.Peer == o.IP {
				t.Errorf("%s: %v served to itself", name, o)
			}
		}
	}
}

// TestBACnetFlags: the capture of many services flags the control actions.
func TestBACnetFlags(t *testing.T) {
	got := obsSet(runFile(t, testcorpus.File(t, "ICS-Pcaps__BacNET__bacnet-services.pcap"), NewBACnet()),
		AttrBACnetDCC, AttrBACnetReinitialize, AttrBACnetFileWrite, AttrBACnetWrite)
	for _, w := range []string{
		AttrBACnetDCC + "=bacnet:deviceCommunicationControl",
		AttrBACnetReinitialize + "=bacnet:reinitializeDevice",
		AttrBACnetFileWrite + "=bacnet:atomicWriteFile",
	} {
		found := false
		for g := range got {
			found = found || strings.HasSuffix(g, " "+w)
		}
		if !found {
			t.Errorf("%s not flagged; have %v", w, keys(got))
		}
	}
}

// bacnetIAm builds an I-Am from the spec (ASHRAE 135, 16.10.2; tags
// 20.2.1): device object id, max APDU (unsigned), segmentation
// (enumerated), vendor id (unsigned).
func bacnetIAm(inst uint32, vendor uint16) []byte {
	oid := uint32(8)<<22 | inst
	apdu := []byte{0x10, 0x00, 0xc4, byte(oid >> 24), byte(oid >> 16), byte(oid >> 8), byte(oid), 0x22, 0x05, 0xc4, 0x91, 0x03, 0x22, byte(vendor >> 8), byte(vendor)}
	return bacnetBVLC(0x0b, append([]byte{0x01, 0x00}, apdu...))
}

func bacnetBVLC(fn byte, npdu []byte) []byte {
	b := []byte{0x81, fn, 0, 0}
	b = append(b, npdu...)
	b[2], b[3] = byte(len(b)>>8), byte(len(b))
	return b
}

// bacnetRPAck builds a ReadProperty-ACK (15.5.1.3) of a Device object
// property holding a UTF-8 character string.
func bacnetRPAck(inst uint32, prop byte, s string) []byte {
	oid := uint32(8)<<22 | inst
	apdu := []byte{0x30, 0x01, 0x0c, 0x0c, byte(oid >> 24), byte(oid >> 16), byte(oid >> 8), byte(oid), 0x19, prop, 0x3e, 0x75, byte(len(s) + 1), 0x00}
	apdu = append(append(apdu, s...), 0x3f)
	return bacnetBVLC(0x0a, append([]byte{0x01, 0x00}, apdu...))
}

// TestBACnetRemoteAndForwarded (hand-built from the spec): an I-Am from a
// device behind a router (SNET present) is not the router's identity; a
// Forwarded-NPDU's I-Am is about its original source.
func TestBACnetRemoteAndForwarded(t *testing.T) {
	c := NewBACnet()
	var out collect
	f := udpFlow(netip.MustParseAddrPort("10.2.0.1:47808"), netip.MustParseAddrPort("10.2.0.255:47808"))
	iam := bacnetIAm(77, 5)
	// NPDU with SNET 9, SLEN 1, SADR 0x21 (clause 6.2.2).
	remote := bacnetBVLC(0x0b, append([]byte{0x01, 0x08, 0x00, 0x09, 0x01, 0x21}, iam[6:]...))
	fwd := bacnetBVLC(0x04, append([]byte{10, 2, 0, 50, 0xba, 0xc0}, iam[4:]...))
	for _, b := range [][]byte{remote, fwd} {
		p := pkt(f, flow.FromClient, 0, b)
		if !c.Probe(p) {
			t.Fatalf("not probed: %x", b)
		}
		c.Handle(p, &out)
	}
	got := obsSet(out)
	for _, w := range []string{
		"10.2.0.1 " + AttrBACnetRemoteDevice + "=net 9 mac 0x21: device 77 vendor 5 " + BACnetVendor(5),
		"10.2.0.1 role=" + RoleBACnetRouter, "10.2.0.1 role=" + RoleBACnetBBMD,
		"10.2.0.50 " + AttrBACnetInstance + "=77", "10.2.0.50 vendor=" + BACnetVendor(5),
	} {
		if !got[w] {
			t.Errorf("%s missing; have %v", w, keys(got))
		}
	}
	if got["10.2.0.1 "+AttrBACnetInstance+"=77"] {
		t.Error("the router took the remote device's instance")
	}
}

func bacnetSeeds() [][]byte {
	return [][]byte{
		bacnetIAm(1234, 260),
		bacnetRPAck(1234, propModelName, "MODEL-X"),
		bacnetBVLC(0x05, []byte{0, 60}),
		bacnetBVLC(0x0a, []byte{0x01, 0x04, 0x02, 0x75, 0x01, 0x0c, 0x0c, 0x02, 0x00, 0x04, 0xd2, 0x19, 0x46}),
		bacnetBVLC(0x0a, []byte{0x01, 0x00, 0x50, 0x01, 0x0c, 0x91, 0x02, 0x91, 0x20}),
		bacnetBVLC(0x0a, []byte{0x01, 0x00, 0x30, 0x02, 0x0e, 0x0c, 0x02, 0x00, 0x04, 0xd2, 0x1e, 0x29, 0x46, 0x4e, 0x75, 0x04, 0x00, 'A', 'B', 'C', 0x4f, 0x1f}),
	}
}

// TestBACnetRPM (hand-built from 15.7.1.3): a ReadPropertyMultiple-ACK
// holding model-name is read.
func TestBACnetRPM(t *testing.T) {
	c := NewBACnet()
	var out collect
	f := udpFlow(netip.MustParseAddrPort("10.2.0.9:47808"), netip.MustParseAddrPort("10.2.0.7:47808"))
	c.Handle(pkt(f, flow.FromClient, 0, bacnetSeeds()[5]), &out)
	if got := obsSet(out); !got["10.2.0.9 model=ABC"] {
		t.Errorf("model not read from RPM ACK: %v", keys(got))
	}
}

// TestBACnetTruncated offers every prefix of every seed.
func TestBACnetTruncated(t *testing.T) {
	for _, s := range bacnetSeeds() {
		for n := 0; n <= len(s); n++ {
			c := NewBACnet()
			f := udpFlow(netip.MustParseAddrPort("10.2.0.9:47808"), netip.MustParseAddrPort("10.2.0.7:47808"))
			b := slices.Clone(s[:n])
			if n >= 4 {
				b[2], b[3] = byte(n>>8), byte(n)
			}
			p := pkt(f, flow.FromClient, 0, b)
			c.Probe(p)
			c.Handle(p, dissect.SinkFunc(func(dissect.Observation) {}))
		}
	}
}

// TestBACnetAllocs: packets that say nothing new allocate nothing.
func TestBACnetAllocs(t *testing.T) {
	c := NewBACnet()
	f := udpFlow(netip.MustParseAddrPort("10.2.0.9:47808"), netip.MustParseAddrPort("10.2.0.7:47808"))
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	p1, p2 := pkt(f, flow.FromClient, 0, bacnetIAm(5, 260)), pkt(f, flow.FromClient, 0, bacnetRPAck(5, propModelName, "M"))
	c.Handle(p1, sink)
	c.Handle(p2, sink)
	if n := testing.AllocsPerRun(500, func() { c.Handle(p1, sink); c.Handle(p2, sink) }); n != 0 {
		t.Errorf("%v allocations, want 0", n)
	}
}

// FuzzBACnet feeds arbitrary datagrams.
func FuzzBACnet(f *testing.F) {
	for _, s := range bacnetSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c := NewBACnet()
		fl := udpFlow(netip.MustParseAddrPort("10.2.0.9:47808"), netip.MustParseAddrPort("10.2.0.7:47808"))
		if len(b) >= 4 {
			b[2], b[3] = byte(len(b)>>8), byte(len(b))
		}
		p := pkt(fl, flow.FromClient, 0, b)
		c.Probe(p)
		c.Handle(p, dissect.SinkFunc(func(o dissect.Observation) {
			if len(o.Value) > 8*maxText {
				t.Fatalf("unbounded value %q", o.Value)
			}
		}))
	})
}

// BenchmarkBACnetHandle measures an I-Am and a ReadProperty-ACK.
func BenchmarkBACnetHandle(b *testing.B) {
	c := NewBACnet()
	f := udpFlow(netip.MustParseAddrPort("10.2.0.9:47808"), netip.MustParseAddrPort("10.2.0.7:47808"))
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	p1, p2 := pkt(f, flow.FromClient, 0, bacnetIAm(5, 260)), pkt(f, flow.FromClient, 0, bacnetRPAck(5, propModelName, "M"))
	b.ReportAllocs()
	for b.Loop() {
		c.Handle(p1, sink)
		c.Handle(p2, sink)
	}
}
