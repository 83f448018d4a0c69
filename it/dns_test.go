package it

import (
	"github.com/passivesensor/sensor/internal/testcorpus"
	"net/netip"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
)

// dnsAnswers returns the (name, address) pairs of the IN A and AAAA
// records of the answer section of msg.
func dnsAnswers(t *testing.T, msg []byte) []string {
	t.Helper()
	var (
		rd    DNSReader
		r     DNSRecord
		pairs []string
	)
	if err := rd.Reset(msg); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	for rd.Next(&r) {
		if a, ok := r.Addr(); ok && r.Section == 1 && r.Class == 1 {
			pairs = append(pairs, string(r.Name())+"="+a.String())
		}
	}
	return pairs
}

// TestDNSCorpus checks every DNS response of the corpus capture against
// tshark: the A answers (name and address) ParseDNS reads, and that
// Handle reports each as AttrDNSA and the responder as a DNS server.
func TestDNSCorpus(t *testing.T) {
	name := "Malcolm-PCAP__pcaps__protocols__DNS.pcap"
	pkts := decodeFile(t, name)
	rows := testcorpus.Tshark(t, testcorpus.File(t, name), "dns.flags.response==1 && udp.srcport==53 && !_ws.malformed",
		"frame.number", "dns.count.answers", "dns.resp.type", "dns.resp.name", "dns.a", "ip.src", "ipv6.src", "dns.aaaa")
	if len(rows) == 0 {
		t.Fatalf("tshark reads no DNS response in %s", name)
	}
	compared, pairs, skipped := 0, 0, 0
	for _, row := range rows {
		n := frameNumber(t, row[0], len(pkts))
		p := &pkts[n-1]
		d := NewDNS()
		if p.Packet != nil && p.Fragment {
			skipped++ // tshark reassembled IP fragments; the sensor does not
			continue
		}
		if p.Packet == nil || p.Flow == nil || !d.Probe(p) {
			t.Errorf("frame %d: Probe refuses a DNS response", n)
			continue
		}
		types, names := strings.Split(row[2], ","), strings.Split(row[3], ",")
		addrs, addrs6 := strings.Split(row[4], ","), strings.Split(row[7], ",")
		if row[2] == "" {
			types, names = nil, nil
		}
		if len(types) != len(names) {
			skipped++ // a name holding a comma, or a record tshark names not
			continue
		}
		var want []string
		ai, ai6 := 0, 0
		for i := range types {
			var a string
			switch types[i] {
			case "1":
				if ai >= len(addrs) {
					t.Fatalf("frame %d: tshark lists fewer A addresses than A records", n)
				}
				a = addrs[ai]
				ai++
			case "28":
				if ai6 >= len(addrs6) {
					t.Fatalf("frame %d: tshark lists fewer AAAA addresses than AAAA records", n)
				}
				a = addrs6[ai6]
				ai6++
			default:
				continue
			}
			if i < atoiOr(row[1]) { // the answer section
				want = append(want, names[i]+"="+a)
			}
		}
		got := dnsAnswers(t, p.Payload)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("frame %d: A answers %v, tshark says %v", n, got, want)
		}
		var out collect
		d.Handle(p, &out)
		for _, w := range want {
			nm, a, _ := strings.Cut(w, "=")
			found := false
			for _, o := range out {
				found = found || (o.Attr == AttrDNSA && o.Value == nm && o.IP.String() == a)
			}
			if !found {
				t.Errorf("frame %d: no dns.a observation %s in %+v", n, w, out)
			}
		}
		if !hasObs(out, dissect.AttrRole, "dns-server") {
			t.Errorf("frame %d: responder not marked dns-server: %+v", n, out)
		}
		for _, o := range out {
			if o.Attr == dissect.AttrRole && o.IP.String() != row[5]+row[6] {
				t.Errorf("frame %d: dns-server role about %s, response from %s", n, o.IP, row[5]+row[6])
			}
		}
		compared++
		pairs += len(want)
	}
	if compared == 0 || pairs == 0 {
		t.Fatalf("nothing compared (%d responses, %d A answers)", compared, pairs)
	}
	t.Logf("%d responses, %d A/AAAA answers compared with tshark; %d skipped (fragments, names with commas)", compared, pairs, skipped)
}

