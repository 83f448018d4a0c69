package it

import (
	"errors"
	"github.com/passivesensor/sensor/internal/testcorpus"
	"io"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
)

// decodeFile reads every frame of a corpus capture with the sensor's own
// reader and decoder, and looks UDP/TCP packets up in a flow table, as the
// pipeline does. Index i of the result is frame number i+1; frames the
// decoder rejects have a nil Packet.
func decodeFile(t testing.TB, name string) []dissect.Packet {
	t.Helper()
	path := testcorpus.File(t, name)
	src, err := capture.OpenFile(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer src.Close()
	var (
		dec  capture.Decoder
		tab  = flow.NewTable(flow.Config{})
		pkts []dissect.Packet
	)
	for {
		f, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: frame %d: %v", path, len(pkts)+1, err)
		}
		f.Data = append([]byte(nil), f.Data...) // Data is reused by Next
		p := new(capture.Packet)
		if err := dec.Decode(f, p); err != nil && p.Payload == nil {
			pkts = append(pkts, dissect.Packet{})
			continue
		}
		dp := dissect.Packet{Packet: p}
		dp.Flow, dp.Dir = tab.Lookup(p)
		pkts = append(pkts, dp)
	}
	return pkts
}

// frameNumber parses tshark's frame.number column against the frame count.
func frameNumber(t testing.TB, s string, n int) int {
	t.Helper()
	i, err := strconv.Atoi(s)
	if err != nil || i < 1 || i > n {
		t.Fatalf("tshark frame number %q out of 1..%d", s, n)
	}
	return i
}

// lldpCorpus are captures the corpus README marks "lldp".
var lldpCorpus = []string{
	"ICS-Pcaps__LLDP__LLDP.pcap",
	"ICS-Pcaps__LLDP__lldpmed_civicloc.pcap",
	"ICS-Pcaps__LLDP__simens.pcap",
	"ICS-Pcaps__COTP__CotpAnalog.pcap",
	"ICS-Pcaps__IEC61850__pres.pcap",
	"ICS-Pcaps__LocalPCAP__plc.pcap",
	"ICS-Pcaps__CIP__CIPvalue.pcap",
	"ICS-Security-Tools__pcaps__ModbusTCP__mb2.pcap",
}

// TestLLDPCorpus checks frame by frame that ParseLLDP reads what tshark
// reads: chassis MAC, system name, enabled capabilities, management IPv4,
// port VLAN and the LLDP-MED inventory; and that Handle reports them.
func TestLLDPCorpus(t *testing.T) {
	fields := []string{"frame.number", "lldp.chassis.id.mac", "lldp.tlv.system.name",
		"lldp.tlv.enable_system_cap", "lldp.mgn.addr.ip4", "lldp.ieee.802_1.port_vlan.id",
		"lldp.media.hardware", "lldp.media.firmware", "lldp.media.software", "lldp.media.manufacturer", "lldp.media.model", "eth.src"}
	total := 0
	for _, name := range lldpCorpus {
		t.Run(name, func(t *testing.T) {
			pkts := decodeFile(t, name)
			rows := testcorpus.Tshark(t, testcorpus.File(t, name), "lldp", fields...)
			if len(rows) == 0 {
				t.Fatalf("tshark reads no LLDP in %s", name)
			}
			d := NewLLDP()
			for _, row := range rows {
				n := frameNumber(t, row[0], len(pkts))
				p := &pkts[n-1]
				if p.Packet == nil || p.EtherType != EtherTypeLLDP {
					t.Errorf("frame %d: decoder gives no LLDP frame", n)
					continue
				}
				if !d.Probe(p) {
					t.Errorf("frame %d: Probe refuses LLDP", n)
					continue
				}
				var m LLDPInfo
				if err := ParseLLDP(p.Payload, &m); err != nil {
					t.Errorf("frame %d: %v", n, err)
				}
				var buf [4 * maxText]byte
				text := func(b []byte) string { return string(cleanText(buf[:0], b, maxText)) }
				mac := ""
				if a, ok := m.ChassisMAC(); ok {
					mac = a.String()
				}
				caps := ""
				if m.HasCaps {
					caps = "0x" + strings.Repeat("0", 4-len(strconv.FormatUint(uint64(m.CapsEnabled), 16))) + strconv.FormatUint(uint64(m.CapsEnabled), 16)
				}
				var ips []string
				for _, a := range m.MgmtAddrs[:m.NumMgmt] {
					if a.Is4() {
						ips = append(ips, a.String())
					}
				}
				vlan := ""
				if m.PortVLAN != 0 {
					vlan = strconv.Itoa(int(m.PortVLAN))
				}
				got := []string{mac, text(m.SysName), caps, strings.Join(ips, ","), vlan,
					text(m.HardwareRev), text(m.FirmwareRev), text(m.SoftwareRev), text(m.Manufacturer), text(m.Model)}
				for i, g := range got { // all columns but eth.src
					if g != row[i+1] {
						t.Errorf("frame %d: %s = %q, tshark says %q", n, fields[i+1], g, row[i+1])
					}
				}
				// Handle reports the system name about the chassis MAC.
				var out collect
				d.seen = advertisers{}
				d.Handle(p, &out)
				if row[2] != "" && !hasObs(out, dissect.AttrHostname, row[2]) {
					t.Errorf("frame %d: no hostname %q observation in %+v", n, row[2], out)
				}
				owner := mac
				if owner == "" || strings.HasPrefix(owner, "00:00:00:00:00:00") {
					owner = row[len(row)-1] // the chassis id is no MAC: the sender
				}
				for _, o := range out {
					if o.MAC.String() != owner {
						t.Errorf("frame %d: observation about %s, want %s", n, o.MAC, owner)
					}
				}
				total++
			}
			// Nothing else in the capture probes as LLDP.
			seen := map[int]bool{}
			for _, row := range rows {
				seen[frameNumber(t, row[0], len(pkts))] = true
			}
			for i := range pkts {
				if !seen[i+1] && pkts[i].Packet != nil && d.Probe(&pkts[i]) {
					t.Errorf("frame %d: Probe accepts what tshark does not read as LLDP", i+1)
				}
			}
		})
	}
	t.Logf("%d LLDP frames compared with tshark", total)
}

