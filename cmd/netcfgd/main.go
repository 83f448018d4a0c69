// Command netcfgd keeps the appliance's management interface configured
// from the settings file for the whole uptime: DHCP (lease and renewals)
// or the static address, route and DNS, following every change the LCD
// menu or the serial console saves.
//
//	netcfgd -settings DIR [-iface NAME] [-resolv PATH]
//
// It replaces gokrazy's own DHCP client, which the instance config must
// leave out of GokrazyPackages (see package netcfg).
package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/passivesensor/sensor/board"
	"github.com/passivesensor/sensor/netcfg"
	"github.com/passivesensor/sensor/settings"
)

func main() {
	dir := flag.String("settings", settings.DefaultDir, "state directory holding settings.json")
	iface := flag.String("iface", "", "management interface (default: the board profile's)")
	resolv := flag.String("resolv", netcfg.DefaultResolvConf, "resolv.conf to write (a symlink is followed)")
	boardName := flag.String("board", "", "board profile (default: detected)")
	flag.Parse()
	if *iface == "" {
		prof, err := board.Select(*boardName)
		if err != nil {
			slog.Error("netcfgd: no -iface and no board profile", "err", err)
			os.Exit(2)
		}
		*iface = prof.Mgmt
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	c := &netcfg.Client{
		Config:       netcfg.Config{Iface: *iface, ResolvConf: *resolv},
		SettingsPath: settings.PathIn(*dir),
		OnApplied: func(s settings.Settings, err error) {
			if err != nil {
				slog.Warn("netcfgd: not applied", "iface", *iface, "settings", s.String(), "err", err)
				return
			}
			slog.Info("netcfgd: applied", "iface", *iface, "settings", s.String())
		},
	}
	slog.Info("netcfgd: managing", "iface", *iface, "settings", c.SettingsPath)
	c.Run(ctx)
}
