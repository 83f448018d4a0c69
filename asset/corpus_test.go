package asset_test

import (
	"bytes"
	"errors"
	"github.com/passivesensor/sensor/internal/testcorpus"
	"io"
	"net"
	"net/netip"
	"testing"

	"github.com/passivesensor/sensor/asset"
	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/flow"
)

// internal is the oracle's reading of the default classes.
func internal(a netip.Addr) bool { return a.IsPrivate() || a.IsLinkLocalUnicast() }

// ownEUI64 reports whether IPv6 address a ends in the EUI-64 of MAC m.
func ownEUI64(a netip.Addr, m string) bool {
	hw, err := net.ParseMAC(m)
	if err != nil || len(hw) != 6 {
		return false
	}
	b := a.As16()
	return bytes.Equal(b[8:], []byte{hw[0] ^ 2, hw[1], hw[2], 0xff, 0xfe, hw[3], hw[4], hw[5]})
}

// TestCorpusRouters runs real captures of routed networks through the flow
// table into the inventory and checks the router rule against what tshark
// says the frames carry: a MAC sending frames from a non-internal IPv4
// address, or from more than asset.RouterIPs IPv4 addresses, or IPv6 /64s
// (link-local and the MAC's own EUI-64 addresses aside), is a router's and
// groups no address; every other MAC groups the internal addresses it
// sends from.
func TestCorpusRouters(t *testing.T) {
	for _, name := range []string{
		"nDPI__tests__cfgs__default__pcap__1kxun.pcap",
		"ICS-Pcaps__DNP3__dnp3dataset_capturerem_to_cite_the_paper.pcap",
		"icsnpp-bacnet__testing__traces__bacnet_example.pcap",
	} {
		t.Run(name, func(t *testing.T) { corpusRouters(t, testcorpus.File(t, name)) })
	}
}

func corpusRouters(t *testing.T, file string) {
	const filter = "(tcp || udp) && !icmp && !icmpv6 && !(ip.flags.mf == 1 || ip.frag_offset > 0) && eth.src"
	ipsOf := map[string]map[netip.Addr]bool{}   // internal addresses each MAC sends from
	counted := map[string]map[netip.Addr]bool{} // what the router rule counts
	router := map[string]bool{}
	for _, r := range testcorpus.TsharkLast(t, file, filter, "eth.src", "ip.src", "ipv6.src") {
		for len(r) < 3 {
			r = append(r, "")
		}
		a, err := netip.ParseAddr(r[1] + r[2])
		if err != nil || a.IsMulticast() || a.IsUnspecified() || a.IsLoopback() {
			continue
		}
		m := r[0]
		if !internal(a) && a.Is4() {
			router[m] = true
			continue
		}
		if ipsOf[m] == nil {
			ipsOf[m], counted[m] = map[netip.Addr]bool{}, map[netip.Addr]bool{}
		}
		if internal(a) {
			ipsOf[m][a] = true
		}
		if a.IsLinkLocalUnicast() || ownEUI64(a, m) {
			continue
		}
		if a.Is6() {
			a = netip.PrefixFrom(a, 64).Masked().Addr()
		}
		counted[m][a] = true
	}
	macsOf := map[netip.Addr][]string{} // oracle: own MACs of each address
	for m, ips := range ipsOf {
		n4, n6 := 0, 0
		for a := range counted[m] {
			if a.Is4() {
				n4++
			} else {
				n6++
			}
		}
		if n4 > asset.RouterIPs || n6 > asset.RouterIPs {
			router[m] = true
		}
		if router[m] {
			continue
		}
		for a := range ips {
			macsOf[a] = append(macsOf[a], m)
		}
	}

	inv := asset.NewInventory(asset.DefaultClasses())
	tb := flow.NewTable(flow.Config{OnEvict: inv.AddFlow})
	src, err := capture.OpenFile(file)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var dec capture.Decoder
	var p capture.Packet
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
		f, dir := tb.Lookup(&p)
		if f != nil && (f.Packets[0]+f.Packets[1] == 1 || (dir == flow.FromServer && f.Packets[1] == 1)) {
			inv.AddFlow(f)
		}
	}
	tb.EvictAll()

	gotRouter := map[string]bool{}
	for _, a := range inv.Assets() {
		if a.Router {
			gotRouter[a.MAC.String()] = true
			if len(a.IPs) != 0 {
				t.Errorf("router %s groups %v without an ARP claim", a.ID, a.IPs)
			}
			continue
		}
		if a.Kind != asset.Inventoried || a.MAC.IsZero() {
			continue
		}
		for _, ip := range a.IPs {
			if !contains(macsOf[ip], a.MAC.String()) {
				t.Errorf("asset %s groups %v; tshark: %v sends from MACs %v", a.ID, ip, ip, macsOf[ip])
			}
		}
	}
	for m := range router {
		if !gotRouter[m] {
			t.Errorf("MAC %s carries %d internal addresses (or external ones) but is not a router", m, len(ipsOf[m]))
		}
	}
	for m := range gotRouter {
		if !router[m] {
			t.Errorf("MAC %s taken for a router; tshark: it sends from %d internal addresses only", m, len(ipsOf[m]))
		}
	}
	behind := 0
	for m, ips := range ipsOf {
		for ip := range ips {
			if !internal(ip) {
				continue
			}
			a, ok := inv.Lookup(ip)
			if !ok {
				t.Errorf("%v (from %s) has no asset", ip, m)
				continue
			}
			if own := macsOf[ip]; len(own) > 0 {
				if !contains(own, a.MAC.String()) {
					t.Errorf("%v is in asset %s; tshark: its MACs are %v", ip, a.ID, own)
				}
			} else {
				behind++
				if a.ID != "ip:"+ip.String() {
					t.Errorf("%v is only seen behind routers but is in asset %s", ip, a.ID)
				}
			}
		}
	}
	t.Logf("%d MACs, %d routers, %d addresses only behind routers, %d assets", len(ipsOf), len(router), behind, len(inv.Assets()))
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
