package netcfg

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passivesensor/sensor/settings"
)

// The namespace tests build two network namespaces joined by a veth pair:
// the sensor side ("mg0", the management interface) and the site side
// ("up0", 10.77.1.1/24, where dnsmasq runs as DHCP and DNS server). The
// code under test runs in the sensor namespace: the test binary re-executes
// itself there through `ip netns exec` (TestMain runs the child's job).

const childEnv = "NETCFG_TEST_CHILD"

func TestMain(m *testing.M) {
	if job := os.Getenv(childEnv); job != "" {
		os.Exit(runChild(job))
	}
	os.Exit(m.Run())
}

// childJob is what the child is told to do, as JSON in childEnv.
type childJob struct {
	Settings settings.Settings
	// Client: run a Client on this settings file for this long instead.
	ClientSettings string
	ClientFor      time.Duration
	Iface          string // "mg0" if empty
	ResolvConf     string
	Reach          string // if set, a proxy address whose reachability is printed
}

func runChild(js string) int {
	var j childJob
	if err := json.Unmarshal([]byte(js), &j); err != nil {
		fmt.Println("child: bad job:", err)
		return 2
	}
	cfg := Config{Iface: "mg0", ResolvConf: j.ResolvConf}
	if j.Iface != "" {
		cfg.Iface = j.Iface
	}
	if j.ClientSettings != "" {
		ctx, cancel := context.WithTimeout(context.Background(), j.ClientFor)
		defer cancel()
		c := &Client{Config: cfg, SettingsPath: j.ClientSettings, Poll: 200 * time.Millisecond, RetryEvery: time.Second,
			OnApplied: func(s settings.Settings, err error) { fmt.Printf("applied %s: %v\n", s.Mode, err) }}
		c.Run(ctx)
		return 0
	}
	if err := Apply(context.Background(), cfg, j.Settings); err != nil {
		fmt.Println("apply:", err)
		return 1
	}
	if j.Reach != "" {
		s := j.Settings
		s.Proxy.Address = j.Reach
		if err := Reachable(context.Background(), s, 2*time.Second); err != nil {
			fmt.Println("unreachable:", err)
		} else {
			fmt.Println("reachable")
		}
	}
	return 0
}

type site struct {
	t          *testing.T
	sensor, up string // namespace names
	dir        string
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespace tests need root (ip netns add); run as root to test netcfg")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("network namespace tests need ip (iproute2); make deps installs it")
	}
}

func sh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func newSite(t *testing.T) *site {
	needRoot(t)
	id := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano()%100000)
	s := &site{t: t, sensor: "ncs-" + id, up: "ncu-" + id, dir: t.TempDir()}
	sh(t, "ip", "netns", "add", s.sensor)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", s.sensor).Run() })
	sh(t, "ip", "netns", "add", s.up)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", s.up).Run() })
	sh(t, "ip", "link", "add", "mg0", "netns", s.sensor, "type", "veth", "peer", "name", "up0", "netns", s.up)
	sh(t, "ip", "-n", s.up, "addr", "add", "10.77.1.1/24", "dev", "up0")
	sh(t, "ip", "-n", s.up, "link", "set", "up0", "up")
	sh(t, "ip", "-n", s.up, "link", "set", "lo", "up")
	sh(t, "ip", "-n", s.sensor, "link", "set", "lo", "up")
	return s
}

