package it

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

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
	fromServer bool
	payload    []byte
}

// appWritePcap writes one conversation between cli and srv to a pcap file:
// over TCP a handshake then segs, over UDP one datagram per seg.
func appWritePcap(t testing.TB, udp bool, cli, srv netip.AddrPort, segs []appSeg) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "conv.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	seq := [2]uint32{1000, 9000}
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	write := func(fromServer, syn, ack bool, payload []byte) {
		d := 0
		src, dst := cli, srv
		if fromServer {
			d, src, dst = 1, srv, cli
		}
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, byte(d)}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, byte(1 - d)}, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
		var l4 gopacket.SerializableLayer
		if udp {
			ip.Protocol = layers.IPProtocolUDP
			u := &layers.UDP{SrcPort: layers.UDPPort(src.Port()), DstPort: layers.UDPPort(dst.Port())}
			if err := u.SetNetworkLayerForChecksum(ip); err != nil {
				t.Fatal(err)
			}
			l4 = u
		} else {
			ip.Protocol = layers.IPProtocolTCP
			tcp := &layers.TCP{SrcPort: layers.TCPPort(src.Port()), DstPort: layers.TCPPort(dst.Port()), Seq: seq[d], Ack: seq[1-d], Window: 8192,
				SYN: syn, ACK: ack, PSH: len(payload) > 0}
			if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
				t.Fatal(err)
			}
			l4 = tcp
		}
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, l4, gopacket.Payload(payload)); err != nil {
			t.Fatal(err)
		}
		ts = ts.Add(time.Millisecond)
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(buf.Bytes()), Length: len(buf.Bytes())}, buf.Bytes()); err != nil {
			t.Fatal(err)
		}
		seq[d] += uint32(len(payload))
		if syn {
			seq[d]++
		}
	}
	if !udp {
		write(false, true, false, nil)
		write(true, true, true, nil)
		write(false, false, true, nil)
	}
	for _, s := range segs {
		write(s.fromServer, false, !udp, s.payload)
	}
	return path
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
