package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// In a PID namespace of its own the command freezes that namespace's init:
// a shell counting into a file stops counting.
func TestFreezesInit(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a PID namespace and ptrace")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare not installed (util-linux)")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "hang")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	count := filepath.Join(dir, "count")
	script := bin + ` -delay 300ms & i=0; while true; do i=$((i+1)); echo $i > ` + count + `; sleep 0.05; done`
	cmd := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Skipf("unshare: %v", err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
	read := func() string {
		b, _ := os.ReadFile(count)
		return strings.TrimSpace(string(b))
	}
	time.Sleep(1500 * time.Millisecond)
	first := read()
	time.Sleep(time.Second)
	if first == "" || first == "0" {
		t.Skip("the namespace's shell never counted (no PID namespaces here?)")
	}
	if again := read(); again != first {
		t.Fatalf("init of the namespace still runs: counted %s, then %s", first, again)
	}
}
