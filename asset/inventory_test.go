package asset

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func mac(last byte) capture.MAC { return capture.MAC{0x00, 0x1b, 0x1b, 0, 0, last} }

// mkflow builds an answered TCP flow from client to server:port.
func mkflow(client string, cmac capture.MAC, server string, port uint16, smac capture.MAC, at time.Duration) *flow.Flow {
	return &flow.Flow{
		Proto:     capture.ProtoTCP,
		Client:    netip.AddrPortFrom(ip(client), 40000),
		Server:    netip.AddrPortFrom(ip(server), port),
		ClientMAC: cmac,
		ServerMAC: smac,
		First:     t0.Add(at),
		Last:      t0.Add(at + time.Second),
		Packets:   [2]uint64{3, 2},
		Bytes:     [2]uint64{300, 200},
		Answered:  true,
		SawSYN:    true,
	}
}

func testClasses() Classes {
	c := DefaultClasses()
	c.Inventoried = append(c.Inventoried, Range{Prefix: netip.MustParsePrefix("10.50.0.0/16"), Addressing: AddressingDHCP})
	c.NonInventoried = []netip.Prefix{netip.MustParsePrefix("10.99.0.0/16")}
	c.ExcludedIPs = []netip.Prefix{netip.MustParsePrefix("10.0.0.250/32"), netip.MustParsePrefix("192.168.200.0/24")}
	c.ExcludedMACs = []string{"00:1b:1b:00:00:ee"}
	c.Groups = []Group{
		{Name: "dns", Prefixes: []netip.Prefix{netip.MustParsePrefix("8.8.8.8/32"), netip.MustParsePrefix("8.8.4.0/24")}},
		{Name: "cloud", FQDNs: []string{"api.example.com.", "*.vendor.example"}},
		{Name: "inside", Prefixes: []netip.Prefix{netip.MustParsePrefix("10.98.7.0/24")}},
	}
	return c
}

func TestClassify(t *testing.T) {
	inv := NewInventory(testClasses())
	inv.ResolveDNS("API.example.com", []netip.Addr{ip("203.0.113.10"), ip("2001:db8::10"), ip("10.0.0.8")})
	inv.ResolveDNS("cdn.eu.vendor.example", []netip.Addr{ip("203.0.113.20")})
	inv.ResolveDNS("other.example.com", []netip.Addr{ip("203.0.113.30")})
	tests := []struct {
		ip    string
		kind  Kind
		group string
	}{
		{"10.1.2.3", Inventoried, ""},
		{"172.20.0.1", Inventoried, ""},
		{"172.32.0.1", External, ""},
		{"192.168.1.1", Inventoried, ""},
		{"fe80::1", Inventoried, ""},
		{"fd12::1", Inventoried, ""},
		{"::ffff:10.1.2.3", Inventoried, ""},
		{"10.50.3.4", Inventoried, ""},
		{"10.99.1.1", NonInventoried, ""},
		{"10.0.0.250", Excluded, ""},
		{"192.168.200.7", Excluded, ""},
		{"8.8.8.8", MonitoredExternal, "dns"},
		{"8.8.4.4", MonitoredExternal, "dns"},
		{"8.8.8.9", External, ""},
		{"10.98.7.1", MonitoredExternal, "inside"}, // longer prefix than 10/8
		{"203.0.113.10", MonitoredExternal, "cloud"},
		{"2001:db8::10", MonitoredExternal, "cloud"},
		{"10.0.0.8", Inventoried, ""}, // internal ranges win over DNS
		{"203.0.113.20", MonitoredExternal, "cloud"},
		{"203.0.113.30", External, ""},
		{"2001:db8::1", External, ""},
	}
	for _, tt := range tests {
		k, g := inv.Class(ip(tt.ip))
		if k != tt.kind || g != tt.group {
			t.Errorf("Class(%s) = %v %q, want %v %q", tt.ip, k, g, tt.kind, tt.group)
		}
	}
}

