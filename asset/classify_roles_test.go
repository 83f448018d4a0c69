package asset

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/dissect"
)

// roleValues scans the dissectors' source for the roles they emit: every
// Role* string constant, and string literals passed as dissect.AttrRole.
func roleValues(t *testing.T) map[string]string {
	t.Helper()
	constRe := regexp.MustCompile(`\bRole[A-Za-z0-9]+\s*=\s*"([^"]+)"`)
	litRe := regexp.MustCompile(`AttrRole,\s*(?:\[\]byte\()?"([^"]+)"`)
	roles := map[string]string{}
	for _, dir := range []string{"../it", "../ot"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no dissector source in %s: %v", dir, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, re := range []*regexp.Regexp{constRe, litRe} {
				for _, m := range re.FindAllSubmatch(b, -1) {
					roles[string(m[1])] = f
				}
			}
		}
	}
	return roles
}

// TestEveryRoleMapped fails when a dissector emits a role the classifier
// neither maps to a class nor lists as saying nothing of the device.
func TestEveryRoleMapped(t *testing.T) {
	roles := roleValues(t)
	if len(roles) < 40 {
		t.Fatalf("found only %d roles in the dissectors' source: the scan is broken", len(roles))
	}
	for r, f := range roles {
		_, mapped := roleClasses[r]
		if !mapped && !classlessRoles[r] {
			t.Errorf("role %q (%s) has no class mapping in roleClasses nor an entry in classlessRoles", r, f)
		}
		if mapped && classlessRoles[r] {
			t.Errorf("role %q is both mapped and classless", r)
		}
	}
	for r := range roleClasses {
		if _, ok := roles[r]; !ok {
			t.Errorf("roleClasses maps %q, which no dissector emits", r)
		}
	}
}

// TestRoleClasses: what a lone role makes of a device, and that a stated
// class or engineering services change the verdict as they should.
func TestRoleClasses(t *testing.T) {
	for _, tc := range []struct {
		roles    string
		model    string
		class    string // stated by the protocol
		services map[string]string
		want     string
	}{
		{roles: "modbus-server", want: dissect.ClassPLC},
		{roles: "s7-server", want: dissect.ClassPLC},
		{roles: "enip-server", want: dissect.ClassPLC},
		{roles: "enip-server", class: dissect.ClassDrive, want: dissect.ClassDrive},
		{roles: "enip-server", class: dissect.ClassIO, want: dissect.ClassIO},
		{roles: "fins-server", want: dissect.ClassPLC},
		{roles: "ads-server", want: dissect.ClassPLC},
		{roles: "slmp-server", want: dissect.ClassPLC},
		{roles: "melsoft-server", want: dissect.ClassPLC},
		{roles: "srtp-server", want: dissect.ClassPLC},
		{roles: "pcworx-server", want: dissect.ClassPLC},
		{roles: "proconos-server", want: dissect.ClassPLC},
		{roles: "deltav-controller", want: dissect.ClassPLC},
		{roles: "deltav-workstation", want: dissect.ClassHMI},
		{roles: "profinet-io-controller", want: dissect.ClassPLC},
		{roles: "profinet-io-device", want: dissect.ClassIO},
		{roles: "profinet-io-controller,profinet-io-device", want: dissect.ClassPLC},
		{roles: "dnp3-outstation", want: dissect.ClassRTU},
		{roles: "iec104-controlled", want: dissect.ClassRTU},
		{roles: "mms-server", want: dissect.ClassRelay},
		{roles: "mms-server", model: "REF615", want: dissect.ClassRelay},
		{roles: "mms-server", model: "SEL-3505 RTAC", want: dissect.ClassRTU},
		{roles: "dnp3-outstation", model: "SIPROTEC 7SJ82", want: dissect.ClassRelay},
		{roles: "modbus-client", model: "RTU-like panel", want: dissect.ClassHMI},
		{roles: "bacnet-device", want: dissect.ClassBMS},
		{roles: "bacnet-device,bacnet-server", want: dissect.ClassBMS},
		{roles: "modbus-client", want: dissect.ClassHMI},
		{roles: "dnp3-master", want: dissect.ClassHMI},
		{roles: "iec104-controlling", want: dissect.ClassHMI},
		{roles: "s7-client", services: map[string]string{"service:s7comm": "download@10.0.0.1"}, want: dissect.ClassEngineering},
		{roles: "modbus-client", services: map[string]string{"service:modbus": "umas@10.0.0.1"}, want: dissect.ClassEngineering},
		{roles: "melsoft-client", want: dissect.ClassEngineering},
		{roles: "niagara-workbench", want: dissect.ClassEngineering},
		{roles: "opcua-server", want: dissect.ClassHistorian},
		{roles: "mqtt-broker", want: dissect.ClassServer},
		// An engineering tool's protocol makes the polling engineering too.
		{roles: "modbus-client,s7-client,enip-client,ads-client,fox-client,bacnet-client,niagara-workbench,pcworx-client", want: dissect.ClassEngineering},
		{roles: "modbus-client,s7-client,opcua-client", want: dissect.ClassHMI},
		{roles: "ssh-server", want: ""},
	} {
		a := &Asset{Model: tc.model, Attrs: map[string]string{dissect.AttrRole: tc.roles}}
		for k, v := range tc.services {
			a.Attrs[k] = v
		}
		var votes []classVote
		if tc.class != "" {
			votes = append(votes, classVote{tc.class, 95, "stated by the device"})
		}
		votes = append(votes, classVotes(a, osVerdict{}, false, "")...)
		got, ev := decideClass(votes)
		if got != tc.want {
			t.Errorf("roles %q stated %q services %v: class %q, want %q (evidence %v)", tc.roles, tc.class, tc.services, got, tc.want, ev)
		}
		if got != "" && !slices.ContainsFunc(ev, func(e string) bool { return strings.Contains(e, "role ") || strings.Contains(e, "stated") }) {
			t.Errorf("roles %q: evidence %v names no role", tc.roles, ev)
		}
	}
}
