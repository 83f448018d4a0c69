package menu

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passivesensor/sensor/settings"
	"github.com/passivesensor/sensor/status"
)

// recorder is an Actions that records calls; applyErr is what ApplyNetwork returns.
type recorder struct {
	mu       sync.Mutex
	applied  []settings.Settings
	reboots  int
	resets   int
	applyErr error
}

func (r *recorder) ApplyNetwork(s settings.Settings) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.applied = append(r.applied, s)
	return r.applyErr
}
func (r *recorder) Reboot() error       { r.mu.Lock(); r.reboots++; r.mu.Unlock(); return nil }
func (r *recorder) FactoryReset() error { r.mu.Lock(); r.resets++; r.mu.Unlock(); return nil }

// find walks the menu by labels and returns the item.
func find(t *testing.T, m *Menu, path ...string) *Item {
	t.Helper()
	items := m.Root.Children()
	var it *Item
	for i, l := range path {
		it = nil
		for _, c := range items {
			if c.Label == l {
				it = c
			}
		}
		if it == nil {
			t.Fatalf("no item %q in %v", l, path[:i])
		}
		if it.Kind == Submenu {
			items = it.Children()
		}
	}
	return it
}

func set(t *testing.T, m *Menu, v string, path ...string) {
	t.Helper()
	if err := find(t, m, path...).Set(v); err != nil {
		t.Fatalf("set %v = %q: %v", path, v, err)
	}
}

func TestStaticNetworkSaved(t *testing.T) {
	dir := t.TempDir()
	rec := &recorder{}
	m := New(Env{Dir: dir, Actions: rec})
	set(t, m, "static", "Network", "Mode")
	if err := find(t, m, "Network", "IP").Set("192.168.1.300"); err == nil || !strings.Contains(err.Error(), "IPv4 address like") {
		t.Fatalf("bad IP accepted or unhelpful message: %v", err)
	}
	set(t, m, "010.000.001.020", "Network", "IP")
	set(t, m, "255.255.255.0", "Network", "Mask")
	err := find(t, m, "Network", "Gateway").Set("10.0.2.1")
	if err == nil || err.Error() != "gateway 10.0.2.1 is not inside 10.0.1.0/24" {
		t.Fatalf("gateway outside accepted or message changed: %v", err)
	}
	set(t, m, "10.0.1.1", "Network", "Gateway")
	set(t, m, "10.0.1.53", "Network", "DNS 1")
	if !m.Dirty("network") {
		t.Fatal("draft not marked dirty")
	}
	// Nothing is on disk before Save.
	if s, st, _ := settings.Load(settings.PathIn(dir)); st.Source != settings.Missing || s.Mode != settings.ModeDHCP {
		t.Fatalf("draft written before save: %v %v", s, st)
	}
	msg, err := find(t, m, "Network", "Save & apply").Run()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg, "applied") {
		t.Fatalf("message %q", msg)
	}
	s, _, _ := settings.Load(settings.PathIn(dir))
	if s.Mode != settings.ModeStatic || s.Address != "10.0.1.20/24" || s.Gateway != "10.0.1.1" || len(s.DNS) != 1 || s.DNS[0] != "10.0.1.53" {
		t.Fatalf("stored %v", s)
	}
	if len(rec.applied) != 1 || rec.applied[0].Address != "10.0.1.20/24" {
		t.Fatalf("applied %v", rec.applied)
	}
}

