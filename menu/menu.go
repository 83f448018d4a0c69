// Package menu is the one set-up menu both front ends render: the serial
// console (a VT100 screen in PuTTY) and the front-panel LCD (16x2 or 20x4
// with five buttons). It holds the screens, the fields with their
// validation, the read-only status pages, and the actions (apply network,
// reboot, factory reset) behind the Actions interface the commands
// implement. It never draws anything itself.
//
// Network and proxy fields are edited on a draft: each value is checked as
// it is entered (settings' validators, with the technician's message), and
// the section's "Save" entry writes the section through settings.Update,
// which checks the whole record and keeps concurrent changes from the other
// front end. The personalization code is saved as soon as it is entered.
package menu

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/passivesensor/sensor/settings"
	"github.com/passivesensor/sensor/status"
)

// Actions are what the menu asks the box to do. The commands implement them
// (gokrazy's reboot, netcfg); tests record the calls.
type Actions interface {
	// ApplyNetwork configures the management interface from s and reports
	// whether the cloud is reachable afterwards (nil) or why not.
	ApplyNetwork(s settings.Settings) error
	// Reboot restarts the box.
	Reboot() error
	// FactoryReset erases the settings and the sensor's state and reboots.
	FactoryReset() error
}

// NetInfo is the management interface as the kernel sees it now.
type NetInfo struct {
	Name string
	IP   string // "a.b.c.d/n", "" if none
	MAC  string
	Link bool
}

// Env is what a Menu reads and writes.
type Env struct {
	// Dir is the state directory holding settings.json and status.json.
	Dir     string
	Actions Actions
	// Net returns the management interface's current state; nil shows "unknown".
	Net func() NetInfo
}

// Kind says what an Item is.
type Kind int

// Item kinds.
const (
	Submenu Kind = iota // Enter opens Children
	Field               // Enter edits the value
	Info                // a read-only line
	Action              // Enter runs it, after its confirmations
)

// FieldKind says how a field's value is typed.
type FieldKind int

// Field kinds.
const (
	Text   FieldKind = iota // free text over Charset
	IPv4                    // dotted quad, entered digit by digit on the LCD
	Choice                  // one of Choices
	Secret                  // text shown masked
)

// Charsets the LCD cycles through when entering text.
const (
	CharsetHost   = "abcdefghijklmnopqrstuvwxyz0123456789.-"
	CharsetDigits = "0123456789"
	CharsetCode   = settings.CodeAlphabet
	CharsetText   = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_@!#$%&*+=?/~"
)

// Item is one line of a menu screen. Labels fit 14 characters and
// confirmation questions 16, so a 16x2 LCD shows them whole.
type Item struct {
	Label string
	Kind  Kind
	// Children lists a submenu's items (computed each time, so status is fresh).
	Children func() []*Item

	// Field: the value's kind, allowed characters, choices, maximum length,
	// how to read it from the draft and how to set it (validating).
	FieldKind FieldKind
	Charset   string
	Choices   []string
	MaxLen    int
	Get       func() string
	Set       func(string) error
	// Hint says what is expected, shown when editing.
	Hint string

	// Info: the value shown after the label.
	Value func() string

	// Action: confirmation questions asked in turn (all must be answered yes),
	// then Run, whose result message is shown.
	Confirm []string
	Run     func() (string, error)
}

// Display is the value shown beside the label (masked for secrets).
func (it *Item) Display() string {
	switch it.Kind {
	case Field:
		v := it.Get()
		if it.FieldKind == Secret && v != "" {
			return strings.Repeat("*", len(v))
		}
		if v == "" {
			return "-"
		}
		return v
	case Info:
		if it.Value != nil {
			return it.Value()
		}
	}
	return ""
}

// Menu is the set-up menu over one settings file.
type Menu struct {
	env  Env
	path string

	mu       sync.Mutex
	draft    settings.Settings // network and proxy being edited
	dirty    map[string]bool   // sections with unsaved changes
	netState string            // result of the last network apply
	Root     *Item
}

