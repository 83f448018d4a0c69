package main

import (
	"strings"
	"testing"
	"time"

	"github.com/passivesensor/sensor/hw"
	"github.com/passivesensor/sensor/menu"
	"github.com/passivesensor/sensor/settings"
	"github.com/passivesensor/sensor/status"
)

// panelRig is the menu on periph's real LCD driver over the emulated
// I2C bus, PCF8574 and HD44780; the test presses buttons and reads the
// controller's character memory.
type panelRig struct {
	t     *testing.T
	panel *hw.EmuPanel
	u     *ui
	dir   string
	clock time.Time
}

func newPanelRig(t *testing.T, cols, rows int) *panelRig {
	panel := hw.NewEmuPanel(0x27, cols, rows)
	lcd, err := hw.NewLCD(panel.Bus, 0x27, cols, rows)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r := &panelRig{t: t, panel: panel, dir: dir, clock: time.Unix(1e9, 0)}
	r.u = newUI(lcd, menu.New(menu.Env{Dir: dir}))
	r.u.now = func() time.Time { return r.clock }
	if err := r.u.setLight(true); err != nil {
		t.Fatal(err)
	}
	if err := r.u.draw(); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *panelRig) press(bs ...hw.Button) {
	r.t.Helper()
	for _, b := range bs {
		r.clock = r.clock.Add(300 * time.Millisecond)
		if err := r.u.press(hw.Press{Button: b}); err != nil {
			r.t.Fatal(err)
		}
		if st := r.panel.LCD.State(); st.OffScreenWrites != 0 || st.BadAddresses != 0 {
			r.t.Fatalf("write past the %v glass: %+v", r.glass(), st)
		}
	}
}

func (r *panelRig) glass() []string { return r.panel.LCD.Screen() }

// text is the glass read as a person does: rows trimmed, joined by spaces.
func (r *panelRig) text() string {
	rows := r.glass()
	for i := range rows {
		rows[i] = strings.TrimSpace(rows[i])
	}
	return strings.Join(rows, " ")
}

func (r *panelRig) want(subs ...string) {
	r.t.Helper()
	g := r.text()
	for _, s := range subs {
		if !strings.Contains(g, s) {
			r.t.Fatalf("glass lacks %q:\n%s", s, g)
		}
	}
}

// wantMsg reads a message through its pages (Down turns a page marked
// " v"), stopping on the last page, and checks it contains sub.
func (r *panelRig) wantMsg(sub string) {
	r.t.Helper()
	var all []string
	for range 10 {
		t := r.text()
		if !strings.HasSuffix(t, " v") {
			all = append(all, t)
			break
		}
		all = append(all, strings.TrimSpace(strings.TrimSuffix(t, " v")))
		r.press(hw.Down)
	}
	if got := strings.Join(all, " "); !strings.Contains(got, sub) {
		r.t.Fatalf("message lacks %q: %q", sub, got)
	}
}

// selected is the glass row the menu cursor is on.
func (r *panelRig) selected() string {
	for _, row := range r.glass() {
		if strings.HasPrefix(row, ">") {
			return row
		}
	}
	return ""
}

func (r *panelRig) goTo(label string) {
	r.t.Helper()
	for i := 0; i < 12; i++ {
		if strings.HasPrefix(r.selected(), ">"+label) {
			return
		}
		r.press(hw.Down)
	}
	r.t.Fatalf("never reached %q:\n%s", label, strings.Join(r.glass(), "\n"))
}

// cursor returns the glass cell under the controller's cursor.
func (r *panelRig) cursor() (int, int) {
	row, col, shown, ok := r.panel.LCD.CursorAt()
	if !shown || !ok {
		r.t.Fatalf("no cursor on the glass")
	}
	return row, col
}

// typeIP enters an address digit by digit, as on the panel: Up/Down
// change the digit under the cursor, Right moves on.
func (r *panelRig) typeIP(ip string) {
	r.t.Helper()
	var want string
	for i, part := range strings.Split(ip, ".") {
		if i > 0 {
			want += "."
		}
		want += strings.Repeat("0", 3-len(part)) + part
	}
	for i := 0; i < len(want); i++ {
		if want[i] == '.' {
			continue
		}
		row, col := r.cursor()
		cur := r.glass()[row][col]
		// The shorter way round: Down from 0 gives 9.
		b := hw.Up
		if (int(want[i])-int(cur)+10)%10 > 5 {
			b = hw.Down
		}
		for n := 0; cur != want[i]; n++ {
			if n > 9 {
				r.t.Fatalf("digit at column %d never became %c", col, want[i])
			}
			r.press(b)
			cur = r.glass()[row][col]
		}
		if i < len(want)-1 {
			r.press(hw.Right)
		}
	}
	r.press(hw.Select)
}