func atoiOr(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// TestMDNSCorpus checks mDNS responses against tshark: the hostnames
// reported are the names of the A/AAAA records holding the sender's
// address, ".local" stripped; models come from TXT model keys; services
// are service types named in the message.
func TestMDNSCorpus(t *testing.T) {
	name := "nDPI__tests__cfgs__default__pcap__telegram.pcap"
	pkts := decodeFile(t, name)
	rows := testcorpus.Tshark(t, testcorpus.File(t, name), "mdns && dns.flags.response==1 && !_ws.malformed",
		"frame.number", "ip.src", "ipv6.src", "dns.resp.type", "dns.resp.name", "dns.a", "dns.aaaa", "dns.txt", "dns.ptr.domain_name")
	if len(rows) == 0 {
		t.Fatalf("tshark reads no mDNS response in %s", name)
	}
	hosts, models, services := 0, 0, 0
	for _, row := range rows {
		n := frameNumber(t, row[0], len(pkts))
		p := &pkts[n-1]
		d := NewMDNS()
		if p.Packet == nil || p.Flow == nil || !d.Probe(p) {
			t.Errorf("frame %d: Probe refuses an mDNS response", n)
			continue
		}
		src := row[1] + row[2]
		types, names := strings.Split(row[3], ","), strings.Split(row[4], ",")
		want := map[string]bool{}
		if len(types) == len(names) {
			a4, a6 := strings.Split(row[5], ","), strings.Split(row[6], ",")
			i4, i6 := 0, 0
			for i, ty := range types {
				switch ty {
				case "1":
					if i4 < len(a4) && a4[i4] == src {
						want[strings.TrimSuffix(names[i], ".local")] = true
					}
					i4++
				case "28":
					if i6 < len(a6) && a6[i6] == src {
						want[strings.TrimSuffix(names[i], ".local")] = true
					}
					i6++
				}
			}
		}
		var out collect
		d.Handle(p, &out)
		checkObs(t, "mdns", out)
		got := map[string]bool{}
		for _, o := range out {
			if o.IP.String() != src {
				t.Errorf("frame %d: observation about %s, sender is %s", n, o.IP, src)
			}
			switch o.Attr {
			case dissect.AttrHostname:
				got[o.Value] = true
				hosts++
			case dissect.AttrModel:
				models++
				ok := false
				for _, k := range []string{"md=", "model=", "ty=", "usb_MDL=", "am="} {
					ok = ok || strings.Contains(row[7], k+o.Value)
				}
				if !ok {
					t.Errorf("frame %d: model %q not in TXT %q", n, o.Value, row[7])
				}
			case AttrMDNSServices:
				services++
				for _, s := range strings.Split(o.Value, ",") {
					if !strings.Contains(row[4]+","+row[8], s+".") {
						t.Errorf("frame %d: service %q named nowhere in %q / %q", n, s, row[4], row[8])
					}
				}
			}
		}
		if len(types) == len(names) {
			for h := range want {
				if !got[h] {
					t.Errorf("frame %d: hostname %q not reported; got %v", n, h, got)
				}
			}
			for h := range got {
				if !want[h] {
					t.Errorf("frame %d: hostname %q reported, tshark has no such record for %s", n, h, src)
				}
			}
		}
		if (strings.Contains(row[7], "model=") || strings.Contains(row[7], "md=")) && !hasAttr(out, dissect.AttrModel) {
			t.Errorf("frame %d: TXT %q has a model, none reported", n, row[7])
		}
	}
	if hosts == 0 || models == 0 || services == 0 {
		t.Errorf("too little learnt: %d hostnames, %d models, %d service sets", hosts, models, services)
	}
	t.Logf("%d mDNS responses: %d hostnames, %d models, %d service sets", len(rows), hosts, models, services)
}

func hasAttr(out collect, attr string) bool {
	for _, o := range out {
		if o.Attr == attr {
			return true
		}
	}
	return false
}

// TestLLMNRCorpus checks that Probe accepts every LLMNR message tshark
// reads.
func TestLLMNRCorpus(t *testing.T) {
	name := "suricata-verify__tests__smb2-ntlmssp-negotiateflags__input.pcap"
	pkts := decodeFile(t, name)
	rows := testcorpus.Tshark(t, testcorpus.File(t, name), "llmnr && !_ws.malformed", "frame.number")
	if len(rows) == 0 {
		t.Fatalf("tshark reads no LLMNR in %s", name)
	}
	d := NewLLMNR()
	for _, row := range rows {
		n := frameNumber(t, row[0], len(pkts))
		p := &pkts[n-1]
		if p.Packet == nil || p.Flow == nil || !d.Probe(p) {
			t.Errorf("frame %d: Probe refuses LLMNR", n)
			continue
		}
		var out collect
		d.Handle(p, &out)
		checkObs(t, "llmnr", out)
	}
}

// TestDNSNameLoops checks that compression pointers that loop, point
// forward or run past the message are refused.
func TestDNSNameLoops(t *testing.T) {
	hdr := []byte{0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0}
	for _, c := range []struct {
		name string
		q    []byte
	}{
		{"self", []byte{0xc0, 12, 0, 1, 0, 1}},
		{"forward", []byte{0xc0, 14, 1, 'a', 0, 0, 1, 0, 1}},
		{"loop", []byte{1, 'a', 0xc0, 12, 0, 1, 0, 1}},
		{"past end", []byte{5, 'a', 'b', 0, 0, 1}},
		{"label type 0x40", []byte{0x41, 'a', 0, 0, 1, 0, 1}},
	} {
		msg := append(append([]byte(nil), hdr...), c.q...)
		if _, _, err := readName(msg, 12, nil); err == nil {
			t.Errorf("%s: readName accepted %x", c.name, c.q)
		}
	}
	// A good backward pointer reads.
	msg := append(append([]byte(nil), hdr...), 3, 'w', 'w', 'w', 1, 'x', 0, 0, 1, 0, 1, 0xc0, 16)
	if name, end, err := readName(msg, len(msg)-2, nil); err != nil || string(name) != "x" || end != len(msg) {
		t.Errorf("backward pointer: %q %d %v", name, end, err)
	}
}

func dnsSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, name := range []string{"nDPI__tests__cfgs__default__pcap__telegram.pcap", "Malcolm-PCAP__pcaps__protocols__DNS.pcap"} {
		k := 0
		for _, p := range decodeFile(t, name) {
			if p.Packet != nil && p.Flow != nil && (p.SrcPort == 53 || p.SrcPort == 5353) && k < 40 {
				seeds = append(seeds, p.Payload)
				k++
			}
		}
	}
	return seeds
}

