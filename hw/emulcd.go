package hw

import (
	"fmt"
	"strings"
	"sync"

	"periph.io/x/conn/v3/physic"
)

// I2CDevice is one emulated chip on an EmuBus.
type I2CDevice interface {
	// Tx receives the bytes the master writes, then fills r.
	Tx(w, r []byte) error
}

// EmuBus is an emulated I2C bus (it implements periph's i2c.Bus) that
// carries emulated chips at their 7-bit addresses. A transaction to an
// address with no chip fails as a real bus does when nobody acknowledges.
type EmuBus struct {
	mu   sync.Mutex
	devs map[uint16]I2CDevice
	txs  int
}

// NewEmuBus returns an empty emulated bus.
func NewEmuBus() *EmuBus { return &EmuBus{devs: map[uint16]I2CDevice{}} }

// Attach puts dev on the bus at addr.
func (b *EmuBus) Attach(addr uint16, dev I2CDevice) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.devs[addr] = dev
}

// String implements i2c.Bus.
func (b *EmuBus) String() string { return "emulated-i2c" }

// SetSpeed implements i2c.Bus; the emulated bus has no speed.
func (b *EmuBus) SetSpeed(physic.Frequency) error { return nil }

// Close implements io.Closer.
func (b *EmuBus) Close() error { return nil }

// Tx implements i2c.Bus.
func (b *EmuBus) Tx(addr uint16, w, r []byte) error {
	b.mu.Lock()
	d, ok := b.devs[addr]
	b.txs++
	b.mu.Unlock()
	if !ok {
		return fmt.Errorf("i2c: no device acknowledged address 0x%02x", addr)
	}
	return d.Tx(w, r)
}

// Transactions counts the transactions the bus carried.
func (b *EmuBus) Transactions() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.txs
}

// PCF8574 backpack wiring (the common LCD1602/LCD2004 "I2C backpack"):
// P0 RS, P1 R/W, P2 E, P3 backlight transistor, P4-P7 D4-D7.
const (
	BackpackRS        = 0
	BackpackRW        = 1
	BackpackE         = 2
	BackpackBacklight = 3
	BackpackD4        = 4
)

// EmuBackpack is an emulated PCF8574 I/O expander wired to an HD44780 as
// on an LCD backpack. Like the real chip it powers up with every pin high;
// a write sets the eight output latches; a read returns the pin levels.
type EmuBackpack struct {
	mu    sync.Mutex
	latch byte
	LCD   *EmuHD44780
}

// NewEmuBackpack returns a backpack driving lcd.
func NewEmuBackpack(lcd *EmuHD44780) *EmuBackpack { return &EmuBackpack{latch: 0xff, LCD: lcd} }

// Tx implements I2CDevice: every written byte is a new pin state (the
// PCF8574 takes any number of bytes in one transaction, each one latched).
func (p *EmuBackpack) Tx(w, r []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, v := range w {
		old := p.latch
		p.latch = v
		p.LCD.pins(old, v)
	}
	for i := range r {
		// Quasi-bidirectional: a pin written high reads high unless pulled
		// low. The HD44780 drives D4-D7 only during a read with E high; it
		// is never busy here, so the busy flag (D7) reads 0.
		v := p.latch
		if v&(1<<BackpackRW) != 0 && v&(1<<BackpackE) != 0 {
			v &^= 0x80
		}
		r[i] = v
	}
	return nil
}

// Backlight reports whether the backlight pin is high.
func (p *EmuBackpack) Backlight() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.latch&(1<<BackpackBacklight) != 0
}

// EmuHD44780 is an emulated HD44780 controller in 4-bit mode as far as the
// datasheet (Hitachi ADE-207-272, table 6 and figures 23-24) defines it:
// power-on internal reset (8-bit, 1 line, display off, increment), the
// initialization by instruction, and the instructions clear display, return
// home, entry mode set, display on/off control, cursor or display shift,
// function set, set CGRAM address, set DDRAM address, and data writes into
// DDRAM or CGRAM with the address counter moving as the entry mode says.
// Data lines are latched on the falling edge of E with the levels present
// while E was high; with R/W high a strobe is a read and changes nothing.
//
// DDRAM addressing: in 2-line mode line 1 is 0x00-0x27 and line 2 is
// 0x40-0x67 (the counter wraps 0x27->0x40 and 0x67->0x00); a 16x2 shows
// 0x00-0x0F and 0x40-0x4F, a 20x4 shows 0x00-0x13, 0x40-0x53, 0x14-0x27,
// 0x54-0x67. In 1-line mode DDRAM is 0x00-0x4F and only the first row is
// driven.
type EmuHD44780 struct {
	mu         sync.Mutex
	cols, rows int

	ddram [0x80]byte
	cgram [64]byte
	ac    int  // address counter
	toCG  bool // last address set was CGRAM

	eightBit, twoLine, font5x10   bool
	displayOn, cursorOn, blinkOn  bool
	increment, shiftOnWrite       bool
	shift                         int // DDRAM offset of the first column (display shift)
	halfPending                   bool
	half                          byte
	instructions, writes, offside int
	badAddress                    int
	lastOffside                   string
}