func TestLoadClasses(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	c := testClasses()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(good, b, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := LoadClasses(good)
	if err != nil {
		t.Fatalf("LoadClasses: %v", err)
	}
	if len(got.Inventoried) != len(c.Inventoried) || got.Groups[1].FQDNs[0] != "api.example.com." || got.ExcludedMACs[0] != "00:1b:1b:00:00:ee" {
		t.Errorf("round trip lost data: %+v", got)
	}
	for name, text := range map[string]string{
		"badmac.json":  `{"excluded_macs": ["zz"]}`,
		"badaddr.json": `{"inventoried": [{"prefix": "10.0.0.0/8", "addressing": "bootp"}]}`,
		"badjson.json": `{"inventoried": [`,
		"noname.json":  `{"monitored_external": [{"fqdns": ["a.b"]}]}`,
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(text), 0o644)
		if _, err := LoadClasses(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("LoadClasses(%s) error %v, want one naming the file", name, err)
		}
	}
	if _, err := LoadClasses(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("no error for a missing file")
	}
}

func ids(as []Asset) []string {
	var s []string
	for _, a := range as {
		s = append(s, a.ID)
	}
	return s
}

func find(as []Asset, id string) *Asset {
	for i := range as {
		if as[i].ID == id {
			return &as[i]
		}
	}
	return nil
}

func TestClassRulesOnFlows(t *testing.T) {
	inv := NewInventory(testClasses())
	inv.ResolveDNS("api.example.com", []netip.Addr{ip("203.0.113.10")})
	gw := mac(0x01)
	inv.Observe(dissect.Observation{Time: t0, IP: ip("10.0.0.1"), MAC: gw, Attr: dissect.AttrIP, Value: "10.0.0.1", Protocol: "arp"})
	flows := []*flow.Flow{
		mkflow("10.0.0.5", mac(5), "10.0.0.6", 502, mac(6), 0),            // two inventoried hosts
		mkflow("10.0.0.5", mac(5), "10.99.1.1", 80, mac(0x99), 0),         // non-inventoried server
		mkflow("10.0.0.5", mac(5), "10.0.0.250", 22, mac(0x25), 0),        // excluded IP
		mkflow("10.0.0.7", mac(0xee), "10.0.0.6", 502, mac(6), 0),         // excluded MAC
		mkflow("10.0.0.5", mac(5), "8.8.8.8", 53, gw, 0),                  // monitored group by prefix
		mkflow("10.0.0.5", mac(5), "203.0.113.10", 443, gw, 0),            // monitored group by FQDN
		mkflow("10.0.0.5", mac(5), "198.51.100.1", 443, gw, 0),            // external
		mkflow("10.0.0.5", mac(5), "198.51.100.2", 443, gw, 0),            // external (same asset)
		mkflow("10.0.0.5", mac(5), "224.0.0.251", 5353, mac(0xfb), 0),     // multicast: never
		mkflow("10.0.0.5", mac(5), "255.255.255.255", 67, mac(0xff), 0),   // broadcast: never
		mkflow("0.0.0.0", mac(0x30), "255.255.255.255", 67, mac(0xff), 0), // unspecified: never
	}
	for _, f := range flows {
		inv.AddFlow(f)
	}
	as := inv.Assets()
	// Sorted by first address: "external" lists none.
	want := []string{"external", "group:dns", "mac:00:1b:1b:00:00:01", "mac:00:1b:1b:00:00:05", "mac:00:1b:1b:00:00:06", "ip:10.99.1.1", "group:cloud"}
	got := ids(as)
	if !slices.Equal(got, want) {
		t.Fatalf("assets %v\nwant %v", got, want)
	}
	if a := find(as, "mac:00:1b:1b:00:00:01"); !a.Router || !slices.Equal(a.IPs, []netip.Addr{ip("10.0.0.1")}) {
		t.Errorf("gateway: router %v IPs %v; want a router keeping its ARP address", a.Router, a.IPs)
	}
	if a := find(as, "mac:00:1b:1b:00:00:06"); !slices.Equal(a.OpenPorts, []Port{{capture.ProtoTCP, 502}}) {
		t.Errorf("10.0.0.6 open ports %v", a.OpenPorts)
	}
	if a := find(as, "ip:10.99.1.1"); a.Kind != NonInventoried || len(a.OpenPorts) != 0 || a.LastSeen.IsZero() {
		t.Errorf("non-inventoried asset %+v: want kind, last seen and no attributes", a)
	}
	if a := find(as, "group:dns"); a.Kind != MonitoredExternal || !slices.Equal(a.IPs, []netip.Addr{ip("8.8.8.8")}) {
		t.Errorf("group:dns %+v", a)
	}
	if a := find(as, "external"); a.Kind != External || len(a.IPs) != 0 {
		t.Errorf("external %+v: want no addresses listed", a)
	}
	for _, a := range as {
		for _, x := range a.IPs {
			if x == ip("10.0.0.250") || x == ip("10.0.0.7") {
				t.Errorf("excluded address %v in asset %s", x, a.ID)
			}
		}
	}
	if _, ok := inv.Lookup(ip("10.0.0.250")); ok {
		t.Error("Lookup found an excluded address")
	}
	if a, ok := inv.Lookup(ip("198.51.100.2")); !ok || a.ID != "external" {
		t.Errorf("Lookup external = %v %v", a.ID, ok)
	}
	if a, ok := inv.Lookup(ip("10.0.0.6")); !ok || a.ID != "mac:00:1b:1b:00:00:06" {
		t.Errorf("Lookup 10.0.0.6 = %v %v", a.ID, ok)
	}
}

