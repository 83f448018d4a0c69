package it

import (
	"encoding/binary"
	"fmt"
	"github.com/passivesensor/sensor/internal/testcorpus"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
)

// arpCorpus are captures the corpus README marks "arp-mac".
var arpCorpus = []string{
	"ICS-Pcaps__ARP__arp.pcap",
	"ICS-Pcaps__CIP__ENIP_CIP-CM.pcap",
	"ICS-Pcaps__IEC60870-104__50.pcap",
	"ICS-Pcaps__IEC60870-104__58_59.pcap",
	"ICS-Pcaps__Profinet__pro1.pcap",
	"ICS-Pcaps__S7COMM__s3.pcap",
	"ICS-Pcaps__HART_IP__hart_ip.pcap",
	"ICS-Pcaps__LocalPCAP__plc.pcap",
	"ICS-Pcaps__NetBIOS__Misc_NetBIOS_Traffic.pcap",
	"ICS-Security-Tools__pcaps__beckoff__addroute.pcapng",
	"ICS-Security-Tools__pcaps__openics__DNP3-ReadRequest.pcap",
	"ct-samples__Protocols__DLMS-COSEM__Matousp-PCAPs__DLMSDirector.pcap",
	"Malcolm-PCAP__pcaps__protocols__DHCP.pcap",
	"Malcolm-PCAP__pcaps__protocols__Telnet.pcap",
	"Malcolm-PCAP__pcaps__protocols__BSAP.pcap",
	"ICS-Security-Tools__pcaps__ModbusTCP__mb2.pcap",
}

// TestARPCorpus checks that the (IP, MAC) bindings the dissector reports
// are the senders tshark reads from the same ARP frames.
func TestARPCorpus(t *testing.T) {
	for _, name := range arpCorpus {
		t.Run(name, func(t *testing.T) {
			pkts := readCorpus(t, name)
			// One pass of tshark gives the senders, and which frames are
			// gratuitous, probes, or claim an IP seen with another MAC
			// (tshark flags those however far apart; a conflict we report
			// must be one of them).
			want, wantGrat, wantProbe, dup := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
			for _, row := range testcorpus.Tshark(t, testcorpus.File(t, name), "arp", "arp.src.proto_ipv4", "arp.src.hw_mac",
				"arp.dst.proto_ipv4", "arp.isgratuitous", "arp.isprobe", "arp.duplicate-address-detected") {
				if row[0] == "" || row[0] == "0.0.0.0" {
					if row[4] != "" {
						wantProbe[row[2]+" "+row[1]] = true
					}
					continue
				}
				want[row[0]+" "+row[1]] = true
				if row[3] != "" {
					wantGrat[row[0]+" "+row[1]] = true
				}
				if row[5] != "" {
					dup[row[0]] = true
				}
			}
			if len(want) == 0 {
				t.Fatalf("tshark reads no ARP sender in %s", name)
			}
			gotGrat, gotProbe := map[string]bool{}, map[string]bool{}
			conflicts := 0
			got := map[string]bool{}
			for _, o := range run(NewARP(), pkts) {
				switch o.Attr {
				case AttrARPGratuitous:
					gotGrat[o.Value+" "+o.MAC.String()] = true
				case AttrARPProbe:
					gotProbe[o.Value+" "+o.MAC.String()] = true
				case AttrARPConflict:
					conflicts++
					if !dup[o.IP.String()] {
						t.Errorf("conflict on %s (%s), which tshark does not flag as a duplicate address", o.IP, o.Value)
					}
					if want := o.IP.String() + " claimed by "; !strings.HasPrefix(o.Value, want) {
						t.Errorf("conflict value %q does not begin %q", o.Value, want)
					}
				}
				if o.Attr != dissect.AttrIP {
					continue
				}
				if o.Value != o.IP.String() {
					t.Errorf("binding value %q, IP %v", o.Value, o.IP)
				}
				got[o.IP.String()+" "+o.MAC.String()] = true
			}
			if diff := setDiff(want, got); diff != "" {
				t.Errorf("ARP bindings differ from tshark's senders:\n%s", diff)
			}
			if diff := setDiff(wantGrat, gotGrat); diff != "" {
				t.Errorf("gratuitous ARPs differ from tshark's arp.isgratuitous:\n%s", diff)
			}
			if diff := setDiff(wantProbe, gotProbe); diff != "" {
				t.Errorf("ARP probes differ from tshark's arp.isprobe:\n%s", diff)
			}
			t.Logf("%d bindings, %d gratuitous, %d probes, %d conflicts (tshark: %d duplicate addresses)",
				len(got), len(gotGrat), len(gotProbe), conflicts, len(dup))
		})
	}
}

