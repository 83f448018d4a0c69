package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/passivesensor/sensor/asset"
	"github.com/passivesensor/sensor/uplink"
)

// Server is the collector's HTTP API and web page.
type Server struct {
	Store *Store
	// Dir is the data directory; per-sensor configurations are
	// Dir/config/SENSOR.json, falling back to Dir/config/default.json.
	Dir string
	// MaxBody bounds a batch body; default uplink.MaxBody.
	MaxBody int64
	Log     *slog.Logger
	// UpdatePoll is how often sensors are told to ask for an update
	// manifest (Retry-After on every manifest answer); 0 says nothing
	// and leaves the sensor's own interval.
	UpdatePoll time.Duration
}

// Handler routes the API.
func (s *Server) Handler() http.Handler {
	if s.MaxBody == 0 {
		s.MaxBody = uplink.MaxBody
	}
	if s.Log == nil {
		s.Log = slog.Default()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+uplink.PathRegister, s.register)
	mux.HandleFunc("POST "+uplink.PathBatches, s.batches)
	mux.HandleFunc("GET "+uplink.PathConfig, s.config)
	mux.HandleFunc("GET "+PathUpdateManifest, s.updateManifest)
	mux.HandleFunc("GET "+PathUpdateArtefacts+"{name}", s.updateArtefact)
	mux.HandleFunc("POST "+PathUpdateReport, s.updateReport)
	mux.HandleFunc("GET /api/sensors", s.apiSensors)
	mux.HandleFunc("GET /api/updates", s.apiUpdates)
	mux.HandleFunc("GET /api/assets", s.apiAssets)
	mux.HandleFunc("GET /api/devices", s.apiDevices)
	mux.HandleFunc("GET /api/traffic", s.apiTraffic)
	mux.HandleFunc("GET /api/events", s.apiEvents)
	mux.HandleFunc("GET /{$}", s.page)
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func fail(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, map[string]string{"error": fmt.Sprintf(format, args...)})
}

// readBody reads a request body up to s.MaxBody; too large answers 413.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if r.ContentLength > s.MaxBody {
		fail(w, http.StatusRequestEntityTooLarge, "batch of %d bytes exceeds the limit of %d bytes", r.ContentLength, s.MaxBody)
		return nil, false
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, s.MaxBody+1))
	if err != nil {
		fail(w, http.StatusBadRequest, "reading the body: %v", err)
		return nil, false
	}
	if int64(len(data)) > s.MaxBody {
		fail(w, http.StatusRequestEntityTooLarge, "batch exceeds the limit of %d bytes", s.MaxBody)
		return nil, false
	}
	return data, true
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	data, ok := s.readBody(w, r)
	if !ok {
		return
	}
	b, err := uplink.DecodeBatch(data)
	if err != nil {
		fail(w, http.StatusBadRequest, "malformed registration: %v", err)
		return
	}
	if len(b.Messages) != 1 || b.Messages[0].Registration == nil {
		fail(w, http.StatusBadRequest, "a registration batch holds exactly one registration message")
		return
	}
	reg := b.Messages[0].Registration
	cr, err := s.Store.Register(r.Context(), reg)
	var refused errRefused
	if errors.As(err, &refused) {
		s.Log.Warn("registration refused", "code", reg.Code, "hardware", reg.HardwareID, "reason", string(refused))
		fail(w, http.StatusForbidden, "%s", string(refused))
		return
	}
	if err != nil {
		s.Log.Error("registration", "err", err)
		fail(w, http.StatusInternalServerError, "registration failed: %v", err)
		return
	}
	s.Log.Info("sensor registered", "sensor", cr.SensorID, "hardware", reg.HardwareID, "version", reg.Version)
	writeJSON(w, http.StatusOK, cr)
}

func (s *Server) auth(w http.ResponseWriter, r *http.Request) (string, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		fail(w, http.StatusUnauthorized, "no sensor credentials (Authorization: Bearer TOKEN)")
		return "", false
	}
	id, ok := s.Store.SensorByToken(r.Context(), strings.TrimSpace(tok))
	if !ok {
		fail(w, http.StatusUnauthorized, "unknown or revoked sensor credentials")
		return "", false
	}
	return id, true
}

