package asset

import (
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
)

// hostIP is the address of host i: 10.64.0.1 on, no subnet broadcast.
func hostIP(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(64 + i/62500), byte(i / 250 % 250), byte(i%250 + 1)})
}

// hostFlow is a flow from host i (its own MAC and address) to a server,
// at t.
func hostFlow(i int, t time.Time) *flow.Flow {
	f := mkflow("10.0.0.1", capture.MAC{2, 0, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}, "10.0.0.6", 80, mac(6), 0)
	f.Client = netip.AddrPortFrom(hostIP(i), 40000)
	f.First, f.Last = t, t
	return f
}

// fullInventory returns an inventory holding n hosts (a MAC and an address
// each), host i last seen at times(i).
func fullInventory(n int, times func(i int) time.Time) *Inventory {
	inv := NewInventory(DefaultClasses())
	for i := range n {
		inv.AddFlow(hostFlow(i, times(i)))
	}
	return inv
}

// stalls collects how long calls took.
type stalls []time.Duration

// report adds the 99th and 99.9th percentiles and the longest call to b's
// results, in milliseconds, as prefix-p99-ms, prefix-p99.9-ms and
// prefix-max-ms. On a loaded machine the longest call is often one whose
// thread was not running, or that waited on one that was not.
func (s stalls) report(b *testing.B, prefix string) {
	if len(s) == 0 {
		return
	}
	slices.Sort(s)
	b.ReportMetric(float64(s[len(s)*99/100])/1e6, prefix+"-p99-ms")
	b.ReportMetric(float64(s[len(s)*999/1000])/1e6, prefix+"-p99.9-ms")
	b.ReportMetric(float64(s[len(s)-1])/1e6, prefix+"-max-ms")
}

// stallMeter runs a capture worker's work beside a pass over the
// inventory: Observe calls on hosts already known (but every sixteenth),
// in a loop, timing each.
type stallMeter struct {
	stop  chan struct{}
	done  sync.WaitGroup
	calls stalls
}

func meterStalls(inv *Inventory, hosts int, at time.Time) *stallMeter {
	m := &stallMeter{stop: make(chan struct{})}
	m.done.Add(1)
	go func() {
		defer m.done.Done()
		for i := 0; ; i++ {
			select {
			case <-m.stop:
				return
			default:
			}
			h := i * 7919 % hosts
			if h%16 == 0 {
				continue // the hosts the benchmarks see aged or evicted
			}
			o := dissect.Observation{Time: at, IP: hostIP(h), Attr: dissect.AttrProtocol, Value: "http", Protocol: "http"}
			start := time.Now()
			inv.Observe(o)
			m.calls = append(m.calls, time.Since(start))
		}
	}()
	return m
}

func (m *stallMeter) end() stalls { close(m.stop); m.done.Wait(); return m.calls }

// BenchmarkAgeStall ages a large inventory (7/8 of DefaultMaxRecords
// hosts, one in sixteen not seen for MaxAge) while a capture worker
// observes the others: ns/op is the whole pass; observe-p99-ms and
// observe-max-ms what the worker's Observe calls took during it.
func BenchmarkAgeStall(b *testing.B) {
	n := DefaultMaxRecords * 7 / 8
	var all stalls
	for range b.N {
		b.StopTimer()
		inv := fullInventory(n, func(i int) time.Time {
			if i%16 == 0 {
				return t0
			}
			return t0.Add(DefaultMaxAge)
		})
		now := t0.Add(DefaultMaxAge + time.Hour)
		m := meterStalls(inv, n, now)
		time.Sleep(10 * time.Millisecond) // the worker is running
		b.StartTimer()
		removed := inv.Age(now)
		b.StopTimer()
		all = append(all, m.end()...)
		if want := (n + 15) / 16; removed != want {
			b.Fatalf("Age removed %d hosts, want %d", removed, want)
		}
	}
	all.report(b, "observe")
}

// BenchmarkEvictStall keeps adding new hosts to a full inventory
// (DefaultMaxRecords): every one gets in, the least recently seen making
// room. ns/op is one AddFlow, eviction included; addflow-p99-ms and
// addflow-max-ms what the AddFlow calls took (the worst a capture worker
// waits on its own call), observe-p99-ms and observe-max-ms the Observe
// calls of a second worker meanwhile. Run it long enough for several
// eviction passes: -benchtime 30000x.
func BenchmarkEvictStall(b *testing.B) {
	n := DefaultMaxRecords
	inv := fullInventory(n, func(i int) time.Time { return t0.Add(time.Duration(i) * time.Millisecond) })
	m := meterStalls(inv, n, t0)
	calls := make(stalls, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		inv.AddFlow(hostFlow(n+i, t0.Add(time.Duration(n+i)*time.Millisecond)))
		calls = append(calls, time.Since(start))
	}
	b.StopTimer()
	if inv.Dropped() != 0 {
		b.Fatalf("%d records dropped", inv.Dropped())
	}
	m.end().report(b, "observe")
	calls.report(b, "addflow")
}

// BenchmarkAssetsStall takes a snapshot of a large inventory (7/8 of
// DefaultMaxRecords hosts) while a capture worker observes them: ns/op is
// the snapshot, observe-p99-ms and observe-max-ms what the worker's
// Observe calls took meanwhile.
func BenchmarkAssetsStall(b *testing.B) {
	n := DefaultMaxRecords * 7 / 8
	inv := fullInventory(n, func(i int) time.Time { return t0 })
	m := meterStalls(inv, n, t0)
	time.Sleep(10 * time.Millisecond) // the worker is running
	b.ResetTimer()
	for range b.N {
		if got := len(inv.Assets()); got != n+1 {
			b.Fatalf("%d assets, want %d hosts and the server", got, n)
		}
	}
	b.StopTimer()
	m.end().report(b, "observe")
}