func TestObserveAttributes(t *testing.T) {
	inv := NewInventory(DefaultClasses())
	plc := mac(0x10)
	obs := []dissect.Observation{
		{Time: t0, IP: ip("10.0.0.10"), MAC: plc, Attr: dissect.AttrHostname, Value: "plc-1", Protocol: "dhcp"},
		{Time: t0.Add(time.Second), IP: ip("10.0.0.10"), Attr: dissect.AttrVendor, Value: "Schneider Electric", Protocol: "modbus"},
		{Time: t0.Add(2 * time.Second), IP: ip("10.0.0.10"), Attr: dissect.AttrModel, Value: "BMX P34 2020", Protocol: "modbus"},
		{Time: t0.Add(2 * time.Second), IP: ip("10.0.0.10"), Attr: dissect.AttrFirmware, Value: "v2.70", Protocol: "modbus"},
		{Time: t0.Add(2 * time.Second), IP: ip("10.0.0.10"), Attr: dissect.AttrClass, Value: "plc", Protocol: "modbus"},
		{Time: t0.Add(2 * time.Second), IP: ip("10.0.0.10"), Attr: dissect.AttrRole, Value: "modbus-server", Protocol: "modbus"},
		{Time: t0.Add(2 * time.Second), IP: ip("10.0.0.10"), Attr: dissect.AttrRole, Value: "ftp-server", Protocol: "ftp"},
		{Time: t0.Add(2 * time.Second), IP: ip("10.0.0.10"), Attr: "modbus.unit", Value: "1", Protocol: "modbus"},
		{Time: t0.Add(2 * time.Second), IP: ip("10.0.0.10"), Attr: dissect.AttrService, Value: "read-holding-registers", Peer: ip("10.0.0.20"), Protocol: "modbus"},
		{Time: t0.Add(2 * time.Second), IP: ip("10.0.0.10"), Attr: dissect.AttrService, Value: "write-single-coil", Peer: ip("10.0.0.20"), Protocol: "modbus"},
		{Time: t0.Add(3 * time.Second), IP: ip("10.0.0.10"), Attr: dissect.AttrProtocol, Value: "modbus", Protocol: "modbus", Peer: ip("10.0.0.20")},
		{Time: t0.Add(3 * time.Second), IP: ip("10.0.0.10"), Attr: "long", Value: strings.Repeat("é", 300), Protocol: "x"},
		{Time: t0.Add(3 * time.Second), IP: ip("10.0.0.20"), Attr: dissect.AttrFQDN, Value: "eng-ws.plant.local", Protocol: "dns"},
		{Time: t0.Add(3 * time.Second), IP: ip("224.0.0.251"), Attr: dissect.AttrHostname, Value: "nobody", Protocol: "mdns"},
		{Time: t0.Add(3 * time.Second), IP: ip("198.51.100.7"), Attr: dissect.AttrHostname, Value: "outside", Protocol: "http"},
	}
	for i := 0; i < 100; i++ {
		obs = append(obs, dissect.Observation{Time: t0, IP: ip("10.0.0.10"), Attr: fmt.Sprintf("x.attr%d", i), Value: "v", Protocol: "x"})
	}
	for _, o := range obs {
		inv.Observe(o)
	}
	a, ok := inv.Lookup(ip("10.0.0.10"))
	if !ok {
		t.Fatal("PLC not found")
	}
	if a.ID != "mac:00:1b:1b:00:00:10" || a.Hostname != "plc-1" || a.Vendor != "Schneider Electric" || a.Model != "BMX P34 2020" ||
		a.Firmware != "v2.70" || a.Class != "plc" {
		t.Errorf("PLC asset %+v", a)
	}
	if a.Attrs["role"] != "ftp-server,modbus-server" {
		t.Errorf("roles %q", a.Attrs["role"])
	}
	if a.Attrs["service:modbus"] != "read-holding-registers@10.0.0.20,write-single-coil@10.0.0.20" {
		t.Errorf("service attr %q", a.Attrs["service:modbus"])
	}
	if a.Attrs["modbus.unit"] != "1" {
		t.Errorf("raw attr %q", a.Attrs["modbus.unit"])
	}
	if v := a.Attrs["long"]; len(v) > MaxValueLen || !strings.HasPrefix(v, "éé") {
		t.Errorf("long value not clipped to %d bytes: %d", MaxValueLen, len(v))
	}
	if len(a.Attrs) > MaxAttrs+4+maxDerivedAttrs {
		t.Errorf("%d attrs, want at most %d (+ derived)", len(a.Attrs), MaxAttrs+4+maxDerivedAttrs)
	}
	if !slices.Equal(a.Protocols, []string{"modbus"}) {
		t.Errorf("protocols %v", a.Protocols)
	}
	if !a.FirstSeen.Equal(t0) || !a.LastSeen.Equal(t0.Add(3*time.Second)) {
		t.Errorf("seen %v..%v", a.FirstSeen, a.LastSeen)
	}
	ws, _ := inv.Lookup(ip("10.0.0.20"))
	if ws.Hostname != "eng-ws" || ws.Domain != "plant.local" || !slices.Equal(ws.Protocols, []string{"modbus"}) {
		t.Errorf("client asset %+v", ws)
	}
	for _, x := range inv.Assets() {
		if x.Hostname == "nobody" || x.Hostname == "outside" {
			t.Errorf("asset %s got a multicast/external hostname", x.ID)
		}
	}
}

