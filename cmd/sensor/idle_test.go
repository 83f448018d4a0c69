package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passivesensor/sensor/asset"
	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/internal/testcorpus"
)

// waitSendReady waits until the sending end of the lab's veth pair is
// operationally up. The sensor brings the sniffing end up; until the kernel
// has noted the carrier on the sending end (link watch, asynchronous), what
// tcpreplay sends there is thrown away without a count on either end, a
// loss that is the test rig's, not the sensor's.
func (l *liveLab) waitSendReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := strings.TrimSpace(sh(t, "ip", "netns", "exec", l.sendNS, "cat", "/sys/class/net/"+l.sendIf+"/operstate"))
		if st == "up" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sending end %s still %q 10 s after the sensor started", l.sendIf, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// counter reads a statistics counter of ifc in ns from sysfs.
func counter(t *testing.T, ns, ifc, name string) uint64 {
	t.Helper()
	out := strings.TrimSpace(sh(t, "ip", "netns", "exec", ns, "cat", "/sys/class/net/"+ifc+"/statistics/"+name))
	var v uint64
	if _, err := fmt.Sscan(out, &v); err != nil {
		t.Fatalf("%s of %s: %q: %v", name, ifc, out, err)
	}
	return v
}

// trafficKey names a traffic record of a report.
func trafficKey(src, dst string, dport uint16, proto string) string {
	return fmt.Sprintf("%s > %s %d/%s", src, dst, dport, proto)
}

// On a link that goes quiet after a burst, the burst's flows reach a
// periodic traffic report within a bounded time, though no further frame
// arrives to wake the capture workers: a capture replayed once, then
// nothing, must show its traffic (every packet of every flow, as the
// offline run counts it) in the reports of a sensor that keeps running.
func TestLiveIdleLinkReportsFlows(t *testing.T) {
	file := testcorpus.File(t, "ICS-Pcaps__LocalPCAP__ModbusFloat.pcap")
	offline := runFile(t, file)
	want := map[string]uint64{}
	for _, r := range offline.Traffic {
		want[trafficKey(r.Src.String(), r.Dst.String(), r.DPort, protoName(r.Proto))] += r.PacketsOut + r.PacketsIn
	}
	if len(want) == 0 {
		t.Fatal("the offline run of the capture reports no traffic")
	}
	bin := buildSensor(t)
	for _, mode := range []struct {
		name string
		args []string
	}{
		{"afpacket-2-workers", []string{"-workers", "2"}},
		{"raw-socket", []string{"-raw"}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			l := newLiveLab(t, "i"+mode.name[:1])
			// Reports every second; the run loop waits for its workers'
			// flows at most a few ticks, so 8 s is ample.
			const bound = 8 * time.Second
			args := append([]string{"netns", "exec", l.sniffNS, bin, "-i", l.sniffIf, "-json", "-interval", "1s"}, mode.args...)
			cmd := exec.Command("ip", args...)
			stdout, _ := cmd.StdoutPipe()
			stderr, _ := cmd.StderrPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Wait()
			defer cmd.Process.Kill()
			ready := make(chan bool, 1)
			go func() {
				sc := bufio.NewScanner(stderr)
				for sc.Scan() {
					if strings.Contains(sc.Text(), "sensing") {
						ready <- true
					}
				}
				close(ready)
			}()
			// Each report's flow lines, summed per record, sent when its
			// stats line ends it.
			reports := make(chan map[string]uint64, 100)
			go func() {
				defer close(reports)
				cur := map[string]uint64{}
				sc := bufio.NewScanner(stdout)
				sc.Buffer(make([]byte, 1<<20), 1<<20)
				for sc.Scan() {
					var line struct {
						Kind       string `json:"kind"`
						Src        string `json:"src"`
						Dst        string `json:"dst"`
						DPort      uint16 `json:"dport"`
						Proto      string `json:"proto"`
						PacketsOut uint64 `json:"packets_out"`
						PacketsIn  uint64 `json:"packets_in"`
					}
					if json.Unmarshal(sc.Bytes(), &line) != nil {
						continue
					}
					switch line.Kind {
					case "flow":
						cur[trafficKey(line.Src, line.Dst, line.DPort, line.Proto)] += line.PacketsOut + line.PacketsIn
					case "stats":
						reports <- cur
						cur = map[string]uint64{}
					}
				}
			}()
			select {
			case ok := <-ready:
				if !ok {
					t.Fatal("sensor exited before it started sensing")
				}
			case <-time.After(20 * time.Second):
				t.Fatal("sensor did not start sensing within 20 s")
			}
			l.waitSendReady(t)
			rx0 := counter(t, l.sniffNS, l.sniffIf, "rx_packets")
			sh(t, "ip", "netns", "exec", l.sendNS, "tcpreplay", "-q", "-i", l.sendIf, "--mbps", "10", file)
			sent := time.Now()
			if rx := counter(t, l.sniffNS, l.sniffIf, "rx_packets") - rx0; rx != offline.Stats.Frames {
				t.Fatalf("the sniffing end received %d frames of the %d replayed", rx, offline.Stats.Frames)
			}
			got := map[string]uint64{}
			done := false
			for !done {
				select {
				case r, ok := <-reports:
					if !ok {
						t.Fatal("sensor stopped reporting")
					}
					for k, v := range r {
						got[k] += v
					}
					done = equalCounts(got, want)
				case <-time.After(time.Until(sent.Add(bound))):
					t.Fatalf("%v after the replay, with the link quiet, the reports hold:\n%s\nthe capture holds:\n%s",
						bound, countsString(got), countsString(want))
				}
			}
			t.Logf("all %d traffic records reported %v after the replay ended", len(want), time.Since(sent).Round(10*time.Millisecond))
		})
	}
}

