package hw

import (
	"testing"
	"time"
)

func collect(ch <-chan Press, d time.Duration) []Press {
	var out []Press
	t := time.After(d)
	for {
		select {
		case p := <-ch:
			out = append(out, p)
		case <-t:
			return out
		}
	}
}

func TestDebounceAndRepeat(t *testing.T) {
	tm := Timing{Debounce: 10 * time.Millisecond, RepeatDelay: 100 * time.Millisecond, RepeatEvery: 40 * time.Millisecond}
	e := NewEmuButtons(tm)
	defer e.Close()
	// Contact bounce: five changes within 2 ms, ending pressed, count once.
	for i := range 5 {
		e.Level(Select, i%2 == 0)
		time.Sleep(200 * time.Microsecond)
	}
	e.Level(Select, true)
	time.Sleep(30 * time.Millisecond)
	e.Level(Select, false)
	if got := collect(e.Presses(), 60*time.Millisecond); len(got) != 1 || got[0] != (Press{Button: Select}) {
		t.Fatalf("bouncy press gave %v", got)
	}
	// A glitch shorter than the debounce time is no press.
	e.Level(Up, true)
	time.Sleep(2 * time.Millisecond)
	e.Level(Up, false)
	if got := collect(e.Presses(), 40*time.Millisecond); len(got) != 0 {
		t.Fatalf("glitch gave %v", got)
	}
	// Held: one press, then repeats every 40 ms after 100 ms.
	e.Level(Down, true)
	got := collect(e.Presses(), 260*time.Millisecond)
	e.Level(Down, false)
	if len(got) < 3 || got[0].Repeat || !got[1].Repeat {
		t.Fatalf("held button gave %v", got)
	}
	for _, p := range got {
		if p.Button != Down {
			t.Fatalf("held button gave %v", got)
		}
	}
	if len(got) > 6 {
		t.Fatalf("too many repeats: %d", len(got))
	}
	if got := collect(e.Presses(), 80*time.Millisecond); len(got) != 0 {
		t.Fatalf("repeats after release: %v", got)
	}
}