// NewEmuHD44780 returns a controller behind a cols x rows glass, in its
// power-on reset state.
func NewEmuHD44780(cols, rows int) *EmuHD44780 {
	h := &EmuHD44780{cols: cols, rows: rows}
	h.powerOn()
	return h
}

func (h *EmuHD44780) powerOn() {
	for i := range h.ddram {
		h.ddram[i] = ' '
	}
	h.ac, h.toCG = 0, false
	h.eightBit, h.twoLine, h.font5x10 = true, false, false
	h.displayOn, h.cursorOn, h.blinkOn = false, false, false
	h.increment, h.shiftOnWrite = true, false
	h.shift = 0
	h.halfPending = false
}

// pins is called by the backpack for every change of its outputs.
func (h *EmuHD44780) pins(old, now byte) {
	const e = 1 << BackpackE
	if old&e == 0 || now&e != 0 {
		return // only a falling edge of E latches
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if old&(1<<BackpackRW) != 0 {
		return // a read cycle
	}
	rs := old&(1<<BackpackRS) != 0
	nib := old >> BackpackD4
	if h.eightBit {
		// D0-D3 are not wired on a backpack; they read as 0.
		h.exec(rs, nib<<4)
		return
	}
	if !h.halfPending {
		h.half, h.halfPending = nib, true
		return
	}
	h.halfPending = false
	h.exec(rs, h.half<<4|nib)
}

func (h *EmuHD44780) lineLen() int {
	if h.twoLine {
		return 0x28
	}
	return 0x50
}

// validDDRAM reports whether a is a DDRAM address in the current mode.
func (h *EmuHD44780) validDDRAM(a int) bool {
	if h.twoLine {
		return a < 0x28 || (a >= 0x40 && a < 0x68)
	}
	return a < 0x50
}

func (h *EmuHD44780) step(dir int) {
	if h.toCG {
		h.ac = (h.ac + dir) & 0x3f
		return
	}
	a := h.ac + dir
	if h.twoLine {
		switch {
		case dir > 0 && a == 0x28:
			a = 0x40
		case dir > 0 && a == 0x68:
			a = 0x00
		case dir < 0 && a == 0x3f:
			a = 0x27
		case dir < 0 && a == -1:
			a = 0x67
		}
	} else {
		a = (a + 0x50) % 0x50
	}
	h.ac = a & 0x7f
}

func (h *EmuHD44780) exec(rs bool, v byte) {
	if rs {
		h.writes++
		if h.toCG {
			h.cgram[h.ac&0x3f] = v
		} else {
			if !h.visible(h.ac) {
				h.offside++
				h.lastOffside = fmt.Sprintf("0x%02x", h.ac)
			}
			h.ddram[h.ac&0x7f] = v
		}
		dir := 1
		if !h.increment {
			dir = -1
		}
		h.step(dir)
		if h.shiftOnWrite && !h.toCG {
			h.shift = wrapShift(h.shift + dir)
		}
		return
	}
	h.instructions++
	switch {
	case v&0x80 != 0: // set DDRAM address
		a := int(v & 0x7f)
		if !h.validDDRAM(a) {
			h.badAddress++
		}
		h.ac, h.toCG = a, false
	case v&0x40 != 0: // set CGRAM address
		h.ac, h.toCG = int(v&0x3f), true
	case v&0x20 != 0: // function set
		h.eightBit = v&0x10 != 0
		h.twoLine = v&0x08 != 0
		h.font5x10 = v&0x04 != 0
		h.halfPending = false
	case v&0x10 != 0: // cursor or display shift
		dir := -1
		if v&0x04 != 0 {
			dir = 1
		}
		if v&0x08 != 0 {
			// Shifting the display right moves the window left.
			h.shift = wrapShift(h.shift - dir)
		} else {
			h.step(dir)
		}
	case v&0x08 != 0: // display on/off control
		h.displayOn = v&0x04 != 0
		h.cursorOn = v&0x02 != 0
		h.blinkOn = v&0x01 != 0
	case v&0x04 != 0: // entry mode set
		h.increment = v&0x02 != 0
		h.shiftOnWrite = v&0x01 != 0
	case v&0x02 != 0: // return home
		h.ac, h.toCG, h.shift = 0, false, 0
	case v&0x01 != 0: // clear display
		for i := range h.ddram {
			h.ddram[i] = ' '
		}
		h.ac, h.toCG, h.shift = 0, false, 0
		h.increment = true
	}
}

// wrapShift keeps the display shift within one turn of the longest line
// (80 characters, a multiple of both line lengths).
func wrapShift(s int) int { return (s%0x50 + 0x50) % 0x50 }

// rowBase returns the DDRAM address of row r's first column (shift 0).
func (h *EmuHD44780) rowBase(r int) int {
	return []int{0x00, 0x40, h.cols, 0x40 + h.cols}[r]
}

// visible reports whether DDRAM address a is on the glass at shift 0.
func (h *EmuHD44780) visible(a int) bool {
	if !h.twoLine {
		return a < h.cols
	}
	for r := 0; r < h.rows; r++ {
		b := h.rowBase(r)
		if a >= b && a < b+h.cols {
			return true
		}
	}
	return false
}

// Screen returns what the glass shows, one string per row: spaces when the
// display is off; rows the controller does not drive (1-line mode) blank.
func (h *EmuHD44780) Screen() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, h.rows)
	for r := range h.rows {
		b := make([]byte, h.cols)
		for c := range b {
			b[c] = ' '
			if !h.displayOn || (!h.twoLine && r > 0) {
				continue
			}
			line := 0
			if r%2 == 1 {
				line = 0x40
			}
			n := h.lineLen()
			off := ((r/2)*h.cols + c + h.shift) % n
			if off < 0 {
				off += n
			}
			b[c] = h.ddram[line+off]
		}
		out[r] = string(b)
	}
	return out
}

