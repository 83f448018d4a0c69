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

// collector is a real cmd/collector process on the host, reached by the
// guest at 10.0.2.2 (qemu user networking's host address).
type collector struct {
	url    string // as the host reaches it
	ca     []byte // its CA certificate (PEM)
	data   string
	client *http.Client
}

// startCollector builds and starts cmd/collector on a free loopback port.
func startCollector(t *testing.T) *collector {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "collector")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/collector").CombinedOutput(); err != nil {
		t.Fatalf("building collector: %v\n%s", err, out)
	}
	c := &collector{data: filepath.Join(dir, "data")}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(bin, "-listen", addr, "-data", c.data, "-hosts", "10.0.2.2")
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

// TestSite drives the image as a site would: boot, the set-up console over
// the UART in PuTTY (static address, personalization code), registration at
// a real collector on the host, and the state surviving a reboot.
//
// The collector's URL and CA are factory provisioning, not site set-up (the
// console has no field for them): they are written into /perm/sensor of the
// disk before the first boot, as the factory would.
func TestSite(t *testing.T) {
	img := requireTools(t)
	step := time.Now()
	lap := func(what string) {
		t.Logf("STEP %s took %v", what, time.Since(step).Round(time.Second))
		step = time.Now()
	}
	col := startCollector(t)
	disk := filepath.Join(t.TempDir(), "disk.img")
	if out, err := exec.Command("cp", "--sparse=always", img, disk).CombinedOutput(); err != nil {
		t.Fatalf("copying image: %v: %s", err, out)
	}
	guestURL := strings.Replace(col.url, "127.0.0.1", "10.0.2.2", 1)
	st := settings.Defaults()
	st.CloudURL = guestURL
	sj, err := settings.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	writePerm(t, disk, map[string][]byte{"/sensor/settings.json": sj, "/sensor/cloud-ca.pem": col.ca})
	code := col.code(t)
	lap("collector, disk copy, factory provisioning")

	// The sniffing NIC is a qemu UDP socket: each datagram the host sends
	// to sniffAddr is one Ethernet frame on the guest's eth1.
	sniffAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	sink := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	pw, err := httpPassword(img)
	if err != nil {
		t.Fatal(err)
	}
	v := bootWith(t, disk, bootOpts{persistent: true, uartPTY: true,
		sniff: "socket,id=sniff,udp=" + sink + ",localaddr=" + sniffAddr})
	ctx, cancel := context.WithTimeout(context.Background(), 2**bootTimeout)
	defer cancel()
	if _, err := v.waitSerial(ctx, regexpMust(`entered promiscuous mode`)); err != nil {
		t.Fatal(err)
	}
	lap("boot to a running sensor")

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
	con.moveTo("IP")
	con.keys("Enter", "C-u")
	con.text("10.0.2.15")
	con.keys("Enter")
	con.want(10*time.Second, "IP set to 10.0.2.15")
	con.moveTo("Gateway")
	con.keys("Enter", "C-u")
	con.text("10.0.2.2")
	con.keys("Enter")
	con.want(10*time.Second, "Gateway set to 10.0.2.2")
	con.moveTo("DNS 1")
	con.keys("Enter", "C-u")
	con.text("10.0.2.3")
	con.keys("Enter")
	con.want(10*time.Second, "DNS 1 set to 10.0.2.3")
	con.moveTo("[Save & apply]")
	con.keys("Enter")
	con.want(10*time.Second, "Apply network? (y/n)")
	con.keys("y")
	con.want(60*time.Second, "Save & apply: saved")
	con.keys("Escape")
	con.want(10*time.Second, "Sensor set-up")
	con.moveTo("Registration >")
	con.keys("Enter", "Enter")
	con.text(code)
	con.keys("Enter")
	con.want(10*time.Second, "Code set to "+strings.ToUpper(code))
	lap("console: static address and code in plink")

	var sensors []map[string]any
	for {
		err := col.api("/api/sensors", &sensors)
		if err == nil && len(sensors) > 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the box never registered with the collector (last: %v, %v); console:\n%s", err, sensors, con.screen())
		}
		time.Sleep(2 * time.Second)
	}
	t.Logf("registered: %v", sensors[0])
	lap("registration at the collector")

	// Replay a corpus capture into eth1; the collector must list the same
	// inventoried assets as the sensor reading that capture offline.
	capture := testcorpus.File(t, *replayFile)
	want := offlineAssets(t, capture)
	n := replay(t, capture, sniffAddr)
	t.Logf("replayed %d frames of %s; sensor -r inventories %v", n, *replayFile, want)
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
				break
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("collector assets %v, sensor -r on the capture %v", keys(got), keys(want))
		}
		time.Sleep(3 * time.Second)
	}
	lap("replayed capture's assets at the collector")

	// Reboot through gokrazy's API: /perm keeps the registration, so the
	// box reports again under the same sensor and never registers anew.
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
	lap("reboot to a running sensor")
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
