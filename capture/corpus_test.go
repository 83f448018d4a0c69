package capture

import (
	"encoding/binary"
	"github.com/passivesensor/sensor/internal/testcorpus"
	"time"

	"fmt"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// tuple is what both the decoder and tshark say about one frame's
// innermost IP datagram. proto is -1 where tshark does not say it.
type tuple struct {
	src, dst     string
	proto        int
	sport, dport int
}

func (u tuple) String() string {
	if u.src == "" {
		return "(no IP)"
	}
	return fmt.Sprintf("%s:%d > %s:%d proto %d", u.src, u.sport, u.dst, u.dport, u.proto)
}

// tsharkFields are the fields asked of tshark, in column order.
var tsharkFields = []string{
	"frame.protocols",
	"ip.src", "ip.dst", "ip.proto",
	"ipv6.src", "ipv6.dst",
	"tcp.srcport", "tcp.dstport",
	"udp.srcport", "udp.dstport",
}

// tsharkTuples runs tshark on path, without IP reassembly, and returns per
// frame the innermost datagram the decoder is meant to find: the last IP
// layer before the first TCP, UDP (unless VXLAN follows it) or ICMP layer.
// Tunnels carried in TCP or UDP other than VXLAN are not removed, and the
// datagram quoted in an ICMP error is not the frame's.
//
// cutShort reports that tshark found the file ends inside a record.
func tsharkTuples(t *testing.T, path string) (tuples []tuple, cutShort bool) {
	t.Helper()
	args := []string{"-r", path, "-n",
		"-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
		"-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,"}
	for _, f := range tsharkFields {
		args = append(args, "-e", f)
	}
	var stderr strings.Builder
	cmd := exec.Command("tshark", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if !strings.Contains(stderr.String(), "cut short in the middle of a packet") {
			t.Fatalf("tshark %s: %v: %s", path, err, stderr.String())
		}
		cutShort = true
	}
	var res []tuple
	for _, line := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		col := strings.Split(line, "\t")
		for len(col) < len(tsharkFields) {
			col = append(col, "")
		}
		res = append(res, tupleOf(col))
	}
	return res, cutShort
}

// nth returns the n-th (0-based) comma-separated value of s, or "".
func nth(s string, n int) string {
	v := strings.Split(s, ",")
	if n < 0 || n >= len(v) {
		return ""
	}
	return v[n]
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0
	}
	return n
}

// tupleOf reads one line of tshark fields.
func tupleOf(col []string) tuple {
	layers := strings.Split(col[0], ":")
	type ipLayer struct {
		v6 bool
		n  int // index among the frame's layers of that IP version
	}
	var ips []ipLayer
	var nIP, nIP6, nTCP, nUDP int
	stop := ""
walk:
	for i, l := range layers {
		switch l {
		case "eth":
			// A tunnel delivered a whole frame: the decoder forgets
			// the outer datagram.
			ips = ips[:0]
		case "ip":
			ips = append(ips, ipLayer{false, nIP})
			nIP++
		case "ipv6":
			ips = append(ips, ipLayer{true, nIP6})
			nIP6++
		case "tcp":
			nTCP++
			stop = l
			break walk
		case "udp":
			nUDP++
			if i+1 < len(layers) && layers[i+1] == "vxlan" {
				continue
			}
			stop = l
			break walk
		case "icmp", "icmpv6":
			stop = l
			break walk
		}
	}
	// The innermost IP layer tshark could read; one cut short has no
	// addresses, and the decoder keeps the layer before it.
	var u tuple
	for i := len(ips) - 1; i >= 0 && u.src == ""; i-- {
		if ips[i].v6 {
			u = tuple{src: nth(col[4], ips[i].n), dst: nth(col[5], ips[i].n), proto: -1}
		} else {
			u = tuple{src: nth(col[1], ips[i].n), dst: nth(col[2], ips[i].n), proto: atoi(nth(col[3], ips[i].n))}
		}
		if i != len(ips)-1 {
			stop = "" // the transport layer belongs to the unreadable datagram
		}
	}
	if u.src == "" {
		return tuple{}
	}
	switch stop {
	case "tcp":
		u.proto = 6
		u.sport, u.dport = atoi(nth(col[6], nTCP-1)), atoi(nth(col[7], nTCP-1))
	case "udp":
		u.proto = 17
		u.sport, u.dport = atoi(nth(col[8], nUDP-1)), atoi(nth(col[9], nUDP-1))
	case "icmp":
		u.proto = 1
	case "icmpv6":
		u.proto = 58
	}
	return u
}