// New builds the menu over env.Dir, loading the current settings as the draft.
func New(env Env) *Menu {
	m := &Menu{env: env, path: settings.PathIn(env.Dir), dirty: map[string]bool{}}
	m.Reload()
	m.Root = &Item{Label: "Setup", Kind: Submenu, Children: m.top}
	return m
}

// Dir is the state directory the menu works on.
func (m *Menu) Dir() string { return m.env.Dir }

// Reload drops unsaved changes and reads the settings file again.
func (m *Menu) Reload() {
	s, _, _ := settings.Load(m.path)
	m.mu.Lock()
	m.draft = s
	clear(m.dirty)
	m.mu.Unlock()
}

// Draft returns a copy of the settings being edited.
func (m *Menu) Draft() settings.Settings {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.draft.Clone()
}

// Dirty reports whether section ("network", "proxy") has unsaved changes.
func (m *Menu) Dirty(section string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.dirty[section]
}

func (m *Menu) edit(section string, f func(d *settings.Settings) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.draft.Clone()
	if err := f(&d); err != nil {
		return err
	}
	m.draft = d
	m.dirty[section] = true
	return nil
}

func (m *Menu) get(f func(d *settings.Settings) string) func() string {
	return func() string {
		m.mu.Lock()
		defer m.mu.Unlock()
		return f(&m.draft)
	}
}

func (m *Menu) top() []*Item {
	return []*Item{
		{Label: "Network", Kind: Submenu, Children: m.networkItems},
		{Label: "Proxy", Kind: Submenu, Children: m.proxyItems},
		{Label: "Registration", Kind: Submenu, Children: m.registrationItems},
		{Label: "Status", Kind: Submenu, Children: m.statusItems},
		{Label: "Update", Kind: Submenu, Children: m.updateItems},
		{Label: "Reboot", Kind: Action, Confirm: []string{"Reboot now?"}, Run: m.reboot},
		{Label: "Factory reset", Kind: Action,
			Confirm: []string{"Erase settings?", "Really erase?"}, Run: m.factoryReset},
	}
}

// ipOf and maskOf split the draft's CIDR address.
func ipOf(cidr string) string {
	if i := strings.IndexByte(cidr, '/'); i >= 0 {
		return cidr[:i]
	}
	return cidr
}

func bitsOf(cidr string) int {
	if i := strings.IndexByte(cidr, '/'); i >= 0 {
		if n, err := strconv.Atoi(cidr[i+1:]); err == nil {
			return n
		}
	}
	return -1
}

// MaskString renders an IPv4 prefix length as a dotted netmask.
func MaskString(bits int) string {
	if bits < 0 || bits > 32 {
		return ""
	}
	v := ^uint32(0) << (32 - bits)
	if bits == 0 {
		v = 0
	}
	return fmt.Sprintf("%d.%d.%d.%d", v>>24, v>>16&0xff, v>>8&0xff, v&0xff)
}

// ParseMask reads a dotted IPv4 netmask ("255.255.255.0") or a prefix
// length ("24", "/24") and returns the prefix length.
func ParseMask(s string) (int, error) {
	s = strings.TrimSpace(s)
	if t, ok := strings.CutPrefix(s, "/"); ok || !strings.Contains(s, ".") {
		n, err := strconv.Atoi(t)
		if err != nil || n < 1 || n > 32 {
			return 0, fmt.Errorf("mask %q is not like 255.255.255.0 or 24", s)
		}
		return n, nil
	}
	a, err := netip.ParseAddr(canonIPv4(s))
	if err != nil || !a.Is4() {
		return 0, fmt.Errorf("mask %q is not like 255.255.255.0", s)
	}
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	n := 0
	for n < 32 && v&(1<<(31-n)) != 0 {
		n++
	}
	if n == 0 || v<<n != 0 {
		return 0, fmt.Errorf("mask %s is not a valid netmask (ones then zeros, like 255.255.255.0)", s)
	}
	return n, nil
}

// canonIPv4 strips leading zeros from each part of a dotted quad typed
// digit by digit ("192.168.001.020" -> "192.168.1.20"); other text is
// returned unchanged.
func canonIPv4(s string) string {
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return s
	}
	for i, p := range parts {
		if p == "" || len(p) > 3 {
			return s
		}
		for _, c := range p {
			if c < '0' || c > '9' {
				return s
			}
		}
		n, _ := strconv.Atoi(p)
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ".")
}

