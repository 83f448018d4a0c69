package main

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Device is one host of the plant.
type Device struct {
	Name string
	MAC  net.HardwareAddr
	IP   netip.Addr
}

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// Wire collects frames in time order and writes them as a pcap file.
type Wire struct {
	now    time.Time
	buf    bytes.Buffer
	w      *pcapgo.Writer
	err    error
	frames int
}

func newWire(start time.Time) *Wire {
	wr := &Wire{now: start}
	wr.w = pcapgo.NewWriter(&wr.buf)
	wr.err = wr.w.WriteFileHeader(65535, layers.LinkTypeEthernet)
	return wr
}

// Advance moves the clock.
func (wr *Wire) Advance(d time.Duration) { wr.now = wr.now.Add(d) }

// Send serialises ls into one frame at the current time, then moves the
// clock on by a millisecond.
func (wr *Wire) Send(ls ...gopacket.SerializableLayer) {
	if wr.err != nil {
		return
	}
	sb := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	for _, l := range ls {
		if n, ok := l.(interface {
			SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
		}); ok {
			for _, nl := range ls {
				if ip, ok := nl.(gopacket.NetworkLayer); ok {
					_ = n.SetNetworkLayerForChecksum(ip)
				}
			}
		}
	}
	if err := gopacket.SerializeLayers(sb, opts, ls...); err != nil {
		wr.err = fmt.Errorf("frame %d: %w", wr.frames, err)
		return
	}
	data := sb.Bytes()
	wr.err = wr.w.WritePacket(gopacket.CaptureInfo{Timestamp: wr.now, CaptureLength: len(data), Length: len(data)}, data)
	wr.frames++
	wr.Advance(time.Millisecond)
}

func eth(src, dst net.HardwareAddr, t layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: t}
}

func ipv4(src, dst netip.Addr, proto layers.IPProtocol, ttl uint8) *layers.IPv4 {
	return &layers.IPv4{Version: 4, TTL: ttl, Protocol: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice(), Flags: layers.IPv4DontFragment}
}

var broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// ARP sends a who-has from a for b and b's reply.
func (wr *Wire) ARP(a, b Device) {
	wr.Send(eth(a.MAC, broadcastMAC, layers.EthernetTypeARP), &layers.ARP{
		AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: layers.ARPRequest, SourceHwAddress: a.MAC, SourceProtAddress: a.IP.AsSlice(),
		DstHwAddress: make(net.HardwareAddr, 6), DstProtAddress: b.IP.AsSlice(),
	})
	wr.Send(eth(b.MAC, a.MAC, layers.EthernetTypeARP), &layers.ARP{
		AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: layers.ARPReply, SourceHwAddress: b.MAC, SourceProtAddress: b.IP.AsSlice(),
		DstHwAddress: a.MAC, DstProtAddress: a.IP.AsSlice(),
	})
}

// GratuitousARP announces d's address.
func (wr *Wire) GratuitousARP(d Device) {
	wr.Send(eth(d.MAC, broadcastMAC, layers.EthernetTypeARP), &layers.ARP{
		AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: layers.ARPRequest, SourceHwAddress: d.MAC, SourceProtAddress: d.IP.AsSlice(),
		DstHwAddress: make(net.HardwareAddr, 6), DstProtAddress: d.IP.AsSlice(),
	})
}

// TCPSession is one TCP connection between a client and a server; frames
// toward addresses off the segment go to the gateway's MAC.
type TCPSession struct {
	wr           *Wire
	cMAC, sMAC   net.HardwareAddr // L2 next hops
	c, s         netip.Addr
	cport, sport uint16
	cseq, sseq   uint32
	cttl, sttl   uint8
	cst, sst     *Stack // the two sides' TCP/IP stacks
	cid, sid     uint16 // next IP IDs
	ctsOff       uint32 // the client's timestamp clock offset
}

// Dial opens a TCP connection with a three-way handshake. cMAC and sMAC are
// the source MACs of the client's and the server's frames as seen on the
// mirrored segment.
func (wr *Wire) Dial(cMAC net.HardwareAddr, c netip.Addr, cport uint16, sMAC net.HardwareAddr, s netip.Addr, sport uint16) *TCPSession {
	t := &TCPSession{wr: wr, cMAC: cMAC, sMAC: sMAC, c: c, s: s, cport: cport, sport: sport,
		cseq: 1000 + uint32(cport)*7, sseq: 50000 + uint32(sport)*13,
		cst: stackOf(c, &StackWindows), sst: stackOf(s, &StackLinux)}
	t.cttl, t.sttl = t.cst.TTL, t.sst.TTL
	t.cid, t.sid = uint16(cport)*3+1, uint16(sport)*5+1
	t.ctsOff = uint32(c.As16()[15]) << 20
	t.seg(true, true, false, nil)
	t.seg(false, true, true, nil)
	t.seg(true, false, true, nil)
	return t
}

