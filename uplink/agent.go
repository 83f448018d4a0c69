package uplink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/passivesensor/sensor/settings"
	"github.com/passivesensor/sensor/status"
)

// State directory layout (on the appliance /perm/sensor):
//
//	settings.json       the appliance settings (written by the LCD menu / serial console)
//	status.json         what the daemon tells the front ends (package status)
//	registration.json   sensor id and token the cloud gave (mode 0600)
//	cloud-config.json   the last configuration the cloud sent
//	spool/              batches waiting for the cloud
const (
	SettingsFile     = "settings.json"
	RegistrationFile = "registration.json"
	SpoolDir         = "spool"
)

// Registration record as stored in the state directory.
type storedRegistration struct {
	Credentials
	Code       string    `json:"code"`
	CloudURL   string    `json:"cloud_url"`
	HardwareID string    `json:"hardware_id"`
	Time       time.Time `json:"time"`
}

// AgentOptions configure an Agent.
type AgentOptions struct {
	StateDir string
	// CloudURL is used when the settings name none.
	CloudURL string
	// CAFile is a PEM file of CAs trusted besides the system's.
	CAFile string
	// SettingsPath is the settings file; default StateDir/settings.json.
	SettingsPath string
	Version      string // firmware version, sent at registration and in heartbeats
	Board        string // board profile name
	// HardwareID identifies the box; default HardwareID(MgmtInterface).
	HardwareID    string
	MgmtInterface string
	Spool         Options
	// StatusEvery is how often status.json is rewritten; default 3 s.
	StatusEvery time.Duration
	// Poll is how often the settings file's mtime is checked; default 2 s.
	Poll time.Duration
	// RetryMin and RetryMax bound the backoff between failed attempts;
	// defaults 2 s and 5 min.
	RetryMin, RetryMax time.Duration
	// UnreachableAfter is how long the cloud must be away before a
	// cloud-unreachable event is queued; default 2 min.
	UnreachableAfter time.Duration
	// StatusFill adds the daemon's part to the status (interfaces,
	// assets) before it is written.
	StatusFill func(*status.Status)
	// OnConfig is called with each new configuration (and once at Open
	// with the cached or default one).
	OnConfig func(Config)
	Logger   *slog.Logger
}

// Agent is the sensor's side of the cloud link: it keeps the registration,
// spools batches, sends them, pulls the configuration and writes the status
// file the front ends read.
type Agent struct {
	o     AgentOptions
	log   *slog.Logger
	spool *Spool
	kick  chan struct{}

	mu          sync.Mutex
	settings    settings.Settings
	settingsMod time.Time
	reg         *storedRegistration
	client      *Client
	clientKey   string
	refused     bool   // the last registration attempt was refused
	cloudOK     bool   // the last contact succeeded
	cloudErr    string // why the last contact failed
	lastContact time.Time
	downSince   time.Time // first failure since the last success
	config      Config
	sensing     bool
	dropped     uint64 // spool overflow already reported
	lastStatus  string
	statusMu    sync.Mutex // one status.json writer at a time
}

// ErrNotRegistered is returned by Enqueue before the box is registered: an
// unregistered box reports nothing.
var ErrNotRegistered = errors.New("uplink: sensor not registered")

// OpenAgent opens the state directory: settings, registration, cached
// configuration and spool.
func OpenAgent(o AgentOptions) (*Agent, error) {
	if o.StateDir == "" {
		return nil, errors.New("uplink: no state directory")
	}
	if err := os.MkdirAll(o.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("uplink: state directory: %w", err)
	}
	if o.SettingsPath == "" {
		o.SettingsPath = filepath.Join(o.StateDir, SettingsFile)
	}
	if o.StatusEvery <= 0 {
		o.StatusEvery = 3 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	if o.RetryMin <= 0 {
		o.RetryMin = 2 * time.Second
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 5 * time.Minute
	}
	if o.UnreachableAfter <= 0 {
		o.UnreachableAfter = 2 * time.Minute
	}
	if o.HardwareID == "" {
		o.HardwareID = HardwareID(o.MgmtInterface)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	a := &Agent{o: o, log: o.Logger, kick: make(chan struct{}, 1)}
	sp, err := Open(filepath.Join(o.StateDir, SpoolDir), o.Spool)
	if err != nil {
		return nil, err
	}
	a.spool = sp
	a.dropped = sp.Dropped()
	a.reloadSettings(true)
	if data, err := os.ReadFile(filepath.Join(o.StateDir, RegistrationFile)); err == nil {
		var r storedRegistration
		if err := json.Unmarshal(data, &r); err != nil || r.SensorID == "" || r.Token == "" {
			a.log.Warn("uplink: registration file unreadable; registering again", "err", err)
		} else {
			a.reg = &r
		}
	}
	cfg, err := LoadConfig(o.StateDir)
	if err != nil {
		a.log.Warn("uplink: cached configuration unusable; using defaults", "err", err)
	}
	a.config = cfg
	if o.OnConfig != nil {
		o.OnConfig(cfg)
	}
	return a, nil
}

// Close closes the spool.
func (a *Agent) Close() error { return a.spool.Close() }

// Spool is the agent's spool.
func (a *Agent) Spool() *Spool { return a.spool }

// Config is the configuration in force.
func (a *Agent) Config() Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.config
}

// SensorID is the id the cloud gave, or "" before registration.
func (a *Agent) SensorID() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.reg == nil {
		return ""
	}
	return a.reg.SensorID
}