// decodedTuple is what the decoder says, in tshark's terms.
func decodedTuple(p *Packet, tsharkProto int) tuple {
	if !p.HasIP() {
		return tuple{}
	}
	u := tuple{src: p.SrcIP.String(), dst: p.DstIP.String(), proto: int(p.IPProto),
		sport: int(p.SrcPort), dport: int(p.DstPort)}
	if tsharkProto == -1 {
		u.proto = -1
	}
	return u
}

// compareWithTshark decodes every frame of path and compares it with what
// tshark says frame by frame. It returns the decoder's counters.
func compareWithTshark(t *testing.T, path string) Stats {
	t.Helper()
	want, cutShort := tsharkTuples(t, path)
	src, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var d Decoder
	var p Packet
	var got []tuple
	var errs []string
	for {
		f, err := src.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if !cutShort || !strings.Contains(err.Error(), "truncated") {
				t.Fatalf("frame %d: %v", len(got)+1, err)
			}
			t.Logf("file ends inside a record, as tshark says too: %v", err)
			break
		}
		if err := d.Decode(f, &p); err != nil && len(errs) < 5 {
			errs = append(errs, fmt.Sprintf("frame %d: %v", len(got)+1, err))
		}
		proto := 0
		if len(got) < len(want) {
			proto = want[len(got)].proto
		}
		got = append(got, decodedTuple(&p, proto))
	}
	if len(got) != len(want) {
		t.Fatalf("%s: decoded %d frames, tshark read %d", filepath.Base(path), len(got), len(want))
	}
	bad := 0
	for i := range got {
		if got[i] != want[i] {
			if bad < 10 {
				t.Errorf("%s frame %d: decoded %v, tshark says %v", filepath.Base(path), i+1, got[i], want[i])
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d frames differ from tshark; decode errors: %v", filepath.Base(path), bad, len(got), errs)
	}
	if st := src.Stats(); st.Frames != uint64(len(got)) {
		t.Errorf("source counted %d frames, read %d", st.Frames, len(got))
	}
	// The sets of flows must match too (implied by the frames matching,
	// but this is what the flow table will see).
	gs, ws := map[tuple]bool{}, map[tuple]bool{}
	for i := range got {
		gs[got[i]], ws[want[i]] = true, true
	}
	if len(gs) != len(ws) {
		t.Errorf("%s: %d distinct tuples decoded, tshark has %d", filepath.Base(path), len(gs), len(ws))
	}
	return d.Stats()
}

// Corpus files chosen for their link layers and encapsulations.
var oracleFiles = []string{
	"Malcolm-PCAP__pcaps__protocols__Tunnels.pcap",      // GRE, GRE in GRE, ERSPAN, QinQ, IP in IP, VXLAN, PPTP, GTP
	"ct-samples__Protocols__S7comm__Plant1_S7comm.pcap", // plain Ethernet
	"Malcolm-PCAP__pcaps__protocols__OPCUA-Binary.pcap", // BSD loopback (Null)
	"ICS-Pcaps__Mergecap__kokteyl.pcap",                 // pcapng, Ethernet and Cisco HDLC interfaces
	"ICS-Pcaps__NetBIOS__NBTokenRing.pcap",              // Token Ring
	"ICS-Pcaps__Profinet__pro6.pcap",                    // 802.1Q
	"Malcolm-PCAP__pcaps__protocols__KRB5.pcap",         // 802.1Q, IPv6
	"Malcolm-PCAP__pcaps__protocols__Telnet.pcap",       // PPP in enhanced GRE (PPTP), acknowledgments without data
	"ICS-Pcaps__ARP__arp.pcap",                          // non-IP
	"icsnpp-profinet-io-cm__testing__traces__profinet_io_cm_mixed_2.pcapng",
	"ct-samples__Protocols__IEC61850__GOOSE__GE---Multilin-UR---Digital-Protection-Relay__GOOSE-and-MMS.pcapng",
}

// expectedErrors are the frames of corpus files the decoder rightly
// refuses; every other frame of the corpus decodes without error.
var expectedErrors = map[string]uint64{
	// 28 frames on an IEEE 802.15.4 (ZigBee) interface: no IP to read.
	"ICS-Pcaps__Mergecap__kokteyl.pcap": 28,
	// Frames 18 and 19: MPLS over garbage; tshark finds an IPv6 header
	// with version 14 and a truncated IPv4 header in them too.
	"Malcolm-PCAP__pcaps__protocols__Tunnels.pcap": 2,
}

func TestDecodeMatchesTshark(t *testing.T) {
	testcorpus.NeedTshark(t)
	files := oracleFiles
	if os.Getenv("CAPTURE_ALL_CORPUS") != "" {
		all, _ := filepath.Glob(filepath.Join(filepath.Dir(testcorpus.File(t, oracleFiles[0])), "*.pcap*"))
		files = files[:0:0]
		for _, f := range all {
			files = append(files, filepath.Base(f))
		}
	}
	for _, name := range files {
		t.Run(name, func(t *testing.T) {
			path := testcorpus.File(t, name)
			st := compareWithTshark(t, path)
			t.Logf("decode errors %d, fragments %d", st.DecodeErrors, st.Fragments)
			if st.DecodeErrors != expectedErrors[name] {
				t.Errorf("%d decode errors, want %d", st.DecodeErrors, expectedErrors[name])
			}
		})
	}
}

// TestCookedAndRawFromCorpus rewrites the Ethernet frames of corpus files
// as Linux cooked (v1 and v2) and raw IP captures, as a capture on "any" or
// on a tunnel interface records them, and compares with tshark again.
func TestCookedAndRawFromCorpus(t *testing.T) {
	testcorpus.NeedTshark(t)
	for _, name := range []string{
		"Malcolm-PCAP__pcaps__protocols__KRB5.pcap", // IPv4, IPv6, 802.1Q
		"ICS-Pcaps__BOOTP__packet.pcap",
	} {
		path := testcorpus.File(t, name)
		src, err := OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var sll, sll2, raw [][]byte
		for {
			f, err := src.Next()
			if err != nil {
				break
			}
			if f.LinkType != LinkEthernet || len(f.Data) < 14 {
				continue
			}
			mac, et, rest := f.Data[6:12], f.Data[12:14], f.Data[14:]
			sll = append(sll, cat(u16(0), u16(1), u16(6), mac, []byte{0, 0}, et, rest))
			sll2 = append(sll2, cat(et, u16(0), u32(2), u16(1), []byte{0, 6}, mac, []byte{0, 0}, rest))
			if e := binary.BigEndian.Uint16(et); e == 0x0800 || e == 0x86dd {
				raw = append(raw, append([]byte(nil), rest...))
			}
		}
		src.Close()
		dir := t.TempDir()
		for _, c := range []struct {
			lt     LinkType
			frames [][]byte
		}{{LinkLinuxSLL, sll}, {LinkLinuxSLL2, sll2}, {LinkRaw, raw}, {LinkIPv4, nil}} {
			if c.lt == LinkIPv4 {
				for _, r := range raw {
					if r[0]>>4 == 4 {
						c.frames = append(c.frames, r)
					}
				}
			}
			out := filepath.Join(dir, fmt.Sprintf("link%d.pcap", c.lt))
			writePcap(t, out, c.lt, c.frames)
			t.Run(fmt.Sprintf("%s as link type %d", name, c.lt), func(t *testing.T) {
				if st := compareWithTshark(t, out); st.DecodeErrors != 0 {
					t.Errorf("%d decode errors", st.DecodeErrors)
				}
			})
		}
	}
}

// writePcap writes frames to a new pcap file of link type lt.
func writePcap(t *testing.T, path string, lt LinkType, frames [][]byte) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkType(lt)); err != nil {
		t.Fatal(err)
	}
	for i, fr := range frames {
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(1700000000+int64(i), 0), CaptureLength: len(fr), Length: len(fr)}
		if err := w.WritePacket(ci, fr); err != nil {
			t.Fatal(err)
		}
	}
}
