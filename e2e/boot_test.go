//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	imagePath   = flag.String("image", "", "gokrazy disk image to boot (default: ../out/arm64.img)")
	password    = flag.String("password", "", "gokrazy HTTP password (default: from IMAGE.log, then ~/.config/gokrazy)")
	bootTimeout = flag.Duration("boot_timeout", 4*time.Minute, "how long to wait for the sensor to start")
	sniffIface  = flag.String("sniff", "eth1", "the sniffing interface the image's sensor is started on")
	diskSize    = flag.Int64("disk_size", 4<<30, "TestBootSmoke: size of the box's disk the image is written to (sparse file)")
)

// Firmware from Debian's qemu-efi-aarch64: AAVMF code (read-only) and a
// template for the variable store, copied per run so it can be written.
const (
	firmwareCode = "/usr/share/AAVMF/AAVMF_CODE.fd"
	firmwareVars = "/usr/share/AAVMF/AAVMF_VARS.fd"
)

// vm is one qemu-system-aarch64 run of the image.
type vm struct {
	cmd *exec.Cmd
	// serialLog is the kernel's and gokrazy's console: a virtio console
	// (hvc0), because the board's only UART (ttyAMA0, the PL011 of qemu
	// virt) belongs to cmd/serialconsole, as on the real box.
	serialLog string
	// uartLog receives the UART (ttyAMA0: firmware output, then the set-up
	// console) unless bootOpts.uartPTY put it on a pty instead.
	uartLog string
	// uartPTY is the host pty of the UART when bootOpts.uartPTY is set.
	uartPTY  string
	httpAddr string // host address forwarded to the guest's port 80 on eth0
	started  time.Time
	// forwarded maps each of bootOpts.forward to its host address.
	forwarded map[string]string
	// panelSock is the host's unix socket of the sensor.panel port when
	// bootOpts.panel is set.
	panelSock string

	exitOnce sync.Once
	exited   chan error // qemu's exit, once waitExit started waiting
}

// waitExit returns a channel that receives qemu's exit status once it
// has exited; the one Wait on qemu happens here.
func (v *vm) waitExit() <-chan error {
	v.exitOnce.Do(func() {
		v.exited = make(chan error, 1)
		go func() { v.exited <- v.cmd.Wait(); close(v.exited) }()
	})
	return v.exited
}

func requireTools(t *testing.T) string {
	t.Helper()
	for _, p := range []string{firmwareCode, firmwareVars} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("EFI firmware %s missing (apt-get install qemu-efi-aarch64): %v", p, err)
		}
	}
	if _, err := exec.LookPath("qemu-system-aarch64"); err != nil {
		t.Skipf("qemu-system-aarch64 not found (apt-get install qemu-system-arm): %v", err)
	}
	img := *imagePath
	if img == "" {
		img = filepath.Join("..", "out", "arm64.img")
	}
	if _, err := os.Stat(img); err != nil {
		t.Skipf("image %s not built (make -f Makefile -f image.mk image BOARD=arm64): %v", img, err)
	}
	abs, err := filepath.Abs(img)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// boot starts qemu on img: virt machine, cortex-a57 under TCG (no KVM),
// 1 GiB, AAVMF in pflash, the image as a virtio disk in snapshot mode (the
// file stays as built), eth0 = user-mode networking with the guest's HTTP
// port forwarded to the host, eth1 = a second NIC on an isolated user
// network standing in for the mirror port.
func boot(t *testing.T, img string) *vm {
	t.Helper()
	return bootWith(t, img, bootOpts{})
}

// bootOpts changes how boot runs the image.
type bootOpts struct {
	// persistent writes to img itself (the caller passes a copy), so
	// reboots inside the run, and later runs, see what the box wrote.
	persistent bool
	// watchdog gives the guest an i6300esb watchdog that resets it.
	watchdog bool
	// uartPTY puts the UART (ttyAMA0, the set-up console) on a host pty,
	// found in vm.uartPTY, for a terminal program such as plink.
	uartPTY bool
	// sniff replaces the sniffing NIC's netdev (default: a restricted
	// user network that carries nothing), e.g. "dgram,id=sniff,...".
	sniff string
	// dhcpStart is the first address qemu's DHCP server hands out on the
	// management network (default 10.0.2.15); httpAddr reaches it.
	dhcpStart string
	// forward lists more guest TCP endpoints on the management network
	// ("10.0.2.42:80"); the host reaches each at vm.forwarded[endpoint],
	// and only while the guest holds that address.
	forward []string
	// panel connects a virtio-serial port named sensor.panel (the board
	// profile qemu-panel's front panel) to the unix socket vm.panelSock.
	panel bool
	// vars is the firmware's variable store to use instead of a fresh
	// copy: the box's NVRAM, kept across qemu runs.
	vars string
	// extra are further qemu arguments.
	extra []string
}

