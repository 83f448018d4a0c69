package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/passivesensor/sensor/hw"
	"github.com/passivesensor/sensor/menu"
)

type uiMode int

const (
	uiMenu uiMode = iota
	uiEdit
	uiConfirm
	uiMessage
)

// ui is the set-up menu on a character LCD with five buttons: Up/Down move
// or change the character under the cursor, Left goes back (or left in a
// field), Right moves right in a field, Select opens, edits, confirms.
type ui struct {
	d          hw.Display
	m          *menu.Menu
	nav        *menu.Nav
	cols, rows int
	now        func() time.Time

	// BacklightIdle switches the backlight off after this long without a
	// press; LogoutIdle returns to the top and drops unsaved changes.
	BacklightIdle, LogoutIdle time.Duration

	mode     uiMode
	item     *menu.Item
	buf      []byte // field being edited
	pos      int
	choice   int
	step     int      // confirmation step
	msg      []string // message pages (rows of text)
	msgPage  int
	msgBack  uiMode // where a message returns to
	lastKey  time.Time
	light    bool
	loggedIn bool
	lastPoll time.Time
}

func newUI(d hw.Display, m *menu.Menu) *ui {
	cols, rows := d.Size()
	u := &ui{d: d, m: m, nav: menu.NewNav(m.Root), cols: cols, rows: rows, now: time.Now,
		BacklightIdle: time.Minute, LogoutIdle: 10 * time.Minute}
	u.lastKey = u.now()
	u.loggedIn = true
	return u
}

// run handles presses until the channel closes, with the idle timers.
func (u *ui) run(presses <-chan hw.Press) error {
	if err := u.setLight(true); err != nil {
		return err
	}
	if err := u.draw(); err != nil {
		return err
	}
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case p, ok := <-presses:
			if !ok {
				return nil
			}
			if err := u.press(p); err != nil {
				return err
			}
		case <-t.C:
			if err := u.tick(); err != nil {
				return err
			}
		}
	}
}

// tick runs the idle timers and refreshes live pages.
func (u *ui) tick() error {
	now := u.now()
	idle := now.Sub(u.lastKey)
	if u.light && u.BacklightIdle > 0 && idle >= u.BacklightIdle {
		if err := u.setLight(false); err != nil {
			return err
		}
	}
	if u.loggedIn && u.LogoutIdle > 0 && idle >= u.LogoutIdle {
		u.loggedIn = false
		u.m.Reload()
		u.nav.Home()
		u.mode = uiMenu
		return u.draw()
	}
	if u.mode == uiMenu && now.Sub(u.lastPoll) >= 2*time.Second {
		u.lastPoll = now
		switch u.nav.Label() {
		case "Status", "Update", "Registration":
			u.nav.Refresh()
			return u.draw()
		}
	}
	return nil
}

func (u *ui) setLight(on bool) error {
	u.light = on
	return u.d.Backlight(on)
}

// press handles one button press. A press while the backlight is off only
// switches it on, so a technician's first touch never changes anything.
func (u *ui) press(p hw.Press) error {
	u.lastKey = u.now()
	u.loggedIn = true
	if !u.light {
		if p.Repeat {
			return nil
		}
		return u.setLight(true)
	}
	switch u.mode {
	case uiMenu:
		u.menuKey(p.Button)
	case uiEdit:
		u.editKey(p.Button)
	case uiConfirm:
		u.confirmKey(p.Button)
	case uiMessage:
		if p.Repeat {
			return nil
		}
		if p.Button == hw.Down && u.msgPage+1 < len(u.msg) {
			u.msgPage++
		} else if p.Button == hw.Up && u.msgPage > 0 {
			u.msgPage--
		} else {
			u.mode = u.msgBack
		}
	}
	return u.draw()
}

func (u *ui) menuKey(b hw.Button) {
	switch b {
	case hw.Up:
		u.nav.Up()
	case hw.Down:
		u.nav.Down()
	case hw.Left:
		u.nav.Back()
	case hw.Right, hw.Select:
		u.open()
	}
}

func (u *ui) open() {
	it := u.nav.Selected()
	if it == nil {
		return
	}
	switch it.Kind {
	case menu.Submenu:
		u.nav.Open()
	case menu.Field:
		u.item, u.mode = it, uiEdit
		u.startEdit()
	case menu.Info:
		u.message(uiMenu, it.Label+": "+it.Display())
	case menu.Action:
		u.item, u.step = it, 0
		if len(it.Confirm) == 0 {
			u.runAction()
		} else {
			u.mode = uiConfirm
		}
	}
}