// Registered reports whether the box holds credentials for the current
// code and cloud.
func (a *Agent) Registered() bool { return a.SensorID() != "" }

// SetSensing tells the agent that capture runs (the heartbeat's and the
// status's Sensing state).
func (a *Agent) SetSensing(on bool) {
	a.mu.Lock()
	a.sensing = on
	a.mu.Unlock()
	a.writeStatus(false)
}

// State is the life-cycle state for heartbeats.
func (a *Agent) State() SensorState {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.reg == nil:
		return StateUnregistered
	case a.sensing:
		return StateSensing
	}
	return StateRegistered
}

func (a *Agent) cloudURL() string {
	if a.settings.CloudURL != "" {
		return a.settings.CloudURL
	}
	return a.o.CloudURL
}

// reloadSettings reads the settings file when its mtime changed. A new
// personalization code or cloud URL drops the registration.
func (a *Agent) reloadSettings(force bool) {
	fi, err := os.Stat(a.o.SettingsPath)
	var mod time.Time
	if err == nil {
		mod = fi.ModTime()
	}
	a.mu.Lock()
	if !force && mod.Equal(a.settingsMod) {
		a.mu.Unlock()
		return
	}
	a.mu.Unlock()
	s, st, err := settings.Load(a.o.SettingsPath)
	if err != nil {
		a.log.Warn("uplink: settings", "path", a.o.SettingsPath, "err", err)
	} else if st.Source == settings.Recovered {
		a.log.Warn("uplink: settings file was bad; defaults in force", "status", st.String())
	}
	a.mu.Lock()
	old := a.settings
	a.settings, a.settingsMod = s, mod
	if !force && (old.PersonalizationCode != s.PersonalizationCode || old.CloudURL != s.CloudURL) {
		a.log.Info("uplink: personalization code or cloud changed; registering again", "code", s.PersonalizationCode)
		a.refused = false
	}
	a.mu.Unlock()
	a.kickNow()
}

// currentReg returns the registration if it matches the settings' code and
// cloud, else nil.
func (a *Agent) currentReg() *storedRegistration {
	r := a.reg
	if r == nil {
		return nil
	}
	if r.Code != a.settings.PersonalizationCode || r.CloudURL != a.cloudURL() {
		return nil
	}
	return r
}

// clientLocked returns an HTTPS client for the current cloud URL and proxy.
func (a *Agent) clientLocked() (*Client, error) {
	p := a.settings.Proxy
	key := a.cloudURL() + "|" + p.Address + "|" + p.User + "|" + string(p.Password)
	if a.client != nil && a.clientKey == key {
		return a.client, nil
	}
	if a.cloudURL() == "" {
		return nil, errors.New("no cloud URL configured")
	}
	c, err := NewClient(a.cloudURL(), ClientOptions{CAFile: a.o.CAFile,
		Proxy: Proxy{Address: p.Address, User: p.User, Password: string(p.Password)}})
	if err != nil {
		return nil, err
	}
	if a.client != nil {
		a.client.CloseIdle()
	}
	a.client, a.clientKey = c, key
	return c, nil
}

