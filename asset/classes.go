package asset

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sort"
	"strings"

	"github.com/passivesensor/sensor/capture"
)

// Addressing says how hosts of an inventoried range get their addresses.
const (
	AddressingStatic = "static"
	AddressingDHCP   = "dhcp"
)

// Range is an inventoried address range.
type Range struct {
	Prefix netip.Prefix `json:"prefix"`
	// Addressing is AddressingStatic or AddressingDHCP ("static" when empty).
	Addressing string `json:"addressing,omitempty"`
}

// Group is a monitored-external group: addresses, prefixes and DNS names
// reported as one pseudo-asset "group:NAME". An FQDN matches the addresses
// that DNS answers seen on the wire gave it (Inventory.ResolveDNS).
type Group struct {
	Name     string         `json:"name"`
	Prefixes []netip.Prefix `json:"prefixes,omitempty"` // a single address is a /32 or /128
	FQDNs    []string       `json:"fqdns,omitempty"`
}

// Classes is the operator's classification of addresses. It loads from
// JSON, with prefixes and MACs as strings:
//
//	{"inventoried": [{"prefix": "10.0.0.0/8", "addressing": "dhcp"}],
//	 "non_inventoried": ["10.99.0.0/16"],
//	 "excluded_ips": ["10.0.0.250/32"], "excluded_macs": ["00:11:22:33:44:55"],
//	 "monitored_external": [{"name": "cloud", "fqdns": ["api.example.com"]}],
//	 "router_ip_threshold": 3}
//
// An address is judged by: excluded first; then the longest prefix among
// the inventoried, non-inventoried and monitored-group prefixes; then the
// addresses DNS gave a monitored FQDN; everything else is external.
type Classes struct {
	Inventoried    []Range        `json:"inventoried"`
	NonInventoried []netip.Prefix `json:"non_inventoried,omitempty"`
	ExcludedIPs    []netip.Prefix `json:"excluded_ips,omitempty"`
	ExcludedMACs   []string       `json:"excluded_macs,omitempty"`
	Groups         []Group        `json:"monitored_external,omitempty"`
	// RouterIPThreshold: a MAC seen in flows carrying more than this many
	// distinct IPs (not counting those it claims itself by ARP or DHCP) is
	// a router's. DefaultRouterIPThreshold when zero; at most MaxIPsPerMAC
	// (a larger one counts as that), the addresses one MAC can hold.
	RouterIPThreshold int `json:"router_ip_threshold,omitempty"`
}

// DefaultRouterIPThreshold is the number of distinct IPs a MAC may carry
// before it is taken for a router.
const DefaultRouterIPThreshold = 3

// RouterIPs is the default router threshold under a shorter name.
const RouterIPs = DefaultRouterIPThreshold

// DefaultClasses returns the private IPv4 ranges (RFC 1918) and the IPv6
// link-local and unique-local ranges as inventoried static ranges.
func DefaultClasses() Classes {
	var c Classes
	for _, s := range []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fe80::/10", "fc00::/7"} {
		c.Inventoried = append(c.Inventoried, Range{Prefix: netip.MustParsePrefix(s), Addressing: AddressingStatic})
	}
	return c
}

// LoadClasses reads Classes from a JSON file and validates them.
func LoadClasses(path string) (Classes, error) {
	var c Classes
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("asset classes: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("asset classes %s: %w", path, err)
	}
	if _, err := compile(c); err != nil {
		return c, fmt.Errorf("asset classes %s: %w", path, err)
	}
	return c, nil
}

// classEntry is one prefix of the longest-prefix table.
type classEntry struct {
	prefix     netip.Prefix
	kind       Kind
	group      string // for MonitoredExternal
	addressing string // for Inventoried
}

// classifier answers which class an address is in.
type classifier struct {
	excluded  []netip.Prefix
	exMACs    map[capture.MAC]bool
	table     []classEntry // longest prefix first
	fqdnGroup map[string]string
	threshold int
}

