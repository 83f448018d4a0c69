package hw

import (
	"strings"
	"testing"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/devices/v3/hd44780"
	"periph.io/x/devices/v3/pcf857x"
)

// TestPeriphResetLeavesOneLine documents why LCD initialises again: the
// periph driver's own reset sequence never sends a function set with N=1,
// so a controller that follows the datasheet stays in 1-line mode and the
// second row stays dark.
func TestPeriphResetLeavesOneLine(t *testing.T) {
	p := NewEmuPanel(0x27, 16, 2)
	pcf, err := pcf857x.New(p.Bus, 0x27, pcf857x.PCF8574)
	if err != nil {
		t.Fatal(err)
	}
	pins := pcf.Pins
	dev, err := hd44780.New([]gpio.PinOut{pins[4], pins[5], pins[6], pins[7]}, pins[0], pins[2])
	if err != nil {
		t.Fatal(err)
	}
	st := p.LCD.State()
	if st.EightBit || st.TwoLine || !st.DisplayOn || !st.Increment {
		t.Fatalf("after periph reset: %+v", st)
	}
	dev.SetCursor(1, 0)
	dev.Print("second")
	if got := p.LCD.Screen()[1]; strings.TrimSpace(got) != "" {
		t.Fatalf("1-line mode showed a second row %q", got)
	}
}

func TestLCDGeometries(t *testing.T) {
	for _, g := range []struct{ cols, rows int }{{16, 2}, {20, 4}} {
		p := NewEmuPanel(0x27, g.cols, g.rows)
		l, err := NewLCD(p.Bus, 0x27, g.cols, g.rows)
		if err != nil {
			t.Fatal(err)
		}
		st := p.LCD.State()
		if st.EightBit || !st.TwoLine || !st.DisplayOn || st.CursorOn || !st.Increment {
			t.Fatalf("%dx%d: controller state after init %+v", g.cols, g.rows, st)
		}
		lines := []string{"Network", "> IP 10.0.1.20", "a line far longer than any LCD is wide", "last"}[:g.rows]
		if err := l.Show(lines); err != nil {
			t.Fatal(err)
		}
		got := p.LCD.Screen()
		for r := range g.rows {
			want := (lines[r] + strings.Repeat(" ", 40))[:g.cols]
			if got[r] != want {
				t.Errorf("%dx%d row %d: %q, want %q", g.cols, g.rows, r, got[r], want)
			}
		}
		// Only the changed characters are sent again.
		before := p.LCD.State().Writes
		lines[1] = "> IP 10.0.1.21"
		if err := l.Show(lines); err != nil {
			t.Fatal(err)
		}
		if n := p.LCD.State().Writes - before; n != 1 {
			t.Errorf("%dx%d: %d data writes for one changed character", g.cols, g.rows, n)
		}
		// DDRAM holds the rows at the datasheet's addresses.
		ram := p.LCD.DDRAM()
		if string(ram[0x40:0x40+5]) != "> IP " {
			t.Errorf("row 2 not at 0x40: %q", ram[0x40:0x48])
		}
		if g.rows == 4 {
			if string(ram[0x14:0x14+6]) != "a line" || string(ram[0x54:0x54+4]) != "last" {
				t.Errorf("rows 3/4 not at 0x14/0x54: %q %q", ram[0x14:0x1a], ram[0x54:0x58])
			}
		}
		if st := p.LCD.State(); st.OffScreenWrites != 0 || st.BadAddresses != 0 {
			t.Errorf("%dx%d: writes past the glass: %+v", g.cols, g.rows, st)
		}
		if p.Backpack.Backlight() {
			t.Error("backlight on before asked")
		}
		l.Backlight(true)
		if !p.Backpack.Backlight() {
			t.Error("backlight did not come on")
		}
		l.Backlight(false)
		if p.Backpack.Backlight() {
			t.Error("backlight did not go off")
		}
	}
}

// TestEmuHD44780Datasheet drives the emulated controller nibble by nibble
// as the datasheet's figure 24 and table 6 describe, independent of any driver.
func TestEmuHD44780Datasheet(t *testing.T) {
	h := NewEmuHD44780(16, 2)
	bp := NewEmuBackpack(h)
	var latch byte = 0x08 // backlight on, E low
	send := func(rs bool, nib byte) {
		v := latch&0x08 | nib<<4
		if rs {
			v |= 1
		}
		bp.Tx([]byte{v, v | 0x04, v}, nil) // set up, E high, E low
	}
	ins := func(v byte) { send(false, v>>4); send(false, v&0xf) }
	data := func(s string) {
		for i := 0; i < len(s); i++ {
			send(true, s[i]>>4)
			send(true, s[i]&0xf)
		}
	}
	// Out of sync on purpose: half an instruction first.
	send(false, 0x8)
	for _, n := range []byte{3, 3, 3, 2} {
		send(false, n)
	}
	ins(0x28)
	ins(0x0c)
	ins(0x01)
	ins(0x06)
	data("hello")
	ins(0xc0) // line 2
	data("world")
	if got := h.Text(); got != "hello\nworld" {
		t.Fatalf("screen %q", got)
	}
	ins(0x02) // home
	ins(0x04) // decrement
	ins(0x80 | 0x04)
	data("O")
	if h.State().AC != 3 || h.Screen()[0][:5] != "hellO" {
		t.Fatalf("decrement: %+v %q", h.State(), h.Screen()[0])
	}
	ins(0x06)
	ins(0x80 | 0x27) // last address of line 1: the counter moves on to 0x40
	data("x")
	if h.State().AC != 0x40 || h.State().OffScreenWrites != 1 {
		t.Fatalf("wrap 0x27->0x40: %+v", h.State())
	}
	ins(0x18) // shift the display left
	if h.Screen()[0][:4] != "ellO" {
		t.Fatalf("display shift: %q", h.Screen()[0])
	}
	ins(0x08) // display off
	if strings.TrimSpace(h.Text()) != "" {
		t.Fatal("display off still shows text")
	}
	// A read strobe (R/W high) changes nothing.
	before := h.State()
	bp.Tx([]byte{0x0a | 0x30, 0x0e | 0x30, 0x0a | 0x30}, nil)
	if h.State() != before {
		t.Fatal("read cycle changed the controller")
	}
}

// FuzzEmuBackpack sends arbitrary bytes to the emulated backpack: the
// controller never panics, its address counter stays inside DDRAM or
// CGRAM, and the screen keeps its geometry.
func FuzzEmuBackpack(f *testing.F) {
	f.Add([]byte{0x34, 0x30, 0x34, 0x30, 0x24, 0x20, 0x84, 0x80, 0x05, 0x01})
	f.Add([]byte{0xff, 0x00, 0x04, 0x00, 0xc4, 0xc0, 0x04, 0x00})
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, g := range [][2]int{{16, 2}, {20, 4}} {
			h := NewEmuHD44780(g[0], g[1])
			bp := NewEmuBackpack(h)
			bp.Tx(in, make([]byte, 1))
			st := h.State()
			if st.AC < 0 || st.AC > 0x7f {
				t.Fatalf("address counter %#x", st.AC)
			}
			rows := h.Screen()
			if len(rows) != g[1] {
				t.Fatalf("%d rows", len(rows))
			}
			for _, r := range rows {
				if len(r) != g[0] {
					t.Fatalf("row %q", r)
				}
			}
		}
	})
}
