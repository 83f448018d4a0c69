package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passivesensor/sensor/update"
	"github.com/passivesensor/sensor/uplink"
)

// updTestKey stands for the release key; the collector never sees it.
var updTestKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize))

// updRelease builds an artefact (root then kernel) and its manifest signed
// as release sign signs, with a URL of some other server.
func updRelease(t *testing.T, version, board string, size int) (manifestFile, artefactFile string, data []byte, m update.Manifest) {
	t.Helper()
	r := rand.New(rand.NewPCG(uint64(size), uint64(len(version))))
	data = make([]byte, size)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	sum := func(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }
	rootLen := size - 1000
	m = update.Manifest{Version: version, Board: board, URL: "https://cdn.example/u/sensor-" + version + ".upd",
		Size: int64(size), SHA256: sum(data), Parts: []update.Part{
			{Name: update.PartRoot, Size: int64(rootLen), SHA256: sum(data[:rootLen])},
			{Name: "boot/vmlinuz", Offset: int64(rootLen), Size: 1000, SHA256: sum(data[rootLen:])},
		}}
	m.Sign(updTestKey)
	dir := t.TempDir()
	manifestFile, artefactFile = filepath.Join(dir, "m.json"), filepath.Join(dir, "a.upd")
	b, _ := json.MarshalIndent(m, "", "  ")
	os.WriteFile(manifestFile, b, 0o644)
	os.WriteFile(artefactFile, data, 0o644)
	return manifestFile, artefactFile, data, m
}

// updRegister registers a sensor of board and returns its credentials.
func (c *testCollector) updRegister(t *testing.T, hw, board string) uplink.Credentials {
	t.Helper()
	cr, err := c.client(t).Register(context.Background(), uplink.Registration{Code: c.code(t), HardwareID: hw, Version: "1.0.0", Board: board})
	if err != nil {
		t.Fatal(err)
	}
	return cr
}

// updDo does a request over the test server's TLS with token (if any).
func (c *testCollector) updDo(t *testing.T, method, path, token string, body []byte) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, c.srv.URL+path, bytes.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// updBearer adds a bearer token, records each request's Range header and
// answer status, and cuts the first answer's body after cutAfter bytes.
type updBearer struct {
	base     http.RoundTripper
	token    string
	mu       sync.Mutex
	ranges   []string
	statuses []int
	cutAfter int64
}

func (b *updBearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	resp, err := b.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ranges = append(b.ranges, r.Header.Get("Range"))
	b.statuses = append(b.statuses, resp.StatusCode)
	if b.cutAfter > 0 {
		resp.Body = &updCutBody{rc: resp.Body, left: b.cutAfter}
		b.cutAfter = 0
	}
	return resp, nil
}

var errUpdCut = errors.New("connection cut by the test")

type updCutBody struct {
	rc   io.ReadCloser
	left int64
}

func (c *updCutBody) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errUpdCut
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.rc.Read(p)
	c.left -= int64(n)
	return n, err
}

func (c *updCutBody) Close() error { return c.rc.Close() }

