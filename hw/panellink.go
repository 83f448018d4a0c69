package hw

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"periph.io/x/conn/v3/physic"
)

// A panel link carries a front panel over a byte stream instead of I2C and
// GPIO wires: a virtual machine's virtio-serial port, whose far end on the
// VM's host holds an emulated panel (EmuPanel). The box's side, PanelLink,
// is an I2C bus for the LCD driver and the buttons for the menu; the far
// end, PanelHost, answers each I2C transaction with its emulated chips and
// sends the buttons' contact levels.
//
// Frames (multi-byte numbers big-endian):
//
//	box -> panel  'T' seq addr:2 nw w[nw] nr     one I2C transaction: write w, then read nr bytes
//	panel -> box  'A' seq status nr r[nr]        its answer; status 0 acknowledged, 1 nobody answered
//	panel -> box  'B' button level               a button's contact closed (level 1) or opened (0)
//
// seq numbers the transactions (mod 256) so that an answer that arrives
// after its transaction gave up is not taken for the next one's. Bytes
// that start no known frame are skipped, so either end can join a stream
// the other had been writing to.
const (
	frameTx     = 'T'
	frameAnswer = 'A'
	frameButton = 'B'

	// MaxPanelTx bounds the bytes written or read in one transaction.
	MaxPanelTx = 255
)

// PanelReplyTimeout is how long PanelLink waits for a transaction's answer.
// A real I2C transaction to an absent chip fails at once; over the link a
// silent far end is the same fault.
var PanelReplyTimeout = 2 * time.Second

// PanelLink is the box's side of a panel link. It implements periph's
// i2c.Bus (one transaction at a time) and Buttons (the contact levels go
// through the same debouncer and auto-repeat as GPIO buttons).
type PanelLink struct {
	rw      io.ReadWriteCloser
	k       *keyer
	mu      sync.Mutex // one transaction at a time
	seq     byte
	answers chan panelAnswer
	done    chan struct{}
	closing sync.Once
}

type panelAnswer struct {
	seq    byte
	status byte
	r      []byte
}

// NewPanelLink starts reading the far end's frames from rw. A read that
// finds no data (a virtio-serial port whose host side is not connected
// reads as end of file) is retried until Close.
func NewPanelLink(rw io.ReadWriteCloser, t Timing) *PanelLink {
	l := &PanelLink{rw: rw, k: newKeyer(t), answers: make(chan panelAnswer, 1), done: make(chan struct{})}
	go l.read()
	return l
}

func (l *PanelLink) read() {
	br := bufio.NewReader(eofRetry{l.rw, l.done})
	for {
		typ, err := br.ReadByte()
		if err != nil {
			return
		}
		switch typ {
		case frameAnswer:
			var h [3]byte
			if _, err := io.ReadFull(br, h[:]); err != nil {
				return
			}
			a := panelAnswer{seq: h[0], status: h[1], r: make([]byte, h[2])}
			if _, err := io.ReadFull(br, a.r); err != nil {
				return
			}
			select {
			case l.answers <- a:
			default: // nobody waits: a late answer
			}
		case frameButton:
			var h [2]byte
			if _, err := io.ReadFull(br, h[:]); err != nil {
				return
			}
			if int(h[0]) < len(buttonNames) && h[1] <= 1 {
				l.k.level(Button(h[0]), h[1] == 1)
			}
		}
		// Any other byte starts no frame: skipped.
	}
}

// eofRetry reads r, waiting and reading again on end of file until done
// is closed.
type eofRetry struct {
	r    io.Reader
	done chan struct{}
}

