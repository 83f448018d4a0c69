package main

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/passivesensor/sensor/asset"
	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
	"github.com/passivesensor/sensor/it"
	"github.com/passivesensor/sensor/ot"
)

// Sensor wires capture, decode, flows, dissectors and the inventory. One
// worker runs per capture source; the inventory and the traffic summary are
// shared and only touched on observations and flow events, never per packet.
type Sensor struct {
	Inv     *asset.Inventory
	Traffic *asset.Traffic

	// Interval, when set, is asked for the live report interval after
	// each report, so a new interval (from the cloud's configuration)
	// applies without a restart.
	Interval func() time.Duration

	// Tick is how long a live worker waits for a frame before it does its
	// periodic work anyway (flow expiry, handing flows to a report), so a
	// quiet link delays nothing. Zero means DefaultTick.
	Tick time.Duration

	// Drain bounds how long a live run, once told to stop, keeps reading
	// what the kernel already queued before it closes the sources. Zero
	// means DefaultDrain.
	Drain time.Duration

	mu      sync.Mutex
	stats   capture.Stats
	workers []*worker
}

// Defaults of Sensor's live timings.
const (
	DefaultTick  = 500 * time.Millisecond
	DefaultDrain = 2 * time.Second
)

// New returns a sensor classifying addresses by classes.
func New(classes asset.Classes) *Sensor {
	inv := asset.NewInventory(classes)
	return &Sensor{Inv: inv, Traffic: asset.NewTraffic(inv)}
}

// worker is one capture pipeline: a source, its decoder, duplicate filter,
// flow table and dissector instances. Only its own goroutine touches it.
type worker struct {
	s       *Sensor
	src     capture.Source
	dec     capture.Decoder
	dedup   *capture.Dedup
	flows   *flow.Table
	reg     *dissect.Registry
	pkt     capture.Packet
	dp      dissect.Packet
	expired time.Time // packet time of the last expiry sweep
}

func (s *Sensor) newWorker(src capture.Source) *worker {
	w := &worker{s: s, src: src, dedup: capture.NewDedup(capture.DefaultDedupWindow)}
	w.flows = flow.NewTable(flow.Config{OnEvict: s.flowDone})
	w.reg = dissect.NewRegistry(append(it.All(), ot.All()...)...)
	w.dp.Packet = &w.pkt
	return w
}

// flowDone takes a flow's last counters when it leaves a table.
func (s *Sensor) flowDone(f *flow.Flow) {
	s.Inv.AddFlow(f)
	s.Traffic.AddFlow(f)
}

// handle runs one frame through the pipeline.
func (w *worker) handle(fr capture.Frame) {
	if w.dedup.Duplicate(fr) {
		return
	}
	if err := w.dec.Decode(fr, &w.pkt); err != nil {
		return
	}
	var f *flow.Flow
	var dir flow.Dir
	if w.pkt.HasIP() && (w.pkt.IPProto == capture.ProtoTCP || w.pkt.IPProto == capture.ProtoUDP) {
		f, dir = w.flows.Lookup(&w.pkt)
		if f != nil {
			// A new flow binds addresses to MACs; the server's first answer
			// shows an open port. Both are rare, so the inventory's lock is
			// not taken per packet.
			if f.Packets[flow.FromClient]+f.Packets[flow.FromServer] == 1 ||
				(dir == flow.FromServer && f.Packets[flow.FromServer] == 1) {
				w.s.Inv.AddFlow(f)
			}
		}
	}
	w.dp.Flow, w.dp.Dir = f, dir
	w.reg.Dispatch(&w.dp, w.s.Inv)
	if fr.Time.Sub(w.expired) >= time.Second {
		w.flows.Expire(fr.Time)
		w.expired = fr.Time
	}
}

// idle does the periodic work of a worker whose source had no frame for a
// tick: the flow expiry that frames would otherwise drive.
func (w *worker) idle(now time.Time) {
	if now.Sub(w.expired) >= time.Second {
		w.flows.Expire(now)
		w.expired = now
	}
}

// finish hands every flow still in the table to the inventory and the
// traffic summary.
func (w *worker) finish() {
	w.flows.Range(func(f *flow.Flow) bool {
		w.s.flowDone(f)
		return true
	})
}

