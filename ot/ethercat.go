package ot

import (
	"encoding/binary"
	"strconv"
	"sync"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
)

// EtherTypeEtherCAT is the EtherType of EtherCAT frames.
const EtherTypeEtherCAT = 0x88a4

// RoleEtherCATMaster is the role (dissect.AttrRole) of the MAC sending a
// segment's EtherCAT frames.
const RoleEtherCATMaster = "ethercat-master"

// Attributes the EtherCAT dissector emits about the master's MAC.
const (
	// AttrEtherCATCommand is the datagram commands the master uses,
	// sorted and comma-separated ("APRD,BRD,LRW"), emitted when it grows.
	AttrEtherCATCommand = "ethercat.command"
	// AttrEtherCATSlaves is the number of slaves on the master's segment,
	// from the working counter of broadcast read/write datagrams that
	// came back round the ring (each slave adds one); emitted when it
	// changes.
	AttrEtherCATSlaves = "ethercat.slaves"
)

// Datagram commands (IEC 61158-4-12; ETG.1000.4 table "EtherCAT command
// types").
var ecatCommands = [...]string{"NOP", "APRD", "APWR", "APRW", "FPRD", "FPWR", "FPRW", "BRD", "BWR", "BRW", "LRD", "LWR", "LRW", "ARMW", "FRMW"}

const (
	ecatCmdBRD = 7
	ecatCmdBWR = 8
	// EtherCAT frame header: length (11 bits), reserved (1), type (4),
	// little endian; type 1 carries datagrams. Datagram: command (1),
	// index (1), address (4), length (11 bits), reserved (3), circulating
	// (1), more follows (1), IRQ (2), data, working counter (2).
	ecatHeaderLen   = 2
	ecatDgHeaderLen = 10
	ecatTypeDLPDU   = 1
	ecatMaxDgs      = 64
	// DefaultEtherCATMasters bounds the masters remembered.
	DefaultEtherCATMasters = 256
)

// EtherCAT reads EtherCAT frames (EtherType 0x88A4). The frame header and
// a chain of well-formed datagrams confirm it. The first slave sets the
// locally administered bit of the source MAC of the frames it sends back,
// so a frame whose source has the bit clear was sent by the master: that
// MAC is the master's. The dissector learns the master, the datagram
// commands it uses, and the number of slaves seen from broadcast working
// counters. Observations are made on the master's own frames only, so
// that the returned frames' altered MAC is not taken for a device.
// Slave identity (SII EEPROM contents) is not read.
type EtherCAT struct {
	// MaxMasters bounds the masters remembered; DefaultEtherCATMasters
	// when zero.
	MaxMasters int

	mu      sync.Mutex
	masters map[capture.MAC]*ecatMaster
}

type ecatMaster struct {
	commands uint16 // commands emitted
	slaves   uint16 // largest broadcast working counter seen
	emitted  uint16 // slave count last emitted
	role     bool
}

// NewEtherCAT returns an EtherCAT dissector.
func NewEtherCAT() *EtherCAT { return &EtherCAT{MaxMasters: DefaultEtherCATMasters} }

// Name returns "ethercat".
func (*EtherCAT) Name() string { return "ethercat" }

// Wants asks for EtherType 0x88A4.
func (*EtherCAT) Wants() dissect.Wants { return dissect.Wants{EtherTypes: []uint16{EtherTypeEtherCAT}} }

// ecatFrame calls fn for each datagram of an EtherCAT frame and reports
// whether the frame is well formed.
func ecatFrame(b []byte, fn func(cmd uint8, adp uint16, wkc uint16)) bool {
	if len(b) < ecatHeaderLen {
		return false
	}
	h := binary.LittleEndian.Uint16(b)
	l := int(h & 0x7ff)
	if h>>12 != ecatTypeDLPDU || h&0x0800 != 0 || l < ecatDgHeaderLen+2 || l > len(b)-ecatHeaderLen {
		return false
	}
	d := b[ecatHeaderLen : ecatHeaderLen+l]
	for i := 0; i < ecatMaxDgs; i++ {
		if len(d) < ecatDgHeaderLen+2 {
			return false
		}
		cmd := d[0]
		if int(cmd) >= len(ecatCommands) {
			return false
		}
		ll := binary.LittleEndian.Uint16(d[6:])
		n := int(ll & 0x7ff)
		if ll&0x3800 != 0 || len(d) < ecatDgHeaderLen+n+2 {
			return false
		}
		if fn != nil {
			fn(cmd, binary.LittleEndian.Uint16(d[2:]), binary.LittleEndian.Uint16(d[ecatDgHeaderLen+n:]))
		}
		d = d[ecatDgHeaderLen+n+2:]
		if ll&0x8000 == 0 { // no more datagrams
			return true
		}
	}
	return false
}

// Probe accepts a well-formed EtherCAT frame.
func (e *EtherCAT) Probe(p *dissect.Packet) bool {
	return p.Flow == nil && !p.HasIP() && p.EtherType == EtherTypeEtherCAT && ecatFrame(p.Payload, nil)
}

// Handle reads a frame.
func (e *EtherCAT) Handle(p *dissect.Packet, out dissect.Sink) {
	if p.HasIP() || p.EtherType != EtherTypeEtherCAT || !p.HasEth {
		return
	}
	master := p.SrcMAC
	returned := master[0]&0x02 != 0
	master[0] &^= 0x02
	e.mu.Lock()
	m := e.master(master)
	var cmds uint16
	ok := ecatFrame(p.Payload, func(cmd uint8, _ uint16, wkc uint16) {
		cmds |= 1 << cmd
		if returned && (cmd == ecatCmdBRD || cmd == ecatCmdBWR) && wkc > m.slaves {
			m.slaves = wkc
		}
	})
	if !ok || returned {
		e.mu.Unlock()
		return
	}
	role := !m.role
	m.role = true
	newCmds := cmds &^ m.commands
	m0 := m.commands
	m.commands |= cmds
	slaves := m.slaves
	newSlaves := slaves != m.emitted
	m.emitted = slaves
	e.mu.Unlock()

	if role {
		e.emit(p, out, master, dissect.AttrRole, RoleEtherCATMaster)
	}
	if newCmds != 0 {
		var names []string
		for c := range ecatCommands {
			if (cmds|m0)&(1<<c) != 0 {
				names = append(names, ecatCommands[c])
			}
		}
		e.emit(p, out, master, AttrEtherCATCommand, vndJoin(names, ","))
	}
	if newSlaves {
		e.emit(p, out, master, AttrEtherCATSlaves, strconv.Itoa(int(slaves)))
	}
}

// master returns the state of mac, making room when the table is full.
func (e *EtherCAT) master(mac capture.MAC) *ecatMaster {
	if e.masters == nil {
		e.masters = map[capture.MAC]*ecatMaster{}
	}
	m := e.masters[mac]
	if m == nil {
		max := e.MaxMasters
		if max <= 0 {
			max = DefaultEtherCATMasters
		}
		if len(e.masters) >= max {
			for k := range e.masters {
				delete(e.masters, k)
				break
			}
		}
		m = &ecatMaster{}
		e.masters[mac] = m
	}
	return m
}

func (e *EtherCAT) emit(p *dissect.Packet, out dissect.Sink, mac capture.MAC, attr, v string) {
	out.Observe(dissect.Observation{Time: p.Time, MAC: mac, Attr: attr, Value: v, Protocol: "ethercat"})
}

func init() { register(67, "ethercat", func() dissect.Dissector { return NewEtherCAT() }) }
