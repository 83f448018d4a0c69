//go:build linux

package capture

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket/afpacket"
	"golang.org/x/net/bpf"
)

// Defaults of OpenAFPacket's ring and timing.
const (
	DefaultAFPacketBlockSize    = 1 << 20 // bytes per ring block
	DefaultAFPacketNumBlocks    = 16      // blocks per ring
	DefaultAFPacketBlockTimeout = 20 * time.Millisecond
	DefaultAFPacketPollTimeout  = 100 * time.Millisecond
)

// afpacketFrameSize is tp_frame_size. TPACKET_V3 packs frames of any length
// into a block, so this only sets how the ring is carved for the request.
const afpacketFrameSize = 2048

// AFPacketOption changes how OpenAFPacket sets up its rings.
type AFPacketOption func(*afpacketConfig)

type afpacketConfig struct {
	blockSize    int
	numBlocks    int
	blockTimeout time.Duration
	pollTimeout  time.Duration
	fanoutID     int // <0: choose one
	fanoutDefrag bool
}

// WithRing sets each ring's block size (a multiple of the page size) and
// number of blocks: one ring holds blockSize*numBlocks bytes, and there is one
// ring per interface per worker.
func WithRing(blockSize, numBlocks int) AFPacketOption {
	return func(c *afpacketConfig) { c.blockSize, c.numBlocks = blockSize, numBlocks }
}

// WithBlockTimeout sets how long the kernel keeps a partly filled block before
// handing it over (tp_retire_blk_tov, millisecond granularity): the longest a
// frame waits in the ring on a quiet link.
func WithBlockTimeout(d time.Duration) AFPacketOption {
	return func(c *afpacketConfig) { c.blockTimeout = d }
}

// WithPollTimeout sets how long Next waits in poll(2) before it looks whether
// the source was closed: the longest Close waits for a reader.
func WithPollTimeout(d time.Duration) AFPacketOption {
	return func(c *afpacketConfig) { c.pollTimeout = d }
}

// WithFanoutID sets the PACKET_FANOUT group id of the first interface; the
// interface at index i uses id+i. By default an id is derived from the
// process id so that two sensors in one network namespace never share a group.
func WithFanoutID(id uint16) AFPacketOption {
	return func(c *afpacketConfig) { c.fanoutID = int(id) }
}

// WithFanoutDefrag makes the kernel reassemble IP fragments before it picks a
// worker (PACKET_FANOUT_FLAG_DEFRAG), so fragments of one datagram reach the
// same worker; the worker then sees the reassembled datagram instead of the
// fragments as they were on the wire. Off by default.
func WithFanoutDefrag(on bool) AFPacketOption {
	return func(c *afpacketConfig) { c.fanoutDefrag = on }
}

var fanoutSeq atomic.Uint32

