// Package dissect holds the contract every protocol dissector meets, the
// registry that hands flows to dissectors, and the Observation a dissector
// emits when it learns something about a device.
//
// The contract:
//   - A dissector names the ports (or EtherTypes, or IP protocols) that
//     nominate it, and whether it may be tried on flows that no port
//     nominates. A port only nominates: Probe confirms the protocol from the
//     payload, so any traffic on 502 is not Modbus.
//   - Handle parses bounded bytes, keeps small per-flow state in
//     Packet.Flow.State, and emits Observations to the Sink. It never
//     panics on any input, never reads past the slice and never grows
//     without bound.
//   - Observations are rare (identity, roles, services); building one may
//     allocate. Everything else on the per-packet path must not.
package dissect

import (
	"net/netip"
	"time"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/flow"
)

// Observation is one fact about a device learnt from the wire.
// The inventory alone decides which observations belong to the same device.
type Observation struct {
	Time time.Time
	// The device the fact is about: its IP and/or its MAC. Set MAC only
	// when the protocol itself states it is the device's own (ARP sender,
	// DHCP chaddr, LLDP chassis, DCP): the MAC a frame came from may be a
	// router's, and the inventory learns those from flows.
	IP  netip.Addr
	MAC capture.MAC
	// Attr names the fact: one of the Attr* constants, or
	// "protocol.field" for protocol-specific raw discovery data.
	Attr  string
	Value string
	// Protocol is the dissector's Name.
	Protocol string
	// Peer is the other side, for facts about a relation (AttrService:
	// which function codes a client uses on a server).
	Peer netip.Addr
}

// Attributes the inventory knows by name. Anything else is kept as a
// protocol-specific attribute.
const (
	AttrHostname = "hostname"
	AttrDomain   = "domain" // DNS domain, NetBIOS workgroup/domain, Kerberos realm
	AttrFQDN     = "fqdn"
	AttrVendor   = "vendor"   // maker as stated by the device
	AttrModel    = "model"    // product / model name
	AttrFirmware = "firmware" // firmware / software version
	AttrHardware = "hardware" // hardware revision
	AttrSerial   = "serial"
	AttrOS       = "os"
	AttrClass    = "class"   // device class: plc, hmi, rtu, switch, router, workstation, ...
	AttrRole     = "role"    // protocol role: modbus-server, dnp3-master, dhcp-server, ...
	AttrName     = "name"    // a name the device gives itself in an OT protocol (station name)
	AttrService  = "service" // a service used with Peer, e.g. "modbus:read-holding-registers"
	AttrIP       = "ip"      // an additional address bound to MAC (ARP, ND, DHCP ack)
	AttrVLAN     = "vlan"
	// AttrDNSAnswer binds a name (Value) to an address (IP) that a DNS
	// server answered for it; the inventory uses it for monitored FQDNs.
	AttrDNSAnswer = "dns.a"
)

// Sink receives observations.
type Sink interface {
	Observe(Observation)
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(Observation)

// Observe calls f(o).
func (f SinkFunc) Observe(o Observation) { f(o) }

// Wants says which traffic nominates a dissector.
type Wants struct {
	TCPPorts   []uint16 // server (or client) ports
	UDPPorts   []uint16
	EtherTypes []uint16 // non-IP frames (ARP 0x0806, LLDP 0x88cc, ...)
	IPProtos   []uint8  // IP protocols without ports (ICMPv6 58, ...)
	// Heuristic lets the registry try Probe on TCP/UDP flows that no port
	// nominated (the protocol on an unusual port).
	Heuristic bool
	// TCPHandshake asks for the SYN and SYN-ACK packets of every TCP flow
	// (stack fingerprints), whoever claims the flow.
	TCPHandshake bool
}

// Packet is what a dissector is handed: the decoded packet, its flow (nil
// for non-IP frames and portless IP protocols) and its direction.
type Packet struct {
	*capture.Packet
	Flow *flow.Flow
	Dir  flow.Dir
}

// Client returns the address of the side that started the flow, or the
// packet's source when there is no flow.
func (p *Packet) Client() netip.Addr {
	if p.Flow == nil {
		return p.SrcIP
	}
	return p.Flow.Client.Addr()
}

// Server returns the address of the answering side, or the packet's
// destination when there is no flow.
func (p *Packet) Server() netip.Addr {
	if p.Flow == nil {
		return p.DstIP
	}
	return p.Flow.Server.Addr()
}

// Dissector reads one protocol.
type Dissector interface {
	// Name is the protocol's short name as reported ("modbus", "dhcp").
	Name() string
	// Wants says which traffic nominates this dissector.
	Wants() Wants
	// Probe reports whether the packet's payload is this protocol. It is
	// called on payload-carrying packets of a flow not yet claimed, and on
	// every non-IP frame of a wanted EtherType. It must be cheap and must
	// not retain p.
	Probe(p *Packet) bool
	// Handle reads a packet of a claimed flow (or a probed frame) and
	// emits what it learns.
	Handle(p *Packet, out Sink)
}

// Device classes (AttrClass values). A dissector states a class only when
// the protocol itself says what the device is (a CIP device type, LLDP
// capabilities, a BACnet device object); the inventory also derives classes
// from roles, ports and fingerprints.
const (
	ClassPLC         = "plc"          // programmable controller
	ClassRTU         = "rtu"          // remote terminal unit, outstation
	ClassHMI         = "hmi"          // operator panel or SCADA client
	ClassEngineering = "engineering"  // engineering workstation
	ClassHistorian   = "historian"    // data historian, SCADA server
	ClassDrive       = "drive"        // motor drive, inverter
	ClassIO          = "io"           // remote I/O, coupler, gateway module
	ClassRelay       = "relay"        // protection relay, IED
	ClassMeter       = "meter"        // power or flow meter
	ClassSensor      = "sensor"       // field instrument
	ClassBMS         = "bms"          // building controller
	ClassRobot       = "robot"        // robot controller
	ClassSafety      = "safety"       // safety controller
	ClassSwitch      = "switch"       // network switch, bridge
	ClassRouter      = "router"       // router, gateway
	ClassFirewall    = "firewall"     // firewall
	ClassAccessPoint = "access-point" // wireless access point
	ClassWorkstation = "workstation"  // desktop or laptop
	ClassServer      = "server"       // general-purpose server
	ClassPrinter     = "printer"      // printer, multifunction device
	ClassCamera      = "camera"       // IP camera, video recorder
	ClassPhone       = "phone"        // IP phone
	ClassMobile      = "mobile"       // phone or tablet
	ClassIoT         = "iot"          // other embedded device
	ClassMedical     = "medical"      // medical device
)