func TestMACFollowsIPChange(t *testing.T) {
	inv := NewInventory(testClasses())
	dev, other := mac(0x21), mac(0x22)
	inv.Observe(dissect.Observation{Time: t0, IP: ip("10.50.0.5"), MAC: dev, Attr: dissect.AttrHostname, Value: "hmi-3", Protocol: "dhcp"})
	inv.Observe(dissect.Observation{Time: t0, IP: ip("10.50.0.5"), Attr: dissect.AttrOS, Value: "Windows 10", Protocol: "smb"})
	inv.AddFlow(mkflow("10.50.0.5", dev, "10.0.0.6", 502, mac(6), 0))
	// New lease.
	inv.Observe(dissect.Observation{Time: t0.Add(time.Hour), IP: ip("10.50.0.9"), MAC: dev, Attr: dissect.AttrIP, Value: "10.50.0.9", Protocol: "dhcp"})
	inv.AddFlow(mkflow("10.50.0.9", dev, "10.0.0.6", 502, mac(6), time.Hour))
	a, ok := inv.Lookup(ip("10.50.0.9"))
	if !ok || a.ID != "mac:00:1b:1b:00:00:21" || !slices.Equal(a.IPs, []netip.Addr{ip("10.50.0.9"), ip("10.50.0.5")}) {
		t.Fatalf("after IP change: %s %v, want the same MAC asset with the new IP first", a.ID, a.IPs)
	}
	if a.Hostname != "hmi-3" || a.OS != "Windows 10" || a.Attrs["addressing"] != "dhcp" {
		t.Errorf("identity lost across IP change: %+v", a)
	}
	// The old address is leased to another device: the first device keeps
	// it in its history, and what was learnt about it stays with the first
	// device; the new holder starts afresh.
	inv.Observe(dissect.Observation{Time: t0.Add(2 * time.Hour), IP: ip("10.50.0.5"), MAC: other, Attr: dissect.AttrHostname, Value: "laptop", Protocol: "dhcp"})
	inv.Observe(dissect.Observation{Time: t0.Add(2 * time.Hour), IP: ip("10.50.0.5"), Attr: dissect.AttrOS, Value: "Linux", Protocol: "http"})
	a, _ = inv.LookupMAC(dev)
	if !slices.Equal(a.IPs, []netip.Addr{ip("10.50.0.9"), ip("10.50.0.5")}) || a.OS != "Windows 10" || a.Hostname != "hmi-3" {
		t.Errorf("first device after its old IP was reassigned: IPs %v OS %q host %q", a.IPs, a.OS, a.Hostname)
	}
	b, _ := inv.Lookup(ip("10.50.0.5"))
	if b.ID != "mac:00:1b:1b:00:00:22" || b.Hostname != "laptop" || b.OS != "Linux" {
		t.Errorf("new holder of 10.50.0.5: %+v", b)
	}
	if n := len(inv.Assets()); n != 3 {
		t.Errorf("%d assets, want 3 (two devices and 10.0.0.6): %v", n, ids(inv.Assets()))
	}
}