// CanonIPv4 is canonIPv4 for the front ends.
func CanonIPv4(s string) string { return canonIPv4(strings.TrimSpace(s)) }

func parseIPv4(what, s string) (string, error) {
	c := canonIPv4(strings.TrimSpace(s))
	a, err := netip.ParseAddr(c)
	if err != nil || !a.Is4() {
		return "", fmt.Errorf("%s %q is not an IPv4 address like 192.168.1.20", what, s)
	}
	return c, nil
}

func (m *Menu) networkItems() []*Item {
	return []*Item{
		{Label: "Mode", Kind: Field, FieldKind: Choice, Choices: []string{"dhcp", "static"},
			Hint: "dhcp or static",
			Get:  m.get(func(d *settings.Settings) string { return string(d.Mode) }),
			Set: func(v string) error {
				return m.edit("network", func(d *settings.Settings) error {
					mode := settings.Mode(strings.ToLower(strings.TrimSpace(v)))
					if err := settings.ValidateMode(mode); err != nil {
						return err
					}
					d.Mode = mode
					return nil
				})
			}},
		{Label: "IP", Kind: Field, FieldKind: IPv4, MaxLen: 15, Hint: "IPv4 address, like 192.168.1.20",
			Get: m.get(func(d *settings.Settings) string { return ipOf(d.Address) }),
			Set: func(v string) error {
				return m.edit("network", func(d *settings.Settings) error {
					ip, err := parseIPv4("IP", v)
					if err != nil {
						return err
					}
					bits := bitsOf(d.Address)
					if bits < 0 {
						bits = 24
					}
					addr := fmt.Sprintf("%s/%d", ip, bits)
					if err := settings.ValidateAddress(addr); err != nil {
						return err
					}
					d.Address = addr
					return nil
				})
			}},
		{Label: "Mask", Kind: Field, FieldKind: IPv4, MaxLen: 15, Hint: "netmask, like 255.255.255.0",
			Get: m.get(func(d *settings.Settings) string { return MaskString(bitsOf(d.Address)) }),
			Set: func(v string) error {
				return m.edit("network", func(d *settings.Settings) error {
					bits, err := ParseMask(v)
					if err != nil {
						return err
					}
					if d.Address == "" {
						return errors.New("set the IP address before the mask")
					}
					addr := fmt.Sprintf("%s/%d", ipOf(d.Address), bits)
					if err := settings.ValidateAddress(addr); err != nil {
						return err
					}
					d.Address = addr
					return nil
				})
			}},
		{Label: "Gateway", Kind: Field, FieldKind: IPv4, MaxLen: 15, Hint: "router inside the IP's network",
			Get: m.get(func(d *settings.Settings) string { return d.Gateway }),
			Set: func(v string) error {
				return m.edit("network", func(d *settings.Settings) error {
					if strings.TrimSpace(v) == "" {
						d.Gateway = ""
						return nil
					}
					gw, err := parseIPv4("gateway", v)
					if err != nil {
						return err
					}
					if err := settings.ValidateGateway(gw, d.Address); err != nil {
						return err
					}
					d.Gateway = gw
					return nil
				})
			}},
		m.dnsItem(0), m.dnsItem(1),
		{Label: "Save & apply", Kind: Action, Confirm: []string{"Apply network?"}, Run: m.saveNetwork},
		{Label: "Net result", Kind: Info, Value: func() string {
			m.mu.Lock()
			st := m.netState
			m.mu.Unlock()
			if _, ok := settings.Previous(m.path); ok && st == "" {
				st = "cloud not reached yet; Undo network offered"
			}
			if st == "" {
				return "-"
			}
			return st
		}},
		{Label: "Undo network", Kind: Action, Confirm: []string{"Restore network?"}, Run: m.restorePrevious},
	}
}

