//go:build linux

package capture

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Defaults of OpenAFPacket's rings.
const (
	DefaultAFPacketBlockSize    = 1 << 20 // bytes per ring block
	DefaultAFPacketNumBlocks    = 16      // blocks per ring
	DefaultAFPacketBlockTimeout = 20 * time.Millisecond
)

// afpacketFrameSize is tp_frame_size. TPACKET_V3 packs frames of any length
// into a block, so this only sets how the ring request is counted.
const afpacketFrameSize = 2048

// Layout of the ring (linux/if_packet.h).
const (
	tpBlockStatusOff = 8  // tpacket_block_desc.hdr.bh1.block_status
	tpNumPktsOff     = 12 // .num_pkts
	tpFirstPktOff    = 16 // .offset_to_first_pkt
	tpBlockHdrLen    = 48 // tpacket_block_desc with its timestamps
	// tpacket3_hdr, then the sockaddr_ll the kernel writes after it.
	tpPktHdrLen = unix.SizeofTpacket3Hdr + unix.SizeofSockaddrLinklayer
)

// AFPacketOption changes how OpenAFPacket sets up its rings.
type AFPacketOption func(*afpacketConfig)

type afpacketConfig struct {
	blockSize    int
	numBlocks    int
	blockTimeout time.Duration
	fanoutID     int // <0: choose one
	fanoutDefrag bool
}

// WithRing sets each ring's block size (a multiple of the page size) and
// number of blocks: one ring maps blockSize*numBlocks bytes, and there is one
// ring per interface per worker. A block must hold the largest frame.
func WithRing(blockSize, numBlocks int) AFPacketOption {
	return func(c *afpacketConfig) { c.blockSize, c.numBlocks = blockSize, numBlocks }
}

// WithBlockTimeout sets how long the kernel keeps a partly filled block before
// handing it over (tp_retire_blk_tov, whole milliseconds): the longest a frame
// waits in the ring on a quiet link.
func WithBlockTimeout(d time.Duration) AFPacketOption {
	return func(c *afpacketConfig) { c.blockTimeout = d }
}

// WithFanoutID sets the PACKET_FANOUT group id of the first interface; the
// interface at index i uses id+i. By default an id is derived from the
// process id so that two sensors in one network namespace never share a group.
func WithFanoutID(id uint16) AFPacketOption {
	return func(c *afpacketConfig) { c.fanoutID = int(id) }
}

// WithFanoutDefrag makes the kernel reassemble IP fragments before it picks a
// worker (PACKET_FANOUT_FLAG_DEFRAG), so all fragments of a datagram reach the
// same worker; that worker then sees the reassembled datagram instead of the
// fragments as they were on the wire. Off by default.
func WithFanoutDefrag(on bool) AFPacketOption {
	return func(c *afpacketConfig) { c.fanoutDefrag = on }
}

var fanoutSeq atomic.Uint32