func TestRouterSplit(t *testing.T) {
	inv := NewInventory(DefaultClasses())
	rtr := mac(0xaa)
	// The router answers ARP for 10.0.0.1.
	inv.Observe(dissect.Observation{Time: t0, IP: ip("10.0.0.1"), MAC: rtr, Attr: dissect.AttrIP, Value: "10.0.0.1", Protocol: "arp"})
	inv.Observe(dissect.Observation{Time: t0, MAC: rtr, Attr: dissect.AttrVendor, Value: "Cisco", Protocol: "cdp"})
	// Three hosts on another subnet reach the local server through it:
	// below the threshold they are merged under the router's MAC.
	for i := 1; i <= 3; i++ {
		h := fmt.Sprintf("10.2.0.%d", i)
		inv.Observe(dissect.Observation{Time: t0, IP: ip(h), Attr: dissect.AttrHostname, Value: fmt.Sprintf("remote-%d", i), Protocol: "netbios"})
		inv.AddFlow(mkflow(h, rtr, "10.0.0.6", 502, mac(6), time.Duration(i)*time.Second))
	}
	if a, _ := inv.Lookup(ip("10.2.0.1")); a.ID != "mac:00:1b:1b:00:00:aa" || len(a.IPs) != 4 {
		t.Fatalf("before recognition: %s %v (test premise: merged under the MAC)", a.ID, a.IPs)
	}
	// Seven more, and external addresses behind it.
	for i := 4; i <= 10; i++ {
		inv.AddFlow(mkflow(fmt.Sprintf("10.2.0.%d", i), rtr, "10.0.0.6", 502, mac(6), time.Duration(i)*time.Second))
	}
	if a, _ := inv.LookupMAC(rtr); !a.Router {
		t.Errorf("a MAC carrying 10 internal addresses is not taken for a router")
	}
	for i := 1; i <= 3; i++ {
		inv.AddFlow(mkflow("10.0.0.6", mac(6), fmt.Sprintf("198.51.100.%d", i), 443, rtr, time.Minute))
	}
	as := inv.Assets()
	r := find(as, "mac:00:1b:1b:00:00:aa")
	if r == nil || !r.Router || !slices.Equal(r.IPs, []netip.Addr{ip("10.0.0.1")}) || r.Vendor != "Cisco" {
		t.Fatalf("router asset %+v", r)
	}
	for i := 1; i <= 10; i++ {
		h := ip(fmt.Sprintf("10.2.0.%d", i))
		a, ok := inv.Lookup(h)
		if !ok || a.ID != "ip:"+h.String() || !slices.Equal(a.IPs, []netip.Addr{h}) || a.Router || !a.MAC.IsZero() {
			t.Errorf("host %v: %s %v router=%v", h, a.ID, a.IPs, a.Router)
			continue
		}
		if i <= 3 && a.Hostname != fmt.Sprintf("remote-%d", i) {
			t.Errorf("host %v lost its hostname after the split: %q", h, a.Hostname)
		}
		if a.Hostname == "Cisco" || a.Vendor == "Cisco" {
			t.Errorf("host %v took the router's attributes", h)
		}
	}
	// 1 router + 10 hosts + the server + external.
	if len(as) != 13 {
		t.Errorf("%d assets: %v", len(as), ids(as))
	}
	// A host behind the router later seen on its own segment (its own MAC,
	// ARP) becomes a MAC asset again; the router does not take it back.
	inv.Observe(dissect.Observation{Time: t0.Add(time.Hour), IP: ip("10.2.0.4"), MAC: mac(0x24), Attr: dissect.AttrIP, Value: "10.2.0.4", Protocol: "arp"})
	inv.AddFlow(mkflow("10.2.0.4", rtr, "10.0.0.6", 502, mac(6), time.Hour))
	if a, _ := inv.Lookup(ip("10.2.0.4")); a.ID != "mac:00:1b:1b:00:00:24" {
		t.Errorf("10.2.0.4 after its own ARP: %s", a.ID)
	}
}

