// Package hw holds the front panel's hardware: the HD44780 character LCD
// behind a PCF8574 I2C backpack (periph.io's hd44780 and pcf857x drivers),
// the buttons on GPIO character-device lines, and the serial port; and
// emulated ones (an I2C bus with a PCF8574 and an HD44780 that decode what
// the real driver sends, buttons fed by a test or a keyboard) so the menu
// runs and is tested without the hardware.
package hw

import (
	"fmt"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/devices/v3/hd44780"
	"periph.io/x/devices/v3/pcf857x"
)

// Display is a character display the menu draws on.
type Display interface {
	// Size is columns and rows.
	Size() (cols, rows int)
	// Show puts lines on the glass, padded or cut to the width; missing rows are blanked.
	Show(lines []string) error
	// Backlight switches the backlight.
	Backlight(on bool) error
	// Cursor shows the underline cursor at row, col, or hides it.
	Cursor(row, col int, on bool) error
}

// LCD is an HD44780 character LCD behind a PCF8574 backpack, driven by
// periph's hd44780 driver through its pcf857x driver.
//
// periph's hd44780.Reset leaves the controller in 1-line mode (it never
// sends a function set with N=1) and its SetCursor knows only two lines, so
// after it the LCD initialises the controller again by instruction
// (datasheet figure 24: 0x3, 0x3, 0x3, 0x2, then function set 4-bit, 2
// lines, 5x8) and addresses rows 3 and 4 through the second half of lines 1
// and 2.
type LCD struct {
	mu         sync.Mutex
	pcf        *pcf857x.Dev
	dev        *hd44780.Dev
	cols, rows int
	shadow     [][]byte // what the glass shows, to write only changes
	light      bool
	// The cursor as last set: shown, and where; curValid is false once a
	// write has moved the address counter.
	curOn, curValid bool
	curRow, curCol  int
}

// NewLCD opens the backpack at addr on bus and initialises a cols x rows display.
func NewLCD(bus i2c.Bus, addr uint16, cols, rows int) (*LCD, error) {
	if cols < 8 || cols > 40 || (rows != 1 && rows != 2 && rows != 4) || (rows == 4 && cols > 20) {
		return nil, fmt.Errorf("lcd: unsupported geometry %dx%d", cols, rows)
	}
	pcf, err := pcf857x.New(bus, addr, pcf857x.PCF8574)
	if err != nil {
		return nil, fmt.Errorf("lcd: PCF8574 at 0x%02x: %w", addr, err)
	}
	p := pcf.Pins
	data := []gpio.PinOut{p[BackpackD4], p[BackpackD4+1], p[BackpackD4+2], p[BackpackD4+3]}
	dev, err := hd44780.New(data, p[BackpackRS], p[BackpackE])
	if err != nil {
		return nil, fmt.Errorf("lcd: HD44780 behind 0x%02x: %w", addr, err)
	}
	l := &LCD{pcf: pcf, dev: dev, cols: cols, rows: rows}
	if err := l.init(); err != nil {
		return nil, fmt.Errorf("lcd: initialising HD44780 behind 0x%02x: %w", addr, err)
	}
	l.shadow = make([][]byte, rows)
	for r := range l.shadow {
		l.shadow[r] = []byte(fmt.Sprintf("%*s", cols, ""))
	}
	return l, nil
}

// nibble strobes 4 bits into the controller with RS as given.
func (l *LCD) nibble(rs bool, v byte) error {
	p := l.pcf.Pins
	if err := p[BackpackRS].Out(gpio.Level(rs)); err != nil {
		return err
	}
	for i := range 4 {
		if err := p[BackpackD4+i].Out(gpio.Level(v&(1<<i) != 0)); err != nil {
			return err
		}
	}
	if err := p[BackpackE].Out(gpio.High); err != nil {
		return err
	}
	time.Sleep(time.Microsecond) // PWEH >= 450 ns
	return p[BackpackE].Out(gpio.Low)
}

func (l *LCD) instruction(v byte, wait time.Duration) error {
	if err := l.nibble(false, v>>4); err != nil {
		return err
	}
	if err := l.nibble(false, v&0xf); err != nil {
		return err
	}
	time.Sleep(wait)
	return nil
}