// dnsmasq starts Debian's dnsmasq in the site namespace as DHCP server
// (10.77.1.100-150, router 10.77.1.1, DNS 10.77.1.53) and DNS server on TCP/UDP 53.
func (s *site) dnsmasq() string {
	if _, err := exec.LookPath("dnsmasq"); err != nil {
		s.t.Fatal("dnsmasq not installed; make deps installs it")
	}
	leases := filepath.Join(s.dir, "dnsmasq.leases")
	cmd := exec.Command("ip", "netns", "exec", s.up, "dnsmasq", "--no-daemon", "--conf-file=/dev/null",
		"--interface=up0", "--bind-interfaces", "--except-interface=lo",
		"--dhcp-range=10.77.1.100,10.77.1.150,255.255.255.0,1h",
		"--dhcp-option=option:router,10.77.1.1", "--dhcp-option=option:dns-server,10.77.1.53",
		"--dhcp-leasefile="+leases, "--pid-file="+filepath.Join(s.dir, "dnsmasq.pid"), "--log-dhcp")
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if s.t.Failed() {
			s.t.Logf("dnsmasq log:\n%s", log.String())
		}
	})
	// Wait until dnsmasq listens on TCP 53.
	for i := 0; i < 50; i++ {
		out, _ := exec.Command("ip", "netns", "exec", s.up, "ss", "-ltn").CombinedOutput()
		if strings.Contains(string(out), "10.77.1.1:53") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return leases
}

