package asset

import (
	"net/netip"
	"slices"
)

// Validate checks c as LoadClasses does: prefixes, MACs, addressing types
// and group names.
func (c Classes) Validate() error {
	_, err := compile(c)
	return err
}

// SetClasses replaces the operator's classes while the inventory runs (a
// new configuration from the cloud). Records already kept are judged again:
// an address that is now excluded or outside every internal range leaves
// the inventory (its traffic goes to the external or group pseudo-asset
// from now on), an excluded MAC's record is dropped, and the rest take
// their new kind and addressing. An invalid c is refused and nothing
// changes.
func (inv *Inventory) SetClasses(c Classes) error {
	cl, err := compile(c)
	if err != nil {
		return err
	}
	inv.mu.Lock()
	defer inv.mu.Unlock()
	inv.cl = cl
	for ip, r := range inv.ips {
		k, _, addressing := inv.class(ip)
		if (k == Inventoried || k == NonInventoried) && !cl.exMACs[r.mac] {
			r.kind, r.addressing = k, addressing
			continue
		}
		inv.dropIP(r)
		if m := inv.macs[r.mac]; m != nil && !r.mac.IsZero() {
			m.ips = slices.DeleteFunc(m.ips, func(a netip.Addr) bool { return a == ip })
		}
	}
	for m, r := range inv.macs {
		if cl.exMACs[m] {
			inv.dropMAC(r)
		}
	}
	return nil
}
