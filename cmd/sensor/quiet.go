package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// prepareInterface readies a sniffing interface without letting the kernel
// itself send on it. The capture sockets never transmit, but an interface
// brought up with IPv6 on sends duplicate-address probes, router
// solicitations and MLD reports of its own. So IPv6 is turned off first,
// then the link is brought up (on the appliance nothing else does), and an
// address configured on it is reported, since the kernel would answer ARP
// there.
func prepareInterface(name string) {
	p := filepath.Join("/proc/sys/net/ipv6/conf", name, "disable_ipv6")
	if _, err := os.Stat(p); err == nil {
		if err := os.WriteFile(p, []byte("1"), 0o644); err != nil {
			slog.Warn("cannot turn IPv6 off on the sniffing interface; the kernel may send on it", "interface", name, "err", err)
		}
	}
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return // the capture source reports the missing interface
	}
	if ifi.Flags&net.FlagUp == 0 {
		if err := linkUp(name); err != nil {
			slog.Warn("cannot bring the sniffing interface up", "interface", name, "err", err)
		}
	}
	if addrs, err := ifi.Addrs(); err == nil && len(addrs) > 0 {
		slog.Warn("the sniffing interface has addresses; the kernel will answer on it", "interface", name, "addresses", fmt.Sprint(addrs))
	}
}

// linkUp sets IFF_UP on the interface.
func linkUp(name string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("reading flags of %s: %w", name, err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("setting %s up: %w", name, err)
	}
	return nil
}
