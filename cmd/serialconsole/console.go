package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/passivesensor/sensor/menu"
	"github.com/passivesensor/sensor/status"
)

// Screen geometry: PuTTY's default window.
const (
	cols      = 80
	rows      = 24
	listTop   = 4  // first menu line
	listRows  = 14 // menu lines shown at once
	msgRow    = 19
	promptRow = 21
	helpRow   = 23
)

type mode int

const (
	modeMenu mode = iota
	modeEdit
	modeConfirm
	modeIdle // logged out after inactivity
)

// port is the serial line: reads return (0, nil) when the read timeout passes.
type port interface {
	io.ReadWriter
}

// console is one session on the serial line.
type console struct {
	p    port
	m    *menu.Menu
	nav  *menu.Nav
	idle time.Duration
	now  func() time.Time

	mode      mode
	lastKey   time.Time
	msg       string
	msgErr    bool
	buf       []rune // line being edited
	pos       int    // cursor in buf
	item      *menu.Item
	step      int // confirmation step
	top       int // first menu line shown (scrolling)
	dec       decoder
	lastPoll  time.Time
	loggedOut bool     // the welcome screen follows an idle logout
	prev      []string // rows as last painted; nil forces a full repaint
	out       strings.Builder
}

// newConsole starts a session on the welcome screen: a terminal that
// connects later sees it after any key, and that key changes nothing.
func newConsole(p port, m *menu.Menu, idle time.Duration) *console {
	c := &console{p: p, m: m, nav: menu.NewNav(m.Root), idle: idle, now: time.Now, mode: modeIdle}
	c.lastKey = c.now()
	return c
}

// run serves the line until a read or write fails (cable pulled, port
// gone); the caller reopens the port.
func (c *console) run() error {
	if err := c.repaint(); err != nil {
		return err
	}
	buf := make([]byte, 256)
	var keys []key
	for {
		n, err := c.p.Read(buf)
		if err != nil {
			return err
		}
		now := c.now()
		keys = keys[:0]
		for _, b := range buf[:n] {
			keys = c.dec.feed(b, now, keys)
		}
		keys = c.dec.tick(now, keys)
		for _, k := range keys {
			c.lastKey = now
			if err := c.handle(k); err != nil {
				return err
			}
		}
		if err := c.timers(now); err != nil {
			return err
		}
	}
}

// timers logs out an idle session and refreshes live pages.
func (c *console) timers(now time.Time) error {
	if c.mode != modeIdle && c.idle > 0 && now.Sub(c.lastKey) >= c.idle {
		c.m.Reload() // unsaved drafts are dropped
		c.nav.Home()
		c.mode = modeIdle
		c.loggedOut = true
		c.msg = ""
		return c.paint()
	}
	if c.mode == modeMenu && now.Sub(c.lastPoll) >= 2*time.Second {
		c.lastPoll = now
		switch c.nav.Label() {
		case "Status", "Update", "Registration":
			c.nav.Refresh()
			return c.paint()
		}
	}
	return nil
}

func (c *console) setMsg(err bool, format string, args ...any) {
	c.msg, c.msgErr = fmt.Sprintf(format, args...), err
}

func (c *console) handle(k key) error {
	if c.mode == modeIdle {
		c.mode = modeMenu
		c.loggedOut = false
		return c.paint()
	}
	if k.kind == kRepaint {
		return c.repaint()
	}
	switch c.mode {
	case modeEdit:
		return c.editKey(k)
	case modeConfirm:
		return c.confirmKey(k)
	}
	c.msg = ""
	switch k.kind {
	case kUp:
		c.nav.Up()
	case kDown:
		c.nav.Down()
	case kLeft, kEsc, kBackspace, kCancel:
		from := c.nav.Label()
		if c.nav.Back() {
			c.top = 0
			switch {
			case from == "Network" && c.m.Dirty("network"):
				c.setMsg(true, "Network changes are not in use yet: choose Save & apply in Network")
			case from == "Proxy" && c.m.Dirty("proxy"):
				c.setMsg(true, "Proxy changes are not saved yet: choose Save in Proxy")
			}
		}
	case kEnter, kRight:
		c.enter()
	case kChar:
		// Digits pick a line directly, as printed beside it.
		if k.r >= '1' && k.r <= '9' {
			c.nav.Select(int(k.r - '1'))
		}
	default:
		return nil
	}
	return c.paint()
}

func (c *console) enter() {
	it := c.nav.Selected()
	if it == nil {
		return
	}
	switch it.Kind {
	case menu.Submenu:
		c.nav.Open()
		c.top = 0
	case menu.Field:
		c.item, c.mode = it, modeEdit
		c.buf = c.buf[:0]
		if it.FieldKind != menu.Secret {
			c.buf = append(c.buf, []rune(it.Get())...)
		}
		c.pos = len(c.buf)
		c.setMsg(false, "%s: %s. Enter to set, Esc to cancel.", it.Label, it.Hint)
	case menu.Info:
		c.setMsg(false, "%s: %s", it.Label, it.Display())
	case menu.Action:
		c.item, c.step = it, 0
		if len(it.Confirm) == 0 {
			c.runAction()
			return
		}
		c.mode = modeConfirm
		c.msg = ""
	}
}

