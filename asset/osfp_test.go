package asset

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
)

func TestOSSignals(t *testing.T) {
	type parse func(string) (osGuess, bool)
	sys := func(s string) (osGuess, bool) { return osFromSysDescr(s, 90) }
	cases := []struct {
		f             parse
		in            string
		name, version string
	}{
		{osFromDHCPVendor, "MSFT 5.0", "Windows", ""},
		{osFromDHCPVendor, "android-dhcp-13", "Android", "13"},
		{osFromDHCPVendor, "dhcpcd-9.4.1:Linux-5.15.0-1034-raspi:aarch64:BCM2835", "Linux", "5.15.0-1034-raspi"},
		{osFromDHCPVendor, "udhcp 1.12.1", "Linux", "embedded (BusyBox)"},
		{osFromDHCPVendor, "Cisco Systems, Inc. IP Phone CP-7941G", "", ""},
		{osFromDHCPParams, "1,3,6,15,31,33,43,44,46,47,119,121,249,252", "Windows", "10/11"},
		{osFromDHCPParams, "1,15,3,6,44,46,47,31,33,121,249,43", "Windows", "Vista/7"},
		{osFromDHCPParams, "1,15,3,6,44,46,47,31,33,249,43", "Windows", "XP/2003"},
		{osFromDHCPParams, "1,28,2,3,15,6,119,12,44,47,26,121,42", "Linux", ""},
		{osFromDHCPParams, "1,3,6,15,26,28,51,58,59,43,114", "Android", ""},
		{osFromDHCPParams, "1,121,3,6,15,119,252", "iOS", ""},
		{osFromDHCPParams, "1,121,3,6,15,119,252,95,44,46", "macOS", ""},
		{osFromDHCPParams, "1,3,6,12,15,28,42", "Linux", "embedded (BusyBox)"},
		{osFromDHCPParams, "1,66,6,3,15,150,35", "", ""},
		{osFromUserAgent, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36", "Windows", "10/11"},
		{osFromUserAgent, "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko", "Windows", "7"},
		{osFromUserAgent, "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36", "Android", "13"},
		{osFromUserAgent, "Mozilla/5.0 (iPhone; CPU iPhone OS 16_5 like Mac OS X) AppleWebKit/605.1.15", "iOS", "16.5"},
		{osFromUserAgent, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15", "macOS", "10.15.7"},
		{osFromUserAgent, "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0", "Linux", "Ubuntu"},
		{osFromUserAgent, "Microsoft-CryptoAPI/10.0", "Windows", ""},
		{osFromUserAgent, "curl/7.88.1", "", ""},
		{osFromBrowser, "6.1", "Windows", "7"},
		{osFromBrowser, "10.0", "Windows", "10/11"},
		{osFromSSH, "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.1", "Linux", "Ubuntu"},
		{osFromSSH, "SSH-2.0-OpenSSH_8.4p1 Debian-5+deb11u1", "Linux", "Debian 11"},
		{osFromSSH, "SSH-2.0-OpenSSH_for_Windows_8.1", "Windows", ""},
		{osFromSSH, "SSH-2.0-dropbear_2020.81", "Linux", "embedded (Dropbear)"},
		{osFromSSH, "SSH-2.0-Cisco-1.25", "Cisco IOS", ""},
		{osFromSSH, "SSH-2.0-OpenSSH_9.0", "", ""},
		{sys, "Cisco IOS Software, C2960 Software (C2960-LANBASEK9-M), Version 12.2(50)SE1, RELEASE SOFTWARE (fc2)", "Cisco IOS", "12.2(50)SE1"},
		{sys, "Hardware: Intel64 Family 6 Model 85 - Software: Windows Version 6.3 (Build 17763 Multiprocessor Free)", "Windows", "8.1"},
		{sys, "Linux gw 4.19.0-18-amd64 #1 SMP Debian 4.19.208-1 (2021-09-29) x86_64", "Linux", "4.19.0-18-amd64"},
		{sys, "Juniper Networks, Inc. ex2200-24t-4g Ethernet Switch, kernel JUNOS 12.3R6.6", "JUNOS", "12.3R6.6"},
		{sys, "Siemens, SIMATIC NET, SCALANCE X204-2, 6GK5 204-2BB10-2AA3, HW: 5, FW: V5.2.1", "", ""},
	}
	for _, c := range cases {
		g, ok := c.f(c.in)
		if c.name == "" {
			if ok {
				t.Errorf("%q: got %s %s, want no opinion", c.in, g.name, g.version)
			}
			continue
		}
		if !ok || g.name != c.name || g.version != c.version {
			t.Errorf("%q: got %q %q (%v), want %q %q", c.in, g.name, g.version, ok, c.name, c.version)
		}
	}
}

func TestCombine(t *testing.T) {
	cases := []struct {
		name    string
		gs      []osGuess
		want    string
		minConf int
		maxConf int
	}{
		{"DHCP vendor class outweighs a TCP guess", []osGuess{guess("Linux", "3.11 and newer", 40), guess("Windows", "", 75), guess("Windows", "10/11", 55)}, "Windows 10/11", 50, 80},
		{"Android refines Linux", []osGuess{guess("Linux", "3.11 and newer", 40), guess("Android", "13", 85)}, "Android 13", 85, 99},
		{"agreeing weak signals add up", []osGuess{guess("Windows", "7 or 8", 40), guess("Windows", "7", 45), guess("Windows", "7", 55)}, "Windows 7", 80, 95},
		{"one fuzzy TCP guess is weak", []osGuess{guess("Linux", "2.2.x-3.x (barebone) (fuzzy)", 20)}, "Linux 2.2.x-3.x (barebone) (fuzzy)", 15, 25},
	}
	for _, c := range cases {
		v, ok := combine(c.gs)
		got := strings.TrimSpace(v.name + " " + v.version)
		if !ok || got != c.want || v.confidence < c.minConf || v.confidence > c.maxConf {
			t.Errorf("%s: got %q confidence %d, want %q in [%d,%d]", c.name, got, v.confidence, c.want, c.minConf, c.maxConf)
		}
	}
}

// obs feeds observations to a fresh inventory of 10.0.0.0/8.
func fpInventory(t *testing.T, obs ...dissect.Observation) *Inventory {
	t.Helper()
	inv := NewInventory(Classes{Inventoried: []Range{{Prefix: netip.MustParsePrefix("10.0.0.0/8")}}})
	for _, o := range obs {
		inv.Observe(o)
	}
	return inv
}

func TestDeriveVerdicts(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	o := func(ip, mac, attr, v string) dissect.Observation {
		d := dissect.Observation{Time: t0, Attr: attr, Value: v, Protocol: "test"}
		if ip != "" {
			d.IP = netip.MustParseAddr(ip)
		}
		if mac != "" {
			d.MAC = mustMAC(t, mac)
		}
		return d
	}
	cases := []struct {
		name              string
		obs               []dissect.Observation
		ip                string
		os, class, vendor string
		nat               bool
	}{
		{"Windows by DHCP, HMI by role, TCP says Linux",
			[]dissect.Observation{
				o("10.0.0.21", "00:90:e8:10:00:21", "dhcp.vendor_class", "MSFT 5.0"),
				o("10.0.0.21", "00:90:e8:10:00:21", "dhcp.params", "1,3,6,15,31,33,43,44,46,47,119,121,249,252"),
				o("10.0.0.21", "", "tcp.syn", "4:64+0:0:1460:mss*20,7:mss,sok,ts,nop,ws:df,id+:0"),
				o("10.0.0.21", "", dissect.AttrRole, "modbus-client"),
			}, "10.0.0.21", "Windows 10/11", dissect.ClassHMI, "MOXA Technologies", false},
		{"PLC by role and OUI, embedded stack",
			[]dissect.Observation{
				o("10.0.0.11", "00:80:f4:10:00:11", dissect.AttrIP, "10.0.0.11"),
				o("10.0.0.11", "", dissect.AttrRole, "modbus-server"),
			}, "10.0.0.11", "", dissect.ClassPLC, "Telemecanique Electrique", false},
		{"stated class wins over role",
			[]dissect.Observation{
				o("10.0.0.12", "00:00:bc:10:00:12", dissect.AttrClass, dissect.ClassIO),
				o("10.0.0.12", "", dissect.AttrRole, "modbus-server"),
			}, "10.0.0.12", "", dissect.ClassIO, "Rockwell Automation", false},
		{"engineering station writes programs",
			[]dissect.Observation{
				o("10.0.0.31", "00:14:22:10:00:31", dissect.AttrRole, "s7-client"),
				{Time: t0, IP: netip.MustParseAddr("10.0.0.31"), Attr: dissect.AttrService, Value: "download-block", Protocol: "s7comm", Peer: netip.MustParseAddr("10.0.0.11")},
			}, "10.0.0.31", "", dissect.ClassEngineering, "Dell", false},
		{"Cisco phone by its DHCP vendor class",
			[]dissect.Observation{
				o("10.0.0.40", "00:1b:d5:2d:1d:f6", "dhcp.vendor_class", "Cisco Systems, Inc. IP Phone CP-7941G-GE"),
			}, "10.0.0.40", "", dissect.ClassPhone, "Cisco Systems", false},
		{"NAT: Windows and Linux stacks and User-Agents on one IP",
			[]dissect.Observation{
				o("10.0.0.50", "", "tcp.syn", "4:127+1:0:1460:8192,8:mss,nop,ws,nop,nop,sok:df,id+:0"),
				o("10.0.0.50", "", "tcp.syn", "4:63+1:0:1460:mss*20,7:mss,sok,ts,nop,ws:df,id+:0"),
				o("10.0.0.50", "", "http.user_agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"),
				o("10.0.0.50", "", "http.user_agent", "Mozilla/5.0 (Linux; Android 13; Pixel 7)"),
			}, "10.0.0.50", "", dissect.ClassRouter, "", true},
		{"NAT from two weak signs: DHCP lists and timestamp clocks",
			[]dissect.Observation{
				o("10.0.0.51", "", "dhcp.params", "1,3,6,15,31,33,43,44,46,47,119,121,249,252"),
				o("10.0.0.51", "", "dhcp.params", "1,28,2,3,15,6,119,12,44,47,26,121,42"),
				o("10.0.0.51", "", "tcp.ts_clock", "disagree toward 10.0.0.9"),
			}, "10.0.0.51", "", dissect.ClassRouter, "", true},
		{"one weak sign is not NAT (Windows' INFORM asks another list)",
			[]dissect.Observation{
				o("10.0.0.52", "", "dhcp.params", "1,3,6,15,31,33,43,44,46,47,119,121,249,252"),
				o("10.0.0.52", "", "dhcp.params", "1,15,3,6,44,46,47,31,33,121,249,43,252"),
			}, "10.0.0.52", "Windows Vista/7", dissect.ClassWorkstation, "", false},
		{"randomized MAC: no vendor",
			[]dissect.Observation{
				o("10.0.0.60", "da:a1:19:00:00:01", "dhcp.vendor_class", "android-dhcp-13"),
			}, "10.0.0.60", "Android 13", dissect.ClassMobile, "", false},
	}
	for _, c := range cases {
		inv := fpInventory(t, c.obs...)
		a, ok := inv.Lookup(netip.MustParseAddr(c.ip))
		if !ok {
			t.Errorf("%s: no asset", c.name)
			continue
		}
		if a.OS != c.os || a.Class != c.class || a.Vendor != c.vendor || a.NAT != c.nat {
			t.Errorf("%s: OS %q class %q vendor %q NAT %v; want %q %q %q %v\nattrs %v", c.name, a.OS, a.Class, a.Vendor, a.NAT, c.os, c.class, c.vendor, c.nat, a.Attrs)
		}
		if c.os != "" && (a.OSConfidence == 0 || a.Attrs[AttrOSEvidence] == "") {
			t.Errorf("%s: verdict without confidence or evidence: %v", c.name, a.Attrs)
		}
		if c.class != "" && a.Attrs[AttrClassEvid] == "" {
			t.Errorf("%s: class without evidence", c.name)
		}
	}
}

// The vendor of a router's MAC is the router's: the hosts behind it, seen
// only through its MAC, get none.
func TestNoVendorBehindRouter(t *testing.T) {
	inv := fpInventory(t)
	gw := mustMAC(t, "00:1e:bd:10:00:01") // Cisco
	host := mustMAC(t, "00:90:e8:10:00:21")
	for i := 0; i < 6; i++ {
		c := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, 0, byte(100 + i)}), 50000)
		inv.AddFlow(&flow.Flow{Proto: capture.ProtoTCP, Client: c, Server: netip.MustParseAddrPort("10.0.0.21:80"), ClientMAC: gw, ServerMAC: host, First: time.Unix(1, 0), Last: time.Unix(2, 0)})
	}
	behind, ok := inv.Lookup(netip.MustParseAddr("10.1.0.101"))
	if !ok || behind.Vendor != "" || behind.Attrs[AttrMACVendor] != "" || !behind.MAC.IsZero() {
		t.Errorf("address behind the router: %+v", behind)
	}
	r, ok := inv.LookupMAC(gw)
	if !ok || !r.Router || !strings.HasPrefix(r.Vendor, "Cisco") || r.Class != dissect.ClassRouter {
		t.Errorf("router asset: %+v", r)
	}
}

