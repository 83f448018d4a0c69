package it

import (
	"bufio"
	"errors"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
	"github.com/passivesensor/sensor/internal/testcorpus"
)

// tcpfpCaptures hold SYNs and SYN-ACKs of many stacks (Windows XP/7,
// Linux 2.6 to 3.11+, Mac OS X, embedded controllers, nmap).
var tcpfpCaptures = []string{
	"ICS-Pcaps__BOOTP__packet.pcap",
	"nDPI__tests__cfgs__default__pcap__1kxun.pcap",
	"zeek__testing__btest__Traces__ssh__ssh.pcap",
	"ICS-Pcaps__S7COMM__s2.pcap",
	"ICS-Security-Tools__pcaps__ModbusTCP__mb2.pcap",
	"ICS-Pcaps__DNP3__dnp3_test_data_part1.pcap",
	"Malcolm-PCAP__pcaps__protocols__KRB5.pcap",
	"Malcolm-PCAP__pcaps__protocols__Telnet.pcap",
	"suricata-verify__tests__smb2-ntlmssp-negotiateflags__input.pcap",
	"ICS-Security-Tools__pcaps__C37.118__C37118__c37118_1100_unclean.pcap",
	"Malcolm-PCAP__pcaps__protocols__OPCUA-Binary.pcap",
	"ICS-Security-Tools__pcaps__beckoff__beckoffaddroute.pcapng",
}