func hasObs(out collect, attr, value string) bool {
	for _, o := range out {
		if o.Attr == attr && o.Value == value {
			return true
		}
	}
	return false
}

// TestLLDPRepeat checks that a repeated advertisement is reported once.
func TestLLDPRepeat(t *testing.T) {
	pkts := decodeFile(t, "ICS-Pcaps__LLDP__lldpmed_civicloc.pcap")
	d := NewLLDP()
	var out collect
	for i := 0; i < 3; i++ {
		for j := range pkts {
			if pkts[j].Packet != nil && d.Probe(&pkts[j]) {
				d.Handle(&pkts[j], &out)
			}
		}
	}
	first := len(out)
	if first == 0 {
		t.Fatal("no observation from lldpmed_civicloc")
	}
	var again collect
	for j := range pkts {
		if pkts[j].Packet != nil && d.Probe(&pkts[j]) {
			d.Handle(&pkts[j], &again)
		}
	}
	if len(again) != 0 {
		t.Errorf("repeated advertisement reported again: %+v", again)
	}
	for _, a := range []string{dissect.AttrHostname, dissect.AttrClass, dissect.AttrIP} {
		found := false
		for _, o := range out {
			found = found || o.Attr == a
		}
		if !found {
			t.Errorf("no %s observation from lldpmed_civicloc: %+v", a, out)
		}
	}
}

// TestLLDPClass checks the capability to class mapping.
func TestLLDPClass(t *testing.T) {
	for _, c := range []struct {
		caps uint16
		want string
	}{
		{CapBridge, "switch"},
		{CapBridge | CapRouter, "router"},
		{CapBridge | CapTelephone, "phone"},
		{CapBridge | CapWLANAP, "access-point"},
		{CapStation, ""},
		{0, ""},
	} {
		if got := capsClass(c.caps); got != c.want {
			t.Errorf("capsClass(%#x) = %q, want %q", c.caps, got, c.want)
		}
	}
}

// lldpSeeds are the LLDP payloads of the corpus.
func lldpSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, name := range lldpCorpus[:3] {
		for _, p := range decodeFile(t, name) {
			if p.Packet != nil && p.EtherType == EtherTypeLLDP {
				seeds = append(seeds, p.Payload)
			}
		}
	}
	return seeds
}

func lldpPacket(b []byte) *dissect.Packet {
	return &dissect.Packet{Packet: &capture.Packet{HasEth: true, EtherType: EtherTypeLLDP,
		SrcMAC: capture.MAC{0, 1, 2, 3, 4, 5}, Payload: b}}
}

// checkObs fails on an observation that is empty, about nobody, or whose
// value is invalid or unbounded.
func checkObs(t *testing.T, proto string, out collect) {
	t.Helper()
	for _, o := range out {
		if o.Protocol != proto || o.Attr == "" || o.Value == "" {
			t.Fatalf("bad observation %+v", o)
		}
		if !utf8.ValidString(o.Value) || len(o.Value) > 1100 {
			t.Fatalf("%s value invalid or too long: %q", o.Attr, o.Value)
		}
		if !o.IP.IsValid() && o.MAC.IsZero() {
			t.Fatalf("observation about no device: %+v", o)
		}
	}
}

// TestLLDPTruncated cuts every corpus LLDPDU at every length.
func TestLLDPTruncated(t *testing.T) {
	seeds := lldpSeeds(t)
	if len(seeds) == 0 {
		t.Fatal("no LLDP seeds")
	}
	for _, s := range seeds {
		for n := 0; n <= len(s); n++ {
			b := append([]byte(nil), s[:n]...)
			d := NewLLDP()
			var out collect
			if d.Probe(lldpPacket(b)) {
				d.Handle(lldpPacket(b), &out)
			}
			checkObs(t, "lldp", out)
		}
	}
}