// MatchTCP reads attribute values; whatever they hold, it must not panic.
func FuzzMatchTCP(f *testing.F) {
	f.Add("4:64+0:0:1460:mss*20,7:mss,sok,ts,nop,ws:df,id+:0")
	f.Add("6:64+0:0:16324:65535,6:mss,nop,ws,nop,nop,ts,sok,eol+1::0")
	f.Add("4:30+2:0:1460:mtu*9999999999,0:mss::+")
	f.Fuzz(func(t *testing.T, raw string) {
		MatchTCP(raw, false)
		MatchTCP(raw, true)
		osFromEmbeddedStack(raw)
	})
}

// BenchmarkAssetsWithFingerprints: one op is a snapshot of 1,000 devices
// each with a DHCP fingerprint, a User-Agent and a SYN signature, so the
// cost of deriving vendor, OS, NAT and class per report shows.
func BenchmarkAssetsWithFingerprints(b *testing.B) {
	inv := NewInventory(Classes{Inventoried: []Range{{Prefix: netip.MustParsePrefix("10.0.0.0/8")}}})
	t0 := time.Unix(1, 0)
	for i := 0; i < 1000; i++ {
		ip := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		mac := capture.MAC{0x00, 0x1b, 0x1b, 0, byte(i >> 8), byte(i)}
		for _, o := range []dissect.Observation{
			{Time: t0, IP: ip, MAC: mac, Attr: "dhcp.params", Value: "1,3,6,15,31,33,43,44,46,47,119,121,249,252"},
			{Time: t0, IP: ip, MAC: mac, Attr: "dhcp.vendor_class", Value: "MSFT 5.0"},
			{Time: t0, IP: ip, Attr: "http.user_agent", Value: "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"},
			{Time: t0, IP: ip, Attr: "tcp.syn", Value: "4:128+0:0:1460:mss*44,8:mss,nop,ws,nop,nop,sok:df,id+:0"},
			{Time: t0, IP: ip, Attr: dissect.AttrRole, Value: "modbus-client"},
		} {
			inv.Observe(o)
		}
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if n := len(inv.Assets()); n != 1000 {
			b.Fatalf("%d assets", n)
		}
	}
}
