package dissect

import "testing"

// New gives fresh dissectors each time, by rank, then by name.
func TestConstructorsOrder(t *testing.T) {
	var c Constructors
	for _, r := range []struct {
		rank int
		name string
	}{{20, "b"}, {10, "z"}, {20, "a"}, {5, "y"}} {
		c.Register(r.rank, r.name, func() Dissector { return &fake{name: r.name} })
	}
	first, second := c.New(), c.New()
	var names string
	for i, d := range first {
		names += d.Name()
		if d == second[i] {
			t.Errorf("%s: the same instance from two calls of New", d.Name())
		}
	}
	if names != "yzab" {
		t.Errorf("order %q, want yzab (rank, then name)", names)
	}
}