func bootWith(t *testing.T, img string, o bootOpts) *vm {
	t.Helper()
	dir := t.TempDir()
	vars := filepath.Join(dir, "vars.fd")
	b, err := os.ReadFile(firmwareVars)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vars, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if o.vars != "" {
		vars = o.vars
	}
	port := freePort(t)
	v := &vm{
		serialLog: filepath.Join(dir, "serial.log"),
		uartLog:   filepath.Join(dir, "uart.log"),
		httpAddr:  fmt.Sprintf("127.0.0.1:%d", port),
	}
	args := []string{
		"-M", "virt", "-cpu", "cortex-a57", "-m", "1024", "-smp", "2",
		"-nographic", "-monitor", "none",
		"-drive", "if=pflash,format=raw,readonly=on,file=" + firmwareCode,
		"-drive", "if=pflash,format=raw,file=" + vars,
		"-drive", "file=" + img + ",format=raw,if=none,id=disk,snapshot=" + map[bool]string{true: "off", false: "on"}[o.persistent],
		"-device", "virtio-blk-pci,drive=disk",
		"-netdev", mgmtNetdev(t, v, o),
		"-device", "virtio-net-pci,netdev=mgmt",
		"-netdev", cmp.Or(o.sniff, "user,id=sniff,restrict=on"),
		"-device", "virtio-net-pci,netdev=sniff",
		"-chardev", "file,id=hvc,path=" + v.serialLog,
		"-device", "virtio-serial-pci",
		"-device", "virtconsole,chardev=hvc",
	}
	if o.uartPTY {
		args = append(args, "-serial", "pty")
	} else {
		args = append(args, "-serial", "file:"+v.uartLog)
	}
	if o.watchdog {
		args = append(args, "-device", "i6300esb", "-watchdog-action", "reset")
	}
	if o.panel {
		v.panelSock = filepath.Join(dir, "panel.sock")
		args = append(args, "-chardev", "socket,id=panel,server=on,wait=off,path="+v.panelSock,
			"-device", "virtserialport,chardev=panel,name=sensor.panel")
	}
	args = append(args, o.extra...)
	v.cmd = exec.Command("qemu-system-aarch64", args...)
	var stderr syncBuffer
	v.cmd.Stdout = &stderr
	v.cmd.Stderr = &stderr
	t.Logf("qemu-system-aarch64 %s", strings.Join(args, " "))
	v.started = time.Now()
	if err := v.cmd.Start(); err != nil {
		t.Fatalf("starting qemu: %v", err)
	}
	if o.uartPTY {
		// qemu names the pty it made on its output:
		// "char device redirected to /dev/pts/3 (label serial0)".
		re := regexp.MustCompile(`redirected to (/dev/pts/[0-9]+) \(label serial0\)`)
		for deadline := time.Now().Add(10 * time.Second); v.uartPTY == ""; time.Sleep(50 * time.Millisecond) {
			if m := re.FindStringSubmatch(stderr.String()); m != nil {
				v.uartPTY = m[1]
			} else if time.Now().After(deadline) {
				v.cmd.Process.Kill()
				v.cmd.Wait()
				t.Fatalf("qemu never reported the UART's pty; output:\n%s", stderr.String())
			}
		}
		t.Logf("UART (ttyAMA0) on %s", v.uartPTY)
	}
	t.Cleanup(func() {
		v.cmd.Process.Kill()
		<-v.waitExit()
		if t.Failed() {
			t.Logf("qemu output:\n%s", stderr.String())
			t.Logf("serial console (last 60 lines):\n%s", tail(v.serialLog, 60))
		}
		if keep := os.Getenv("E2E_KEEP_SERIAL"); keep != "" {
			if b, err := os.ReadFile(v.serialLog); err == nil {
				os.WriteFile(keep, b, 0o644)
			}
		}
	})
	return v
}