// OpenAFPacket opens TPACKET_V3 memory-mapped rings on the named interfaces,
// one ring per interface per worker, and returns len(ifaces)*workers sources:
// source w*len(ifaces)+i reads interface ifaces[i] for worker w, and its frames
// carry Interface i. With more than one worker the rings of one interface form
// a PACKET_FANOUT hash group, so each worker gets whole flows (the kernel's
// flow hash is the same in both directions). Each interface is in promiscuous
// mode while its sockets are open. The outer 802.1Q/802.1ad tag, which the
// kernel takes off received frames, is put back in place in the ring.
//
// The sockets only receive: nothing is ever written to them. A frame's Data
// points into the ring and is valid until the next Next on the same source.
// One source is read by one goroutine at a time; Stats and Close may be
// called from any goroutine, and Close wakes a Next blocked on a quiet link.
func OpenAFPacket(ifaces []string, workers int, opts ...AFPacketOption) ([]Source, error) {
	if len(ifaces) == 0 {
		return nil, errors.New("capture: OpenAFPacket: no interface given")
	}
	if workers < 1 {
		return nil, fmt.Errorf("capture: OpenAFPacket: %d workers, need at least 1", workers)
	}
	cfg := afpacketConfig{
		blockSize:    DefaultAFPacketBlockSize,
		numBlocks:    DefaultAFPacketNumBlocks,
		blockTimeout: DefaultAFPacketBlockTimeout,
		fanoutID:     -1,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if ps := os.Getpagesize(); cfg.blockSize <= 0 || cfg.blockSize%ps != 0 || cfg.blockSize%afpacketFrameSize != 0 {
		return nil, fmt.Errorf("capture: OpenAFPacket: block size %d is not a positive multiple of the page size %d and of %d",
			cfg.blockSize, ps, afpacketFrameSize)
	}
	if cfg.numBlocks < 1 {
		return nil, fmt.Errorf("capture: OpenAFPacket: %d blocks, need at least 1", cfg.numBlocks)
	}
	if cfg.blockTimeout < time.Millisecond {
		cfg.blockTimeout = time.Millisecond
	}
	if cfg.fanoutID < 0 {
		cfg.fanoutID = int(uint32(os.Getpid())*31+fanoutSeq.Add(1)*977) & 0xffff
	}

	idx := make([]int, len(ifaces))
	for i, name := range ifaces {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return nil, fmt.Errorf("capture: OpenAFPacket: interface %q: %w", name, err)
		}
		idx[i] = ifi.Index
	}
	srcs := make([]*afpacketSource, 0, len(ifaces)*workers)
	fail := func(err error) ([]Source, error) {
		for _, s := range srcs {
			s.Close()
		}
		return nil, err
	}
	for w := 0; w < workers; w++ {
		for i, name := range ifaces {
			s, err := openRing(name, idx[i], i, &cfg)
			if err != nil {
				return fail(fmt.Errorf("capture: AF_PACKET ring on %q (worker %d): %w", name, w, err))
			}
			srcs = append(srcs, s)
			if workers > 1 {
				typ := unix.PACKET_FANOUT_HASH
				if cfg.fanoutDefrag {
					typ |= unix.PACKET_FANOUT_FLAG_DEFRAG
				}
				id := (cfg.fanoutID + i) & 0xffff
				if err := unix.SetsockoptInt(s.fd, unix.SOL_PACKET, unix.PACKET_FANOUT, typ<<16|id); err != nil {
					return fail(fmt.Errorf("capture: joining fanout group %d on %q (worker %d): %w", id, name, w, err))
				}
			}
		}
	}
	// Every ring has joined its group: let frames in.
	out := make([]Source, len(srcs))
	for k, s := range srcs {
		if err := unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_DETACH_FILTER, 0); err != nil {
			return fail(fmt.Errorf("capture: removing the drop filter on %q: %w", s.name, err))
		}
		out[k] = s
	}
	return out, nil
}

// openRing opens one packet socket with a TPACKET_V3 ring, bound to the
// interface with index ifindex, promiscuous, and filtering out every frame
// until OpenAFPacket removes the filter.
func openRing(name string, ifindex, iface int, cfg *afpacketConfig) (_ *afpacketSource, err error) {
	s := &afpacketSource{fd: -1, efd: -1, name: name, iface: iface,
		blockSize: cfg.blockSize, numBlocks: cfg.numBlocks}
	defer func() {
		if err != nil {
			s.release()
		}
	}()
	// Protocol 0: the socket receives nothing until bind names ETH_P_ALL,
	// after the filter and the ring are in place.
	if s.fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0); err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	if err = unix.SetsockoptInt(s.fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return nil, fmt.Errorf("PACKET_VERSION 3: %w", err)
	}
	// Accept nothing until every worker has joined the fanout group, so no
	// frame lands in two rings while the group forms.
	drop := []unix.SockFilter{{Code: 0x06, K: 0}} // ret #0
	if err = unix.SetsockoptSockFprog(s.fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER,
		&unix.SockFprog{Len: 1, Filter: &drop[0]}); err != nil {
		return nil, fmt.Errorf("SO_ATTACH_FILTER: %w", err)
	}
	// Room in front of each frame to put back the VLAN tag.
	if err = unix.SetsockoptInt(s.fd, unix.SOL_PACKET, unix.PACKET_RESERVE, vlanHeaderLen); err != nil {
		return nil, fmt.Errorf("PACKET_RESERVE: %w", err)
	}
	req := unix.TpacketReq3{
		Block_size:     uint32(cfg.blockSize),
		Block_nr:       uint32(cfg.numBlocks),
		Frame_size:     afpacketFrameSize,
		Frame_nr:       uint32(cfg.blockSize / afpacketFrameSize * cfg.numBlocks),
		Retire_blk_tov: uint32(cfg.blockTimeout / time.Millisecond),
	}
	if err = unix.SetsockoptTpacketReq3(s.fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return nil, fmt.Errorf("PACKET_RX_RING of %d blocks of %d bytes: %w", cfg.numBlocks, cfg.blockSize, err)
	}
	if s.ring, err = unix.Mmap(s.fd, 0, cfg.blockSize*cfg.numBlocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err != nil {
		return nil, fmt.Errorf("mmap of the ring: %w", err)
	}
	if err = unix.Bind(s.fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
		return nil, fmt.Errorf("bind: %w", err)
	}
	mreq := unix.PacketMreq{Ifindex: int32(ifindex), Type: unix.PACKET_MR_PROMISC}
	if err = unix.SetsockoptPacketMreq(s.fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
		return nil, fmt.Errorf("promiscuous mode: %w", err)
	}
	// The kernel's counters ran while the socket was set up; start from zero.
	if _, err = unix.GetsockoptTpacketStatsV3(s.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err != nil {
		return nil, fmt.Errorf("PACKET_STATISTICS: %w", err)
	}
	if s.efd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	s.pfd = [2]unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLIN}, {Fd: int32(s.efd), Events: unix.POLLIN}}
	return s, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// afpacketSource reads one TPACKET_V3 ring.
