package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/passivesensor/sensor/hw"
	"github.com/passivesensor/sensor/menu"
)

// simDisplay is the real LCD driver on an emulated panel, redrawn in the
// terminal after every change.
type simDisplay struct {
	*hw.LCD
	panel *hw.EmuPanel
	out   io.Writer
}

func (s *simDisplay) Show(lines []string) error {
	if err := s.LCD.Show(lines); err != nil {
		return err
	}
	return nil
}

func (s *simDisplay) Backlight(on bool) error {
	if err := s.LCD.Backlight(on); err != nil {
		return err
	}
	s.render()
	return nil
}

func (s *simDisplay) Cursor(row, col int, on bool) error {
	if err := s.LCD.Cursor(row, col, on); err != nil {
		return err
	}
	s.render()
	return nil
}

// render draws the emulated glass: a frame, the rows, the cursor cell
// underlined, dim text when the backlight is off.
func (s *simDisplay) render() {
	rows := s.panel.LCD.Screen()
	r, c, shown, ok := s.panel.LCD.CursorAt()
	var b strings.Builder
	b.WriteString("\x1b[H\x1b[2J")
	light := s.panel.Backpack.Backlight()
	style := "\x1b[30;42m" // black on green: a lit STN panel
	if !light {
		style = "\x1b[32;40m"
	}
	width := len(rows[0])
	b.WriteString("+" + strings.Repeat("-", width) + "+\r\n")
	for i, row := range rows {
		b.WriteString("|" + style)
		for j := 0; j < len(row); j++ {
			if shown && ok && i == r && j == c {
				b.WriteString("\x1b[4m" + string(row[j]) + "\x1b[24m")
			} else {
				b.WriteByte(row[j])
			}
		}
		b.WriteString("\x1b[0m|\r\n")
	}
	b.WriteString("+" + strings.Repeat("-", width) + "+\r\n")
	fmt.Fprintf(&b, "backlight %s\r\n\r\narrows: up/down/left/right  Enter or space: select  q: quit\r\n",
		map[bool]string{true: "on", false: "off"}[light])
	io.WriteString(s.out, b.String())
}

// runSim runs the menu on an emulated panel, with the keyboard as buttons.
func runSim(m *menu.Menu, cols, rows int, lightIdle, idle time.Duration) error {
	panel := hw.NewEmuPanel(0x27, cols, rows)
	lcd, err := hw.NewLCD(panel.Bus, 0x27, cols, rows)
	if err != nil {
		return err
	}
	fd := int(os.Stdin.Fd())
	if term.IsTerminal(fd) {
		old, err := term.MakeRaw(fd)
		if err != nil {
			return fmt.Errorf("terminal: %w", err)
		}
		defer term.Restore(fd, old)
	}
	d := &simDisplay{LCD: lcd, panel: panel, out: os.Stdout}
	buttons := hw.NewEmuButtons(hw.DefaultTiming)
	go readKeys(os.Stdin, buttons)
	u := newUI(d, m)
	u.BacklightIdle, u.LogoutIdle = lightIdle, idle
	err = u.run(buttons.Presses())
	io.WriteString(os.Stdout, "\x1b[0m\r\n")
	return err
}

// readKeys maps terminal keys to button presses until q, Ctrl-C or EOF.
func readKeys(r io.Reader, b *hw.EmuButtons) {
	defer b.Close()
	buf := make([]byte, 16)
	var esc []byte
	for {
		n, err := r.Read(buf)
		if err != nil {
			return
		}
		for _, c := range buf[:n] {
			if len(esc) > 0 || c == 0x1b {
				esc = append(esc, c)
				if len(esc) == 3 {
					switch esc[2] {
					case 'A':
						b.Press(hw.Up)
					case 'B':
						b.Press(hw.Down)
					case 'C':
						b.Press(hw.Right)
					case 'D':
						b.Press(hw.Left)
					}
					esc = esc[:0]
				}
				continue
			}
			switch c {
			case 'q', 3, 4:
				return
			case '\r', '\n', ' ':
				b.Press(hw.Select)
			case 'w', 'k':
				b.Press(hw.Up)
			case 's', 'j':
				b.Press(hw.Down)
			case 'a', 'h':
				b.Press(hw.Left)
			case 'd', 'l':
				b.Press(hw.Right)
			}
		}
	}
}