func (e eofRetry) Read(p []byte) (int, error) {
	for {
		n, err := e.r.Read(p)
		if n > 0 || (err != nil && err != io.EOF) {
			return n, err
		}
		select {
		case <-e.done:
			return 0, io.EOF
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// String implements i2c.Bus.
func (l *PanelLink) String() string { return "panel-link" }

// SetSpeed implements i2c.Bus; the link has no bus clock.
func (l *PanelLink) SetSpeed(physic.Frequency) error { return nil }

// Tx implements i2c.Bus: it sends the transaction and waits for its answer.
func (l *PanelLink) Tx(addr uint16, w, r []byte) error {
	if len(w) > MaxPanelTx || len(r) > MaxPanelTx {
		return fmt.Errorf("panel link: transaction of %d+%d bytes exceeds %d each", len(w), len(r), MaxPanelTx)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	f := make([]byte, 0, 6+len(w))
	f = append(f, frameTx, l.seq, byte(addr>>8), byte(addr), byte(len(w)))
	f = append(f, w...)
	f = append(f, byte(len(r)))
	// Drop an answer that came after its transaction gave up.
	select {
	case <-l.answers:
	default:
	}
	if _, err := l.rw.Write(f); err != nil {
		return fmt.Errorf("panel link: sending to 0x%02x: %w", addr, err)
	}
	timeout := time.NewTimer(PanelReplyTimeout)
	defer timeout.Stop()
	for {
		select {
		case a := <-l.answers:
			if a.seq != l.seq {
				continue
			}
			if a.status != 0 {
				return fmt.Errorf("i2c: no device acknowledged address 0x%02x", addr)
			}
			if len(a.r) != len(r) {
				return fmt.Errorf("panel link: read %d bytes from 0x%02x, asked for %d", len(a.r), addr, len(r))
			}
			copy(r, a.r)
			return nil
		case <-timeout.C:
			return fmt.Errorf("panel link: no answer for 0x%02x within %v", addr, PanelReplyTimeout)
		case <-l.done:
			return errors.New("panel link: closed")
		}
	}
}

// Presses implements Buttons.
func (l *PanelLink) Presses() <-chan Press { return l.k.out }

// Close implements i2c.BusCloser and Buttons: it closes the stream.
func (l *PanelLink) Close() error {
	var err error
	l.closing.Do(func() {
		close(l.done)
		l.k.close()
		err = l.rw.Close()
	})
	return err
}

// PanelBus is what a PanelHost answers transactions with, such as EmuBus.
type PanelBus interface {
	Tx(addr uint16, w, r []byte) error
}

// PanelHost is the far end of a panel link: it answers the box's I2C
// transactions with the chips on its bus and sends button levels.
type PanelHost struct {
	rw  io.ReadWriter
	bus PanelBus
	mu  sync.Mutex // writes of answers and button frames
}

// NewPanelHost serves bus to the box at the other end of rw.
func NewPanelHost(rw io.ReadWriter, bus PanelBus) *PanelHost {
	return &PanelHost{rw: rw, bus: bus}
}

// Serve answers transactions until the stream ends; it returns nil at end
// of file.
func (h *PanelHost) Serve() error {
	br := bufio.NewReader(h.rw)
	for {
		typ, err := br.ReadByte()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if typ != frameTx {
			continue
		}
		var hd [4]byte
		if _, err := io.ReadFull(br, hd[:]); err != nil {
			return fmt.Errorf("panel host: transaction header: %w", err)
		}
		w := make([]byte, hd[3])
		var nr [1]byte
		if _, err := io.ReadFull(br, w); err != nil {
			return fmt.Errorf("panel host: transaction data: %w", err)
		}
		if _, err := io.ReadFull(br, nr[:]); err != nil {
			return fmt.Errorf("panel host: transaction read length: %w", err)
		}
		r := make([]byte, nr[0])
		status := byte(0)
		if err := h.bus.Tx(uint16(hd[1])<<8|uint16(hd[2]), w, r); err != nil {
			status, r = 1, nil
		}
		if err := h.send(append([]byte{frameAnswer, hd[0], status, byte(len(r))}, r...)); err != nil {
			return err
		}
	}
}

// SetButton closes (pressed) or opens a button's contact.
func (h *PanelHost) SetButton(b Button, pressed bool) error {
	if int(b) >= len(buttonNames) {
		return fmt.Errorf("panel host: no button %v", b)
	}
	level := byte(0)
	if pressed {
		level = 1
	}
	return h.send([]byte{frameButton, byte(b), level})
}

func (h *PanelHost) send(f []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, err := h.rw.Write(f); err != nil {
		return fmt.Errorf("panel host: %w", err)
	}
	return nil
}

// VirtioPortDir is where Linux lists virtio-serial ports with their names.
const VirtioPortDir = "sys/class/virtio-ports"

// FindVirtioPort returns the device node (/dev/vportNpM) of the
// virtio-serial port called name, looked up in root (a file system laid
// out like /).
func FindVirtioPort(root fs.FS, name string) (string, error) {
	ents, err := fs.ReadDir(root, VirtioPortDir)
	if err != nil {
		return "", fmt.Errorf("virtio-serial port %q: %w", name, err)
	}
	var names []string
	for _, e := range ents {
		b, err := fs.ReadFile(root, path.Join(VirtioPortDir, e.Name(), "name"))
		if err != nil {
			continue
		}
		n := strings.TrimSpace(string(b))
		if n == name {
			return "/dev/" + e.Name(), nil
		}
		names = append(names, n)
	}
	return "", fmt.Errorf("no virtio-serial port named %q (ports: %q)", name, names)
}

// OpenVirtioPort opens the virtio-serial port called name for reading and
// writing.
func OpenVirtioPort(name string) (*os.File, error) {
	dev, err := FindVirtioPort(os.DirFS("/"), name)
	if err != nil {
		return nil, err
	}
	return os.OpenFile(dev, os.O_RDWR, 0)
}
