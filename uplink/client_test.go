package uplink

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passivesensor/sensor/asset"
)

func TestBackoffGrowsWithJitter(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: 2 * time.Second}
	var prevCeil time.Duration
	for i := 0; i < 12; i++ {
		ceil := min(b.Min<<i, b.Max)
		d := b.Next()
		if d < ceil/2 || d > ceil {
			t.Fatalf("attempt %d: wait %v outside [%v, %v]", i, d, ceil/2, ceil)
		}
		if ceil < prevCeil {
			t.Fatalf("attempt %d: ceiling shrank", i)
		}
		prevCeil = ceil
	}
	b.Reset()
	if d := b.Next(); d > b.Min {
		t.Fatalf("after Reset: %v, want at most %v", d, b.Min)
	}
	// Jitter: a fleet does not retry in step.
	seen := map[time.Duration]bool{}
	for i := 0; i < 20; i++ {
		c := Backoff{Min: time.Second, Max: time.Minute}
		seen[c.Next()] = true
	}
	if len(seen) < 5 {
		t.Fatalf("20 first waits take only %d values: no jitter", len(seen))
	}
}

func TestParseCPU(t *testing.T) {
	a, err := parseCPU([]byte("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := parseCPU([]byte("cpu  200 0 100 900 50 0 0 0 0 0\n"))
	if a.Busy != 150 || a.Total != 1000 || CPUPercent(a, b) != 60 {
		t.Fatalf("samples %+v %+v: %d%%, want busy 150 of 1000 then 60%%", a, b, CPUPercent(a, b))
	}
	if _, err := parseCPU([]byte("intr 1 2 3\n")); err == nil {
		t.Fatal("a file without the cpu line parsed")
	}
	if _, err := ReadCPU(); err != nil {
		t.Fatalf("this machine's /proc/stat: %v", err)
	}
	if p, err := RAMPercent(); err != nil || p > 100 {
		t.Fatalf("this machine's /proc/meminfo: %d %v", p, err)
	}
}

func TestReporterNewUpdateFull(t *testing.T) {
	now := time.Unix(1_790_000_000, 0)
	mk := func(i int, vendor string) asset.Asset {
		return asset.Asset{ID: "ip:10.0.0." + string(rune('0'+i)), IPs: []netip.Addr{netip.AddrFrom4([4]byte{10, 0, 0, byte('0' + i)})},
			Vendor: vendor, Attrs: map[string]string{"dhcp.vendor_class": "MSFT 5.0"}, FirstSeen: now, LastSeen: now}
	}
	r := NewReporter(false)
	inv := []asset.Asset{mk(1, "Siemens AG"), mk(2, "")}
	msgs := r.Report(ReportNew, inv, now.Unix())
	if len(msgs) != 1 || len(msgs[0].AssetReport.Assets) != 2 || msgs[0].AssetReport.Reason != ReportNew {
		t.Fatalf("first new report: %+v", msgs)
	}
	if msgs[0].AssetReport.Assets[0].Attrs != nil {
		t.Fatal("raw discovery data sent without consent")
	}
	// Seen again, only LastSeen moved: nothing new, nothing changed.
	inv[0].LastSeen = now.Add(time.Minute)
	inv = append(inv, mk(3, "Moxa"))
	msgs = r.Report(ReportNew, inv, now.Unix())
	if len(msgs) != 1 || len(msgs[0].AssetReport.Assets) != 1 || msgs[0].AssetReport.Assets[0].Vendor != "Moxa" {
		t.Fatalf("second new report: %+v", msgs)
	}
	if msgs := r.Report(ReportUpdate, inv, now.Unix()); len(msgs) != 0 {
		t.Fatalf("update with no attribute changed: %+v", msgs)
	}
	inv[1].Vendor = "Rockwell Automation"
	msgs = r.Report(ReportUpdate, inv, now.Unix())
	if len(msgs) != 1 || len(msgs[0].AssetReport.Assets) != 1 || msgs[0].AssetReport.Assets[0].Vendor != "Rockwell Automation" {
		t.Fatalf("update report: %+v", msgs)
	}
	r.Consent = true
	msgs = r.Report(ReportFull, inv, now.Unix())
	if len(msgs) != 1 || len(msgs[0].AssetReport.Assets) != 3 || msgs[0].AssetReport.Assets[0].Attrs["dhcp.vendor_class"] != "MSFT 5.0" {
		t.Fatalf("full report with consent: %+v", msgs)
	}
	// Large inventories split into several messages.
	var many []asset.Asset
	for i := 0; i < MaxRecordsPerMessage+5; i++ {
		a := mk(1, "x")
		a.ID = "ip:" + netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}).String()
		a.IPs = []netip.Addr{netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})}
		many = append(many, a)
	}
	if msgs := NewReporter(true).Report(ReportFull, many, now.Unix()); len(msgs) != 2 || len(msgs[1].AssetReport.Assets) != 5 {
		t.Fatalf("%d assets split into %d messages", len(many), len(msgs))
	}
	if msgs := TrafficMessages(nil, now, now, now.Unix()); len(msgs) != 1 || len(msgs[0].TrafficReport.Records) != 0 {
		t.Fatalf("an empty interval gives %+v, want one empty traffic report", msgs)
	}
	tr := sampleTraffic(MaxRecordsPerMessage+1, rand.New(rand.NewSource(1)))
	if msgs := TrafficMessages(tr, now.Add(-time.Minute), now, now.Unix()); len(msgs) != 2 || msgs[0].TrafficReport.Start != -60 {
		t.Fatalf("%d traffic records: %d messages", len(tr), len(msgs))
	}
}