func (m *Menu) dnsItem(i int) *Item {
	return &Item{Label: fmt.Sprintf("DNS %d", i+1), Kind: Field, FieldKind: IPv4, MaxLen: 15,
		Hint: "DNS server, like 192.168.1.1 (empty: none)",
		Get: m.get(func(d *settings.Settings) string {
			if i < len(d.DNS) {
				return d.DNS[i]
			}
			return ""
		}),
		Set: func(v string) error {
			return m.edit("network", func(d *settings.Settings) error {
				v = strings.TrimSpace(v)
				list := append([]string(nil), d.DNS...)
				if v == "" {
					if i < len(list) {
						list = append(list[:i], list[i+1:]...)
					}
				} else {
					ip, err := parseIPv4("DNS", v)
					if err != nil {
						return err
					}
					if i < len(list) {
						list[i] = ip
					} else {
						list = append(list, ip)
					}
				}
				if err := settings.ValidateDNSList(list); err != nil {
					return err
				}
				d.DNS = list
				return nil
			})
		}}
}

func splitHostPort(addr string) (host, port string) {
	if addr == "" {
		return "", ""
	}
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return addr, ""
	}
	return strings.Trim(addr[:i], "[]"), addr[i+1:]
}

func joinHostPort(host, port string) string {
	if host == "" && port == "" {
		return ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return host + ":" + port
}

func (m *Menu) proxyItems() []*Item {
	return []*Item{
		{Label: "Host", Kind: Field, FieldKind: Text, Charset: CharsetHost, MaxLen: 63,
			Hint: "proxy host name or IP (empty: no proxy)",
			Get:  m.get(func(d *settings.Settings) string { h, _ := splitHostPort(d.Proxy.Address); return h }),
			Set: func(v string) error {
				return m.edit("proxy", func(d *settings.Settings) error {
					v = strings.TrimSpace(v)
					_, port := splitHostPort(d.Proxy.Address)
					if v == "" {
						d.Proxy = settings.Proxy{}
						return nil
					}
					if port == "" {
						port = "3128"
					}
					a := joinHostPort(v, port)
					if err := settings.ValidateProxyAddress(a); err != nil {
						return err
					}
					d.Proxy.Address = a
					return nil
				})
			}},
		{Label: "Port", Kind: Field, FieldKind: Text, Charset: CharsetDigits, MaxLen: 5,
			Hint: "proxy port 1-65535, like 3128",
			Get:  m.get(func(d *settings.Settings) string { _, p := splitHostPort(d.Proxy.Address); return p }),
			Set: func(v string) error {
				return m.edit("proxy", func(d *settings.Settings) error {
					host, _ := splitHostPort(d.Proxy.Address)
					v = strings.TrimLeft(strings.TrimSpace(v), "0")
					if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 65535 {
						return fmt.Errorf("proxy port must be a number 1-65535, like 3128")
					}
					if host == "" {
						return errors.New("set the proxy host before the port")
					}
					a := joinHostPort(host, v)
					if err := settings.ValidateProxyAddress(a); err != nil {
						return err
					}
					d.Proxy.Address = a
					return nil
				})
			}},
		{Label: "User", Kind: Field, FieldKind: Text, Charset: CharsetText, MaxLen: 64,
			Hint: "proxy user (empty: none)",
			Get:  m.get(func(d *settings.Settings) string { return d.Proxy.User }),
			Set: func(v string) error {
				return m.edit("proxy", func(d *settings.Settings) error {
					if err := settings.ValidateProxyUser(v); err != nil {
						return err
					}
					d.Proxy.User = v
					return nil
				})
			}},
		{Label: "Password", Kind: Field, FieldKind: Secret, Charset: CharsetText, MaxLen: 64,
			Hint: "proxy password",
			Get:  m.get(func(d *settings.Settings) string { return string(d.Proxy.Password) }),
			Set: func(v string) error {
				return m.edit("proxy", func(d *settings.Settings) error {
					if err := settings.ValidateProxyPassword(settings.Secret(v)); err != nil {
						return err
					}
					d.Proxy.Password = settings.Secret(v)
					return nil
				})
			}},
		{Label: "Save", Kind: Action, Run: m.saveProxy},
	}
}

func (m *Menu) registrationItems() []*Item {
	return []*Item{
		{Label: "Code", Kind: Field, FieldKind: Text, Charset: CharsetCode, MaxLen: 19,
			Hint: "16 characters from the code sheet, like ABCD-EFGH-JKMN-PQRS",
			Get: func() string {
				s, _, _ := settings.Load(m.path)
				return s.PersonalizationCode
			},
			Set: m.setCode},
		{Label: "State", Kind: Info, Value: func() string {
			st, err := status.Read(m.env.Dir)
			if err != nil {
				return NotRunning
			}
			return st.Registration
		}},
	}
}

// setCode normalises and saves the personalization code at once.
func (m *Menu) setCode(v string) error {
	code, err := settings.NormalizePersonalizationCode(strings.TrimSpace(v))
	if err != nil {
		return err
	}
	s, err := settings.Update(m.path, func(s *settings.Settings) error {
		s.PersonalizationCode = code
		return nil
	})
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.draft.PersonalizationCode = s.PersonalizationCode
	m.mu.Unlock()
	return nil
}

// NotRunning is what status lines show when the daemon's status file is missing.
const NotRunning = "sensor not running"

func (m *Menu) statusItems() []*Item {
	var ni NetInfo
	if m.env.Net != nil {
		ni = m.env.Net()
	}
	unknown := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	link := "down"
	if ni.Link {
		link = "up"
	}
	items := []*Item{
		{Label: "IP", Kind: Info, Value: func() string { return unknown(ni.IP) }},
		{Label: "MAC", Kind: Info, Value: func() string { return unknown(ni.MAC) }},
		{Label: "Link", Kind: Info, Value: func() string { return link }},
	}
	st, err := status.Read(m.env.Dir)
	if err != nil {
		return append(items, &Item{Label: "Sensor", Kind: Info, Value: func() string { return NotRunning }})
	}
	cloud := "unreachable"
	if st.CloudOK {
		cloud = "ok"
	} else if st.CloudError != "" {
		cloud = "unreachable: " + st.CloudError
	}
	items = append(items,
		&Item{Label: "Cloud", Kind: Info, Value: func() string { return cloud }},
		&Item{Label: "Registered", Kind: Info, Value: func() string { return unknown(st.Registration) }},
	)
	for _, ifc := range st.Interfaces {
		v := fmt.Sprintf("%s %s drop %d", updown(ifc.Up), Rate(ifc.RateBps), ifc.Drops)
		items = append(items, &Item{Label: ifc.Name, Kind: Info, Value: func() string { return v }})
	}
	items = append(items,
		&Item{Label: "Assets", Kind: Info, Value: func() string { return strconv.Itoa(st.Assets) }},
		&Item{Label: "Version", Kind: Info, Value: func() string { return unknown(st.Version) }},
		&Item{Label: "Other", Kind: Info, Value: func() string { return unknown(st.OtherVersion) }},
	)
	if !st.Time.IsZero() && time.Since(st.Time) > time.Minute {
		age := time.Since(st.Time).Round(time.Second).String()
		items = append(items, &Item{Label: "Stale", Kind: Info, Value: func() string { return "status " + age + " old" }})
	}
	return items
}

func updown(b bool) string {
	if b {
		return "up"
	}
	return "down"
}

// Rate renders bits per second compactly: "0", "950k", "12.3M", "1.2G".
func Rate(bps float64) string {
	switch {
	case bps >= 1e9:
		return strconv.FormatFloat(bps/1e9, 'f', 1, 64) + "G"
	case bps >= 1e6:
		return strconv.FormatFloat(bps/1e6, 'f', 1, 64) + "M"
	case bps >= 1e3:
		return strconv.FormatFloat(bps/1e3, 'f', 0, 64) + "k"
	}
	return strconv.FormatFloat(bps, 'f', 0, 64)
}

func (m *Menu) updateItems() []*Item {
	st, err := status.Read(m.env.Dir)
	if err != nil {
		return []*Item{{Label: "Update", Kind: Info, Value: func() string { return NotRunning }}}
	}
	state := st.Update.State
	if state == "" {
		state = "none pending"
	}
	items := []*Item{{Label: "State", Kind: Info, Value: func() string { return state }}}
	if st.Update.Version != "" {
		items = append(items, &Item{Label: "To", Kind: Info, Value: func() string { return st.Update.Version }})
	}
	if st.Update.Detail != "" {
		items = append(items, &Item{Label: "Detail", Kind: Info, Value: func() string { return st.Update.Detail }})
	}
	return items
}

// saveNetwork writes the network section of the draft, then applies it.
// The settings it replaces are kept so that a change which loses the cloud
// can be undone from the menu.
func (m *Menu) saveNetwork() (string, error) {
	d := m.Draft()
	var before settings.Settings
	saved, err := settings.Update(m.path, func(s *settings.Settings) error {
		before = s.Clone()
		s.Mode, s.Address, s.Gateway = d.Mode, d.Address, d.Gateway
		s.DNS = append([]string(nil), d.DNS...)
		return nil
	})
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	m.dirty["network"] = false
	m.mu.Unlock()
	return m.apply(saved, &before)
}

func (m *Menu) apply(s settings.Settings, before *settings.Settings) (string, error) {
	if m.env.Actions == nil {
		return "saved", nil
	}
	if before != nil && !sameNetwork(*before, s) {
		// Kept on disk, so the other front end and a restarted one can
		// offer it back too.
		if err := settings.KeepPrevious(m.path, *before); err != nil {
			return "", fmt.Errorf("saved, but the old network could not be kept: %v", err)
		}
	}
	err := m.env.Actions.ApplyNetwork(s)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.netState = "cloud unreachable: " + err.Error()
		if _, ok := settings.Previous(m.path); ok {
			return "", fmt.Errorf("saved, but the cloud is unreachable (%v); Undo network brings back the old network", err)
		}
		return "", fmt.Errorf("cloud unreachable: %v", err)
	}
	m.netState = "ok, cloud reachable"
	if err := settings.DropPrevious(m.path); err != nil {
		return "", err
	}
	return "saved and applied, cloud reachable", nil
}