// typeText enters text character by character through charset cs.
func (r *panelRig) typeText(s, cs string) {
	r.t.Helper()
	for i := 0; i < len(s); i++ {
		if i > 0 {
			r.press(hw.Right)
		}
		r.typeOne(s[i], cs)
	}
	r.press(hw.Select)
}

func TestPanelReachesTheSameSettings(t *testing.T) {
	for _, g := range []struct{ cols, rows int }{{20, 4}, {16, 2}} {
		t.Run(itoa(g.cols)+"x"+itoa(g.rows), func(t *testing.T) {
			t.Parallel() // the driver's strobe delays dominate: overlap them
			r := newPanelRig(t, g.cols, g.rows)
			r.want(">Network")
			r.press(hw.Select)
			r.goTo("Mode")
			r.press(hw.Select)
			r.want("< dhcp >")
			r.press(hw.Down, hw.Select)
			r.want("Mode set to static")
			r.press(hw.Select) // dismiss
			r.goTo("IP")
			r.press(hw.Select)
			r.want("000.000.000.000")
			if row, col := r.cursor(); row != 1 || col != 0 {
				t.Fatalf("cursor at %d,%d", row, col)
			}
			// A wrong address first: 10.0.1.300.
			r.typeIP("10.0.1.300")
			r.wantMsg(`IP "10.0.1.300" is not an IPv4 address like 192.168.1.20`)
			r.press(hw.Select) // back to the field, still holding the wrong value
			r.want("010.000.001.300")
			if row, col := r.cursor(); row != 1 || col != 14 {
				t.Fatalf("cursor at %d,%d after the error", row, col)
			}
			for range 11 {
				r.press(hw.Left)
			}
			if _, col := r.cursor(); col != 0 {
				t.Fatalf("cursor at column %d after 11 Left", col)
			}
			r.typeIP("10.0.1.20")
			r.want("IP set to 10.0.1.20")
			r.press(hw.Select)
			r.goTo("Gateway")
			r.press(hw.Select)
			r.typeIP("10.0.2.1")
			r.wantMsg("gateway 10.0.2.1 is not inside 10.0.1.0/24")
			r.press(hw.Select, hw.Left, hw.Left, hw.Left, hw.Down) // to the third part's last digit: 2 -> 1
			r.want("010.000.001.001")
			r.press(hw.Select)
			r.want("Gateway set to")
			r.press(hw.Select)
			r.goTo("DNS 1")
			r.press(hw.Select)
			r.typeIP("10.0.1.53")
			r.press(hw.Select)
			// DNS 2 set, then cleared again with all zeros.
			r.goTo("DNS 2")
			r.press(hw.Select)
			r.typeIP("10.0.1.54")
			r.want("DNS 2 set to 10.0.1.54")
			r.press(hw.Select)
			r.goTo("DNS 2")
			r.press(hw.Select)
			r.typeIP("0.0.0.0")
			r.want("DNS 2 set to -")
			r.press(hw.Select)
			r.goTo("Save & apply")
			r.press(hw.Select)
			r.want("Apply network?", "Sel=yes Left=no")
			r.press(hw.Select)
			r.want("saved")
			r.press(hw.Select, hw.Left)

			r.goTo("Proxy")
			r.press(hw.Select)
			r.goTo("Host")
			r.press(hw.Select)
			r.typeText("proxy.plant.local", menu.CharsetHost)
			r.press(hw.Select)
			r.goTo("Port")
			r.press(hw.Select)
			r.want("3128") // the host brought the usual proxy port
			r.typeText("8080", menu.CharsetDigits)
			r.want("Port set to 8080")
			r.press(hw.Select)
			r.goTo("User")
			r.press(hw.Select)
			r.typeText("tech", menu.CharsetText)
			r.press(hw.Select)
			r.goTo("Password")
			r.press(hw.Select)
			for i, c := range "s3cret" {
				if i > 0 {
					r.press(hw.Right)
				}
				r.typeOne(byte(c), menu.CharsetText)
				if g := strings.Join(r.glass(), "\n"); i > 0 && !strings.Contains(g, strings.Repeat("*", i)+string(c)) {
					t.Fatalf("password not masked while typed:\n%s", g)
				}
			}
			r.press(hw.Select)
			r.want("set to ******")
			r.press(hw.Select)
			r.goTo("Save")
			r.press(hw.Select)
			r.want("proxy saved")
			r.press(hw.Select, hw.Left)

			r.goTo("Registration")
			r.press(hw.Select)
			r.goTo("Code")
			r.press(hw.Select)
			r.typeText("ABCDEFGHJKMNPQRS", menu.CharsetCode)
			r.want("Code set to")

			s, _, err := settings.Load(settings.PathIn(r.dir))
			if err != nil {
				t.Fatal(err)
			}
			if s.Mode != settings.ModeStatic || s.Address != "10.0.1.20/24" || s.Gateway != "10.0.1.1" ||
				len(s.DNS) != 1 || s.DNS[0] != "10.0.1.53" || s.Proxy.Address != "proxy.plant.local:8080" ||
				s.Proxy.User != "tech" || s.Proxy.Password != "s3cret" || s.PersonalizationCode != "ABCD-EFGH-JKMN-PQRS" {
				t.Fatalf("settings file holds %#v", s)
			}
		})
	}
}

