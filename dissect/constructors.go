package dissect

import (
	"cmp"
	"slices"
)

// Constructors are a package's dissectors (it, ot), each protocol file
// registering its constructor from init. Its zero value is empty.
type Constructors struct {
	es []constructor
}

type constructor struct {
	rank int
	name string
	new  func() Dissector
}

// Register adds a dissector's constructor. Lower ranks take precedence
// (their dissectors are tried first on a shared port); equal ranks go by
// name.
func (c *Constructors) Register(rank int, name string, f func() Dissector) {
	c.es = append(c.es, constructor{rank, name, f})
}

// New returns fresh instances of the dissectors, in order of precedence.
// Each pipeline worker makes its own, so that stateful dissectors are not
// shared between goroutines.
func (c *Constructors) New() []Dissector {
	es := slices.Clone(c.es)
	slices.SortStableFunc(es, func(a, b constructor) int {
		return cmp.Or(cmp.Compare(a.rank, b.rank), cmp.Compare(a.name, b.name))
	})
	out := make([]Dissector, 0, len(es))
	for _, e := range es {
		out = append(out, e.new())
	}
	return out
}