func (s *Server) batches(w http.ResponseWriter, r *http.Request) {
	sensor, ok := s.auth(w, r)
	if !ok {
		return
	}
	data, ok := s.readBody(w, r)
	if !ok {
		return
	}
	b, err := uplink.DecodeBatch(data)
	if err != nil {
		fail(w, http.StatusBadRequest, "malformed batch: %v", err)
		return
	}
	if b.Sensor != sensor {
		fail(w, http.StatusForbidden, "batch names sensor %q, the credentials are sensor %q's", b.Sensor, sensor)
		return
	}
	res, err := s.Store.Ingest(r.Context(), sensor, b, len(data))
	if err != nil {
		s.Log.Error("ingest", "sensor", sensor, "err", err)
		fail(w, http.StatusInternalServerError, "storing the batch: %v", err)
		return
	}
	id := hex.EncodeToString(b.ID)
	s.Log.Info("batch", "sensor", sensor, "batch", id, "bytes", len(data), "messages", len(b.Messages), "duplicate", res.Duplicate)
	writeJSON(w, http.StatusOK, uplink.SendResult{Batch: id, Duplicate: res.Duplicate})
}

var safeName = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// configFor returns the sensor's configuration: Dir/config/SENSOR.json,
// else Dir/config/default.json, else the built-in default (private ranges
// inventoried, default intervals, consent given). A file without a
// revision gets one from its content's hash.
func (s *Server) configFor(sensor string) (uplink.Config, error) {
	var paths []string
	if sensor != "" && safeName.MatchString(sensor) {
		paths = append(paths, filepath.Join(s.Dir, "config", sensor+".json"))
	}
	paths = append(paths, filepath.Join(s.Dir, "config", "default.json"))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return uplink.Config{}, err
		}
		c, err := uplink.ParseConfig(data)
		if err != nil {
			return c, fmt.Errorf("%s: %w", p, err)
		}
		if c.Revision == "" {
			h := sha256.Sum256(data)
			c.Revision = hex.EncodeToString(h[:6])
		}
		c.Intervals = c.Intervals.WithDefaults(uplink.DefaultIntervals())
		c.Dictionary = uplink.DictVersion // what this collector decodes, whatever the file says
		return c, nil
	}
	c := uplink.DefaultConfig()
	c.Revision = "collector-default"
	c.FingerprintConsent = true
	c.DHCPLease = 86400
	c.Dictionary = uplink.DictVersion
	return c, nil
}