func (a *Agent) kickNow() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// Enqueue puts messages into the spool as one batch with the given base
// time. Before registration nothing is queued (ErrNotRegistered). A
// spool overflow since the last call adds a spool-overflow event.
func (a *Agent) Enqueue(base time.Time, msgs ...Message) error {
	id := a.SensorID()
	if id == "" {
		return ErrNotRegistered
	}
	b, err := NewBatch(id, base)
	if err != nil {
		return err
	}
	b.Messages = msgs
	b.Dict = min(DictVersion, a.Config().Dictionary)
	if d := a.spool.Dropped(); d > a.dropped {
		a.mu.Lock()
		n := d - a.dropped
		a.dropped = d
		a.mu.Unlock()
		b.Messages = append(b.Messages, Message{Event: &Event{Kind: EventSpoolOverflow, Time: 0,
			Detail: fmt.Sprintf("spool full: %d unsent batches dropped, oldest first", n), Count: n}})
	}
	data, err := EncodeBatch(b)
	if err != nil {
		return err
	}
	if err := a.spool.Append(data); err != nil {
		return err
	}
	a.kickNow()
	return nil
}

// Pending is the number of bytes waiting in the spool.
func (a *Agent) Pending() int64 { return a.spool.Stats().PendingBytes }

// Run registers, sends and pulls the configuration until ctx ends.
func (a *Agent) Run(ctx context.Context) {
	statusT := time.NewTicker(a.o.StatusEvery)
	defer statusT.Stop()
	pollT := time.NewTicker(a.o.Poll)
	defer pollT.Stop()
	back := Backoff{Min: a.o.RetryMin, Max: a.o.RetryMax}
	var retryAt time.Time
	var nextConfig time.Time
	a.writeStatus(true)
	for {
		now := time.Now()
		if !now.Before(retryAt) {
			ok, worked := a.step(ctx, now, &nextConfig)
			switch {
			case !ok:
				retryAt = time.Now().Add(back.Next())
			case worked:
				back.Reset()
				retryAt = time.Time{}
				continue // more may be pending
			default:
				back.Reset()
				retryAt = time.Time{}
			}
		}
		var wait <-chan time.Time
		if !retryAt.IsZero() {
			wait = time.After(time.Until(retryAt))
		} else if !nextConfig.IsZero() {
			wait = time.After(time.Until(nextConfig))
		}
		select {
		case <-ctx.Done():
			a.writeStatus(true)
			return
		case <-a.kick:
			if !retryAt.IsZero() && a.Registered() {
				// New data does not cut a backoff short; a settings
				// change (registration dropped) does.
				continue
			}
			retryAt = time.Time{}
		case <-wait:
		case <-pollT.C:
			a.reloadSettings(false)
		case <-statusT.C:
			a.writeStatus(true)
		}
	}
}

// step does one piece of work: register, send a batch, or pull the
// configuration. ok is false after a failure (back off); worked is true
// when something was done and more may follow at once.
func (a *Agent) step(ctx context.Context, now time.Time, nextConfig *time.Time) (ok, worked bool) {
	a.mu.Lock()
	reg := a.currentReg()
	code := a.settings.PersonalizationCode
	refused := a.refused
	if reg == nil && a.reg != nil {
		a.reg = nil // code or cloud changed: the old credentials are void
		os.Remove(filepath.Join(a.o.StateDir, RegistrationFile))
	}
	c, cerr := a.clientLocked()
	a.mu.Unlock()
	if reg == nil {
		if code == "" || refused {
			a.writeStatus(false)
			return true, false // nothing to do until the settings change
		}
		if cerr != nil {
			a.contact(cerr)
			return false, false
		}
		return a.register(ctx, c, code)
	}
	if cerr != nil {
		a.contact(cerr)
		return false, false
	}
	recs, err := a.spool.Peek(1, 0)
	if err != nil {
		a.log.Error("uplink: spool", "err", err)
		return false, false
	}
	if len(recs) > 0 {
		res, err := c.Send(ctx, reg.Credentials, recs[0].Data)
		var he *HTTPError
		if errors.Is(err, ErrUnauthorized) {
			// The cloud no longer knows the token (revoked, or the
			// code was registered again): register again with the same
			// code; the same hardware gets its sensor id back, and the
			// spool waits.
			a.contact(fmt.Errorf("sensor %s: %w; registering again", reg.SensorID, err))
			a.mu.Lock()
			if a.reg == reg {
				a.reg = nil
				os.Remove(filepath.Join(a.o.StateDir, RegistrationFile))
			}
			a.mu.Unlock()
			return false, false
		}
		if errors.As(err, &he) && (he.Status == 400 || he.Status == 403 || he.Status == 413 || he.Status == 422) {
			// The cloud will never take this batch (malformed, too
			// large, or made for an earlier registration): drop it so
			// the queue keeps moving.
			a.log.Error("uplink: batch refused by the cloud; dropped", "err", err, "bytes", len(recs[0].Data))
			if err := a.spool.Ack(recs[0].End); err != nil {
				a.log.Error("uplink: spool ack", "err", err)
				return false, false
			}
			a.contact(nil)
			return true, true
		}
		if err != nil {
			a.contact(err)
			return false, false
		}
		if err := a.spool.Ack(recs[0].End); err != nil {
			a.log.Error("uplink: spool ack", "err", err)
			return false, false
		}
		a.log.Debug("uplink: batch sent", "batch", res.Batch, "duplicate", res.Duplicate, "bytes", len(recs[0].Data))
		a.contact(nil)
		return true, true
	}
	if now.Before(*nextConfig) {
		return true, false
	}
	cfg, err := c.FetchConfig(ctx, reg.Credentials)
	if err != nil {
		a.contact(err)
		return false, false
	}
	a.contact(nil)
	a.setConfig(cfg)
	*nextConfig = time.Now().Add(a.Config().Intervals.WithDefaults(DefaultIntervals()).Config)
	return true, false
}

