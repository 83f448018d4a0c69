package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passivesensor/sensor/settings"
	"github.com/passivesensor/sensor/status"
)

// The PuTTY test runs the real thing end to end: socat makes a pty pair
// (the serial cable), serialconsole serves one end, PuTTY's plink opens the
// other with -serial at 115200 8N1 inside a tmux pane (the terminal
// window), and the test types into the pane with tmux send-keys and reads
// it with capture-pane.
//
// plink gives a serial line local echo and line editing when its input is
// a terminal, which PuTTY's window does not do (it sends every key as
// typed); so plink reads the keys through a pipe from the raw pane, and the
// pane, like PuTTY's window, sends each key at once. cat opens the pane
// through /dev/tty, its own open file: plink makes its output non-blocking,
// and on a shared one cat's reads would fail with EAGAIN.

type rig struct {
	t        *testing.T
	dir      string // settings/status dir
	tmux     []string
	bin      string
	a, b     string
	socat    *exec.Cmd
	console  *exec.Cmd
	consoleL *strings.Builder
}

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (make deps installs the test tools): %v", tool, err)
		}
	}
}

func newRig(t *testing.T) *rig {
	need(t, "socat", "plink", "tmux")
	tmp := t.TempDir()
	r := &rig{t: t, dir: filepath.Join(tmp, "state"), bin: filepath.Join(tmp, "serialconsole"),
		a: filepath.Join(tmp, "ttyA"), b: filepath.Join(tmp, "ttyB")}
	r.tmux = []string{"tmux", "-L", fmt.Sprintf("sctest%d", os.Getpid()), "-f", "/dev/null"}
	if out, err := exec.Command("go", "build", "-o", r.bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building serialconsole: %v\n%s", err, out)
	}
	r.startSocat()
	r.consoleL = &strings.Builder{}
	r.console = exec.Command(r.bin, "-port", r.b, "-settings", r.dir, "-apply=false", "-idle", "1h", "-board", "arm64-efi")
	r.console.Stdout, r.console.Stderr = r.consoleL, r.consoleL
	if err := r.console.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.console.Process.Kill()
		r.console.Wait()
		exec.Command(r.tmux[0], append(r.tmux[1:], "kill-server")...).Run()
		r.stopSocat()
		if t.Failed() {
			t.Logf("serialconsole log:\n%s", r.consoleL.String())
		}
	})
	r.startPutty()
	return r
}

