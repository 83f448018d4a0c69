package hw

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sys/unix"

	"github.com/passivesensor/sensor/netcfg"
	"github.com/passivesensor/sensor/settings"
)

// System carries out the menu's actions on the appliance: it applies the
// network settings with netcfg and checks the cloud is reachable, reboots
// with reboot(2) (gokrazy's init restarts nothing on its own; file systems
// are synced first, and /perm is ext4 with a journal), and resets to
// factory settings.
type System struct {
	Iface       string        // management interface
	Dir         string        // state directory with the settings file
	ResolvConf  string        // netcfg.DefaultResolvConf if empty
	ReachWithin time.Duration // how long the cloud may take to answer; 5 s if zero
}

// ApplyNetwork implements menu.Actions.
func (s *System) ApplyNetwork(set settings.Settings) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := netcfg.Apply(ctx, netcfg.Config{Iface: s.Iface, ResolvConf: s.ResolvConf}, set); err != nil {
		return err
	}
	d := s.ReachWithin
	if d == 0 {
		d = 5 * time.Second
	}
	return netcfg.Reachable(ctx, set, d)
}

// Reboot implements menu.Actions.
func (s *System) Reboot() error {
	slog.Info("rebooting on request from the set-up menu")
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART); err != nil {
		return fmt.Errorf("reboot: %w", err)
	}
	return nil
}

// FactoryReset implements menu.Actions: the settings go back to the
// defaults (DHCP, no proxy, no code), written atomically, then the box
// reboots.
func (s *System) FactoryReset() error {
	if err := settings.Save(settings.PathIn(s.Dir), settings.Defaults()); err != nil {
		return fmt.Errorf("factory reset: %w", err)
	}
	slog.Info("settings reset to factory defaults")
	return s.Reboot()
}
