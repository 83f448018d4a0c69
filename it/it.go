// Package it holds the dissectors of IT protocols: the ones that tell who a
// device is on any network (ARP, DHCP, ...), one file per protocol.
package it

import "github.com/passivesensor/sensor/dissect"

var registered dissect.Constructors

// register adds a dissector constructor; each protocol file calls it from
// init. Lower ranks take precedence (they are tried first on a shared port).
func register(rank int, name string, f func() dissect.Dissector) {
	registered.Register(rank, name, f)
}

// All returns fresh instances of the package's dissectors, in order of
// precedence. Each pipeline worker calls All once, so that stateful
// dissectors (ARP's table) are not shared between goroutines.
func All() []dissect.Dissector { return registered.New() }
