package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passivesensor/sensor/settings"
)

// TestNetcfgdStatic runs the built command in a network namespace with
// static settings and checks the interface and resolv.conf it leaves.
func TestNetcfgdStatic(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace (ip netns add)")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "netcfgd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ns := fmt.Sprintf("ncd-%d", os.Getpid())
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	run("ip", "netns", "add", ns)
	defer exec.Command("ip", "netns", "del", ns).Run()
	run("ip", "-n", ns, "link", "add", "mg0", "type", "veth", "peer", "name", "mg1")
	dir := filepath.Join(tmp, "state")
	if err := settings.Save(settings.PathIn(dir), settings.Settings{Version: settings.CurrentVersion,
		Mode: settings.ModeStatic, Address: "10.55.0.9/24", Gateway: "10.55.0.1", DNS: []string{"10.55.0.53"}}); err != nil {
		t.Fatal(err)
	}
	resolv := filepath.Join(tmp, "resolv.conf")
	cmd := exec.Command("ip", "netns", "exec", ns, bin, "-settings", dir, "-iface", "mg0", "-resolv", resolv)
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var a string
	for i := 0; i < 50; i++ {
		a = run("ip", "-n", ns, "-4", "-o", "addr", "show", "dev", "mg0")
		if strings.Contains(a, "10.55.0.9/24") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(a, "10.55.0.9/24") {
		t.Fatalf("address not applied:\n%s\nlog:\n%s", a, log.String())
	}
	if r := run("ip", "-n", ns, "-4", "route", "show", "default"); !strings.Contains(r, "default via 10.55.0.1 dev mg0") {
		t.Fatalf("route: %s", r)
	}
	if b, _ := os.ReadFile(resolv); !strings.Contains(string(b), "nameserver 10.55.0.53") {
		t.Fatalf("resolv.conf: %q", b)
	}
	if !strings.Contains(log.String(), "netcfgd: applied") {
		t.Fatalf("log:\n%s", log.String())
	}
}