func sameNetwork(a, b settings.Settings) bool {
	if a.Mode != b.Mode || a.Address != b.Address || a.Gateway != b.Gateway || len(a.DNS) != len(b.DNS) {
		return false
	}
	for i := range a.DNS {
		if a.DNS[i] != b.DNS[i] {
			return false
		}
	}
	return true
}

// Previous returns the network settings a change replaced while the cloud
// has not been reached with the new ones.
func (m *Menu) Previous() (settings.Settings, bool) {
	return settings.Previous(m.path)
}

func (m *Menu) restorePrevious() (string, error) {
	prev, ok := m.Previous()
	if !ok {
		return "", errors.New("no previous network to restore")
	}
	saved, err := settings.Update(m.path, func(s *settings.Settings) error {
		s.Mode, s.Address, s.Gateway = prev.Mode, prev.Address, prev.Gateway
		s.DNS = append([]string(nil), prev.DNS...)
		return nil
	})
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	m.draft.Mode, m.draft.Address, m.draft.Gateway = saved.Mode, saved.Address, saved.Gateway
	m.draft.DNS = append([]string(nil), saved.DNS...)
	m.mu.Unlock()
	if err := settings.DropPrevious(m.path); err != nil {
		return "", err
	}
	return m.apply(saved, nil)
}

func (m *Menu) saveProxy() (string, error) {
	d := m.Draft()
	_, err := settings.Update(m.path, func(s *settings.Settings) error {
		s.Proxy = d.Proxy
		return nil
	})
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	m.dirty["proxy"] = false
	m.mu.Unlock()
	return "proxy saved", nil
}

func (m *Menu) reboot() (string, error) {
	if m.env.Actions == nil {
		return "", errors.New("reboot is not available here")
	}
	if err := m.env.Actions.Reboot(); err != nil {
		return "", err
	}
	return "rebooting", nil
}

func (m *Menu) factoryReset() (string, error) {
	if m.env.Actions == nil {
		return "", errors.New("factory reset is not available here")
	}
	if err := m.env.Actions.FactoryReset(); err != nil {
		return "", err
	}
	return "reset done, rebooting", nil
}
