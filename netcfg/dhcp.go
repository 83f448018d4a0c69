package netcfg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"

	"github.com/passivesensor/sensor/settings"
)

// Lease is what a DHCP server gave the management interface.
type Lease struct {
	Address   netip.Prefix
	Router    netip.Addr // invalid when the server gave none
	DNS       []string
	Server    netip.Addr
	LeaseTime time.Duration
	Renewal   time.Duration // T1
	raw       *nclient4.Lease
}

func leaseFrom(l *nclient4.Lease) (Lease, error) {
	ack := l.ACK
	ip, ok := netip.AddrFromSlice(ack.YourIPAddr.To4())
	if !ok || ip.IsUnspecified() {
		return Lease{}, fmt.Errorf("netcfg: DHCP ACK without an address")
	}
	mask := ack.SubnetMask()
	bits := 24
	if mask != nil {
		if ones, size := mask.Size(); size == 32 && ones > 0 {
			bits = ones
		}
	}
	out := Lease{Address: netip.PrefixFrom(ip, bits), raw: l}
	if rs := ack.Router(); len(rs) > 0 {
		out.Router, _ = netip.AddrFromSlice(rs[0].To4())
	}
	for _, d := range ack.DNS() {
		if a, ok := netip.AddrFromSlice(d.To4()); ok {
			out.DNS = append(out.DNS, a.String())
		}
		if len(out.DNS) == settings.MaxDNS {
			break
		}
	}
	out.Server, _ = netip.AddrFromSlice(ack.ServerIdentifier().To4())
	out.LeaseTime = ack.IPAddressLeaseTime(time.Hour)
	out.Renewal = ack.IPAddressRenewalTime(out.LeaseTime / 2)
	if out.Renewal <= 0 || out.Renewal > out.LeaseTime {
		out.Renewal = out.LeaseTime / 2
	}
	return out, nil
}

func hostnameModifier() []dhcpv4.Modifier {
	if h, err := os.Hostname(); err == nil && h != "" {
		return []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptHostName(h))}
	}
	return nil
}