func (c *console) runAction() {
	c.mode = modeMenu
	// Applying the network can take a DHCP exchange and a cloud check.
	c.setMsg(false, "%s: working...", c.item.Label)
	c.paint()
	res, err := c.item.Run()
	if err != nil {
		c.setMsg(true, "%s: %v", c.item.Label, err)
	} else {
		c.setMsg(false, "%s: %s", c.item.Label, res)
	}
	c.nav.Refresh()
}

func (c *console) confirmKey(k key) error {
	switch {
	case k.kind == kChar && (k.r == 'y' || k.r == 'Y'):
		c.step++
		if c.step >= len(c.item.Confirm) {
			c.runAction()
		}
	case k.kind == kChar && (k.r == 'n' || k.r == 'N'), k.kind == kEsc, k.kind == kCancel, k.kind == kLeft:
		c.mode = modeMenu
		c.setMsg(false, "%s cancelled", c.item.Label)
	default:
		return nil
	}
	return c.paint()
}

func (c *console) editKey(k key) error {
	it := c.item
	switch k.kind {
	case kChar:
		if it.MaxLen > 0 && len(c.buf) >= it.MaxLen {
			c.setMsg(true, "%s is at most %d characters", it.Label, it.MaxLen)
			return c.paint()
		}
		c.buf = append(c.buf, 0)
		copy(c.buf[c.pos+1:], c.buf[c.pos:])
		c.buf[c.pos] = k.r
		c.pos++
	case kBackspace:
		if c.pos > 0 {
			c.buf = append(c.buf[:c.pos-1], c.buf[c.pos:]...)
			c.pos--
		}
	case kDelete:
		if c.pos < len(c.buf) {
			c.buf = append(c.buf[:c.pos], c.buf[c.pos+1:]...)
		}
	case kLeft:
		if c.pos > 0 {
			c.pos--
		}
	case kRight:
		if c.pos < len(c.buf) {
			c.pos++
		}
	case kHome:
		c.pos = 0
	case kEnd:
		c.pos = len(c.buf)
	case kKill:
		c.buf, c.pos = c.buf[:0], 0
	case kUp, kDown:
		if it.FieldKind == menu.Choice && len(it.Choices) > 0 {
			i := 0
			for j, ch := range it.Choices {
				if ch == string(c.buf) {
					i = j
				}
			}
			if k.kind == kUp {
				i = (i + len(it.Choices) - 1) % len(it.Choices)
			} else {
				i = (i + 1) % len(it.Choices)
			}
			c.buf = append(c.buf[:0], []rune(it.Choices[i])...)
			c.pos = len(c.buf)
		}
	case kEsc, kCancel:
		c.mode = modeMenu
		c.setMsg(false, "%s unchanged", it.Label)
		return c.paint()
	case kEnter:
		v := string(c.buf)
		if err := it.Set(v); err != nil {
			c.setMsg(true, "%s", err.Error())
			return c.paint() // stay in the field so it can be corrected
		}
		c.mode = modeMenu
		shown := it.Display()
		c.setMsg(false, "%s set to %s", it.Label, shown)
		if c.m.Dirty("network") && c.nav.Label() == "Network" {
			c.msg += "; choose Save & apply to use it"
		} else if c.m.Dirty("proxy") && c.nav.Label() == "Proxy" {
			c.msg += "; choose Save to keep it"
		}
		return c.paint()
	default:
		return nil
	}
	return c.drawPrompt()
}

// Terminal control: only VT100 sequences PuTTY and every terminal know.
const (
	csi       = "\x1b["
	clearLine = csi + "K"
	reverse   = csi + "7m"
	bold      = csi + "1m"
	plain     = csi + "0m"
)

func at(row, col int) string { return fmt.Sprintf(csi+"%d;%dH", row, col) }

// fit cuts s to n columns (ASCII only: anything else becomes '?').
func fit(s string, n int) string {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r < 0x20 || r >= 0x7f {
			r = '?'
		}
		b = append(b, byte(r))
	}
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}

// summary is the one-line state shown on the welcome screen.
func (c *console) summary() string {
	st, err := status.Read(c.m.Dir())
	if err != nil {
		return "Sensor: " + menu.NotRunning
	}
	cloud := "cloud unreachable"
	if st.CloudOK {
		cloud = "cloud ok"
	}
	return fmt.Sprintf("Sensor %s: %s, %s, %d assets", st.Version, st.Registration, cloud, st.Assets)
}

// paint brings the screen up to date, rewriting only the rows that changed
// since the last paint (a full 80x24 screen takes about 0.2 s at 115200
// baud); repaint clears and rewrites everything.
func (c *console) paint() error { return c.render(false) }

// repaint redraws the whole screen (Ctrl-L, a new line).
func (c *console) repaint() error { return c.render(true) }