// tcpfpRunFile decodes a capture with the sensor's decoder and hands every
// SYN, and every SYN-ACK answering a SYN of the capture (p0f reports only
// those), to a fresh fingerprinter.
func tcpfpRunFile(t testing.TB, path string) collect {
	t.Helper()
	src, err := capture.OpenFile(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer src.Close()
	d := NewTCPFP()
	var dec capture.Decoder
	var pkt capture.Packet
	var out collect
	syns := map[[2]netip.AddrPort]bool{}
	for {
		fr, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if dec.Decode(fr, &pkt) != nil || pkt.IPProto != capture.ProtoTCP || pkt.TCPFlags&capture.TCPSyn == 0 {
			continue
		}
		f := &flow.Flow{Proto: capture.ProtoTCP, Client: netip.AddrPortFrom(pkt.SrcIP, pkt.SrcPort), Server: netip.AddrPortFrom(pkt.DstIP, pkt.DstPort)}
		dir := flow.FromClient
		if pkt.TCPFlags&capture.TCPAck != 0 {
			f.Client, f.Server, dir = f.Server, f.Client, flow.FromServer
			if !syns[[2]netip.AddrPort{f.Client, f.Server}] {
				continue
			}
		} else {
			syns[[2]netip.AddrPort{f.Client, f.Server}] = true
		}
		d.Handle(&dissect.Packet{Packet: &pkt, Flow: f, Dir: dir}, &out)
	}
	return out
}

// p0fSigs runs p0f on a capture and returns its raw signatures keyed by
// "syn IP" (the client's) and "synack IP" (the server's).
func p0fSigs(t testing.TB, path string) map[string]map[string]bool {
	t.Helper()
	if _, err := exec.LookPath("p0f"); err != nil {
		t.Skip("p0f not installed (apt-get install p0f): it is the oracle for TCP signatures")
	}
	log := filepath.Join(t.TempDir(), "p0f.log")
	if out, err := exec.Command("p0f", "-r", path, "-o", log).CombinedOutput(); err != nil {
		t.Fatalf("p0f -r %s: %v\n%s", path, err, out)
	}
	f, err := os.Open(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sigs := map[string]map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		kv := map[string]string{}
		_, rest, _ := strings.Cut(sc.Text(), "] ")
		for _, f := range strings.Split(rest, "|") {
			k, v, _ := strings.Cut(f, "=")
			kv[k] = v
		}
		var attr, side string
		switch kv["mod"] {
		case "syn":
			attr, side = AttrTCPSyn, kv["cli"]
		case "syn+ack":
			attr, side = AttrTCPSynAck, kv["srv"]
		default:
			continue
		}
		ip, err := netip.ParseAddr(side[:strings.LastIndexByte(side, '/')])
		if err != nil {
			t.Fatalf("p0f log: address %q: %v", side, err)
		}
		key := attr + " " + ip.String()
		raw := kv["raw_sig"]
		if ip.Is6() {
			// The decoder does not keep the IPv6 flow label.
			raw = strings.NewReplacer(":flow:", "::", ",flow:", ":", "flow,", "").Replace(raw)
		}
		if sigs[key] == nil {
			sigs[key] = map[string]bool{}
		}
		sigs[key][raw] = true
	}
	return sigs
}

// TestTCPFPAgreesWithP0f compares the signatures the fingerprinter emits
// with p0f's raw_sig on corpus captures, per device and direction. The
// known differences, as the decoder does not keep those header bits: p0f
// reads ECN from the IP ToS bits too, and marks IPv6 flow labels ("flow").
func TestTCPFPAgreesWithP0f(t *testing.T) {
	var total, same int
	for _, name := range tcpfpCaptures {
		path := testcorpus.File(t, name)
		want := p0fSigs(t, path)
		got := map[string]map[string]bool{}
		for _, o := range tcpfpRunFile(t, path) {
			if o.Attr != AttrTCPSyn && o.Attr != AttrTCPSynAck {
				continue
			}
			k := o.Attr + " " + o.IP.String()
			if got[k] == nil {
				got[k] = map[string]bool{}
			}
			if got[k][o.Value] {
				t.Errorf("%s: %s emitted twice: %s", name, k, o.Value)
			}
			got[k][o.Value] = true
		}
		for k, ws := range want {
			for w := range ws {
				total++
				if got[k][w] {
					same++
					continue
				}
				t.Errorf("%s: %s: p0f says %s, we say %v", name, k, w, keys(got[k]))
			}
		}
		for k, gs := range got {
			for g := range gs {
				if !want[k][g] {
					t.Errorf("%s: %s: we say %s, p0f does not", name, k, g)
				}
			}
		}
	}
	t.Logf("%d of %d p0f signatures (device, direction, signature) reproduced", same, total)
	if total < 50 {
		t.Fatalf("only %d p0f signatures in the captures: the test checks too little", total)
	}
}

func keys(m map[string]bool) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Hand-built from RFC 7323 section 3: the same client and server, SYNs 1 s
// apart whose timestamps jump by a million ticks (no clock runs at 1 MHz),
// as two hosts behind one NAT address would show.
func TestTCPFPTimestampClocks(t *testing.T) {
	d := NewTCPFP()
	var out collect
	cli, srv := netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("10.0.0.9")
	syn := func(at time.Duration, ts uint32) {
		opts := []byte{2, 4, 0x05, 0xb4, 4, 2, 8, 10, byte(ts >> 24), byte(ts >> 16), byte(ts >> 8), byte(ts), 0, 0, 0, 0, 1, 3, 3, 7}
		p := &capture.Packet{Time: time.Unix(1000, 0).Add(at), SrcIP: cli, DstIP: srv, IPProto: capture.ProtoTCP, TTL: 64, IPDF: true, IPID: 7,
			TCPFlags: capture.TCPSyn, TCPSeq: 1, TCPWindow: 64240, TCPOptions: opts, IPLen: 60}
		f := &flow.Flow{Proto: capture.ProtoTCP, Client: netip.AddrPortFrom(cli, 40000), Server: netip.AddrPortFrom(srv, 80)}
		d.Handle(&dissect.Packet{Packet: p, Flow: f, Dir: flow.FromClient}, &out)
	}
	syn(0, 5000)
	syn(time.Second, 5900) // 900 Hz: one clock
	if n := countAttr(out, AttrTCPTSClock); n != 0 {
		t.Fatalf("one clock at 900 Hz reported as disagreeing: %v", out)
	}
	syn(2*time.Second, 1005900) // +1e6 ticks in 1 s
	syn(3*time.Second, 3000)    // and back
	if n := countAttr(out, AttrTCPTSClock); n != 1 {
		t.Fatalf("clocks that disagree reported %d times, want once: %v", n, out)
	}
	if n := countAttr(out, AttrTCPSyn); n != 1 {
		t.Errorf("one signature emitted %d times, want once", n)
	}
	want := "4:64+0:0:1460:mss*44,7:mss,sok,ts,nop,ws:df,id+:0"
	if out[0].Value != want {
		t.Errorf("signature %q, want %q", out[0].Value, want)
	}
}

func countAttr(c collect, attr string) int {
	n := 0
	for _, o := range c {
		if o.Attr == attr {
			n++
		}
	}
	return n
}

func FuzzTCPFP(f *testing.F) {
	f.Add([]byte{2, 4, 0x05, 0xb4, 1, 3, 3, 8, 1, 1, 4, 2}, uint8(0x02), uint16(8192), uint8(128))
	f.Add([]byte{2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7}, uint8(0x12), uint16(65160), uint8(64))
	f.Add([]byte{0, 1, 2}, uint8(0xc2), uint16(0), uint8(255))
	f.Add([]byte{8, 0xff, 3}, uint8(0x02), uint16(1), uint8(1))
	// Seeds from real handshakes: the SYNs and SYN-ACKs of a corpus capture.
	if _, err := os.Stat(filepath.Join(testcorpus.Dir(f), tcpfpCaptures[0])); err == nil {
		src, err := capture.OpenFile(testcorpus.File(f, tcpfpCaptures[0]))
		if err == nil {
			var dec capture.Decoder
			var pkt capture.Packet
			for n := 0; n < 20; {
				fr, err := src.Next()
				if err != nil {
					break
				}
				if dec.Decode(fr, &pkt) == nil && pkt.TCPFlags&capture.TCPSyn != 0 {
					f.Add(append([]byte(nil), pkt.TCPOptions...), pkt.TCPFlags, pkt.TCPWindow, pkt.TTL)
					n++
				}
			}
			src.Close()
		}
	}
	f.Fuzz(func(t *testing.T, opts []byte, flags uint8, win uint16, ttl uint8) {
		if len(opts) > 40 {
			opts = opts[:40]
		}
		d := NewTCPFP()
		d.MaxSeen, d.MaxClocks = 4, 4
		var out collect
		p := &capture.Packet{SrcIP: netip.MustParseAddr("10.0.0.1"), DstIP: netip.MustParseAddr("10.0.0.2"), IPProto: capture.ProtoTCP,
			TTL: ttl, TCPFlags: flags | capture.TCPSyn, TCPWindow: win, TCPOptions: opts, IPLen: 40 + len(opts)}
		for i := 0; i < 3; i++ {
			d.Handle(&dissect.Packet{Packet: p}, &out)
		}
		if len(out) > 1 {
			t.Fatalf("one signature emitted %d times", len(out))
		}
		if len(d.seen) > 4 {
			t.Fatalf("seen grew to %d", len(d.seen))
		}
	})
}

func BenchmarkTCPFP(b *testing.B) {
	d := NewTCPFP()
	opts := []byte{2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7}
	p := &capture.Packet{SrcIP: netip.MustParseAddr("10.0.0.1"), DstIP: netip.MustParseAddr("10.0.0.2"), IPProto: capture.ProtoTCP,
		TTL: 64, IPDF: true, IPID: 3, TCPFlags: capture.TCPSyn, TCPWindow: 64240, TCPOptions: opts, IPLen: 60}
	dp := &dissect.Packet{Packet: p}
	var out collect
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		d.Handle(dp, &out)
	}
}
