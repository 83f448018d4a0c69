package update

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// setup serves new's artefact and returns an EFI world running old with
// the manifest ordering new.
func setup(t *testing.T, old, new release, cutAt int, seed uint64) (*world, *Installer, Manifest) {
	t.Helper()
	return setupOn(t, newWorld, old, new, cutAt, seed)
}

// worldMaker makes a box of one kind running old, its power cut at
// operation cutAt.
type worldMaker func(t *testing.T, old release, cutAt int, seed uint64) *world

// setupOn is setup for a box that mk makes.
func setupOn(t *testing.T, mk worldMaker, old, new release, cutAt int, seed uint64) (*world, *Installer, Manifest) {
	t.Helper()
	w := mk(t, old, cutAt, seed)
	w.releases[new.version] = new
	data, _ := new.artefact(testBoard, "")
	srv := serve(t, map[string][]byte{"/sensor-" + new.version + ".upd": data})
	_, m := new.artefact(testBoard, srv.URL+"/sensor-"+new.version+".upd")
	in := w.installer(old.version, &Fetcher{Client: srv.Client(), Dir: filepath.Join(w.perm, "update", "staging")})
	return w, in, m
}

func bootInto(t *testing.T, w *world, want string) Slot {
	t.Helper()
	v, s, err := w.firmware()
	if err != nil {
		t.Fatalf("box does not come back: %v", err)
	}
	if v != want {
		t.Fatalf("booted version %s from slot %s, want %s", v, s, want)
	}
	return s
}

