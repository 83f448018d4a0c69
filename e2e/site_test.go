//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/passivesensor/sensor/internal/testcorpus"
	"github.com/passivesensor/sensor/settings"
)

// collector is a real cmd/collector process on the host. The guest reaches
// it through qemu's user network: at 10.0.2.2 (the host as the guest sees
// it, on the guest's own subnet), or, when the host has an address of its
// own outside that subnet, at that address, which only a default route
// through the gateway 10.0.2.2 leads to.
type collector struct {
	url      string // as the host reaches it
	guestURL string // as the guest reaches it
	// offLink is set when guestURL is outside the guest's subnet.
	offLink bool
	// listenHost is the host address the collector listens on.
	listenHost string
	ca         []byte // its CA certificate (PEM)
	data       string
	client     *http.Client
}

// hostAddress is an IPv4 address of the host outside qemu's user network
// (10.0.2.0/24), or "" if it has none but loopback.
func hostAddress() string {
	slirp := netip.MustParsePrefix("10.0.2.0/24")
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if ip = ip.Unmap(); ok && ip.Is4() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() && !slirp.Contains(ip) {
			return ip.String()
		}
	}
	return ""
}

// startCollector builds and starts cmd/collector on a free port of the
// host's own address (off the guest's subnet) when it has one, else on
// loopback.
func startCollector(t *testing.T) *collector {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "collector")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/collector").CombinedOutput(); err != nil {
		t.Fatalf("building collector: %v\n%s", err, out)
	}
	c := &collector{data: filepath.Join(dir, "data")}
	host := hostAddress()
	c.offLink = host != ""
	if !c.offLink {
		host = "127.0.0.1"
		t.Log("the host has no address outside 10.0.2.0/24: the collector is on the guest's subnet, so its default route is not put to the test")
	}
	ln, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatalf("finding a free port on %s: %v", host, err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c.listenHost = host
	cmd := exec.Command(bin, "-listen", addr, "-data", c.data, "-hosts", "10.0.2.2,"+strings.TrimSuffix(siteCloudName, "."))
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting collector: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if u, ok := strings.CutPrefix(line, "collector: listening on "); ok {
			c.url = u
		}
		if p, ok := strings.CutPrefix(line, "collector: CA certificate "); ok {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			c.ca = b
			break
		}
	}
	go io.Copy(io.Discard, stdout)
	if c.url == "" || c.ca == nil {
		t.Fatal("collector did not print its URL and CA")
	}
	c.guestURL = strings.Replace(c.url, "127.0.0.1", "10.0.2.2", 1)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.ca)
	c.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return c
}

