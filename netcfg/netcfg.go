// Package netcfg applies the settings to the management interface through
// netlink: in static mode the address, the default route and the DNS
// servers (resolv.conf replaced atomically); in DHCP mode a lease from the
// network's DHCP server, renewed for as long as the Client runs.
//
// On the appliance the management interface belongs to netcfg alone.
// gokrazy's own DHCP client (github.com/gokrazy/gokrazy/cmd/dhcp, started
// by default) applies every lease it gets and would put a DHCP address and
// route back beside a static one; its only switch, -static_network_config,
// is fixed when the image is built. So the instance config lists
// GokrazyPackages without it (cmd/ntp, cmd/randomd, cmd/heartbeat) and
// netcfg's Client, run for the whole uptime, does DHCP when the settings
// say so and the static configuration otherwise.
//
// After a change, Reachable tells whether the cloud (or the proxy in front
// of it) answers, so the front ends can report a static address that cut
// the box off and offer the previous settings back.
package netcfg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/passivesensor/sensor/settings"
)

// DefaultResolvConf is where name servers are written. On gokrazy
// /etc/resolv.conf is a symlink to /tmp/resolv.conf; the link is followed.
const DefaultResolvConf = "/etc/resolv.conf"

// RouteMetric is the metric of the default route netcfg installs; gokrazy
// gives eth* interfaces priority 1, netcfg takes the same.
const RouteMetric = 1

// Config says where to apply the settings.
type Config struct {
	Iface      string // management interface, e.g. "eth0"
	ResolvConf string // DefaultResolvConf if empty
}

func (c Config) resolvConf() string {
	if c.ResolvConf == "" {
		return DefaultResolvConf
	}
	return c.ResolvConf
}

// ApplyStatic sets the static address, default route and DNS of s on the
// interface: the link is brought up, other IPv4 addresses and default
// routes on it are removed, and resolv.conf lists s.DNS.
func ApplyStatic(cfg Config, s settings.Settings) error {
	if s.Mode != settings.ModeStatic {
		return fmt.Errorf("netcfg: settings are in %s mode, not static", s.Mode)
	}
	p, err := netip.ParsePrefix(s.Address)
	if err != nil {
		return fmt.Errorf("netcfg: static address %q: %w", s.Address, err)
	}
	var gw netip.Addr
	if s.Gateway != "" {
		if gw, err = netip.ParseAddr(s.Gateway); err != nil {
			return fmt.Errorf("netcfg: gateway %q: %w", s.Gateway, err)
		}
	}
	if err := setAddress(cfg.Iface, p, gw, 0); err != nil {
		return err
	}
	return WriteResolvConf(cfg.resolvConf(), s.DNS, "static settings")
}

// setAddress makes p the interface's only address of its family and gw its
// default route (none when gw is invalid). lifetime 0 means permanent.
func setAddress(iface string, p netip.Prefix, gw netip.Addr, lifetime time.Duration) error {
	link, err := netlink.LinkByName(iface)
	if err != nil {
		return fmt.Errorf("netcfg: interface %s: %w", iface, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("netcfg: bringing %s up: %w", iface, err)
	}
	family := netlink.FAMILY_V4
	bits := 32
	if p.Addr().Is6() {
		family, bits = netlink.FAMILY_V6, 128
	}
	ipnet := &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), bits)}
	want := &netlink.Addr{IPNet: ipnet}
	if p.Addr().Is4() {
		want.Broadcast = broadcast(p)
	}
	if lifetime > 0 {
		secs := int(lifetime / time.Second)
		want.ValidLft, want.PreferedLft = secs, secs
	}
	addrs, err := netlink.AddrList(link, family)
	if err != nil {
		return fmt.Errorf("netcfg: listing addresses of %s: %w", iface, err)
	}
	for _, a := range addrs {
		if a.IP.IsLinkLocalUnicast() || a.IPNet.String() == ipnet.String() {
			continue
		}
		// Removed before the new one is added: deleting a primary address
		// also deletes the secondaries of its subnet.
		if err := netlink.AddrDel(link, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("netcfg: removing %s from %s: %w", a.IPNet, iface, err)
		}
	}
	if err := netlink.AddrReplace(link, want); err != nil {
		return fmt.Errorf("netcfg: setting %s on %s: %w", p, iface, err)
	}
	routes, err := netlink.RouteList(link, family)
	if err != nil {
		return fmt.Errorf("netcfg: listing routes of %s: %w", iface, err)
	}
	for _, r := range routes {
		if isDefault(r) && (!gw.IsValid() || !r.Gw.Equal(net.IP(gw.AsSlice())) || r.Priority != RouteMetric) {
			if err := netlink.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("netcfg: removing default route via %s on %s: %w", r.Gw, iface, err)
			}
		}
	}
	if gw.IsValid() {
		r := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: net.IP(gw.AsSlice()), Priority: RouteMetric,
			Dst: defaultDst(p.Addr().Is4())}
		if err := netlink.RouteReplace(r); err != nil {
			return fmt.Errorf("netcfg: default route via %s on %s: %w", gw, iface, err)
		}
	}
	return nil
}