// startEdit loads the field into the edit buffer.
func (u *ui) startEdit() {
	it := u.item
	u.pos = 0
	switch it.FieldKind {
	case menu.IPv4:
		u.buf = []byte(padIPv4(it.Get()))
	case menu.Choice:
		u.choice = 0
		for i, c := range it.Choices {
			if c == it.Get() {
				u.choice = i
			}
		}
	default:
		v := it.Get()
		if it.FieldKind == menu.Secret {
			v = ""
		}
		if it.Charset == menu.CharsetCode {
			v = strings.ReplaceAll(v, "-", "")
		}
		u.buf = []byte(v)
		if len(u.buf) == 0 {
			u.buf = []byte{' '}
		}
	}
}

// padIPv4 renders an address as "DDD.DDD.DDD.DDD" for digit-by-digit entry.
func padIPv4(s string) string {
	parts := strings.Split(menu.CanonIPv4(s), ".")
	if len(parts) != 4 {
		return "000.000.000.000"
	}
	var n [4]int
	for i, p := range parts {
		if _, err := fmt.Sscanf(p, "%d", &n[i]); err != nil || n[i] > 255 {
			return "000.000.000.000"
		}
	}
	return fmt.Sprintf("%03d.%03d.%03d.%03d", n[0], n[1], n[2], n[3])
}

// charset is what Up/Down cycle through in a text field: a blank first
// (trailing blanks end the text).
func (u *ui) charset() string {
	cs := u.item.Charset
	if cs == "" {
		cs = menu.CharsetText
	}
	return " " + cs
}

func (u *ui) editKey(b hw.Button) {
	it := u.item
	switch it.FieldKind {
	case menu.Choice:
		switch b {
		case hw.Up:
			u.choice = (u.choice + len(it.Choices) - 1) % len(it.Choices)
		case hw.Down:
			u.choice = (u.choice + 1) % len(it.Choices)
		case hw.Left:
			u.mode = uiMenu
		case hw.Select, hw.Right:
			u.commit(it.Choices[u.choice])
		}
	case menu.IPv4:
		switch b {
		case hw.Up, hw.Down:
			d := int(u.buf[u.pos] - '0')
			if b == hw.Up {
				d = (d + 1) % 10
			} else {
				d = (d + 9) % 10
			}
			u.buf[u.pos] = byte('0' + d)
		case hw.Right:
			if u.pos < len(u.buf)-1 {
				u.pos++
				if u.buf[u.pos] == '.' {
					u.pos++
				}
			}
		case hw.Left:
			if u.pos == 0 {
				u.mode = uiMenu
				return
			}
			u.pos--
			if u.buf[u.pos] == '.' {
				u.pos--
			}
		case hw.Select:
			v := menu.CanonIPv4(string(u.buf))
			if v == "0.0.0.0" {
				v = "" // all zeros clears an optional address (gateway, DNS)
			}
			u.commit(v)
		}
	default:
		cs := u.charset()
		switch b {
		case hw.Up, hw.Down:
			i := strings.IndexByte(cs, u.buf[u.pos])
			if i < 0 {
				i = 0
			}
			if b == hw.Up {
				i = (i + 1) % len(cs)
			} else {
				i = (i + len(cs) - 1) % len(cs)
			}
			u.buf[u.pos] = cs[i]
		case hw.Right:
			if u.pos == len(u.buf)-1 {
				if it.MaxLen > 0 && len(u.buf) >= it.MaxLen {
					return
				}
				// A new position starts from the character before it, so
				// runs of letters or digits need few presses.
				u.buf = append(u.buf, u.buf[u.pos])
			}
			u.pos++
		case hw.Left:
			if u.pos == 0 {
				u.mode = uiMenu
				return
			}
			u.pos--
		case hw.Select:
			u.commit(strings.TrimRight(string(u.buf), " "))
		}
	}
}

func (u *ui) commit(v string) {
	if err := u.item.Set(v); err != nil {
		u.message(uiEdit, err.Error())
		return
	}
	u.mode = uiMenu
	u.message(uiMenu, u.item.Label+" set to "+u.item.Display())
}

func (u *ui) confirmKey(b hw.Button) {
	switch b {
	case hw.Select:
		u.step++
		if u.step >= len(u.item.Confirm) {
			u.runAction()
		}
	case hw.Left:
		u.mode = uiMenu
		u.message(uiMenu, u.item.Label+" cancelled")
	}
}

func (u *ui) runAction() {
	// Applying the network can take a DHCP exchange and a cloud check.
	u.message(uiMenu, u.item.Label+": working...")
	u.draw()
	u.mode = uiMenu
	res, err := u.item.Run()
	u.nav.Refresh()
	if err != nil {
		u.message(uiMenu, err.Error())
		return
	}
	u.message(uiMenu, res)
}

