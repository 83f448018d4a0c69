package it

import (
	"net/netip"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
	"github.com/passivesensor/sensor/internal/dissecttest"
	"github.com/passivesensor/sensor/internal/testcorpus"
)

// appRunFile reads a capture with the sensor's own pipeline (capture.OpenFile,
// capture.Decoder, flow.Table) and dispatches every packet to a registry
// holding ds, as cmd/sensor does.
func appRunFile(t testing.TB, path string, ds ...dissect.Dissector) collect {
	t.Helper()
	return dissecttest.Run(t, path, ds...)
}

// appCorpus runs a corpus capture through ds with the pipeline.
func appCorpus(t testing.TB, name string, ds ...dissect.Dissector) (string, collect) {
	t.Helper()
	path := testcorpus.File(t, name)
	return path, appRunFile(t, path, ds...)
}

// appFacts returns the set "ip value" of the observations with attr.
func appObserved(out collect, attr string) map[string]bool {
	m := map[string]bool{}
	for _, o := range out {
		if o.Attr == attr {
			m[o.IP.String()+" "+o.Value] = true
		}
	}
	return m
}

// appTsharkSet returns the set "ip value" of tshark rows (ip field first,
// then one value field; multiple occurrences split on ",").
func appTsharkSet(t testing.TB, path, filter, ipField, field string, split bool) map[string]bool {
	t.Helper()
	m := map[string]bool{}
	for _, r := range testcorpus.Tshark(t, path, filter, ipField, field) {
		if r[1] == "" {
			continue
		}
		vals := []string{r[1]}
		if split {
			vals = strings.Split(r[1], ",")
		}
		for _, v := range vals {
			m[r[0]+" "+v] = true
		}
	}
	return m
}

// appSameSet fails t when got and want differ.
func appSameSet(t testing.TB, what string, got, want map[string]bool) {
	t.Helper()
	var missing, extra []string
	for k := range want {
		if !got[k] {
			missing = append(missing, k)
		}
	}
	for k := range got {
		if !want[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(want) == 0 {
		t.Errorf("%s: the oracle gives nothing: the test would prove nothing", what)
	}
	if len(missing)+len(extra) > 0 {
		t.Errorf("%s: missing (tshark has, we do not) %q; extra (we have, tshark does not) %q", what, missing, extra)
	}
}

// appSeg is one segment (TCP) or datagram (UDP) of a hand-built capture.
type appSeg struct {
	FromServer bool
	Payload    []byte
}

// appWritePcap writes one conversation between cli and srv to a pcap file:
// over TCP a handshake then segs, over UDP one datagram per seg.
func appWritePcap(t testing.TB, udp bool, cli, srv netip.AddrPort, segs []appSeg) string {
	t.Helper()
	ds := make([]dissecttest.Seg, len(segs))
	for i, s := range segs {
		ds[i] = dissecttest.Seg(s)
	}
	return dissecttest.WriteConversation(t, udp, cli, srv, ds)
}

// appTCPPkt returns a packet of a TCP flow f in direction dir.
func appTCPPkt(f *flow.Flow, dir flow.Dir, seq uint32, payload []byte) *dissect.Packet {
	src, dst := f.Client, f.Server
	if dir == flow.FromServer {
		src, dst = dst, src
	}
	return &dissect.Packet{
		Packet: &capture.Packet{
			SrcIP: src.Addr(), DstIP: dst.Addr(), SrcPort: src.Port(), DstPort: dst.Port(),
			IPProto: f.Proto, TCPSeq: seq, Payload: payload,
		},
		Flow: f, Dir: dir,
	}
}

// appFuzz feeds data to d as a conversation: the first byte picks the
// protocol (TCP or UDP) and the split points, the rest is cut into
// segments sent alternately by client and server, each through Probe and
// Handle as the registry would. It checks the flow's state stays small.
func appFuzz(t *testing.T, d dissect.Dissector, data []byte, port uint16) {
	if len(data) == 0 {
		return
	}
	ctl := data[0]
	data = data[1:]
	proto := capture.ProtoTCP
	if ctl&1 != 0 {
		proto = capture.ProtoUDP
	}
	f := &flow.Flow{Proto: proto, Client: netip.MustParseAddrPort("10.0.0.1:40000"), Server: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.2"), port)}
	var out collect
	seq := [2]uint32{1, 1}
	claimed := false
	cut := int(ctl>>1) + 1
	for i := 0; len(data) > 0 && i < 64; i++ {
		n := min(len(data), cut*(1+i%3))
		dir := flow.Dir(i & 1)
		if ctl&2 != 0 && i == 0 {
			dir = flow.FromServer
		}
		p := appTCPPkt(f, dir, seq[dir], data[:n])
		seq[dir] += uint32(n)
		data = data[n:]
		if !claimed {
			claimed = d.Probe(p)
		}
		if claimed {
			d.Handle(p, &out)
		}
	}
	for _, o := range out {
		if o.Value == "" || len(o.Value) > 4*maxText || !o.IP.IsValid() {
			t.Fatalf("bad observation %+v", o)
		}
	}
}

// appTsharkOpts runs tshark with preferences opts ("http.desegment_body:FALSE")
// and returns the set "ip value" of the rows matching filter, as
// appTsharkSet does.
func appTsharkOpts(t testing.TB, path string, opts []string, filter, ipField, field string) map[string]bool {
	t.Helper()
	testcorpus.NeedTshark(t)
	args := []string{"-r", path, "-T", "fields", "-E", "separator=/t", "-Y", filter, "-e", ipField, "-e", field}
	for _, o := range opts {
		args = append(args, "-o", o)
	}
	out, err := exec.Command("tshark", args...).Output()
	if err != nil {
		t.Fatalf("tshark %v: %v", args, err)
	}
	m := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		ip, v, ok := strings.Cut(line, "\t")
		if ok && v != "" {
			m[ip+" "+v] = true
		}
	}
	return m
}