// init runs the datasheet's initialization by instruction for 4-bit
// operation (figure 24) with two display lines.
func (l *LCD) init() error {
	for _, w := range []time.Duration{5 * time.Millisecond, 150 * time.Microsecond, 150 * time.Microsecond} {
		if err := l.nibble(false, 0x3); err != nil {
			return err
		}
		time.Sleep(w)
	}
	if err := l.nibble(false, 0x2); err != nil {
		return err
	}
	time.Sleep(50 * time.Microsecond)
	for _, ins := range []struct {
		v    byte
		wait time.Duration
	}{
		{0x28, 50 * time.Microsecond}, // function set: 4-bit, 2 lines, 5x8
		{0x08, 50 * time.Microsecond}, // display off
		{0x01, 2 * time.Millisecond},  // clear
		{0x06, 50 * time.Microsecond}, // entry mode: increment, no shift
		{0x0c, 50 * time.Microsecond}, // display on, cursor off, blink off
	} {
		if err := l.instruction(ins.v, ins.wait); err != nil {
			return err
		}
	}
	return nil
}

// Size implements Display.
func (l *LCD) Size() (int, int) { return l.cols, l.rows }

// addr is the DDRAM address of row r, column c.
func (l *LCD) addr(r, c int) byte {
	base := []int{0x00, 0x40, l.cols, 0x40 + l.cols}[r]
	return byte(base + c)
}

// Show implements Display, writing only the characters that changed.
func (l *LCD) Show(lines []string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for r := range l.rows {
		want := make([]byte, l.cols)
		for c := range want {
			want[c] = ' '
		}
		if r < len(lines) {
			copy(want, toLCD(lines[r]))
		}
		c := 0
		for c < l.cols {
			if want[c] == l.shadow[r][c] {
				c++
				continue
			}
			end := c
			for end < l.cols && want[end] != l.shadow[r][end] {
				end++
			}
			a := l.addr(r, c)
			// periph's SetCursor sends 0x80 | (line*0x40 + column).
			if err := l.dev.SetCursor(a>>6, a&0x3f); err != nil {
				return fmt.Errorf("lcd: %w", err)
			}
			if err := l.dev.Print(string(want[c:end])); err != nil {
				return fmt.Errorf("lcd: %w", err)
			}
			copy(l.shadow[r][c:end], want[c:end])
			l.curValid = false
			c = end
		}
	}
	return nil
}

// toLCD maps text to the HD44780 A00 character ROM: printable ASCII except
// '\' and '~' (which are yen and right arrow there) stays; anything else is '?'.
func toLCD(s string) []byte {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		switch {
		case r == '\\' || r == '~':
			b = append(b, '/')
		case r == '→':
			b = append(b, 0x7e)
		case r >= 0x20 && r < 0x7f:
			b = append(b, byte(r))
		default:
			b = append(b, '?')
		}
	}
	return b
}

// Backlight implements Display.
func (l *LCD) Backlight(on bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.pcf.Pins[BackpackBacklight].Out(gpio.Level(on)); err != nil {
		return fmt.Errorf("lcd: backlight: %w", err)
	}
	l.light = on
	return nil
}

// Cursor implements Display: display control with the cursor bit, and the
// address counter on the cell.
func (l *LCD) Cursor(row, col int, on bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !on {
		if !l.curOn {
			return nil
		}
		l.curOn = false
		return l.instruction(0x0c, 50*time.Microsecond)
	}
	if row < 0 || row >= l.rows || col < 0 || col >= l.cols {
		return fmt.Errorf("lcd: cursor %d,%d outside %dx%d", row, col, l.cols, l.rows)
	}
	if !l.curValid || l.curRow != row || l.curCol != col {
		a := l.addr(row, col)
		if err := l.dev.SetCursor(a>>6, a&0x3f); err != nil {
			return fmt.Errorf("lcd: %w", err)
		}
		l.curRow, l.curCol, l.curValid = row, col, true
	}
	if l.curOn {
		return nil
	}
	l.curOn = true
	return l.instruction(0x0e, 50*time.Microsecond)
}

// Close clears the display and switches the backlight off.
func (l *LCD) Close() error {
	l.Backlight(false)
	return l.dev.Halt()
}
