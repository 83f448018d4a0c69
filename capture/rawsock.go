//go:build linux

package capture

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"
)

// rawRcvBuf is the socket receive buffer OpenRaw asks for: the frames that
// wait while the reader is busy. The kernel counts each frame at its buffer's
// true size (a 60-byte frame takes about 1 kB), so the default of about
// 200 kB holds only a few hundred frames, a few tens of milliseconds of a
// busy link.
const rawRcvBuf = 8 << 20

// rawSnapLen is the largest frame OpenRaw captures whole (jumbo frames fit).
const rawSnapLen = 9216

// vlanHeaderLen is the size of one 802.1Q tag.
const vlanHeaderLen = 4

// rawOOBLen holds the PACKET_AUXDATA and SCM_TIMESTAMPNS control messages.
var rawOOBLen = unix.CmsgSpace(int(unsafe.Sizeof(unix.TpacketAuxdata{}))) +
	unix.CmsgSpace(int(unsafe.Sizeof(unix.Timespec{})))

// OpenRaw opens a plain AF_PACKET socket on the named interface in promiscuous
// mode, for the smallest boxes: one frame per system call, read into one
// buffer the source reuses, so it needs no ring memory. Frames carry
// Interface 0. The outer 802.1Q tag the kernel takes off received frames is
// put back in front of the EtherType.
//
// The socket only receives: nothing is ever written to it. A frame's Data is
// valid until the next Next. Close makes a blocked Next return io.EOF.
func OpenRaw(iface string) (Source, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("capture: raw socket on %q: %w", iface, err)
	}
	conn, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_ALL, nil)
	if err != nil {
		return nil, fmt.Errorf("capture: raw socket on %q: %w", iface, err)
	}
	s := &rawSource{
		conn: conn,
		name: iface,
		buf:  make([]byte, vlanHeaderLen+rawSnapLen),
		oob:  make([]byte, rawOOBLen),
	}
	s.recvFn = s.recv
	fail := func(what string, err error) (Source, error) {
		conn.Close()
		return nil, fmt.Errorf("capture: raw socket on %q: %s: %w", iface, what, err)
	}
	if err := conn.SetPromiscuous(true); err != nil {
		return fail("promiscuous mode", err)
	}
	if s.rc, err = conn.SyscallConn(); err != nil {
		return fail("syscall conn", err)
	}
	var serr error
	err = s.rc.Control(func(fd uintptr) {
		if serr = unix.SetsockoptInt(int(fd), unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); serr != nil {
			return
		}
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fail("enabling PACKET_AUXDATA and SO_TIMESTAMPNS", err)
	}
	// As root SO_RCVBUFFORCE passes the rmem_max bound; SO_RCVBUF is
	// capped by it.
	s.rc.Control(func(fd uintptr) {
		if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rawRcvBuf); serr != nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, rawRcvBuf)
		}
	})
	if serr != nil {
		slog.Warn("capture: raw socket keeps its default receive buffer; bursts may be dropped (and counted)",
			"interface", iface, "want", rawRcvBuf, "err", serr)
	}
	// Forget what arrived before the socket was set up, and clear the
	// counters.
	s.conn.Stats()
	s.drain()
	return s, nil
}

// rawSource reads one frame per recvmsg(2) from a packet socket.
type rawSource struct {
	conn   *packet.Conn
	rc     syscall.RawConn
	name   string
	recvFn func(fd uintptr) bool // s.recv, bound once

	// Set up once; reused by every read.
	buf []byte // vlanHeaderLen bytes of room, then the frame
	oob []byte
	iov unix.Iovec
	msg unix.Msghdr

	// Result of the last recv.
	n     int
	errno syscall.Errno

	idle     atomic.Int64 // idle timeout in nanoseconds; 0: none
	deadline time.Time    // read deadline in force; zero: none

	closed atomic.Bool
	frames atomic.Uint64
	bytes  atomic.Uint64

	statsMu sync.Mutex
	drops   uint64
	shut    bool
}

// recv is the syscall.RawConn read callback: one non-blocking recvmsg.
func (s *rawSource) recv(fd uintptr) bool {
	s.iov.Base = &s.buf[vlanHeaderLen]
	s.iov.SetLen(len(s.buf) - vlanHeaderLen)
	s.msg.Iov = &s.iov
	s.msg.Iovlen = 1
	s.msg.Control = &s.oob[0]
	s.msg.SetControllen(len(s.oob))
	s.msg.Flags = 0
	n, _, e := unix.Syscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&s.msg)), unix.MSG_DONTWAIT)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false
	}
	s.n, s.errno = int(n), e
	return true
}

// linkDown notes that the sniffing interface name went down under a live
// source, which goes on waiting for frames.
func linkDown(name string) {
	slog.Warn("capture: sniffing interface is down; waiting for it to come back up", "interface", name)
}

// drain discards the frames already queued.
func (s *rawSource) drain() {
	s.rc.Control(func(fd uintptr) {
		for s.recv(fd) && s.errno == 0 {
		}
	})
}