func TestRouterByExternalOnly(t *testing.T) {
	inv := NewInventory(DefaultClasses())
	fw := mac(0xf0)
	inv.AddFlow(mkflow("10.0.0.9", fw, "10.0.0.6", 443, mac(6), 0)) // NATed in
	if a, _ := inv.Lookup(ip("10.0.0.9")); a.ID != "mac:00:1b:1b:00:00:f0" {
		t.Fatalf("premise: %s", a.ID)
	}
	inv.AddFlow(mkflow("10.0.0.6", mac(6), "203.0.113.5", 443, fw, time.Second))
	if a, _ := inv.Lookup(ip("10.0.0.9")); a.ID != "ip:10.0.0.9" {
		t.Errorf("after external traffic through the MAC: %s, want ip:10.0.0.9", a.ID)
	}
	if a, ok := inv.LookupMAC(fw); !ok || !a.Router || len(a.IPs) != 0 {
		t.Errorf("firewall MAC %+v", a)
	}
}

func TestHostWithFewIPsIsNotRouter(t *testing.T) {
	inv := NewInventory(DefaultClasses())
	h := mac(0x31)
	for i := 1; i <= 3; i++ {
		inv.AddFlow(mkflow(fmt.Sprintf("10.0.1.%d", i), h, "10.0.0.6", 80, mac(6), 0))
	}
	// Addresses the MAC claims itself do not count.
	for i := 4; i <= 12; i++ {
		a := fmt.Sprintf("10.0.1.%d", i)
		inv.Observe(dissect.Observation{Time: t0, IP: ip(a), MAC: h, Attr: dissect.AttrIP, Value: a, Protocol: "arp"})
		inv.AddFlow(mkflow(a, h, "10.0.0.6", 80, mac(6), 0))
	}
	a, _ := inv.LookupMAC(h)
	if a.Router || len(a.IPs) != 12 {
		t.Errorf("multi-homed host: router %v, %d IPs; want not a router with 12", a.Router, len(a.IPs))
	}
}

func TestBounds(t *testing.T) {
	inv := NewInventory(DefaultClasses())
	inv.MaxRecords = 50
	for i := 0; i < 200; i++ {
		inv.AddFlow(mkflow(fmt.Sprintf("10.1.%d.%d", i/250, i%250+1), capture.MAC{2, 0, 0, 0, byte(i >> 8), byte(i)}, "10.0.0.6", 80, mac(6), 0))
	}
	if n := len(inv.Assets()); n > 2*50 {
		t.Errorf("%d assets with MaxRecords 50", n)
	}
	if inv.Evicted() == 0 {
		t.Error("no evictions counted")
	}
}