func (r *rig) startSocat() {
	r.socat = exec.Command("socat", "pty,raw,echo=0,link="+r.a, "pty,raw,echo=0,link="+r.b)
	if err := r.socat.Start(); err != nil {
		r.t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		if _, err := os.Stat(r.b); err == nil {
			if _, err := os.Stat(r.a); err == nil {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.t.Fatal("socat made no pty pair")
}

func (r *rig) stopSocat() {
	if r.socat != nil && r.socat.Process != nil {
		r.socat.Process.Kill()
		r.socat.Wait()
	}
}

func (r *rig) tm(args ...string) string {
	r.t.Helper()
	out, err := exec.Command(r.tmux[0], append(r.tmux[1:], args...)...).CombinedOutput()
	if err != nil {
		r.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func (r *rig) startPutty() {
	cmd := fmt.Sprintf("stty raw -echo; cat </dev/tty | plink -serial %s -sercfg 115200,8,n,1,N", r.a)
	r.tm("new-session", "-d", "-s", "putty", "-x", "80", "-y", "24", cmd)
}

// keys types as a person would: one key at a time.
func (r *rig) keys(keys ...string) {
	r.t.Helper()
	for _, k := range keys {
		r.tm("send-keys", "-t", "putty", k)
		time.Sleep(40 * time.Millisecond)
	}
}

// text types a string literally.
func (r *rig) text(s string) {
	r.t.Helper()
	for _, c := range s {
		r.tm("send-keys", "-t", "putty", "-l", string(c))
		time.Sleep(15 * time.Millisecond)
	}
}

func (r *rig) screen() string { return r.tm("capture-pane", "-p", "-t", "putty") }

// want waits until the screen contains every string.
func (r *rig) want(subs ...string) string {
	r.t.Helper()
	return r.wantWithin(5*time.Second, subs...)
}

func (r *rig) wantWithin(d time.Duration, subs ...string) string {
	r.t.Helper()
	var s string
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		s = r.screen()
		ok := true
		for _, sub := range subs {
			if !strings.Contains(s, sub) {
				ok = false
			}
		}
		if ok {
			return s
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.t.Fatalf("screen lacks %q:\n%s", subs, s)
	return s
}

// selected is the line the menu cursor is on.
func selected(screen string) string {
	for _, l := range strings.Split(screen, "\n") {
		if strings.HasPrefix(l, "> ") {
			return l
		}
	}
	return ""
}

// moveTo presses Down until the cursor is on the line with label.
func (r *rig) moveTo(label string) {
	r.t.Helper()
	for i := 0; i < 12; i++ {
		if strings.Contains(selected(r.screen()), " "+label) {
			return
		}
		r.keys("Down")
		time.Sleep(60 * time.Millisecond)
	}
	r.t.Fatalf("cursor never reached %q:\n%s", label, r.screen())
}

func TestPuttySetsStaticProxyAndCode(t *testing.T) {
	r := newRig(t)
	r.keys("C-l")
	r.want("Sensor set-up | Setup", "Network >", "Factory reset")

	// Status before the daemon runs.
	r.moveTo("Status >")
	r.keys("Enter")
	r.want("Setup > Status", "sensor not running")
	r.keys("Left")

	// Network: static, a wrong IP first, corrected with Backspace.
	r.moveTo("Network >")
	r.keys("Enter")
	r.want("Setup > Network", "Mode", "dhcp")
	r.keys("Enter")
	r.want("Mode: dhcp")
	r.keys("BSpace", "BSpace", "BSpace", "BSpace")
	r.text("static")
	r.keys("Enter")
	r.want("Mode set to static")
	r.moveTo("IP")
	r.keys("Enter")
	r.text("10.0.1.300")
	r.keys("Enter")
	r.want(`IP "10.0.1.300" is not an IPv4 address like 192.168.1.20`, "IP: 10.0.1.300")
	r.keys("BSpace", "BSpace", "C-h") // DEL twice, then BS
	r.text("20")
	r.want("IP: 10.0.1.20")
	r.keys("C-j") // LF alone is Enter too
	r.want("IP set to 10.0.1.20", "Mask                   255.255.255.0")
	r.moveTo("Gateway")
	r.keys("Enter")
	r.text("10.0.2.1")
	r.keys("Enter")
	r.want("gateway 10.0.2.1 is not inside 10.0.1.0/24")
	// Edit in place: move left over ".1", fix the third part.
	r.keys("Left", "Left", "BSpace")
	r.text("1")
	r.want("Gateway: 10.0.1.1")
	r.keys("Enter")
	r.want("Gateway set to 10.0.1.1")
	r.moveTo("DNS 1")
	r.keys("Enter")
	r.text("10.0.1.53")
	r.keys("Enter")
	r.want("DNS 1 set to 10.0.1.53")
	r.moveTo("[Save & apply]")
	r.keys("Enter")
	r.want("Apply network? (y/n)")
	r.keys("y")
	r.want("Save & apply: saved")
	r.keys("Escape")
	r.want("Sensor set-up | Setup ")

	// Proxy with a masked password.
	r.moveTo("Proxy >")
	r.keys("Enter")
	r.want("Setup > Proxy")
	r.keys("Enter")
	r.text("proxy.plant.local")
	r.keys("Enter")
	r.moveTo("Port")
	r.keys("Enter", "C-u")
	r.text("8080")
	r.keys("Enter")
	r.want("Port set to 8080")
	r.moveTo("User")
	r.keys("Enter")
	r.text("tech")
	r.keys("Enter")
	r.moveTo("Password")
	r.keys("Enter")
	r.text("s3cret")
	s := r.want("Password: ******")
	if strings.Contains(s, "s3cret") {
		t.Fatalf("password shown while typed:\n%s", s)
	}
	r.keys("Enter")
	s = r.want("Password set to ******")
	if strings.Contains(s, "s3cret") {
		t.Fatalf("password shown:\n%s", s)
	}
	r.moveTo("[Save]")
	r.keys("Enter")
	r.want("proxy saved")
	r.keys("Left")

	// Registration: a code with a look-alike first.
	r.moveTo("Registration >")
	r.keys("Enter")
	r.keys("Enter")
	r.text("abcd-efgh-jkmn-pqr0")
	r.keys("Enter")
	r.want("character 16 is '0', which codes never use")
	r.keys("BSpace")
	r.text("s")
	r.keys("Enter")
	r.want("Code set to ABCD-EFGH-JKMN-PQRS")

	// Ctrl-L repaints a screen the terminal lost (reset and cleared).
	r.tm("send-keys", "-t", "putty", "-R")
	if s := r.screen(); strings.Contains(s, "Setup") {
		t.Fatalf("terminal reset left the screen:\n%s", s)
	}
	r.keys("C-l")
	r.want("Setup > Registration", "ABCD-EFGH-JKMN-PQRS")

	got, _, err := settings.Load(settings.PathIn(r.dir))
	if err != nil {
		t.Fatal(err)
	}
	if got.Mode != settings.ModeStatic || got.Address != "10.0.1.20/24" || got.Gateway != "10.0.1.1" ||
		len(got.DNS) != 1 || got.DNS[0] != "10.0.1.53" ||
		got.Proxy.Address != "proxy.plant.local:8080" || got.Proxy.User != "tech" || got.Proxy.Password != "s3cret" ||
		got.PersonalizationCode != "ABCD-EFGH-JKMN-PQRS" {
		t.Fatalf("settings file holds %#v", got)
	}

	// The daemon starts: Status shows what it wrote.
	if err := status.Write(r.dir, status.Status{Time: time.Now(), Version: "1.4.2", OtherVersion: "1.4.1",
		Registration: status.Sensing, CloudOK: true, Assets: 57,
		Interfaces: []status.Interface{{Name: "eth1", Up: true, RateBps: 3.2e6, Drops: 2}}}); err != nil {
		t.Fatal(err)
	}
	r.keys("Left")
	r.moveTo("Status >")
	r.keys("Enter")
	r.want("Cloud                  ok", "Registered             sensing", "eth1                   up 3.2M drop 2", "Assets                 57", "Other                  1.4.1")
}

// TestPuttyCablePulled pulls the cable (the pty pair and PuTTY go away)
// and plugs it back: the console reopens the port and serves again.
func TestPuttyCablePulled(t *testing.T) {
	r := newRig(t)
	r.keys("C-l")
	r.want("Network >")
	r.tm("kill-session", "-t", "putty")
	r.stopSocat()
	os.Remove(r.a)
	os.Remove(r.b)
	time.Sleep(1500 * time.Millisecond)
	if r.console.ProcessState != nil {
		t.Fatal("serialconsole exited when the line went away")
	}
	r.startSocat()
	r.startPutty()
	// The console retries every few seconds and greets the new line.
	r.wantWithin(15*time.Second, "Sensor set-up console", "Press Enter to start")
	r.keys("Enter")
	r.want("Sensor set-up | Setup", "Network >")
	r.keys("Enter")
	r.want("Setup > Network")
	if !strings.Contains(r.consoleL.String(), "reopening") {
		t.Errorf("no reopen logged:\n%s", r.consoleL.String())
	}
}
