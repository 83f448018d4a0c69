package ot

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
	"github.com/passivesensor/sensor/internal/testcorpus"
)

var profinetCorpus = []string{
	"ICS-Pcaps__Profinet__pro1.pcap",
	"ICS-Pcaps__Profinet__pro5.pcap",
	"ICS-Pcaps__Profinet__pro6.pcap",
	"icsnpp-profinet-io-cm__testing__traces__profinet_io_cm_mixed_2.pcapng",
}

// macObs returns "MAC attr=value" of the observations carrying a MAC.
func macObs(out collect) map[string]bool {
	m := map[string]bool{}
	for _, o := range out {
		if !o.MAC.IsZero() {
			m[o.MAC.String()+" "+o.Attr+"="+o.Value] = true
		}
	}
	return m
}

// TestProfinetDCPTshark compares what Identify responses state with
// tshark's pn_dcp.suboption_device_nameofstation,
// pn_dcp.suboption_device_devicevendorvalue, pn_dcp.suboption_vendor_id,
// pn_dcp.suboption_device_id, pn_dcp.suboption_device_role,
// pn_dcp.suboption_ip_ip, pn_dcp.suboption_ip_subnetmask and
// pn_dcp.suboption_ip_standard_gateway, about the frame's source MAC.
func TestProfinetDCPTshark(t *testing.T) {
	n := 0
	for _, name := range profinetCorpus {
		path := testcorpus.File(t, name)
		rows := testcorpus.Tshark(t, path, "pn_rt.frame_id==0xfeff && pn_dcp.service_type==1", "eth.src",
			"pn_dcp.suboption_device_nameofstation", "pn_dcp.suboption_device_devicevendorvalue", "pn_dcp.suboption_vendor_id",
			"pn_dcp.suboption_device_id", "pn_dcp.suboption_device_role", "pn_dcp.suboption_ip_ip",
			"pn_dcp.suboption_ip_subnetmask", "pn_dcp.suboption_ip_standard_gateway")
		// Identify requests name the station sought, never the sender's.
		reqs := testcorpus.Tshark(t, path, "pn_rt.frame_id==0xfefe", "eth.src")
		got := macObs(runFile(t, path, NewProfinetDCP()))
		for _, r := range rows {
			mac := r[0]
			want := []string{}
			if v := strings.TrimSpace(r[1]); v != "" {
				want = append(want, dissect.AttrName+"="+v)
			}
			if v := strings.TrimSpace(r[2]); v != "" {
				want = append(want, dissect.AttrModel+"="+v)
			}
			if r[3] != "" {
				want = append(want, AttrProfinetVendorID+"="+r[3], AttrProfinetDeviceID+"="+r[4])
				vid, _ := strconv.ParseUint(strings.TrimPrefix(r[3], "0x"), 16, 16)
				if v := ProfinetVendor(uint16(vid)); v != "" {
					want = append(want, dissect.AttrVendor+"="+v)
				}
			}
			if r[5] != "" {
				role, _ := strconv.ParseUint(strings.TrimPrefix(r[5], "0x"), 16, 8)
				want = append(want, AttrProfinetDeviceRole+"="+dcpRoles(uint8(role)))
			}
			if r[6] != "" && r[6] != "0.0.0.0" {
				want = append(want, dissect.AttrIP+"="+r[6], AttrProfinetNetmask+"="+r[7])
			}
			for _, w := range want {
				if !got[mac+" "+w] {
					t.Errorf("%s: %s %s missing; have %v", name, mac, w, keys(got))
				}
				n++
			}
		}
		for _, r := range reqs {
			for g := range got {
				if strings.HasPrefix(g, r[0]+" "+dissect.AttrName+"=") {
					t.Errorf("%s: the sender of an Identify request took the name it asked for: %s", name, g)
				}
			}
		}
	}
	if n < 10 {
		t.Fatalf("only %d DCP facts checked", n)
	}
}

