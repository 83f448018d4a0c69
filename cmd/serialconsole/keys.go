package main

import "time"

// keyKind is a decoded key.
type keyKind int

const (
	kChar keyKind = iota
	kEnter
	kBackspace
	kDelete
	kUp
	kDown
	kLeft
	kRight
	kHome
	kEnd
	kEsc
	kRepaint // Ctrl-L
	kKill    // Ctrl-U
	kCancel  // Ctrl-C
)

type key struct {
	kind keyKind
	r    rune
}

// escWait is how long a lone ESC waits for the rest of a sequence.
const escWait = 80 * time.Millisecond

// decoder turns terminal input bytes into keys: CR, LF or CRLF as Enter;
// DEL or BS as Backspace; VT100/ANSI cursor keys in normal (ESC [ A) and
// application (ESC O A) mode; PuTTY's Home/End/Delete (ESC [ 1~ / 4~ / 3~)
// and xterm's (ESC [ H / F).
type decoder struct {
	afterCR bool
	esc     []byte
	escAt   time.Time
}

func (d *decoder) feed(b byte, now time.Time, out []key) []key {
	if len(d.esc) > 0 {
		d.esc = append(d.esc, b)
		if k, done, ok := d.sequence(); done {
			d.esc = d.esc[:0]
			if ok {
				out = append(out, k)
			}
			return out
		}
		if len(d.esc) > 8 {
			d.esc = d.esc[:0] // unknown long sequence: drop it
		}
		return out
	}
	cr := d.afterCR
	d.afterCR = false
	switch {
	case b == 0x1b:
		d.esc = append(d.esc[:0], b)
		d.escAt = now
	case b == '\r':
		d.afterCR = true
		out = append(out, key{kind: kEnter})
	case b == '\n':
		if !cr {
			out = append(out, key{kind: kEnter})
		}
	case b == 0x7f || b == 0x08:
		out = append(out, key{kind: kBackspace})
	case b == 0x0c:
		out = append(out, key{kind: kRepaint})
	case b == 0x15:
		out = append(out, key{kind: kKill})
	case b == 0x03:
		out = append(out, key{kind: kCancel})
	case b >= 0x20 && b < 0x7f:
		out = append(out, key{kind: kChar, r: rune(b)})
	}
	return out
}

// sequence interprets d.esc; done reports the sequence is complete (ok
// when it was a known key).
func (d *decoder) sequence() (k key, done, ok bool) {
	s := d.esc
	if len(s) < 2 {
		return key{}, false, false
	}
	if s[1] != '[' && s[1] != 'O' {
		// ESC followed by something else: Esc, and the byte is lost
		// (Alt-x); good enough for a menu.
		return key{kind: kEsc}, true, true
	}
	if len(s) < 3 {
		return key{}, false, false
	}
	last := s[len(s)-1]
	if last >= '0' && last <= '9' || last == ';' {
		return key{}, false, false
	}
	switch string(s[2:]) {
	case "A":
		return key{kind: kUp}, true, true
	case "B":
		return key{kind: kDown}, true, true
	case "C":
		return key{kind: kRight}, true, true
	case "D":
		return key{kind: kLeft}, true, true
	case "H", "1~", "7~":
		return key{kind: kHome}, true, true
	case "F", "4~", "8~":
		return key{kind: kEnd}, true, true
	case "3~":
		return key{kind: kDelete}, true, true
	}
	return key{}, true, false
}

// tick reports a lone ESC once escWait has passed without more bytes.
func (d *decoder) tick(now time.Time, out []key) []key {
	if len(d.esc) == 1 && now.Sub(d.escAt) >= escWait {
		d.esc = d.esc[:0]
		out = append(out, key{kind: kEsc})
	}
	return out
}
