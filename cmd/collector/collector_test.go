package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/passivesensor/sensor/asset"
	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/settings"
	"github.com/passivesensor/sensor/status"
	"github.com/passivesensor/sensor/uplink"
)

// testCollector is the collector's real handler behind real TLS
// (httptest's server certificate, trusted through a CA file as a sensor
// would trust the collector's own CA).
type testCollector struct {
	srv    *httptest.Server
	store  *Store
	dir    string
	caFile string
	quiet  *slog.Logger
}

func newTestCollector(t *testing.T) *testCollector {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "config"), 0o700)
	st, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewTLSServer((&Server{Store: st, Dir: dir, Log: quiet, MaxBody: 1 << 20}).Handler())
	t.Cleanup(srv.Close)
	caFile := filepath.Join(dir, "test-ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644)
	return &testCollector{srv: srv, store: st, dir: dir, caFile: caFile, quiet: quiet}
}

func (c *testCollector) client(t *testing.T) *uplink.Client {
	t.Helper()
	cl, err := uplink.NewClient(c.srv.URL, uplink.ClientOptions{CAFile: c.caFile, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func (c *testCollector) code(t *testing.T) string {
	t.Helper()
	code, err := c.store.NewCode()
	if err != nil {
		t.Fatal(err)
	}
	return code
}

var codeFormat = regexp.MustCompile(`^[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}$`)

func TestNewCodeFormat(t *testing.T) {
	c := newTestCollector(t)
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		code := c.code(t)
		if !codeFormat.MatchString(code) {
			t.Fatalf("code %q is not ABCD-EFGH-JKMN-PQRS over A-Z2-9 without I, O, 0, 1", code)
		}
		if norm, err := settings.NormalizePersonalizationCode(strings.ToLower(code)); err != nil || norm != code {
			t.Fatalf("settings does not accept code %q: %q %v", code, norm, err)
		}
		if seen[code] {
			t.Fatalf("code %q issued twice", code)
		}
		seen[code] = true
	}
}

func TestRegistration(t *testing.T) {
	c := newTestCollector(t)
	cl := c.client(t)
	ctx := context.Background()
	code := c.code(t)
	cr, err := cl.Register(ctx, uplink.Registration{Code: code, HardwareID: "machine-id=aa;mac=00:1b:1b:00:00:01", Version: "1.0"})
	if err != nil {
		t.Fatal(err)
	}
	// The same box again (its answer was lost): same sensor, new token,
	// the old token void.
	cr2, err := cl.Register(ctx, uplink.Registration{Code: strings.ToLower(code), HardwareID: "machine-id=aa;mac=00:1b:1b:00:00:01"})
	if err != nil || cr2.SensorID != cr.SensorID || cr2.Token == cr.Token {
		t.Fatalf("re-registration of the same hardware: %+v %v (first %+v)", cr2, err, cr)
	}
	if _, ok := c.store.SensorByToken(ctx, cr.Token); ok {
		t.Fatal("the first token still works after re-registration")
	}
	// Another box with the used code, and a code never issued.
	for _, reg := range []uplink.Registration{
		{Code: code, HardwareID: "machine-id=bb"},
		{Code: "ABCD-EFGH-JKMN-PQRS", HardwareID: "machine-id=bb"},
	} {
		_, err := cl.Register(ctx, reg)
		if !errors.Is(err, uplink.ErrCodeRefused) {
			t.Fatalf("code %s from %s: %v, want refused", reg.Code, reg.HardwareID, err)
		}
		want := "code " + reg.Code + " refused by the cloud: not issued or already used"
		if err.Error() != want {
			t.Fatalf("refusal says %q, want it to start %q", err, want)
		}
	}
}

func testBatch(t *testing.T, sensor string, nAssets int) *uplink.Batch {
	t.Helper()
	now := time.Unix(1_790_000_000, 0)
	b, err := uplink.NewBatch(sensor, now)
	if err != nil {
		t.Fatal(err)
	}
	var assets []asset.Asset
	for i := 0; i < nAssets; i++ {
		mac := capture.MAC{0, 0x1b, 0x1b, 0, 0, byte(i + 1)}
		assets = append(assets, asset.Asset{ID: "mac:" + mac.String(), MAC: mac,
			IPs: []netip.Addr{netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)})}, Vendor: "Siemens AG",
			FirstSeen: now.Add(-time.Hour), LastSeen: now})
	}
	rep := uplink.NewReporter(true)
	b.Messages = rep.Report(uplink.ReportFull, assets, b.Base)
	b.Messages = append(b.Messages, uplink.TrafficMessages([]asset.TrafficRecord{{
		TrafficKey: asset.TrafficKey{Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"), DPort: 502, Proto: 6},
		SrcAsset:   "ip:10.0.0.1", DstAsset: "ip:10.0.0.2", BytesOut: 1000, BytesIn: 500, PacketsOut: 10, PacketsIn: 5,
	}}, now.Add(-5*time.Minute), now, b.Base)...)
	b.Messages = append(b.Messages, uplink.Message{Event: &uplink.Event{Kind: uplink.EventCaptureDrops, Count: 3}})
	return b
}