// message shows text wrapped over the rows, in pages; any key but Up/Down
// returns to back.
func (u *ui) message(back uiMode, text string) {
	lines := wrap(text, u.cols)
	if len(lines) > u.rows {
		// More than one page: keep the last two columns for " v".
		lines = wrap(text, u.cols-2)
	}
	u.msg = u.msg[:0]
	for i := 0; i < len(lines); i += u.rows {
		end := min(i+u.rows, len(lines))
		u.msg = append(u.msg, strings.Join(lines[i:end], "\n"))
	}
	u.msgPage = 0
	u.msgBack = back
	u.mode = uiMessage
}

// wrap breaks text into lines of at most width, at spaces where it can.
func wrap(text string, width int) []string {
	var lines []string
	for _, w := range strings.Fields(text) {
		for len(w) > width {
			lines = append(lines, w[:width])
			w = w[width:]
		}
		n := len(lines)
		if n > 0 && len(lines[n-1])+1+len(w) <= width && lines[n-1] != "" {
			lines[n-1] += " " + w
		} else {
			lines = append(lines, w)
		}
	}
	return lines
}

func pad(s string, n int) string {
	if len(s) >= n {
		return s[:n]
	}
	return s + strings.Repeat(" ", n-len(s))
}

// right puts label on the left and value on the right of one row.
func right(label, value string, n int) string {
	if len(label)+1+len(value) <= n {
		return label + strings.Repeat(" ", n-len(label)-len(value)) + value
	}
	return pad(label+" "+value, n)
}

func (u *ui) draw() error {
	lines := make([]string, u.rows)
	curRow, curCol, cursor := 0, 0, false
	switch u.mode {
	case uiMessage:
		copy(lines, strings.Split(u.msg[u.msgPage], "\n"))
		if len(u.msg) > 1 && u.msgPage+1 < len(u.msg) {
			last := pad(lines[u.rows-1], u.cols)
			lines[u.rows-1] = last[:u.cols-1] + "v"
		}
	case uiConfirm:
		q := wrap(u.item.Confirm[u.step], u.cols)
		copy(lines, q[:min(len(q), u.rows-1)])
		lines[u.rows-1] = pad("Sel=yes Left=no", u.cols)
	case uiEdit:
		lines[0] = u.item.Label
		var text string
		switch u.item.FieldKind {
		case menu.Choice:
			text = "< " + u.item.Choices[u.choice] + " >"
			u.pos = 2
		case menu.Secret:
			b := []byte(strings.Repeat("*", len(u.buf)))
			b[u.pos] = u.buf[u.pos] // the character being chosen shows
			text = string(b)
		default:
			text = string(u.buf)
		}
		// Scroll long text so the cursor stays on the glass.
		start := 0
		if u.pos >= u.cols {
			start = u.pos - u.cols + 1
		}
		vis := text[start:]
		lines[1] = pad(vis, u.cols)
		curRow, curCol, cursor = 1, u.pos-start, u.item.FieldKind != menu.Choice
		if u.rows >= 4 {
			if u.item.FieldKind == menu.IPv4 {
				lines[3] = "Up/Dn digit Sel=ok"
			} else {
				lines[3] = "Up/Dn char Sel=ok"
			}
		}
	default:
		u.drawMenu(lines)
	}
	if err := u.d.Show(lines); err != nil {
		return err
	}
	return u.d.Cursor(curRow, curCol, cursor)
}

func (u *ui) drawMenu(lines []string) {
	items := u.nav.Items()
	cur := u.nav.Cursor()
	if len(items) == 0 {
		lines[0] = u.nav.Label()
		return
	}
	if u.rows < 4 {
		// 16x2: the selected line and its value (or the next line).
		it := items[cur]
		lines[0] = ">" + it.Label
		switch it.Kind {
		case menu.Field, menu.Info:
			v := it.Display()
			lines[1] = right("", v, u.cols)
			if len(v) > u.cols {
				lines[1] = v
			}
		default:
			if cur+1 < len(items) {
				lines[1] = " " + items[cur+1].Label
			}
		}
		return
	}
	// 20x4: the title, then three lines around the cursor.
	lines[0] = u.nav.Label()
	if !u.loggedIn {
		lines[0] = "Sensor set-up"
	}
	show := u.rows - 1
	top := 0
	if cur >= show {
		top = cur - show + 1
	}
	for i := 0; i < show && top+i < len(items); i++ {
		it := items[top+i]
		mark := " "
		if top+i == cur {
			mark = ">"
		}
		label := it.Label
		v := ""
		switch it.Kind {
		case menu.Field, menu.Info:
			v = it.Display()
		case menu.Submenu:
			label += " >"
		}
		lines[1+i] = right(mark+label, v, u.cols)
	}
}