// Text is Screen joined with newlines, trailing spaces trimmed per row.
func (h *EmuHD44780) Text() string {
	rows := h.Screen()
	for i := range rows {
		rows[i] = strings.TrimRight(rows[i], " ")
	}
	return strings.Join(rows, "\n")
}

// CursorAt returns the row and column the address counter points at and
// whether the cursor is shown; ok is false when the counter is off the glass.
func (h *EmuHD44780) CursorAt() (row, col int, shown, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	shown = h.displayOn && h.cursorOn
	if h.toCG {
		return 0, 0, shown, false
	}
	for r := 0; r < h.rows; r++ {
		b := h.rowBase(r)
		if h.ac >= b && h.ac < b+h.cols {
			return r, h.ac - b, shown, true
		}
	}
	return 0, 0, shown, false
}

// DDRAM returns a copy of the display data RAM.
func (h *EmuHD44780) DDRAM() [0x80]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ddram
}

// State is the controller's mode and counters.
type State struct {
	EightBit, TwoLine, DisplayOn, CursorOn, BlinkOn, Increment bool
	AC, Shift                                                  int
	Instructions, Writes                                       int
	// OffScreenWrites counts data writes to DDRAM addresses not on the
	// glass; LastOffScreen is the last such address.
	OffScreenWrites int
	LastOffScreen   string
	// BadAddresses counts Set DDRAM Address instructions outside DDRAM.
	BadAddresses int
}

// State returns the controller's current mode and counters.
func (h *EmuHD44780) State() State {
	h.mu.Lock()
	defer h.mu.Unlock()
	return State{EightBit: h.eightBit, TwoLine: h.twoLine, DisplayOn: h.displayOn, CursorOn: h.cursorOn,
		BlinkOn: h.blinkOn, Increment: h.increment, AC: h.ac, Shift: h.shift,
		Instructions: h.instructions, Writes: h.writes, OffScreenWrites: h.offside,
		LastOffScreen: h.lastOffside, BadAddresses: h.badAddress}
}

// EmuPanel is an emulated LCD backpack module: bus, PCF8574 and HD44780.
type EmuPanel struct {
	Bus      *EmuBus
	Backpack *EmuBackpack
	LCD      *EmuHD44780
}

// NewEmuPanel builds an emulated bus with a backpack at addr driving a
// cols x rows HD44780.
func NewEmuPanel(addr uint16, cols, rows int) *EmuPanel {
	lcd := NewEmuHD44780(cols, rows)
	bp := NewEmuBackpack(lcd)
	bus := NewEmuBus()
	bus.Attach(addr, bp)
	return &EmuPanel{Bus: bus, Backpack: bp, LCD: lcd}
}
