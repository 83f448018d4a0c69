package dissecttest

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/passivesensor/sensor/capture"
)

// Seg is one segment (TCP) or datagram (UDP) of a hand-built conversation.
type Seg struct {
	FromServer bool
	Payload    []byte
}

// conversationStart is when a hand-built conversation's first frame is.
var conversationStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// WriteConversation writes one conversation between cli and srv to a new
// Ethernet pcap file in t's temporary directory and returns its path: over
// TCP a handshake then segs, sequence numbers following on; over UDP one
// datagram per seg. The client's MAC is 02:00:00:00:00:00, the server's
// 02:00:00:00:00:01; frames are a millisecond apart.
func WriteConversation(t testing.TB, udp bool, cli, srv netip.AddrPort, segs []Seg) string {
	t.Helper()
	var frames []capture.Frame
	seq := [2]uint32{1000, 9000}
	ts := conversationStart
	add := func(fromServer, syn, ack bool, payload []byte) {
		d := 0
		src, dst := cli, srv
		if fromServer {
			d, src, dst = 1, srv, cli
		}
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, byte(d)}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, byte(1 - d)}, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
		var l4 interface {
			gopacket.SerializableLayer
			SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
		}
		if udp {
			ip.Protocol = layers.IPProtocolUDP
			l4 = &layers.UDP{SrcPort: layers.UDPPort(src.Port()), DstPort: layers.UDPPort(dst.Port())}
		} else {
			ip.Protocol = layers.IPProtocolTCP
			l4 = &layers.TCP{SrcPort: layers.TCPPort(src.Port()), DstPort: layers.TCPPort(dst.Port()), Seq: seq[d], Ack: seq[1-d], Window: 8192,
				SYN: syn, ACK: ack, PSH: len(payload) > 0}
		}
		if err := l4.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, l4, gopacket.Payload(payload)); err != nil {
			t.Fatal(err)
		}
		ts = ts.Add(time.Millisecond)
		frames = append(frames, capture.Frame{Data: buf.Bytes(), Time: ts, WireLen: len(buf.Bytes()), LinkType: capture.LinkEthernet})
		seq[d] += uint32(len(payload))
		if syn {
			seq[d]++
		}
	}
	if !udp {
		add(false, true, false, nil)
		add(true, true, true, nil)
		add(false, false, true, nil)
	}
	for _, s := range segs {
		add(s.FromServer, false, !udp, s.Payload)
	}
	return WritePcap(t, frames)
}

// WritePcap writes Ethernet frames to a new pcap file in t's temporary
// directory and returns its path.
func WritePcap(t testing.TB, frames []capture.Frame) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "frames.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for _, fr := range frames {
		ci := gopacket.CaptureInfo{Timestamp: fr.Time, CaptureLength: len(fr.Data), Length: max(fr.WireLen, len(fr.Data))}
		if err := w.WritePacket(ci, fr.Data); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}
