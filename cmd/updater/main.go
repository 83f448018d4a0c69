// Command updater runs on the appliance and installs the software updates
// the cloud orders, on the inactive A/B slot, with a one-shot trial boot
// that commits only once the new version proved healthy.
//
// At start it settles a pending trial: on the trial slot it waits for the
// sensor service to run without restarts and with its capture open, then
// commits; otherwise it reboots, and the firmware starts the committed slot
// again. Then it polls the manifest URL and installs what it names.
//
// Requests to the cloud (manifest, artefact, reports) carry the sensor's
// credentials, Authorization: Bearer TOKEN, from the registration the
// uplink keeps in the state directory (-settings, registration.json); a
// request to any other host, or over plain HTTP, never does.
//
//	updater -manifest https://cloud.example/sensors/ID/update -report https://cloud.example/sensors/ID/update-report
package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/passivesensor/sensor/board"
	"github.com/passivesensor/sensor/internal/gokrazyapi"
	"github.com/passivesensor/sensor/settings"
	"github.com/passivesensor/sensor/update"
)

// releaseKey is the release public key, hex, set at build time
// (-ldflags "-X main.releaseKey=..."); -key overrides it.
var releaseKey string

const espMount = "/run/sensor-esp"

func main() {
	var (
		manifestURL  = flag.String("manifest", "", "URL of this box's update manifest (default: CLOUD/v1/update/manifest, CLOUD from the settings)")
		reportURL    = flag.String("report", "", "URL each update step is POSTed to as JSON (default: CLOUD/v1/update/report)")
		stateDir     = flag.String("state", "/perm/update", "directory for the updater's state and the staging download")
		settingsDir  = flag.String("settings", "/perm/sensor", "the uplink's state directory: settings (cloud URL, proxy) and registration (credentials)")
		caFile       = flag.String("ca", "", "extra CA certificate (PEM) trusted for the cloud")
		keyHex       = flag.String("key", "", "release public key, hex (default: the one built in, else -key-file)")
		keyFile      = flag.String("key-file", "/etc/sensor/release.pub", "file holding the release public key, hex (placed in the image by make image)")
		interval     = flag.Duration("interval", 10*time.Minute, "how often to ask for a manifest")
		healthBound  = flag.Duration("health-bound", 3*time.Minute, "how long a trial has to prove healthy")
		healthWindow = flag.Duration("health-window", 30*time.Second, "how long the sensor must run without a restart")
		service      = flag.String("service", "/user/sensor", "the service whose health decides a trial")
	)
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	log.Info("updater starting", "state", *stateDir)
	if err := run(log, config{
		manifestURL: *manifestURL, reportURL: *reportURL, stateDir: *stateDir, settingsDir: *settingsDir,
		caFile: *caFile, keyHex: *keyHex, keyFile: *keyFile, interval: *interval, healthBound: *healthBound,
		healthWindow: *healthWindow, service: *service,
	}); err != nil {
		log.Error("updater stopped", "err", err)
		os.Exit(1)
	}
}

type config struct {
	manifestURL, reportURL, stateDir, settingsDir, caFile, keyHex, keyFile string
	interval, healthBound, healthWindow                                    time.Duration
	service                                                                string
}