func (w *worker) stats() capture.Stats {
	st := w.src.Stats()
	st.Add(w.dec.Stats())
	st.Add(w.dedup.Stats())
	return st
}

// RunFile reads src to its end.
func (s *Sensor) RunFile(src capture.Source) error {
	w := s.newWorker(src)
	s.workers = append(s.workers, w)
	for {
		fr, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			w.finish()
			return err
		}
		w.handle(fr)
	}
	w.finish()
	return nil
}

// RunLive runs one worker per source until ctx ends, calling report every
// interval and once at the end. A source that is an IdleSource wakes its
// worker every Tick on a quiet link, so flows reach the report that follows
// their last frame. When ctx ends the workers first read what is already
// queued (until their source is idle, at most Drain), then the sources are
// closed: frames the kernel took are handed out, not thrown away.
func (s *Sensor) RunLive(ctx context.Context, srcs []capture.Source, interval time.Duration, report func(Report)) error {
	tick, drain := s.Tick, s.Drain
	if tick <= 0 {
		tick = DefaultTick
	}
	if drain <= 0 {
		drain = DefaultDrain
	}
	var wg sync.WaitGroup
	var draining atomic.Bool
	errs := make(chan error, len(srcs))
	flush := make([]chan chan struct{}, len(srcs))
	idlers := 0
	for i, src := range srcs {
		w := s.newWorker(src)
		s.workers = append(s.workers, w)
		flush[i] = make(chan chan struct{}, 1)
		is, canIdle := src.(capture.IdleSource)
		if canIdle {
			is.SetIdleTimeout(tick)
			idlers++
		}
		wg.Add(1)
		go func(w *worker, flush chan chan struct{}) {
			defer wg.Done()
			for {
				select {
				case done := <-flush:
					w.finish()
					close(done)
				default:
				}
				fr, err := w.src.Next()
				if errors.Is(err, capture.ErrIdle) {
					if draining.Load() {
						w.finish() // nothing left in the kernel's queue
						return
					}
					w.idle(time.Now())
					continue
				}
				if errors.Is(err, io.EOF) {
					w.finish()
					return
				}
				if err != nil {
					errs <- err
					w.finish()
					return
				}
				w.handle(fr)
			}
		}(w, flush[i])
	}
	stop := func(drainFirst bool) {
		if drainFirst && idlers > 0 {
			draining.Store(true)
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			// Sources that cannot idle are closed at once; the others
			// end by themselves once idle, or when the drain time is up.
			for _, src := range srcs {
				if _, ok := src.(capture.IdleSource); !ok {
					src.Close()
				}
			}
			select {
			case <-done:
			case <-time.After(drain):
			}
		}
		for _, src := range srcs {
			src.Close()
		}
		wg.Wait()
	}
	next := func() time.Duration {
		if s.Interval != nil {
			if d := s.Interval(); d > 0 {
				return d
			}
		}
		return interval
	}
	t := time.NewTimer(next())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			stop(true)
			report(s.Report())
			return nil
		case err := <-errs:
			stop(false)
			report(s.Report())
			return err
		case <-t.C:
			// Each worker hands its flows' counters over from its own
			// goroutine; the table is not shared.
			var dones []chan struct{}
			for _, f := range flush {
				d := make(chan struct{})
				select {
				case f <- d:
					dones = append(dones, d)
				default: // the last request is still pending
				}
			}
			// A worker on a quiet link wakes within a tick; one stuck on
			// a slow frame is not waited for past a few ticks.
			wait := time.After(4*tick + time.Second)
			for _, d := range dones {
				select {
				case <-d:
				case <-wait:
				case <-ctx.Done():
				}
			}
			report(s.Report())
			// Assets not seen for the inventory's MaxAge leave it once
			// this report has shown them one last time.
			s.Inv.Age(time.Now())
			t.Reset(next())
		}
	}
}

// Report is what the sensor prints: the inventory, the traffic of the
// interval and the capture counters.
type Report struct {
	Assets  []asset.Asset
	Traffic []asset.TrafficRecord
	Stats   capture.Stats
}

// Report takes a snapshot of the inventory and flushes the traffic summary.
func (s *Sensor) Report() Report {
	var st capture.Stats
	for _, w := range s.workers {
		st.Add(w.stats())
	}
	return Report{Assets: s.Inv.Assets(), Traffic: s.Traffic.Flush(), Stats: st}
}