func equalCounts(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func countsString(m map[string]uint64) string {
	var lines []string
	for k, v := range m {
		lines = append(lines, fmt.Sprintf("  %s: %d packets", k, v))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// queuedSource stands for a live source whose kernel queue holds frames the
// worker has not read yet: Next waits at the gate, then hands the frames
// out, then reports idle every tick until Close.
type queuedSource struct {
	gate   chan struct{}
	frames []capture.Frame
	i      int
	tick   time.Duration
	closed atomic.Bool
	out    atomic.Uint64
}

func (q *queuedSource) SetIdleTimeout(d time.Duration) { q.tick = d }
func (q *queuedSource) Next() (capture.Frame, error) {
	<-q.gate
	if q.closed.Load() {
		return capture.Frame{}, io.EOF
	}
	if q.i < len(q.frames) {
		q.i++
		q.out.Add(1)
		return q.frames[q.i-1], nil
	}
	time.Sleep(q.tick)
	return capture.Frame{}, capture.ErrIdle
}
func (q *queuedSource) Stats() capture.Stats { return capture.Stats{Frames: q.out.Load()} }
func (q *queuedSource) Close() error         { q.closed.Store(true); return nil }

// When the sensor is told to stop, frames already queued for it are read
// and counted in the last report, not thrown away with the socket.
func TestRunLiveDrainsQueueOnStop(t *testing.T) {
	file := testcorpus.File(t, "ICS-Pcaps__LocalPCAP__ModbusFloat.pcap")
	offline := runFile(t, file)
	src, err := capture.OpenFile(file)
	if err != nil {
		t.Fatal(err)
	}
	q := &queuedSource{gate: make(chan struct{})}
	for {
		fr, err := src.Next()
		if err != nil {
			break
		}
		fr.Data = slices.Clone(fr.Data)
		q.frames = append(q.frames, fr)
	}
	src.Close()
	s := New(asset.DefaultClasses())
	s.Tick = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // stop before a single frame was read
	var last Report
	done := make(chan error)
	go func() { done <- s.RunLive(ctx, []capture.Source{q}, time.Hour, func(r Report) { last = r }) }()
	time.Sleep(50 * time.Millisecond)
	close(q.gate)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RunLive did not return 10 s after it was told to stop")
	}
	if last.Stats.Frames != uint64(len(q.frames)) {
		t.Errorf("last report counts %d frames, %d were queued", last.Stats.Frames, len(q.frames))
	}
	var got, want uint64
	for _, r := range last.Traffic {
		got += r.PacketsOut + r.PacketsIn
	}
	for _, r := range offline.Traffic {
		want += r.PacketsOut + r.PacketsIn
	}
	if got != want {
		t.Errorf("last report's traffic holds %d packets, the capture %d", got, want)
	}
}
