package main

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/asset"
	"github.com/passivesensor/sensor/dissect"
)

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
	as := plantInventory(t).Assets()

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