// typeOne turns the character under the cursor to c the shorter way round.
func (r *panelRig) typeOne(c byte, cs string) {
	r.t.Helper()
	cs = " " + cs
	from, to := strings.IndexByte(cs, r.u.buf[r.u.pos]), strings.IndexByte(cs, c)
	if to < 0 {
		r.t.Fatalf("%q not in the charset", c)
	}
	up := (to - from + len(cs)) % len(cs)
	b, n := hw.Up, up
	if up > len(cs)/2 {
		b, n = hw.Down, len(cs)-up
	}
	for range n {
		r.press(b)
	}
}

func itoa(n int) string {
	if n >= 10 {
		return itoa(n/10) + string(rune('0'+n%10))
	}
	return string(rune('0' + n))
}

func TestPanelBacklightAndIdle(t *testing.T) {
	t.Parallel()
	r := newPanelRig(t, 16, 2)
	r.u.BacklightIdle, r.u.LogoutIdle = time.Minute, 10*time.Minute
	r.press(hw.Select) // Network
	r.goTo("Mode")
	r.press(hw.Select, hw.Down, hw.Select, hw.Select) // static, in the draft
	if !r.panel.Backpack.Backlight() {
		t.Fatal("backlight off while in use")
	}
	r.clock = r.clock.Add(61 * time.Second)
	r.u.tick()
	if r.panel.Backpack.Backlight() {
		t.Fatal("backlight still on after a minute idle")
	}
	// The first press only wakes the panel.
	before := r.glass()
	r.press(hw.Down)
	if !r.panel.Backpack.Backlight() || strings.Join(r.glass(), "") != strings.Join(before, "") {
		t.Fatalf("waking press acted: %q -> %q", before, r.glass())
	}
	r.clock = r.clock.Add(11 * time.Minute)
	r.u.tick()
	r.want(">Network")
	if r.u.m.Draft().Mode != settings.ModeDHCP {
		t.Fatal("idle logout kept the unsaved draft")
	}
}

// TestPanelThroughButtons drives the menu through emulated buttons and
// the run loop, as lcdmenu does.
func TestPanelThroughButtons(t *testing.T) {
	t.Parallel()
	r := newPanelRig(t, 20, 4)
	r.u.now = time.Now
	b := hw.NewEmuButtons(hw.DefaultTiming)
	done := make(chan error, 1)
	go func() { done <- r.u.run(b.Presses()) }()
	for _, p := range []hw.Button{hw.Down, hw.Down, hw.Down, hw.Select, hw.Down, hw.Down, hw.Down, hw.Select} {
		b.Press(p)
	}
	deadline := time.Now().Add(3 * time.Second)
	for !strings.Contains(r.text(), "sensor not running") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	b.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if g := strings.TrimSpace(r.text()); g != "Sensor: sensor not running" {
		t.Fatalf("status line: %q", g)
	}
}

// TestPanelShowsDaemonState: with the daemon's status file present, the
// 16x2 panel shows registration, cloud and the sniffing port's counters.
func TestPanelShowsDaemonState(t *testing.T) {
	t.Parallel()
	r := newPanelRig(t, 16, 2)
	if err := status.Write(r.dir, status.Status{Time: time.Now(), Version: "1.4.2", OtherVersion: "1.4.1",
		Registration: status.Registering, CloudOK: false, CloudError: "no route to host", Assets: 9,
		Interfaces: []status.Interface{{Name: "eth1", Up: true, RateBps: 950e3, Drops: 0}}}); err != nil {
		t.Fatal(err)
	}
	r.goTo("Status")
	r.press(hw.Select)
	seen := map[string]string{}
	for range 10 {
		g := r.glass()
		seen[strings.TrimSpace(g[0])] = strings.TrimSpace(g[1])
		r.press(hw.Down)
	}
	for label, want := range map[string]string{">Registered": "registering", ">eth1": "up 950k drop 0",
		">Assets": "9", ">Other": "1.4.1"} {
		if seen[label] != want {
			t.Errorf("%s shows %q, want %q (all: %q)", label, seen[label], want, seen)
		}
	}
	// The cloud line is too long for 16 columns: Select shows it whole,
	// in pages ('v' marks more), Down turns the page.
	r.goTo("Cloud")
	r.press(hw.Select)
	r.want("Cloud: unreachable:   v")
	r.wantMsg("Cloud: unreachable: no route to host")
	r.press(hw.Select)
	r.want(">Cloud")
}
