package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/passivesensor/sensor/asset"
	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/internal/testcorpus"
	"github.com/passivesensor/sensor/settings"
	"github.com/passivesensor/sensor/status"
	"github.com/passivesensor/sensor/uplink"
)

// End-to-end tests of the cloud link: the collector and the sensor are
// the real binaries, run as processes on loopback with real TLS.

var cloudBins struct {
	once              sync.Once
	sensor, collector string
	err               error
}

func cloudBuild(t *testing.T) (sensor, collector string) {
	t.Helper()
	cloudBins.once.Do(func() {
		dir, err := os.MkdirTemp("", "sensor-cloud-test-")
		if err != nil {
			cloudBins.err = err
			return
		}
		cloudBins.sensor, cloudBins.collector = filepath.Join(dir, "sensor"), filepath.Join(dir, "collector")
		for _, b := range [][2]string{{cloudBins.sensor, "."}, {cloudBins.collector, "../collector"}} {
			if out, err := exec.Command("go", "build", "-o", b[0], b[1]).CombinedOutput(); err != nil {
				cloudBins.err = fmt.Errorf("go build %s: %v\n%s", b[1], err, out)
				return
			}
		}
	})
	if cloudBins.err != nil {
		t.Fatal(cloudBins.err)
	}
	return cloudBins.sensor, cloudBins.collector
}

// cloudCollector is a collector process.
type cloudCollector struct {
	bin, dir, url, ca string
	cmd               *exec.Cmd
	log               *os.File
}

// cloudStart starts the collector on listen and reads the URL and CA path
// it prints.
func cloudStart(t *testing.T, bin, dir, listen string) *cloudCollector {
	t.Helper()
	return cloudStartIn(t, "", bin, dir, listen)
}

