// Package it holds the dissectors of IT protocols: the ones that tell who a
// device is on any network (ARP, DHCP, ...), one file per protocol.
package it

import "github.com/passivesensor/sensor/dissect"

// All returns fresh instances of the package's dissectors, in order of
// precedence. Each pipeline worker calls All once, so that stateful
// dissectors (ARP's table) are not shared between goroutines.
func All() []dissect.Dissector {
	return []dissect.Dissector{
		NewARP(),
		NewDHCP(),
		NewLLDP(),
		NewCDP(),
		NewDNS(),
		NewMDNS(),
		NewLLMNR(),
	}
}
