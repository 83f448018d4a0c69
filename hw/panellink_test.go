package hw

import (
	"net"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"periph.io/x/conn/v3/i2c"
)

// linkedPanel is an emulated panel served over an in-memory stream, and
// the box's end of it.
func linkedPanel(t *testing.T, cols, rows int) (*PanelLink, *PanelHost, *EmuPanel) {
	t.Helper()
	box, far := net.Pipe()
	p := NewEmuPanel(0x27, cols, rows)
	h := NewPanelHost(far, p.Bus)
	served := make(chan error, 1)
	go func() { served <- h.Serve() }()
	l := NewPanelLink(box, Timing{Debounce: 5 * time.Millisecond, RepeatDelay: time.Hour, RepeatEvery: time.Hour})
	t.Cleanup(func() {
		l.Close() // the far end reads end of file and returns
		if err := <-served; err != nil {
			t.Errorf("panel host: %v", err)
		}
		far.Close()
	})
	return l, h, p
}

// TestPanelLinkLCD runs the real LCD driver over the link and the same
// calls straight on an emulated bus: the two controllers must end in the
// same state, glass, counters and all.
func TestPanelLinkLCD(t *testing.T) {
	link, _, far := linkedPanel(t, 20, 4)
	near := NewEmuPanel(0x27, 20, 4)
	var lcds []*LCD
	for _, bus := range []i2c.Bus{link, near.Bus} {
		l, err := NewLCD(bus, 0x27, 20, 4)
		if err != nil {
			t.Fatal(err)
		}
		lcds = append(lcds, l)
	}
	for _, l := range lcds {
		for _, err := range []error{
			l.Show([]string{"Sensor set-up", "> Network >", "  Registration >", "  Status >"}),
			l.Backlight(true),
			l.Show([]string{"IP", "010.000.002.077"}),
			l.Cursor(1, 5, true),
			l.Backlight(false),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if got, want := far.LCD.Text(), near.LCD.Text(); got != want || !strings.HasPrefix(got, "IP\n010.000.002.077") {
		t.Fatalf("over the link the glass shows\n%s\nstraight on the bus\n%s", got, want)
	}
	if got, want := far.LCD.State(), near.LCD.State(); got != want {
		t.Fatalf("controller over the link %+v, straight %+v", got, want)
	}
	if far.Backpack.Backlight() || far.Backpack.Backlight() != near.Backpack.Backlight() {
		t.Fatal("backlight left on over the link")
	}
}

func TestPanelLinkNoDevice(t *testing.T) {
	link, _, _ := linkedPanel(t, 16, 2)
	err := link.Tx(0x3f, []byte{0xff}, nil)
	if err == nil || !strings.Contains(err.Error(), "no device acknowledged address 0x3f") {
		t.Fatalf("transaction to an empty address: %v", err)
	}
	// The link still works afterwards, and reads what the chip gives.
	r, want := make([]byte, 1), make([]byte, 1)
	NewEmuPanel(0x27, 16, 2).Bus.Tx(0x27, nil, want)
	if err := link.Tx(0x27, nil, r); err != nil || r[0] != want[0] {
		t.Fatalf("reading the backpack after a failed transaction: %v %x, want %x", err, r, want)
	}
}

// TestPanelLinkSilentFarEnd checks that a transaction fails, rather than
// hangs, when nobody answers, and that a late answer is not taken for the
// next transaction's.
func TestPanelLinkSilentFarEnd(t *testing.T) {
	old := PanelReplyTimeout
	PanelReplyTimeout = 200 * time.Millisecond
	defer func() { PanelReplyTimeout = old }()
	box, far := net.Pipe()
	link := NewPanelLink(box, DefaultTiming)
	defer link.Close()
	frames := make(chan []byte, 4)
	go func() {
		for {
			b := make([]byte, 64)
			n, err := far.Read(b)
			if err != nil {
				return
			}
			frames <- b[:n]
		}
	}()
	err := link.Tx(0x27, []byte{0x08}, nil)
	if err == nil || !strings.Contains(err.Error(), "no answer") {
		t.Fatalf("silent far end: %v", err)
	}
	first := <-frames
	// The late answer to the first transaction, then the one to the second.
	go func() {
		f := <-frames
		far.Write([]byte{frameAnswer, first[1], 0, 1, 0x11})
		far.Write([]byte{frameAnswer, f[1], 0, 1, 0x22})
	}()
	r := make([]byte, 1)
	if err := link.Tx(0x27, nil, r); err != nil || r[0] != 0x22 {
		t.Fatalf("second transaction: %v, read %x; want 22 (its own answer)", err, r)
	}
}

// TestPanelLinkButtons sends contact levels from the far end, bouncing
// included: the box gets one debounced press per push.
func TestPanelLinkButtons(t *testing.T) {
	link, host, _ := linkedPanel(t, 20, 4)
	push := func(b Button) {
		for _, level := range []bool{true, false, true} { // a bounce
			if err := host.SetButton(b, level); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(30 * time.Millisecond)
		if err := host.SetButton(b, false); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Millisecond)
	}
	push(Down)
	push(Select)
	var got []Button
	timeout := time.After(2 * time.Second)
	for len(got) < 2 {
		select {
		case p := <-link.Presses():
			got = append(got, p.Button)
		case <-timeout:
			t.Fatalf("presses %v, want [down select]", got)
		}
	}
	if got[0] != Down || got[1] != Select {
		t.Fatalf("presses %v, want [down select]", got)
	}
	select {
	case p := <-link.Presses():
		t.Fatalf("an extra press %v", p)
	case <-time.After(100 * time.Millisecond):
	}
	if err := host.SetButton(Button(9), true); err == nil {
		t.Fatal("a button that does not exist was sent")
	}
}

// TestPanelHostSkipsNoise checks that the far end finds the first frame
// in a stream that began mid-frame (a box restarted while writing).
func TestPanelHostSkipsNoise(t *testing.T) {
	box, far := net.Pipe()
	p := NewEmuPanel(0x27, 16, 2)
	go NewPanelHost(far, p.Bus).Serve()
	defer far.Close()
	go box.Write([]byte{0x00, 0x27, 0x01, frameTx, 7, 0x00, 0x27, 0, 1})
	ans := make([]byte, 5)
	box.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := readFull(box, ans); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 1)
	NewEmuPanel(0x27, 16, 2).Bus.Tx(0x27, nil, want)
	if ans[0] != frameAnswer || ans[1] != 7 || ans[2] != 0 || ans[3] != 1 || ans[4] != want[0] {
		t.Fatalf("answer % x, want 41 07 00 01 %02x", ans, want[0])
	}
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func TestFindVirtioPort(t *testing.T) {
	root := fstest.MapFS{
		"sys/class/virtio-ports/vport0p0/name": {Data: []byte("\n")},
		"sys/class/virtio-ports/vport0p1/name": {Data: []byte("sensor.panel\n")},
	}
	if dev, err := FindVirtioPort(root, "sensor.panel"); err != nil || dev != "/dev/vport0p1" {
		t.Fatalf("FindVirtioPort = %q, %v", dev, err)
	}
	if _, err := FindVirtioPort(root, "other"); err == nil || !strings.Contains(err.Error(), `no virtio-serial port named "other"`) {
		t.Fatalf("missing port: %v", err)
	}
	if _, err := FindVirtioPort(fstest.MapFS{}, "sensor.panel"); err == nil {
		t.Fatal("no virtio-ports directory, no error")
	}
}