func TestConfigJSON(t *testing.T) {
	c := DefaultConfig()
	c.Intervals.Updates = 90 * time.Second
	c.NetworkID = "north"
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"updates_s":90`) {
		t.Fatalf("intervals not in seconds: %s", data)
	}
	back, err := ParseConfig(data)
	if err != nil || back.Intervals != c.Intervals || back.NetworkID != "north" || len(back.Classes.Inventoried) != len(c.Classes.Inventoried) {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	for name, bad := range map[string]string{
		"addressing":     `{"classes":{"inventoried":[{"prefix":"10.0.0.0/8","addressing":"bootp"}]}}`,
		"excluded MAC":   `{"classes":{"inventoried":[],"excluded_macs":["zz"]}}`,
		"negative lease": `{"classes":{"inventoried":[]},"dhcp_lease_s":-1}`,
		"not JSON":       `{"classes":`,
	} {
		if _, err := ParseConfig([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	dir := t.TempDir()
	if got, err := LoadConfig(dir); err != nil || got.Revision != "default" {
		t.Fatalf("no cached file: %+v %v", got, err)
	}
	if err := SaveConfig(dir, back); err != nil {
		t.Fatal(err)
	}
	if got, err := LoadConfig(dir); err != nil || got.NetworkID != "north" {
		t.Fatalf("cached: %+v %v", got, err)
	}
	os.WriteFile(filepath.Join(dir, ConfigFile), []byte("{"), 0o644)
	if got, err := LoadConfig(dir); err == nil || got.Revision != "default" {
		t.Fatalf("a torn cache gives %+v %v, want the defaults and an error", got, err)
	}
}

// TestClientVerifiesCertificates: without the CA the TLS handshake fails;
// with it the request goes through.
func TestClientVerifiesCertificates(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"batch":"00","duplicate":false}`))
	}))
	defer srv.Close()
	c, err := NewClient(srv.URL, ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(context.Background(), Credentials{Token: "t"}, []byte{0xa0}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("an unknown CA was accepted: %v", err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644)
	c, err = NewClient(srv.URL, ClientOptions{CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(context.Background(), Credentials{Token: "t"}, []byte{0xa0}); err != nil {
		t.Fatal(err)
	}
	if _, err := NewClient("http://"+strings.TrimPrefix(srv.URL, "https://"), ClientOptions{}); err == nil {
		t.Fatal("a plain http cloud URL was accepted")
	}
	empty := filepath.Join(t.TempDir(), "empty.pem")
	os.WriteFile(empty, []byte("not a certificate"), 0o644)
	if _, err := NewClient(srv.URL, ClientOptions{CAFile: empty}); err == nil {
		t.Fatal("a CA file without certificates was accepted")
	}
	var he *HTTPError
	srv2 := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"unknown or revoked sensor credentials"}`, http.StatusUnauthorized)
	}))
	defer srv2.Close()
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv2.Certificate().Raw}), 0o644)
	c, _ = NewClient(srv2.URL, ClientOptions{CAFile: ca})
	_, err = c.Send(context.Background(), Credentials{Token: "t"}, []byte{0xa0})
	if !errors.Is(err, ErrUnauthorized) || errors.As(err, &he) {
		t.Fatalf("401: %v", err)
	}
}

func TestHardwareID(t *testing.T) {
	id := HardwareID("")
	if id == "" {
		t.Fatal("empty hardware id")
	}
	if id != HardwareID("") {
		t.Fatal("hardware id not stable")
	}
	t.Logf("this machine: %s", id)
}

// FuzzParseConfig: the configuration parser never panics and what it
// accepts validates.
func FuzzParseConfig(f *testing.F) {
	d, _ := json.Marshal(DefaultConfig())
	f.Add(d)
	f.Add([]byte(`{"classes":{"inventoried":[{"prefix":"10.0.0.0/8","addressing":"dhcp"}],"monitored_external":[{"name":"x","fqdns":["a.b"]}]},"intervals":{"heartbeat_s":5}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted an invalid configuration: %v", err)
		}
		inv := asset.NewInventory(asset.DefaultClasses())
		if err := inv.SetClasses(c.Classes); err != nil {
			t.Fatalf("accepted classes the inventory refuses: %v", err)
		}
	})
}
