package capture

import (
	"github.com/passivesensor/sensor/internal/testcorpus"
	"io"
	"testing"
	"time"
)

func TestDedupDropsSecondCopyWithinWindow(t *testing.T) {
	d := NewDedup(0) // default window, 5 ms
	t0 := time.Unix(1700000000, 0)
	frame := innerTCP()
	other := outerIPv4(gre(0x6558, nil, nil, nil, innerTCP()))

	steps := []struct {
		name string
		data []byte
		at   time.Duration
		dup  bool
	}{
		{"first copy", frame, 0, false},
		{"a different frame between the copies", other, 200 * time.Microsecond, false},
		{"second copy 0.9 ms later", frame, 900 * time.Microsecond, true},
		{"third copy: a new frame (retransmission)", frame, 1000 * time.Microsecond, false},
		{"same bytes 6 ms later: outside the window", frame, 7 * time.Millisecond, false},
		{"its copy 4 ms later", frame, 11 * time.Millisecond, true},
		{"copy of the other frame, reordered earlier", other, 100 * time.Microsecond, true},
	}
	var want uint64
	for _, s := range steps {
		// The copy must be compared by content, not by slice identity.
		data := append([]byte(nil), s.data...)
		got := d.Duplicate(Frame{Data: data, Time: t0.Add(s.at)})
		if got != s.dup {
			t.Errorf("%s: Duplicate = %v, want %v", s.name, got, s.dup)
		}
		if s.dup {
			want++
		}
	}
	if st := d.Stats(); st.Duplicates != want {
		t.Errorf("Stats().Duplicates = %d, want %d", st.Duplicates, want)
	}
}

func TestDedupWindow(t *testing.T) {
	d := NewDedup(time.Millisecond)
	t0 := time.Unix(1700000000, 0)
	f := innerTCP()
	if d.Duplicate(Frame{Data: f, Time: t0}) {
		t.Fatal("first frame taken for a duplicate")
	}
	if d.Duplicate(Frame{Data: f, Time: t0.Add(1500 * time.Microsecond)}) {
		t.Error("copy 1.5 ms later dropped with a 1 ms window")
	}
	// One byte differs: not a copy.
	g := append([]byte(nil), f...)
	g[len(g)-1] ^= 1
	if d.Duplicate(Frame{Data: g, Time: t0.Add(1600 * time.Microsecond)}) {
		t.Error("frame differing in its last byte dropped")
	}
}

// TestDedupCorpus runs a real capture through Dedup twice interleaved, as a
// SPAN mirroring both directions delivers it: every second copy is dropped.
func TestDedupCorpus(t *testing.T) {
	src, err := OpenFile(testcorpus.File(t, "ct-samples__Protocols__S7comm__Plant1_S7comm.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	d := NewDedup(0)
	var n, passed uint64
	for {
		f, err := src.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
		if !d.Duplicate(f) {
			passed++
		}
		f.Time = f.Time.Add(30 * time.Microsecond)
		if !d.Duplicate(f) {
			passed++
		}
	}
	st := d.Stats()
	// The file itself may hold identical frames close together; those
	// pass or drop in pairs, so at least every mirrored copy is dropped.
	if st.Duplicates < n-n/100 || passed+st.Duplicates != 2*n {
		t.Errorf("%d frames mirrored twice: %d passed, %d dropped as duplicates", n, passed, st.Duplicates)
	}
	t.Logf("%d frames mirrored twice: %d passed, %d dropped", n, passed, st.Duplicates)
}

func TestDedupNoAllocs(t *testing.T) {
	d := NewDedup(0)
	f := Frame{Data: innerTCP(), Time: time.Unix(1700000000, 0)}
	allocs := testing.AllocsPerRun(1000, func() {
		f.Time = f.Time.Add(time.Microsecond)
		d.Duplicate(f)
	})
	if allocs != 0 {
		t.Errorf("Duplicate allocates %.1f times per frame", allocs)
	}
}