func TestHealthyTrialCommits(t *testing.T) {
	old, new, newer := newRelease("1.0.0", 300_000), newRelease("1.1.0", 320_000), newRelease("1.2.0", 310_000)
	w, in, m := setup(t, old, new, 0, 1)
	var steps []string
	in.Report = func(s Step) { steps = append(steps, s.Phase) }
	if err := in.Install(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	// Armed but not rebooted: settling now must not judge the trial.
	if err := in.AfterBoot(context.Background(), 0, noHealthCheck); err != nil {
		t.Fatal(err)
	}
	if st, _ := in.LoadState(); st.Phase != PhaseArmed {
		t.Fatalf("state before the reboot: %s, want armed", st.Phase)
	}
	if s := bootInto(t, w, "1.1.0"); s != SlotB {
		t.Fatalf("trial booted slot %s", s)
	}
	in2 := w.installer("1.1.0", in.Fetch)
	in2.Report = in.Report
	if err := in2.AfterBoot(context.Background(), 0, noHealthCheck); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(in.Fetch.Dir); len(ents) != 0 {
		t.Fatalf("staging directory keeps %d files after the slot was written", len(ents))
	}
	want := []string{PhaseDownloading, PhaseVerified, PhaseWriting, PhaseArmed, PhaseTrial, PhaseCommitted}
	if fmt.Sprint(steps) != fmt.Sprint(want) {
		t.Fatalf("reported steps %v, want %v", steps, want)
	}
	// Committed: every later boot is the new version.
	bootInto(t, w, "1.1.0")
	bootInto(t, w, "1.1.0")
	if !bytes.Equal(w.esp.files[KernelPath(SlotA, DefaultKernel)], old.kernel) {
		t.Fatal("the old slot's kernel was touched")
	}

	// The next update goes to slot A, never the running slot B.
	w.releases[newer.version] = newer
	data, _ := newer.artefact(testBoard, "")
	srv := serve(t, map[string][]byte{"/u": data})
	_, m3 := newer.artefact(testBoard, srv.URL+"/u")
	in3 := w.installer("1.1.0", &Fetcher{Client: srv.Client(), Dir: in.Fetch.Dir})
	if err := in3.Install(context.Background(), m3); err != nil {
		t.Fatal(err)
	}
	if s := bootInto(t, w, "1.2.0"); s != SlotA {
		t.Fatalf("second update booted slot %s, want a", s)
	}
}

func TestUnhealthyTrialRollsBack(t *testing.T) {
	old, new := newRelease("1.0.0", 300_000), newRelease("1.1.0", 300_000)
	w, in, m := setup(t, old, new, 0, 2)
	if err := in.Install(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	bootInto(t, w, "1.1.0")
	trial := w.installer("1.1.0", in.Fetch)
	err := trial.AfterBoot(context.Background(), 0, func(context.Context) error { return errors.New("sensor restarted 3 times") })
	if !errors.Is(err, ErrRollback) {
		t.Fatalf("unhealthy trial: %v, want ErrRollback", err)
	}
	// The caller reboots; the one-shot is spent, the old slot starts.
	bootInto(t, w, "1.0.0")
	back := w.installer("1.0.0", in.Fetch)
	var got []Step
	back.Report = func(s Step) { got = append(got, s) }
	if err := back.AfterBoot(context.Background(), 0, noHealthCheck); err != nil {
		t.Fatal(err)
	}
	st, _ := back.LoadState()
	if st.Phase != PhaseRolledBack || st.Version != "1.1.0" {
		t.Fatalf("state after rollback %+v", st)
	}
	// Back on the old slot the box says so, once.
	if len(got) != 1 || got[0].Phase != PhaseRolledBack || !strings.Contains(got[0].Detail, "sensor restarted 3 times; back on 1.0.0") {
		t.Fatalf("reported after the rollback: %+v", got)
	}
	bootInto(t, w, "1.0.0")
	again := w.installer("1.0.0", in.Fetch)
	again.Report = back.Report
	if err := again.AfterBoot(context.Background(), 0, noHealthCheck); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("reported again on the next boot: %+v", got)
	}
}

// A trial whose kernel panics or hangs until the watchdog resets the box
// never runs AfterBoot: the next power-on takes the default entry.
func TestTrialThatNeverComesUpFallsBack(t *testing.T) {
	old, new := newRelease("1.0.0", 300_000), newRelease("1.1.0", 300_000)
	w, in, m := setup(t, old, new, 0, 3)
	if err := in.Install(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	bootInto(t, w, "1.1.0") // the trial starts ... and panics: reset
	bootInto(t, w, "1.0.0")
	back := w.installer("1.0.0", in.Fetch)
	var got []Step
	back.Report = func(s Step) { got = append(got, s) }
	if err := back.AfterBoot(context.Background(), 0, noHealthCheck); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Phase != PhaseRolledBack || got[0].Version != "1.1.0" {
		t.Fatalf("reported %+v, want one rolled-back step for 1.1.0", got)
	}
	// The box can update again.
	if err := back.Install(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	bootInto(t, w, "1.1.0")
}

func TestRefusedUpdatesWriteNothing(t *testing.T) {
	old, new := newRelease("2.0.0", 200_000), newRelease("2.1.0", 200_000)
	other := newRelease("1.9.0", 200_000)
	cases := []struct {
		name   string
		change func(m *Manifest, served *[]byte)
		want   error
	}{
		{"bad signature", func(m *Manifest, _ *[]byte) { m.Parts[0].SHA256 = m.SHA256 }, ErrSignature},
		{"redirected to other bytes", func(m *Manifest, served *[]byte) {
			// The URL is not signed: whatever it serves must still match
			// the signed size and hash.
			m.URL += "?other"
			(*served)[len(*served)-1] ^= 0x80
		}, ErrHash},
		{"forged signature", func(m *Manifest, _ *[]byte) {
			m.Signature = "AAAA" + m.Signature[4:]
		}, ErrSignature},
		{"wrong hash", func(_ *Manifest, served *[]byte) { (*served)[100] ^= 1 }, ErrHash},
		{"truncated artefact", func(_ *Manifest, served *[]byte) { *served = (*served)[:1000] }, nil},
		{"another board", func(m *Manifest, _ *[]byte) { m.Board = "rpi4"; m.Sign(testKey) }, ErrBoard},
		{"downgrade not ordered", func(m *Manifest, served *[]byte) {
			*served, *m = other.artefact(testBoard, m.URL)
		}, ErrVersion},
		{"downgrade below floor", func(m *Manifest, served *[]byte) {
			*served, *m = other.artefact(testBoard, m.URL)
			m.Downgrade, m.Floor = true, "2.0.0"
			m.Sign(testKey)
		}, ErrVersion},
		{"same version", func(m *Manifest, _ *[]byte) { m.Version = "2.0.0"; m.Sign(testKey) }, ErrVersion},
		{"version that is no word", func(m *Manifest, _ *[]byte) { m.Version = "2.1.0 init=/bin/sh"; m.Sign(testKey) }, ErrManifest},
		{"part outside artefact", func(m *Manifest, _ *[]byte) { m.Parts[1].Size = m.Size; m.Sign(testKey) }, ErrManifest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t, old, 0, 4)
			served, _ := new.artefact(testBoard, "")
			var url string
			srv := serve(t, map[string][]byte{"/u": nil})
			url = srv.URL + "/u"
			_, m := new.artefact(testBoard, url)
			c.change(&m, &served)
			srv.Config.Handler = http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				http.ServeContent(rw, r, "u", timeZero, bytes.NewReader(served))
			})
			in := w.installer("2.0.0", &Fetcher{Client: srv.Client(), Dir: filepath.Join(w.perm, "staging")})
			err := in.Install(context.Background(), m)
			if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
				t.Fatalf("Install: %v, want %v", err, c.want)
			}
			if w.pw.ops != 0 {
				t.Fatalf("%d writes to the disk, boot partition or firmware variables", w.pw.ops)
			}
			if _, ok := w.esp.files[entryDir+EntryName(SlotB)]; ok {
				t.Fatal("slot B entry written")
			}
			st, _ := in.LoadState()
			if st.Phase != PhaseFailed || st.Detail == "" {
				t.Fatalf("state %+v, want failed with a reason", st)
			}
			bootInto(t, w, "2.0.0")
		})
	}
}