// cloudStartIn starts the collector inside network namespace ns ("" for
// this one).
func cloudStartIn(t *testing.T, ns, bin, dir, listen string) *cloudCollector {
	t.Helper()
	c := &cloudCollector{bin: bin, dir: dir}
	log, err := os.OpenFile(filepath.Join(dir, "collector.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	c.log = log
	c.cmd = exec.Command(bin, "-listen", listen, "-data", dir)
	if ns != "" {
		c.cmd = exec.Command("ip", "netns", "exec", ns, bin, "-listen", listen, "-data", dir)
	}
	c.cmd.Stderr = log
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.stop() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if u, ok := strings.CutPrefix(line, "collector: listening on "); ok {
			c.url = u
		}
		if p, ok := strings.CutPrefix(line, "collector: CA certificate "); ok {
			c.ca = p
			break
		}
	}
	go io.Copy(io.Discard, out)
	if c.url == "" || c.ca == "" {
		t.Fatalf("collector printed no URL and CA path (url %q ca %q); log in %s", c.url, c.ca, log.Name())
	}
	return c
}

func (c *cloudCollector) stop() {
	if c.cmd == nil || c.cmd.Process == nil || c.cmd.ProcessState != nil {
		return
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	c.cmd.Wait()
	c.log.Close()
}

func (c *cloudCollector) code(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(c.bin, "-data", c.dir, "code", "new").Output()
	if err != nil {
		t.Fatalf("collector code new: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func (c *cloudCollector) get(t *testing.T, path string, v any) {
	t.Helper()
	pem, err := os.ReadFile(c.ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
	resp, err := hc.Get(c.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// cloudState makes a state directory whose settings hold code and proxy.
func cloudState(t *testing.T, code string, proxy settings.Proxy) string {
	t.Helper()
	dir := t.TempDir()
	s := settings.Defaults()
	s.PersonalizationCode, s.Proxy = code, proxy
	if err := settings.Save(filepath.Join(dir, uplink.SettingsFile), s); err != nil {
		t.Fatal(err)
	}
	return dir
}

// cloudSensor runs `sensor -r file -cloud URL -ca FILE -state DIR`.
func cloudSensor(bin string, c *cloudCollector, state, file string, timeout time.Duration) (string, error) {
	out, err := exec.Command(bin, "-r", file, "-cloud", c.url, "-ca", c.ca, "-state", state,
		"-upload-timeout", timeout.String()).CombinedOutput()
	return string(out), err
}

// cloudAsset is what both sides say about an asset, in one shape.
type cloudAsset struct {
	ID, Kind, MAC, Hostname, Domain, Vendor, Model, Firmware, Serial, OS, Class string
	IPs, Protocols, Ports                                                       []string
	Attrs                                                                       map[string]string
}

// sensorJSON runs `sensor -json -r file` and returns its assets by id and
// its traffic records.
func sensorJSON(t *testing.T, bin, file string) (map[string]cloudAsset, []jsonFlow) {
	t.Helper()
	out, err := exec.Command(bin, "-json", "-r", file).Output()
	if err != nil {
		t.Fatalf("sensor -json -r %s: %v", file, err)
	}
	assets := map[string]cloudAsset{}
	var flows []jsonFlow
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var kind struct{ Kind string }
		json.Unmarshal([]byte(line), &kind)
		switch kind.Kind {
		case "asset":
			var a jsonAsset
			if err := json.Unmarshal([]byte(line), &a); err != nil {
				t.Fatal(err)
			}
			ips := a.IPs
			if len(ips) == 0 && a.IP != "" {
				ips = []string{a.IP}
			}
			assets[a.ID] = cloudAsset{ID: a.ID, Kind: a.Class, MAC: a.MAC, Hostname: a.Hostname, Domain: a.Domain,
				Vendor: a.Vendor, Model: a.Model, Firmware: a.Firmware, Serial: a.Serial, OS: a.OS, Class: a.DevClass,
				IPs: ips, Protocols: a.Protocols, Ports: a.OpenPorts, Attrs: a.Attrs}
		case "flow":
			var f jsonFlow
			if err := json.Unmarshal([]byte(line), &f); err != nil {
				t.Fatal(err)
			}
			flows = append(flows, f)
		}
	}
	return assets, flows
}

// collectorAssets is the collector's JSON API view of one sensor's assets.
func collectorAssets(t *testing.T, c *cloudCollector, sensor string) map[string]cloudAsset {
	t.Helper()
	var list []struct {
		ID, Kind, MAC, Hostname, Domain, Vendor, Model, Firmware, Serial, OS, Class string
		IPs                                                                         []string
		Protocols                                                                   []string
		OpenPorts                                                                   []string `json:"open_ports"`
		Attrs                                                                       map[string]string
	}
	c.get(t, "/api/assets?sensor="+sensor, &list)
	out := map[string]cloudAsset{}
	for _, a := range list {
		out[a.ID] = cloudAsset{ID: a.ID, Kind: a.Kind, MAC: a.MAC, Hostname: a.Hostname, Domain: a.Domain,
			Vendor: a.Vendor, Model: a.Model, Firmware: a.Firmware, Serial: a.Serial, OS: a.OS, Class: a.Class,
			IPs: a.IPs, Protocols: a.Protocols, Ports: a.OpenPorts, Attrs: a.Attrs}
	}
	return out
}

type cloudTraffic struct {
	Sensor, Src, Dst, SrcAsset, DstAsset, Proto string
	DPort                                       uint16
	BytesOut, BytesIn, PacketsOut, PacketsIn    uint64
	Intervals                                   int
}

func collectorTraffic(t *testing.T, c *cloudCollector, sensor string) map[string]cloudTraffic {
	t.Helper()
	var list []struct {
		Sensor, Src, Dst, Proto string
		SrcAsset                string `json:"src_asset"`
		DstAsset                string `json:"dst_asset"`
		DPort                   uint16
		BytesOut                uint64 `json:"bytes_out"`
		BytesIn                 uint64 `json:"bytes_in"`
		PacketsOut              uint64 `json:"packets_out"`
		PacketsIn               uint64 `json:"packets_in"`
		Intervals               int
	}
	c.get(t, "/api/traffic?sensor="+sensor, &list)
	out := map[string]cloudTraffic{}
	for _, r := range list {
		out[flowKey(r.Src, r.Dst, r.SrcAsset, r.DstAsset, r.Proto, r.DPort)] = cloudTraffic{Sensor: r.Sensor, Src: r.Src, Dst: r.Dst,
			SrcAsset: r.SrcAsset, DstAsset: r.DstAsset, Proto: r.Proto, DPort: r.DPort, BytesOut: r.BytesOut, BytesIn: r.BytesIn,
			PacketsOut: r.PacketsOut, PacketsIn: r.PacketsIn, Intervals: r.Intervals}
	}
	return out
}

func flowKey(src, dst, sa, da, proto string, dport uint16) string {
	return fmt.Sprintf("%s|%s|%s|%s|%s|%d", src, dst, sa, da, proto, dport)
}

// wantTraffic sums the sensor's own traffic lines over several runs.
func wantTraffic(runs ...[]jsonFlow) map[string]cloudTraffic {
	out := map[string]cloudTraffic{}
	for _, flows := range runs {
		for _, f := range flows {
			k := flowKey(f.Src, f.Dst, f.SrcAsset, f.DstAsset, f.Proto, f.DPort)
			r := out[k]
			r.BytesOut += f.BytesOut
			r.BytesIn += f.BytesIn
			r.PacketsOut += f.PacketsOut
			r.PacketsIn += f.PacketsIn
			r.Intervals++
			out[k] = r
		}
	}
	return out
}

func compareTraffic(t *testing.T, got, want map[string]cloudTraffic) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("collector holds %d traffic aggregates, the sensor printed %d", len(got), len(want))
	}
	for k, w := range want {
		g := got[k]
		if g.BytesOut != w.BytesOut || g.BytesIn != w.BytesIn || g.PacketsOut != w.PacketsOut || g.PacketsIn != w.PacketsIn || g.Intervals != w.Intervals {
			t.Errorf("traffic %s: collector %+v, sensor %+v", k, g, w)
		}
	}
}

func readStatus(t *testing.T, state string) status.Status {
	t.Helper()
	s, err := status.Read(state)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCloudEndToEnd: collector up, a code issued, `sensor -r` on a corpus
// capture registers and uploads; the collector's JSON API lists the same
// assets and traffic as `sensor -json`. A wrong code is refused with a
// clear message in status.json and on stderr.
func TestCloudEndToEnd(t *testing.T) {
	sensorBin, collBin := cloudBuild(t)
	file := testcorpus.File(t, "ICS-Pcaps__BOOTP__packet.pcap")
	c := cloudStart(t, collBin, t.TempDir(), "127.0.0.1:0")

	state := cloudState(t, "ABCD-EFGH-JKMN-PQRS", settings.Proxy{}) // never issued
	out, err := cloudSensor(sensorBin, c, state, file, 30*time.Second)
	if err == nil || !strings.Contains(out, "code ABCD-EFGH-JKMN-PQRS refused by the cloud: not issued or already used") {
		t.Fatalf("sensor with a wrong code: %v\n%s", err, out)
	}
	if s := readStatus(t, state); s.Registration != status.Registering || s.CloudError != "code ABCD-EFGH-JKMN-PQRS refused by the cloud: not issued or already used" {
		t.Fatalf("status with a wrong code: %+v", s)
	}

	state = cloudState(t, c.code(t), settings.Proxy{})
	if out, err := cloudSensor(sensorBin, c, state, file, 30*time.Second); err != nil {
		t.Fatalf("sensor -r -cloud: %v\n%s", err, out)
	}
	st := readStatus(t, state)
	if st.Registration != status.Registered || st.SensorID == "" || !st.CloudOK || st.SpoolBytes != 0 {
		t.Fatalf("status after the upload: %+v", st)
	}
	// The cloud's configuration is cached; it offers the string
	// dictionary the upload used.
	if cfg, err := uplink.LoadConfig(state); err != nil || cfg.Revision != "collector-default" || cfg.Dictionary != uplink.DictVersion {
		t.Fatalf("cached configuration: %+v %v", cfg, err)
	}
	want, flows := sensorJSON(t, sensorBin, file)
	got := collectorAssets(t, c, st.SensorID)
	if len(want) < 10 {
		t.Fatalf("the capture gave only %d assets", len(want))
	}
	ids := func(m map[string]cloudAsset) []string {
		var s []string
		for k := range m {
			s = append(s, k)
		}
		sort.Strings(s)
		return s
	}
	if !reflect.DeepEqual(ids(got), ids(want)) {
		t.Fatalf("asset ids differ:\ncollector %v\nsensor    %v", ids(got), ids(want))
	}
	for id, w := range want {
		if g := got[id]; !reflect.DeepEqual(g, w) {
			t.Errorf("asset %s:\ncollector %+v\nsensor    %+v", id, g, w)
		}
	}
	compareTraffic(t, collectorTraffic(t, c, st.SensorID), wantTraffic(flows))
	var devices []struct{ Assets []string }
	c.get(t, "/api/devices", &devices)
	if len(devices) != len(want) {
		t.Errorf("one sensor's %d assets make %d devices", len(want), len(devices))
	}
}

// TestCloudOutage: the collector stops while the sensor has reports to
// send; the sensor keeps them in its spool and retries; once the collector
// is back everything arrives, once.
func TestCloudOutage(t *testing.T) {
	sensorBin, collBin := cloudBuild(t)
	fileA := testcorpus.File(t, "ICS-Pcaps__COTP__cotp.pcap")
	fileB := testcorpus.File(t, "ICS-Pcaps__DHCP__dhcp_client.pcap")
	dir := t.TempDir()
	c := cloudStart(t, collBin, dir, "127.0.0.1:0")
	state := cloudState(t, c.code(t), settings.Proxy{})
	if out, err := cloudSensor(sensorBin, c, state, fileA, 30*time.Second); err != nil {
		t.Fatalf("first upload: %v\n%s", err, out)
	}
	sensorID := readStatus(t, state).SensorID
	var before []struct{ ID string }
	c.get(t, "/api/assets?sensor="+sensorID, &before)

	c.stop()
	type result struct {
		out string
		err error
	}
	res := make(chan result, 1)
	go func() {
		out, err := cloudSensor(sensorBin, c, state, fileB, 60*time.Second)
		res <- result{out, err}
	}()
	// The sensor cannot reach the cloud: it says so and keeps the reports.
	end := time.Now().Add(15 * time.Second)
	for {
		s, err := status.Read(state)
		if err == nil && !s.CloudOK && s.CloudError != "" && s.SpoolBytes > 0 {
			t.Logf("while the collector is down: %s (%d bytes spooled)", s.CloudError, s.SpoolBytes)
			break
		}
		if time.Now().After(end) {
			t.Fatalf("status never showed the outage: %+v %v", s, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second)
	u := strings.TrimPrefix(c.url, "https://")
	c2 := cloudStart(t, collBin, dir, u)
	r := <-res
	if r.err != nil {
		t.Fatalf("upload across the outage: %v\n%s", r.err, r.out)
	}
	assetsA, flowsA := sensorJSON(t, sensorBin, fileA)
	assetsB, flowsB := sensorJSON(t, sensorBin, fileB)
	got := collectorAssets(t, c2, sensorID)
	for id := range assetsA {
		if _, ok := got[id]; !ok {
			t.Errorf("asset %s of the first capture lost", id)
		}
	}
	for id, w := range assetsB {
		if g, ok := got[id]; !ok {
			t.Errorf("asset %s of the capture sent across the outage lost", id)
		} else if g.Vendor != w.Vendor || g.Hostname != w.Hostname {
			t.Errorf("asset %s: collector %+v, sensor %+v", id, g, w)
		}
	}
	compareTraffic(t, collectorTraffic(t, c2, sensorID), wantTraffic(flowsA, flowsB))
	var sensors []struct {
		ID      string
		Batches int
	}
	c2.get(t, "/api/sensors", &sensors)
	// Each upload queues one batch: heartbeat, asset report, traffic
	// report together.
	if len(sensors) != 1 || sensors[0].Batches != 2 {
		t.Fatalf("sensors %+v, want one with 2 batches", sensors)
	}
}

// TestCloudThroughProxy: the sensor reaches the collector through Debian's
// tinyproxy with Basic credentials (CONNECT tunnel); wrong credentials
// fail with a clear error.
func TestCloudThroughProxy(t *testing.T) {
	tp, err := exec.LookPath("tinyproxy")
	if err != nil {
		t.Skip("tinyproxy not installed (make deps installs it)")
	}
	sensorBin, collBin := cloudBuild(t)
	file := testcorpus.File(t, "ICS-Pcaps__DHCP__dhcp_client.pcap")
	c := cloudStart(t, collBin, t.TempDir(), "127.0.0.1:0")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	pdir := t.TempDir()
	conf := fmt.Sprintf(`Port %d
Listen 127.0.0.1
Timeout 30
MaxClients 20
Allow 127.0.0.1
BasicAuth sensor s3cret-pass
LogLevel Info
`, port)
	if os.Geteuid() == 0 {
		conf += "User nobody\nGroup nogroup\n"
	}
	os.WriteFile(filepath.Join(pdir, "tinyproxy.conf"), []byte(conf), 0o644)
	cmd := exec.Command(tp, "-d", "-c", filepath.Join(pdir, "tinyproxy.conf"))
	var plog lockedBuffer // tinyproxy logs to stdout without a LogFile
	cmd.Stdout, cmd.Stderr = &plog, &plog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; ; i++ {
		if conn, err := net.Dial("tcp", addr); err == nil {
			conn.Close()
			break
		}
		if i > 100 {
			t.Fatal("tinyproxy did not start listening")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Wrong password: the proxy refuses, the sensor says why.
	state := cloudState(t, c.code(t), settings.Proxy{Address: addr, User: "sensor", Password: "wrong"})
	out, err := cloudSensor(sensorBin, c, state, file, 3*time.Second)
	if err == nil {
		t.Fatalf("upload through the proxy with a wrong password succeeded:\n%s", out)
	}
	if s := readStatus(t, state); s.CloudOK || !strings.Contains(s.CloudError, "proxy "+addr+" refused the tunnel") {
		t.Fatalf("status with a wrong proxy password: %+v", s)
	}

	state = cloudState(t, c.code(t), settings.Proxy{Address: addr, User: "sensor", Password: "s3cret-pass"})
	if out, err := cloudSensor(sensorBin, c, state, file, 30*time.Second); err != nil {
		t.Fatalf("upload through the proxy: %v\n%s", err, out)
	}
	st := readStatus(t, state)
	want, _ := sensorJSON(t, sensorBin, file)
	if got := collectorAssets(t, c, st.SensorID); len(got) != len(want) {
		t.Fatalf("through the proxy: collector holds %d assets, sensor printed %d", len(got), len(want))
	}
	log := plog.String()
	if !strings.Contains(log, "CONNECT") || !strings.Contains(log, strings.TrimPrefix(c.url, "https://")) {
		t.Fatalf("tinyproxy's log shows no CONNECT to the collector:\n%s", log)
	}
}

// lockedBuffer collects a process's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// liveCloud wires s to the collector c as the daemon does with -i (the
// reporting loop's ticks are the test's to make): it registers with a new
// code and runs the agent until the test ends.
func liveCloud(t *testing.T, s *Sensor, c *cloudCollector) (cl *cloud, state string, ctx context.Context) {
	t.Helper()
	state = cloudState(t, c.code(t), settings.Proxy{})
	cl = newCloud(s, []string{"lo"})
	if err := cl.openAgent(state, c.url, c.ca, false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	done := make(chan struct{})
	go func() { cl.agent.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; cl.agent.Close() })
	if err := cl.agent.WaitRegistered(ctx); err != nil {
		t.Fatal(err)
	}
	return cl, state, ctx
}

// TestCloudLiveReporting drives the daemon's reporting loop (what runs
// with -i) against the collector with short intervals from the cloud's
// configuration: full report after registration, then only new assets,
// then only changed ones, heartbeats in state sensing with the
// interfaces, the configuration's classes applied to the running
// inventory, and the asset-reporting-stopped event when no frame arrives.
func TestCloudLiveReporting(t *testing.T) {
	_, collBin := cloudBuild(t)
	file := testcorpus.File(t, "ICS-Pcaps__BOOTP__packet.pcap")
	s := New(asset.DefaultClasses())
	src, err := capture.OpenFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RunFile(src); err != nil {
		t.Fatal(err)
	}
	src.Close()
	var excluded netip.Addr
	for _, a := range s.Inv.Assets() {
		if a.Kind == asset.Inventoried && len(a.IPs) == 1 && a.IPs[0].Is4() {
			excluded = a.IPs[0]
			break
		}
	}
	if !excluded.IsValid() {
		t.Fatal("no inventoried IPv4 asset in the capture")
	}
	cfg := uplink.DefaultConfig()
	cfg.Revision, cfg.NetworkID, cfg.FingerprintConsent = "live-1", "lab", true
	cfg.Classes.ExcludedIPs = []netip.Prefix{netip.PrefixFrom(excluded, 32)}
	cfg.Intervals = uplink.Intervals{Heartbeat: time.Second, NewAssets: 2 * time.Second, Updates: 3 * time.Second,
		Traffic: time.Second, Config: time.Second}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "config"), 0o700)
	data, _ := json.Marshal(cfg)
	os.WriteFile(filepath.Join(dir, "config", "default.json"), data, 0o644)
	c := cloudStart(t, collBin, dir, "127.0.0.1:0")
	cl, state, ctx := liveCloud(t, s, c)
	if err := cl.agent.RefreshConfig(ctx); err != nil || cl.agent.Config().Revision != "live-1" {
		t.Fatalf("configuration: %v %q", err, cl.agent.Config().Revision)
	}
	for _, a := range s.Inv.Assets() {
		for _, ip := range a.IPs {
			if ip == excluded {
				t.Fatalf("excluded %s still in the running inventory as %s", excluded, a.ID)
			}
		}
	}
	cl.agent.SetSensing(true)
	sensor := cl.agent.SensorID()
	batches := func() int {
		if err := cl.agent.Drain(ctx); err != nil {
			t.Fatal(err)
		}
		var sensors []struct {
			ID        string
			Batches   int
			Heartbeat struct {
				State      int
				Interfaces []struct{ Name string }
			}
		}
		c.get(t, "/api/sensors", &sensors)
		if len(sensors) != 1 || sensors[0].Heartbeat.State != int(uplink.StateSensing) ||
			len(sensors[0].Heartbeat.Interfaces) != 1 || sensors[0].Heartbeat.Interfaces[0].Name != "lo" {
			t.Fatalf("sensors %+v, want one sensing with interface lo in its heartbeat", sensors)
		}
		return sensors[0].Batches
	}
	assetsNow := func() map[string]cloudAsset { return collectorAssets(t, c, sensor) }

	t0 := time.Now()
	rep := s.Report()
	cl.onReport(rep, t0.Add(-time.Second), t0)
	cl.tick(t0) // registered: heartbeat and the full inventory
	n0 := batches()
	if got, want := len(assetsNow()), len(s.Inv.Assets()); got != want {
		t.Fatalf("after the first tick the collector holds %d assets, the inventory %d", got, want)
	}
	for _, a := range assetsNow() {
		for _, ip := range a.IPs {
			if ip == excluded.String() {
				t.Fatalf("excluded address %s reported in %s", ip, a.ID)
			}
		}
	}
	cl.tick(t0.Add(500 * time.Millisecond)) // nothing due
	if n := batches(); n != n0 {
		t.Fatalf("a tick with nothing due sent %d batches", n-n0)
	}
	// A new device appears: reported at the next new-assets tick, alone.
	newIP := netip.MustParseAddr("10.77.0.1")
	s.Inv.Observe(dissect.Observation{Time: t0, IP: newIP, Attr: dissect.AttrHostname, Value: "new-plc", Protocol: "test"})
	cl.tick(t0.Add(2 * time.Second))
	n1 := batches()
	if got := assetsNow()["ip:10.77.0.1"]; got.Hostname != "new-plc" {
		t.Fatalf("new asset not reported: %+v", got)
	}
	// It changes: reported at the next update tick.
	s.Inv.Observe(dissect.Observation{Time: t0, IP: newIP, Attr: dissect.AttrVendor, Value: "Wago", Protocol: "test"})
	cl.tick(t0.Add(3 * time.Second))
	n2 := batches() // drains the spool: the collector has what the tick queued
	if got := assetsNow()["ip:10.77.0.1"]; got.Vendor != "Wago" {
		t.Fatalf("changed asset not reported: %+v", got)
	}
	if n1 <= n0 || n2 <= n1 {
		t.Fatalf("batches %d, %d, %d: want growth at each due tick", n0, n1, n2)
	}
	var events []struct{ Kind, Detail string }
	c.get(t, "/api/events?sensor="+sensor, &events)
	found := false
	for _, e := range events {
		found = found || e.Kind == uplink.EventAssetReportingStopped.String()
	}
	if !found {
		t.Fatalf("no asset-reporting-stopped event after 3 s without frames: %+v", events)
	}
	if st := readStatus(t, state); st.Registration != status.Sensing || st.Assets == 0 || len(st.Interfaces) != 1 {
		t.Fatalf("status: %+v", st)
	}
}

// TestCloudRecordSizes measures, on real captures and the built-in plant
// capture, the bytes per asset and per traffic record of a batch as the
// uplink sends it (CBOR with string table, then zstd) against the same
// records as `sensor -json` prints them.
func TestCloudRecordSizes(t *testing.T) {
	zd, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zd.Close()
	wire := func(msgs ...uplink.Message) (raw, sent int) {
		b, err := uplink.NewBatch("sensor-0123456789ab", time.Unix(1_790_000_000, 0))
		if err != nil {
			t.Fatal(err)
		}
		b.Messages, b.Dict = msgs, uplink.DictVersion
		enc, err := uplink.EncodeBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		dec := enc
		if enc[0] == 0x28 {
			if dec, err = zd.DecodeAll(enc, nil); err != nil {
				t.Fatal(err)
			}
		}
		return len(dec), len(enc)
	}
	for _, name := range []string{"ICS-Pcaps__BOOTP__packet.pcap", "ICS-Pcaps__COTP__cotp.pcap", "plant"} {
		var r Report
		if name == "plant" {
			src, err := openDemo()
			if err != nil {
				t.Fatal(err)
			}
			s := New(asset.DefaultClasses())
			s.RunFile(src)
			src.Close()
			r = s.Report()
		} else {
			r = runFile(t, testcorpus.File(t, name))
		}
		base := time.Unix(1_790_000_000, 0).Unix()
		var js int
		for _, a := range r.Assets {
			b, _ := json.Marshal(assetLine(a))
			js += len(b) + 1
		}
		emptyRaw, emptySent := wire(uplink.Message{AssetReport: &uplink.AssetReport{}})
		raw, sent := wire(uplink.NewReporter(true).Report(uplink.ReportFull, r.Assets, base)...)
		na := float64(len(r.Assets))
		aRaw, aSent, aJSON := float64(raw-emptyRaw)/na, float64(sent-emptySent)/na, float64(js)/na
		js = 0
		for _, f := range r.Traffic {
			b, _ := json.Marshal(flowLine(f))
			js += len(b) + 1
		}
		emptyRaw, emptySent = wire(uplink.TrafficMessages(nil, time.Time{}, time.Time{}, base)...)
		raw, sent = wire(uplink.TrafficMessages(r.Traffic, time.Time{}, time.Time{}, base)...)
		nt := float64(len(r.Traffic))
		tRaw, tSent, tJSON := float64(raw-emptyRaw)/nt, float64(sent-emptySent)/nt, float64(js)/nt
		t.Logf("%s: %d assets: CBOR %.1f B, sent (zstd) %.1f B, JSON %.1f B (%.1fx, %.1fx); %d traffic: CBOR %.1f B, sent %.1f B, JSON %.1f B (%.1fx, %.1fx)",
			name, len(r.Assets), aRaw, aSent, aJSON, aJSON/aRaw, aJSON/aSent, len(r.Traffic), tRaw, tSent, tJSON, tJSON/tRaw, tJSON/tSent)
		// What crosses the network is the compressed batch: that is held
		// to 4x smaller than JSON. Raw CBOR is held to 2x, a guard against
		// losing the string table and byte-string addresses: fingerprint
		// evidence is free text that only compression shrinks.
		// A batch of a few assets amortises the batch's tables less.
		wantRaw, wantSent := 2.0, 4.0
		if len(r.Assets) < 30 {
			wantSent = 3.5
		}
		if aJSON/aRaw < wantRaw || aJSON/aSent < wantSent || tJSON/tRaw < 4 || tJSON/tSent < 4 {
			t.Errorf("%s: records not small enough against JSON (want assets %.0fx raw, %.0fx sent; traffic 4x)", name, wantRaw, wantSent)
		}
	}
}

// TestCloudLive runs the daemon as on the appliance: `sensor -i IFACE
// -cloud URL -ca FILE -state DIR` on the sniffing end of a veth pair, the
// corpus capture replayed into it, the collector on the loopback of the
// same network namespace. The cloud receives the inventory the offline
// run finds, traffic and heartbeats in state sensing naming the
// interface; status.json says sensing; nothing is sent on the sniffing
// interface.
func TestCloudLive(t *testing.T) {
	file := testcorpus.File(t, "ICS-Pcaps__COTP__cotp.pcap")
	l := newLiveLab(t, "cl")
	sensorBin, collBin := cloudBuild(t)
	sh(t, "ip", "-n", l.sniffNS, "link", "set", "lo", "up")
	offline, _ := sensorJSON(t, sensorBin, file)

	// The configuration a previous boot pulled: short intervals.
	cfg := uplink.DefaultConfig()
	cfg.Revision, cfg.FingerprintConsent, cfg.Dictionary = "live", true, uplink.DictVersion
	cfg.Intervals = uplink.Intervals{Heartbeat: time.Second, NewAssets: time.Second, Updates: 2 * time.Second,
		Traffic: time.Second, Config: 2 * time.Second}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "config"), 0o700)
	data, _ := json.Marshal(cfg)
	os.WriteFile(filepath.Join(dir, "config", "default.json"), data, 0o644)
	c := cloudStartIn(t, l.sniffNS, collBin, dir, "127.0.0.1:0")
	state := cloudState(t, c.code(t), settings.Proxy{})
	if err := uplink.SaveConfig(state, cfg); err != nil {
		t.Fatal(err)
	}
	curl := func(path string, v any) {
		t.Helper()
		out := sh(t, "ip", "netns", "exec", l.sniffNS, "curl", "-sS", "--cacert", c.ca, c.url+path)
		if err := json.Unmarshal([]byte(out), v); err != nil {
			t.Fatalf("%s: %v: %s", path, err, out)
		}
	}

	txBefore := l.txPackets(t)
	cmd := exec.Command("ip", "netns", "exec", l.sniffNS, sensorBin, "-i", l.sniffIf, "-cloud", c.url, "-ca", c.ca, "-state", state)
	var log lockedBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	waitLive := func(what string, f func() bool) {
		t.Helper()
		for end := time.Now().Add(30 * time.Second); !f(); time.Sleep(200 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("timed out waiting for %s; sensor log:\n%s", what, log.String())
			}
		}
	}
	waitLive("registration and sensing", func() bool {
		s, err := status.Read(state)
		return err == nil && s.Registration == status.Sensing && strings.Contains(log.String(), "sensing")
	})
	sensorID := readStatus(t, state).SensorID
	sh(t, "ip", "netns", "exec", l.sendNS, "tcpreplay", "-q", "-i", l.sendIf, "--mbps", "10", file)

	var got []struct{ ID string }
	waitLive("the inventory at the collector", func() bool {
		curl("/api/assets?sensor="+sensorID, &got)
		return len(got) >= len(offline)
	})
	ids := map[string]bool{}
	for _, a := range got {
		ids[a.ID] = true
	}
	for id := range offline {
		if !ids[id] {
			t.Errorf("asset %s of the offline run not at the collector", id)
		}
	}
	// A worker hands its flows to the traffic summary when its next frame
	// arrives (the capture blocks on an idle link): replay again until the
	// traffic report has them.
	var traffic []struct{ DPort uint16 }
	last := time.Now()
	waitLive("traffic at the collector", func() bool {
		curl("/api/traffic?sensor="+sensorID, &traffic)
		if len(traffic) == 0 && time.Since(last) > 2*time.Second {
			sh(t, "ip", "netns", "exec", l.sendNS, "tcpreplay", "-q", "-i", l.sendIf, "--mbps", "10", file)
			last = time.Now()
		}
		return len(traffic) > 0
	})
	var sensors []struct {
		Heartbeat struct {
			State      int
			Interfaces []struct {
				Name    string
				Link    bool
				Packets uint64
			}
			ActiveAssets1h uint64
		}
	}
	waitLive("a heartbeat counting the replay", func() bool {
		curl("/api/sensors", &sensors)
		if len(sensors) != 1 || sensors[0].Heartbeat.State != int(uplink.StateSensing) || len(sensors[0].Heartbeat.Interfaces) != 1 {
			return false
		}
		return sensors[0].Heartbeat.Interfaces[0].Name == l.sniffIf && sensors[0].Heartbeat.ActiveAssets1h > 0
	})
	if st := readStatus(t, state); len(st.Interfaces) != 1 || st.Interfaces[0].Name != l.sniffIf || st.Assets == 0 {
		t.Errorf("status.json: %+v", st)
	}
	if after := l.txPackets(t); after != txBefore {
		t.Errorf("sniffing interface transmitted %d packets", after-txBefore)
	}
}
