// Package it holds the dissectors of IT protocols: the ones that tell who a
// device is on any network (ARP, DHCP, ...), one file per protocol.
package it

import (
	"cmp"
	"slices"

	"github.com/passivesensor/sensor/dissect"
)

type entry struct {
	rank int
	name string
	new  func() dissect.Dissector
}

var registered []entry

// register adds a dissector constructor; each protocol file calls it from
// init. Lower ranks take precedence (they are tried first on a shared port).
func register(rank int, name string, f func() dissect.Dissector) {
	registered = append(registered, entry{rank, name, f})
}

// All returns fresh instances of the package's dissectors, in order of
// precedence. Each pipeline worker calls All once, so that stateful
// dissectors (ARP's table) are not shared between goroutines.
func All() []dissect.Dissector {
	es := slices.Clone(registered)
	slices.SortStableFunc(es, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.rank, b.rank), cmp.Compare(a.name, b.name))
	})
	out := make([]dissect.Dissector, 0, len(es))
	for _, e := range es {
		out = append(out, e.new())
	}
	return out
}