// Cut the power at every durable operation of an install (tearing the
// write in progress and dropping unflushed writes at random): the box
// always comes back, on the old version, or on the new one only when the
// trial had been armed (after the slot was verified).
func TestPowerCutDuringInstall(t *testing.T) {
	powerCutInstall(t, newWorld, newRelease("1.0.0", 300_000), newRelease("1.1.0", 290_000))
}

func powerCutInstall(t *testing.T, mk worldMaker, old, new release) {
	w, in, m := setupOn(t, mk, old, new, 0, 5)
	if err := in.Install(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	total := w.pw.ops
	if total < 10 {
		t.Fatalf("only %d durable operations: the test would prove little", total)
	}
	t.Logf("an install is %d durable operations; cutting at each", total)
	seeds := 3
	if testing.Short() {
		seeds = 1
	}
	for cut := 1; cut <= total; cut++ {
		for seed := range seeds {
			w, in, m := setupOn(t, mk, old, new, cut, uint64(seed*1000+cut))
			err := in.Install(context.Background(), m)
			armed := w.armed(SlotB)
			if err == nil && !armed {
				// The cut hit the last operation after it took effect.
				t.Fatalf("cut at %d/%d: Install succeeded but nothing armed", cut, total)
			}
			v, s, berr := w.firmware()
			if berr != nil {
				t.Fatalf("cut at %d/%d (seed %d): %v", cut, total, seed, berr)
			}
			switch {
			case v == old.version && s == SlotA:
			case v == new.version && s == SlotB && armed:
			default:
				t.Fatalf("cut at %d/%d: booted %s from slot %s (armed %v)", cut, total, v, s, armed)
			}
			a := make([]byte, len(old.root))
			w.disk.f.ReadAt(a, 0)
			if !bytes.Equal(a, old.root) {
				t.Fatalf("cut at %d: the running slot's root changed", cut)
			}
			if v == old.version {
				// Back on the old version, the box settles and can
				// update again.
				back := w.installer(old.version, in.Fetch)
				if err := back.AfterBoot(context.Background(), 0, noHealthCheck); err != nil {
					t.Fatal(err)
				}
				if err := back.Install(context.Background(), m); err != nil {
					t.Fatalf("cut at %d: install after the cut: %v", cut, err)
				}
				bootInto(t, w, new.version)
			}
		}
	}
}

// Cut the power at every durable operation of the trial's settling: the
// box boots the old version, or the new one only once the commit reached
// the boot control, and either way the state ends settled, not pending.
func TestPowerCutDuringCommit(t *testing.T) {
	powerCutCommit(t, newWorld, newRelease("1.0.0", 300_000), newRelease("1.1.0", 290_000))
}

func powerCutCommit(t *testing.T, mk worldMaker, old, new release) {
	count := func(cut int, seed uint64) (w *world, trial *Installer, total int) {
		w, in, m := setupOn(t, mk, old, new, 0, seed)
		if err := in.Install(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		bootInto(t, w, new.version)
		before := w.pw.ops
		w.pw.cutAt = before + cut
		trial = w.installer(new.version, in.Fetch)
		trial.AfterBoot(context.Background(), 0, noHealthCheck)
		return w, trial, w.pw.ops - before
	}
	_, _, total := count(0, 7)
	if total < 1 {
		t.Fatalf("settling a trial is %d durable operations", total)
	}
	t.Logf("settling a trial is %d durable operations; cutting at each", total)
	seen := map[string]int{}
	for cut := 1; cut <= total; cut++ {
		for seed := range uint64(4) {
			w, trial, _ := count(cut, seed*100+uint64(cut))
			v, s, err := w.firmware()
			if err != nil {
				t.Fatalf("cut at %d/%d: %v", cut, total, err)
			}
			in := w.installer(v, trial.Fetch)
			var got []Step
			in.Report = func(s Step) { got = append(got, s) }
			if err := in.AfterBoot(context.Background(), 0, noHealthCheck); err != nil && !errors.Is(err, ErrRollback) {
				t.Fatal(err)
			}
			st, _ := in.LoadState()
			switch {
			case v == new.version && s == SlotB && st.Phase == PhaseCommitted:
				seen[new.version]++
			case v == old.version && s == SlotA && st.Phase == PhaseRolledBack:
				seen[old.version]++
			default:
				t.Fatalf("cut at %d/%d: booted %s from slot %s, state %s (%v)", cut, total, v, s, st.Phase, got)
			}
		}
	}
	// Both sides of the commit were cut.
	if seen[new.version] == 0 || seen[old.version] == 0 {
		t.Fatalf("after the cuts the box came up as %v: one side of the commit was never cut", seen)
	}
}

// cutOnceOrigin serves data with Range support, drops the first
// connection after cutAt bytes, and records each request's Range header
// and the bytes it sent.
type cutOnceOrigin struct {
	*httptest.Server
	mu     sync.Mutex
	ranges []string
	served atomic.Int64
}

func newCutOnceOrigin(t *testing.T, data []byte, cutAt int) *cutOnceOrigin {
	o := &cutOnceOrigin{}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.ranges = append(o.ranges, r.Header.Get("Range"))
		first := len(o.ranges) == 1
		o.mu.Unlock()
		if first {
			w.Header().Set("Content-Length", fmt.Sprint(len(data)))
			w.WriteHeader(http.StatusOK)
			w.Write(data[:cutAt])
			o.served.Add(int64(cutAt))
			w.(http.Flusher).Flush()
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
			return
		}
		http.ServeContent(&countWriter{ResponseWriter: w, n: &o.served}, r, "a", timeZero, bytes.NewReader(data))
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *cutOnceOrigin) rangesAsked() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.ranges)
}