func TestDualStackHostIsNotRouter(t *testing.T) {
	inv := NewInventory(DefaultClasses())
	h := capture.MAC{0x00, 0x1b, 0x1b, 0x12, 0x34, 0x56}
	inv.AddFlow(mkflow("10.0.0.5", h, "10.0.0.6", 80, mac(6), 0))
	inv.AddFlow(mkflow("2001:db8::21b:1bff:fe12:3456", h, "2001:db8::1", 443, mac(6), 0)) // EUI-64: own
	for i := 1; i <= 10; i++ {                                                            // temporary (privacy) addresses, rotating
		inv.AddFlow(mkflow(fmt.Sprintf("2001:db8::a1b2:c3d4:e5f6:%x", i), h, "2001:db8::1", 443, mac(6), 0))
		inv.AddFlow(mkflow(fmt.Sprintf("fd00:1::a1b2:c3d4:e5f6:%x", i), h, "fd00:1::6", 443, mac(6), 0))
	}
	inv.AddFlow(mkflow("fe80::1234", h, "fe80::6", 443, mac(6), 0))
	if a, _ := inv.LookupMAC(h); a.Router || len(a.IPs) != 12 || a.IPs[0] != ip("fe80::1234") {
		t.Errorf("dual-stack host: router %v IPs %v; want not a router, with its 12 internal addresses", a.Router, a.IPs)
	}
	r := mac(0x77)
	for i := 1; i <= 3; i++ {
		inv.AddFlow(mkflow(fmt.Sprintf("2001:db8:5:%d::1", i), r, "fd00::6", 443, mac(6), 0))
	}
	if a, _ := inv.LookupMAC(r); a.Router {
		t.Errorf("MAC carrying 3 foreign IPv6 /64s is taken for a router")
	}
	inv.AddFlow(mkflow("2001:db8:5:4::1", r, "fd00::6", 443, mac(6), 0))
	if a, _ := inv.LookupMAC(r); !a.Router {
		t.Errorf("MAC carrying 4 foreign IPv6 /64s is not a router")
	}
}

func TestConcurrentUse(t *testing.T) {
	inv := NewInventory(DefaultClasses())
	tr := NewTraffic(inv)
	done := make(chan bool)
	for g := 0; g < 4; g++ {
		go func(g int) {
			defer func() { done <- true }()
			for i := 0; i < 200; i++ {
				f := mkflow(fmt.Sprintf("10.%d.0.%d", g, i%50+1), capture.MAC{2, byte(g), 0, 0, 0, byte(i % 7)}, "10.0.0.6", 502, mac(6), 0)
				inv.AddFlow(f)
				tr.AddFlow(f)
				inv.Observe(dissect.Observation{Time: t0, IP: f.Client.Addr(), Attr: dissect.AttrHostname, Value: "h", Protocol: "x"})
				if i%50 == 0 {
					inv.Assets()
					tr.Flush()
				}
			}
		}(g)
	}
	for g := 0; g < 4; g++ {
		<-done
	}
	if len(inv.Assets()) == 0 {
		t.Error("no assets")
	}
}

func TestOwnMACWithExternalAddress(t *testing.T) {
	inv := NewInventory(DefaultClasses())
	pi := mac(0x40)
	inv.Observe(dissect.Observation{Time: t0, IP: ip("62.12.173.123"), MAC: pi, Attr: dissect.AttrHostname, Value: "raspberrypi", Protocol: "dhcp"})
	inv.Observe(dissect.Observation{Time: t0, IP: ip("62.12.173.123"), MAC: pi, Attr: dissect.AttrIP, Value: "62.12.173.123", Protocol: "dhcp"})
	a, ok := inv.LookupMAC(pi)
	if !ok || a.Hostname != "raspberrypi" || len(a.IPs) != 0 {
		t.Errorf("local device with a public address: %+v, want a MAC asset with its name and no address", a)
	}
	if e, ok := inv.Lookup(ip("62.12.173.123")); !ok || e.ID != IDExternal {
		t.Errorf("its address belongs to %q, want external", e.ID)
	}
}

func BenchmarkInventoryAddFlow(b *testing.B) {
	inv := NewInventory(DefaultClasses())
	fs := make([]*flow.Flow, 1024)
	for i := range fs {
		fs[i] = mkflow(fmt.Sprintf("10.1.%d.%d", i/200, i%200+1), capture.MAC{2, 0, 0, 0, byte(i >> 8), byte(i)}, "10.0.0.6", 502, mac(6), 0)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		inv.AddFlow(fs[i%len(fs)])
	}
}

func BenchmarkTrafficAddFlow(b *testing.B) {
	inv := NewInventory(DefaultClasses())
	tr := NewTraffic(inv)
	f := mkflow("10.0.0.5", mac(5), "10.0.0.6", 502, mac(6), 0)
	inv.AddFlow(f)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f.Packets[0]++
		tr.AddFlow(f)
	}
}

