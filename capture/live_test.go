//go:build linux

package capture

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"golang.org/x/sys/unix"
)

// Captures replayed in the live tests: small, Ethernet, no VLAN tags.
const (
	liveFileA = "ICS-Pcaps__LocalPCAP__ModbusFloat.pcap" // 98 frames, Modbus/TCP
	liveFileB = "ICS-Pcaps__DNP3__DNP3ValueAnalog.pcap"  // 138 frames, DNP3
	// 2590 frames, 500 kB: many flows, and more than a small ring holds.
	liveFileMany = "ICS-Pcaps__COTP__cotp.pcap"
)

// liveRing is the ring the tests use: 2 MiB in 32 blocks. The kernel hands a
// block over when it is full or its timeout passed, and stops filling the ring
// (dropping frames) when the next block is still held by the reader: with few
// blocks a reader stalled a few block timeouts (a loaded test machine) loses
// frames. 32 blocks of 20 ms give 640 ms of slack.
var liveRing = WithRing(1<<16, 32)

// liveCorpus returns the path of a corpus file, found by walking up from the
// package directory to shared/corpus; it skips t when there is none.
func liveCorpus(t *testing.T, name string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	start := dir
	for {
		p := filepath.Join(dir, "shared", "corpus", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skipf("corpus not found at shared/corpus/%s in %s or any directory above it", name, start)
		}
		dir = parent
	}
}

// liveFileFrames reads the frames of a pcap file as a multiset of their bytes.
func liveFileFrames(t *testing.T, path string) map[string]int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	if r.LinkType() != layers.LinkTypeEthernet {
		t.Fatalf("%s: link type %v, want Ethernet", path, r.LinkType())
	}
	frames := map[string]int{}
	for {
		data, _, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading %s: %v", path, err)
		}
		frames[string(data)]++
	}
	return frames
}

func liveCount(m map[string]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

// liveDiff says how two frame multisets differ, or "" when they are equal.
func liveDiff(got, want map[string]int) string {
	var missing, extra int
	for k, w := range want {
		if g := got[k]; g < w {
			missing += w - g
		}
	}
	for k, g := range got {
		if w := want[k]; g > w {
			extra += g - w
		}
	}
	if missing == 0 && extra == 0 {
		return ""
	}
	return fmt.Sprintf("%d frames of the file missing, %d frames captured that the file lacks (captured %d, file %d)",
		missing, extra, liveCount(got), liveCount(want))
}

// liveRecorder reads sources until they are closed and keeps what it saw.
type liveRecorder struct {
	srcs  []Source
	total atomic.Int64
	wg    sync.WaitGroup

	mu      sync.Mutex
	bySrc   []map[string]int // frames per source
	byIface map[int]map[string]int
	errs    []error
	badMeta []string
}

func liveRecord(srcs []Source) *liveRecorder {
	r := &liveRecorder{srcs: srcs, bySrc: make([]map[string]int, len(srcs)), byIface: map[int]map[string]int{}}
	for k, s := range srcs {
		r.bySrc[k] = map[string]int{}
		r.wg.Add(1)
		go r.read(k, s)
	}
	return r
}

func (r *liveRecorder) read(k int, s Source) {
	defer r.wg.Done()
	for {
		f, err := s.Next()
		if err == io.EOF {
			return
		}
		r.mu.Lock()
		if err != nil {
			r.errs = append(r.errs, fmt.Errorf("source %d: %w", k, err))
			r.mu.Unlock()
			return
		}
		key := string(f.Data)
		r.bySrc[k][key]++
		if r.byIface[f.Interface] == nil {
			r.byIface[f.Interface] = map[string]int{}
		}
		r.byIface[f.Interface][key]++
		if f.LinkType != LinkEthernet || f.WireLen != len(f.Data) || f.Time.IsZero() ||
			time.Since(f.Time) > time.Minute || time.Until(f.Time) > time.Minute {
			r.badMeta = append(r.badMeta, fmt.Sprintf("source %d: link %d, wire %d, data %d, time %v",
				k, f.LinkType, f.WireLen, len(f.Data), f.Time))
		}
		r.mu.Unlock()
		r.total.Add(1)
	}
}

// stop waits until n frames arrived (or the timeout passed), closes the
// sources and waits for the readers; Next must return io.EOF after Close.
func (r *liveRecorder) stop(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for r.total.Load() < int64(n) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if r.total.Load() < int64(n) {
		for k, s := range r.srcs {
			t.Logf("source %d: %d frames; ring %s", k, liveCount(r.bySrc[k]), liveRingState(s))
		}
	}
	// Let a few more arrive if the kernel has more than expected.
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	for _, s := range r.srcs {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		t.Logf("readers stopped %v after Close", time.Since(start).Round(time.Millisecond))
	case <-time.After(3 * time.Second):
		t.Fatal("readers still in Next 3s after Close")
	}
	for _, err := range r.errs {
		t.Error(err)
	}
	for _, m := range r.badMeta {
		t.Errorf("bad frame metadata: %s", m)
	}
}

// liveFlowKey is the direction-free 5-tuple of an IP frame, or "".
func liveFlowKey(data []byte) string {
	p := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.NoCopy)
	nl, tl := p.NetworkLayer(), p.TransportLayer()
	if nl == nil || tl == nil {
		return ""
	}
	a := nl.NetworkFlow().Src().String() + ":" + tl.TransportFlow().Src().String()
	b := nl.NetworkFlow().Dst().String() + ":" + tl.TransportFlow().Dst().String()
	if a > b {
		a, b = b, a
	}
	return tl.LayerType().String() + " " + a + " " + b
}