// setDiff describes how two sets differ, or returns "".
func setDiff(want, got map[string]bool) string {
	var lines []string
	for k := range want {
		if !got[k] {
			lines = append(lines, "missing: "+k)
		}
	}
	for k := range got {
		if !want[k] {
			lines = append(lines, "extra:   "+k)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// arpFrame builds the payload of an Ethernet/IPv4 ARP message.
func arpFrame(op uint16, smac capture.MAC, sip string, tmac capture.MAC, tip string) []byte {
	b := make([]byte, arpLen, 46) // padded as on the wire
	binary.BigEndian.PutUint16(b[0:], 1)
	binary.BigEndian.PutUint16(b[2:], 0x0800)
	b[4], b[5] = 6, 4
	binary.BigEndian.PutUint16(b[6:], op)
	copy(b[8:], smac[:])
	s := netip.MustParseAddr(sip).As4()
	copy(b[14:], s[:])
	copy(b[18:], tmac[:])
	d := netip.MustParseAddr(tip).As4()
	copy(b[24:], d[:])
	return b[:46]
}

func arpPacket(t0 time.Time, payload []byte) *dissect.Packet {
	return &dissect.Packet{Packet: &capture.Packet{Time: t0, HasEth: true, EtherType: EtherTypeARP, Payload: payload}}
}

var (
	macA = capture.MAC{0x00, 0x1d, 0xe0, 0x8c, 0xcf, 0xf3}
	macB = capture.MAC{0x02, 0x00, 0x4c, 0x4f, 0x4f, 0x50}
	macC = capture.MAC{0x00, 0x0c, 0x29, 0x59, 0xfd, 0x21}
	t0   = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
)

// feed hands frames to d as the registry does and returns what it emits.
func feed(d *ARP, pkts ...*dissect.Packet) collect {
	var out collect
	for _, p := range pkts {
		if d.Probe(p) {
			d.Handle(p, &out)
		}
	}
	return out
}

func attrs(c collect) string {
	var s []string
	for _, o := range c {
		v := o.Attr + "=" + o.Value
		if o.IP.IsValid() {
			v += " ip=" + o.IP.String()
		}
		if !o.MAC.IsZero() {
			v += " mac=" + o.MAC.String()
		}
		s = append(s, v)
	}
	return strings.Join(s, "; ")
}

func TestARPRequestReply(t *testing.T) {
	d := NewARP()
	got := feed(d,
		arpPacket(t0, arpFrame(arpRequest, macA, "192.168.1.10", capture.MAC{}, "192.168.1.1")),
		arpPacket(t0.Add(time.Millisecond), arpFrame(arpReply, macB, "192.168.1.1", macA, "192.168.1.10")),
		// Repeats within Refresh say nothing new.
		arpPacket(t0.Add(time.Second), arpFrame(arpRequest, macA, "192.168.1.10", capture.MAC{}, "192.168.1.1")),
	)
	want := "ip=192.168.1.10 ip=192.168.1.10 mac=00:1d:e0:8c:cf:f3; ip=192.168.1.1 ip=192.168.1.1 mac=02:00:4c:4f:4f:50"
	if s := attrs(got); s != want {
		t.Errorf("got  %s\nwant %s", s, want)
	}
	for _, o := range got {
		if o.Protocol != "arp" || !o.Time.After(t0.Add(-1)) {
			t.Errorf("observation %+v: protocol or time wrong", o)
		}
	}
	// After Refresh the binding is reported again.
	got = feed(d, arpPacket(t0.Add(DefaultARPRefresh+time.Second), arpFrame(arpRequest, macA, "192.168.1.10", capture.MAC{}, "192.168.1.1")))
	if len(got) != 1 || got[0].Attr != dissect.AttrIP {
		t.Errorf("after refresh: got %s", attrs(got))
	}
}

func TestARPGratuitous(t *testing.T) {
	d := NewARP()
	got := feed(d,
		arpPacket(t0, arpFrame(arpRequest, macA, "10.0.0.5", capture.MAC{}, "10.0.0.5")),
		arpPacket(t0.Add(time.Second), arpFrame(arpReply, macA, "10.0.0.5", capture.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, "10.0.0.5")),
	)
	want := "ip=10.0.0.5 ip=10.0.0.5 mac=00:1d:e0:8c:cf:f3; arp.gratuitous=10.0.0.5 ip=10.0.0.5 mac=00:1d:e0:8c:cf:f3"
	if s := attrs(got); s != want {
		t.Errorf("got  %s\nwant %s", s, want)
	}
}

func TestARPProbe(t *testing.T) {
	d := NewARP()
	var pkts []*dissect.Packet
	for i := range 3 { // RFC 5227: three probes
		pkts = append(pkts, arpPacket(t0.Add(time.Duration(i)*time.Second), arpFrame(arpRequest, macC, "0.0.0.0", capture.MAC{}, "169.254.7.9")))
	}
	got := feed(d, pkts...)
	want := "arp.probe=169.254.7.9 mac=00:0c:29:59:fd:21"
	if s := attrs(got); s != want {
		t.Errorf("got  %s\nwant %s", s, want)
	}
	if d.Len() != 0 {
		t.Errorf("a probe entered the table: %d entries", d.Len())
	}
}

func TestARPConflict(t *testing.T) {
	d := NewARP()
	got := feed(d,
		arpPacket(t0, arpFrame(arpReply, macA, "10.1.1.1", macC, "10.1.1.2")),
		arpPacket(t0.Add(10*time.Second), arpFrame(arpReply, macB, "10.1.1.1", macC, "10.1.1.2")),
		// Flapping back within the window: the same pair, no new conflict.
		arpPacket(t0.Add(20*time.Second), arpFrame(arpReply, macA, "10.1.1.1", macC, "10.1.1.2")),
		arpPacket(t0.Add(30*time.Second), arpFrame(arpReply, macB, "10.1.1.1", macC, "10.1.1.2")),
	)
	want := "ip=10.1.1.1 ip=10.1.1.1 mac=00:1d:e0:8c:cf:f3; " +
		"ip=10.1.1.1 ip=10.1.1.1 mac=02:00:4c:4f:4f:50; " +
		"arp.conflict=10.1.1.1 claimed by 00:1d:e0:8c:cf:f3 and 02:00:4c:4f:4f:50 ip=10.1.1.1"
	if s := attrs(got); s != want {
		t.Errorf("got  %s\nwant %s", s, want)
	}
	// A third MAC is a new conflict.
	got = feed(d, arpPacket(t0.Add(40*time.Second), arpFrame(arpReply, macC, "10.1.1.1", macA, "10.1.1.2")))
	want = "ip=10.1.1.1 ip=10.1.1.1 mac=00:0c:29:59:fd:21; arp.conflict=10.1.1.1 claimed by 02:00:4c:4f:4f:50 and 00:0c:29:59:fd:21 ip=10.1.1.1"
	if s := attrs(got); s != want {
		t.Errorf("third MAC: got  %s\nwant %s", s, want)
	}
}

func TestARPNoConflict(t *testing.T) {
	vrrp := capture.MAC{0x00, 0x00, 0x5e, 0x00, 0x01, 0x07}
	cases := []struct {
		name  string
		pkts  []*dissect.Packet
		bound int
	}{
		{"address moved after the window", []*dissect.Packet{
			arpPacket(t0, arpFrame(arpReply, macA, "10.1.1.1", macC, "10.1.1.2")),
			arpPacket(t0.Add(DefaultARPConflictWindow+time.Second), arpFrame(arpReply, macB, "10.1.1.1", macC, "10.1.1.2")),
		}, 2},
		{"VRRP virtual MAC and the router's own", []*dissect.Packet{
			arpPacket(t0, arpFrame(arpReply, vrrp, "10.1.1.1", macC, "10.1.1.2")),
			arpPacket(t0.Add(time.Second), arpFrame(arpReply, macB, "10.1.1.1", macC, "10.1.1.2")),
		}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := feed(NewARP(), c.pkts...)
			n := 0
			for _, o := range got {
				switch o.Attr {
				case AttrARPConflict:
					t.Errorf("unexpected conflict: %s", o.Value)
				case dissect.AttrIP:
					n++
				}
			}
			if n != c.bound {
				t.Errorf("%d bindings, want %d: %s", n, c.bound, attrs(got))
			}
		})
	}
}

func TestARPRejects(t *testing.T) {
	good := arpFrame(arpRequest, macA, "10.0.0.1", capture.MAC{}, "10.0.0.2")
	mutate := func(f func(b []byte)) []byte {
		b := append([]byte(nil), good...)
		f(b)
		return b
	}
	cases := map[string][]byte{
		"htype token ring":  mutate(func(b []byte) { b[1] = 6 }),
		"ptype IPv6":        mutate(func(b []byte) { b[2], b[3] = 0x86, 0xdd }),
		"hlen 8":            mutate(func(b []byte) { b[4] = 8 }),
		"plen 16":           mutate(func(b []byte) { b[5] = 16 }),
		"op RARP":           mutate(func(b []byte) { b[7] = 3 }),
		"multicast sender":  mutate(func(b []byte) { b[8] = 0x01 }),
		"loopback sender":   mutate(func(b []byte) { b[14] = 127 }),
		"broadcast sender":  mutate(func(b []byte) { copy(b[14:18], []byte{255, 255, 255, 255}) }),
		"short by one byte": good[:arpLen-1],
	}
	for name, b := range cases {
		d := NewARP()
		if got := feed(d, arpPacket(t0, b)); len(got) != 0 {
			t.Errorf("%s: emitted %s", name, attrs(got))
		}
	}
	// Wrong EtherType: not ARP whatever the payload.
	p := arpPacket(t0, good)
	p.EtherType = 0x8035
	if NewARP().Probe(p) {
		t.Error("Probe accepted EtherType 0x8035")
	}
}

// TestARPBound fills the table far past its bound.
func TestARPBound(t *testing.T) {
	d := &ARP{MaxEntries: 100}
	for i := range 1000 {
		ip := fmt.Sprintf("10.0.%d.%d", i/250, i%250+1)
		feed(d, arpPacket(t0.Add(time.Duration(i)*time.Millisecond), arpFrame(arpRequest, macA, ip, capture.MAC{}, "10.0.0.254")))
		if d.Len() > 100 {
			t.Fatalf("table holds %d entries after %d addresses, bound 100", d.Len(), i+1)
		}
	}
}

// TestARPTruncated offers every prefix of a valid frame.
func TestARPTruncated(t *testing.T) {
	full := arpFrame(arpReply, macA, "10.0.0.1", macB, "10.0.0.2")
	for n := range len(full) + 1 {
		d := NewARP()
		p := arpPacket(t0, full[:n:n])
		ok := d.Probe(p)
		var out collect
		d.Handle(p, &out)
		if (n >= arpLen) != ok || (n >= arpLen) != (len(out) == 1) {
			t.Errorf("length %d: probe %v, %d observations", n, ok, len(out))
		}
	}
	// Handle on nil and empty packets.
	NewARP().Handle(&dissect.Packet{}, &collect{})
	NewARP().Probe(&dissect.Packet{})
}

// TestARPAllocs checks that a frame that teaches nothing new allocates
// nothing.
func TestARPAllocs(t *testing.T) {
	d := NewARP()
	p := arpPacket(t0, arpFrame(arpRequest, macA, "10.0.0.1", capture.MAC{}, "10.0.0.2"))
	var out collect
	d.Handle(p, &out)
	n := testing.AllocsPerRun(1000, func() {
		if d.Probe(p) {
			d.Handle(p, &out)
		}
	})
	if n != 0 {
		t.Errorf("%v allocations per known frame, want 0", n)
	}
}

func BenchmarkARP(b *testing.B) {
	d := NewARP()
	p := arpPacket(t0, arpFrame(arpRequest, macA, "10.0.0.1", capture.MAC{}, "10.0.0.2"))
	var out collect
	b.ReportAllocs()
	for b.Loop() {
		if d.Probe(p) {
			d.Handle(p, &out)
		}
	}
}

func FuzzARP(f *testing.F) {
	f.Add(arpFrame(arpRequest, macA, "10.0.0.1", capture.MAC{}, "10.0.0.2"))
	f.Add(arpFrame(arpReply, macB, "10.0.0.1", macA, "10.0.0.1"))
	f.Add(arpFrame(arpRequest, macC, "0.0.0.0", capture.MAC{}, "10.0.0.9"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := &ARP{MaxEntries: 8}
		var out collect
		// Twice, so that the second pass meets a table entry.
		for i := range 2 {
			p := arpPacket(t0.Add(time.Duration(i)*time.Second), b)
			d.Probe(p)
			d.Handle(p, &out)
			// Also a copy with a bit flipped in the sender MAC: a conflict.
			if len(b) >= arpLen {
				c := append([]byte(nil), b...)
				c[13] ^= 0x10
				d.Handle(arpPacket(t0.Add(time.Duration(i)*time.Second), c), &out)
			}
		}
		for _, o := range out {
			if o.Protocol != "arp" || o.Attr == "" || o.Value == "" {
				t.Fatalf("bad observation %+v", o)
			}
			if o.Attr != AttrARPProbe && !o.IP.Is4() {
				t.Fatalf("observation without IPv4 %+v", o)
			}
		}
		if d.Len() > 8 {
			t.Fatalf("table holds %d entries, bound 8", d.Len())
		}
	})
}