// compile validates c and builds its lookup tables.
func compile(c Classes) (*classifier, error) {
	cl := &classifier{exMACs: map[capture.MAC]bool{}, fqdnGroup: map[string]string{}, threshold: c.RouterIPThreshold}
	if cl.threshold <= 0 {
		cl.threshold = DefaultRouterIPThreshold
	}
	// The addresses counted are kept per MAC until it turns out a router:
	// the threshold bounds them.
	cl.threshold = min(cl.threshold, MaxIPsPerMAC)
	for _, p := range c.ExcludedIPs {
		if !p.IsValid() {
			return nil, fmt.Errorf("invalid excluded prefix %v", p)
		}
		cl.excluded = append(cl.excluded, p.Masked())
	}
	for _, s := range c.ExcludedMACs {
		hw, err := net.ParseMAC(s)
		if err != nil || len(hw) != 6 {
			return nil, fmt.Errorf("invalid excluded MAC %q", s)
		}
		cl.exMACs[capture.MAC(hw)] = true
	}
	for _, r := range c.Inventoried {
		if !r.Prefix.IsValid() {
			return nil, fmt.Errorf("invalid inventoried prefix %v", r.Prefix)
		}
		a := r.Addressing
		switch a {
		case "":
			a = AddressingStatic
		case AddressingStatic, AddressingDHCP:
		default:
			return nil, fmt.Errorf("inventoried range %v: addressing %q is neither static nor dhcp", r.Prefix, r.Addressing)
		}
		cl.table = append(cl.table, classEntry{prefix: r.Prefix.Masked(), kind: Inventoried, addressing: a})
	}
	for _, p := range c.NonInventoried {
		if !p.IsValid() {
			return nil, fmt.Errorf("invalid non-inventoried prefix %v", p)
		}
		cl.table = append(cl.table, classEntry{prefix: p.Masked(), kind: NonInventoried})
	}
	for _, g := range c.Groups {
		if g.Name == "" {
			return nil, fmt.Errorf("monitored-external group without a name")
		}
		for _, p := range g.Prefixes {
			if !p.IsValid() {
				return nil, fmt.Errorf("group %q: invalid prefix %v", g.Name, p)
			}
			cl.table = append(cl.table, classEntry{prefix: p.Masked(), kind: MonitoredExternal, group: g.Name})
		}
		for _, f := range g.FQDNs {
			f = normName(f)
			if f == "" {
				return nil, fmt.Errorf("group %q: empty FQDN", g.Name)
			}
			cl.fqdnGroup[f] = g.Name
		}
	}
	sort.SliceStable(cl.table, func(i, j int) bool { return cl.table[i].prefix.Bits() > cl.table[j].prefix.Bits() })
	return cl, nil
}

// normName lower-cases a DNS name and drops its trailing dot.
func normName(s string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
}

// never reports whether ip can never be an asset: invalid, unspecified,
// multicast, limited broadcast, loopback.
func never(ip netip.Addr) bool {
	return !ip.IsValid() || ip.IsUnspecified() || ip.IsMulticast() || ip.IsLoopback() ||
		ip == netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// directedBroadcast reports whether ip is an IPv4 subnet's broadcast by the
// inventoried range it falls in: the range's last address, or, in a range
// of /24 or wider whose subnets the sensor does not know, an address
// ending in .255 (the broadcast of the /24 around it, the usual subnet).
func (cl *classifier) directedBroadcast(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.Is4() {
		return false
	}
	for _, e := range cl.table {
		if !e.prefix.Contains(ip) {
			continue
		}
		if e.kind != Inventoried || e.prefix.Bits() >= 31 {
			return false
		}
		if ip.As4()[3] == 255 && e.prefix.Bits() <= 24 {
			return true
		}
		return ip == lastAddr(e.prefix)
	}
	return false
}

// lastAddr is the highest address of IPv4 prefix p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// class returns the class of ip by its prefixes (resolved FQDNs are the
// inventory's business); addressing is set for inventoried addresses.
func (cl *classifier) class(ip netip.Addr) (k Kind, group, addressing string) {
	ip = ip.Unmap()
	for _, p := range cl.excluded {
		if p.Contains(ip) {
			return Excluded, "", ""
		}
	}
	for _, e := range cl.table {
		if e.prefix.Contains(ip) {
			return e.kind, e.group, e.addressing
		}
	}
	return External, "", ""
}