// mgmtNetdev is the management NIC's user network: the gokrazy HTTP port
// of the DHCP address forwarded to httpAddr, and o.forward.
func mgmtNetdev(t *testing.T, v *vm, o bootOpts) string {
	nd := fmt.Sprintf("user,id=mgmt,hostfwd=tcp:%s-:80", v.httpAddr)
	if o.dhcpStart != "" {
		nd += ",dhcpstart=" + o.dhcpStart
	}
	v.forwarded = map[string]string{}
	for _, guest := range o.forward {
		host := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		v.forwarded[guest] = host
		nd += fmt.Sprintf(",hostfwd=tcp:%s-%s", host, guest)
	}
	return nd
}

// syncBuffer is a bytes.Buffer that qemu's output goroutine and the test
// may use at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitSerial waits until the serial console shows a line matching re.
func (v *vm) waitSerial(ctx context.Context, re *regexp.Regexp) (string, error) {
	for {
		if b, err := os.ReadFile(v.serialLog); err == nil {
			if m := re.Find(b); m != nil {
				return string(m), nil
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("serial console never matched %q: %w", re, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.ReplaceAll(string(b), "\r", ""), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// httpPassword finds the password gok baked into the image: the URL gok
// printed into IMAGE.log, else gok's per-host and global password files.
func httpPassword(img string) (string, error) {
	if *password != "" {
		return *password, nil
	}
	if b, err := os.ReadFile(img + ".log"); err == nil {
		if m := regexp.MustCompile(`http://gokrazy:([^@\s]+)@`).FindSubmatch(b); m != nil {
			return string(m[1]), nil
		}
	}
	cfg, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	for _, p := range []string{
		filepath.Join(cfg, "gokrazy", "hosts", "sensor", "http-password.txt"),
		filepath.Join(cfg, "gokrazy", "http-password.txt"),
	} {
		if b, err := os.ReadFile(p); err == nil {
			return strings.TrimSpace(string(b)), nil
		}
	}
	return "", fmt.Errorf("no gokrazy HTTP password for %s: pass -password", img)
}

// serviceStatus is what gokrazy's /status?path=... answers as JSON.
type serviceStatus struct {
	Stopped   bool
	StartTime time.Time
	Pid       int
	Path      string
	Args      []string
}

func (v *vm) get(ctx context.Context, pw, path string, accept string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+v.httpAddr+path, nil)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth("gokrazy", pw)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, b)
	}
	return b, err
}

// serviceLog reads what a service wrote to stream (stdout or stderr). The
// /log endpoint streams forever, so it reads for a short while only.
func (v *vm) serviceLog(pw, service, stream string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+v.httpAddr+"/log?path="+service+"&stream="+stream, nil)
	req.SetBasicAuth("gokrazy", pw)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	var sb strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && sb.Len() < 64<<10 {
		sb.WriteString(sc.Text())
		sb.WriteByte('\n')
	}
	return sb.String()
}

// TestBootSmoke writes the raw image to a larger disk, as a box is set up,
// and boots it: on the first boot the box has no /perm and makes it
// (cmd/mkperm, on the serial console), grown to the disk's end, and
// reboots; gokrazy's init then mounts it. The test waits for the sensor
// service: the kernel putting the sniffing interface into promiscuous mode
// (the sensor opened its capture), gokrazy's HTTP status for /user/sensor
// and the sensor's own start-up log line. A personalization code typed at
// the set-up console over the UART (PuTTY's plink) is saved on /perm and
// read back after a reboot through gokrazy, which finds the same /perm.
// After a power-off through gokrazy the disk is checked from outside:
// sgdisk -v, partition 4 to the disk's end, e2fsck -fn and dumpe2fs on
// /perm, and the code in its settings file.
func TestBootSmoke(t *testing.T) {
	img := requireTools(t)
	pw, err := httpPassword(img)
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"sgdisk", "e2fsck", "dumpe2fs", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (make boot-smoke installs gdisk and e2fsprogs)", tool)
		}
	}
	lap := stepTimer(t)
	// The box's disk: the image as built, written to a bigger disk.
	disk := boxDisk(t, img)
	v := bootWith(t, disk, bootOpts{persistent: true, uartPTY: true})
	ctx, cancel := context.WithTimeout(context.Background(), 3**bootTimeout)
	defer cancel()

	if _, err := v.waitSerial(ctx, regexp.MustCompile(`Run /gokrazy/init as init process`)); err != nil {
		t.Fatal(err)
	}
	t.Logf("kernel started gokrazy init after %v", time.Since(v.started).Round(time.Second))

	// First boot: nothing mounts on /perm; mkperm makes it and reboots.
	created, err := v.waitSerial(ctx, regexp.MustCompile(`mkperm: .*msg="created /perm: ext4 with a journal".*`))
	if err != nil {
		t.Fatalf("/perm not created on the first boot: %v", err)
	}
	t.Logf("serial console: %s", created)
	if !strings.Contains(created, "grown=true") {
		t.Errorf("/perm was not grown to the end of the %d-byte disk", *diskSize)
	}
	lap("first boot: /perm created")
	if err := v.waitSerialCount(ctx, `Run /gokrazy/init as init process`, 2); err != nil {
		t.Fatalf("no reboot after /perm was created: %v", err)
	}
	// /perm is the fourth partition; gokrazy's init mounts it before it
	// starts services.
	mountRe := regexp.MustCompile(`EXT4-fs \(vda4\): mounted filesystem ([0-9a-f-]+) r/w`)
	m, err := v.waitSerial(ctx, mountRe)
	if err != nil {
		t.Fatalf("/perm not mounted read-write: %v", err)
	}
	uuid := mountRe.FindStringSubmatch(m)[1]
	lap("reboot to /perm mounted")

	promisc := regexp.MustCompile(regexp.QuoteMeta(*sniffIface) + `: entered promiscuous mode`)
	if _, err := v.waitSerial(ctx, promisc); err != nil {
		t.Fatal(err)
	}
	t.Logf("sensor opened its capture on %s after %v", *sniffIface, time.Since(v.started).Round(time.Second))

	var st serviceStatus
	for {
		b, err := v.get(ctx, pw, "/status?path=/user/sensor", "application/json")
		if err == nil {
			if err := json.Unmarshal(b, &st); err != nil {
				t.Fatalf("gokrazy status for /user/sensor: %v: %s", err, b)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("gokrazy HTTP on %s never answered: %v", v.httpAddr, err)
		}
		time.Sleep(time.Second)
	}
	t.Logf("gokrazy HTTP answered after %v: /user/sensor pid %d args %q",
		time.Since(v.started).Round(time.Second), st.Pid, st.Args)
	if st.Stopped {
		t.Fatalf("gokrazy reports /user/sensor stopped; stderr:\n%s", v.serviceLog(pw, "/user/sensor", "stderr"))
	}

	stderr := v.serviceLog(pw, "/user/sensor", "stderr")
	if !strings.Contains(stderr, "sensing interfaces=["+*sniffIface+"]") {
		t.Fatalf("sensor never logged that it is sensing %s; stderr:\n%s", *sniffIface, stderr)
	}
	// gokrazy's status for mkperm: stopped (exit status 125), having
	// found /perm mounted.
	checkMkperm(ctx, t, v, pw)
	lap("sensor running, gokrazy's status")

	t.Run("StaysUp", func(t *testing.T) {
		// A sensor that dies is restarted by gokrazy every second or so;
		// a healthy one keeps its first start.
		time.Sleep(15 * time.Second)
		stderr := v.serviceLog(pw, "/user/sensor", "stderr")
		if n := strings.Count(stderr, "gokrazy: exit status"); n > 0 {
			t.Errorf("sensor exited %d times since boot; stderr (last lines):\n%s", n, lastLines(stderr, 12))
			return
		}
		t.Logf("sensor stderr after %v:\n%s", time.Since(v.started).Round(time.Second), lastLines(stderr, 8))
	})

	// State on /perm: a personalization code typed at the set-up console.
	const code = "BCDE-FGHJ-KMNP-QRST"
	con := openPlink(t, v.uartPTY)
	time.Sleep(2 * time.Second)
	con.keys("C-l")
	con.want(90*time.Second, "Sensor set-up", "Registration >")
	con.moveTo("Registration >")
	con.keys("Enter", "Enter")
	con.text(code)
	con.keys("Enter")
	con.want(10*time.Second, "Code set to "+code)
	lap("console: personalization code saved")

	// A reboot through gokrazy finds the same /perm and the code on it.
	if err := v.post(ctx, pw, "/reboot"); err != nil {
		t.Fatalf("reboot through gokrazy: %v", err)
	}
	if err := v.waitSerialCount(ctx, `EXT4-fs \(vda4\): mounted filesystem `+uuid+` r/w`, 2); err != nil {
		t.Fatalf("/perm %s not mounted again after the reboot: %v", uuid, err)
	}
	if b, _ := os.ReadFile(v.serialLog); strings.Count(string(b), `msg="created /perm`) != 1 {
		t.Fatal("/perm was made again after the reboot")
	}
	if err := v.waitSerialCount(ctx, `entered promiscuous mode`, 2); err != nil {
		t.Fatal(err)
	}
	checkMkperm(ctx, t, v, pw)
	time.Sleep(2 * time.Second)
	con.keys("Escape", "Escape", "C-l")
	con.want(90*time.Second, "Sensor set-up", "Registration >")
	con.moveTo("Registration >")
	con.keys("Enter")
	con.want(10*time.Second, code)
	lap("reboot: the same /perm, the code read back at the console")
	checkPerm(t, v)

	// Power off through gokrazy (services stopped, /perm unmounted) and
	// look at the disk from outside.
	v.powerOff(ctx, t, pw)
	lap("power-off")
	perm := checkPermOnDisk(t, disk)
	if perm.fields["Filesystem UUID"] != uuid {
		t.Errorf("/perm on the disk is %s, the box mounted %s", perm.fields["Filesystem UUID"], uuid)
	}
	if got := catPerm(t, disk, perm.part, "/sensor/settings.json"); !strings.Contains(got, code) {
		t.Errorf("/perm/sensor/settings.json lacks the code:\n%s", got)
	}
	t.Logf("/perm: partition 4 %d MiB on a %d MiB disk; %s blocks of %s bytes, %s free; features %s; journal %s",
		perm.part.Bytes()>>20, perm.diskSectors*512>>20, perm.fields["Block count"], perm.fields["Block size"],
		perm.fields["Free blocks"], perm.fields["Filesystem features"], perm.fields["Total journal size"])
}