func TestUnreachableOffersPrevious(t *testing.T) {
	dir := t.TempDir()
	path := settings.PathIn(dir)
	if err := settings.Save(path, settings.Settings{Version: settings.CurrentVersion, Mode: settings.ModeStatic,
		Address: "192.168.5.10/24", Gateway: "192.168.5.1", DNS: []string{"192.168.5.1"}}); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{applyErr: errors.New("no answer from cloud.example.com:443")}
	m := New(Env{Dir: dir, Actions: rec})
	set(t, m, "192.168.5.11", "Network", "IP")
	set(t, m, "192.168.5.254", "Network", "Gateway")
	_, err := find(t, m, "Network", "Save & apply").Run()
	if err == nil || !strings.Contains(err.Error(), "unreachable") || !strings.Contains(err.Error(), "Undo network") {
		t.Fatalf("unreachable cloud not reported: %v", err)
	}
	if v := find(t, m, "Network", "Net result").Display(); !strings.Contains(v, "cloud unreachable") {
		t.Fatalf("net result %q", v)
	}
	prev, ok := m.Previous()
	if !ok || prev.Address != "192.168.5.10/24" || prev.Gateway != "192.168.5.1" {
		t.Fatalf("previous %v %v", prev, ok)
	}
	// The other front end (and one started later) offers it too.
	other := New(Env{Dir: dir, Actions: rec})
	if p, ok := other.Previous(); !ok || p.Address != "192.168.5.10/24" {
		t.Fatalf("other front end sees previous %v %v", p, ok)
	}
	if v := find(t, other, "Network", "Net result").Display(); !strings.Contains(v, "Undo network offered") {
		t.Fatalf("other front end's net result %q", v)
	}
	rec.applyErr = nil
	if _, err := find(t, other, "Network", "Undo network").Run(); err != nil {
		t.Fatal(err)
	}
	s, _, _ := settings.Load(path)
	if s.Address != "192.168.5.10/24" || s.Gateway != "192.168.5.1" {
		t.Fatalf("not restored: %v", s)
	}
	if len(rec.applied) != 2 || rec.applied[1].Address != "192.168.5.10/24" {
		t.Fatalf("applied %v", rec.applied)
	}
	if _, err := find(t, m, "Network", "Undo network").Run(); err == nil {
		t.Fatal("restore with nothing to restore succeeded")
	}
	// A change that reaches the cloud leaves nothing to undo.
	set(t, m, "192.168.5.12", "Network", "IP")
	if _, err := find(t, m, "Network", "Save & apply").Run(); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Previous(); ok {
		t.Fatal("previous kept after a change that reached the cloud")
	}
}

func TestProxyAndCode(t *testing.T) {
	dir := t.TempDir()
	m := New(Env{Dir: dir})
	if err := find(t, m, "Proxy", "Port").Set("99999"); err == nil || !strings.Contains(err.Error(), "1-65535") {
		t.Fatalf("bad port: %v", err)
	}
	set(t, m, "proxy.plant.local", "Proxy", "Host")
	set(t, m, "8080", "Proxy", "Port")
	set(t, m, "tech", "Proxy", "User")
	set(t, m, "s3cret", "Proxy", "Password")
	if d := find(t, m, "Proxy", "Password").Display(); d != "******" {
		t.Fatalf("password shown as %q", d)
	}
	if _, err := find(t, m, "Proxy", "Save").Run(); err != nil {
		t.Fatal(err)
	}
	err := find(t, m, "Registration", "Code").Set("ABCD-EFGH-JKMN-PQR0")
	if err == nil || !strings.Contains(err.Error(), "no I, O, 0 or 1") {
		t.Fatalf("bad code: %v", err)
	}
	set(t, m, "abcd efgh jkmn pqrs", "Registration", "Code")
	s, _, _ := settings.Load(settings.PathIn(dir))
	if s.Proxy.Address != "proxy.plant.local:8080" || s.Proxy.User != "tech" || s.Proxy.Password != "s3cret" || s.PersonalizationCode != "ABCD-EFGH-JKMN-PQRS" {
		t.Fatalf("stored %#v", s)
	}
	if v := find(t, m, "Registration", "State").Display(); v != NotRunning {
		t.Fatalf("state without daemon: %q", v)
	}
}