// ObtainLease runs DHCP discover/offer/request/ack on the interface (which
// must be up; Apply brings it up) and returns the lease without applying it.
func ObtainLease(ctx context.Context, iface string, timeout time.Duration) (Lease, error) {
	c, err := nclient4.New(iface, nclient4.WithTimeout(timeout/3), nclient4.WithRetry(3))
	if err != nil {
		return Lease{}, fmt.Errorf("netcfg: DHCP client on %s: %w", iface, err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	l, err := c.Request(ctx, hostnameModifier()...)
	if err != nil {
		return Lease{}, fmt.Errorf("netcfg: no DHCP lease on %s: %w", iface, err)
	}
	return leaseFrom(l)
}

// ApplyLease puts the lease's address (with its lifetime), default route
// and DNS servers on the interface.
func ApplyLease(cfg Config, l Lease) error {
	if err := setAddress(cfg.Iface, l.Address, l.Router, l.LeaseTime); err != nil {
		return err
	}
	if len(l.DNS) == 0 {
		return nil
	}
	return WriteResolvConf(cfg.resolvConf(), l.DNS, "DHCP server "+l.Server.String())
}

func linkUp(iface string) error {
	ifc, err := net.InterfaceByName(iface)
	if err != nil {
		return fmt.Errorf("netcfg: interface %s: %w", iface, err)
	}
	if ifc.Flags&net.FlagUp != 0 {
		return nil
	}
	return setUp(iface)
}

// Apply configures the interface from s once: static settings directly,
// DHCP by obtaining and applying one lease (Client keeps renewing it).
func Apply(ctx context.Context, cfg Config, s settings.Settings) error {
	switch s.Mode {
	case settings.ModeStatic:
		return ApplyStatic(cfg, s)
	case settings.ModeDHCP:
		if err := linkUp(cfg.Iface); err != nil {
			return err
		}
		l, err := ObtainLease(ctx, cfg.Iface, 15*time.Second)
		if err != nil {
			return err
		}
		return ApplyLease(cfg, l)
	}
	return fmt.Errorf("netcfg: unknown mode %q", s.Mode)
}

// Client keeps the management interface configured from the settings file:
// it applies the settings at start and whenever the file changes, and in
// DHCP mode renews the lease at T1 (retrying every RetryEvery on failure).
type Client struct {
	Config
	SettingsPath string
	Poll         time.Duration // how often the settings file is checked; 2 s if zero
	RetryEvery   time.Duration // DHCP retry interval; 10 s if zero
	// OnApplied, if set, is called after every apply with its error.
	OnApplied func(settings.Settings, error)
}

// Run works until ctx is done.
func (c *Client) Run(ctx context.Context) error {
	poll, retry := c.Poll, c.RetryEvery
	if poll == 0 {
		poll = 2 * time.Second
	}
	if retry == 0 {
		retry = 10 * time.Second
	}
	const reassert = time.Minute
	var (
		cur     settings.Settings
		curMod  time.Time
		applied bool
		next    time.Time // next DHCP renewal, DHCP retry or static retry
		lease   *Lease
		quiet   bool // the last static apply was reported and nothing changed since
	)
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		fi, err := os.Stat(c.SettingsPath)
		var mod time.Time
		if err == nil {
			mod = fi.ModTime()
		}
		if !applied || !mod.Equal(curMod) {
			s, _, _ := settings.Load(c.SettingsPath)
			if !applied || !s.Equal(cur) {
				modeChanged := !applied || s.Mode != cur.Mode || s.Address != cur.Address
				cur, applied = s, true
				if s.Mode == settings.ModeStatic || modeChanged {
					next = time.Time{} // act now
				}
				quiet = false
			}
			curMod = mod
		}
		if !time.Now().Before(next) {
			var err error
			if cur.Mode == settings.ModeStatic {
				// Retried until it works: the interface may appear late
				// (a USB adapter) or be renamed.
				lease = nil
				if err = ApplyStatic(c.Config, cur); err != nil {
					next = time.Now().Add(retry)
				} else {
					// Asserted again now and then (idempotent), in case
					// something else touched the interface.
					next = time.Now().Add(reassert)
				}
			} else {
				var l Lease
				l, err = c.dhcp(ctx, lease)
				if err == nil {
					err = ApplyLease(c.Config, l)
				}
				if err != nil {
					lease = nil
					next = time.Now().Add(retry)
				} else {
					lease = &l
					next = time.Now().Add(l.Renewal)
				}
			}
			if err != nil {
				logger.Warn("netcfg: applying settings", "iface", c.Iface, "mode", cur.Mode, "err", err)
			}
			// A static configuration asserted again without trouble is not news.
			if !(quiet && err == nil && cur.Mode == settings.ModeStatic) {
				c.report(cur, err)
			}
			quiet = err == nil && cur.Mode == settings.ModeStatic
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (c *Client) report(s settings.Settings, err error) {
	if c.OnApplied != nil {
		c.OnApplied(s, err)
	}
}

// dhcp renews prev when there is one, else obtains a new lease.
func (c *Client) dhcp(ctx context.Context, prev *Lease) (Lease, error) {
	if err := linkUp(c.Iface); err != nil {
		return Lease{}, err
	}
	if prev == nil {
		return ObtainLease(ctx, c.Iface, 15*time.Second)
	}
	cl, err := nclient4.New(c.Iface, nclient4.WithTimeout(5*time.Second), nclient4.WithRetry(2))
	if err != nil {
		return Lease{}, fmt.Errorf("netcfg: DHCP client on %s: %w", c.Iface, err)
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	l, err := cl.Renew(rctx, prev.raw, hostnameModifier()...)
	var nak *nclient4.ErrNak
	if errors.As(err, &nak) || err != nil {
		return ObtainLease(ctx, c.Iface, 15*time.Second)
	}
	return leaseFrom(l)
}
