package settings

import (
	"fmt"
	"net/netip"
	"strings"
)

// v1 is the version 1 file layout, kept to migrate old files.
type v1 struct {
	Version   int    `json:"version,omitempty"`
	DHCP      *bool  `json:"dhcp"`
	IP        string `json:"ip"`
	Netmask   string `json:"netmask"`
	Gateway   string `json:"gateway"`
	DNS       string `json:"dns"` // comma-separated
	Proxy     string `json:"proxy"`
	ProxyUser string `json:"proxy_user"`
	ProxyPass string `json:"proxy_pass"`
	Code      string `json:"code"`
	Cloud     string `json:"cloud"`
	Name      string `json:"name"`
}

// migrate converts a version 1 record to the current layout. A missing
// "dhcp" means DHCP unless an IP is set.
func (o v1) migrate() (Settings, error) {
	s := Defaults()
	dhcp := o.IP == ""
	if o.DHCP != nil {
		dhcp = *o.DHCP
	}
	if !dhcp {
		s.Mode = ModeStatic
	}
	if o.IP != "" {
		a, err := netip.ParseAddr(o.IP)
		if err != nil {
			return s, fmt.Errorf("ip %q is not an address", o.IP)
		}
		bits := a.BitLen()
		if o.Netmask != "" {
			m, err := netip.ParseAddr(o.Netmask)
			if err != nil || m.BitLen() != bits {
				return s, fmt.Errorf("netmask %q is not a mask for %s", o.Netmask, o.IP)
			}
			if bits, err = maskBits(m); err != nil {
				return s, fmt.Errorf("netmask %q: %v", o.Netmask, err)
			}
		}
		s.Address = netip.PrefixFrom(a, bits).String()
	}
	s.Gateway = o.Gateway
	for _, d := range strings.Split(o.DNS, ",") {
		if d = strings.TrimSpace(d); d != "" {
			s.DNS = append(s.DNS, d)
		}
	}
	s.Proxy = Proxy{Address: o.Proxy, User: o.ProxyUser, Password: Secret(o.ProxyPass)}
	s.PersonalizationCode = o.Code
	s.CloudURL = o.Cloud
	s.Name = o.Name
	s.Normalize()
	return s, nil
}

// maskBits returns the prefix length of a contiguous netmask.
func maskBits(m netip.Addr) (int, error) {
	b := m.AsSlice()
	n, seenZero := 0, false
	for _, x := range b {
		for i := 7; i >= 0; i-- {
			if x&(1<<i) != 0 {
				if seenZero {
					return 0, fmt.Errorf("mask bits are not contiguous")
				}
				n++
			} else {
				seenZero = true
			}
		}
	}
	return n, nil
}