// liveIfFlags reads the interface flags (IFF_*) of ifc in ns.
func liveIfFlags(t *testing.T, lab *netnsLab, ns, ifc string) uint64 {
	t.Helper()
	out := runCmd(t, "ip", "netns", "exec", ns, "cat", filepath.Join("/sys/class/net", ifc, "flags"))
	v, err := strconv.ParseUint(strings.TrimSpace(out), 0, 64)
	if err != nil {
		t.Fatalf("flags of %s: %q: %v", ifc, out, err)
	}
	return v
}

const iffPromisc = 0x100

// TestLiveAFPacketReplay replays a capture into a veth pair and captures it
// with two fanout workers: every frame must arrive once, each flow at one
// worker, and the sniffing interface must send nothing.
func TestLiveAFPacketReplay(t *testing.T) {
	for _, name := range []string{liveFileA, liveFileMany} {
		t.Run(name, func(t *testing.T) { testLiveAFPacketReplay(t, name) })
	}
}

func testLiveAFPacketReplay(t *testing.T, name string) {
	lab := newNetnsLab(t)
	file := liveCorpus(t, name)
	want := liveFileFrames(t, file)
	sniffIf, sendIf := lab.addVeth(t)

	var srcs []Source
	err := lab.Do(lab.Sniff, func() (err error) {
		srcs, err = OpenAFPacket([]string{sniffIf}, 2, liveRing)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) != 2 {
		t.Fatalf("OpenAFPacket gave %d sources for 1 interface and 2 workers, want 2", len(srcs))
	}
	if f := liveIfFlags(t, lab, lab.Sniff, sniffIf); f&iffPromisc == 0 {
		t.Errorf("%s flags %#x: not promiscuous while capturing", sniffIf, f)
	}
	tx0 := lab.txPackets(t, lab.Sniff, sniffIf)
	rec := liveRecord(srcs)
	start := time.Now()
	lab.replay(t, sendIf, file)
	rec.stop(t, liveCount(want), 5*time.Second)
	elapsed := time.Since(start)
	tx1 := lab.txPackets(t, lab.Sniff, sniffIf)

	if tx1 != tx0 {
		t.Errorf("sniffing interface %s sent %d frames during capture (tx_packets %d -> %d)", sniffIf, tx1-tx0, tx0, tx1)
	}
	if f := liveIfFlags(t, lab, lab.Sniff, sniffIf); f&iffPromisc != 0 {
		t.Errorf("%s flags %#x: still promiscuous after Close", sniffIf, f)
	}
	all := map[string]int{}
	var st Stats
	for k, s := range srcs {
		for d, c := range rec.bySrc[k] {
			all[d] += c
		}
		ss := s.Stats()
		t.Logf("worker %d: %d frames, %d bytes, %d kernel drops", k, ss.Frames, ss.Bytes, ss.KernelDrops)
		if ss.Frames != uint64(liveCount(rec.bySrc[k])) {
			t.Errorf("worker %d: Stats.Frames %d, handed out %d", k, ss.Frames, liveCount(rec.bySrc[k]))
		}
		st.Add(ss)
	}
	if d := liveDiff(all, want); d != "" {
		t.Errorf("AF_PACKET capture of %s: %s", name, d)
	}
	if st.KernelDrops != 0 {
		t.Errorf("kernel dropped %d frames", st.KernelDrops)
	}
	t.Logf("%d frames of %s captured in %v; tx_packets on %s: %d before, %d after", liveCount(all), name, elapsed.Round(time.Millisecond), sniffIf, tx0, tx1)

	// Fanout hashes flows the same in both directions: a flow seen by two
	// workers was split.
	owner := map[string]int{}
	busy := 0
	for k := range srcs {
		if len(rec.bySrc[k]) > 0 {
			busy++
		}
		for d := range rec.bySrc[k] {
			key := liveFlowKey([]byte(d))
			if key == "" {
				continue
			}
			if o, ok := owner[key]; ok && o != k {
				t.Errorf("flow %s seen by workers %d and %d", key, o, k)
			}
			owner[key] = k
		}
	}
	t.Logf("%d flows over %d of %d workers", len(owner), busy, len(srcs))
}

// TestLiveRawReplay is TestLiveAFPacketReplay for the plain raw socket.
func TestLiveRawReplay(t *testing.T) {
	lab := newNetnsLab(t)
	file := liveCorpus(t, liveFileA)
	want := liveFileFrames(t, file)
	sniffIf, sendIf := lab.addVeth(t)

	var src Source
	err := lab.Do(lab.Sniff, func() (err error) {
		src, err = OpenRaw(sniffIf)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if f := liveIfFlags(t, lab, lab.Sniff, sniffIf); f&iffPromisc == 0 {
		t.Errorf("%s flags %#x: not promiscuous while capturing", sniffIf, f)
	}
	tx0 := lab.txPackets(t, lab.Sniff, sniffIf)
	rec := liveRecord([]Source{src})
	start := time.Now()
	lab.replay(t, sendIf, file)
	rec.stop(t, liveCount(want), 5*time.Second)
	elapsed := time.Since(start)
	tx1 := lab.txPackets(t, lab.Sniff, sniffIf)

	if tx1 != tx0 {
		t.Errorf("sniffing interface %s sent %d frames during capture (tx_packets %d -> %d)", sniffIf, tx1-tx0, tx0, tx1)
	}
	if f := liveIfFlags(t, lab, lab.Sniff, sniffIf); f&iffPromisc != 0 {
		t.Errorf("%s flags %#x: still promiscuous after Close", sniffIf, f)
	}
	if d := liveDiff(rec.bySrc[0], want); d != "" {
		t.Errorf("raw socket capture of %s: %s", liveFileA, d)
	}
	st := src.Stats()
	if st.Frames != uint64(liveCount(want)) || st.KernelDrops != 0 {
		t.Errorf("Stats %+v, want %d frames and no drops", st, liveCount(want))
	}
	t.Logf("%d frames of %s captured in %v, %d kernel drops; tx_packets on %s: %d before, %d after",
		liveCount(rec.bySrc[0]), liveFileA, elapsed.Round(time.Millisecond), st.KernelDrops, sniffIf, tx0, tx1)
}

// TestLiveAFPacketTwoInterfaces captures two veth pairs at once, each fed a
// different capture: frames must carry the index of the interface they came in on.
func TestLiveAFPacketTwoInterfaces(t *testing.T) {
	lab := newNetnsLab(t)
	files := []string{liveCorpus(t, liveFileA), liveCorpus(t, liveFileB)}
	var sniffIfs, sendIfs []string
	var wants []map[string]int
	for _, f := range files {
		s, r := lab.addVeth(t)
		sniffIfs, sendIfs = append(sniffIfs, s), append(sendIfs, r)
		wants = append(wants, liveFileFrames(t, f))
	}
	var srcs []Source
	err := lab.Do(lab.Sniff, func() (err error) {
		srcs, err = OpenAFPacket(sniffIfs, 2, liveRing)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) != 4 {
		t.Fatalf("OpenAFPacket gave %d sources for 2 interfaces and 2 workers, want 4", len(srcs))
	}
	var tx0 []uint64
	for _, ifc := range sniffIfs {
		tx0 = append(tx0, lab.txPackets(t, lab.Sniff, ifc))
	}
	rec := liveRecord(srcs)
	var wg sync.WaitGroup
	for i := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lab.replay(t, sendIfs[i], files[i])
		}()
	}
	wg.Wait()
	rec.stop(t, liveCount(wants[0])+liveCount(wants[1]), 5*time.Second)

	for i, ifc := range sniffIfs {
		if tx := lab.txPackets(t, lab.Sniff, ifc); tx != tx0[i] {
			t.Errorf("sniffing interface %s sent %d frames during capture", ifc, tx-tx0[i])
		}
		if d := liveDiff(rec.byIface[i], wants[i]); d != "" {
			t.Errorf("interface %d (%s, fed %s): %s", i, ifc, filepath.Base(files[i]), d)
			shown := 0
			for k, w := range wants[i] {
				if rec.byIface[i][k] < w && shown < 5 {
					shown++
					t.Logf("missing %d-byte frame %x flow %s", len(k), []byte(k)[:34], liveFlowKey([]byte(k)))
				}
			}
			t.Log(runCmd(t, "ip", "-n", lab.Sniff, "-s", "link", "show", ifc))
			t.Log(runCmd(t, "ip", "-n", lab.Send, "-s", "link", "show", sendIfs[i]))
			for k, s := range srcs {
				t.Logf("source %d stats %+v", k, s.Stats())
			}
		} else {
			t.Logf("interface %d (%s): all %d frames of %s", i, ifc, liveCount(wants[i]), filepath.Base(files[i]))
		}
	}
	if len(rec.byIface) != 2 {
		t.Errorf("frames carried %d distinct interface indexes, want 2", len(rec.byIface))
	}
	// Source w*len(ifaces)+i reads interface i.
	for k := range srcs {
		i := k % len(sniffIfs)
		for d, c := range rec.bySrc[k] {
			if rec.byIface[i][d] < c {
				t.Errorf("source %d (interface %d) handed out a frame not attributed to interface %d", k, i, i)
				break
			}
		}
	}
}

// liveVLANFile writes a capture of our own making with 802.1Q and 802.1ad
// (QinQ) tagged frames, which the kernel untags on receive.
func liveVLANFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vlan.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40; i++ {
		fr := []byte{0x02, 0, 0, 0, 0, byte(i), 0x02, 0, 0, 0, 1, byte(i)}
		switch i % 3 {
		case 0: // one 802.1Q tag
			fr = binary.BigEndian.AppendUint16(fr, 0x8100)
			fr = binary.BigEndian.AppendUint16(fr, uint16(i%8)<<13|uint16(100+i))
		case 1: // QinQ: 802.1ad outside, 802.1Q inside
			fr = binary.BigEndian.AppendUint16(fr, 0x88a8)
			fr = binary.BigEndian.AppendUint16(fr, uint16(200+i))
			fr = binary.BigEndian.AppendUint16(fr, 0x8100)
			fr = binary.BigEndian.AppendUint16(fr, uint16(300+i))
		}
		fr = binary.BigEndian.AppendUint16(fr, 0x88b5) // local experimental EtherType
		for len(fr) < 64+i*7 {
			fr = append(fr, byte(len(fr)*i))
		}
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(1700000000, int64(i)*1000), CaptureLength: len(fr), Length: len(fr)}
		if err := w.WritePacket(ci, fr); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// TestLiveVLANTags checks that both sources hand out tagged frames as they
// were on the wire, with the tag the kernel took off put back.
func TestLiveVLANTags(t *testing.T) {
	lab := newNetnsLab(t)
	file := liveVLANFile(t)
	want := liveFileFrames(t, file)
	sniffIf, sendIf := lab.addVeth(t)
	var srcs []Source
	err := lab.Do(lab.Sniff, func() error {
		af, err := OpenAFPacket([]string{sniffIf}, 1, liveRing)
		if err != nil {
			return err
		}
		raw, err := OpenRaw(sniffIf)
		if err != nil {
			af[0].Close()
			return err
		}
		srcs = []Source{af[0], raw}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := liveRecord(srcs)
	lab.replay(t, sendIf, file)
	rec.stop(t, 2*liveCount(want), 5*time.Second)
	for k, name := range []string{"AF_PACKET", "raw socket"} {
		if d := liveDiff(rec.bySrc[k], want); d != "" {
			t.Errorf("%s: tagged frames: %s", name, d)
		}
	}
}

// TestLiveCloseStopsNext checks that Close ends a Next blocked on a quiet link.
func TestLiveCloseStopsNext(t *testing.T) {
	lab := newNetnsLab(t)
	sniffIf, _ := lab.addVeth(t)
	var srcs []Source
	err := lab.Do(lab.Sniff, func() error {
		af, err := OpenAFPacket([]string{sniffIf}, 2)
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
	errc := make(chan error, len(srcs))
	for _, s := range srcs {
		go func() {
			_, err := s.Next()
			errc <- err
		}()
	}
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	for _, s := range srcs {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	for range srcs {
		select {
		case err := <-errc:
			if err != io.EOF {
				t.Errorf("Next on a closed source: %v, want io.EOF", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("Next still blocked 2s after Close")
		}
	}
	t.Logf("all Next calls returned %v after Close", time.Since(start).Round(time.Millisecond))
	for _, s := range srcs {
		if _, err := s.Next(); err != io.EOF {
			t.Errorf("Next after Close: %v, want io.EOF", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		_ = s.Stats()
	}
}

// TestLiveNextAllocs checks that Next allocates nothing per frame once frames
// are queued in the kernel.
const allocsBlockTimeout = 100 * time.Millisecond

func TestLiveNextAllocs(t *testing.T) {
	lab := newNetnsLab(t)
	file := liveCorpus(t, liveFileA)
	sniffIf, sendIf := lab.addVeth(t)
	var srcs []Source
	err := lab.Do(lab.Sniff, func() error {
		// Nothing reads while the frames come: blocks of 100 ms keep the
		// ring from filling (and freezing) however the replays are spaced.
		af, err := OpenAFPacket([]string{sniffIf}, 1, liveRing, WithBlockTimeout(allocsBlockTimeout))
		if err != nil {
			return err
		}
		raw, err := OpenRaw(sniffIf)
		if err != nil {
			af[0].Close()
			return err
		}
		srcs = []Source{af[0], raw}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	closeAll := func() {
		for _, s := range srcs {
			s.Close()
		}
	}
	defer closeAll()
	// Next blocks when fewer frames came than it is asked for: fail, not hang.
	watchdog := time.AfterFunc(20*time.Second, closeAll)
	defer watchdog.Stop()
	// 40 tagged frames, then 98 untagged: the 91 reads below see all kinds.
	lab.replay(t, sendIf, liveVLANFile(t))
	lab.replay(t, sendIf, file)
	time.Sleep(3 * allocsBlockTimeout) // let the kernel hand over the last block
	for k, name := range []string{"AF_PACKET", "raw socket"} {
		var nerr error
		allocs := testing.AllocsPerRun(90, func() {
			if _, err := srcs[k].Next(); err != nil && nerr == nil {
				nerr = err
			}
		})
		if nerr != nil {
			t.Fatalf("%s: Next: %v", name, nerr)
		}
		if allocs != 0 {
			t.Errorf("%s: Next allocates %.1f times per frame, want 0", name, allocs)
		}
	}
}

// waitQuiet waits until no frame has arrived for quiet, or max passed.
func (r *liveRecorder) waitQuiet(quiet, max time.Duration) {
	end := time.Now().Add(max)
	last, since := r.total.Load(), time.Now()
	for time.Now().Before(end) && time.Since(since) < quiet {
		time.Sleep(10 * time.Millisecond)
		if n := r.total.Load(); n != last {
			last, since = n, time.Now()
		}
	}
}

// TestLiveKernelDrops overflows a small ring and a raw socket's queue: every
// frame sent is either handed out or counted in Stats.KernelDrops.
func TestLiveKernelDrops(t *testing.T) {
	lab := newNetnsLab(t)
	file := liveCorpus(t, liveFileMany)
	want := liveFileFrames(t, file)
	sniffIf, sendIf := lab.addVeth(t)
	block := 1 << 16
	if ps := os.Getpagesize(); ps > block {
		block = ps
	}
	var srcs []Source
	err := lab.Do(lab.Sniff, func() error {
		af, err := OpenAFPacket([]string{sniffIf}, 1, WithRing(block, 2))
		if err != nil {
			return err
		}
		raw, err := OpenRaw(sniffIf)
		if err != nil {
			af[0].Close()
			return err
		}
		srcs = []Source{af[0], raw}
		// A small receive buffer, as the ring is small: OpenRaw's own
		// holds the whole file.
		var serr error
		raw.(*rawSource).rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 1<<16)
		})
		return serr
	})
	if err != nil {
		t.Fatal(err)
	}
	// Nobody reads while the file is sent.
	lab.replay(t, sendIf, file)
	time.Sleep(3 * DefaultAFPacketBlockTimeout)
	rec := liveRecord(srcs)
	rec.waitQuiet(300*time.Millisecond, 5*time.Second)
	stats := make([]Stats, len(srcs))
	for k, s := range srcs {
		stats[k] = s.Stats()
	}
	rec.stop(t, 0, 0)
	for k, name := range []string{fmt.Sprintf("AF_PACKET ring of 2x%d bytes", block), "raw socket"} {
		got, st := rec.bySrc[k], stats[k]
		t.Logf("%s: %d of %d frames handed out, %d kernel drops", name, liveCount(got), liveCount(want), st.KernelDrops)
		if st.KernelDrops == 0 {
			t.Errorf("%s: no kernel drops counted though nobody read while %d frames came", name, liveCount(want))
		}
		if uint64(liveCount(got))+st.KernelDrops != uint64(liveCount(want)) {
			t.Errorf("%s: %d frames handed out + %d drops != %d frames sent", name, liveCount(got), st.KernelDrops, liveCount(want))
		}
		extra := 0
		for d, c := range got {
			if c > want[d] {
				extra += c - want[d]
			}
		}
		if extra != 0 {
			t.Errorf("%s: %d frames handed out that were not sent", name, extra)
		}
	}
}

func liveRingState(src Source) string {
	s, ok := src.(*afpacketSource)
	if !ok || s.ring == nil {
		return ""
	}
	var b strings.Builder
	for i := 0; i < s.numBlocks; i++ {
		base := i * s.blockSize
		fmt.Fprintf(&b, "[blk %d status %#x pkts %d] ", i,
			atomic.LoadUint32(s.blockStatus(i)), atomic.LoadUint32((*uint32)(unsafe.Pointer(&s.ring[base+tpNumPktsOff]))))
	}
	return b.String()
}