func (a *Agent) register(ctx context.Context, c *Client, code string) (ok, worked bool) {
	a.writeStatus(false)
	reg := Registration{Code: code, HardwareID: a.o.HardwareID, Version: a.o.Version, Board: a.o.Board}
	cr, err := c.Register(ctx, reg)
	if errors.Is(err, ErrCodeRefused) {
		a.mu.Lock()
		a.refused = true
		a.mu.Unlock()
		a.log.Warn("uplink: registration refused", "err", err)
		a.contactRefused(err)
		return true, false
	}
	if err != nil {
		a.contact(err)
		return false, false
	}
	a.mu.Lock()
	url := a.cloudURL() // as configured, which currentReg compares with
	a.mu.Unlock()
	r := &storedRegistration{Credentials: cr, Code: code, CloudURL: url, HardwareID: a.o.HardwareID, Time: time.Now().UTC()}
	data, _ := json.MarshalIndent(r, "", "  ")
	if err := writeFileAtomic(filepath.Join(a.o.StateDir, RegistrationFile), append(data, '\n'), 0o600); err != nil {
		a.log.Error("uplink: storing the registration", "err", err)
		return false, false
	}
	a.mu.Lock()
	a.reg = r
	a.mu.Unlock()
	a.log.Info("uplink: registered", "sensor", cr.SensorID, "cloud", c.URL())
	a.contact(nil)
	return true, true
}

// setConfig persists and applies a configuration the cloud sent.
func (a *Agent) setConfig(cfg Config) {
	a.mu.Lock()
	same := a.config.Revision == cfg.Revision && cfg.Revision != ""
	a.mu.Unlock()
	if same {
		return
	}
	if err := SaveConfig(a.o.StateDir, cfg); err != nil {
		a.log.Error("uplink: storing the configuration", "err", err)
	}
	a.mu.Lock()
	a.config = cfg
	a.mu.Unlock()
	a.log.Info("uplink: new configuration", "revision", cfg.Revision, "network", cfg.NetworkID)
	if a.o.OnConfig != nil {
		a.o.OnConfig(cfg)
	}
}

// contact records the outcome of a contact with the cloud. When the cloud
// comes back after UnreachableAfter or longer, a cloud-unreachable event
// is queued (it travels once the link works).
func (a *Agent) contact(err error) {
	now := time.Now()
	a.mu.Lock()
	var since time.Time
	var lastErr string
	if err == nil {
		if !a.downSince.IsZero() && now.Sub(a.downSince) >= a.o.UnreachableAfter && a.reg != nil {
			since, lastErr = a.downSince, a.cloudErr
		}
		a.cloudOK, a.cloudErr, a.lastContact, a.downSince = true, "", now, time.Time{}
	} else {
		a.cloudOK, a.cloudErr = false, err.Error()
		if a.downSince.IsZero() {
			a.downSince = now
		}
	}
	a.mu.Unlock()
	if err != nil {
		a.log.Warn("uplink: cloud contact failed", "err", err)
	}
	if !since.IsZero() {
		d := now.Sub(since).Round(time.Second)
		a.Enqueue(since, Message{Event: &Event{Kind: EventCloudUnreachable, Time: 0,
			Detail: fmt.Sprintf("cloud unreachable for %s: %s", d, lastErr), Count: uint64(d / time.Second)}})
	}
	a.writeStatus(false)
}