func (s *Server) config(w http.ResponseWriter, r *http.Request) {
	sensor, ok := s.auth(w, r)
	if !ok {
		return
	}
	c, err := s.configFor(sensor)
	if err != nil {
		s.Log.Error("configuration", "sensor", sensor, "err", err)
		fail(w, http.StatusInternalServerError, "configuration: %v", err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) apiSensors(w http.ResponseWriter, r *http.Request) {
	out, err := s.Store.Sensors(r.Context())
	if err != nil {
		fail(w, http.StatusInternalServerError, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, nonNil(out))
}

func (s *Server) apiAssets(w http.ResponseWriter, r *http.Request) {
	out, err := s.Store.Assets(r.Context(), r.URL.Query().Get("sensor"))
	if err != nil {
		fail(w, http.StatusInternalServerError, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, nonNil(out))
}

func (s *Server) apiTraffic(w http.ResponseWriter, r *http.Request) {
	out, err := s.Store.Traffic(r.Context(), r.URL.Query().Get("sensor"))
	if err != nil {
		fail(w, http.StatusInternalServerError, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, nonNil(out))
}

func (s *Server) apiEvents(w http.ResponseWriter, r *http.Request) {
	out, err := s.Store.Events(r.Context(), r.URL.Query().Get("sensor"))
	if err != nil {
		fail(w, http.StatusInternalServerError, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, nonNil(out))
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// DeviceJSON is one device after cross-sensor de-duplication.
type DeviceJSON struct {
	Assets    []string  `json:"assets"` // "SENSOR/ASSET-ID" of every record merged
	Rules     []string  `json:"merged_by,omitempty"`
	Kind      string    `json:"kind"`
	MAC       string    `json:"mac,omitempty"`
	IPs       []string  `json:"ips,omitempty"`
	Hostname  string    `json:"hostname,omitempty"`
	Vendor    string    `json:"vendor,omitempty"`
	Model     string    `json:"model,omitempty"`
	Firmware  string    `json:"firmware,omitempty"`
	Serial    string    `json:"serial,omitempty"`
	OS        string    `json:"os,omitempty"`
	Class     string    `json:"class,omitempty"`
	Protocols []string  `json:"protocols,omitempty"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

// addressing returns the addressing of ip by the inventoried ranges of c
// (longest prefix), static when none matches.
func addressing(c *uplink.Config, ip netip.Addr) string {
	best, bits := asset.AddressingStatic, -1
	for _, r := range c.Classes.Inventoried {
		if r.Prefix.Contains(ip) && r.Prefix.Bits() > bits {
			best, bits = r.Addressing, r.Prefix.Bits()
		}
	}
	if best == "" {
		best = asset.AddressingStatic
	}
	return best
}

// devices applies the de-duplication rules to every stored record.
func (s *Server) devices(recs []AssetJSON) ([]DeviceJSON, error) {
	global, err := s.configFor("")
	if err != nil {
		return nil, err
	}
	rules := Rules{HostnameExclusions: global.HostnameExclusions, DomainSuffix: global.DomainSuffix,
		Lease: time.Duration(global.DHCPLease) * time.Second}
	cfgs := map[string]*uplink.Config{}
	drs := make([]DedupRecord, len(recs))
	for i, a := range recs {
		c := cfgs[a.Sensor]
		if c == nil {
			cc, err := s.configFor(a.Sensor)
			if err != nil {
				return nil, err
			}
			c = &cc
			cfgs[a.Sensor] = c
		}
		d := DedupRecord{Sensor: a.Sensor, ID: a.ID, NetworkID: c.NetworkID, MAC: a.MAC, Hostname: a.Hostname,
			FirstSeen: a.FirstSeen, LastSeen: a.LastSeen,
			Pseudo: a.Kind == asset.External.String() || a.Kind == asset.MonitoredExternal.String()}
		if len(a.IPs) > 0 {
			if ip, err := netip.ParseAddr(a.IPs[0]); err == nil {
				d.IP, d.Addressing = ip, addressing(c, ip)
			}
		}
		drs[i] = d
	}
	var out []DeviceJSON
	for _, dev := range rules.Dedupe(drs) {
		var d DeviceJSON
		d.Rules = dev.Rules
		for _, i := range dev.Records {
			a := &recs[i]
			d.Assets = append(d.Assets, a.Sensor+"/"+a.ID)
			first := func(dst *string, v string) {
				if *dst == "" {
					*dst = v
				}
			}
			first(&d.Kind, a.Kind)
			first(&d.MAC, a.MAC)
			first(&d.Hostname, a.Hostname)
			first(&d.Vendor, a.Vendor)
			first(&d.Model, a.Model)
			first(&d.Firmware, a.Firmware)
			first(&d.Serial, a.Serial)
			first(&d.OS, a.OS)
			first(&d.Class, a.Class)
			for _, ip := range a.IPs {
				if !slices.Contains(d.IPs, ip) {
					d.IPs = append(d.IPs, ip)
				}
			}
			for _, p := range a.Protocols {
				if !slices.Contains(d.Protocols, p) {
					d.Protocols = append(d.Protocols, p)
				}
			}
			if d.FirstSeen.IsZero() || a.FirstSeen.Before(d.FirstSeen) {
				d.FirstSeen = a.FirstSeen
			}
			if a.LastSeen.After(d.LastSeen) {
				d.LastSeen = a.LastSeen
			}
		}
		slices.Sort(d.Protocols)
		out = append(out, d)
	}
	return out, nil
}

func (s *Server) apiDevices(w http.ResponseWriter, r *http.Request) {
	recs, err := s.Store.Assets(r.Context(), "")
	if err != nil {
		fail(w, http.StatusInternalServerError, "%v", err)
		return
	}
	out, err := s.devices(recs)
	if err != nil {
		fail(w, http.StatusInternalServerError, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, nonNil(out))
}