// code issues a personalization code.
func (c *collector) code(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "run", "../cmd/collector", "-data", c.data, "code", "new").Output()
	if err != nil {
		t.Fatalf("collector code new: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// api GETs one of the collector's JSON API paths and decodes it into v.
func (c *collector) api(path string, v any) error {
	resp, err := c.client.Get(c.url + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", path, resp.Status, b)
	}
	return json.Unmarshal(b, v)
}

// plinkConsole is PuTTY's plink on the guest's UART pty, in a tmux pane
// that the test types into and reads, as a technician's terminal.
type plinkConsole struct {
	t    *testing.T
	tmux []string
}

func openPlink(t *testing.T, pty string) *plinkConsole {
	for _, tool := range []string{"plink", "tmux"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	p := &plinkConsole{t: t, tmux: []string{"tmux", "-L", fmt.Sprintf("e2e%d", os.Getpid()), "-f", "/dev/null"}}
	t.Cleanup(func() { exec.Command(p.tmux[0], append(p.tmux[1:], "kill-server")...).Run() })
	// plink reads keys through a pipe from the raw pane, so that it gives
	// the serial line no local echo or line editing of its own.
	cmd := fmt.Sprintf("stty raw -echo; cat </dev/tty | plink -serial %s -sercfg 115200,8,n,1,N", pty)
	p.tm("new-session", "-d", "-s", "putty", "-x", "80", "-y", "24", cmd)
	return p
}

func (p *plinkConsole) tm(args ...string) string {
	p.t.Helper()
	out, err := exec.Command(p.tmux[0], append(p.tmux[1:], args...)...).CombinedOutput()
	if err != nil {
		p.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func (p *plinkConsole) keys(keys ...string) {
	p.t.Helper()
	for _, k := range keys {
		p.tm("send-keys", "-t", "putty", k)
		time.Sleep(150 * time.Millisecond)
	}
}

func (p *plinkConsole) text(s string) {
	p.t.Helper()
	for _, c := range s {
		p.tm("send-keys", "-t", "putty", "-l", string(c))
		time.Sleep(60 * time.Millisecond)
	}
}

func (p *plinkConsole) screen() string { return p.tm("capture-pane", "-p", "-t", "putty") }

func (p *plinkConsole) want(d time.Duration, subs ...string) string {
	p.t.Helper()
	var s string
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		s = p.screen()
		ok := true
		for _, sub := range subs {
			ok = ok && strings.Contains(s, sub)
		}
		if ok {
			return s
		}
	}
	p.t.Fatalf("console screen lacks %q:\n%s", subs, s)
	return s
}

func (p *plinkConsole) moveTo(label string) {
	p.t.Helper()
	for range 15 {
		for _, l := range strings.Split(p.screen(), "\n") {
			if strings.HasPrefix(l, "> ") && strings.Contains(l, " "+label) {
				return
			}
		}
		p.keys("Down")
	}
	p.t.Fatalf("cursor never reached %q:\n%s", label, p.screen())
}

// The site's addresses on qemu's user network (10.0.2.0/24; 10.0.2.2 is the
// gateway and the host, 10.0.2.3 the DNS server): qemu's DHCP server hands
// out addresses from dhcpStart on, and the technician types staticIP, which
// DHCP never gives.
const (
	dhcpStart = "10.0.2.100"
	staticIP  = "10.0.2.42"
)

// TestSite drives the image as a site would: boot, the set-up console over
// the UART in PuTTY (static address, personalization code), registration at
// a real collector on the host, a capture replayed into the sniffing port
// reaching the collector, and the state surviving a reboot.
//
// That the box took the static address is seen from outside: qemu forwards
// a host port to the typed address, which answers only once the box holds
// it, while the DHCP address stops answering. With the collector on a host
// address outside the guest's subnet, the console's "cloud reachable" after
// Save & apply and the registration show the static default route at work.
// The box knows the cloud by a name only the site's name server (the
// test's, on the host's port 53) resolves, and that server is the DNS
// server typed: registration shows the typed DNS setting at work.
//
// The collector's URL and CA are factory provisioning, not site set-up (the
// console has no field for them): they are written into /perm/sensor of the
// disk before the first boot, as the factory would.
func TestSite(t *testing.T) {
	img := requireTools(t)
	lap := stepTimer(t)
	col := startCollector(t)
	// The site's name server knows the cloud by name; the box is
	// provisioned with that name, so it reaches the cloud only through the
	// DNS server typed at the console. Where port 53 cannot be had, the
	// cloud stays an address and the slirp DNS server is typed.
	guest, err := url.Parse(col.guestURL)
	if err != nil {
		t.Fatal(err)
	}
	typedDNS := "10.0.2.3"
	dns := startSiteDNS(t, col.listenHost, guest.Hostname(), netip.MustParseAddr(guest.Hostname()))
	if dns != nil {
		typedDNS = dns.guestAddr
		col.guestURL = "https://" + net.JoinHostPort(strings.TrimSuffix(siteCloudName, "."), guest.Port())
	}
	disk := provision(t, img, col, "")
	code := col.code(t)
	lap("collector, disk copy, factory provisioning")

	sniffAddr, sniff := sniffSocket(t)
	pw, err := httpPassword(img)
	if err != nil {
		t.Fatal(err)
	}
	staticHTTP := staticIP + ":80"
	v := bootWith(t, disk, bootOpts{persistent: true, uartPTY: true, sniff: sniff,
		dhcpStart: dhcpStart, forward: []string{staticHTTP}})
	ctx, cancel := context.WithTimeout(context.Background(), 2**bootTimeout)
	defer cancel()
	if _, err := v.waitSerial(ctx, regexpMust(`entered promiscuous mode`)); err != nil {
		t.Fatal(err)
	}
	lap("boot to a running sensor")

	// Before set-up the box has the DHCP address, not the static one.
	dhcpHTTP := v.httpAddr
	if err := waitGokrazy(ctx, pw, dhcpHTTP, true, time.Minute); err != nil {
		t.Fatalf("the box never answered at its DHCP address %s: %v", dhcpStart, err)
	}
	if err := gokrazyAt(ctx, pw, v.forwarded[staticHTTP]); err == nil {
		t.Fatalf("the box answers at %s before anyone typed it", staticIP)
	}
	// The generic EFI box has no front panel: lcdmenu says so and gokrazy
	// leaves it stopped (exit status 125).
	if st := lcdmenuStatus(ctx, t, v, pw); !st.Stopped {
		t.Errorf("lcdmenu runs on a board without an LCD: %+v", st)
	}
	lap("DHCP address answers, the static one not yet")

	con := openPlink(t, v.uartPTY)
	time.Sleep(2 * time.Second)
	con.keys("C-l")
	con.want(90*time.Second, "Sensor set-up", "Network >")
	con.moveTo("Network >")
	con.keys("Enter")
	con.want(10*time.Second, "Setup > Network", "Mode")
	con.keys("Enter")
	con.want(10*time.Second, "Mode: dhcp")
	con.keys("BSpace", "BSpace", "BSpace", "BSpace")
	con.text("static")
	con.keys("Enter")
	con.want(10*time.Second, "Mode set to static")
	for _, f := range []struct{ label, value string }{{"IP", staticIP}, {"Gateway", "10.0.2.2"}, {"DNS 1", typedDNS}} {
		con.moveTo(f.label)
		con.keys("Enter", "C-u")
		con.text(f.value)
		con.keys("Enter")
		con.want(10*time.Second, f.label+" set to "+f.value)
	}
	con.moveTo("[Save & apply]")
	con.keys("Enter")
	con.want(10*time.Second, "Apply network? (y/n)")
	con.keys("y")
	// The box dials the cloud after applying: through the gateway when
	// the collector is off the guest's subnet.
	con.want(60*time.Second, "Save & apply: saved and applied, cloud reachable")
	if err := waitGokrazy(ctx, pw, v.forwarded[staticHTTP], true, 30*time.Second); err != nil {
		t.Fatalf("after Save & apply the box does not answer at %s: %v", staticIP, err)
	}
	if err := waitGokrazy(ctx, pw, dhcpHTTP, false, 30*time.Second); err != nil {
		t.Fatalf("after Save & apply the box still answers at its DHCP address %s", dhcpStart)
	}
	v.httpAddr = v.forwarded[staticHTTP] // gokrazy's HTTP is at the static address from now on
	lap("console: static address in plink, held by the box")

	con.keys("Escape")
	con.want(10*time.Second, "Sensor set-up")
	con.moveTo("Registration >")
	con.keys("Enter", "Enter")
	con.text(code)
	con.keys("Enter")
	con.want(10*time.Second, "Code set to "+strings.ToUpper(code))
	lap("console: personalization code in plink")

	sensors := col.waitRegistered(ctx, t, func() string { return con.screen() })
	if dns != nil {
		select {
		case name := <-dns.queries:
			t.Logf("the box asked the site's name server (%s, as typed) for %s", dns.guestAddr, name)
		default:
			t.Fatalf("the box registered at %s without asking the site's name server %s", col.guestURL, dns.guestAddr)
		}
	}
	lap("registration at the collector")

	replayAndCompare(ctx, t, col, sniffAddr, testcorpus.File(t, *replayFile))
	lap("replayed capture's assets at the collector")

	// Reboot through gokrazy's API: /perm keeps the registration, so the
	// box reports again under the same sensor and never registers anew,
	// and the static address comes back without DHCP's.
	if err := v.post(ctx, pw, "/reboot"); err != nil {
		t.Fatalf("reboot through gokrazy: %v", err)
	}
	for {
		b, _ := os.ReadFile(v.serialLog)
		if strings.Count(string(b), "Run /gokrazy/init as init process") >= 2 &&
			strings.Count(string(b), "entered promiscuous mode") >= 2 {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the box did not come back from the reboot")
		}
		time.Sleep(time.Second)
	}
	if err := waitGokrazy(ctx, pw, v.forwarded[staticHTTP], true, time.Minute); err != nil {
		t.Fatalf("after the reboot the box does not answer at %s: %v", staticIP, err)
	}
	if err := gokrazyAt(ctx, pw, dhcpHTTP); err == nil {
		t.Fatalf("after the reboot the box answers at the DHCP address %s", dhcpStart)
	}
	lap("reboot to a running sensor at the static address")
	before := sensors[0]["batches"]
	for {
		err := col.api("/api/sensors", &sensors)
		if err == nil && len(sensors) == 1 && sensors[0]["batches"] != before {
			break
		}
		if err == nil && len(sensors) > 1 {
			t.Fatalf("the box registered again after the reboot: %v", sensors)
		}
		if ctx.Err() != nil {
			t.Fatalf("no report after the reboot (last: %v, %v)", err, sensors)
		}
		time.Sleep(3 * time.Second)
	}
	t.Logf("after the reboot: %v", sensors[0])
	lap("report under the same registration after the reboot")
	checkPerm(t, v)
}

// stepTimer returns a function that logs how long the step since its last
// call took ("STEP ... took ...", the figures make e2e reports).
func stepTimer(t *testing.T) func(what string) {
	step := time.Now()
	return func(what string) {
		t.Helper()
		t.Logf("STEP %s took %v", what, time.Since(step).Round(time.Second))
		step = time.Now()
	}
}

// provision copies img and writes the factory's part of the settings
// into its /perm: the collector's URL and CA, and code when not empty (a
// box set up before it shipped).
func provision(t *testing.T, img string, col *collector, code string) string {
	t.Helper()
	disk := filepath.Join(t.TempDir(), "disk.img")
	if out, err := exec.Command("cp", "--sparse=always", img, disk).CombinedOutput(); err != nil {
		t.Fatalf("copying image: %v: %s", err, out)
	}
	st := settings.Defaults()
	st.CloudURL = col.guestURL
	st.PersonalizationCode = code
	sj, err := settings.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	writePerm(t, disk, map[string][]byte{"/sensor/settings.json": sj, "/sensor/cloud-ca.pem": col.ca})
	return disk
}

// sniffSocket makes the sniffing NIC a qemu UDP socket: each datagram the
// host sends to addr is one Ethernet frame on the guest's eth1.
func sniffSocket(t *testing.T) (addr, netdev string) {
	addr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	sink := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	return addr, "socket,id=sniff,udp=" + sink + ",localaddr=" + addr
}

// gokrazyAt asks the gokrazy HTTP server the host reaches at addr for the
// sensor's status: nil if the box answered.
func gokrazyAt(ctx context.Context, pw, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := (&vm{httpAddr: addr}).get(ctx, pw, "/status?path=/user/sensor", "application/json")
	return err
}

// waitGokrazy waits until the box answers at addr (answers true) or stops
// answering there.
func waitGokrazy(ctx context.Context, pw, addr string, answers bool, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		err := gokrazyAt(ctx, pw, addr)
		if (err == nil) == answers {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if err == nil {
				return fmt.Errorf("still answering after %v", within)
			}
			return err
		}
		time.Sleep(time.Second)
	}
}

// waitRegistered waits until the collector lists a registered sensor;
// screen tells what the box showed when it never does.
func (c *collector) waitRegistered(ctx context.Context, t *testing.T, screen func() string) []map[string]any {
	t.Helper()
	var sensors []map[string]any
	for {
		err := c.api("/api/sensors", &sensors)
		if err == nil && len(sensors) > 0 {
			t.Logf("registered: %v", sensors[0])
			return sensors
		}
		if ctx.Err() != nil {
			t.Fatalf("the box never registered with the collector (last: %v, %v); it showed:\n%s", err, sensors, screen())
		}
		time.Sleep(2 * time.Second)
	}
}

// replayAndCompare replays capture into the sniffing NIC at sniffAddr and
// waits until the collector lists the same assets as the sensor reading
// that capture offline.
func replayAndCompare(ctx context.Context, t *testing.T, col *collector, sniffAddr, capture string) {
	t.Helper()
	want := offlineAssets(t, capture)
	start := time.Now()
	n := replay(t, capture, sniffAddr)
	t.Logf("replayed %d frames of %s in %v; sensor -r inventories %v", n, filepath.Base(capture), time.Since(start).Round(time.Millisecond), keys(want))
	var got map[string]bool
	for {
		var assets []struct {
			ID string `json:"id"`
		}
		if err := col.api("/api/assets", &assets); err == nil {
			got = map[string]bool{}
			for _, a := range assets {
				got[a.ID] = true
			}
			if mapsEqualKeys(got, want) {
				t.Logf("the collector lists them %v after the replay began", time.Since(start).Round(time.Second))
				return
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("collector assets %v, sensor -r on the capture %v", keys(got), keys(want))
		}
		time.Sleep(time.Second)
	}
}

var replayFile = flag.String("replay", "ICS-Pcaps__LocalPCAP__ModbusFloat.pcap", "corpus capture replayed into the sniffing NIC")

// offlineAssets is the set of asset ids `sensor -r` reports for capture
// (inventoried devices and the aggregates such as "external").
func offlineAssets(t *testing.T, capture string) map[string]bool {
	t.Helper()
	out, err := exec.Command("go", "run", "../cmd/sensor", "-r", capture, "-json").Output()
	if err != nil {
		t.Fatalf("sensor -r %s: %v", capture, err)
	}
	ids := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		var r struct{ Kind, ID string }
		if json.Unmarshal([]byte(line), &r) == nil && r.Kind == "asset" {
			ids[r.ID] = true
		}
	}
	if len(ids) == 0 {
		t.Fatalf("sensor -r %s inventories no asset: nothing to compare", capture)
	}
	return ids
}

// replay sends each frame of capture as one UDP datagram to addr, paced
// so that qemu's socket backend drops none.
func replay(t *testing.T, capture, addr string) int {
	t.Helper()
	f, err := os.Open(capture)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", capture, err)
	}
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n := 0
	for {
		data, _, err := r.ReadPacketData()
		if err == io.EOF {
			return n
		}
		if err != nil {
			t.Fatalf("%s: frame %d: %v", capture, n+1, err)
		}
		if _, err := c.Write(data); err != nil {
			t.Fatalf("sending frame %d: %v", n+1, err)
		}
		n++
		time.Sleep(2 * time.Millisecond)
	}
}

func mapsEqualKeys(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func regexpMust(s string) *regexp.Regexp { return regexp.MustCompile(s) }
