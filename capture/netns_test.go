//go:build linux

package capture

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// netnsLab is a pair of network namespaces for live capture tests: frames are
// replayed in Send and captured in Sniff, over veth pairs between them.
type netnsLab struct {
	Sniff, Send string
}

var netnsSeq atomic.Uint32

// requireLive skips t unless it runs as root with ip and tcpreplay at hand.
func requireLive(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("live capture test needs root (network namespaces, AF_PACKET sockets); run as root")
	}
	for _, tool := range []string{"ip", "tcpreplay"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("live capture test needs %s in PATH (apt-get install iproute2 tcpreplay): %v", tool, err)
		}
	}
}

// newNetnsLab creates two fresh network namespaces, removed when t ends.
func newNetnsLab(t *testing.T) *netnsLab {
	t.Helper()
	requireLive(t)
	n := netnsSeq.Add(1)
	lab := &netnsLab{
		Sniff: fmt.Sprintf("pscap-s-%d-%d", os.Getpid(), n),
		Send:  fmt.Sprintf("pscap-r-%d-%d", os.Getpid(), n),
	}
	for _, ns := range []string{lab.Sniff, lab.Send} {
		runCmd(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	}
	return lab
}

// addVeth joins the two namespaces by a new veth pair, with IPv6 off on both
// ends (so the kernel itself sends nothing on them) and both links up. It
// returns the names of the sniffing and the sending end.
func (l *netnsLab) addVeth(t *testing.T) (sniffIf, sendIf string) {
	t.Helper()
	n := netnsSeq.Add(1)
	sniffIf = fmt.Sprintf("pss%d", n)
	sendIf = fmt.Sprintf("psr%d", n)
	runCmd(t, "ip", "link", "add", sniffIf, "netns", l.Sniff, "type", "veth", "peer", "name", sendIf, "netns", l.Send)
	for _, e := range []struct{ ns, ifc string }{{l.Sniff, sniffIf}, {l.Send, sendIf}} {
		l.disableIPv6(t, e.ns, e.ifc)
		runCmd(t, "ip", "-n", e.ns, "link", "set", e.ifc, "mtu", "9000", "up")
	}
	return sniffIf, sendIf
}

func (l *netnsLab) disableIPv6(t *testing.T, ns, ifc string) {
	t.Helper()
	err := l.Do(ns, func() error {
		p := filepath.Join("/proc/sys/net/ipv6/conf", ifc, "disable_ipv6")
		if _, err := os.Stat(p); os.IsNotExist(err) {
			return nil // kernel without IPv6
		}
		return os.WriteFile(p, []byte("1"), 0o644)
	})
	if err != nil {
		t.Fatalf("disabling IPv6 on %s in %s: %v", ifc, ns, err)
	}
}

// Do runs fn on a thread moved into network namespace ns, then moves the
// thread back. Sockets opened by fn stay in ns.
func (l *netnsLab) Do(ns string, fn func() error) error {
	runtime.LockOSThread()
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("opening own network namespace: %w", err)
	}
	defer unix.Close(orig)
	target, err := unix.Open(filepath.Join("/run/netns", ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("opening network namespace %s: %w", ns, err)
	}
	defer unix.Close(target)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("entering network namespace %s: %w", ns, err)
	}
	ferr := fn()
	if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
		// Leave the thread locked: the runtime ends it with the goroutine.
		return fmt.Errorf("returning from network namespace %s: %w", ns, err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// txPackets reads the transmit counter of ifc in ns from sysfs.
func (l *netnsLab) txPackets(t *testing.T, ns, ifc string) uint64 {
	t.Helper()
	out := runCmd(t, "ip", "netns", "exec", ns, "cat", filepath.Join("/sys/class/net", ifc, "statistics/tx_packets"))
	v, err := strconv.ParseUint(strings.TrimSpace(out), 10, 64)
	if err != nil {
		t.Fatalf("tx_packets of %s in %s: %q: %v", ifc, ns, out, err)
	}
	return v
}

// replay sends file out of ifc in the sending namespace as fast as it can.
func (l *netnsLab) replay(t *testing.T, ifc, file string) {
	t.Helper()
	runCmd(t, "ip", "netns", "exec", l.Send, "tcpreplay", "-q", "-i", ifc, "--topspeed", file)
}

func runCmd(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
