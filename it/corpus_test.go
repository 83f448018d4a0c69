package it

import (
	"bytes"
	"errors"
	"github.com/passivesensor/sensor/internal/testcorpus"
	"io"
	"net/netip"
	"os"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
	"github.com/passivesensor/sensor/internal/dissecttest"
)

// readCorpus reads every frame of a corpus capture into dissect.Packets
// decoded with gopacket (not the sensor's own decoder, which is tested on
// its own). Frames gopacket cannot read have a nil Packet. UDP packets get
// a flow whose client is the side sending from port 68 (or, with both
// ports 67, the sender). Index i of the result is frame number i+1.
func readCorpus(t testing.TB, name string) []dissect.Packet {
	t.Helper()
	path := testcorpus.File(t, name)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	type reader interface {
		ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	}
	var (
		r    reader
		link layers.LinkType
	)
	if len(raw) >= 4 && bytes.Equal(raw[:4], []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		ng, err := pcapgo.NewNgReader(bytes.NewReader(raw), pcapgo.DefaultNgReaderOptions)
		if err != nil {
			t.Fatalf("pcapng %s: %v", path, err)
		}
		r, link = ng, ng.LinkType()
	} else {
		pr, err := pcapgo.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("pcap %s: %v", path, err)
		}
		r, link = pr, pr.LinkType()
	}
	var pkts []dissect.Packet
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: frame %d: %v", path, len(pkts)+1, err)
		}
		pkts = append(pkts, decodeTestPacket(data, ci, link))
	}
	return pkts
}

// decodeTestPacket fills a dissect.Packet from one frame, using the
// innermost headers of each kind.
func decodeTestPacket(data []byte, ci gopacket.CaptureInfo, link layers.LinkType) dissect.Packet {
	gp := gopacket.NewPacket(data, link, gopacket.Default)
	p := &capture.Packet{Time: ci.Timestamp, WireLen: ci.Length}
	var (
		arp       []byte
		udp       *layers.UDP
		haveLayer bool
	)
	for _, l := range gp.Layers() {
		switch l := l.(type) {
		case *layers.Ethernet:
			haveLayer = true
			p.HasEth = true
			copy(p.SrcMAC[:], l.SrcMAC)
			copy(p.DstMAC[:], l.DstMAC)
			p.EtherType = uint16(l.EthernetType)
			p.SrcIP, p.DstIP, udp, arp = netip.Addr{}, netip.Addr{}, nil, nil
		case *layers.Dot1Q:
			p.EtherType = uint16(l.Type)
		case *layers.ARP:
			haveLayer = true
			arp = append(append([]byte(nil), l.Contents...), l.Payload...)
		case *layers.IPv4:
			haveLayer = true
			p.SrcIP, _ = netip.AddrFromSlice(l.SrcIP.To4())
			p.DstIP, _ = netip.AddrFromSlice(l.DstIP.To4())
			p.IPProto = uint8(l.Protocol)
			p.TTL = l.TTL
			udp = nil
		case *layers.UDP:
			udp = l
		}
	}
	if !haveLayer {
		return dissect.Packet{}
	}
	dp := dissect.Packet{Packet: p}
	switch {
	case arp != nil && !p.HasIP():
		p.EtherType = EtherTypeARP
		p.Payload = arp
	case udp != nil && p.HasIP():
		p.SrcPort, p.DstPort = uint16(udp.SrcPort), uint16(udp.DstPort)
		p.Payload = udp.Payload
		src := netip.AddrPortFrom(p.SrcIP, p.SrcPort)
		dst := netip.AddrPortFrom(p.DstIP, p.DstPort)
		f := &flow.Flow{Proto: capture.ProtoUDP, Client: src, Server: dst, ClientMAC: p.SrcMAC, ServerMAC: p.DstMAC}
		dp.Dir = flow.FromClient
		if p.DstPort == DHCPClientPort && p.SrcPort != DHCPClientPort {
			f.Client, f.Server = dst, src
			f.ClientMAC, f.ServerMAC = p.DstMAC, p.SrcMAC
			dp.Dir = flow.FromServer
		}
		dp.Flow = f
	}
	return dp
}

// collect is a Sink keeping every observation.
type collect = dissecttest.Sink

// run offers every packet to d as the registry would for a dissector that
// wants the packet's EtherType or UDP port: Probe, then Handle.
func run(d dissect.Dissector, pkts []dissect.Packet) collect {
	var out collect
	w := d.Wants()
	for i := range pkts {
		p := &pkts[i]
		if p.Packet == nil {
			continue
		}
		wanted := false
		if p.Flow == nil && !p.HasIP() {
			for _, e := range w.EtherTypes {
				wanted = wanted || e == p.EtherType
			}
		} else if p.Flow != nil {
			for _, port := range w.UDPPorts {
				wanted = wanted || port == p.SrcPort || port == p.DstPort
			}
		}
		if wanted && d.Probe(p) {
			d.Handle(p, &out)
		}
	}
	return out
}

// TestAllRegistry runs corpus captures through a registry of All(), as the
// sensor's pipeline does, and checks that ARP frames and DHCP flows reach
// their dissectors and that each call of All gives fresh instances.
func TestAllRegistry(t *testing.T) {
	a, b := All(), All()
	if len(a) < 2 || a[0].Name() != "arp" || a[1].Name() != "dhcp" {
		t.Fatalf("All() = %v, want arp, dhcp", a)
	}
	if a[0] == b[0] {
		t.Error("two calls of All share the ARP instance")
	}
	reg := dissect.NewRegistry(All()...)
	var out collect
	for _, name := range []string{"ICS-Pcaps__DHCP__dhcp_client.pcap", "ICS-Pcaps__ARP__arp.pcap"} {
		for _, p := range readCorpus(t, name) {
			if p.Packet != nil {
				reg.Dispatch(&p, &out)
			}
		}
	}
	counts := map[string]int{}
	for _, o := range out {
		counts[o.Protocol+" "+o.Attr]++
	}
	for _, k := range []string{"arp ip", "dhcp protocol", "dhcp hostname", "dhcp ip", "dhcp dhcp.params"} {
		if counts[k] == 0 {
			t.Errorf("no %q observation through the registry; got %v", k, counts)
		}
	}
}