func run(log *slog.Logger, c config) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if c.keyHex == "" {
		c.keyHex = releaseKey
	}
	if c.keyHex == "" && c.keyFile != "" {
		b, err := os.ReadFile(c.keyFile)
		if err != nil {
			return fmt.Errorf("release key: %w", err)
		}
		c.keyHex = strings.TrimSpace(string(b))
	}
	pub, err := hex.DecodeString(c.keyHex)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("no valid release key built in or given with -key (want %d bytes of hex)", ed25519.PublicKeySize)
	}
	prof, err := board.Detect()
	if err != nil {
		return err
	}
	layout, err := update.BootLayout()
	if err != nil {
		return err
	}
	if err := mountSystem(layout); err != nil {
		return err
	}
	esp := &espFS{DirFS: update.DirFS{Dir: espMount}, dev: layout.Dev(layout.BootPart)}
	boot, booted, running, err := bootControl(log, prof.Image, layout, esp)
	if err != nil {
		return err
	}
	client, err := httpClient(c.settingsDir, c.caFile)
	if err != nil {
		return err
	}
	// Steps go to the cloud in order from one sender that retries: the
	// steps of a boot (a trial settled, a rollback found) happen before
	// the management network is up.
	steps := make(chan update.Step, 64)
	go func() {
		for s := range steps {
			for wait := 2 * time.Second; ; wait = min(2*wait, time.Minute) {
				_, reportURL := cloudURLs(c, prof.Image, running)
				if reportURL == "" || report(ctx, client, reportURL, running, s) == nil || ctx.Err() != nil {
					break
				}
				select {
				case <-ctx.Done():
				case <-time.After(wait):
				}
			}
		}
	}()
	// Manifest, artefact and report requests to the cloud carry the
	// sensor's credentials from the uplink's registration.
	client.Transport = &bearer{base: client.Transport, regFile: filepath.Join(c.settingsDir, registrationFile),
		cloud: func() string { return cloudBase(c) }}
	in := &update.Installer{
		Key: pub, Board: prof.Image, Running: running, Boot: boot, ESP: esp,
		Root: func(s update.Slot) (update.Device, error) {
			return openDevice(layout.RootDev(s))
		},
		Fetch:    &update.Fetcher{Client: client, Dir: filepath.Join(c.stateDir, "staging")},
		StateDir: c.stateDir,
		Report: func(s update.Step) {
			log.Info("update", "version", s.Version, "phase", s.Phase, "slot", s.Slot, "detail", s.Detail)
			select {
			case steps <- s:
			default:
				log.Warn("report queue full; step not sent", "phase", s.Phase)
			}
		},
	}
	log.Info("updater", "board", prof.Name, "running", running, "slot", booted, "disk", layout.Disk)

	gk := gokrazyapi.New()
	err = in.AfterBoot(ctx, c.healthBound, func(ctx context.Context) error {
		return healthy(ctx, gk, c.service, c.healthWindow)
	})
	if errors.Is(err, update.ErrRollback) {
		log.Error("trial unhealthy: rebooting into the committed version")
		flush(steps)
		return rebootBox(gk)
	}
	if err != nil {
		log.Error("settling the trial", "err", err)
	}
	// After a failed poll (no network yet, cloud away) ask again soon,
	// backing off to the normal interval.
	// The cloud may say how often to ask (Retry-After); an interrupted
	// download is resumed soon, backing off.
	retry, resume := 10*time.Second, 10*time.Second
	for {
		wait := c.interval
		var m *update.Manifest
		if manifestURL, _ := cloudURLs(c, prof.Image, running); manifestURL == "" {
			log.Debug("no cloud URL in the settings yet")
			wait = min(retry, c.interval)
		} else if mm, after, err := fetchManifest(ctx, client, manifestURL); err != nil {
			log.Warn("manifest", "err", err, "retry_in", min(retry, c.interval))
			wait = min(retry, c.interval)
			retry = min(2*retry, c.interval)
		} else {
			m, retry = mm, 10*time.Second
			if after > 0 {
				wait = after
			}
		}
		if m != nil && wanted(in, running, *m) {
			switch err := in.Install(ctx, *m); {
			case errors.Is(err, update.ErrDownload):
				log.Warn("download interrupted; resuming", "version", m.Version, "err", err, "retry_in", min(resume, wait))
				wait = min(resume, wait)
				resume = min(2*resume, c.interval)
			case err != nil:
				log.Error("install", "version", m.Version, "err", err)
			default:
				log.Info("installed; rebooting into the trial", "version", m.Version)
				flush(steps)
				return rebootBox(gk)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// cloudURLs gives the manifest and report URLs: the flags, else the
// cloud's update endpoints under the cloud URL in the settings, which a
// technician may set at any time.
func cloudURLs(c config, boardName, running string) (manifest, report string) {
	if c.manifestURL != "" {
		return c.manifestURL, c.reportURL
	}
	s, _, err := settings.Load(filepath.Join(c.settingsDir, "settings.json"))
	if err != nil || s.CloudURL == "" {
		return "", ""
	}
	base := strings.TrimSuffix(s.CloudURL, "/")
	return base + "/v1/update/manifest?" + url.Values{"board": {boardName}, "version": {running}}.Encode(),
		base + "/v1/update/report"
}

// cloudBase is the cloud the box reports to: the origin of -manifest when
// given, else the cloud URL in the settings.
func cloudBase(c config) string {
	if c.manifestURL != "" {
		return c.manifestURL
	}
	s, _, err := settings.Load(filepath.Join(c.settingsDir, "settings.json"))
	if err != nil {
		return ""
	}
	return s.CloudURL
}

// wanted says whether m is worth an attempt: not the running version, and
// not the version whose last attempt failed (until the cloud signs a new
// manifest for it).
func wanted(in *update.Installer, running string, m update.Manifest) bool {
	if m.Version == running {
		return false
	}
	st, _ := in.LoadState()
	if st.Version == m.Version && (st.Phase == update.PhaseFailed || st.Phase == update.PhaseRolledBack) {
		b, _ := os.ReadFile(filepath.Join(in.StateDir, "failed-signature"))
		if string(b) == m.Signature {
			return false
		}
	}
	os.WriteFile(filepath.Join(in.StateDir, "failed-signature"), []byte(m.Signature), 0o644)
	return true
}

// mountSystem mounts efivarfs (the boot loader's variables) and the boot
// partition read-write where the updater writes slot entries and kernels.
func mountSystem(l update.Layout) error {
	if _, err := os.Stat("/sys/firmware/efi/efivars"); err == nil {
		if err := unix.Mount("efivarfs", "/sys/firmware/efi/efivars", "efivarfs", 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount efivarfs: %w", err)
		}
	}
	if err := os.MkdirAll(espMount, 0o755); err != nil {
		return err
	}
	dev := l.Dev(l.BootPart)
	err := unix.Mount(dev, espMount, "vfat", espFlags|unix.MS_RDONLY, "flush")
	if errors.Is(err, unix.EBUSY) { // mounted by an earlier run of the updater
		err = unix.Mount(dev, espMount, "vfat", espFlags|unix.MS_RDONLY|unix.MS_REMOUNT, "flush")
	}
	if err != nil {
		return fmt.Errorf("mount boot partition %s read-only: %w", dev, err)
	}
	return nil
}

const espFlags = unix.MS_NOEXEC | unix.MS_NOSUID | unix.MS_NODEV

// espFS is the boot partition, mounted read-only except while a file is
// written. FAT has no journal, and Linux marks a FAT volume dirty for as
// long as it is mounted read-write: kept so, every reboot and power cut
// would leave the firmware's partition marked as not cleanly unmounted.
type espFS struct {
	update.DirFS
	dev string
	mu  sync.Mutex
}

// writable runs write with the partition remounted read-write, and
// remounts it read-only after, which marks it clean again.
func (e *espFS) writable(write func() error) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := unix.Mount(e.dev, e.Dir, "vfat", espFlags|unix.MS_REMOUNT, "flush"); err != nil {
		return fmt.Errorf("remount boot partition %s read-write: %w", e.dev, err)
	}
	err := write()
	if rerr := unix.Mount(e.dev, e.Dir, "vfat", espFlags|unix.MS_RDONLY|unix.MS_REMOUNT, "flush"); rerr != nil && err == nil {
		err = fmt.Errorf("remount boot partition %s read-only: %w", e.dev, rerr)
	}
	return err
}

// WriteFile stores data under name durably (update.BootFS).
func (e *espFS) WriteFile(name string, data []byte) error {
	return e.writable(func() error { return e.DirFS.WriteFile(name, data) })
}

// Overwrite rewrites name in place (update.Overwriter).
func (e *espFS) Overwrite(name string, data []byte) error {
	return e.writable(func() error { return e.DirFS.Overwrite(name, data) })
}

// bootControl is the boot control of the image's board, the slot this boot
// came from and the version it holds: the Raspberry Pi's tryboot, else
// systemd-boot's entries and EFI variables.
func bootControl(log *slog.Logger, image string, layout update.Layout, esp *espFS) (update.BootControl, update.Slot, string, error) {
	uuid := strings.ToLower(layout.BootUUID)
	if image == "rpi4" {
		b, err := os.ReadFile(filepath.Join(espMount, layout.Booted.String(), update.PiCmdline))
		if err != nil {
			return nil, 0, "", fmt.Errorf("the running slot's kernel command line: %w", err)
		}
		version := update.SlotVersion(string(b))
		if version == "" {
			return nil, 0, "", fmt.Errorf("slot %s's %s names no %s", layout.Booted, update.PiCmdline, update.VersionParam)
		}
		return &update.Tryboot{Boot: esp, Flag: update.VCIO{}, Running: layout.Booted, Options: string(b), PartUUID: uuid},
			layout.Booted, version, nil
	}
	boot := &update.SystemdBoot{ESP: esp, Vars: update.Efivars{}, PartUUID: uuid}
	booted, err := boot.Booted()
	if err != nil {
		// Firmware without the Boot Loader Interface: trust root=.
		log.Warn("no LoaderEntrySelected; using the kernel command line", "err", err)
		booted = layout.Booted
	}
	running, options, err := entryOf(espMount, booted)
	if err != nil {
		return nil, 0, "", err
	}
	boot.Options = options
	return boot, booted, running, nil
}

// entryOf reads the running slot's entry: its version and kernel options
// without root=.
func entryOf(esp string, s update.Slot) (version, options string, err error) {
	b, err := os.ReadFile(filepath.Join(esp, "loader", "entries", update.EntryName(s)))
	if err != nil {
		return "", "", fmt.Errorf("the running slot's boot entry: %w", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(l, " ")
		switch k {
		case "version":
			version = v
		case "options":
			var keep []string
			for _, f := range strings.Fields(v) {
				if !strings.HasPrefix(f, "root=") {
					keep = append(keep, f)
				}
			}
			options = strings.Join(keep, " ")
		}
	}
	if version == "" {
		return "", "", fmt.Errorf("boot entry %s has no version line", update.EntryName(s))
	}
	return version, options, nil
}

func openDevice(path string) (update.Device, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, err
	}
	return update.FileDevice{F: f, Len: size}, nil
}

// httpClient trusts the system roots plus caFile and goes through the
// proxy the settings name.
func httpClient(settingsDir, caFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if errors.Is(err, os.ErrNotExist) {
			pem = nil // no extra CA on this box: system roots only
		} else if err != nil {
			return nil, err
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if pem != nil && !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	s, _, err := settings.Load(filepath.Join(settingsDir, "settings.json"))
	if err == nil && s.Proxy.Address != "" {
		u := &url.URL{Scheme: "http", Host: s.Proxy.Address}
		if s.Proxy.User != "" {
			u.User = url.UserPassword(s.Proxy.User, string(s.Proxy.Password))
		}
		tr.Proxy = http.ProxyURL(u)
	}
	return &http.Client{Transport: tr}, nil
}

// fetchManifest asks the cloud for an order: the manifest, or nil when
// nothing is ordered, and when to ask again if the cloud says so.
func fetchManifest(ctx context.Context, c *http.Client, u string) (*update.Manifest, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	after := retryAfter(resp.Header.Get("Retry-After"))
	if resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotFound {
		return nil, after, nil // nothing ordered
	}
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	var m update.Manifest
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&m); err != nil {
		return nil, 0, fmt.Errorf("manifest from %s: %w", u, err)
	}
	return &m, after, nil
}

// Bounds on the poll interval the cloud may set.
const (
	minPoll = 5 * time.Second
	maxPoll = 24 * time.Hour
)

// retryAfter reads Retry-After in seconds, clamped to [minPoll, maxPoll];
// 0 when absent or not a number of seconds.
func retryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	switch {
	case err != nil || n <= 0:
		return 0
	case n >= int(maxPoll/time.Second):
		return maxPoll
	}
	return max(time.Duration(n)*time.Second, minPoll)
}

// report POSTs a step to the cloud.
func report(ctx context.Context, c *http.Client, u, running string, s update.Step) error {
	b, _ := json.Marshal(map[string]string{"running": running, "version": s.Version, "phase": s.Phase, "slot": s.Slot, "detail": s.Detail})
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 && resp.StatusCode/100 != 4 {
		return fmt.Errorf("POST %s: %s", u, resp.Status)
	}
	return nil
}

// gokrazy is gokrazy's HTTP API on its unix socket.
type gokrazy = gokrazyapi.Client

// serviceStatus is what gokrazy's /status?path= answers as JSON.
type serviceStatus struct {
	Stopped   bool
	StartTime time.Time
	Pid       int
}

// maxRestarts is how many restarts of the service prove a trial unhealthy
// at once, without waiting for the bound: a release whose sensor exits at
// start is restarted by gokrazy every second or so.
const maxRestarts = 3

// healthPoll is how often the service's status is read.
var healthPoll = 2 * time.Second

// healthy waits until the service runs, holds a packet socket (its capture
// is open), and keeps the same process for window: no restart. It gives up
// when the context ends or after maxRestarts restarts.
func healthy(ctx context.Context, g gokrazy, service string, window time.Duration) error {
	var cur serviceStatus // the process watched
	var since time.Time   // when it was first seen capturing
	starts := 0
	last := errors.New("not checked yet")
	for {
		b, err := g.Do(http.MethodGet, "/status?path="+url.QueryEscape(service))
		var st serviceStatus
		if err == nil {
			err = json.Unmarshal(b, &st)
		}
		if err == nil && st.Pid != 0 && (st.Pid != cur.Pid || !st.StartTime.Equal(cur.StartTime)) {
			if starts++; starts > 1 {
				last = fmt.Errorf("%s restarted (pid %d, then %d)", service, cur.Pid, st.Pid)
				if starts > maxRestarts {
					return fmt.Errorf("%s restarted %d times: %w", service, starts-1, last)
				}
			}
			cur, since = st, time.Time{}
		}
		switch {
		case err != nil:
			last = err
		case st.Stopped || st.Pid == 0:
			last = fmt.Errorf("%s is not running", service)
			since = time.Time{}
		case !capturing(st.Pid):
			last = fmt.Errorf("%s (pid %d) has no capture open", service, st.Pid)
			since = time.Time{}
		case since.IsZero():
			since = time.Now()
		case time.Since(since) >= window:
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not healthy within the bound: %w", last)
		case <-time.After(healthPoll):
		}
	}
}

// capturing reports whether process pid holds an AF_PACKET socket.
func capturing(pid int) bool {
	tab, err := os.ReadFile("/proc/net/packet")
	if err != nil {
		return false
	}
	inodes := map[string]bool{}
	for i, l := range strings.Split(string(tab), "\n") {
		f := strings.Fields(l)
		if i == 0 || len(f) == 0 {
			continue
		}
		inodes[f[len(f)-1]] = true
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return false
	}
	for _, fd := range fds {
		t, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(t, "socket:[") && inodes[strings.TrimSuffix(strings.TrimPrefix(t, "socket:["), "]")] {
			return true
		}
	}
	return false
}

// flush gives queued reports up to 30 s to reach the cloud.
func flush(steps chan update.Step) {
	for end := time.Now().Add(30 * time.Second); len(steps) > 0 && time.Now().Before(end); {
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // the step being sent
}

// rebootBox asks gokrazy to stop the services, unmount /perm and reboot;
// when that fails, it syncs and reboots itself.
func rebootBox(g gokrazy) error { return g.Reboot() }
