package hw

import (
	"fmt"
	"sync"
	"time"

	"github.com/warthog618/go-gpiocdev"

	"github.com/passivesensor/sensor/board"
)

// Button is one front-panel button.
type Button int

// The five front-panel buttons.
const (
	Up Button = iota
	Down
	Left
	Right
	Select
)

var buttonNames = [...]string{"up", "down", "left", "right", "select"}

func (b Button) String() string {
	if int(b) < len(buttonNames) {
		return buttonNames[b]
	}
	return fmt.Sprintf("Button(%d)", int(b))
}

// ButtonByName maps a board profile's button name to a Button.
func ButtonByName(name string) (Button, bool) {
	for i, n := range buttonNames {
		if n == name {
			return Button(i), true
		}
	}
	return 0, false
}

// Press is one press of a button: the first when it goes down, then
// repeats while it is held (Repeat true).
type Press struct {
	Button Button
	Repeat bool
}

// Buttons delivers presses.
type Buttons interface {
	Presses() <-chan Press
	Close() error
}

// Timing of the debouncer and the auto-repeat.
type Timing struct {
	Debounce    time.Duration // a level must hold this long to count
	RepeatDelay time.Duration // held this long, the press repeats
	RepeatEvery time.Duration // then once per this interval
}

// DefaultTiming suits tactile switches and a person's thumb.
var DefaultTiming = Timing{Debounce: 20 * time.Millisecond, RepeatDelay: 600 * time.Millisecond, RepeatEvery: 150 * time.Millisecond}

// keyer turns raw levels (pressed or not, with their time) into debounced
// presses with auto-repeat. It is shared by the GPIO and emulated buttons.
type keyer struct {
	t      Timing
	out    chan Press
	mu     sync.Mutex
	state  [5]keyState
	closed bool
}

type keyState struct {
	down  bool        // debounced level
	gen   int         // bumps on every raw change, cancels pending timers
	timer *time.Timer // debounce or repeat timer
	raw   bool
}

func newKeyer(t Timing) *keyer { return &keyer{t: t, out: make(chan Press, 16)} }

// level records a raw level change of b.
func (k *keyer) level(b Button, pressed bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed || int(b) >= len(k.state) {
		return
	}
	s := &k.state[b]
	s.raw = pressed
	s.gen++
	if s.timer != nil {
		s.timer.Stop()
	}
	gen := s.gen
	s.timer = time.AfterFunc(k.t.Debounce, func() { k.settled(b, gen) })
}

// settled runs when b's level held for the debounce time.
func (k *keyer) settled(b Button, gen int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := &k.state[b]
	if k.closed || s.gen != gen || s.raw == s.down {
		return
	}
	s.down = s.raw
	if !s.down {
		return
	}
	k.send(Press{Button: b})
	s.timer = time.AfterFunc(k.t.RepeatDelay, func() { k.repeat(b, gen) })
}

func (k *keyer) repeat(b Button, gen int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := &k.state[b]
	if k.closed || s.gen != gen || !s.down {
		return
	}
	k.send(Press{Button: b, Repeat: true})
	s.timer = time.AfterFunc(k.t.RepeatEvery, func() { k.repeat(b, gen) })
}

// send drops the press if nobody is reading (a stuck reader must not
// block the timers).
func (k *keyer) send(p Press) {
	select {
	case k.out <- p:
	default:
	}
}

func (k *keyer) close() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return
	}
	k.closed = true
	for i := range k.state {
		if k.state[i].timer != nil {
			k.state[i].timer.Stop()
		}
	}
	close(k.out)
}

// GPIOButtons are buttons on GPIO character-device lines, wired to ground
// with the internal pull-up (active low).
type GPIOButtons struct {
	k     *keyer
	lines *gpiocdev.Lines
}

// OpenGPIOButtons requests the profile's button lines with both edges.
func OpenGPIOButtons(p board.Profile, t Timing) (*GPIOButtons, error) {
	if len(p.Buttons) == 0 {
		return nil, fmt.Errorf("buttons: board %s has no buttons", p.Name)
	}
	k := newKeyer(t)
	byOffset := map[int]Button{}
	var offsets []int
	for name, off := range p.Buttons {
		b, ok := ButtonByName(name)
		if !ok {
			return nil, fmt.Errorf("buttons: board %s names unknown button %q", p.Name, name)
		}
		byOffset[off] = b
		offsets = append(offsets, off)
	}
	handler := func(ev gpiocdev.LineEvent) {
		if b, ok := byOffset[ev.Offset]; ok {
			k.level(b, ev.Type == gpiocdev.LineEventRisingEdge)
		}
	}
	chip := p.GPIOChip
	if chip == "" {
		chip = "gpiochip0"
	}
	lines, err := gpiocdev.RequestLines(chip, offsets, gpiocdev.AsInput, gpiocdev.AsActiveLow,
		gpiocdev.WithPullUp, gpiocdev.WithBothEdges, gpiocdev.WithDebounce(t.Debounce/2),
		gpiocdev.WithConsumer("lcdmenu"), gpiocdev.WithEventHandler(handler))
	if err != nil {
		return nil, fmt.Errorf("buttons: requesting lines %v on %s: %w", offsets, chip, err)
	}
	return &GPIOButtons{k: k, lines: lines}, nil
}

// Presses implements Buttons.
func (g *GPIOButtons) Presses() <-chan Press { return g.k.out }

// Close releases the lines.
func (g *GPIOButtons) Close() error {
	err := g.lines.Close()
	g.k.close()
	return err
}

// EmuButtons are buttons pressed by a test or a keyboard. Level goes
// through the same debouncer and auto-repeat as real buttons; Press
// delivers one clean press at once.
type EmuButtons struct {
	k *keyer
}

// NewEmuButtons returns emulated buttons with timing t.
func NewEmuButtons(t Timing) *EmuButtons { return &EmuButtons{k: newKeyer(t)} }

// Level sets a button's raw contact level (bouncing allowed).
func (e *EmuButtons) Level(b Button, pressed bool) { e.k.level(b, pressed) }

// Press delivers one press of b, as a debounced button would.
func (e *EmuButtons) Press(b Button) {
	e.k.mu.Lock()
	defer e.k.mu.Unlock()
	if !e.k.closed {
		e.k.out <- Press{Button: b}
	}
}

// Presses implements Buttons.
func (e *EmuButtons) Presses() <-chan Press { return e.k.out }

// Close implements Buttons.
func (e *EmuButtons) Close() error { e.k.close(); return nil }
