package flow_test

import (
	"errors"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/flow"
)

// corpusFile returns the path of a shared corpus capture, found by walking
// up from the package directory, or skips the test.
func corpusFile(t *testing.T, name string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	start := dir
	for {
		c := filepath.Join(dir, "shared", "corpus")
		if fi, err := os.Stat(c); err == nil && fi.IsDir() {
			p := filepath.Join(c, name)
			if _, err := os.Stat(p); err != nil {
				t.Skipf("corpus file %s not found: %v", p, err)
			}
			return p
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Skipf("corpus not found at shared/corpus above %s", start)
		}
		dir = up
	}
}

func tsharkRows(t *testing.T, file, filter string, fields ...string) [][]string {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("tshark not installed: it is the oracle of this test")
	}
	args := []string{"-r", file, "-Y", filter, "-T", "fields", "-E", "separator=/t", "-E", "occurrence=l"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	out, err := exec.Command("tshark", args...).Output()
	if err != nil {
		t.Fatalf("tshark %v: %v", args, err)
	}
	var rows [][]string
	for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if l != "" {
			rows = append(rows, strings.Split(l, "\t"))
		}
	}
	return rows
}

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
		t.Run(name, func(t *testing.T) { corpusFlows(t, corpusFile(t, name)) })
	}
}

func corpusFlows(t *testing.T, file string) {
	const filter = "(tcp || udp) && !icmp && !icmpv6 && !(ip.flags.mf == 1 || ip.frag_offset > 0)"
	want := map[string]bool{}
	synClient := map[string]string{}
	for _, r := range tsharkRows(t, file, filter, "ip.src", "ipv6.src", "ip.dst", "ipv6.dst",
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