// TestProfinetDCPSet: Set requests in the corpus are flagged on their
// target with what was set and by whom (tshark: pn_dcp.service_id==4).
func TestProfinetDCPSet(t *testing.T) {
	for _, name := range []string{"ICS-Pcaps__Profinet__pro1.pcap", "ICS-Pcaps__Profinet__pro6.pcap"} {
		path := testcorpus.File(t, name)
		rows := testcorpus.Tshark(t, path, "pn_dcp.service_id==4 && pn_dcp.service_type==0", "eth.src", "eth.dst", "pn_dcp.suboption_device_nameofstation", "pn_dcp.suboption_ip_ip")
		if len(rows) == 0 {
			t.Fatalf("%s: tshark sees no Set request", name)
		}
		got := macObs(runFile(t, path, NewProfinetDCP()))
		for _, r := range rows {
			found := false
			for g := range got {
				if strings.HasPrefix(g, r[1]+" "+AttrProfinetDCPSet+"=") && strings.HasSuffix(g, " by "+r[0]) &&
					(r[2] == "" || strings.Contains(g, "name-of-station="+strconv.Quote(strings.TrimSpace(r[2])))) &&
					(r[3] == "" || strings.Contains(g, "ip="+r[3]+"/")) {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: Set %v not flagged; have %v", name, r, keys(got))
			}
		}
	}
}

// dcpIdentifyResponse builds an Identify response (IEC 61158-6-10): frame
// id 0xfeff, service 5, type 1, then blocks with block info.
func dcpIdentifyResponse(name, station string, vendor, device uint16, ip [4]byte) []byte {
	blk := func(opt, sub byte, data []byte) []byte {
		b := []byte{opt, sub, 0, 0, 0, 0}
		binary.BigEndian.PutUint16(b[2:], uint16(2+len(data)))
		b = append(b, data...)
		if len(b)%2 == 1 {
			b = append(b, 0)
		}
		return b
	}
	var blocks []byte
	blocks = append(blocks, blk(2, 1, []byte(station))...)
	blocks = append(blocks, blk(2, 2, []byte(name))...)
	blocks = append(blocks, blk(2, 3, []byte{byte(vendor >> 8), byte(vendor), byte(device >> 8), byte(device)})...)
	blocks = append(blocks, blk(2, 4, []byte{1, 0})...)
	blocks = append(blocks, blk(1, 2, append(append(ip[:], 255, 255, 255, 0), ip[0], ip[1], ip[2], 1))...)
	h := []byte{0xfe, 0xff, 5, 1, 0, 0, 0, 1, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(h[10:], uint16(len(blocks)))
	return append(h, blocks...)
}

// TestProfinetDCPVLAN: an Identify response in a VLAN-tagged frame,
// read through the sensor's decoder, is read; a repeat says nothing new.
func TestProfinetDCPVLAN(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dcp.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	src := net.HardwareAddr{0x00, 0x1b, 0x1b, 0x01, 0x02, 0x03}
	for range 3 {
		buf := gopacket.NewSerializeBuffer()
		err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{},
			&layers.Ethernet{SrcMAC: src, DstMAC: net.HardwareAddr{0x01, 0x0e, 0xcf, 0, 0, 0}, EthernetType: layers.EthernetTypeDot1Q},
			&layers.Dot1Q{VLANIdentifier: 100, Type: EtherTypeProfinet},
			gopacket.Payload(dcpIdentifyResponse("et200sp-1", "ET200SP", 0x002a, 0x0313, [4]byte{10, 0, 0, 7})))
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(1, 0), CaptureLength: len(buf.Bytes()), Length: len(buf.Bytes())}, buf.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	out := runFile(t, path, NewProfinetDCP())
	got := macObs(out)
	for _, w := range []string{"name=et200sp-1", "model=ET200SP", "vendor=Siemens AG", "ip=10.0.0.7", "profinet.device_id=0x0313", "role=" + RoleProfinetIODevice} {
		if !got["00:1b:1b:01:02:03 "+w] {
			t.Errorf("%s missing; have %v", w, keys(got))
		}
	}
	names := 0
	for _, o := range out {
		if o.Attr == dissect.AttrName {
			names++
		}
	}
	if names != 1 {
		t.Errorf("name emitted %d times for 3 identical responses", names)
	}
}

// TestProfinetCMTshark compares the Connect requests' initiator station
// names and AR UUIDs with tshark's pn_io.cminitiator_station_name and
// pn_io.ar_uuid; the requester is the IO controller.
func TestProfinetCMTshark(t *testing.T) {
	path := testcorpus.File(t, "icsnpp-profinet-io-cm__testing__traces__profinet_io_cm.pcap")
	rows := testcorpus.Tshark(t, path, "pn_io.cminitiator_station_name && dcerpc.pkt_type==0", "ip.src", "ip.dst", "pn_io.cminitiator_station_name", "pn_io.ar_uuid")
	if len(rows) == 0 {
		t.Fatal("tshark reads no Connect request")
	}
	uuids := map[string]bool{}
	for _, r := range rows {
		for _, u := range strings.Split(r[3], ",") {
			uuids[r[1]+" "+u] = true
		}
	}
	out := runFile(t, path, NewProfinetCM())
	got := obsSet(out)
	for _, r := range rows {
		for _, w := range []string{r[0] + " name=" + r[2], r[0] + " role=" + RoleProfinetIOController, r[1] + " role=" + RoleProfinetIODevice} {
			if !got[w] {
				t.Errorf("%s missing", w)
			}
		}
	}
	n := 0
	for _, o := range out {
		if o.Attr == AttrProfinetARUUID {
			n++
			if !uuids[o.IP.String()+" "+o.Value] {
				t.Errorf("AR UUID %s of %s not in tshark's", o.Value, o.IP)
			}
		}
	}
	if n == 0 {
		t.Error("no AR UUID read")
	}
}

func profinetSeeds() [][]byte {
	return [][]byte{
		dcpIdentifyResponse("n", "s", 0x2a, 1, [4]byte{10, 0, 0, 1}),
		{0xfe, 0xfd, 4, 0, 0, 0, 0, 1, 0, 0, 0, 10, 2, 2, 0, 6, 0, 1, 'a', 'b', 'c', 'd'},
	}
}

// TestProfinetTruncated offers every prefix of the seeds.
func TestProfinetTruncated(t *testing.T) {
	d := NewProfinetDCP()
	for _, s := range profinetSeeds() {
		for n := 0; n <= len(s); n++ {
			b := slices.Clone(s[:n])
			if n >= 12 {
				binary.BigEndian.PutUint16(b[10:], uint16(n-12))
			}
			p := &dissect.Packet{Packet: &capture.Packet{HasEth: true, EtherType: EtherTypeProfinet, Payload: b, SrcMAC: capture.MAC{2, 0, 0, 0, 0, byte(n)}}}
			d.Probe(p)
			d.Handle(p, dissect.SinkFunc(func(dissect.Observation) {}))
		}
	}
}

// FuzzProfinet feeds arbitrary DCP frames and PNIO-CM datagrams.
func FuzzProfinet(f *testing.F) {
	for _, s := range profinetSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d := NewProfinetDCP()
		p := &dissect.Packet{Packet: &capture.Packet{HasEth: true, EtherType: EtherTypeProfinet, Payload: b}}
		d.Probe(p)
		d.Handle(p, dissect.SinkFunc(func(dissect.Observation) {}))
		c := NewProfinetCM()
		fl := udpFlow(netip.MustParseAddrPort("10.0.0.1:49152"), netip.MustParseAddrPort("10.0.0.2:34964"))
		q := pkt(fl, flow.FromClient, 0, b)
		c.Probe(q)
		c.Handle(q, dissect.SinkFunc(func(dissect.Observation) {}))
	})
}

