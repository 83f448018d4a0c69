package settings

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func tempPath(t testing.TB) string {
	return filepath.Join(t.TempDir(), "sensor", "settings.json")
}

// listDir returns the names in dir, sorted.
func listDir(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestLoadMissing(t *testing.T) {
	p := tempPath(t)
	s, st, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Equal(Defaults()) || s.Mode != ModeDHCP {
		t.Errorf("got %v, want defaults", s)
	}
	if st.Source != Missing || st.Reason != "no settings file at "+p+", using defaults (DHCP)" || st.SetAside != "" {
		t.Errorf("status %+v", st)
	}
}

func TestRoundTrip(t *testing.T) {
	p := tempPath(t)
	want := validStatic()
	got, err := Update(p, func(s *Settings) error { *s = want.Clone(); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(want) {
		t.Errorf("Update returned %#v, want %#v", got, want)
	}
	s, st, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Source != FromFile || st.Reason != "" || st.FromVersion != CurrentVersion {
		t.Errorf("status %+v", st)
	}
	if !s.Equal(want) {
		t.Errorf("loaded %#v, want %#v", s, want)
	}
	if s.Proxy.Password != "hunter2" {
		t.Errorf("password not kept")
	}
	// The file holds the proxy password: only its owner may read it.
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("settings file mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	// Only the file and its lock are left in the directory.
	if names := listDir(t, filepath.Dir(p)); strings.Join(names, " ") != "settings.json settings.json.lock" {
		t.Errorf("directory holds %v", names)
	}
	// Save and Update normalize: lower-case code and upper-case name are accepted.
	if _, err := Update(p, func(s *Settings) error {
		s.PersonalizationCode, s.Name = "wxyz-2345-6789-abcd", "Sensor-02"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s, _, _ = Load(p)
	if s.PersonalizationCode != "WXYZ-2345-6789-ABCD" || s.Name != "sensor-02" {
		t.Errorf("not normalized: %v", s)
	}
	// Save replaces the whole record.
	if err := Save(p, Defaults()); err != nil {
		t.Fatal(err)
	}
	if s, _, _ = Load(p); !s.Equal(Defaults()) {
		t.Errorf("after Save(defaults): %v", s)
	}
}

func TestUpdateRejects(t *testing.T) {
	p := tempPath(t)
	if err := Save(p, validStatic()); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(p)
	// An invalid change is refused with the technician's message; nothing is written.
	_, err := Update(p, func(s *Settings) error { s.Gateway = "10.0.1.1"; return nil })
	var ve *ValidationError
	if !errors.As(err, &ve) || err.Error() != "gateway 10.0.1.1 is not inside 10.0.0.0/24" {
		t.Errorf("got %v, want the gateway ValidationError", err)
	}
	// An error from the change function is passed back; nothing is written.
	myErr := errors.New("operator cancelled")
	if _, err := Update(p, func(s *Settings) error { s.Name = "other"; return myErr }); err != myErr {
		t.Errorf("got %v, want %v", err, myErr)
	}
	after, _ := os.ReadFile(p)
	if !bytes.Equal(before, after) {
		t.Errorf("file changed by a refused update:\n%s\n%s", before, after)
	}
}

func TestLoadBadFiles(t *testing.T) {
	for _, tc := range []struct{ name, data, reason string }{
		{"garbage", "\x00\x01garbage",
			"settings file is not valid JSON (invalid character '\\x00' looking for beginning of value); using defaults (DHCP)"},
		{"empty", "",
			"settings file is not valid JSON (unexpected end of JSON input); using defaults (DHCP)"},
		{"truncated", `{"version":2,"mode":"dhcp"`,
			"settings file is not valid JSON (unexpected end of JSON input); using defaults (DHCP)"},
		{"newer", `{"version":3,"mode":"dhcp","wifi":"on"}`,
			"settings file version 3 is newer than this software understands (2); using defaults (DHCP)"},
		{"unknown version", `{"version":0}`,
			"settings file version 0 is not a known version; using defaults (DHCP)"},
		{"invalid values", `{"version":2,"mode":"static","address":"10.0.0.5/24","gateway":"10.0.1.1"}`,
			"settings file has invalid values: gateway 10.0.1.1 is not inside 10.0.0.0/24; using defaults (DHCP)"},
		{"unknown field", `{"version":2,"mode":"dhcp","colour":"red"}`,
			`settings file does not match version 2 (json: unknown field "colour"); using defaults (DHCP)`},
		{"wrong type", `{"version":2,"mode":"dhcp","dns":"8.8.8.8"}`,
			"settings file does not match version 2 (json: cannot unmarshal string into Go struct field Settings.dns of type []string); using defaults (DHCP)"},
		{"extra data", `{"version":2,"mode":"dhcp"} {}`,
			"settings file is not valid JSON (invalid character '{' after top-level value); using defaults (DHCP)"},
		{"v1 bad netmask", `{"version":1,"dhcp":false,"ip":"10.0.0.5","netmask":"255.0.255.0"}`,
			`settings file version 1 cannot be converted: netmask "255.0.255.0": mask bits are not contiguous; using defaults (DHCP)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tempPath(t)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte(tc.data), 0o644); err != nil {
				t.Fatal(err)
			}
			s, st, err := Load(p)
			if err != nil {
				t.Fatal(err)
			}
			if !s.Equal(Defaults()) {
				t.Errorf("got %v, want defaults", s)
			}
			if st.Source != Recovered || st.Reason != tc.reason {
				t.Errorf("status %v %q\nwant reason %q", st.Source, st.Reason, tc.reason)
			}
			if !strings.HasPrefix(st.SetAside, p+".corrupt-") {
				t.Fatalf("set aside as %q", st.SetAside)
			}
			kept, err := os.ReadFile(st.SetAside)
			if err != nil || string(kept) != tc.data {
				t.Errorf("kept file %q (%v), want the original bytes %q", kept, err, tc.data)
			}
			if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("bad file still at %s", p)
			}
			// The next Load says the file is missing; an Update writes a good one.
			if _, st, _ := Load(p); st.Source != Missing {
				t.Errorf("second Load: %v", st)
			}
			if _, err := Update(p, func(s *Settings) error { s.Name = "fixed"; return nil }); err != nil {
				t.Fatal(err)
			}
			if s, st, _ := Load(p); st.Source != FromFile || s.Name != "fixed" {
				t.Errorf("after repair: %v %v", s, st)
			}
		})
	}
}

func TestBadFileTwiceKeepsBoth(t *testing.T) {
	p := tempPath(t)
	os.MkdirAll(filepath.Dir(p), 0o755)
	var asides []string
	for i := range 2 {
		data := fmt.Sprintf("bad %d", i)
		os.WriteFile(p, []byte(data), 0o644)
		_, st, err := Load(p)
		if err != nil {
			t.Fatal(err)
		}
		asides = append(asides, st.SetAside)
		if b, _ := os.ReadFile(st.SetAside); string(b) != data {
			t.Errorf("kept %q, want %q", b, data)
		}
	}
	if asides[0] == asides[1] {
		t.Errorf("both bad files kept as %s", asides[0])
	}
}

func TestMigrateV1(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		want       Settings
	}{
		{"static", `{"dhcp":false,"ip":"192.168.1.20","netmask":"255.255.255.0","gateway":"192.168.1.1",
		  "dns":"192.168.1.53, 8.8.8.8","proxy":"proxy:3128","proxy_user":"bob","proxy_pass":"pw",
		  "code":"abcd efgh jkmn pqrs","cloud":"https://cloud.example.com","name":"Plant-7"}`,
			Settings{Version: 2, Mode: ModeStatic, Address: "192.168.1.20/24", Gateway: "192.168.1.1",
				DNS: []string{"192.168.1.53", "8.8.8.8"}, Proxy: Proxy{Address: "proxy:3128", User: "bob", Password: "pw"},
				PersonalizationCode: "ABCD-EFGH-JKMN-PQRS", CloudURL: "https://cloud.example.com", Name: "plant-7"}},
		{"dhcp explicit version", `{"version":1,"dhcp":true}`, Defaults()},
		{"no dhcp flag, ip set", `{"ip":"10.1.2.3","netmask":"255.255.0.0"}`,
			Settings{Version: 2, Mode: ModeStatic, Address: "10.1.2.3/16"}},
		{"no mask", `{"ip":"10.1.2.3"}`, Settings{Version: 2, Mode: ModeStatic, Address: "10.1.2.3/32"}},
		{"empty object", `{}`, Defaults()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tempPath(t)
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, []byte(tc.data), 0o644)
			s, st, err := Load(p)
			if err != nil {
				t.Fatal(err)
			}
			if st.Source != Migrated || st.FromVersion != 1 ||
				st.String() != "migrated: settings file version 1 converted to version 2; it is rewritten at the next change" {
				t.Errorf("status %v", st)
			}
			if !s.Equal(tc.want) {
				t.Errorf("got  %#v\nwant %#v", s, tc.want)
			}
			// An Update rewrites it at the current version, keeping everything.
			if _, err := Update(p, func(*Settings) error { return nil }); err != nil {
				t.Fatal(err)
			}
			s, st, _ = Load(p)
			if st.Source != FromFile || !s.Equal(tc.want) {
				t.Errorf("after rewrite: %v %#v", st, s)
			}
		})
	}
}

// worker is one of the concurrent updaters: each owns one field and stores
// a counter in it. Before each change it checks its field still holds the
// value it last wrote; a lost update (another writer saving a stale copy)
// would show as an older value.
type worker struct {
	get func(*Settings) string
	set func(*Settings, int)
	val func(int) string
}

var workers = []worker{
	{func(s *Settings) string { return s.Name }, func(s *Settings, k int) { s.Name = fmt.Sprintf("w-%d", k) },
		func(k int) string { return fmt.Sprintf("w-%d", k) }},
	{func(s *Settings) string { return s.Proxy.User }, func(s *Settings, k int) { s.Proxy.User = fmt.Sprintf("u%d", k) },
		func(k int) string { return fmt.Sprintf("u%d", k) }},
	{func(s *Settings) string { return s.CloudURL }, func(s *Settings, k int) { s.CloudURL = fmt.Sprintf("https://c%d.example", k) },
		func(k int) string { return fmt.Sprintf("https://c%d.example", k) }},
	{func(s *Settings) string { return s.Proxy.Address }, func(s *Settings, k int) { s.Proxy.Address = fmt.Sprintf("proxy:%d", k+1) },
		func(k int) string { return fmt.Sprintf("proxy:%d", k+1) }},
}

// concurrentStart is the record every concurrency test starts from (value 0 in every worker's field).
func concurrentStart() Settings {
	s := Defaults()
	for _, w := range workers {
		w.set(&s, 0)
	}
	return s
}

// runWorker does n updates as worker i on path.
func runWorker(path string, i, n int) error {
	w := workers[i]
	for k := 1; k <= n; k++ {
		_, err := Update(path, func(s *Settings) error {
			if got, want := w.get(s), w.val(k-1); got != want {
				return fmt.Errorf("worker %d update %d: lost update: field holds %q, want %q", i, k, got, want)
			}
			w.set(s, k)
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func checkFinal(t *testing.T, path string, nw, n int) {
	t.Helper()
	s, st, err := Load(path)
	if err != nil || st.Source != FromFile {
		t.Fatalf("final Load: %v %v", st, err)
	}
	for i := range nw {
		if got, want := workers[i].get(&s), workers[i].val(n); got != want {
			t.Errorf("worker %d's last change lost: %q, want %q", i, got, want)
		}
	}
}

func TestUpdateConcurrentGoroutines(t *testing.T) {
	p := tempPath(t)
	if err := Save(p, concurrentStart()); err != nil {
		t.Fatal(err)
	}
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, len(workers))
	for i := range workers {
		wg.Go(func() {
			if err := runWorker(p, i, n); err != nil {
				errs <- err
			}
		})
	}
	// Readers meanwhile never see anything but a complete, valid record.
	stop := make(chan struct{})
	var rg sync.WaitGroup
	rg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, st, err := Load(p); err != nil || st.Source != FromFile {
				errs <- fmt.Errorf("concurrent Load: %v %v", st, err)
				return
			}
		}
	})
	wg.Wait()
	close(stop)
	rg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	checkFinal(t, p, len(workers), n)
}

const helperEnv = "SETTINGS_TEST_HELPER"

// TestHelperProcess is not a test: it is the body of the helper processes
// TestUpdateTwoProcesses starts by re-running the test binary.
func TestHelperProcess(t *testing.T) {
	spec := os.Getenv(helperEnv)
	if spec == "" {
		t.Skip("helper process only")
	}
	parts := strings.Split(spec, "|")
	i, _ := strconv.Atoi(parts[1])
	n, _ := strconv.Atoi(parts[2])
	if err := runWorker(parts[0], i, n); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	os.Exit(0)
}

func TestUpdateTwoProcesses(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Skipf("cannot find the test binary: %v", err)
	}
	p := tempPath(t)
	if err := Save(p, concurrentStart()); err != nil {
		t.Fatal(err)
	}
	const n = 40
	const procs = 2 // the LCD menu and the serial console
	cmds := make([]*exec.Cmd, procs)
	outs := make([]*bytes.Buffer, procs)
	for i := range procs {
		cmd := exec.Command(exe, "-test.run=^TestHelperProcess$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%d|%d", helperEnv, p, i, n))
		outs[i] = new(bytes.Buffer)
		cmd.Stdout, cmd.Stderr = outs[i], outs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = cmd
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("helper %d: %v\n%s", i, err, outs[i])
		}
	}
	checkFinal(t, p, procs, n)
}

func writeRaw(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestPowerCut stops the atomic write at every step (and the data write at
// every length) as a power cut would, leaving whatever was on disk, and
// checks Load returns the complete old or the complete new record.
func TestPowerCut(t *testing.T) {
	old := validStatic()
	nw := validStatic()
	nw.Name, nw.DNS, nw.Proxy.Password = "after-the-cut", []string{"9.9.9.9"}, "new-pass"
	newData, err := Marshal(nw)
	if err != nil {
		t.Fatal(err)
	}
	type cut struct {
		at   crashPoint
		keep int
	}
	var cuts []cut
	cuts = append(cuts, cut{afterCreate, -1})
	for n := 0; n <= len(newData); n++ {
		cuts = append(cuts, cut{afterWrite, n})
	}
	cuts = append(cuts, cut{afterSync, -1}, cut{afterRename, -1}, cut{afterDirSync, -1})
	for _, c := range cuts {
		p := tempPath(t)
		if err := Save(p, old); err != nil {
			t.Fatal(err)
		}
		err := writeAtomic(p, newData, func(at crashPoint) (int, error) {
			if at == c.at {
				return c.keep, errCrash
			}
			return -1, nil
		})
		if err != errCrash {
			t.Fatalf("cut %v: writeAtomic returned %v", c, err)
		}
		s, st, err := Load(p)
		if err != nil {
			t.Fatalf("cut %v: %v", c, err)
		}
		want := old
		if c.at >= afterRename {
			want = nw
		}
		if st.Source != FromFile || !s.Equal(want) {
			t.Fatalf("cut %+v: loaded %v (%v), want %v", c, s, st, want)
		}
		// The next write cleans up the leftover temp file and works.
		if _, err := Update(p, func(s *Settings) error { s.Name = "next"; return nil }); err != nil {
			t.Fatal(err)
		}
		if names := listDir(t, filepath.Dir(p)); strings.Join(names, " ") != "settings.json settings.json.lock" {
			t.Fatalf("cut %+v: directory holds %v after the next update", c, names)
		}
	}
	t.Logf("%d cut points checked", len(cuts))
}

// TestTornFile covers a file system that does not keep rename atomic and
// leaves the settings file itself cut at any length: Load then returns the
// complete new record or defaults with the torn file kept aside, never a
// partly read record.
func TestTornFile(t *testing.T) {
	nw := validStatic()
	data, err := Marshal(nw)
	if err != nil {
		t.Fatal(err)
	}
	complete := 0
	for n := 0; n <= len(data); n++ {
		p := tempPath(t)
		writeRaw(t, p, data[:n])
		s, st, err := Load(p)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case st.Source == FromFile && s.Equal(nw):
			complete++
		case st.Source == Recovered && s.Equal(Defaults()):
			if b, _ := os.ReadFile(st.SetAside); !bytes.Equal(b, data[:n]) {
				t.Fatalf("length %d: torn file not kept intact", n)
			}
		default:
			t.Fatalf("length %d: got %v (%v)", n, s, st)
		}
	}
	// Only the full file and the one missing just the final newline are complete.
	if complete != 2 {
		t.Errorf("%d lengths loaded as complete, want 2", complete)
	}
}

func FuzzLoad(f *testing.F) {
	good, _ := Marshal(validStatic())
	f.Add(good)
	f.Add([]byte(`{"version":1,"dhcp":false,"ip":"10.0.0.5","netmask":"255.255.255.0","dns":"1.1.1.1"}`))
	f.Add([]byte(`{"version":2,"mode":"dhcp"}`))
	f.Add([]byte(`{"version":99}`))
	f.Add([]byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "settings.json")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		s, st, err := Load(p)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		switch st.Source {
		case FromFile, Migrated:
			if err := s.Validate(); err != nil {
				t.Fatalf("Load returned invalid settings %v: %v", s, err)
			}
			b, err := Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			s2, st2, err := Parse(b)
			if err != nil || st2.Source != FromFile || !s2.Equal(s) {
				t.Fatalf("round trip of %v: %v %v %v", s, s2, st2, err)
			}
		case Recovered:
			if !s.Equal(Defaults()) || st.Reason == "" {
				t.Fatalf("recovered %v with reason %q", s, st.Reason)
			}
			if b, err := os.ReadFile(st.SetAside); err != nil || !bytes.Equal(b, data) {
				t.Fatalf("bad file not kept intact: %v", err)
			}
		default:
			t.Fatalf("status %v for an existing file", st)
		}
	})
}

// FuzzParse drives the decoder and migration (what Load does without the
// file I/O, so the fuzzer runs fast): no panic, and whatever is accepted is
// valid and survives a round trip.
func FuzzParse(f *testing.F) {
	good, _ := Marshal(validStatic())
	f.Add(good)
	f.Add([]byte(`{"version":1,"dhcp":false,"ip":"10.0.0.5","netmask":"255.255.255.0","dns":"1.1.1.1"}`))
	f.Add([]byte(`{"version":2,"mode":"static","address":"2001:db8::5/64","gateway":"2001:db8::1"}`))
	f.Add([]byte(`{"version":2,"mode":"dhcp","personalization_code":"ABCD-EFGH-JKMN-PQRS"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, st, err := Parse(data)
		if err != nil {
			if !s.Equal(Defaults()) || err.Error() == "" {
				t.Fatalf("error %v with settings %v", err, s)
			}
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("Parse accepted invalid settings %v: %v", s, err)
		}
		if st.Source != FromFile && st.Source != Migrated {
			t.Fatalf("status %v", st)
		}
		b, err := Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		s2, _, err := Parse(b)
		if err != nil || !s2.Equal(s) {
			t.Fatalf("round trip of %#v: %#v %v", s, s2, err)
		}
	})
}
