package uplink

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/passivesensor/sensor/asset"
)

// Config is the sensor's configuration as the cloud sends it (JSON, from
// GET /v1/config). The sensor keeps the last one it received in its state
// directory (ConfigFile) and starts from it when the cloud is away.
type Config struct {
	// Revision changes whenever the configuration does.
	Revision string `json:"revision"`
	// NetworkID names the network the sensor watches; the cloud merges
	// assets by IP only within one network id.
	NetworkID string `json:"network_id,omitempty"`
	// Classes are the inventoried (static or DHCP) and non-inventoried
	// ranges, excluded IPs and MACs, and the monitored-external groups.
	Classes asset.Classes `json:"classes"`
	// HostnameExclusions are host names that never identify a device
	// (shared names such as "localhost" or an image's default name).
	HostnameExclusions []string `json:"hostname_exclusions,omitempty"`
	// DomainSuffix makes "host" and "host.DomainSuffix" the same name.
	DomainSuffix string `json:"domain_suffix,omitempty"`
	// DHCPLease is how long an address of a DHCP range keeps naming the
	// same device after it was last seen, in seconds.
	DHCPLease int64 `json:"dhcp_lease_s,omitempty"`
	// Intervals are the reporting intervals.
	Intervals Intervals `json:"intervals"`
	// FingerprintConsent allows sending the protocol-specific raw
	// discovery data (the assets' other attributes). Without it asset
	// records carry only the identity fields.
	FingerprintConsent bool `json:"fingerprint_consent"`
	// Dictionary is the newest static string dictionary version the
	// cloud decodes (dict.go); the sensor uses no newer one.
	Dictionary uint `json:"string_dictionary,omitempty"`
}

// Intervals are the reporting intervals, in seconds in JSON.
type Intervals struct {
	Heartbeat time.Duration `json:"-"`
	NewAssets time.Duration `json:"-"` // new assets are reported within this
	Updates   time.Duration `json:"-"` // changed assets are reported this often
	Traffic   time.Duration `json:"-"` // one traffic report per interval
	Config    time.Duration `json:"-"` // the configuration is pulled this often
}

type intervalsJSON struct {
	Heartbeat int64 `json:"heartbeat_s,omitempty"`
	NewAssets int64 `json:"new_assets_s,omitempty"`
	Updates   int64 `json:"updates_s,omitempty"`
	Traffic   int64 `json:"traffic_s,omitempty"`
	Config    int64 `json:"config_s,omitempty"`
}

// MarshalJSON writes the intervals as whole seconds.
func (iv Intervals) MarshalJSON() ([]byte, error) {
	s := func(d time.Duration) int64 { return int64(d / time.Second) }
	return json.Marshal(intervalsJSON{s(iv.Heartbeat), s(iv.NewAssets), s(iv.Updates), s(iv.Traffic), s(iv.Config)})
}

// UnmarshalJSON reads intervals in seconds.
func (iv *Intervals) UnmarshalJSON(b []byte) error {
	var j intervalsJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	d := func(s int64) time.Duration { return time.Duration(s) * time.Second }
	*iv = Intervals{d(j.Heartbeat), d(j.NewAssets), d(j.Updates), d(j.Traffic), d(j.Config)}
	return nil
}

// DefaultIntervals are the product's reporting intervals: heartbeat every
// minute, new assets within 5 minutes, changed attributes every 30
// minutes, traffic every 5 minutes, configuration every 5 minutes.
func DefaultIntervals() Intervals {
	return Intervals{Heartbeat: time.Minute, NewAssets: 5 * time.Minute, Updates: 30 * time.Minute,
		Traffic: 5 * time.Minute, Config: 5 * time.Minute}
}

// WithDefaults fills zero intervals from d.
func (iv Intervals) WithDefaults(d Intervals) Intervals {
	for _, p := range []struct{ v, d *time.Duration }{{&iv.Heartbeat, &d.Heartbeat}, {&iv.NewAssets, &d.NewAssets},
		{&iv.Updates, &d.Updates}, {&iv.Traffic, &d.Traffic}, {&iv.Config, &d.Config}} {
		if *p.v <= 0 {
			*p.v = *p.d
		}
	}
	return iv
}

// MaxConfigSize bounds a configuration document.
const MaxConfigSize = 1 << 20

// DefaultConfig is the configuration before the cloud sent one: the
// private ranges inventoried as static, default intervals, no consent for
// fingerprint data.
func DefaultConfig() Config {
	return Config{Revision: "default", Classes: asset.DefaultClasses(), Intervals: DefaultIntervals()}
}

// Validate checks a configuration before it is applied.
func (c *Config) Validate() error {
	if err := c.Classes.Validate(); err != nil {
		return fmt.Errorf("uplink: configuration %q: %w", c.Revision, err)
	}
	if c.DHCPLease < 0 {
		return fmt.Errorf("uplink: configuration %q: negative DHCP lease %d", c.Revision, c.DHCPLease)
	}
	for _, d := range []time.Duration{c.Intervals.Heartbeat, c.Intervals.NewAssets, c.Intervals.Updates, c.Intervals.Traffic, c.Intervals.Config} {
		if d < 0 {
			return fmt.Errorf("uplink: configuration %q: negative interval", c.Revision)
		}
	}
	for _, h := range c.HostnameExclusions {
		if strings.TrimSpace(h) == "" {
			return fmt.Errorf("uplink: configuration %q: empty hostname exclusion", c.Revision)
		}
	}
	return nil
}

// ParseConfig decodes and validates a configuration document.
func ParseConfig(data []byte) (Config, error) {
	var c Config
	if len(data) > MaxConfigSize {
		return c, fmt.Errorf("uplink: configuration of %d bytes exceeds %d", len(data), MaxConfigSize)
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("uplink: configuration: %w", err)
	}
	if err := c.Validate(); err != nil {
		return c, err
	}
	return c, nil
}

// ConfigFile is the cached configuration's name in the state directory.
const ConfigFile = "cloud-config.json"

// LoadConfig reads the cached configuration from the state directory. A
// missing file gives DefaultConfig and no error.
func LoadConfig(dir string) (Config, error) {
	data, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if os.IsNotExist(err) {
		return DefaultConfig(), nil
	}
	if err != nil {
		return DefaultConfig(), fmt.Errorf("uplink: cached configuration: %w", err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return DefaultConfig(), fmt.Errorf("uplink: cached configuration %s: %w", filepath.Join(dir, ConfigFile), err)
	}
	return c, nil
}

// SaveConfig stores the configuration in the state directory atomically.
func SaveConfig(dir string, c Config) error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("uplink: configuration: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, ConfigFile), append(data, '\n'), 0o644)
}

// writeFileAtomic replaces path with data: temporary file, fsync, rename,
// fsync of the directory. A power cut leaves the old or the new file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("uplink: write %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}