// checkMkperm checks gokrazy's status for mkperm on a box whose /perm is
// mounted: stopped (exit status 125, not restarted), having said so.
func checkMkperm(ctx context.Context, t *testing.T, v *vm, pw string) {
	t.Helper()
	var st serviceStatus
	for {
		b, err := v.get(ctx, pw, "/status?path=/user/mkperm", "application/json")
		if err == nil && json.Unmarshal(b, &st) == nil && st.Stopped {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("gokrazy's status for /user/mkperm: %v %+v", err, st)
		}
		time.Sleep(time.Second)
	}
	log := v.serviceLog(pw, "/user/mkperm", "stderr")
	if !strings.Contains(log, `msg="/perm is mounted: nothing to do" device=/dev/vda4 type=ext4`) {
		t.Errorf("mkperm's log in gokrazy's status:\n%s", log)
	}
	t.Logf("gokrazy's status for /user/mkperm: stopped; %s", lastLines(log, 1))
}

// powerOff powers the box off through gokrazy (services stopped, /perm
// unmounted) and waits for qemu to exit.
func (v *vm) powerOff(ctx context.Context, t *testing.T, pw string) {
	t.Helper()
	if err := v.post(ctx, pw, "/poweroff"); err != nil {
		t.Fatalf("power off through gokrazy: %v", err)
	}
	select {
	case <-v.waitExit():
	case <-time.After(2 * time.Minute):
		t.Fatal("qemu still runs two minutes after the power-off")
	}
}

// waitSerialCount waits until the serial console shows n lines matching
// re.
func (v *vm) waitSerialCount(ctx context.Context, re string, n int) error {
	r := regexp.MustCompile(re)
	for {
		if b, err := os.ReadFile(v.serialLog); err == nil && len(r.FindAll(b, -1)) >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("serial console never showed %d lines matching %q: %w", n, re, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