func (c *console) render(full bool) error {
	var f [rows + 1]string // f[row] is row's content from column 1
	if c.mode == modeIdle {
		f[2] = "  " + bold + "Sensor set-up console" + plain
		row := 4
		if c.loggedOut {
			f[row] = "  " + fmt.Sprintf("Logged out after %s without a key. Unsaved changes were dropped.", c.idle)
			row += 2
		}
		f[row] = "  " + fit(c.summary(), 76)
		f[row+2] = "  Press Enter to start."
	} else {
		c.frame(&f)
	}
	o := &c.out
	o.Reset()
	o.WriteString(csi + "?25l" + plain)
	if full || c.prev == nil {
		o.WriteString(csi + "H" + csi + "2J")
		c.prev = make([]string, rows+1)
		for r := 1; r <= rows; r++ {
			if f[r] != "" {
				o.WriteString(at(r, 1) + f[r])
			}
			c.prev[r] = f[r]
		}
	} else {
		for r := 1; r <= rows; r++ {
			if f[r] != c.prev[r] {
				o.WriteString(at(r, 1) + f[r] + clearLine)
				c.prev[r] = f[r]
			}
		}
	}
	if err := c.flush(); err != nil {
		return err
	}
	if c.mode == modeEdit || c.mode == modeConfirm {
		return c.drawPrompt()
	}
	return nil
}

// frame lays out the menu screen.
func (c *console) frame(f *[rows + 1]string) {
	title := " Sensor set-up | " + c.nav.Title()
	f[1] = reverse + fit(fmt.Sprintf("%-79s", title), 79) + plain
	items := c.nav.Items()
	cur := c.nav.Cursor()
	if cur < c.top {
		c.top = cur
	}
	if cur >= c.top+listRows {
		c.top = cur - listRows + 1
	}
	for i := c.top; i < len(items) && i < c.top+listRows; i++ {
		it := items[i]
		label := it.Label
		switch it.Kind {
		case menu.Submenu:
			label += " >"
		case menu.Action:
			label = "[" + label + "]"
		}
		num := "  "
		if i < 9 {
			num = fmt.Sprintf("%d.", i+1)
		}
		line := fit(fmt.Sprintf(" %s %-22s %s", num, label, it.Display()), 76)
		if i == cur {
			f[listTop+i-c.top] = "> " + reverse + line + plain
		} else {
			f[listTop+i-c.top] = "  " + line
		}
	}
	if c.top > 0 {
		f[listTop-1] = "  (more above)"
	}
	if c.top+listRows < len(items) {
		f[listTop+listRows] = "  (more below)"
	}
	if c.msg != "" {
		// Messages may be long: two lines.
		m := fit(c.msg, 2*76)
		l1, l2 := m, ""
		if len(m) > 76 {
			cut := strings.LastIndexByte(m[:76], ' ')
			if cut < 40 {
				cut = 76
			}
			l1, l2 = m[:cut], strings.TrimLeft(m[cut:], " ")
		}
		if c.msgErr {
			f[msgRow] = " " + bold + "! " + fit(l1, 76) + plain
			if l2 != "" {
				f[msgRow+1] = " " + bold + "  " + fit(l2, 76) + plain
			}
		} else {
			f[msgRow] = "   " + fit(l1, 76)
			if l2 != "" {
				f[msgRow+1] = "   " + fit(l2, 76)
			}
		}
	}
	help := "Up/Down: move  Enter: open/edit  Left/Esc: back  Ctrl-L: repaint"
	switch c.mode {
	case modeEdit:
		help = "Type, Backspace, Left/Right, Ctrl-U: clear  Enter: set  Esc: cancel"
		if c.item.FieldKind == menu.Choice {
			help = "Up/Down: choose  Enter: set  Esc: cancel"
		}
	case modeConfirm:
		help = "y: yes  n/Esc: no"
	}
	f[helpRow] = " " + fit(help, 78)
}

// drawPrompt redraws only the edit line, in place, and puts the cursor on it.
func (c *console) drawPrompt() error {
	o := &c.out
	o.Reset()
	if c.prev != nil {
		c.prev[promptRow] = "\x00" // drawn here, not by render: cleared at the next paint
	}
	o.WriteString(at(promptRow, 1) + clearLine)
	if c.mode == modeConfirm {
		q := c.item.Confirm[c.step]
		if len(c.item.Confirm) > 1 {
			q = fmt.Sprintf("(%d/%d) %s", c.step+1, len(c.item.Confirm), q)
		}
		o.WriteString(" " + bold + fit(q, 60) + plain + " (y/n) " + csi + "?25h")
		return c.flush()
	}
	prompt := " " + c.item.Label + ": "
	text := string(c.buf)
	if c.item.FieldKind == menu.Secret {
		text = strings.Repeat("*", len(c.buf))
	}
	// Scroll the text when it is longer than the line.
	width := cols - 1 - len(prompt)
	start := 0
	if c.pos > width-1 {
		start = c.pos - width + 1
	}
	vis := []rune(text)[start:]
	if len(vis) > width {
		vis = vis[:width]
	}
	o.WriteString(prompt + fit(string(vis), width))
	o.WriteString(at(promptRow, len(prompt)+1+c.pos-start) + csi + "?25h")
	return c.flush()
}

func (c *console) flush() error {
	_, err := io.WriteString(c.p, c.out.String())
	c.out.Reset()
	return err
}