// SetIdleTimeout makes Next return ErrIdle when no frame came for d (the
// read deadline moves on only every d/2, so between d/2 and d); d <= 0 waits
// for a frame or Close.
func (s *rawSource) SetIdleTimeout(d time.Duration) { s.idle.Store(int64(max(d, 0))) }

// Next returns the next frame. It returns io.EOF once the source is closed,
// and ErrIdle when an idle timeout is set and no frame came within it.
func (s *rawSource) Next() (Frame, error) {
	for {
		if s.closed.Load() {
			return Frame{}, io.EOF
		}
		// Moving the deadline costs a timer update: do it only when the
		// one in force is less than half the timeout away.
		if idle := time.Duration(s.idle.Load()); idle > 0 {
			if now := time.Now(); s.deadline.Sub(now) < idle/2 {
				s.deadline = now.Add(idle)
				s.conn.SetReadDeadline(s.deadline)
			}
		} else if !s.deadline.IsZero() {
			s.deadline = time.Time{}
			s.conn.SetReadDeadline(s.deadline)
		}
		if err := s.rc.Read(s.recvFn); err != nil {
			if s.closed.Load() || errors.Is(err, os.ErrClosed) {
				return Frame{}, io.EOF
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				s.deadline = time.Time{} // set anew by the next Next
				return Frame{}, ErrIdle
			}
			return Frame{}, fmt.Errorf("capture: reading raw socket on %q: %w", s.name, err)
		}
		if s.errno == unix.ENETDOWN {
			// The interface went down (reported once, by this recvmsg);
			// the socket receives again once it is back up.
			linkDown(s.name)
			continue
		}
		if s.errno != 0 {
			return Frame{}, fmt.Errorf("capture: reading raw socket on %q: recvmsg: %w", s.name, s.errno)
		}
		if s.n <= 0 {
			continue
		}
		return s.frame(), nil
	}
}

// frame builds the Frame of the last recv from its control messages.
func (s *rawSource) frame() Frame {
	n := s.n
	if max := len(s.buf) - vlanHeaderLen; n > max {
		n = max
	}
	f := Frame{LinkType: LinkEthernet, WireLen: s.n}
	data := s.buf[vlanHeaderLen : vlanHeaderLen+n]
	oob := s.oob[:min(int(s.msg.Controllen), len(s.oob))]
	hdrLen := unix.CmsgLen(0)
	for len(oob) >= hdrLen {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < hdrLen || l > len(oob) {
			break
		}
		body := oob[hdrLen:l]
		switch {
		case h.Level == unix.SOL_PACKET && h.Type == unix.PACKET_AUXDATA &&
			len(body) >= int(unsafe.Sizeof(unix.TpacketAuxdata{})):
			aux := (*unix.TpacketAuxdata)(unsafe.Pointer(&body[0]))
			f.WireLen = int(aux.Len)
			if aux.Status&unix.TP_STATUS_VLAN_VALID != 0 && len(data) >= 12 {
				tpid := uint16(unix.ETH_P_8021Q)
				if aux.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 && aux.Vlan_tpid != 0 {
					tpid = aux.Vlan_tpid
				}
				// Slide the MAC addresses into the room in front and put
				// the tag between them and the EtherType.
				copy(s.buf[0:12], s.buf[vlanHeaderLen:vlanHeaderLen+12])
				s.buf[12], s.buf[13] = byte(tpid>>8), byte(tpid)
				s.buf[14], s.buf[15] = byte(aux.Vlan_tci>>8), byte(aux.Vlan_tci)
				data = s.buf[0 : n+vlanHeaderLen]
				f.WireLen += vlanHeaderLen
			}
		case h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS &&
			len(body) >= int(unsafe.Sizeof(unix.Timespec{})):
			ts := (*unix.Timespec)(unsafe.Pointer(&body[0]))
			f.Time = time.Unix(int64(ts.Sec), int64(ts.Nsec))
		}
		oob = oob[min(unix.CmsgSpace(l-hdrLen), len(oob)):]
	}
	if f.Time.IsZero() {
		f.Time = time.Now()
	}
	f.Data = data
	s.frames.Add(1)
	s.bytes.Add(uint64(f.WireLen))
	return f
}

// Stats returns the frames and bytes handed out and the frames the kernel
// dropped because the socket's queue was full.
func (s *rawSource) Stats() Stats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	s.updateDropsLocked()
	return Stats{Frames: s.frames.Load(), Bytes: s.bytes.Load(), KernelDrops: s.drops}
}

func (s *rawSource) updateDropsLocked() {
	if s.shut {
		return
	}
	// PACKET_STATISTICS clears the kernel's counters on every read.
	if st, err := s.conn.Stats(); err == nil {
		s.drops += uint64(st.Drops)
	}
}

// Close closes the socket; a Next blocked on it returns io.EOF.
func (s *rawSource) Close() error {
	s.closed.Store(true)
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	if s.shut {
		return nil
	}
	s.updateDropsLocked()
	s.shut = true
	if err := s.conn.Close(); err != nil {
		return fmt.Errorf("capture: closing raw socket on %q: %w", s.name, err)
	}
	return nil
}

var (
	_ IdleSource = (*rawSource)(nil)
	_ IdleSource = (*afpacketSource)(nil)
)