// TestConcurrentFrontEnds: two menus (LCD and serial console) over one
// file: each saves its own section, neither loses the other's change.
func TestConcurrentFrontEnds(t *testing.T) {
	dir := t.TempDir()
	a := New(Env{Dir: dir})
	b := New(Env{Dir: dir})
	set(t, a, "static", "Network", "Mode")
	set(t, a, "10.1.1.5", "Network", "IP")
	set(t, b, "proxy.example.com", "Proxy", "Host")
	set(t, b, "BCDE-FGHJ-KMNP-QRST", "Registration", "Code")
	if _, err := b.Root.Children()[1].Children()[4].Run(); err != nil {
		t.Fatal(err)
	}
	if _, err := find(t, a, "Network", "Save & apply").Run(); err != nil {
		t.Fatal(err)
	}
	s, _, _ := settings.Load(settings.PathIn(dir))
	if s.Address != "10.1.1.5/24" || s.Proxy.Address != "proxy.example.com:3128" || s.PersonalizationCode != "BCDE-FGHJ-KMNP-QRST" {
		t.Fatalf("a change was lost: %v", s)
	}
}

func TestStatusPages(t *testing.T) {
	dir := t.TempDir()
	m := New(Env{Dir: dir, Net: func() NetInfo { return NetInfo{Name: "eth0", IP: "10.0.0.5/24", MAC: "dc:a6:32:01:02:03", Link: true} }})
	nav := NewNav(m.Root)
	for nav.Selected().Label != "Status" {
		nav.Down()
	}
	nav.Open()
	var got []string
	for _, it := range nav.Items() {
		got = append(got, it.Label+"="+it.Display())
	}
	want := "IP=10.0.0.5/24 MAC=dc:a6:32:01:02:03 Link=up Sensor=" + NotRunning
	if strings.Join(got, " ") != want {
		t.Fatalf("status without daemon:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	if err := status.Write(dir, status.Status{Time: time.Now(), Version: "1.4.2", OtherVersion: "1.4.1",
		Registration: status.Sensing, CloudOK: true, Assets: 312,
		Interfaces: []status.Interface{{Name: "eth1", Up: true, RateBps: 12.34e6, Drops: 7}},
		Update:     status.Update{State: "downloading", Version: "1.5.0", Detail: "40%"}}); err != nil {
		t.Fatal(err)
	}
	nav.Refresh()
	got = got[:0]
	for _, it := range nav.Items() {
		got = append(got, it.Label+"="+it.Display())
	}
	want = "IP=10.0.0.5/24 MAC=dc:a6:32:01:02:03 Link=up Cloud=ok Registered=sensing eth1=up 12.3M drop 7 Assets=312 Version=1.4.2 Other=1.4.1"
	if strings.Join(got, " ") != want {
		t.Fatalf("status:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	nav.Back()
	nav.Down()
	nav.Open()
	if nav.Label() != "Update" || nav.Items()[0].Display() != "downloading" || nav.Items()[1].Display() != "1.5.0" {
		t.Fatalf("update page %s %v", nav.Label(), nav.Items()[0].Display())
	}
}

func TestFactoryResetConfirmedTwice(t *testing.T) {
	rec := &recorder{}
	m := New(Env{Dir: t.TempDir(), Actions: rec})
	it := find(t, m, "Factory reset")
	if len(it.Confirm) != 2 {
		t.Fatalf("factory reset asks %d confirmations", len(it.Confirm))
	}
	if _, err := it.Run(); err != nil || rec.resets != 1 {
		t.Fatal(err, rec.resets)
	}
}

func TestParseMask(t *testing.T) {
	for in, want := range map[string]int{"255.255.255.0": 24, "255.255.255.252": 30, "24": 24, "/16": 16, "255.255.254.000": 23} {
		if n, err := ParseMask(in); err != nil || n != want {
			t.Errorf("%s: %d %v", in, n, err)
		}
	}
	for _, in := range []string{"255.0.255.0", "0.0.0.0", "33", "x"} {
		if _, err := ParseMask(in); err == nil {
			t.Errorf("%s accepted", in)
		}
	}
	if MaskString(24) != "255.255.255.0" || MaskString(-1) != "" {
		t.Error("MaskString")
	}
}
