//go:build linux

package capture

import (
	"errors"
	"io"
	"testing"
	"time"
)

// liveIdleSources opens, on one veth pair, two fanout AF_PACKET workers and a
// raw socket, each with the idle timeout d.
func liveIdleSources(t *testing.T, d time.Duration) (lab *netnsLab, sendIf string, srcs []Source) {
	t.Helper()
	lab = newNetnsLab(t)
	sniffIf, sendIf := lab.addVeth(t)
	err := lab.Do(lab.Sniff, func() error {
		af, err := OpenAFPacket([]string{sniffIf}, 2, liveRing)
		if err != nil {
			return err
		}
		raw, err := OpenRaw(sniffIf)
		if err != nil {
			for _, s := range af {
				s.Close()
			}
			return err
		}
		srcs = append(af, raw)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range srcs {
		is, ok := s.(IdleSource)
		if !ok {
			t.Fatalf("%T is not an IdleSource", s)
		}
		is.SetIdleTimeout(d)
	}
	t.Cleanup(func() {
		for _, s := range srcs {
			s.Close()
		}
	})
	return lab, sendIf, srcs
}

// On a quiet link Next returns ErrIdle about every idle timeout, the source
// still hands out every frame replayed afterwards, ErrIdle comes again once
// the link is quiet, and Close still ends a Next with io.EOF.
func TestLiveIdleTimeout(t *testing.T) {
	const idle = 100 * time.Millisecond
	lab, sendIf, srcs := liveIdleSources(t, idle)
	names := []string{"AF_PACKET worker 0", "AF_PACKET worker 1", "raw socket"}
	for k, s := range srcs {
		start := time.Now()
		_, err := s.Next()
		el := time.Since(start)
		if !errors.Is(err, ErrIdle) {
			t.Fatalf("%s: Next on a quiet link: %v, want ErrIdle", names[k], err)
		}
		// The raw socket's deadline moves every idle/2; a loaded machine
		// may wake late.
		if el < idle/2-5*time.Millisecond || el > idle+time.Second {
			t.Errorf("%s: ErrIdle after %v, want about %v", names[k], el, idle)
		}
	}

	file := liveCorpus(t, liveFileA)
	want := liveFileFrames(t, file)
	rec := liveIdleRecord(srcs)
	lab.replay(t, sendIf, file)
	rec.stop(t, 2*liveCount(want), 5*time.Second)
	af := map[string]int{}
	for k := 0; k < 2; k++ {
		for d, c := range rec.bySrc[k] {
			af[d] += c
		}
	}
	if d := liveDiff(af, want); d != "" {
		t.Errorf("AF_PACKET with an idle timeout: %s", d)
	}
	if d := liveDiff(rec.bySrc[2], want); d != "" {
		t.Errorf("raw socket with an idle timeout: %s", d)
	}
	for k := range srcs {
		if rec.idles[k] == 0 {
			t.Errorf("%s: no ErrIdle while the link was quiet before Close", names[k])
		}
	}
}

// liveIdleRecorder is liveRecorder for sources that return ErrIdle.
type liveIdleRecorder struct {
	*liveRecorder
	idles []int // ErrIdle seen per source after its last frame
}

func liveIdleRecord(srcs []Source) *liveIdleRecorder {
	r := &liveIdleRecorder{liveRecorder: &liveRecorder{srcs: srcs, bySrc: make([]map[string]int, len(srcs)),
		byIface: map[int]map[string]int{}}, idles: make([]int, len(srcs))}
	for k, s := range srcs {
		r.bySrc[k] = map[string]int{}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			for {
				f, err := s.Next()
				if err == io.EOF {
					return
				}
				r.mu.Lock()
				switch {
				case errors.Is(err, ErrIdle):
					r.idles[k]++
				case err != nil:
					r.errs = append(r.errs, err)
					r.mu.Unlock()
					return
				default:
					r.idles[k] = 0
					r.bySrc[k][string(f.Data)]++
					r.total.Add(1)
				}
				r.mu.Unlock()
			}
		}()
	}
	return r
}

// stop waits for n frames, then for every source to report idle, then closes.
func (r *liveIdleRecorder) stop(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		done := r.total.Load() >= int64(n)
		for _, c := range r.idles {
			done = done && c > 0
		}
		r.mu.Unlock()
		if done {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.liveRecorder.stop(t, 0, 0)
}

// Waiting out an idle timeout allocates nothing on AF_PACKET.
func TestLiveIdleAllocs(t *testing.T) {
	_, _, srcs := liveIdleSources(t, 5*time.Millisecond)
	for k, name := range []string{"AF_PACKET", "", "raw socket"} {
		if name == "" {
			continue
		}
		var nerr error
		allocs := testing.AllocsPerRun(20, func() {
			if _, err := srcs[k].Next(); !errors.Is(err, ErrIdle) && nerr == nil {
				nerr = err
			}
		})
		if nerr != nil {
			t.Fatalf("%s: Next: %v, want ErrIdle", name, nerr)
		}
		t.Logf("%s: %.1f allocations per ErrIdle", name, allocs)
		if k == 0 && allocs != 0 {
			t.Errorf("%s: an idle Next allocates %.1f times, want 0", name, allocs)
		}
	}
}