type afpacketSource struct {
	fd, efd   int
	ring      []byte
	blockSize int
	numBlocks int
	name      string
	iface     int
	pfd       [2]unix.PollFd

	// Reader state, guarded by readMu.
	blk     int  // block being read or waited for
	holding bool // blk belongs to us (TP_STATUS_USER)
	left    int  // frames of blk not yet handed out
	off     int  // ring offset of the next frame of blk

	idle atomic.Int64 // idle timeout in nanoseconds; 0: none

	closed    atomic.Bool
	closeOnce sync.Once
	// readMu is held by Next while it reads the ring, and by Close while it
	// unmaps the ring: the ring is never unmapped under a reader.
	readMu sync.Mutex

	frames atomic.Uint64
	bytes  atomic.Uint64

	statsMu sync.Mutex // guards the socket's statistics and drops
	drops   uint64     // kernel drops so far, kept past Close
	shut    bool       // fd closed
}

func (s *afpacketSource) blockStatus(blk int) *uint32 {
	return (*uint32)(unsafe.Pointer(&s.ring[blk*s.blockSize+tpBlockStatusOff]))
}

// SetIdleTimeout makes Next return ErrIdle when no frame came for d; d <= 0
// waits for a frame or Close.
func (s *afpacketSource) SetIdleTimeout(d time.Duration) { s.idle.Store(int64(max(d, 0))) }

// Next returns the next frame. It returns io.EOF once the source is closed,
// and ErrIdle when an idle timeout is set and no frame came within it.
func (s *afpacketSource) Next() (Frame, error) {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	idle := time.Duration(s.idle.Load())
	var deadline time.Time // set when Next first has to wait
	for {
		if s.closed.Load() {
			return Frame{}, io.EOF
		}
		if s.holding {
			if s.left > 0 {
				if f, ok := s.frame(); ok {
					return f, nil
				}
				s.left = 0 // malformed block: skip the rest of it
			}
			// Every frame of the block was handed out and the caller has
			// come back for more: give the block back to the kernel.
			atomic.StoreUint32(s.blockStatus(s.blk), unix.TP_STATUS_KERNEL)
			s.holding = false
			s.blk = (s.blk + 1) % s.numBlocks
		}
		if atomic.LoadUint32(s.blockStatus(s.blk))&unix.TP_STATUS_USER != 0 {
			base := s.blk * s.blockSize
			s.holding = true
			s.left = int(*(*uint32)(unsafe.Pointer(&s.ring[base+tpNumPktsOff])))
			s.off = base + int(*(*uint32)(unsafe.Pointer(&s.ring[base+tpFirstPktOff])))
			continue
		}
		timeout := -1
		if idle > 0 {
			now := time.Now()
			if deadline.IsZero() {
				deadline = now.Add(idle)
			}
			left := deadline.Sub(now)
			if left <= 0 {
				return Frame{}, ErrIdle
			}
			timeout = int((left + time.Millisecond - 1) / time.Millisecond)
		}
		s.pfd[0].Revents, s.pfd[1].Revents = 0, 0
		_, err := unix.Poll(s.pfd[:], timeout)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return Frame{}, fmt.Errorf("capture: poll on AF_PACKET ring of %q: %w", s.name, err)
		}
		if s.pfd[1].Revents != 0 {
			return Frame{}, io.EOF // Close was called
		}
		if s.pfd[0].Revents&(unix.POLLERR|unix.POLLNVAL) != 0 && s.pfd[0].Revents&unix.POLLIN == 0 {
			if s.pfd[0].Revents&unix.POLLERR != 0 {
				// Reading SO_ERROR clears it. The interface going down
				// (cable pulled, switch port restarted) is no end: the
				// kernel feeds the ring again once it is back up.
				e, err := unix.GetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_ERROR)
				if err == nil && unix.Errno(e) == unix.ENETDOWN {
					linkDown(s.name)
					continue
				}
				if err == nil && e != 0 {
					return Frame{}, fmt.Errorf("capture: AF_PACKET ring of %q: %w", s.name, unix.Errno(e))
				}
			}
			return Frame{}, fmt.Errorf("capture: poll on AF_PACKET ring of %q: revents %#x", s.name, s.pfd[0].Revents)
		}
	}
}

