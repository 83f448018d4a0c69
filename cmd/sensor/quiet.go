package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
)

// quietInterface keeps the kernel itself from sending on a sniffing
// interface: the capture sockets never transmit, but an interface with IPv6
// on sends router solicitations and duplicate-address probes of its own as
// soon as it is up. IPv6 is turned off there, and an address configured on
// the interface is reported, since it would make the kernel answer ARP.
func quietInterface(name string) {
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
	if addrs, err := ifi.Addrs(); err == nil && len(addrs) > 0 {
		slog.Warn("the sniffing interface has addresses; the kernel will answer on it", "interface", name, "addresses", fmt.Sprint(addrs))
	}
}
