package main

import (
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/asset"
	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
	"github.com/passivesensor/sensor/it"
	"github.com/passivesensor/sensor/ot"
)

// discoveryInventory runs the generated plant through the sensor's
// pipeline as cmd/sensor's worker does (decoder, flow table binding
// addresses to MACs, the registry of every dissector, the inventory) and
// returns the inventory's assets.
func discoveryInventory(t *testing.T) []asset.Asset {
	t.Helper()
	data, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "plant.pcap")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := capture.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	inv := asset.NewInventory(asset.DefaultClasses())
	flows := flow.NewTable(flow.Config{OnEvict: inv.AddFlow})
	reg := dissect.NewRegistry(append(it.All(), ot.All()...)...)
	var (
		dec capture.Decoder
		pkt capture.Packet
	)
	for {
		fr, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if dec.Decode(fr, &pkt) != nil {
			continue
		}
		var f *flow.Flow
		var dir flow.Dir
		if pkt.HasIP() && (pkt.IPProto == capture.ProtoTCP || pkt.IPProto == capture.ProtoUDP) {
			if f, dir = flows.Lookup(&pkt); f != nil && f.Packets[flow.FromClient]+f.Packets[flow.FromServer] == 1 {
				inv.AddFlow(f)
			}
		}
		reg.Dispatch(&dissect.Packet{Packet: &pkt, Flow: f, Dir: dir}, inv)
	}
	flows.Range(func(f *flow.Flow) bool { inv.AddFlow(f); return true })
	return inv.Assets()
}

// discoveryAsset returns the asset holding address ip.
func discoveryAsset(t *testing.T, as []asset.Asset, ip string) asset.Asset {
	t.Helper()
	for _, a := range as {
		for _, x := range a.IPs {
			if x.String() == ip {
				return a
			}
		}
	}
	t.Fatalf("no asset holds %s", ip)
	return asset.Asset{}
}

// TestDiscoveryIdentities checks that the sensor learns what the
// discovery scenes put on the wire: the operator PC's NetBIOS name,
// workgroup and Windows version from its registrations and host
// announcement, its DHCPv6 identity and address, its LLTD hello; the
// printer's name (node status), UPnP and WSD identity; the router's IPv6
// roles; the HMI's link-local address bound to its MAC.
func TestDiscoveryIdentities(t *testing.T) {
	as := discoveryInventory(t)

	pc := discoveryAsset(t, as, opsPC40.IP.String())
	if pc.MAC.String() != opsPC40.MAC.String() || pc.Hostname != opsPC40.Name || pc.Attrs[asset.AttrWorkgroup] != plantWorkgroup || pc.OS != "Windows 7" {
		t.Errorf("PC: MAC %s hostname %q workgroup %q OS %q", pc.MAC, pc.Hostname, pc.Attrs[asset.AttrWorkgroup], pc.OS)
	}
	for attr, want := range map[string]string{
		"browser.os_version":   "6.1",
		"browser.server_type":  "workstation,server,nt,potential-browser",
		"browser.comment":      "Line 1 operator station",
		"dhcpv6.vendor_class":  "311:MSFT 5.0",
		"dhcpv6.oro":           "17,23,24,39",
		"ssdp.search":          "urn:schemas-upnp-org:device:Printer:1",
		"wsd.probe_types":      "wsdp:Device",
		"lltd.physical_medium": "ethernet",
	} {
		if pc.Attrs[attr] != want {
			t.Errorf("PC %s = %q, want %q", attr, pc.Attrs[attr], want)
		}
	}
	for _, ip := range []string{opsPC40V6.String(), linkLocal(opsPC40.MAC).String()} {
		if !slices.ContainsFunc(pc.IPs, func(a netip.Addr) bool { return a.String() == ip }) {
			t.Errorf("PC addresses %v lack %s", pc.IPs, ip)
		}
	}

	prn := discoveryAsset(t, as, prnLine1.IP.String())
	if prn.MAC.String() != prnLine1.MAC.String() || prn.Hostname != prnLine1.Name || prn.Attrs[asset.AttrWorkgroup] != plantWorkgroup || prn.Class != dissect.ClassPrinter {
		t.Errorf("printer: MAC %s hostname %q workgroup %q class %q", prn.MAC, prn.Hostname, prn.Attrs[asset.AttrWorkgroup], prn.Class)
	}
	for attr, want := range map[string]string{
		"ssdp.server":       prnServer,
		"ssdp.device_types": "urn:schemas-upnp-org:device:Printer:1",
		"ssdp.uuid":         prnUUID,
		"ssdp.location":     "http://10.10.0.45:80/DevMgmt/DiscoveryTree.xml",
		"wsd.types":         "wsdp:Device wprt:PrintDeviceType",
		"wsd.xaddrs":        "http://10.10.0.45:3911/",
		"wsd.address":       "urn:uuid:" + prnUUID,
	} {
		if prn.Attrs[attr] != want {
			t.Errorf("printer %s = %q, want %q", attr, prn.Attrs[attr], want)
		}
	}

	rtr := discoveryAsset(t, as, linkLocal(router.MAC).String())
	if rtr.MAC.String() != router.MAC.String() || !strings.Contains(rtr.Attrs["role"], "ipv6-router") || !strings.Contains(rtr.Attrs["role"], "dhcpv6-server") || rtr.Attrs["ndp.prefixes"] != cellPrefix.String() {
		t.Errorf("router: MAC %s roles %q prefixes %q", rtr.MAC, rtr.Attrs["role"], rtr.Attrs["ndp.prefixes"])
	}
	if h := discoveryAsset(t, as, linkLocal(hmi.MAC).String()); h.MAC.String() != hmi.MAC.String() {
		t.Errorf("HMI link-local bound to %s", h.MAC)
	}
}