// frame hands out the frame at s.off of the held block and moves on. It
// reports false when the frame's header points outside the block.
func (s *afpacketSource) frame() (Frame, bool) {
	blockEnd := (s.blk + 1) * s.blockSize
	p := s.off
	if p < s.blk*s.blockSize+tpBlockHdrLen || p+tpPktHdrLen > blockEnd {
		return Frame{}, false
	}
	h := (*unix.Tpacket3Hdr)(unsafe.Pointer(&s.ring[p]))
	mac, snap := p+int(h.Mac), int(h.Snaplen)
	if mac < p+tpPktHdrLen || mac+snap > blockEnd {
		return Frame{}, false
	}
	f := Frame{
		Data:      s.ring[mac : mac+snap : mac+snap],
		Time:      time.Unix(int64(h.Sec), int64(h.Nsec)),
		WireLen:   int(h.Len),
		LinkType:  LinkEthernet,
		Interface: s.iface,
	}
	if h.Status&unix.TP_STATUS_VLAN_VALID != 0 && snap >= 12 && mac-vlanHeaderLen >= p+tpPktHdrLen {
		tpid := uint16(unix.ETH_P_8021Q)
		if h.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 && h.Hv1.Vlan_tpid != 0 {
			tpid = h.Hv1.Vlan_tpid
		}
		tci := uint16(h.Hv1.Vlan_tci)
		// Slide the MAC addresses into the reserved room in front and put
		// the tag between them and the EtherType.
		m := mac - vlanHeaderLen
		copy(s.ring[m:m+12], s.ring[mac:mac+12])
		s.ring[m+12], s.ring[m+13] = byte(tpid>>8), byte(tpid)
		s.ring[m+14], s.ring[m+15] = byte(tci>>8), byte(tci)
		f.Data = s.ring[m : mac+snap : mac+snap]
		f.WireLen += vlanHeaderLen
	}
	s.left--
	if h.Next_offset != 0 {
		s.off = p + int(h.Next_offset)
	} else {
		s.left = 0
	}
	s.frames.Add(1)
	s.bytes.Add(uint64(f.WireLen))
	return f, true
}

// Stats returns the frames and bytes handed out and the frames the kernel
// dropped because the ring was full.
func (s *afpacketSource) Stats() Stats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	s.updateDropsLocked()
	return Stats{Frames: s.frames.Load(), Bytes: s.bytes.Load(), KernelDrops: s.drops}
}

func (s *afpacketSource) updateDropsLocked() {
	if s.shut || s.fd < 0 {
		return
	}
	// PACKET_STATISTICS clears the kernel's counters on every read.
	if st, err := unix.GetsockoptTpacketStatsV3(s.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
		s.drops += uint64(st.Drops)
	}
}

// Close wakes and waits out a reader blocked in Next, then closes the socket
// and unmaps the ring. It is safe to call more than once.
func (s *afpacketSource) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		one := [8]byte{1}
		unix.Write(s.efd, one[:]) // wakes a Next in poll; the eventfd only counts
		s.readMu.Lock()
		defer s.readMu.Unlock()
		s.release()
	})
	return nil
}

// release frees what openRing acquired.
func (s *afpacketSource) release() {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	s.updateDropsLocked()
	s.shut = true
	if s.ring != nil {
		unix.Munmap(s.ring)
		s.ring = nil
	}
	if s.fd >= 0 {
		unix.Close(s.fd)
		s.fd = -1
	}
	if s.efd >= 0 {
		unix.Close(s.efd)
		s.efd = -1
	}
}