func TestUpdatePublishManifestDownloadReport(t *testing.T) {
	c := newTestCollector(t)
	ctx := context.Background()
	pub := updTestKey.Public().(ed25519.PublicKey)
	a := c.updRegister(t, "machine-id=a", "arm64-efi")
	b := c.updRegister(t, "machine-id=b", "arm64-efi")
	pi := c.updRegister(t, "machine-id=p", "rpi4")

	mf, af, data, signed := updRelease(t, "2.0.0", "arm64-efi", 600_000)
	// Refused publishes: an artefact that is not the manifest's, an
	// unsigned manifest, an unknown sensor.
	other := filepath.Join(t.TempDir(), "other.upd")
	os.WriteFile(other, append(append([]byte{}, data[:len(data)-1]...), data[len(data)-1]^1), 0o644)
	mj, _ := os.ReadFile(mf)
	if _, err := c.store.Publish(ctx, c.dir, mj, other, ""); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("publish with another artefact: %v, want a hash mismatch", err)
	}
	unsigned := signed
	unsigned.Signature = ""
	uj, _ := json.Marshal(unsigned)
	if _, err := c.store.Publish(ctx, c.dir, uj, af, ""); err == nil || !strings.Contains(err.Error(), "not signed") {
		t.Fatalf("publish of an unsigned manifest: %v", err)
	}
	if err := publish(c.dir, []string{"-manifest", mf, "-artefact", af, "-sensor", "sensor-nosuch"}); err == nil || !strings.Contains(err.Error(), "unknown sensor") {
		t.Fatalf("publish for an unknown sensor: %v", err)
	}
	if code, _ := c.updDo(t, "GET", PathUpdateManifest+"?board=arm64-efi&version=1.0.0", a.Token, nil); code != http.StatusNoContent {
		t.Fatalf("manifest before any publish: %d, want 204", code)
	}

	// Publish for the board (through the command line), and 2.1.0 for
	// sensor b alone.
	if err := publish(c.dir, []string{"-manifest", mf, "-artefact", af}); err != nil {
		t.Fatal(err)
	}
	mf2, af2, _, _ := updRelease(t, "2.1.0", "arm64-efi", 300_000)
	if err := publish(c.dir, []string{"-manifest", mf2, "-artefact", af2, "-sensor", b.SensorID}); err != nil {
		t.Fatal(err)
	}

	manifest := func(cr uplink.Credentials, board, version string) (int, update.Manifest) {
		code, body := c.updDo(t, "GET", PathUpdateManifest+"?board="+board+"&version="+version, cr.Token, nil)
		var m update.Manifest
		if code == http.StatusOK {
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatalf("manifest %s: %v", body, err)
			}
		}
		return code, m
	}
	code, m := manifest(a, "arm64-efi", "1.0.0")
	if code != http.StatusOK || m.Version != "2.0.0" {
		t.Fatalf("sensor a's manifest: %d %+v, want 2.0.0", code, m)
	}
	if want := c.srv.URL + PathUpdateArtefacts + signed.SHA256 + ".upd"; m.URL != want {
		t.Fatalf("artefact URL %q, want the collector's own %q", m.URL, want)
	}
	if err := m.Check(pub, "arm64-efi", "1.0.0"); err != nil {
		t.Fatalf("the box's checks refuse the served manifest: %v", err)
	}
	if code, m := manifest(b, "arm64-efi", "1.0.0"); code != http.StatusOK || m.Version != "2.1.0" {
		t.Fatalf("sensor b's own order: %d %+v, want 2.1.0", code, m)
	}
	if code, _ := manifest(a, "arm64-efi", "2.0.0"); code != http.StatusNoContent {
		t.Fatalf("sensor already on 2.0.0: %d, want 204", code)
	}
	if code, _ := manifest(a, "arm64-efi", "2.0.1"); code != http.StatusNoContent {
		t.Fatalf("sensor already past 2.0.0 (no downgrade ordered): %d, want 204", code)
	}
	if code, m := manifest(pi, "rpi4", "1.0.0"); code != http.StatusNoContent {
		t.Fatalf("sensor of another board: %d %+v, want 204", code, m)
	}
	if code, _ := c.updDo(t, "GET", PathUpdateManifest+"?board=arm64-efi&version=1.0.0", "", nil); code != http.StatusUnauthorized {
		t.Fatalf("manifest without credentials: %d, want 401", code)
	}
	if code, _ := c.updDo(t, "GET", PathUpdateManifest+"?board=arm64-efi&version=1.0.0", strings.Repeat("ab", 32), nil); code != http.StatusUnauthorized {
		t.Fatalf("manifest with a token no sensor holds: %d, want 401", code)
	}

	// Download through the box's Fetcher, cut after 200 000 bytes, then
	// resumed with a range request.
	tr := &updBearer{base: c.srv.Client().Transport, token: a.Token, cutAfter: 200_000}
	f := &update.Fetcher{Client: &http.Client{Transport: tr}, Dir: t.TempDir()}
	if _, err := f.Fetch(ctx, m); !errors.Is(err, errUpdCut) {
		t.Fatalf("first download: %v, want it cut", err)
	}
	path, err := f.Fetch(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, data) {
		t.Fatalf("downloaded %d bytes differ from the published artefact", len(got))
	}
	if len(tr.ranges) != 2 || tr.ranges[0] != "" || tr.ranges[1] != "bytes=200000-" || tr.statuses[1] != http.StatusPartialContent {
		t.Fatalf("requests: ranges %q, statuses %v; want a full one, then bytes=200000- answered 206", tr.ranges, tr.statuses)
	}
	art := PathUpdateArtefacts + signed.SHA256 + ".upd"
	for _, tc := range []struct {
		path, token string
		want        int
	}{
		{art, "", http.StatusUnauthorized},
		{art, "wrong", http.StatusUnauthorized},
		{PathUpdateArtefacts + "..%2fcollector.db", a.Token, http.StatusNotFound},
		{PathUpdateArtefacts + strings.Repeat("0", 64) + ".upd", a.Token, http.StatusNotFound},
	} {
		if code, _ := c.updDo(t, "GET", tc.path, tc.token, nil); code != tc.want {
			t.Errorf("GET %s with token %q: %d, want %d", tc.path, tc.token, code, tc.want)
		}
	}

	// Reports.
	for _, ph := range []string{update.PhaseDownloading, update.PhaseArmed} {
		rep, _ := json.Marshal(UpdateReport{Running: "1.0.0", Version: "2.0.0", Phase: ph, Slot: "B"})
		if code, body := c.updDo(t, "POST", PathUpdateReport, a.Token, rep); code != http.StatusNoContent {
			t.Fatalf("report %s: %d %s", ph, code, body)
		}
	}
	rep, _ := json.Marshal(UpdateReport{Running: "2.0.0", Version: "2.0.0", Phase: update.PhaseCommitted, Slot: "B", Detail: "healthy after 31s"})
	if code, body := c.updDo(t, "POST", PathUpdateReport, a.Token, rep); code != http.StatusNoContent {
		t.Fatalf("report committed: %d %s", code, body)
	}
	for _, tc := range []struct {
		name, token string
		body        []byte
		want        int
	}{
		{"wrong token", "wrong", rep, http.StatusUnauthorized},
		{"no token", "", rep, http.StatusUnauthorized},
		{"oversize", a.Token, []byte(`{"version":"2.0.0","phase":"failed","detail":"` + strings.Repeat("x", MaxReportBody) + `"}`), http.StatusRequestEntityTooLarge},
		{"unknown phase", a.Token, []byte(`{"version":"2.0.0","phase":"exploded"}`), http.StatusBadRequest},
		{"malformed", a.Token, []byte(`{"version":`), http.StatusBadRequest},
	} {
		if code, body := c.updDo(t, "POST", PathUpdateReport, tc.token, tc.body); code != tc.want {
			t.Errorf("report %s: %d %s, want %d", tc.name, code, body, tc.want)
		}
	}
	if code, _ := manifest(a, "arm64-efi", "2.0.0"); code != http.StatusNoContent {
		t.Fatalf("manifest after the commit: %d, want 204", code)
	}

	_, body := c.updDo(t, "GET", "/api/updates", "", nil)
	var ups UpdatesJSON
	if err := json.Unmarshal(body, &ups); err != nil {
		t.Fatal(err)
	}
	if len(ups.Orders) != 2 || len(ups.Reports) != 3 || ups.Reports[0].Phase != update.PhaseCommitted || ups.Reports[0].Sensor != a.SensorID ||
		ups.Reports[2].Phase != update.PhaseDownloading {
		t.Fatalf("/api/updates: %s", body)
	}
	_, body = c.updDo(t, "GET", "/api/sensors", "", nil)
	var sensors []SensorJSON
	json.Unmarshal(body, &sensors)
	found := false
	for _, s := range sensors {
		if s.ID == a.SensorID {
			found = true
			if s.Version != "2.0.0" || s.Update == nil || s.Update.Phase != update.PhaseCommitted {
				t.Fatalf("sensor a in /api/sensors: %+v, want version 2.0.0 and last phase committed", s)
			}
		} else if s.Update != nil {
			t.Fatalf("sensor %s shows an update it never reported: %+v", s.ID, s.Update)
		}
	}
	if !found {
		t.Fatalf("sensor a missing from %s", body)
	}
	_, body = c.updDo(t, "GET", "/api/events?sensor="+a.SensorID, "", nil)
	if !strings.Contains(string(body), "update 2.0.0 committed (slot B, running 2.0.0): healthy after 31s") {
		t.Fatalf("events lack the committed step: %s", body)
	}
	_, body = c.updDo(t, "GET", "/", "", nil)
	for _, want := range []string{"2.0.0 committed (slot B", "board arm64-efi", "sensor " + b.SensorID} {
		if !strings.Contains(string(body), want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

func TestParseManifestRefusals(t *testing.T) {
	_, _, _, m := updRelease(t, "3.0.0", "arm64-efi", 5000)
	for name, change := range map[string]func(m *update.Manifest){
		"no version":   func(m *update.Manifest) { m.Version = "" },
		"no board":     func(m *update.Manifest) { m.Board = "" },
		"zero size":    func(m *update.Manifest) { m.Size = 0 },
		"huge size":    func(m *update.Manifest) { m.Size = update.MaxArtefactSize + 1 },
		"bad hash":     func(m *update.Manifest) { m.SHA256 = strings.ToUpper(m.SHA256) },
		"short sig":    func(m *update.Manifest) { m.Signature = "AAAA" },
		"no parts":     func(m *update.Manifest) { m.Parts = nil },
		"no signature": func(m *update.Manifest) { m.Signature = "" },
	} {
		mm := m
		change(&mm)
		b, _ := json.Marshal(mm)
		if _, err := ParseManifest(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	b, _ := json.Marshal(m)
	if _, err := ParseManifest(b); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseManifest([]byte("{")); err == nil {
		t.Error("truncated JSON accepted")
	}
}

// The collector tells sensors when to ask for an order again (Retry-After),
// with nothing ordered and with an order; without -update-poll it says
// nothing and the sensor keeps its own interval.
func TestUpdateManifestSaysWhenToAskAgain(t *testing.T) {
	c := newTestCollector(t)
	cr := c.updRegister(t, "hw-poll", "arm64-efi")
	srv := httptest.NewTLSServer((&Server{Store: c.store, Dir: c.dir, Log: c.quiet, UpdatePoll: 90 * time.Second}).Handler())
	t.Cleanup(srv.Close)
	ask := func(base string, client *http.Client) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, base+PathUpdateManifest+"?board=arm64-efi&version=1.0.0", nil)
		req.Header.Set("Authorization", "Bearer "+cr.Token)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	if code, ra := ask(srv.URL, srv.Client()); code != http.StatusNoContent || ra != "90" {
		t.Fatalf("nothing ordered: %d, Retry-After %q; want 204 and 90", code, ra)
	}
	mf, af, _, _ := updRelease(t, "1.1.0", "arm64-efi", 5000)
	b, _ := os.ReadFile(mf)
	if _, err := c.store.Publish(context.Background(), c.dir, b, af, ""); err != nil {
		t.Fatal(err)
	}
	if code, ra := ask(srv.URL, srv.Client()); code != http.StatusOK || ra != "90" {
		t.Fatalf("ordered: %d, Retry-After %q; want 200 and 90", code, ra)
	}
	if code, ra := ask(c.srv.URL, c.srv.Client()); code != http.StatusOK || ra != "" {
		t.Fatalf("without a poll interval: %d, Retry-After %q; want 200 and none", code, ra)
	}
}