func (t *TCPSession) seg(fromClient, syn, ack bool, payload []byte) {
	tcp := &layers.TCP{SYN: syn, ACK: ack, Window: 64240, PSH: len(payload) > 0}
	var e *layers.Ethernet
	var ip *layers.IPv4
	if fromClient {
		tcp.SrcPort, tcp.DstPort, tcp.Seq, tcp.Ack = layers.TCPPort(t.cport), layers.TCPPort(t.sport), t.cseq, t.sseq
		e, ip = eth(t.cMAC, t.sMAC, layers.EthernetTypeIPv4), ipv4(t.c, t.s, layers.IPProtocolTCP, t.cttl)
	} else {
		tcp.SrcPort, tcp.DstPort, tcp.Seq, tcp.Ack = layers.TCPPort(t.sport), layers.TCPPort(t.cport), t.sseq, t.cseq
		e, ip = eth(t.sMAC, t.cMAC, layers.EthernetTypeIPv4), ipv4(t.s, t.c, layers.IPProtocolTCP, t.sttl)
	}
	if syn && !ack {
		tcp.Ack = 0 // nothing to acknowledge yet (RFC 9293 3.10.7.1)
	}
	st, id := t.sst, &t.sid
	if fromClient {
		st, id = t.cst, &t.cid
	}
	ip.Id = *id
	*id++
	if !st.DF {
		ip.Flags = 0
	}
	if syn {
		tcp.Window = st.Window
		if !fromClient {
			tcp.Window = st.SynAckWindow
			if st.ZeroIDSynAck {
				ip.Id = 0
			}
		}
		tsval := t.ctsOff + uint32(t.wr.now.UnixMilli())
		var tsecr uint32
		if !fromClient {
			tsval, tsecr = tsval/3+7, tsval
		}
		tcp.Options = st.options(tsval, tsecr)
	}
	_ = tcp.SetNetworkLayerForChecksum(ip)
	if len(payload) > 0 {
		t.wr.Send(e, ip, tcp, gopacket.Payload(payload))
	} else {
		t.wr.Send(e, ip, tcp)
	}
	n := uint32(len(payload))
	if syn {
		n = 1
	}
	if fromClient {
		t.cseq += n
	} else {
		t.sseq += n
	}
}

// Exchange sends a request from the client and the server's response.
func (t *TCPSession) Exchange(req, resp []byte) {
	t.seg(true, false, true, req)
	if resp != nil {
		t.seg(false, false, true, resp)
	}
}

// Close ends the connection with FIN from the client and the server.
func (t *TCPSession) Close() {
	for _, fromClient := range []bool{true, false} {
		tcp := &layers.TCP{FIN: true, ACK: true, Window: 64240}
		var e *layers.Ethernet
		var ip *layers.IPv4
		if fromClient {
			tcp.SrcPort, tcp.DstPort, tcp.Seq, tcp.Ack = layers.TCPPort(t.cport), layers.TCPPort(t.sport), t.cseq, t.sseq
			e, ip = eth(t.cMAC, t.sMAC, layers.EthernetTypeIPv4), ipv4(t.c, t.s, layers.IPProtocolTCP, t.cttl)
			t.cseq++
		} else {
			tcp.SrcPort, tcp.DstPort, tcp.Seq, tcp.Ack = layers.TCPPort(t.sport), layers.TCPPort(t.cport), t.sseq, t.cseq
			e, ip = eth(t.sMAC, t.cMAC, layers.EthernetTypeIPv4), ipv4(t.s, t.c, layers.IPProtocolTCP, t.sttl)
			t.sseq++
		}
		_ = tcp.SetNetworkLayerForChecksum(ip)
		t.wr.Send(e, ip, tcp)
	}
}

// UDP sends one datagram.
func (wr *Wire) UDP(srcMAC, dstMAC net.HardwareAddr, src netip.Addr, sport uint16, dst netip.Addr, dport uint16, payload []byte) {
	ip := ipv4(src, dst, layers.IPProtocolUDP, 64)
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	_ = udp.SetNetworkLayerForChecksum(ip)
	wr.Send(eth(srcMAC, dstMAC, layers.EthernetTypeIPv4), ip, udp, gopacket.Payload(payload))
}