// contactRefused records a refused code: the cloud answered (it is
// reachable) but the box is not registered.
func (a *Agent) contactRefused(err error) {
	a.mu.Lock()
	a.cloudOK, a.cloudErr, a.lastContact, a.downSince = true, err.Error(), time.Now(), time.Time{}
	a.mu.Unlock()
	a.writeStatus(false)
}

// Status returns the status as written to status.json.
func (a *Agent) Status() status.Status {
	a.mu.Lock()
	s := status.Status{Time: time.Now().UTC(), Version: a.o.Version, CloudURL: a.cloudURL(),
		CloudOK: a.cloudOK, LastContact: a.lastContact, CloudError: a.cloudErr}
	switch reg := a.currentReg(); {
	case reg != nil && a.sensing:
		s.Registration, s.SensorID = status.Sensing, reg.SensorID
	case reg != nil:
		s.Registration, s.SensorID = status.Registered, reg.SensorID
	case a.settings.PersonalizationCode == "":
		s.Registration = status.Unregistered
		if s.CloudError == "" {
			s.CloudError = "no personalization code set"
		}
	default:
		s.Registration = status.Registering
	}
	a.mu.Unlock()
	s.SpoolBytes = a.spool.Stats().PendingBytes
	if a.o.StatusFill != nil {
		a.o.StatusFill(&s)
	}
	return s
}

// writeStatus writes status.json; unless always, only when the
// registration or cloud state changed.
func (a *Agent) writeStatus(always bool) {
	s := a.Status()
	key := fmt.Sprint(s.Registration, s.SensorID, s.CloudOK, s.CloudError)
	a.mu.Lock()
	changed := key != a.lastStatus
	a.lastStatus = key
	a.mu.Unlock()
	if !always && !changed {
		return
	}
	a.statusMu.Lock()
	defer a.statusMu.Unlock()
	if err := status.Write(a.o.StateDir, s); err != nil {
		a.log.Warn("uplink: status", "err", err)
	}
}

// Drain waits until every spooled batch is acknowledged, or ctx ends. A
// refused code ends it at once with the refusal.
func (a *Agent) Drain(ctx context.Context) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		a.mu.Lock()
		refused, errText, reg := a.refused, a.cloudErr, a.currentReg()
		a.mu.Unlock()
		if refused {
			return errors.New(errText)
		}
		if reg != nil && a.spool.Stats().PendingBytes == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("uplink: %d bytes not sent: %w (last error: %s)", a.spool.Stats().PendingBytes, ctx.Err(), errText)
		case <-t.C:
		}
	}
}

// WaitRegistered waits for the registration, or ctx's end, or a refusal.
func (a *Agent) WaitRegistered(ctx context.Context) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		a.mu.Lock()
		refused, errText, reg, code, url := a.refused, a.cloudErr, a.currentReg(), a.settings.PersonalizationCode, a.cloudURL()
		a.mu.Unlock()
		switch {
		case reg != nil:
			return nil
		case url == "":
			return fmt.Errorf("uplink: no cloud URL: give -cloud or set it in %s", a.o.SettingsPath)
		case refused:
			return errors.New(errText)
		case code == "":
			return fmt.Errorf("uplink: no personalization code in %s", a.o.SettingsPath)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("uplink: not registered: %w (last error: %s)", ctx.Err(), errText)
		case <-t.C:
		}
	}
}

// RefreshConfig pulls the configuration now (registered boxes only) and
// applies it when it changed.
func (a *Agent) RefreshConfig(ctx context.Context) error {
	a.mu.Lock()
	reg := a.currentReg()
	c, err := a.clientLocked()
	a.mu.Unlock()
	if reg == nil {
		return ErrNotRegistered
	}
	if err != nil {
		return err
	}
	cfg, err := c.FetchConfig(ctx, reg.Credentials)
	if err != nil {
		a.contact(err)
		return err
	}
	a.contact(nil)
	a.setConfig(cfg)
	return nil
}

// WriteStatus rewrites status.json now (after the daemon's part changed).
func (a *Agent) WriteStatus() { a.writeStatus(true) }
