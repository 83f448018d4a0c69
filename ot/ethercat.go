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
	// AttrEtherCATSlaveInfo is what the master read from its slaves' SII
	// EEPROMs: per slave, its configured station address, vendor id,
	// product code and, once read, revision and serial number, "; "-
	// separated in station order ("1001 vendor 0x00000002 product
	// 0x044c2c52 revision 0x00110000"); at most ecatMaxSlaves slaves,
	// emitted when it grows.
	AttrEtherCATSlaveInfo = "ethercat.slave_info"
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
// counters, and the slaves' identity (vendor id, product code, revision,
// serial number) when the master reads their SII EEPROMs. Observations
// are made on the master's own frames only, so that the returned frames'
// altered MAC is not taken for a device; slaves have no address of their
// own on the wire, so their identity is a fact about the master.
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
	// SII (EEPROM) reads seen per slave, by configured station address.
	sii      [ecatMaxSlaves]ecatSlave
	nsii     uint8
	siiDirty bool // a slave's identity grew since last emitted
}

// ecatSlave is what SII reads told of one slave.
type ecatSlave struct {
	station uint16
	pend    uint32    // word address of a read seen busy, +1
	words   [4]uint32 // vendor id, product code, revision, serial number
	have    uint8     // which of words are known
}

// SII (slave information interface) access through the ESC registers
// (ETG.1000.4; ET1100 datasheet section "EEPROM interface"): 0x0502
// control/status (bit 8 read command, bit 15 busy, bits 11-14 errors),
// 0x0504 word address (4 bytes), 0x0508 data (4 or 8 bytes). The master
// writes the command and address, then polls the registers with FPRD
// until busy clears; the data then holds the words at the address. SII
// words 0x08, 0x0A, 0x0C and 0x0E hold the vendor id, product code,
// revision number and serial number (32 bits each, little endian).
const (
	ecatCmdFPRD   = 4
	ecatCmdFPWR   = 5
	ecatRegSII    = 0x0502
	ecatSIIBusy   = 0x8000
	ecatSIIRead   = 0x0100
	ecatSIIErrors = 0x7800
	ecatSIIVendor = 0x08
	ecatMaxSlaves = 32
	ecatMaxListed = 16
)

// NewEtherCAT returns an EtherCAT dissector.
func NewEtherCAT() *EtherCAT { return &EtherCAT{MaxMasters: DefaultEtherCATMasters} }

// Name returns "ethercat".
func (*EtherCAT) Name() string { return "ethercat" }

// Wants asks for EtherType 0x88A4.
func (*EtherCAT) Wants() dissect.Wants { return dissect.Wants{EtherTypes: []uint16{EtherTypeEtherCAT}} }

// ecatFrame calls fn for each datagram of an EtherCAT frame and reports
// whether the frame is well formed.
func ecatFrame(b []byte, fn func(cmd uint8, adp, ado uint16, data []byte, wkc uint16)) bool {
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
			fn(cmd, binary.LittleEndian.Uint16(d[2:]), binary.LittleEndian.Uint16(d[4:]), d[ecatDgHeaderLen:ecatDgHeaderLen+n],
				binary.LittleEndian.Uint16(d[ecatDgHeaderLen+n:]))
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
	ok := ecatFrame(p.Payload, func(cmd uint8, adp, ado uint16, data []byte, wkc uint16) {
		cmds |= 1 << cmd
		if returned && (cmd == ecatCmdBRD || cmd == ecatCmdBWR) && wkc > m.slaves {
			m.slaves = wkc
		}
		switch {
		case returned && cmd == ecatCmdFPRD && ado == ecatRegSII && wkc == 1 && len(data) >= 10:
			m.siiRead(adp, data)
		case !returned && cmd == ecatCmdFPWR && ado == ecatRegSII && len(data) >= 4:
			m.siiCommand(adp, data)
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
	var info string
	if m.siiDirty {
		m.siiDirty = false
		info = m.slaveInfo()
	}
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
	if info != "" {
		e.emit(p, out, master, AttrEtherCATSlaveInfo, info)
	}
}

// slave returns the SII state of station, or nil when the table is full.
func (m *ecatMaster) slave(station uint16) *ecatSlave {
	for i := range m.sii[:m.nsii] {
		if m.sii[i].station == station {
			return &m.sii[i]
		}
	}
	if int(m.nsii) == len(m.sii) {
		return nil
	}
	sl := &m.sii[m.nsii]
	*sl = ecatSlave{station: station}
	m.nsii++
	return sl
}

// siiCommand takes the master's write of the SII registers (from 0x0502:
// control, then the word address in 2 or 4 bytes): a read command for
// that address.
func (m *ecatMaster) siiCommand(station uint16, data []byte) {
	if binary.LittleEndian.Uint16(data)&ecatSIIRead == 0 {
		return
	}
	addr := uint32(binary.LittleEndian.Uint16(data[2:]))
	if len(data) >= 6 {
		addr = binary.LittleEndian.Uint32(data[2:])
	}
	if sl := m.slave(station); sl != nil {
		sl.pend = addr + 1
	}
}

// siiRead takes the SII registers (from 0x0502) a returned FPRD read of
// slave station holds. The data is taken only for the address of a read
// command the master was seen to give (or seen busy), once the command is
// done: then it is the EEPROM's content, not what the registers held
// before.
func (m *ecatMaster) siiRead(station uint16, data []byte) {
	ctrl := binary.LittleEndian.Uint16(data)
	addr := binary.LittleEndian.Uint32(data[2:])
	sl := m.slave(station)
	if sl == nil {
		return
	}
	switch {
	case ctrl&(ecatSIIBusy|ecatSIIRead) == ecatSIIBusy|ecatSIIRead:
		sl.pend = addr + 1
		return
	case ctrl&(ecatSIIBusy|ecatSIIErrors) != 0 || sl.pend != addr+1:
		return
	}
	sl.pend = 0
	d := data[6:]
	for k := 0; k+4 <= len(d) && k < 8; k += 4 {
		w := addr + uint32(k/2) // word address of these 4 bytes
		if w < ecatSIIVendor || w > ecatSIIVendor+6 || w%2 != 0 {
			continue
		}
		i := (w - ecatSIIVendor) / 2
		v := binary.LittleEndian.Uint32(d[k:])
		if sl.have&(1<<i) == 0 || sl.words[i] != v {
			sl.words[i] = v
			sl.have |= 1 << i
			if sl.have&3 == 3 {
				m.siiDirty = true
			}
		}
	}
}

// slaveInfo renders the slaves whose vendor id and product code are known.
func (m *ecatMaster) slaveInfo() string {
	var items []string
	for _, sl := range m.sii[:m.nsii] {
		if sl.have&3 != 3 || len(items) == ecatMaxListed {
			continue
		}
		b := []byte(vndHex4(sl.station))
		for i, name := range [4]string{"vendor", "product", "revision", "serial"} {
			if sl.have&(1<<i) != 0 {
				b = append(b, ' ')
				b = append(b, name...)
				b = append(b, " 0x"...)
				b = append(b, fmt8x(sl.words[i])...)
			}
		}
		items = append(items, string(b))
	}
	return vndJoin(items, "; ")
}

// fmt8x renders v as 8 hex digits.
func fmt8x(v uint32) string { return vndHex4(uint16(v>>16)) + vndHex4(uint16(v)) }

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