// The artefact download resumes where an interrupted one stopped, with a
// Range request, through the configured HTTP proxy.
func TestDownloadResumesThroughProxy(t *testing.T) {
	rel := newRelease("3.1.0", 400_000)
	data, _ := rel.artefact(testBoard, "")
	origin := newCutOnceOrigin(t, data, len(data)/3)
	var proxied atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Add(1)
		out, _ := http.NewRequest(r.Method, r.URL.String(), nil)
		out.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	defer proxy.Close()
	pu, _ := url.Parse(proxy.URL)
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}
	_, m := rel.artefact(testBoard, origin.URL+"/a")
	f := &Fetcher{Client: client, Dir: t.TempDir()}
	if _, err := f.Fetch(context.Background(), m); !errors.Is(err, ErrDownload) {
		t.Fatalf("the interrupted download: %v, want ErrDownload", err)
	}
	path, err := f.Fetch(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	if got := origin.served.Load(); got != int64(len(data)) {
		t.Fatalf("origin sent %d bytes for a %d-byte artefact: the download did not resume", got, len(data))
	}
	if ranges := origin.rangesAsked(); len(ranges) != 2 || ranges[1] != fmt.Sprintf("bytes=%d-", len(data)/3) {
		t.Fatalf("range headers %q", ranges)
	}
	if proxied.Load() != 2 {
		t.Fatalf("%d requests went through the proxy, want 2", proxied.Load())
	}
	if err := verifyFile(path, m); err != nil {
		t.Fatal(err)
	}
}

type countWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n.Add(int64(n))
	return n, err
}

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"1.0.0", "1.0.0", 0}, {"1.0.0", "1.0.1", -1}, {"1.10.0", "1.9.0", 1}, {"v2026.11.3", "2026.11.3", 0},
		{"1.2", "1.2.0", 0}, {"1.2.0-rc1", "1.2.0", -1}, {"1.2.0-rc2", "1.2.0-rc1", 1}, {"2", "10", -1},
	} {
		if got := CompareVersions(c.a, c.b); got != c.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

// An install whose download is cut is no failure: the box reports how far
// it got, keeps the state that lets it try again, and the next attempt
// resumes with a Range request and installs.
func TestInterruptedDownloadResumesAndInstalls(t *testing.T) {
	old, new := newRelease("1.0.0", 300_000), newRelease("1.1.0", 300_000)
	w := newWorld(t, old, 0, 6)
	w.releases[new.version] = new
	data, _ := new.artefact(testBoard, "")
	srv := newCutOnceOrigin(t, data, 100_000)
	_, m := new.artefact(testBoard, srv.URL+"/u")
	in := w.installer(old.version, &Fetcher{Client: srv.Client(), Dir: filepath.Join(w.perm, "staging")})
	var steps []Step
	in.Report = func(s Step) { steps = append(steps, s) }
	err := in.Install(context.Background(), m)
	if !errors.Is(err, ErrDownload) {
		t.Fatalf("cut download: %v, want ErrDownload", err)
	}
	if w.pw.ops != 0 {
		t.Fatalf("%d writes to the slots or boot control before the artefact was whole", w.pw.ops)
	}
	last := steps[len(steps)-1]
	if last.Phase != PhaseDownloading || !strings.Contains(last.Detail, "stopped at byte 100000") {
		t.Fatalf("last step %+v, want downloading with where it stopped", last)
	}
	if st, _ := in.LoadState(); st.Phase != PhaseDownloading {
		t.Fatalf("state after the cut: %s, want downloading (to try again)", st.Phase)
	}
	if err := in.Install(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if ranges := srv.rangesAsked(); len(ranges) != 2 || ranges[0] != "" || ranges[1] != "bytes=100000-" {
		t.Fatalf("requests' Range headers %q, want none then bytes=100000-", ranges)
	}
	bootInto(t, w, "1.1.0")
}

// A download that stops receiving is given up after Fetcher.Stall and
// resumed by the next attempt.
func TestStalledDownloadIsGivenUp(t *testing.T) {
	rel := newRelease("3.2.0", 200_000)
	data, _ := rel.artefact(testBoard, "")
	release := make(chan struct{})
	first := true
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if first {
			first = false
			rw.Header().Set("Content-Length", fmt.Sprint(len(data)))
			rw.Write(data[:50_000])
			rw.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		http.ServeContent(rw, r, "a", timeZero, bytes.NewReader(data))
	}))
	defer srv.Close()
	defer close(release)
	_, m := rel.artefact(testBoard, srv.URL+"/a")
	f := &Fetcher{Client: srv.Client(), Dir: t.TempDir(), Stall: 300 * time.Millisecond}
	_, err := f.Fetch(context.Background(), m)
	if !errors.Is(err, ErrDownload) || !strings.Contains(err.Error(), "nothing received for 300ms") {
		t.Fatalf("stalled download: %v, want ErrDownload saying it stalled", err)
	}
	if _, err := f.Fetch(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}
