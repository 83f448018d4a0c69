//go:build linux

package capture

import (
	"testing"
	"time"
)

// TestLiveLinkDownUp takes the sniffing interface down and up again under
// open sources, as when the mirror cable is pulled and plugged back or the
// switch port restarts: the sources keep waiting instead of failing, and hand
// out what arrives once the link is back.
func TestLiveLinkDownUp(t *testing.T) {
	for _, kind := range []string{"afpacket", "raw"} {
		t.Run(kind, func(t *testing.T) {
			lab := newNetnsLab(t)
			file := liveCorpus(t, liveFileA)
			want := liveFileFrames(t, file)
			sniffIf, sendIf := lab.addVeth(t)
			var srcs []Source
			err := lab.Do(lab.Sniff, func() (err error) {
				if kind == "raw" {
					var s Source
					s, err = OpenRaw(sniffIf)
					srcs = []Source{s}
					return err
				}
				srcs, err = OpenAFPacket([]string{sniffIf}, 2, liveRing)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			rec := liveRecord(srcs)
			for _, end := range []struct{ ns, ifc string }{{lab.Sniff, sniffIf}, {lab.Send, sendIf}} {
				runCmd(t, "ip", "-n", end.ns, "link", "set", end.ifc, "down")
				time.Sleep(200 * time.Millisecond)
				runCmd(t, "ip", "-n", end.ns, "link", "set", end.ifc, "up")
			}
			waitOperUp(t, lab, lab.Send, sendIf)
			lab.replay(t, sendIf, file)
			rec.stop(t, liveCount(want), 5*time.Second) // reports any error Next returned
			all := map[string]int{}
			for k := range srcs {
				for d, c := range rec.bySrc[k] {
					all[d] += c
				}
			}
			if d := liveDiff(all, want); d != "" {
				t.Errorf("after the link went down and up: %s", d)
			}
		})
	}
}

// waitOperUp waits until ifc in ns is operationally up: until then the
// kernel throws away what is sent on it.
func waitOperUp(t *testing.T, lab *netnsLab, ns, ifc string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := runCmd(t, "ip", "netns", "exec", ns, "cat", "/sys/class/net/"+ifc+"/operstate")
		if st == "up\n" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s in %s still %q 10 s after it was set up", ifc, ns, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