// BenchmarkProfinetDCP measures a repeated Identify response.
func BenchmarkProfinetDCP(b *testing.B) {
	d := NewProfinetDCP()
	p := &dissect.Packet{Packet: &capture.Packet{HasEth: true, EtherType: EtherTypeProfinet, SrcMAC: capture.MAC{0, 0x1b, 0x1b, 1, 2, 3},
		Payload: dcpIdentifyResponse("et200sp-1", "ET200SP", 0x002a, 0x0313, [4]byte{10, 0, 0, 7})}}
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	b.ReportAllocs()
	for b.Loop() {
		d.Handle(p, sink)
	}
}

// TestProfinetAllocs: a repeated Identify response allocates nothing.
func TestProfinetAllocs(t *testing.T) {
	d := NewProfinetDCP()
	p := &dissect.Packet{Packet: &capture.Packet{HasEth: true, EtherType: EtherTypeProfinet, SrcMAC: capture.MAC{0, 0x1b, 0x1b, 1, 2, 3},
		Payload: dcpIdentifyResponse("et200sp-1", "ET200SP", 0x002a, 0x0313, [4]byte{10, 0, 0, 7})}}
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	d.Handle(p, sink)
	if n := testing.AllocsPerRun(500, func() { d.Handle(p, sink) }); n != 0 {
		t.Errorf("%v allocations per repeated response, want 0", n)
	}
}