// An operator's threshold far above what a MAC can hold still bounds what
// the inventory keeps per MAC: a MAC carrying ten thousand addresses it
// does not claim is taken for a router once it carries more than
// MaxIPsPerMAC, and the addresses counted on the way are let go.
func TestRouterThresholdBounded(t *testing.T) {
	c := DefaultClasses()
	c.RouterIPThreshold = 1 << 30
	inv := NewInventory(c)
	gw, srv := mac(1), mac(6)
	for i := range 10000 {
		inv.AddFlow(mkflow(fmt.Sprintf("10.%d.%d.%d", 1+i>>16, i>>8&0xff, i&0xff), gw, "10.0.0.6", 80, srv, 0))
		inv.mu.Lock()
		m := inv.macs[gw]
		n := len(m.carried)
		inv.mu.Unlock()
		if n > 2*(MaxIPsPerMAC+1) {
			t.Fatalf("after %d addresses the MAC keeps %d of them counted", i+1, n)
		}
	}
	if a, ok := inv.LookupMAC(gw); !ok || !a.Router {
		t.Errorf("a MAC carrying 10000 addresses is no router: %+v", a)
	}
}

// TestIdentityGen checks that IdentityGen moves whenever a new asset id
// appears (new address, address joining a MAC, router split, a MAC named
// by a link-layer protocol) and stays put when only attributes of known
// assets change.
func TestIdentityGen(t *testing.T) {
	inv := NewInventory(DefaultClasses())
	idset := func() map[string]bool {
		m := map[string]bool{}
		for _, a := range inv.Assets() {
			m[a.ID] = true
		}
		return m
	}
	seen := idset()
	gen := inv.IdentityGen()
	step := func(what string, wantNew bool, f func()) {
		t.Helper()
		f()
		now, g := idset(), inv.IdentityGen()
		grew := false
		for id := range now {
			if !seen[id] {
				grew = true
			}
			seen[id] = true
		}
		if grew != wantNew {
			t.Fatalf("%s: new asset id %v, want %v (test premise)", what, grew, wantNew)
		}
		if grew && g == gen {
			t.Errorf("%s: a new asset appeared but IdentityGen stayed at %d", what, g)
		}
		if !grew && g != gen {
			t.Errorf("%s: no new asset but IdentityGen moved %d -> %d", what, gen, g)
		}
		gen = g
	}
	rtr := mac(0xaa)
	step("an address in a flow", true, func() { inv.AddFlow(mkflow("10.0.0.5", capture.MAC{}, "10.0.0.6", 502, capture.MAC{}, 0)) })
	step("a hostname for a known address", false, func() {
		inv.Observe(dissect.Observation{Time: t0, IP: ip("10.0.0.5"), Attr: dissect.AttrHostname, Value: "hmi-1", Protocol: "dhcp"})
	})
	step("the address claimed by a MAC", true, func() {
		inv.Observe(dissect.Observation{Time: t0, IP: ip("10.0.0.5"), MAC: mac(5), Attr: dissect.AttrIP, Value: "10.0.0.5", Protocol: "arp"})
	})
	step("a vendor for the known MAC", false, func() {
		inv.Observe(dissect.Observation{Time: t0, MAC: mac(5), Attr: dissect.AttrVendor, Value: "Siemens", Protocol: "lldp"})
	})
	step("a MAC that speaks only a link-layer protocol", true, func() {
		inv.Observe(dissect.Observation{Time: t0, MAC: mac(0x30), Attr: dissect.AttrProtocol, Value: "lldp", Protocol: "lldp"})
	})
	step("a router's MAC answers ARP", true, func() {
		inv.Observe(dissect.Observation{Time: t0, IP: ip("10.0.0.1"), MAC: rtr, Attr: dissect.AttrIP, Value: "10.0.0.1", Protocol: "arp"})
	})
	step("an external address behind the router", true, func() {
		inv.AddFlow(mkflow("10.0.0.6", mac(6), "203.0.113.9", 443, rtr, time.Second))
	})
	step("the same flow again", false, func() {
		inv.AddFlow(mkflow("10.0.0.6", mac(6), "203.0.113.9", 443, rtr, 2*time.Second))
	})
}
