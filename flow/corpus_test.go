package flow_test

import (
	"errors"
	"github.com/passivesensor/sensor/internal/testcorpus"
	"io"
	"net/netip"
	"strconv"
	"testing"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/flow"
)

// conv names a flow independently of direction.
func conv(proto string, a, b netip.AddrPort) string {
	if a.Compare(b) > 0 {
		a, b = b, a
	}
	return proto + " " + a.String() + " " + b.String()
}

// TestCorpusFlows runs a real capture through the table and compares the
// conversations and the TCP clients with what tshark reads.
func TestCorpusFlows(t *testing.T) {
	for _, name := range []string{
		"nDPI__tests__cfgs__default__pcap__1kxun.pcap",
		"ICS-Pcaps__DNP3__dnp3dataset_capturerem_to_cite_the_paper.pcap",
	} {
		t.Run(name, func(t *testing.T) { corpusFlows(t, testcorpus.File(t, name)) })
	}
}

func corpusFlows(t *testing.T, file string) {
	const filter = "(tcp || udp) && !icmp && !icmpv6 && !(ip.flags.mf == 1 || ip.frag_offset > 0)"
	want := map[string]bool{}
	synClient := map[string]string{}
	for _, r := range testcorpus.TsharkLast(t, file, filter, "ip.src", "ipv6.src", "ip.dst", "ipv6.dst",
		"tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport", "tcp.flags.syn", "tcp.flags.ack") {
		for len(r) < 10 {
			r = append(r, "")
		}
		src, dst := r[0]+r[1], r[2]+r[3]
		proto, sp, dp := "tcp", r[4], r[5]
		if sp == "" {
			proto, sp, dp = "udp", r[6], r[7]
		}
		s, err1 := addrPort(src, sp)
		d, err2 := addrPort(dst, dp)
		if err1 != nil || err2 != nil {
			t.Fatalf("tshark row %q: %v %v", r, err1, err2)
		}
		k := conv(proto, s, d)
		want[k] = true
		if proto == "tcp" && r[8] == "1" && r[9] == "0" {
			if _, ok := synClient[k]; !ok {
				synClient[k] = s.String()
			}
		}
	}
	if len(want) < 10 {
		t.Fatalf("tshark saw only %d conversations: wrong file or filter", len(want))
	}

	got := map[string][]string{} // conversation -> clients of its flows
	var packets uint64
	record := func(f *flow.Flow) {
		name := "udp"
		if f.Proto == capture.ProtoTCP {
			name = "tcp"
		}
		k := conv(name, f.Client, f.Server)
		got[k] = append(got[k], f.Client.String())
		packets += f.Packets[0] + f.Packets[1]
	}
	tb := flow.NewTable(flow.Config{MaxFlows: 1 << 16, OnEvict: record})
	src, err := capture.OpenFile(file)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var dec capture.Decoder
	var p capture.Packet
	var looked uint64
	for {
		fr, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if dec.Decode(fr, &p) != nil {
			continue
		}
		if f, _ := tb.Lookup(&p); f != nil {
			looked++
		}
	}
	tb.EvictAll()
	if packets != looked {
		t.Errorf("flows account %d packets, Lookup returned a flow for %d", packets, looked)
	}
	for k := range want {
		if got[k] == nil {
			t.Errorf("tshark conversation %s has no flow", k)
		}
	}
	for k := range got {
		if !want[k] {
			t.Errorf("flow %s is not a tshark conversation", k)
		}
	}
	for k, c := range synClient {
		if cs := got[k]; len(cs) > 0 && cs[0] != c {
			t.Errorf("%s: client %s, tshark's SYN sender %s", k, cs[0], c)
		}
	}
	t.Logf("%d conversations, %d flows' packets, %d with a SYN", len(want), packets, len(synClient))
}

func addrPort(ip, port string) (netip.AddrPort, error) {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.AddrPort{}, err
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(a, uint16(n)), nil
}
