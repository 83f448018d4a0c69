// Package asset keeps the inventory: which observations belong to the same
// device, the operator's IP classes, and the traffic summary per reporting
// interval. It is the only place that decides identity.
package asset

import (
	"net/netip"
	"time"

	"github.com/passivesensor/sensor/capture"
)

// Kind is the class an asset falls in by the operator's rules.
type Kind uint8

// Asset kinds, as the product documentation defines them.
const (
	Inventoried       Kind = iota // inside an internal inventoried range: full attributes
	NonInventoried                // internal, not inventoried: traffic kept, no attributes
	Excluded                      // excluded IP or MAC: no attributes, no address
	MonitoredExternal             // one pseudo-asset per monitored-external group
	External                      // the single asset for everything else
)

var kindNames = [...]string{"inventoried", "non-inventoried", "excluded", "monitored-external", "external"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Port is a server port seen answering.
type Port struct {
	Proto uint8 // capture.ProtoTCP or ProtoUDP
	Port  uint16
}

// Asset is one device (or pseudo-asset) as the inventory knows it.
// Snapshots returned by the inventory are copies the caller may keep.
type Asset struct {
	// ID is stable for the life of the asset: "mac:00:11:..", "ip:10.0.0.5",
	// "group:NAME" for a monitored-external group, "external".
	ID string
	// Gen tells apart the records that have carried ID: an asset that left
	// the inventory (Inventory.Age, or evicted when full) and is seen
	// again comes back under its ID with a greater Gen.
	Gen  uint64
	Kind Kind
	MAC  capture.MAC  // zero when the asset is keyed by IP
	IPs  []netip.Addr // current address first
	// Router is set for a MAC that carries many IPs (a router or NAT):
	// the IPs behind it are separate assets.
	Router bool

	Hostname string
	Domain   string
	Vendor   string
	Model    string
	Firmware string
	Serial   string
	OS       string // the OS verdict: name and version ("Windows 10/11")
	Class    string // device class (dissect.Class*), stated or derived

	// The OS verdict in parts: its name, version or flavour, and
	// confidence (0-100, 0 when there is no verdict). The signals weighed
	// are in Attrs["os.evidence"].
	OSName       string
	OSVersion    string
	OSConfidence int
	// NAT is set when several devices show behind the asset's address
	// (unlike TCP stacks, User-Agents, DHCP fingerprints, timestamp
	// clocks); its OS is then left open, the candidates in
	// Attrs["os.candidates"], the signs in Attrs["nat.evidence"].
	NAT bool

	Protocols []string // sorted
	OpenPorts []Port   // sorted
	Attrs     map[string]string

	FirstSeen, LastSeen time.Time
}

// TrafficKey aggregates flows for a traffic report: source and destination
// as seen from the inventoried side, destination (server) port and TCP|UDP.
// Excluded endpoints have an invalid (zero) address.
type TrafficKey struct {
	Src, Dst netip.Addr
	DPort    uint16
	Proto    uint8
}

// TrafficRecord is one aggregate of a reporting interval.
type TrafficRecord struct {
	TrafficKey
	SrcAsset, DstAsset    string // asset IDs ("external", "group:NAME", ...)
	BytesOut, BytesIn     uint64 // out: from Src to Dst
	PacketsOut, PacketsIn uint64
}