// run runs job in the sensor namespace and returns its output.
func (s *site) run(job childJob) (string, error) {
	js, _ := json.Marshal(job)
	cmd := exec.Command("ip", "netns", "exec", s.sensor, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(js))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func static(addr, gw string, dns ...string) settings.Settings {
	return settings.Settings{Version: settings.CurrentVersion, Mode: settings.ModeStatic, Address: addr, Gateway: gw, DNS: dns}
}

func TestStaticInNamespace(t *testing.T) {
	s := newSite(t)
	s.dnsmasq()
	resolv := filepath.Join(s.dir, "resolv.conf")
	// A stale address and route from before, as a previous DHCP lease leaves them.
	sh(t, "ip", "-n", s.sensor, "addr", "add", "10.9.9.9/24", "dev", "mg0")

	out, err := s.run(childJob{Settings: static("10.77.1.20/24", "10.77.1.1", "10.77.1.53", "10.77.1.54"),
		ResolvConf: resolv, Reach: "10.77.1.1:53"})
	if err != nil || !strings.Contains(out, "reachable") || strings.Contains(out, "unreachable") {
		t.Fatalf("static apply: %v\n%s", err, out)
	}
	addrs := sh(t, "ip", "-n", s.sensor, "-4", "-o", "addr", "show", "dev", "mg0")
	if !strings.Contains(addrs, "inet 10.77.1.20/24 brd 10.77.1.255") || strings.Contains(addrs, "10.9.9.9") {
		t.Fatalf("addresses:\n%s", addrs)
	}
	routes := sh(t, "ip", "-n", s.sensor, "-4", "route", "show", "default")
	if !strings.Contains(routes, "default via 10.77.1.1 dev mg0") {
		t.Fatalf("routes:\n%s", routes)
	}
	rc, _ := os.ReadFile(resolv)
	if !strings.Contains(string(rc), "nameserver 10.77.1.53\nnameserver 10.77.1.54\n") {
		t.Fatalf("resolv.conf:\n%s", rc)
	}
	// The site sees the sensor at its new address (its ARP entry from the TCP check).
	if neigh := sh(t, "ip", "-n", s.up, "neigh", "show", "10.77.1.20"); !strings.Contains(neigh, "lladdr") {
		t.Fatalf("site has no neighbour entry for 10.77.1.20: %q", neigh)
	}

	// A wrong static change (another subnet, router that is not there): the
	// old address goes, and the cloud (here the proxy) is reported unreachable.
	out, err = s.run(childJob{Settings: static("10.88.1.20/24", "10.88.1.1"), ResolvConf: resolv, Reach: "10.77.1.1:53"})
	if err != nil || !strings.Contains(out, "unreachable:") {
		t.Fatalf("unreachable change not reported: %v\n%s", err, out)
	}
	addrs = sh(t, "ip", "-n", s.sensor, "-4", "-o", "addr", "show", "dev", "mg0")
	if strings.Contains(addrs, "10.77.1.20") || !strings.Contains(addrs, "10.88.1.20/24") {
		t.Fatalf("addresses after change:\n%s", addrs)
	}
	routes = sh(t, "ip", "-n", s.sensor, "-4", "route", "show", "default")
	if strings.Contains(routes, "10.77.1.1") || !strings.Contains(routes, "default via 10.88.1.1") {
		t.Fatalf("routes after change:\n%s", routes)
	}
	// And the previous settings restore reachability.
	out, err = s.run(childJob{Settings: static("10.77.1.20/24", "10.77.1.1", "10.77.1.53"), ResolvConf: resolv, Reach: "10.77.1.1:53"})
	if err != nil || strings.Contains(out, "unreachable") {
		t.Fatalf("restore: %v\n%s", err, out)
	}
}

func TestDHCPInNamespace(t *testing.T) {
	s := newSite(t)
	leases := s.dnsmasq()
	resolv := filepath.Join(s.dir, "resolv.conf")
	// Static first, then back to DHCP: the static address must go.
	if out, err := s.run(childJob{Settings: static("10.77.1.20/24", "10.77.1.1"), ResolvConf: resolv}); err != nil {
		t.Fatalf("static: %v\n%s", err, out)
	}
	out, err := s.run(childJob{Settings: settings.Defaults(), ResolvConf: resolv, Reach: "10.77.1.1:53"})
	if err != nil || !strings.Contains(out, "reachable") || strings.Contains(out, "unreachable") {
		t.Fatalf("dhcp apply: %v\n%s", err, out)
	}
	addrs := sh(t, "ip", "-n", s.sensor, "-4", "-o", "addr", "show", "dev", "mg0")
	if !strings.Contains(addrs, "inet 10.77.1.1") || strings.Contains(addrs, "10.77.1.20/") || !strings.Contains(addrs, "valid_lft") {
		t.Fatalf("addresses:\n%s", addrs)
	}
	f := strings.Fields(addrs)
	var got string
	for i, w := range f {
		if w == "inet" && i+1 < len(f) {
			got = f[i+1]
		}
	}
	var a, b, c, d, n int
	if _, err := fmt.Sscanf(got, "%d.%d.%d.%d/%d", &a, &b, &c, &d, &n); err != nil || a != 10 || b != 77 || c != 1 || d < 100 || d > 150 || n != 24 {
		t.Fatalf("leased address %q outside dnsmasq's range", got)
	}
	if strings.Contains(addrs, "forever") {
		t.Fatalf("DHCP address without the lease's lifetime:\n%s", addrs)
	}
	routes := sh(t, "ip", "-n", s.sensor, "-4", "route", "show", "default")
	if !strings.Contains(routes, "default via 10.77.1.1 dev mg0") {
		t.Fatalf("routes:\n%s", routes)
	}
	rc, _ := os.ReadFile(resolv)
	if !strings.Contains(string(rc), "nameserver 10.77.1.53\n") || !strings.Contains(string(rc), "DHCP server 10.77.1.1") {
		t.Fatalf("resolv.conf:\n%s", rc)
	}
	// dnsmasq recorded the lease for the sensor's MAC.
	mac := strings.TrimSpace(sh(t, "ip", "netns", "exec", s.sensor, "cat", "/sys/class/net/mg0/address"))
	lf, _ := os.ReadFile(leases)
	if !strings.Contains(string(lf), mac+" "+strings.Split(got, "/")[0]) {
		t.Fatalf("dnsmasq lease file has no %s for %s:\n%s", got, mac, lf)
	}
}

// TestResolvConfPowerCut stops the resolv.conf write at each step as a
// power cut would: the file is the old one or the new one, never a mix.
func TestResolvConfPowerCut(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "tmp-resolv.conf")
	link := filepath.Join(dir, "resolv.conf")
	old := "nameserver 192.0.2.1\n"
	os.WriteFile(target, []byte(old), 0o644)
	os.Symlink("tmp-resolv.conf", link)
	for _, step := range []string{"written", "synced"} {
		err := writeAtomic(target, []byte("nameserver 192.0.2.2\n"), func(s string) error {
			if s == step {
				return fmt.Errorf("cut")
			}
			return nil
		})
		if err == nil {
			t.Fatalf("%s: write not stopped", step)
		}
		if b, _ := os.ReadFile(link); string(b) != old {
			t.Fatalf("%s: file now %q", step, b)
		}
	}
	if err := WriteResolvConf(link, []string{"192.0.2.9", "2001:db8::53"}, "test"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(link)
	if !strings.HasSuffix(string(b), "nameserver 192.0.2.9\nnameserver 2001:db8::53\n") {
		t.Fatalf("resolv.conf %q", b)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatal("the symlink was replaced instead of its target")
	}
	if err := WriteResolvConf(link, []string{"not-an-ip"}, "test"); err == nil {
		t.Fatal("bad server accepted")
	}
}

// TestClientFollowsSettings runs the long-lived Client in the sensor
// namespace: it takes a DHCP lease from dnsmasq, then follows the settings
// file to a static address and back to DHCP, without a restart.
func TestClientFollowsSettings(t *testing.T) {
	s := newSite(t)
	s.dnsmasq()
	resolv := filepath.Join(s.dir, "resolv.conf")
	path := settings.PathIn(filepath.Join(s.dir, "state"))
	if err := settings.Save(path, settings.Defaults()); err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(childJob{ClientSettings: path, ClientFor: 20 * time.Second, ResolvConf: resolv})
	cmd := exec.Command("ip", "netns", "exec", s.sensor, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(js))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("client output:\n%s", out.String())
		}
	}()
	waitAddr := func(want string) string {
		t.Helper()
		var a string
		for i := 0; i < 100; i++ {
			a = sh(t, "ip", "-n", s.sensor, "-4", "-o", "addr", "show", "dev", "mg0")
			if strings.Contains(a, want) {
				return a
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("mg0 never got %s:\n%s", want, a)
		return ""
	}
	waitAddr("inet 10.77.1.1") // a lease from 10.77.1.100-150
	if _, err := settings.Update(path, func(x *settings.Settings) error {
		*x = static("10.77.1.30/24", "10.77.1.1", "10.77.1.1")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	a := waitAddr("inet 10.77.1.30/24")
	if strings.Count(a, "inet ") != 1 {
		t.Fatalf("the lease stayed beside the static address:\n%s", a)
	}
	if _, err := settings.Update(path, func(x *settings.Settings) error {
		x.Mode = settings.ModeDHCP
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		a = sh(t, "ip", "-n", s.sensor, "-4", "-o", "addr", "show", "dev", "mg0")
		if !strings.Contains(a, "10.77.1.30/") && strings.Contains(a, "inet 10.77.1.1") {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("back in DHCP mode the interface holds:\n%s", a)
}

// TestClientWaitsForLateInterface: static settings for an interface that
// appears only later (a USB adapter still enumerating) are applied when it
// does.
func TestClientWaitsForLateInterface(t *testing.T) {
	s := newSite(t)
	path := settings.PathIn(filepath.Join(s.dir, "state"))
	if err := settings.Save(path, static("10.66.0.7/24", "10.66.0.1")); err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(childJob{ClientSettings: path, ClientFor: 15 * time.Second, Iface: "late0",
		ResolvConf: filepath.Join(s.dir, "resolv.conf")})
	cmd := exec.Command("ip", "netns", "exec", s.sensor, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(js))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("client output:\n%s", out.String())
		}
	}()
	time.Sleep(700 * time.Millisecond)
	sh(t, "ip", "-n", s.sensor, "link", "add", "late0", "type", "veth", "peer", "name", "late1")
	var a string
	for i := 0; i < 100; i++ {
		a = sh(t, "ip", "-n", s.sensor, "-4", "-o", "addr", "show", "dev", "late0")
		if strings.Contains(a, "inet 10.66.0.7/24") {
			if !strings.Contains(out.String(), "applied static: netcfg: interface late0") {
				t.Errorf("the first failed attempt was not reported:\n%s", out.String())
			}
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("late interface never configured:\n%s", a)
}
