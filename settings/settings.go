// Package settings holds the appliance's one typed, versioned, validated
// settings record: how the management interface is configured (DHCP or
// static address, gateway, DNS), the proxy to the cloud, the personalization
// code that registers the box, the cloud URL and the sensor's name.
//
// The record lives as JSON in one file on /perm. Load reads it and always
// returns usable settings (defaults when the file is missing or bad, the bad
// file kept aside); Update changes it under an exclusive lock so the LCD menu
// and the serial console, running as separate processes, never lose each
// other's changes; every write is atomic (temp file, fsync, rename, fsync of
// the directory) so a power cut leaves either the old or the new record.
//
// Every field has its own validator (ValidateAddress, ValidateGateway, ...)
// so a front end can check a value as it is typed; Settings.Validate checks
// the whole record and reports every problem in words a field technician
// understands.
package settings

import (
	"fmt"
	"path/filepath"
	"strings"
)

// FileName is the settings file's name inside the state directory
// (DefaultDir on the appliance); front ends take the directory with -settings.
const FileName = "settings.json"

// DefaultDir is the appliance's persistent state directory.
const DefaultDir = "/perm/sensor"

// PathIn returns the settings file's path inside the state directory dir.
func PathIn(dir string) string { return filepath.Join(dir, FileName) }

// CurrentVersion is the schema version this software writes.
//
// History:
//
//	1: flat record (dhcp bool, ip + netmask, dns as a comma-separated string,
//	   proxy as one "host:port" string, proxy_user, proxy_pass, code, cloud, name).
//	2: this layout: mode, CIDR address, DNS list, proxy object.
const CurrentVersion = 2

// MaxDNS is the number of DNS servers the record holds at most.
const MaxDNS = 3

// Mode is how the management interface gets its address.
type Mode string

// The management interface modes.
const (
	ModeDHCP   Mode = "dhcp"
	ModeStatic Mode = "static"
)

// Secret is a string that never shows in String, logs or fmt output: every
// fmt verb prints "[redacted]" (or "" when empty). JSON keeps the real value,
// since the settings file must hold it.
type Secret string

// Redacted is what a non-empty Secret prints as.
const Redacted = "[redacted]"

// String implements fmt.Stringer without revealing the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// GoString implements fmt.GoStringer without revealing the secret.
func (s Secret) GoString() string { return fmt.Sprintf("%q", s.String()) }

// Format implements fmt.Formatter so that no verb (%s, %v, %x, %d, %q ...)
// reveals the secret.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", s.String())
		return
	}
	fmt.Fprint(f, s.String())
}

// Proxy is the HTTP(S) proxy the uplink goes through. An empty Address means
// no proxy.
type Proxy struct {
	// Address is "host:port", e.g. "proxy.example.com:3128" or "[2001:db8::1]:8080".
	Address  string `json:"address,omitempty"`
	User     string `json:"user,omitempty"`
	Password Secret `json:"password,omitempty"`
}

// String describes the proxy with the password redacted.
func (p Proxy) String() string {
	if p.Address == "" && p.User == "" && p.Password == "" {
		return "none"
	}
	s := p.Address
	if s == "" {
		s = "(no address)"
	}
	if p.User != "" {
		s += " user " + p.User
	}
	if p.Password != "" {
		s += " password " + Redacted
	}
	return s
}

// GoString keeps %#v from revealing the password.
func (p Proxy) GoString() string {
	return fmt.Sprintf("settings.Proxy{Address:%q, User:%q, Password:%#v}", p.Address, p.User, p.Password)
}

// Settings is the whole record as stored on /perm.
type Settings struct {
	// Version is the schema version; Load migrates older ones and writes CurrentVersion.
	Version int `json:"version"`
	// Mode is dhcp or static.
	Mode Mode `json:"mode"`
	// Address is the static address in CIDR form, e.g. "192.168.1.20/24".
	// Kept (and still validated) in DHCP mode so switching back restores it.
	Address string `json:"address,omitempty"`
	// Gateway is the default gateway; it must lie inside Address's network.
	Gateway string `json:"gateway,omitempty"`
	// DNS lists up to MaxDNS name servers, IPv4 or IPv6.
	DNS []string `json:"dns,omitempty"`
	// Proxy is the proxy to the cloud; zero means direct.
	Proxy Proxy `json:"proxy,omitzero"`
	// PersonalizationCode registers the box, normalized as "ABCD-EFGH-JKMN-PQRS".
	PersonalizationCode string `json:"personalization_code,omitempty"`
	// CloudURL is the https:// endpoint reports go to.
	CloudURL string `json:"cloud_url,omitempty"`
	// Name is the sensor's host name (RFC 1123).
	Name string `json:"name,omitempty"`
}

// Defaults returns the settings a new or reset box starts from: DHCP, nothing else set.
func Defaults() Settings {
	return Settings{Version: CurrentVersion, Mode: ModeDHCP}
}

// Clone returns a deep copy (the DNS slice is not shared).
func (s Settings) Clone() Settings {
	if s.DNS != nil {
		s.DNS = append([]string(nil), s.DNS...)
	}
	return s
}

// Equal reports whether two records hold the same values.
func (s Settings) Equal(o Settings) bool {
	if s.Version != o.Version || s.Mode != o.Mode || s.Address != o.Address || s.Gateway != o.Gateway ||
		s.Proxy != o.Proxy || s.PersonalizationCode != o.PersonalizationCode || s.CloudURL != o.CloudURL ||
		s.Name != o.Name || len(s.DNS) != len(o.DNS) {
		return false
	}
	for i := range s.DNS {
		if s.DNS[i] != o.DNS[i] {
			return false
		}
	}
	return true
}

// String is a one-line summary safe for logs: the proxy password is redacted.
func (s Settings) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "v%d %s", s.Version, s.Mode)
	if s.Address != "" {
		fmt.Fprintf(&b, " address %s", s.Address)
	}
	if s.Gateway != "" {
		fmt.Fprintf(&b, " gateway %s", s.Gateway)
	}
	if len(s.DNS) > 0 {
		fmt.Fprintf(&b, " dns %s", strings.Join(s.DNS, ","))
	}
	fmt.Fprintf(&b, " proxy %s", s.Proxy)
	if s.PersonalizationCode != "" {
		fmt.Fprintf(&b, " code %s", s.PersonalizationCode)
	}
	if s.CloudURL != "" {
		fmt.Fprintf(&b, " cloud %s", s.CloudURL)
	}
	if s.Name != "" {
		fmt.Fprintf(&b, " name %s", s.Name)
	}
	return b.String()
}

// GoString keeps %#v from revealing the password.
func (s Settings) GoString() string {
	return fmt.Sprintf("settings.Settings{Version:%d, Mode:%q, Address:%q, Gateway:%q, DNS:%#v, Proxy:%#v, PersonalizationCode:%q, CloudURL:%q, Name:%q}",
		s.Version, s.Mode, s.Address, s.Gateway, s.DNS, s.Proxy, s.PersonalizationCode, s.CloudURL, s.Name)
}