func defaultDst(v4 bool) *net.IPNet {
	if v4 {
		return &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
	}
	return &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
}

func isDefault(r netlink.Route) bool {
	if r.Dst == nil {
		return true
	}
	ones, _ := r.Dst.Mask.Size()
	return ones == 0
}

func broadcast(p netip.Prefix) net.IP {
	b := p.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= 1<<(32-p.Bits()) - 1
	return net.IPv4(byte(v>>24), byte(v>>16), byte(v>>8), byte(v)).To4()
}

// WriteResolvConf replaces path (following a symlink, as gokrazy's
// /etc/resolv.conf -> /tmp/resolv.conf) with one nameserver line per
// server, atomically: temporary file beside the target, fsync, rename,
// fsync of the directory.
func WriteResolvConf(path string, servers []string, source string) error {
	target := path
	if l, err := os.Readlink(path); err == nil {
		if !filepath.IsAbs(l) {
			l = filepath.Join(filepath.Dir(path), l)
		}
		target = l
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# written by the sensor's netcfg from %s\n", source)
	for _, s := range servers {
		if _, err := netip.ParseAddr(s); err != nil {
			return fmt.Errorf("netcfg: DNS server %q: %w", s, err)
		}
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if old, err := os.ReadFile(target); err == nil && string(old) == b.String() {
		return nil // unchanged: no write
	}
	return writeAtomic(target, []byte(b.String()), nil)
}

// writeAtomic writes data to path through a temporary file in the same
// directory. hook, when set, is called after each step and may stop the
// write there as a power cut would (tests only).
func writeAtomic(path string, data []byte, hook func(step string) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("netcfg: temp file for %s: %w", path, err)
	}
	tmp := f.Name()
	stop := func(step string) bool { return hook != nil && hook(step) != nil }
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("netcfg: writing %s: %w", tmp, err)
	}
	if stop("written") {
		f.Close()
		return errors.New("netcfg: write stopped")
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("netcfg: syncing %s: %w", tmp, err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("netcfg: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("netcfg: closing %s: %w", tmp, err)
	}
	if stop("synced") {
		return errors.New("netcfg: write stopped")
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("netcfg: replacing %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Reachable reports whether the cloud can be reached with settings s: a
// TCP connection to the proxy when one is set, else to the cloud URL's
// host and port (443 by default). With no cloud URL and no proxy it checks
// that the gateway (static) answers on the interface's route, by dialing
// nothing and returning nil.
func Reachable(ctx context.Context, s settings.Settings, timeout time.Duration) error {
	target := s.Proxy.Address
	if target == "" {
		if s.CloudURL == "" {
			return nil
		}
		u, err := url.Parse(s.CloudURL)
		if err != nil {
			return fmt.Errorf("cloud URL %q: %w", s.CloudURL, err)
		}
		port := u.Port()
		if port == "" {
			port = "443"
		}
		target = net.JoinHostPort(u.Hostname(), port)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return fmt.Errorf("no connection to %s: %w", target, err)
	}
	c.Close()
	return nil
}

// Info is the management interface's state for the status page.
type Info struct {
	Name string
	IP   string
	MAC  string
	Link bool
}

// Inspect reads the interface's first IPv4 address, MAC and carrier.
func Inspect(iface string) Info {
	in := Info{Name: iface}
	ifc, err := net.InterfaceByName(iface)
	if err != nil {
		return in
	}
	in.MAC = ifc.HardwareAddr.String()
	in.Link = ifc.Flags&net.FlagRunning != 0
	if addrs, err := ifc.Addrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
				in.IP = n.String()
				break
			}
		}
	}
	return in
}

var logger = slog.Default()

func setUp(iface string) error {
	link, err := netlink.LinkByName(iface)
	if err != nil {
		return fmt.Errorf("netcfg: interface %s: %w", iface, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("netcfg: bringing %s up: %w", iface, err)
	}
	return nil
}