// OpenAFPacket opens TPACKET_V3 memory-mapped rings on the named interfaces,
// one ring per interface per worker, and returns len(ifaces)*workers sources:
// source w*len(ifaces)+i reads interface ifaces[i] for worker w, and its frames
// carry Interface i. The rings of one interface form a PACKET_FANOUT hash
// group, so every worker gets whole flows (the kernel's flow hash is the same
// in both directions). Each interface is put in promiscuous mode for as long
// as its sockets are open.
//
// The sockets only receive: nothing is ever written to them. A frame's Data
// points into the ring and is valid until the next Next on the same source.
// One source must be read by one goroutine at a time; Stats and Close may be
// called from any goroutine.
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
		pollTimeout:  DefaultAFPacketPollTimeout,
		fanoutID:     -1,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.pollTimeout < time.Millisecond {
		cfg.pollTimeout = time.Millisecond
	}
	if cfg.fanoutID < 0 {
		cfg.fanoutID = int(uint32(os.Getpid())*31+fanoutSeq.Add(1)*977) & 0xffff
	}
	fanout := afpacket.FanoutHash
	if cfg.fanoutDefrag {
		fanout |= afpacket.FanoutHashWithDefrag
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
			tp, err := afpacket.NewTPacket(
				afpacket.OptInterface(name),
				afpacket.OptTPacketVersion(afpacket.TPacketVersion3),
				afpacket.OptFrameSize(afpacketFrameSize),
				afpacket.OptBlockSize(cfg.blockSize),
				afpacket.OptNumBlocks(cfg.numBlocks),
				afpacket.OptBlockTimeout(cfg.blockTimeout),
				afpacket.OptPollTimeout(cfg.pollTimeout),
				// The kernel takes the outer 802.1Q tag off every received
				// frame; put it back so the decoder sees the wire.
				afpacket.OptAddVLANHeader(true),
			)
			if err != nil {
				return fail(fmt.Errorf("capture: AF_PACKET ring on %q (worker %d): %w", name, w, err))
			}
			s := &afpacketSource{tp: tp, iface: i, name: name}
			srcs = append(srcs, s)
			// Keep the ring empty until every worker has joined the fanout
			// group, so no frame lands in two rings while the group forms.
			if err := tp.SetBPF(dropAll); err != nil {
				return fail(fmt.Errorf("capture: drop filter on %q: %w", name, err))
			}
			if workers > 1 {
				id := uint16((cfg.fanoutID + i) & 0xffff)
				if err := tp.SetFanout(fanout, id); err != nil {
					return fail(fmt.Errorf("capture: fanout group %d on %q (worker %d): %w", id, name, w, err))
				}
			}
			if err := tp.SetPromiscuous(true); err != nil {
				return fail(fmt.Errorf("capture: promiscuous mode on %q: %w", name, err))
			}
		}
	}
	out := make([]Source, len(srcs))
	for k, s := range srcs {
		if err := s.tp.SetBPF(nil); err != nil {
			return fail(fmt.Errorf("capture: removing drop filter on %q: %w", s.name, err))
		}
		out[k] = s
	}
	return out, nil
}

// dropAll is a classic BPF program that accepts nothing.
var dropAll = []bpf.RawInstruction{{Op: 0x06, K: 0}} // ret #0

// afpacketSource reads one TPACKET_V3 ring.
type afpacketSource struct {
	tp    *afpacket.TPacket
	iface int
	name  string

	closed atomic.Bool
	// readMu is held by Next while it reads the ring, and by Close while it
	// unmaps the ring: the ring is never unmapped under a reader.
	readMu sync.Mutex

	frames atomic.Uint64
	bytes  atomic.Uint64

	statsMu sync.Mutex // guards tp's socket statistics and drops
	drops   uint64     // kernel drops so far, kept past Close
	shut    bool       // tp closed
}

// Next returns the next frame. It returns io.EOF once the source is closed.
func (s *afpacketSource) Next() (Frame, error) {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	for {
		if s.closed.Load() {
			return Frame{}, io.EOF
		}
		data, ci, err := s.tp.ZeroCopyReadPacketData()
		if err != nil {
			if errors.Is(err, afpacket.ErrTimeout) {
				continue
			}
			if s.closed.Load() {
				return Frame{}, io.EOF
			}
			return Frame{}, fmt.Errorf("capture: reading AF_PACKET ring on %q: %w", s.name, err)
		}
		s.frames.Add(1)
		s.bytes.Add(uint64(ci.Length))
		return Frame{
			Data:      data,
			Time:      ci.Timestamp,
			WireLen:   ci.Length,
			LinkType:  LinkEthernet,
			Interface: s.iface,
		}, nil
	}
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
	if s.shut {
		return
	}
	if _, v3, err := s.tp.SocketStats(); err == nil {
		s.drops = uint64(v3.Drops())
	}
}

// Close stops the reader (within the poll timeout), then closes the socket
// and unmaps the ring. It is safe to call more than once.
func (s *afpacketSource) Close() error {
	s.closed.Store(true)
	s.readMu.Lock()
	defer s.readMu.Unlock()
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	if s.shut {
		return nil
	}
	s.updateDropsLocked()
	s.shut = true
	s.tp.Close()
	return nil
}
