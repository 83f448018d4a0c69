package asset

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
)

// TestDirectedBroadcastNoAsset: traffic and facts addressed to a subnet's
// broadcast (x.x.x.255 in a /24-or-wider range, or the last address of a
// configured range) make no asset; a MAC claiming such an address as its
// own (ARP) still does, as in a /16 where x.x.1.255 is a host.
func TestDirectedBroadcastNoAsset(t *testing.T) {
	c := DefaultClasses()
	c.Inventoried = append(c.Inventoried, Range{Prefix: netip.MustParsePrefix("192.168.7.0/26"), Addressing: AddressingStatic})
	inv := NewInventory(c)
	bcast := capture.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	for _, dst := range []string{"10.10.0.255", "192.168.7.63"} {
		inv.AddFlow(&flow.Flow{
			Proto:     capture.ProtoUDP,
			Client:    netip.AddrPortFrom(ip("10.10.0.5"), 47808),
			Server:    netip.AddrPortFrom(ip(dst), 47808),
			ClientMAC: mac(5),
			ServerMAC: bcast,
			First:     t0, Last: t0,
			Packets: [2]uint64{1, 0},
		})
		inv.Observe(dissect.Observation{Time: t0, IP: ip(dst), Attr: dissect.AttrProtocol, Value: "bacnet", Peer: ip("10.10.0.5")})
		inv.Observe(dissect.Observation{Time: t0, IP: ip(dst), Attr: dissect.AttrRole, Value: "bacnet-client", Protocol: "bacnet"})
	}
	// 192.168.7.62 is an ordinary host of the /26.
	inv.Observe(dissect.Observation{Time: t0, IP: ip("192.168.7.62"), Attr: dissect.AttrHostname, Value: "h62"})
	// A host of 10.0.0.0/8 that owns an address ending in .255, by ARP.
	inv.Observe(dissect.Observation{Time: t0, IP: ip("10.20.1.255"), MAC: mac(9), Attr: dissect.AttrIP, Value: "10.20.1.255", Protocol: "arp"})
	inv.Observe(dissect.Observation{Time: t0, IP: ip("10.20.1.255"), Attr: dissect.AttrHostname, Value: "owner"})

	for _, a := range inv.Assets() {
		for _, x := range a.IPs {
			switch x.String() {
			case "10.10.0.255", "192.168.7.63":
				t.Errorf("broadcast %v became asset %s: %+v", x, a.ID, a)
			}
		}
	}
	if a, ok := inv.Lookup(ip("192.168.7.62")); !ok || a.Hostname != "h62" {
		t.Errorf("host 192.168.7.62 of the /26: %+v %v", a, ok)
	}
	if a, ok := inv.Lookup(ip("10.20.1.255")); !ok || a.Hostname != "owner" {
		t.Errorf("10.20.1.255 claimed by a MAC is lost: %+v %v", a, ok)
	}
	if _, ok := inv.Lookup(ip("10.10.0.5")); !ok {
		t.Error("the sender of the broadcasts is missing")
	}
}

// TestDomainKinds: a NetBIOS workgroup and a Kerberos realm do not
// overwrite the DNS domain, and each is kept.
func TestDomainKinds(t *testing.T) {
	for _, order := range [][]string{{"dhcp", "browser", "nbns", "kerberos"}, {"kerberos", "nbns", "browser", "dhcp"}} {
		inv := NewInventory(DefaultClasses())
		for _, p := range order {
			v := map[string]string{"dhcp": "corp.example.com", "browser": "WORKGROUP", "nbns": "WORKGROUP", "kerberos": "CORP.EXAMPLE.COM"}[p]
			inv.Observe(dissect.Observation{Time: t0, IP: ip("10.1.2.3"), MAC: mac(3), Attr: dissect.AttrDomain, Value: v, Protocol: p})
		}
		a, ok := inv.Lookup(ip("10.1.2.3"))
		if !ok {
			t.Fatal("no asset")
		}
		if a.Domain != "corp.example.com" {
			t.Errorf("order %v: Domain %q, want the DNS domain", order, a.Domain)
		}
		if g := a.Attrs[AttrWorkgroup]; g != "WORKGROUP" {
			t.Errorf("order %v: %s = %q, want WORKGROUP", order, AttrWorkgroup, g)
		}
		if r := a.Attrs[AttrKerberosRealm]; r != "CORP.EXAMPLE.COM" {
			t.Errorf("order %v: %s = %q", order, AttrKerberosRealm, r)
		}
	}
	// A realm alone gives the domain.
	inv := NewInventory(DefaultClasses())
	inv.Observe(dissect.Observation{Time: t0, IP: ip("10.1.2.4"), Attr: dissect.AttrDomain, Value: "LAB.EXAMPLE", Protocol: "kerberos"})
	if a, _ := inv.Lookup(ip("10.1.2.4")); a.Domain != "lab.example" {
		t.Errorf("realm alone: Domain %q", a.Domain)
	}
}

// TestGrowingValuesBounded: a dissector restating a list that grows with
// every fact (roles, services, a comma-joined attribute) leaves every value
// of the asset bounded.
func TestGrowingValuesBounded(t *testing.T) {
	inv := NewInventory(DefaultClasses())
	list := ""
	for i := range 2000 {
		n := fmt.Sprintf("item%d", i)
		list += "," + n
		inv.Observe(dissect.Observation{Time: t0, IP: ip("10.3.3.3"), Attr: "proto.list", Value: list})
		inv.Observe(dissect.Observation{Time: t0, IP: ip("10.3.3.3"), Attr: dissect.AttrRole, Value: n + "-server"})
		inv.Observe(dissect.Observation{Time: t0, IP: ip("10.3.3.3"), Attr: dissect.AttrService, Value: n, Protocol: "proto", Peer: ip("10.3.3.4")})
	}
	a, ok := inv.Lookup(ip("10.3.3.3"))
	if !ok {
		t.Fatal("no asset")
	}
	if v := a.Attrs["proto.list"]; len(v) > MaxValueLen {
		t.Errorf("growing list kept %d bytes, want at most %d", len(v), MaxValueLen)
	}
	if n := len(strings.Split(a.Attrs[dissect.AttrRole], ",")); n > MaxRoles {
		t.Errorf("%d roles kept, want at most %d", n, MaxRoles)
	}
	if a.Attrs["service:proto"] == "" || a.Attrs[dissect.AttrRole] == "" || a.Attrs["proto.list"] == "" {
		t.Fatalf("values lost: %v", a.Attrs)
	}
	if n := len(strings.Split(a.Attrs["service:proto"], ",")); n > MaxServiceValues {
		t.Errorf("%d service values kept, want at most %d", n, MaxServiceValues)
	}
	for k, v := range a.Attrs {
		if len(v) > MaxValueLen*MaxServiceValues+MaxServiceValues {
			t.Errorf("attribute %s holds %d bytes", k, len(v))
		}
	}
}
