package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/asset"
)

// TestPlantApplicationIdentities generates the plant capture with
// cmd/plantgen as it is today, runs the sensor on it, and checks the
// identities the IT application protocols state come out in the inventory:
// the switch's SNMP system group and HTTPS certificate, the historian's
// SSH banner, the phone's SIP User-Agent and the engineering station's
// Kerberos machine account.
func TestPlantApplicationIdentities(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs cmd/plantgen")
	}
	path := filepath.Join(t.TempDir(), "plant.pcap")
	if out, err := exec.Command("go", "run", "../plantgen", "-o", path).CombinedOutput(); err != nil {
		t.Fatalf("go run ../plantgen: %v\n%s", err, out)
	}
	r := runFile(t, path)
	byIP := map[string]asset.Asset{}
	for _, a := range r.Assets {
		for _, ip := range a.IPs {
			byIP[ip.String()] = a
		}
	}
	check := func(ip, what, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s %s = %q, want %q", ip, what, got, want)
		}
	}
	sw := byIP["10.10.0.60"]
	check("10.10.0.60", "hostname", sw.Hostname, "sw-cell2")
	check("10.10.0.60", "vendor", sw.Vendor, "Richard Hirschmann GmbH & Co.")
	check("10.10.0.60", "snmp.sys_object_id", sw.Attrs["snmp.sys_object_id"], "1.3.6.1.4.1.248.14.10.66")
	check("10.10.0.60", "snmp.sys_descr", sw.Attrs["snmp.sys_descr"], "Hirschmann Railswitch RS20-0800T1T1SDAUHC 09.0.08")
	check("10.10.0.60", "tls.cert_subject", sw.Attrs["tls.cert_subject"], "sw-cell2.plant.example")
	check("10.10.0.60", "tls.cert_sans", sw.Attrs["tls.cert_sans"], "sw-cell2.plant.example,sw-cell2,10.10.0.60")
	hist := byIP["10.10.0.61"]
	check("10.10.0.61", "ssh.banner", hist.Attrs["ssh.banner"], "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3")
	check("10.10.0.61", "os", hist.OS, "Debian")
	phone := byIP["10.10.0.62"]
	check("10.10.0.62", "sip.user_agent", phone.Attrs["sip.user_agent"], "Yealink SIP-T46S 66.86.0.15")
	check("10.10.0.63", "sip.server", byIP["10.10.0.63"].Attrs["sip.server"], "Asterisk PBX 18.10.0")
	eng := byIP["10.10.0.31"]
	check("10.10.0.31", "kerberos.cname", eng.Attrs["kerberos.cname"], "ENG-STATION$")
	// The station's DHCP lease named the domain first; the realm agrees.
	check("10.10.0.31", "domain", strings.ToUpper(eng.Domain), "PLANT.EXAMPLE")
	if eng.Attrs["tls.ja3"] == "" || eng.Attrs["tls.ja4"] == "" || eng.Attrs["ssh.banner"] != "SSH-2.0-OpenSSH_for_Windows_8.1" {
		t.Errorf("engineering station: tls.ja4 %q ssh.banner %q", eng.Attrs["tls.ja4"], eng.Attrs["ssh.banner"])
	}
	if !strings.Contains(byIP["10.10.0.64"].Attrs["role"], "kerberos-kdc") {
		t.Errorf("domain controller roles %q, want kerberos-kdc", byIP["10.10.0.64"].Attrs["role"])
	}
}
