package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"github.com/passivesensor/sensor/internal/testcorpus"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// liveLab is two network namespaces joined by a veth pair: tcpreplay sends
// into one end, the sensor listens on the other.
type liveLab struct {
	sniffNS, sendNS, sniffIf, sendIf string
}

func sh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func newLiveLab(t *testing.T, tag string) *liveLab {
	if os.Geteuid() != 0 {
		t.Skip("live test needs root (network namespaces, AF_PACKET sockets)")
	}
	for _, tool := range []string{"ip", "tcpreplay"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("live test needs %s (make deps installs iproute2 and tcpreplay)", tool)
		}
	}
	id := fmt.Sprintf("%d%s", os.Getpid()%100000, tag)
	l := &liveLab{sniffNS: "sensor-s" + id, sendNS: "sensor-r" + id, sniffIf: "sn" + id, sendIf: "tx" + id}
	for _, ns := range []string{l.sniffNS, l.sendNS} {
		sh(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	}
	sh(t, "ip", "link", "add", l.sniffIf, "netns", l.sniffNS, "type", "veth", "peer", "name", l.sendIf, "netns", l.sendNS)
	for _, e := range [][2]string{{l.sniffNS, l.sniffIf}, {l.sendNS, l.sendIf}} {
		sh(t, "ip", "-n", e[0], "link", "set", e[1], "mtu", "9000")
	}
	// The sending end has IPv6 off so that it sends only the replay. The
	// sniffing end is left down with IPv6 on, as the appliance boots: the
	// sensor itself must bring it up without letting the kernel send.
	sh(t, "ip", "netns", "exec", l.sendNS, "sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/"+l.sendIf+"/disable_ipv6")
	sh(t, "ip", "-n", l.sendNS, "link", "set", l.sendIf, "up")
	return l
}

func (l *liveLab) txPackets(t *testing.T) uint64 {
	out := sh(t, "ip", "netns", "exec", l.sniffNS, "cat", "/sys/class/net/"+l.sniffIf+"/statistics/tx_packets")
	v, err := strconv.ParseUint(strings.TrimSpace(out), 10, 64)
	if err != nil {
		t.Fatalf("tx_packets %q: %v", out, err)
	}
	return v
}

func buildSensor(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "sensor")
	sh(t, "go", "build", "-o", bin, ".")
	return bin
}

// The sensor on a live interface reports the same devices as the offline
// run on the capture replayed into it, and never transmits on that
// interface.
func TestLiveSameAsOffline(t *testing.T) {
	file := testcorpus.File(t, "ICS-Pcaps__COTP__cotp.pcap")
	offline := runFile(t, file)
	liveReplay(t, file, pairs(offline), offline.Stats.Frames)
}

// liveReplay replays file into a live sensor (run with args), once on
// AF_PACKET rings with two workers and once on a raw socket, and compares
// what it reports with what an offline run says: all frames of the file
// captured (or counted as dropped), the (IP, MAC) pairs want, nothing
// transmitted.
func liveReplay(t *testing.T, file string, want map[string]bool, frames uint64, args ...string) {
	bin := buildSensor(t)
	for _, mode := range []struct {
		name string
		args []string
	}{
		{"afpacket-2-workers", []string{"-workers", "2"}},
		{"raw-socket", []string{"-raw"}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			l := newLiveLab(t, mode.name[:2])
			txBefore := l.txPackets(t)
			argv := append([]string{"netns", "exec", l.sniffNS, bin, "-i", l.sniffIf, "-json", "-interval", "1h"}, mode.args...)
			cmd := exec.Command("ip", append(argv, args...)...)
			stdout, _ := cmd.StdoutPipe()
			stderr, _ := cmd.StderrPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
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
			if rx := counter(t, l.sniffNS, l.sniffIf, "rx_packets") - rx0; rx != frames {
				t.Fatalf("the sniffing end received %d frames of the %d replayed", rx, frames)
			}
			// The sensor reads what the kernel queued before it stops.
			cmd.Process.Signal(syscall.SIGTERM)
			gotPairs := map[string]bool{}
			var got, drops uint64
			sc := bufio.NewScanner(stdout)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				var line struct {
					Kind   string   `json:"kind"`
					Class  string   `json:"asset_class"`
					IP     string   `json:"ip"`
					IPs    []string `json:"ips"`
					MAC    string   `json:"mac"`
					Frames uint64   `json:"Frames"`
					Drops  uint64   `json:"KernelDrops"`
				}
				if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
					t.Fatalf("bad JSON line %q: %v", sc.Text(), err)
				}
				switch line.Kind {
				case "asset":
					if line.MAC == "" || line.Class != "inventoried" {
						continue
					}
					ips := line.IPs
					if len(ips) == 0 && line.IP != "" {
						ips = []string{line.IP}
					}
					for _, ip := range ips {
						gotPairs[ip+" "+line.MAC] = true
					}
				case "stats":
					got, drops = line.Frames, line.Drops
				}
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("sensor: %v", err)
			}
			switch {
			case got+drops != frames:
				t.Errorf("captured %d frames live and counted %d kernel drops, the file holds %d: frames lost without a count",
					got, drops, frames)
			case drops > 0:
				t.Errorf("captured %d frames live, the file holds %d: the kernel dropped %d (counted)", got, frames, drops)
			}
			if d := diff(want, gotPairs); d != "" {
				t.Errorf("live (IP, MAC) pairs differ from the offline run (%d frames captured):\n%s", got, d)
			}
			if after := l.txPackets(t); after != txBefore {
				t.Errorf("sniffing interface transmitted %d packets during the capture", after-txBefore)
			}
		})
	}
}
