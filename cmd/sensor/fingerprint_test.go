package main

import (
	"bufio"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/asset"
	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/internal/testcorpus"
)

// fpAll inventories every address, so that each one p0f names has a
// record of its own.
func fpAll() asset.Classes {
	return asset.Classes{Inventoried: []asset.Range{
		{Prefix: netip.MustParsePrefix("0.0.0.0/0")}, {Prefix: netip.MustParsePrefix("::/0")},
	}}
}

func fpRun(t testing.TB, path string, c asset.Classes) map[netip.Addr]asset.Asset {
	t.Helper()
	out := map[netip.Addr]asset.Asset{}
	for _, a := range runFileWith(t, path, c).Assets {
		for _, ip := range a.IPs {
			out[ip] = a
		}
	}
	return out
}

// fpP0f is what p0f says of one address: its OS names and whether every
// one of them came from a fuzzy match.
type fpP0f struct {
	names map[string]bool
	fuzzy bool
}

func fpP0fVerdicts(t testing.TB, path string) map[netip.Addr]*fpP0f {
	t.Helper()
	if _, err := exec.LookPath("p0f"); err != nil {
		t.Skip("p0f not installed (apt-get install p0f): it is the oracle for OS verdicts from TCP")
	}
	log := filepath.Join(t.TempDir(), "p0f.log")
	if out, err := exec.Command("p0f", "-r", path, "-o", log).CombinedOutput(); err != nil {
		t.Fatalf("p0f -r %s: %v\n%s", path, err, out)
	}
	f, err := os.Open(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res := map[netip.Addr]*fpP0f{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		_, rest, _ := strings.Cut(sc.Text(), "] ")
		kv := map[string]string{}
		for _, f := range strings.Split(rest, "|") {
			k, v, _ := strings.Cut(f, "=")
			kv[k] = v
		}
		side := kv["cli"]
		switch kv["mod"] {
		case "syn":
		case "syn+ack":
			side = kv["srv"]
		default:
			continue
		}
		os := kv["os"]
		if os == "" || os == "???" { // no OS; "app" lines (nmap) name a tool
			continue
		}
		ip, err := netip.ParseAddr(side[:strings.LastIndexByte(side, '/')])
		if err != nil {
			t.Fatal(err)
		}
		v := res[ip]
		if v == nil {
			v = &fpP0f{names: map[string]bool{}, fuzzy: true}
			res[ip] = v
		}
		v.names[fpFamily(os)] = true
		v.fuzzy = v.fuzzy && strings.Contains(kv["params"], "fuzzy")
	}
	return res
}

// fpFamily reduces an OS name to what both tools can agree on.
func fpFamily(name string) string {
	l := strings.ToLower(name)
	switch {
	case strings.Contains(l, "windows"):
		return "windows"
	case strings.Contains(l, "linux"), strings.Contains(l, "android"):
		return "linux"
	case strings.Contains(l, "mac"), strings.Contains(l, "ios"):
		return "apple"
	case strings.Contains(l, "bsd"):
		return "bsd"
	}
	return l
}

// TestOSVerdictsAgreeWithP0f runs the sensor and p0f on corpus captures
// and compares, per address, the OS family of our verdict with p0f's.
// Where they differ the reason must be one of those the design intends:
//   - p0f matched only fuzzily a stack with the MSS as its only option
//     and no DF (controllers): we say "Embedded" (p0f says "Windows 7 or
//     8", "Windows XP" ... for S7 and Modbus PLCs);
//   - p0f matched only fuzzily and we keep such a lone guess out of the
//     OS field (confidence under 25);
//   - a signal the device states itself (DHCP, SNMP, LLDP, ...) outweighs
//     the TCP guess;
//   - the address is a NAT, with no single verdict;
//   - loopback addresses, which the inventory never keeps.
func TestOSVerdictsAgreeWithP0f(t *testing.T) {
	files := []string{
		"ICS-Pcaps__BOOTP__packet.pcap",
		"nDPI__tests__cfgs__default__pcap__1kxun.pcap",
		"zeek__testing__btest__Traces__ssh__ssh.pcap",
		"ICS-Pcaps__S7COMM__s2.pcap",
		"ICS-Security-Tools__pcaps__ModbusTCP__mb2.pcap",
		"ICS-Pcaps__DNP3__dnp3_test_data_part1.pcap",
		"Malcolm-PCAP__pcaps__protocols__KRB5.pcap",
		"Malcolm-PCAP__pcaps__protocols__DNS.pcap",
		"Malcolm-PCAP__pcaps__protocols__DNP3.pcap",
		"suricata-verify__tests__smb2-ntlmssp-negotiateflags__input.pcap",
		"ICS-Security-Tools__pcaps__C37.118__C37118__c37118_1100_unclean.pcap",
		"ICS-Pcaps__LocalPCAP__modbusAnalog.pcap",
		"ICS-Pcaps__LocalPCAP__plc.pcap",
	}
	var agree, total int
	reasons := map[string]int{}
	for _, name := range files {
		path := testcorpus.File(t, name)
		want := fpP0fVerdicts(t, path)
		got := fpRun(t, path, fpAll())
		for ip, w := range want {
			total++
			a, ok := got[ip]
			fam := ""
			if ok && a.OS != "" {
				fam = fpFamily(a.OSName)
			}
			if w.names[fam] {
				agree++
				continue
			}
			ev := a.Attrs[asset.AttrOSEvidence]
			var why string
			switch {
			case !ok && ip.IsLoopback():
				why = "loopback addresses are never inventoried"
			case a.NAT:
				why = "NAT"
			case w.fuzzy && a.OSName == "Embedded":
				why = "embedded stack p0f matched fuzzily"
			case w.fuzzy && a.OS == "":
				why = "lone fuzzy match kept out of the OS field"
			case a.OS != "" && !strings.HasPrefix(ev, "tcp.") && ev != "":
				why = "stated signal outweighs TCP"
			}
			if why == "" {
				t.Errorf("%s: %s: p0f %v (fuzzy %v), ours %q (%d%%); evidence %s", name, ip, w.names, w.fuzzy, a.OS, a.OSConfidence, ev)
				continue
			}
			reasons[why]++
			t.Logf("%s: %s: p0f %v (fuzzy %v), ours %q: %s", name, ip, keysOf(w.names), w.fuzzy, a.OS, why)
		}
	}
	t.Logf("%d of %d addresses agree with p0f; differences: %v", agree, total, reasons)
	if total < 40 {
		t.Fatalf("only %d addresses with a p0f verdict: the test checks too little", total)
	}
	if agree*100 < total*70 {
		t.Errorf("only %d of %d addresses agree with p0f", agree, total)
	}
}

func keysOf(m map[string]bool) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// TestOSFromDHCPCaptures: on corpus captures with DHCP clients, the
// sensor's verdict is the OS the DHCP evidence implies (tshark reads the
// vendor class, option 60, and the parameter list, option 55).
func TestOSFromDHCPCaptures(t *testing.T) {
	testcorpus.NeedTshark(t)
	cases := []struct {
		file, mac   string
		os, class   string
		vendorClass string
		requestList string
	}{
		// ISC dhclient's list: a Linux PC.
		{"ICS-Pcaps__DHCP__dhcp_client.pcap", "00:1d:e0:8c:cf:f3", "Linux", "", "", "1,28,2,3,15,6,119,12,44,47,26,121,42"},
		// Windows 10's client: "MSFT 5.0" and the list with 119 and 252.
		{"ICS-Pcaps__LocalPCAP__similator.pcap", "", "Windows 10/11", "", "MSFT 5.0", "1,3,6,15,31,33,43,44,46,47,119,121,249,252"},
		// Windows 7's list order.
		{"ICS-Pcaps__Mergecap__kokteyl.pcap", "00:1f:ee:00:00:01", "Windows Vista/7", "", "MSFT 5.0", "1,15,3,6,44,46,47,31,33,121,249,43"},
		// BusyBox udhcpc on an embedded device.
		{"ICS-Pcaps__COTP__cip_cotp_proces.pcap", "00:1d:aa:0e:e2:f0", "Linux embedded (BusyBox)", "", "udhcp 1.12.1", "1,3,6,12,15,28,42"},
		// Cisco IP phones name themselves in option 60.
		{"ICS-Pcaps__BOOTP__packet.pcap", "00:1b:d5:2d:1d:f6", "", "phone", "Cisco Systems, Inc. IP Phone CP-7941G-GE", "1,66,6,3,15,150,35"},
	}
	for _, c := range cases {
		path := testcorpus.File(t, c.file)
		filter := "dhcp.option.request_list_item"
		if c.mac != "" {
			filter += " && eth.src == " + c.mac
		}
		rows := testcorpus.Tshark(t, path, filter, "dhcp.option.vendor_class_id", "dhcp.option.request_list_item", "dhcp.hw.mac_addr")
		if len(rows) == 0 {
			t.Errorf("%s: tshark finds no DHCP request from %s", c.file, c.mac)
			continue
		}
		if rows[0][0] != c.vendorClass || rows[0][1] != c.requestList {
			t.Errorf("%s: tshark reads vendor class %q, list %q; the case expects %q, %q", c.file, rows[0][0], rows[0][1], c.vendorClass, c.requestList)
		}
		mac := c.mac
		if mac == "" {
			mac, _, _ = strings.Cut(rows[0][2], ",")
		}
		s := New(asset.DefaultClasses())
		src, err := capture.OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RunFile(src); err != nil {
			t.Fatal(err)
		}
		src.Close()
		var a asset.Asset
		for _, x := range s.Report().Assets {
			if x.MAC.String() == mac {
				a = x
			}
		}
		if a.ID == "" {
			t.Errorf("%s: no asset for %s", c.file, mac)
			continue
		}
		if a.OS != c.os || (c.class != "" && a.Class != c.class) {
			t.Errorf("%s: %s: OS %q class %q, want %q %q; evidence %s; class evidence %s", c.file, mac, a.OS, a.Class, c.os, c.class, a.Attrs[asset.AttrOSEvidence], a.Attrs[asset.AttrClassEvid])
		}
	}
}

// The demo plant, as the generator writes it today (the embedded demo is
// regenerated after merges): every device's OS and class as the plant
// depicts them.
func TestPlantFingerprints(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not in PATH: cannot run the plant generator")
	}
	plant := filepath.Join(t.TempDir(), "plant.pcap")
	if out, err := exec.Command(goTool, "run", "../plantgen", "-o", plant).CombinedOutput(); err != nil {
		t.Fatalf("plantgen: %v\n%s", err, out)
	}
	src, err := capture.OpenFile(plant)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	s := New(asset.DefaultClasses())
	if err := s.RunFile(src); err != nil {
		t.Fatal(err)
	}
	byIP := map[string]asset.Asset{}
	for _, a := range s.Report().Assets {
		for _, ip := range a.IPs {
			byIP[ip.String()] = a
		}
	}
	for ip, w := range map[string][2]string{
		"10.10.0.21":  {"Windows", "hmi"},
		"10.10.0.31":  {"Windows", "engineering"}, // PC Worx, Niagara Workbench, Crimson: the engineering station
		"10.10.0.11":  {"Embedded", "plc"},
		"10.10.0.12":  {"Embedded", "plc"},
		"10.10.0.1":   {"", "router"},
		"10.10.1.101": {"Windows", "workstation"},
	} {
		a := byIP[ip]
		// The OS name may be more precise than the family asked for
		// ("Windows 10" for "Windows") when the device states its version.
		if !strings.HasPrefix(a.OSName, w[0]) || (w[0] == "" && a.OSName != "") || a.Class != w[1] {
			t.Errorf("%s: OS %q class %q, want %q %q; evidence %q / %q", ip, a.OSName, a.Class, w[0], w[1], a.Attrs[asset.AttrOSEvidence], a.Attrs[asset.AttrClassEvid])
		}
	}
	if a := byIP["10.10.1.101"]; a.Vendor != "" {
		t.Errorf("office PC behind the router has vendor %q: that is the router's MAC's", a.Vendor)
	}
}