func dnsPacket(b []byte, port uint16) *dissect.Packet {
	return &dissect.Packet{Packet: &capture.Packet{SrcIP: netip.MustParseAddr("192.168.1.77"),
		DstIP: netip.MustParseAddr("192.168.1.2"), IPProto: capture.ProtoUDP, SrcPort: port, DstPort: port, Payload: b}}
}

// TestDNSTruncated cuts corpus DNS and mDNS messages at every length.
func TestDNSTruncated(t *testing.T) {
	seeds := dnsSeeds(t)
	if len(seeds) == 0 {
		t.Fatal("no DNS seeds")
	}
	for _, s := range seeds {
		for n := 0; n <= len(s); n++ {
			b := append([]byte(nil), s[:n]...)
			for _, d := range []*DNS{NewDNS(), NewMDNS(), NewLLMNR()} {
				p := dnsPacket(b, d.port)
				var out collect
				if d.Probe(p) {
					d.Handle(p, &out)
				}
				checkObs(t, d.Name(), out)
			}
		}
	}
}

func FuzzDNS(f *testing.F) {
	for _, s := range dnsSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, d := range []*DNS{NewDNS(), NewMDNS(), NewLLMNR()} {
			p := dnsPacket(b, d.port)
			_ = d.Probe(p)
			var out collect
			d.Handle(p, &out)
			checkObs(t, d.Name(), out)
		}
	})
}

// TestDNSRegistry checks that DNS and mDNS flows reach their dissectors
// through a registry of All().
func TestDNSRegistry(t *testing.T) {
	reg := dissect.NewRegistry(All()...)
	var out collect
	for _, name := range []string{"Malcolm-PCAP__pcaps__protocols__DNS.pcap", "nDPI__tests__cfgs__default__pcap__telegram.pcap"} {
		for _, p := range decodeFile(t, name) {
			if p.Packet != nil {
				reg.Dispatch(&p, &out)
			}
		}
	}
	counts := map[string]int{}
	for _, o := range out {
		counts[o.Protocol+" "+o.Attr]++
	}
	for _, k := range []string{"dns protocol", "dns dns.a", "dns role", "mdns protocol", "mdns hostname", "mdns mdns.services"} {
		if counts[k] == 0 {
			t.Errorf("no %q observation through the registry; got %v", k, counts)
		}
	}
	t.Logf("through the registry: %v", counts)
}

// TestLLMNRResponse builds an LLMNR response for "plc01" holding the
// sender's address and one for another address: only the first names the
// sender.
func TestLLMNRResponse(t *testing.T) {
	build := func(addr [4]byte) []byte {
		msg := []byte{0x12, 0x34, 0x80, 0x00, 0, 1, 0, 1, 0, 0, 0, 0,
			5, 'p', 'l', 'c', '0', '1', 0, 0, 1, 0, 1, // question
			0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4}
		return append(msg, addr[:]...)
	}
	d := NewLLMNR()
	p := dnsPacket(build([4]byte{192, 168, 1, 77}), LLMNRPort)
	if !d.Probe(p) {
		t.Fatal("Probe refuses an LLMNR response")
	}
	var out collect
	d.Handle(p, &out)
	if len(out) != 1 || out[0].Attr != dissect.AttrHostname || out[0].Value != "plc01" || out[0].IP != p.SrcIP || out[0].Protocol != "llmnr" {
		t.Errorf("LLMNR answer for the sender: got %+v, want one hostname plc01 about %s", out, p.SrcIP)
	}
	out = nil
	NewLLMNR().Handle(dnsPacket(build([4]byte{192, 168, 1, 9}), LLMNRPort), &out)
	if len(out) != 0 {
		t.Errorf("LLMNR answer for another address: got %+v, want nothing", out)
	}
	// The same message as a query (QR clear) tells nothing.
	q := build([4]byte{192, 168, 1, 77})
	q[2] = 0
	out = nil
	NewLLMNR().Handle(dnsPacket(q, LLMNRPort), &out)
	if len(out) != 0 {
		t.Errorf("LLMNR query: got %+v, want nothing", out)
	}
}