func FuzzLLDP(f *testing.F) {
	for _, s := range lldpSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m LLDPInfo
		err := ParseLLDP(b, &m)
		d := NewLLDP()
		if d.Probe(lldpPacket(b)) != (err != ErrLLDPMandatory) {
			t.Fatalf("Probe and ParseLLDP disagree (err %v)", err)
		}
		var out collect
		d.Handle(lldpPacket(b), &out)
		checkObs(t, "lldp", out)
	})
}

// TestDiscoveryAllocs checks that LLDP, CDP, DNS and mDNS allocate nothing
// per packet once what a capture says has been reported (the steady
// state): Probe and Handle of every frame again.
func TestDiscoveryAllocs(t *testing.T) {
	for _, c := range []struct {
		file string
		d    dissect.Dissector
	}{
		{"ICS-Pcaps__LLDP__LLDP.pcap", NewLLDP()},
		{"ICS-Pcaps__LLDP__LLDP.pcap", NewCDP()},
		{"Malcolm-PCAP__pcaps__protocols__DNS.pcap", NewDNS()},
		{"nDPI__tests__cfgs__default__pcap__telegram.pcap", NewMDNS()},
	} {
		pkts := decodeFile(t, c.file)
		var sel []*dissect.Packet
		for i := range pkts {
			p := &pkts[i]
			if p.Packet != nil && c.d.Probe(p) {
				sel = append(sel, p)
			}
		}
		if len(sel) == 0 {
			t.Fatalf("%s: no %s packet", c.file, c.d.Name())
		}
		var out collect
		for _, p := range sel {
			c.d.Handle(p, &out)
		}
		n := 0
		sink := dissect.SinkFunc(func(dissect.Observation) { n++ })
		allocs := testing.AllocsPerRun(5, func() {
			for _, p := range sel {
				if c.d.Probe(p) {
					c.d.Handle(p, sink)
				}
			}
		})
		if allocs != 0 || n != 0 {
			t.Errorf("%s on %s: %.0f allocations and %d observations per pass over %d packets in steady state", c.d.Name(), c.file, allocs, n, len(sel))
		}
	}
}

// lldpTLV builds one LLDP TLV.
func lldpTLV(typ byte, v ...byte) []byte {
	return append([]byte{typ<<1 | byte(len(v)>>8), byte(len(v))}, v...)
}

// TestLLDPInventory builds an LLDPDU of an IP phone with a locally assigned
// chassis id, a management address, a port VLAN and LLDP-MED inventory (no
// corpus capture has inventory TLVs) and checks what Handle reports.
func TestLLDPInventory(t *testing.T) {
	med := func(sub byte, s string) []byte { return lldpTLV(127, append([]byte{0x00, 0x12, 0xbb, sub}, s...)...) }
	var b []byte
	b = append(b, lldpTLV(1, append([]byte{7}, "phone-7"...)...)...)
	b = append(b, lldpTLV(2, append([]byte{5}, "eth0"...)...)...)
	b = append(b, lldpTLV(3, 0, 120)...)
	b = append(b, lldpTLV(5, []byte("SEP001122")...)...)
	b = append(b, lldpTLV(7, 0, 0x24, 0, 0x24)...) // bridge, telephone
	b = append(b, lldpTLV(8, 5, 1, 10, 0, 0, 9, 2, 0, 0, 0, 1, 0)...)
	b = append(b, lldpTLV(127, 0x00, 0x80, 0xc2, 1, 0, 42)...)
	b = append(b, med(5, "HW 1.2")...)
	b = append(b, med(6, "FW 3.4")...)
	b = append(b, med(7, "SW 5.6")...)
	b = append(b, med(8, "SN123")...)
	b = append(b, med(9, "Acme")...)
	b = append(b, med(10, "Phone 9000")...)
	b = append(b, lldpTLV(0)...)
	p := lldpPacket(b)
	d := NewLLDP()
	if !d.Probe(p) {
		t.Fatal("Probe refuses the built LLDPDU")
	}
	var out collect
	d.Handle(p, &out)
	want := map[string]string{
		dissect.AttrHostname: "SEP001122", dissect.AttrClass: "phone", dissect.AttrIP: "10.0.0.9",
		dissect.AttrVLAN: "42", dissect.AttrHardware: "HW 1.2", dissect.AttrFirmware: "FW 3.4",
		AttrLLDPSoftwareRev: "SW 5.6", dissect.AttrSerial: "SN123", dissect.AttrVendor: "Acme",
		dissect.AttrModel: "Phone 9000", AttrLLDPChassisID: "phone-7", AttrLLDPPortID: "eth0",
		AttrLLDPCaps: "bridge,telephone",
	}
	got := map[string]string{}
	for _, o := range out {
		got[o.Attr] = o.Value
		if o.MAC != p.SrcMAC {
			t.Errorf("%s about %s, want the sender %s", o.Attr, o.MAC, p.SrcMAC)
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}