func post(t *testing.T, c *testCollector, token string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", c.srv.URL+uplink.PathBatches, bytes.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

func getJSON(t *testing.T, c *testCollector, path string, v any) {
	t.Helper()
	resp, err := c.srv.Client().Get(c.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestBadInputRefused: malformed CBOR, an oversize body, wrong credentials,
// a batch for another sensor are refused with a clear error; a replayed
// batch id is acknowledged and not stored twice.
func TestBadInputRefused(t *testing.T) {
	c := newTestCollector(t)
	ctx := context.Background()
	cl := c.client(t)
	cr, err := cl.Register(ctx, uplink.Registration{Code: c.code(t), HardwareID: "hw-1"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := cl.Register(ctx, uplink.Registration{Code: c.code(t), HardwareID: "hw-2"})
	if err != nil {
		t.Fatal(err)
	}
	good, err := uplink.EncodeBatch(testBatch(t, cr.SensorID, 3))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		token string
		body  []byte
		code  int
		msg   string
	}{
		{"no credentials", "", good, 401, "no sensor credentials"},
		{"wrong credentials", "0123456789abcdef", good, 401, "unknown or revoked sensor credentials"},
		{"malformed CBOR", cr.Token, []byte{0xa1, 0x04, 0x9f, 0xff}, 400, "malformed batch"},
		{"not CBOR at all", cr.Token, []byte("{\"json\": true}"), 400, "malformed batch: uplink: not a batch"},
		{"truncated", cr.Token, good[:len(good)/2], 400, "malformed batch"},
		{"oversize", cr.Token, make([]byte, 1<<20+1), 413, "exceeds the limit"},
		{"another sensor's batch", other.Token, good, 403, "credentials are sensor"},
	}
	for _, tc := range cases {
		code, body := post(t, c, tc.token, tc.body)
		if code != tc.code || !strings.Contains(body, tc.msg) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, code, body, tc.code, tc.msg)
		}
	}
	// The same batch twice: both acknowledged, stored once.
	for i, wantDup := range []bool{false, true} {
		res, err := cl.Send(ctx, cr, good)
		if err != nil || res.Duplicate != wantDup {
			t.Fatalf("send %d: %+v %v, want duplicate=%v", i, res, err, wantDup)
		}
	}
	var assets []AssetJSON
	getJSON(t, c, "/api/assets?sensor="+cr.SensorID, &assets)
	var traffic []TrafficJSON
	getJSON(t, c, "/api/traffic", &traffic)
	var events []EventJSON
	getJSON(t, c, "/api/events", &events)
	if len(assets) != 3 || len(traffic) != 1 || traffic[0].Intervals != 1 || traffic[0].BytesOut != 1000 || len(events) != 1 {
		t.Fatalf("after a replay: %d assets, traffic %+v, %d events; want 3, one interval of 1000 bytes, 1", len(assets), traffic, len(events))
	}
	var sensors []SensorJSON
	getJSON(t, c, "/api/sensors", &sensors)
	for _, s := range sensors {
		if s.ID == cr.SensorID && s.Batches != 1 {
			t.Fatalf("sensor %s has %d batches stored, want 1", s.ID, s.Batches)
		}
	}
	// The registration endpoint refuses garbage too.
	resp, err := c.srv.Client().Post(c.srv.URL+uplink.PathRegister, uplink.ContentType, strings.NewReader("\xa1\x01"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("garbage registration: %d, want 400", resp.StatusCode)
	}
}

func writeSettings(t *testing.T, path string, code string) {
	t.Helper()
	s := settings.Defaults()
	s.PersonalizationCode = code
	if err := settings.Save(path, s); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, d time.Duration, f func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !f() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAgentLifecycle runs the sensor's uplink agent against the collector:
// a wrong code gives a clear state in status.json; a new code in the
// settings file registers; batches drain; the cloud's configuration is
// stored and used at the next start when the cloud is unreachable.
func TestAgentLifecycle(t *testing.T) {
	c := newTestCollector(t)
	cfg := uplink.Config{Revision: "r7", NetworkID: "plant-north", FingerprintConsent: true,
		Classes: asset.Classes{
			Inventoried:    []asset.Range{{Prefix: netip.MustParsePrefix("10.1.0.0/16"), Addressing: asset.AddressingDHCP}},
			NonInventoried: []netip.Prefix{netip.MustParsePrefix("10.99.0.0/16")},
			ExcludedIPs:    []netip.Prefix{netip.MustParsePrefix("10.1.0.250/32")},
			ExcludedMACs:   []string{"00:11:22:33:44:55"},
			Groups:         []asset.Group{{Name: "vendor-cloud", FQDNs: []string{"api.vendor.example"}}},
		},
		HostnameExclusions: []string{"localhost"}, DomainSuffix: "plant.example", DHCPLease: 3600,
		Intervals: uplink.Intervals{Heartbeat: time.Second, NewAssets: 2 * time.Second, Updates: 3 * time.Second, Traffic: time.Second, Config: time.Second},
	}
	data, _ := json.Marshal(cfg)
	os.WriteFile(filepath.Join(c.dir, "config", "default.json"), data, 0o644)

	state := t.TempDir()
	settingsPath := filepath.Join(state, uplink.SettingsFile)
	writeSettings(t, settingsPath, "ABCD-EFGH-JKMN-PQRS") // never issued
	var applied []uplink.Config
	open := func(url string) *uplink.Agent {
		a, err := uplink.OpenAgent(uplink.AgentOptions{StateDir: state, CloudURL: url, CAFile: c.caFile, Version: "t",
			HardwareID: "hw-agent", StatusEvery: 50 * time.Millisecond, Poll: 20 * time.Millisecond,
			RetryMin: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond, Logger: c.quiet,
			OnConfig: func(c uplink.Config) { applied = append(applied, c) }})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	a := open(c.srv.URL + "/") // a trailing slash as typed on a console
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()

	waitFor(t, "the refusal in status.json", 5*time.Second, func() bool {
		s, err := status.Read(state)
		return err == nil && s.Registration == status.Registering &&
			s.CloudError == "code ABCD-EFGH-JKMN-PQRS refused by the cloud: not issued or already used"
	})
	if err := a.Enqueue(time.Now(), uplink.Message{Heartbeat: &uplink.Heartbeat{}}); !errors.Is(err, uplink.ErrNotRegistered) {
		t.Fatalf("an unregistered box queued a report: %v", err)
	}
	// The installer types the right code: the settings file changes.
	time.Sleep(20 * time.Millisecond) // a different mtime
	writeSettings(t, settingsPath, c.code(t))
	waitFor(t, "registration", 5*time.Second, func() bool {
		s, err := status.Read(state)
		return err == nil && s.Registration == status.Registered && s.CloudOK && s.CloudError == ""
	})
	a.SetSensing(true)
	if s, _ := status.Read(state); s.Registration != status.Sensing {
		t.Fatalf("status after SetSensing: %+v", s)
	}
	b := testBatch(t, a.SensorID(), 2)
	if err := a.Enqueue(b.BaseTime(), b.Messages...); err != nil {
		t.Fatal(err)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer dcancel()
	if err := a.Drain(dctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the configuration", 5*time.Second, func() bool { return a.Config().Revision == "r7" })
	var assets []AssetJSON
	getJSON(t, c, "/api/assets?sensor="+a.SensorID(), &assets)
	if len(assets) != 2 {
		t.Fatalf("collector holds %d assets, want 2", len(assets))
	}
	id := a.SensorID()

	// The token is revoked (the same box registered again behind the
	// agent's back): the next send gets 401, the agent registers again
	// with its code, keeps its sensor id, and the batch arrives.
	s, _, _ := settings.Load(settingsPath)
	if _, err := c.client(t).Register(context.Background(), uplink.Registration{Code: s.PersonalizationCode, HardwareID: "hw-agent"}); err != nil {
		t.Fatal(err)
	}
	b = testBatch(t, id, 4)
	if err := a.Enqueue(b.BaseTime(), b.Messages...); err != nil {
		t.Fatal(err)
	}
	if err := a.Drain(dctx); err != nil {
		t.Fatal(err)
	}
	getJSON(t, c, "/api/assets?sensor="+id, &assets)
	if len(assets) != 4 || a.SensorID() != id {
		t.Fatalf("after the token was revoked: %d assets under %s (agent now %s), want 4", len(assets), id, a.SensorID())
	}
	cancel()
	<-done
	a.Close()

	// Next boot, cloud away: the stored registration and configuration hold.
	applied = nil
	c.srv.Close()
	a = open(c.srv.URL + "/")
	defer a.Close()
	if a.SensorID() != id || len(applied) != 1 || applied[0].Revision != "r7" || applied[0].NetworkID != "plant-north" ||
		len(applied[0].Classes.Inventoried) != 1 || applied[0].Classes.Inventoried[0].Addressing != asset.AddressingDHCP ||
		applied[0].Intervals.Updates != 3*time.Second {
		t.Fatalf("at boot without the cloud: sensor %q, configurations applied %+v", a.SensorID(), applied)
	}
	// Reports are spooled while the cloud is away.
	if err := a.Enqueue(time.Now(), uplink.Message{Event: &uplink.Event{Kind: uplink.EventLinkDown}}); err != nil {
		t.Fatal(err)
	}
	if a.Pending() == 0 {
		t.Fatal("nothing pending in the spool")
	}
}

// FuzzBatchEndpoint posts arbitrary bodies to the ingest endpoint with
// valid credentials: never a panic, never a 5xx, and only well-formed
// batches are acknowledged.
func FuzzBatchEndpoint(f *testing.F) {
	dir := f.TempDir()
	st, err := OpenStore(dir)
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	code, _ := st.NewCode()
	cr, err := st.Register(context.Background(), &uplink.Registration{Code: code, HardwareID: "fuzz"})
	if err != nil {
		f.Fatal(err)
	}
	h := (&Server{Store: st, Dir: dir, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxBody: 1 << 16}).Handler()
	b, _ := uplink.NewBatch(cr.SensorID, time.Unix(1_790_000_000, 0))
	b.Messages = []uplink.Message{{Event: &uplink.Event{Kind: uplink.EventLinkUp, Detail: "eth1"}},
		{Heartbeat: &uplink.Heartbeat{State: uplink.StateSensing, Version: "1", CPU: 5, RAM: 9,
			Interfaces: []uplink.InterfaceStat{{Name: "eth1", Link: true}}}}}
	seed, _ := uplink.Marshal(b)
	f.Add(seed)
	enc, _ := uplink.EncodeBatch(b)
	f.Add(enc)
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", uplink.PathBatches, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+cr.Token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%d: %s", rec.Code, rec.Body)
		}
		if rec.Code == 200 {
			if _, err := uplink.DecodeBatch(body); err != nil {
				t.Fatalf("acknowledged a batch the decoder refuses: %v", err)
			}
		}
	})
}

// TestWebPageAndConfig: the page lists what was ingested; the
// configuration endpoint serves the sensor's own file before the default
// and refuses unknown credentials.
func TestWebPageAndConfig(t *testing.T) {
	c := newTestCollector(t)
	ctx := context.Background()
	cl := c.client(t)
	cr, err := cl.Register(ctx, uplink.Registration{Code: c.code(t), HardwareID: "hw-web"})
	if err != nil {
		t.Fatal(err)
	}
	good, _ := uplink.EncodeBatch(testBatch(t, cr.SensorID, 2))
	if _, err := cl.Send(ctx, cr, good); err != nil {
		t.Fatal(err)
	}
	resp, err := c.srv.Client().Get(c.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{cr.SensorID, "Siemens AG", "10.0.0.2", "502/tcp", "capture-drops", "00:1b:1b:00:00:01"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if cfg, err := cl.FetchConfig(ctx, cr); err != nil || cfg.Revision != "collector-default" || !cfg.FingerprintConsent {
		t.Fatalf("built-in default configuration: %+v %v", cfg, err)
	}
	os.WriteFile(filepath.Join(c.dir, "config", "default.json"), []byte(`{"network_id":"all","classes":{"inventoried":[]}}`), 0o644)
	os.WriteFile(filepath.Join(c.dir, "config", cr.SensorID+".json"), []byte(`{"network_id":"north","classes":{"inventoried":[{"prefix":"10.0.0.0/8","addressing":"dhcp"}]},"intervals":{"heartbeat_s":7}}`), 0o644)
	cfg, err := cl.FetchConfig(ctx, cr)
	if err != nil || cfg.NetworkID != "north" || cfg.Revision == "" || cfg.Intervals.Heartbeat != 7*time.Second || cfg.Intervals.Updates != 30*time.Minute {
		t.Fatalf("sensor's configuration: %+v %v", cfg, err)
	}
	if _, err := cl.FetchConfig(ctx, uplink.Credentials{SensorID: cr.SensorID, Token: "nope"}); !errors.Is(err, uplink.ErrUnauthorized) {
		t.Fatalf("configuration with a wrong token: %v", err)
	}
}

// TestAgentOutageEvents: while the cloud is away the agent's small spool
// overflows; when the cloud is back the newest batches arrive with a
// spool-overflow event counting what was lost, and a cloud-unreachable
// event saying for how long.
func TestAgentOutageEvents(t *testing.T) {
	c := newTestCollector(t)
	addr := c.srv.Listener.Addr().String()
	state := t.TempDir()
	writeSettings(t, filepath.Join(state, uplink.SettingsFile), c.code(t))
	a, err := uplink.OpenAgent(uplink.AgentOptions{StateDir: state, CloudURL: c.srv.URL, CAFile: c.caFile, HardwareID: "hw-outage",
		Poll: 20 * time.Millisecond, RetryMin: 20 * time.Millisecond, RetryMax: 50 * time.Millisecond,
		UnreachableAfter: 100 * time.Millisecond, Logger: c.quiet,
		Spool: uplink.Options{SegmentSize: 4096, MaxSegments: 2}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := a.WaitRegistered(wctx); err != nil {
		t.Fatal(err)
	}
	id := a.SensorID()

	c.srv.Close() // the cloud goes away
	for i := 0; i < 100; i++ {
		b := testBatch(t, id, 3)
		if err := a.Enqueue(b.BaseTime(), b.Messages...); err != nil {
			t.Fatal(err)
		}
	}
	if a.Spool().Dropped() == 0 {
		t.Fatalf("100 batches did not overflow a spool of two 4 KiB segments: %+v", a.Spool().Stats())
	}
	time.Sleep(300 * time.Millisecond)
	if s, _ := status.Read(state); s.CloudOK || s.CloudError == "" {
		t.Fatalf("status while the cloud is away: %+v", s)
	}
	b := testBatch(t, id, 1)
	if err := a.Enqueue(b.BaseTime(), b.Messages...); err != nil { // carries the overflow event
		t.Fatal(err)
	}

	// The cloud comes back on the same address.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: (&Server{Store: c.store, Dir: c.dir, Log: c.quiet}).Handler()},
		TLS: &tls.Config{Certificates: c.srv.TLS.Certificates}}
	srv.StartTLS()
	defer srv.Close()
	if err := a.Drain(wctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the cloud-unreachable event", 5*time.Second, func() bool {
		a.Drain(wctx)
		var events []EventJSON
		getJSON(t, &testCollector{srv: srv}, "/api/events?sensor="+id, &events)
		var overflow, unreachable bool
		for _, e := range events {
			overflow = overflow || (e.Kind == "spool-overflow" && e.Count > 0)
			unreachable = unreachable || (e.Kind == "cloud-unreachable" && strings.HasPrefix(e.Detail, "cloud unreachable for "))
		}
		return overflow && unreachable
	})
}
