package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/passivesensor/sensor/menu"
	"github.com/passivesensor/sensor/settings"
)

func decode(in string, gap bool) []key {
	var d decoder
	now := time.Unix(0, 0)
	var out []key
	for i := 0; i < len(in); i++ {
		out = d.feed(in[i], now, out)
		if gap {
			now = now.Add(200 * time.Millisecond)
			out = d.tick(now, out)
		}
	}
	return d.tick(now.Add(time.Second), out)
}

func kinds(ks []key) string {
	names := map[keyKind]string{kChar: "c", kEnter: "E", kBackspace: "B", kDelete: "X", kUp: "U", kDown: "D",
		kLeft: "L", kRight: "R", kHome: "H", kEnd: "N", kEsc: "esc", kRepaint: "^L", kKill: "^U", kCancel: "^C"}
	var b strings.Builder
	for _, k := range ks {
		b.WriteString(names[k.kind])
		if k.kind == kChar {
			b.WriteRune(k.r)
		}
		b.WriteByte(' ')
	}
	return strings.TrimSpace(b.String())
}

func TestDecoder(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a\r", "ca E"},
		{"a\n", "ca E"},
		{"a\r\n", "ca E"},       // CRLF is one Enter
		{"\r\r", "E E"},         // two CRs are two
		{"\n\n", "E E"},         // two LFs are two
		{"x\x7f\x08", "cx B B"}, // DEL and BS
		{"\x1b[A\x1b[B\x1b[C\x1b[D", "U D R L"},
		{"\x1bOA\x1bOD", "U L"}, // application cursor mode
		{"\x1b[1~\x1b[4~\x1b[3~\x1b[H\x1b[F", "H N X H N"},
		{"\x1b[15~q", "cq"}, // unknown function key dropped
		{"\x0c\x15\x03", "^L ^U ^C"},
		{"\x1b", "esc"},
	} {
		if got := kinds(decode(tc.in, false)); got != tc.want {
			t.Errorf("%q: %s, want %s", tc.in, got, tc.want)
		}
	}
	// A lone ESC followed later by a letter: Esc then the letter.
	if got := kinds(decode("\x1bq", true)); got != "esc cq" {
		t.Errorf("lone ESC: %s", got)
	}
}

// fakePort feeds scripted input, then reports time-outs (0, nil) until
// the script says the line failed.
type fakePort struct {
	in  [][]byte
	out bytes.Buffer
	err error
}

func (p *fakePort) Read(b []byte) (int, error) {
	if len(p.in) == 0 {
		return 0, p.err
	}
	n := copy(b, p.in[0])
	p.in = p.in[1:]
	return n, nil
}
func (p *fakePort) Write(b []byte) (int, error) { return p.out.Write(b) }

func TestIdleLogoutDropsDraftAndLineErrorEnds(t *testing.T) {
	dir := t.TempDir()
	m := menu.New(menu.Env{Dir: dir})
	unplugged := errors.New("line gone")
	p := &fakePort{in: [][]byte{
		[]byte("\r"),         // leave the welcome screen
		[]byte("\r"),         // open Network
		[]byte("\r\x15stat"), // edit Mode
		[]byte("ic\r"),       // set static (draft only)
		nil,                  // idle passes here
		[]byte("\r"),         // wake up
	}, err: unplugged}
	c := newConsole(p, m, time.Minute)
	clock := time.Unix(1000, 0)
	c.now = func() time.Time {
		clock = clock.Add(time.Second)
		if len(p.in) == 1 {
			clock = clock.Add(2 * time.Minute)
		}
		return clock
	}
	err := c.run()
	if !errors.Is(err, unplugged) {
		t.Fatalf("run ended with %v", err)
	}
	out := p.out.String()
	set, logout := strings.Index(out, "Mode set to static"), strings.Index(out, "Logged out after 1m0s without a key")
	if set < 0 || logout < set {
		t.Fatalf("want the change then the idle logout screen; at %d and %d\n%q", set, logout, out)
	}
	if m.Draft().Mode != settings.ModeDHCP || c.nav.Depth() != 1 {
		t.Fatalf("after logout: draft %v depth %d", m.Draft().Mode, c.nav.Depth())
	}
	if s, _, _ := settings.Load(settings.PathIn(dir)); s.Mode != settings.ModeDHCP {
		t.Fatal("unsaved draft reached the file")
	}
}

// FuzzDecoder feeds arbitrary line noise: the decoder never panics, never
// holds more than a short escape sequence, and yields at most one key per byte.
func FuzzDecoder(f *testing.F) {
	for _, s := range []string{"a\r\n", "\x1b[A\x1b[1~", "\x1bOB", "\x1b[15;2~", "\x7f\x08\x0c", "\x1b\x1b\x1b["} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var d decoder
		now := time.Unix(0, 0)
		var keys []key
		for _, b := range in {
			keys = d.feed(b, now, keys)
			if len(d.esc) > 9 {
				t.Fatalf("escape buffer grew to %d", len(d.esc))
			}
		}
		keys = d.tick(now.Add(time.Second), keys)
		if len(keys) > len(in) {
			t.Fatalf("%d keys from %d bytes", len(keys), len(in))
		}
	})
}

// TestMoveRewritesOnlyChangedRows: moving the cursor rewrites the two rows
// it leaves and enters, not the screen (which takes 0.2 s at 115200 baud).
func TestMoveRewritesOnlyChangedRows(t *testing.T) {
	m := menu.New(menu.Env{Dir: t.TempDir()})
	p := &fakePort{}
	c := newConsole(p, m, time.Hour)
	c.handle(key{kind: kEnter}) // leave the welcome screen
	p.out.Reset()
	if err := c.repaint(); err != nil {
		t.Fatal(err)
	}
	full := p.out.Len()
	p.out.Reset()
	c.handle(key{kind: kDown})
	moved := p.out.String()
	if len(moved) > full/3 || !strings.Contains(moved, "2. Proxy >") || strings.Contains(moved, "Registration") {
		t.Fatalf("a move sent %d bytes (full screen %d): %q", len(moved), full, moved)
	}
}
