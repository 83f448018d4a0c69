//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
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
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passivesensor/sensor/settings"
	"github.com/passivesensor/sensor/update"
)

var (
	releaseDir = flag.String("release", "", "directory make release wrote the update artefacts to (default: beside -image, release/)")
	releaseKey = flag.String("release-key", "", "release key the image trusts (default: beside -image, release-dev.key)")
	stepLimit  = flag.Duration("step_timeout", 10*time.Minute, "how long one update scenario may take")
)

// The releases make e2e-update builds: the image runs 1.0.0.
const (
	goodVersion        = "1.1.0" // signed with floor 1.1.0
	sensorExitsVersion = "1.2.1" // its sensor exits at start
	hangVersion        = "1.2.2" // hangs the box (e2e/hang)
	board              = "arm64-efi"
)

// updateCloud is the cloud and the site's network as the box sees them: the
// real collector (cmd/collector) on the host, in front of it a relay that
// cuts one artefact download part-way, as a flaky uplink would, and Debian's
// tinyproxy as the site's proxy. The box reaches the proxy at 10.0.2.2 (qemu
// user networking's host) and the cloud only through it, at
// https://127.0.0.1:RELAY: from inside the guest 127.0.0.1 is the guest
// itself, so nothing reaches the cloud without the proxy.
type updateCloud struct {
	t *testing.T
	*collector
	bin     string // the collector binary
	log     string // its log (stderr)
	relay   *cutRelay
	proxy   string // host:port of tinyproxy as the guest reaches it
	proxyLg *syncBuffer
}

func startUpdateCloud(t *testing.T) *updateCloud {
	t.Helper()
	tp, err := exec.LookPath("tinyproxy")
	if err != nil {
		t.Skip("tinyproxy not installed (make e2e-update installs it)")
	}
	dir := t.TempDir()
	c := &updateCloud{t: t, collector: &collector{data: filepath.Join(dir, "data")}, bin: filepath.Join(dir, "collector"), log: filepath.Join(dir, "collector.log")}
	if out, err := exec.Command("go", "build", "-o", c.bin, "../cmd/collector").CombinedOutput(); err != nil {
		t.Fatalf("building collector: %v\n%s", err, out)
	}
	logf, err := os.Create(c.log)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	// Sensors ask for orders every 20 s instead of every 10 minutes.
	cmd := exec.Command(c.bin, "-listen", addr, "-data", c.data, "-update-poll", "20s")
	cmd.Stderr = logf
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting collector: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); logf.Close() })
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "collector: listening on "); ok {
			c.url = u
		}
		if p, ok := strings.CutPrefix(sc.Text(), "collector: CA certificate "); ok {
			if c.ca, err = os.ReadFile(p); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	go io.Copy(io.Discard, stdout)
	if c.url == "" || c.ca == nil {
		t.Fatal("collector did not print its URL and CA")
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.ca)
	c.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	// The relay cuts the first connection that carries more than 30 MB
	// from the collector: the artefact download (about 100 MB).
	c.relay = startCutRelay(t, addr, 30<<20)

	port := freePort(t)
	conf := fmt.Sprintf("Port %d\nListen 127.0.0.1\nTimeout 120\nMaxClients 20\nAllow 127.0.0.1\nLogLevel Connect\n", port)
	if os.Geteuid() == 0 {
		conf += "User nobody\nGroup nogroup\n"
	}
	confFile := filepath.Join(dir, "tinyproxy.conf")
	os.WriteFile(confFile, []byte(conf), 0o644)
	pcmd := exec.Command(tp, "-d", "-c", confFile)
	c.proxyLg = &syncBuffer{}
	pcmd.Stdout, pcmd.Stderr = c.proxyLg, c.proxyLg
	if err := pcmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pcmd.Process.Kill(); pcmd.Wait() })
	for i := 0; ; i++ {
		if conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			conn.Close()
			break
		}
		if i > 100 {
			t.Fatalf("tinyproxy did not start listening:\n%s", c.proxyLg)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.proxy = fmt.Sprintf("10.0.2.2:%d", port)
	return c
}

// boxURL is the cloud's URL in the box's settings.
func (c *updateCloud) boxURL() string { return "https://" + c.relay.addr }

// run runs the collector's command line on its data directory.
func (c *updateCloud) run(args ...string) string {
	c.t.Helper()
	out, err := exec.Command(c.bin, append([]string{"-data", c.data}, args...)...).CombinedOutput()
	if err != nil {
		c.t.Fatalf("collector %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// publish orders the manifest and artefact with `collector update publish`,
// for sensor only unless sensor is "".
func (c *updateCloud) publish(m update.Manifest, artefact, sensor string) {
	c.t.Helper()
	f := filepath.Join(c.t.TempDir(), "manifest.json")
	b, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		c.t.Fatal(err)
	}
	args := []string{"update", "publish", "-manifest", f, "-artefact", artefact}
	if sensor != "" {
		args = append(args, "-sensor", sensor)
	}
	c.t.Logf("%s", c.run(args...))
}

// sensorInfo is what /api/sensors tells of a sensor.
type sensorInfo struct {
	ID      string `json:"id"`
	Version string `json:"version"`
	Board   string `json:"board"`
}

// waitSensor waits for the box to register and returns it.
func (c *updateCloud) waitSensor(ctx context.Context) (sensorInfo, error) {
	for {
		var ss []sensorInfo
		if err := c.api("/api/sensors", &ss); err == nil && len(ss) == 1 {
			return ss[0], nil
		}
		select {
		case <-ctx.Done():
			return sensorInfo{}, fmt.Errorf("the box never registered: %w", ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// updateStep is a step the box reported, as the collector shows it.
type updateStep struct {
	Time    time.Time `json:"time"`
	Running string    `json:"running"`
	Version string    `json:"version"`
	Phase   string    `json:"phase"`
	Slot    string    `json:"slot"`
	Detail  string    `json:"detail"`
}

// steps lists the steps the box reported for version, oldest first.
func (c *updateCloud) steps(version string) []updateStep {
	var u struct {
		Reports []updateStep `json:"reports"`
	}
	if err := c.api("/api/updates", &u); err != nil {
		c.t.Logf("collector /api/updates: %v", err)
		return nil
	}
	var out []updateStep
	for _, r := range slices.Backward(u.Reports) {
		if r.Version == version {
			out = append(out, r)
		}
	}
	return out
}

// waitStep waits until the collector holds a step of version that ok
// accepts, and returns the first such step.
func (c *updateCloud) waitStep(ctx context.Context, version string, poll time.Duration, what string, ok func(updateStep) bool) (updateStep, error) {
	for {
		for _, s := range c.steps(version) {
			if ok(s) {
				return s, nil
			}
		}
		select {
		case <-ctx.Done():
			return updateStep{}, fmt.Errorf("the collector shows no step of %s %s (it shows %q): %w", version, what, phaseList(c.steps(version)), ctx.Err())
		case <-time.After(poll):
		}
	}
}

func phaseList(steps []updateStep) []string {
	var out []string
	for _, s := range steps {
		p := s.Phase
		if s.Detail != "" {
			p += " (" + s.Detail + ")"
		}
		out = append(out, p)
	}
	return out
}

// artefactRanges lists the Range header of each artefact request in the
// collector's log ("" for a request of the whole artefact).
func (c *updateCloud) artefactRanges() []string {
	b, _ := os.ReadFile(c.log)
	var out []string
	re := regexp.MustCompile(`msg="update artefact" .*range=(\S*)`)
	for _, m := range re.FindAllSubmatch(b, -1) {
		out = append(out, strings.Trim(string(m[1]), `"`))
	}
	return out
}

// cutRelay forwards TCP connections to target and cuts the first one that
// carries more than cutAfter bytes towards the client, once.
type cutRelay struct {
	addr, target string
	cutAfter     int64
	mu           sync.Mutex
	cut          int64 // bytes forwarded by the cut connection; 0 before the cut
}

func startCutRelay(t *testing.T, target string, cutAfter int64) *cutRelay {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	r := &cutRelay{addr: ln.Addr().String(), target: target, cutAfter: cutAfter}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go r.pipe(c)
		}
	}()
	return r
}

func (r *cutRelay) pipe(c net.Conn) {
	defer c.Close()
	s, err := net.Dial("tcp", r.target)
	if err != nil {
		return
	}
	defer s.Close()
	go func() { io.Copy(s, c); s.(*net.TCPConn).CloseWrite() }()
	buf := make([]byte, 32<<10)
	var n int64
	for {
		k, err := s.Read(buf)
		if k > 0 {
			if _, werr := c.Write(buf[:k]); werr != nil {
				return
			}
			n += int64(k)
			r.mu.Lock()
			cutNow := r.cut == 0 && n > r.cutAfter
			if cutNow {
				r.cut = n
			}
			r.mu.Unlock()
			if cutNow {
				return // both ends closed by the defers
			}
		}
		if err != nil {
			return
		}
	}
}

func (r *cutRelay) cutAt() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cut
}

// qmpEvents reads qemu's QMP events (WATCHDOG, RESET, ...) from its socket.
type qmpEvents struct {
	mu     sync.Mutex
	events []qmpEvent
}

type qmpEvent struct {
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
	at    time.Time
}

func qmpArgs(path string) []string {
	return []string{"-qmp", "unix:" + path + ",server=on,wait=off"}
}

// watchQMP connects to qemu's QMP socket and records its events until qemu
// exits.
func watchQMP(t *testing.T, path string) *qmpEvents {
	q := &qmpEvents{}
	var conn net.Conn
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if conn, err = net.Dial("unix", path); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("qemu's QMP socket %s: %v", path, err)
		}
	}
	go func() {
		defer conn.Close()
		sc := bufio.NewScanner(conn)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		if !sc.Scan() { // the greeting
			return
		}
		io.WriteString(conn, `{"execute":"qmp_capabilities"}`+"\n")
		for sc.Scan() {
			var e qmpEvent
			if json.Unmarshal(sc.Bytes(), &e) == nil && e.Event != "" {
				e.at = time.Now()
				q.mu.Lock()
				q.events = append(q.events, e)
				q.mu.Unlock()
			}
		}
	}()
	return q
}

// since lists the events named name seen after t0.
func (q *qmpEvents) since(name string, t0 time.Time) []qmpEvent {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []qmpEvent
	for _, e := range q.events {
		if e.Event == name && !e.at.Before(t0) {
			out = append(out, e)
		}
	}
	return out
}

// box is the appliance under test: its disk and NVRAM outlive each qemu
// run, as a box's do across power cuts.
type box struct {
	t     *testing.T
	img   string // the image as built (never written)
	disk  string // the box's disk: a copy of img
	vars  string // its EFI variable store
	v     *vm
	qmp   *qmpEvents
	boots int
}

// powerOn starts qemu on the box's disk with an i6300esb watchdog that
// resets the machine.
func (b *box) powerOn() {
	b.t.Helper()
	b.boots++
	sock := filepath.Join(b.t.TempDir(), "qmp.sock")
	b.v = bootWith(b.t, b.disk, bootOpts{persistent: true, watchdog: true, vars: b.vars, extra: qmpArgs(sock)})
	b.qmp = watchQMP(b.t, sock)
}

// kill is kill -9 of qemu: the power cut.
func (b *box) kill() {
	b.v.cmd.Process.Kill()
	b.v.cmd.Wait()
}

// kernelRoot is a kernel command line's root, as the kernel prints it on
// the UART at start.
var kernelRoot = regexp.MustCompile(`root=PARTUUID=\S+/PARTNROFF=(\d)`)

// kernels lists the slots whose kernels started in this qemu run, in order.
func (b *box) kernels() []update.Slot {
	out, _ := os.ReadFile(b.v.uartLog)
	var slots []update.Slot
	for _, m := range kernelRoot.FindAllSubmatch(out, -1) {
		slots = append(slots, update.Slot(m[1][0]-'1'))
	}
	return slots
}

// kernelsOf counts the kernels of slot s that started in this qemu run.
func (b *box) kernelsOf(s update.Slot) int {
	n := 0
	for _, k := range b.kernels() {
		if k == s {
			n++
		}
	}
	return n
}

// firstKernel is the slot the firmware started at this qemu run's power-on.
func (b *box) firstKernel() (update.Slot, bool) {
	k := b.kernels()
	if len(k) == 0 {
		return 0, false
	}
	return k[0], true
}

// partition returns the byte range of GPT partition n of a disk image.
func partition(t *testing.T, img string, n int) (off, size int64) {
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hdr := make([]byte, 92)
	f.ReadAt(hdr, 512)
	if string(hdr[:8]) != "EFI PART" {
		t.Fatalf("%s has no GPT", img)
	}
	entries := int64(binary.LittleEndian.Uint64(hdr[72:]))
	esize := int64(binary.LittleEndian.Uint32(hdr[84:]))
	e := make([]byte, 128)
	f.ReadAt(e, entries*512+int64(n-1)*esize)
	first, last := int64(binary.LittleEndian.Uint64(e[32:])), int64(binary.LittleEndian.Uint64(e[40:]))
	return first * 512, (last - first + 1) * 512
}

// permOffset finds where /perm (GPT partition 4) starts in a disk image.
func permOffset(t *testing.T, img string) int64 {
	off, _ := partition(t, img, 4)
	return off
}

// hashRange hashes size bytes of a file from off.
func hashRange(t *testing.T, path string, off, size int64) string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, off, size)); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// espFile reads a file from the boot partition (partition 1) of a disk
// image with mtools.
func espFile(t *testing.T, img, name string) []byte {
	off, _ := partition(t, img, 1)
	out, err := exec.Command("mtype", "-i", fmt.Sprintf("%s@@%d", img, off), "::"+name).Output()
	if err != nil {
		t.Fatalf("mtype %s from the boot partition of %s: %v", name, img, err)
	}
	return out
}

// writePerm puts files into the image's /perm (ext4), as a technician's
// earlier set-up would have left them; on a disk as built, whose /perm
// the box would make on its first boot, it first makes the file system
// as the factory does (factoryPerm).
func writePerm(t *testing.T, img string, files map[string][]byte) {
	if _, err := exec.LookPath("debugfs"); err != nil {
		t.Skip("debugfs not installed (apt-get install e2fsprogs)")
	}
	factoryPerm(t, img)
	dev := fmt.Sprintf("%s?offset=%d", img, permOffset(t, img))
	dirs := map[string]bool{}
	tmp := t.TempDir()
	for name, data := range files {
		if d := filepath.Dir(name); d != "/" && !dirs[d] { // debugfs "mkdir /" breaks the root directory
			dirs[d] = true
			exec.Command("debugfs", "-w", "-R", "mkdir "+d, dev).Run()
		}
		local := filepath.Join(tmp, strings.ReplaceAll(name, "/", "_"))
		os.WriteFile(local, data, 0o644)
		out, err := exec.Command("debugfs", "-w", "-R", "write "+local+" "+name, dev).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Allocated inode") {
			t.Fatalf("debugfs write %s: %v: %s", name, err, out)
		}
	}
}

// readPerm reads a file from the image's /perm after a power cut, from a
// copy of the partition whose journal it first replays, as the box's
// kernel does when it mounts /perm again; the box's disk is left as the
// cut left it.
func readPerm(t *testing.T, img, name string) []byte {
	off, size := partition(t, img, 4)
	perm := filepath.Join(t.TempDir(), "perm.img")
	copySparse(t, img, off, size, perm)
	if out, err := exec.Command("e2fsck", "-y", "-E", "journal_only", perm).CombinedOutput(); err != nil {
		// Exit status 1: the journal was replayed (file system changed).
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() > 1 {
			t.Fatalf("e2fsck -E journal_only: %v\n%s", err, out)
		}
	}
	out, err := exec.Command("debugfs", "-R", "cat "+name, perm).Output()
	if err != nil {
		t.Fatalf("debugfs cat %s: %v", name, err)
	}
	return out
}

// copySparse copies size bytes of src from off into a new file dst,
// leaving holes for blocks of zeros.
func copySparse(t *testing.T, src string, off, size int64, dst string) {
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if err := out.Truncate(size); err != nil {
		t.Fatal(err)
	}
	buf, zero := make([]byte, 1<<20), make([]byte, 4096)
	for pos := int64(0); pos < size; pos += int64(len(buf)) {
		n, err := in.ReadAt(buf[:min(int64(len(buf)), size-pos)], off+pos)
		if err != nil && err != io.EOF {
			t.Fatal(err)
		}
		for i := 0; i < n; i += len(zero) {
			blk := buf[i:min(i+len(zero), n)]
			if !bytes.Equal(blk, zero[:len(blk)]) {
				if _, err := out.WriteAt(blk, pos+int64(i)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

func readKeyFile(t *testing.T, path string) ed25519.PrivateKey {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("release key %s missing (make e2e-update builds it): %v", path, err)
	}
	seed, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		t.Fatalf("%s is not a release key", path)
	}
	return ed25519.NewKeyFromSeed(seed)
}

// release is an artefact make release built.
type release struct {
	m        update.Manifest
	artefact string
}

func loadRelease(t *testing.T, dir, version string) release {
	base := filepath.Join(dir, fmt.Sprintf("sensor-%s-%s", version, board))
	var r release
	b, err := os.ReadFile(base + ".json")
	if err != nil {
		t.Skipf("release %s missing (make e2e-update builds it): %v", version, err)
	}
	if err := json.Unmarshal(b, &r.m); err != nil {
		t.Fatal(err)
	}
	r.artefact = base + ".upd"
	return r
}

// resign gives a release's content another version (and whatever else
// change does to the manifest), signed with the release key, as the release
// machine signs.
func resign(key ed25519.PrivateKey, r release, version string, change func(*update.Manifest)) release {
	r.m.Version = version
	r.m.Floor, r.m.Downgrade = "", false
	r.m.Parts = slices.Clone(r.m.Parts)
	if change != nil {
		change(&r.m)
	}
	r.m.Sign(key)
	return r
}

// TestUpdate drives the A/B updater of the image in qemu from outside, as
// the cloud and the site would, on one box whose disk and NVRAM live
// through all the steps: the collector orders every update (its command
// line, as an operator would), the box reaches it only through the site's
// proxy, and each step's report must reach the collector.
func TestUpdate(t *testing.T) {
	img := requireTools(t)
	for _, tool := range []string{"mtype", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (make e2e-update installs it)", tool)
		}
	}
	dir := *releaseDir
	if dir == "" {
		dir = filepath.Join(filepath.Dir(img), "release")
	}
	keyPath := *releaseKey
	if keyPath == "" {
		keyPath = filepath.Join(filepath.Dir(img), "release-dev.key")
	}
	key := readKeyFile(t, keyPath)
	good := loadRelease(t, dir, goodVersion)
	sensorExits := loadRelease(t, dir, sensorExitsVersion)
	hang := loadRelease(t, dir, hangVersion)
	if good.m.Floor != goodVersion {
		t.Fatalf("%s is signed with floor %q, want %s (make e2e-update signs it so)", goodVersion, good.m.Floor, goodVersion)
	}

	c := startUpdateCloud(t)
	code := c.run("code", "new")
	c.publish(good.m, good.artefact, "") // for every box of the board

	// The box: a copy of the image, its /perm set up as the factory and a
	// technician would have left it: the cloud's URL and CA, the site's
	// proxy, and a personalization code.
	b := &box{t: t, img: img, disk: filepath.Join(t.TempDir(), "disk.img"), vars: filepath.Join(t.TempDir(), "vars.fd")}
	if out, err := exec.Command("cp", "--sparse=always", img, b.disk).CombinedOutput(); err != nil {
		t.Fatalf("copy image: %v: %s", err, out)
	}
	if out, err := exec.Command("cp", firmwareVars, b.vars).CombinedOutput(); err != nil {
		t.Fatalf("copy firmware variables: %v: %s", err, out)
	}
	s := settings.Defaults()
	s.CloudURL = c.boxURL()
	s.Proxy = settings.Proxy{Address: c.proxy}
	s.PersonalizationCode = code
	sj, err := settings.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	writePerm(t, b.disk, map[string][]byte{"sensor/settings.json": sj, "sensor/cloud-ca.pem": c.ca})

	var laps []string
	lap := func(start time.Time, what string) {
		d := time.Since(start).Round(time.Second)
		laps = append(laps, fmt.Sprintf("%-62s %v", what, d))
		t.Logf("STEP %s: %v", what, d)
	}
	defer func() { t.Logf("qemu steps (2 vCPUs under TCG, shared host):\n%s", strings.Join(laps, "\n")) }()
	// waitOn waits for a step of version in phase, reported while
	// running running ("": any).
	waitOn := func(version, phase, running string) updateStep {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), *stepLimit)
		defer cancel()
		st, err := c.waitStep(ctx, version, time.Second, fmt.Sprintf("in phase %s running %q", phase, running), func(s updateStep) bool {
			return s.Phase == phase && (running == "" || s.Running == running)
		})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	wait := func(version, phase string) updateStep { t.Helper(); return waitOn(version, phase, "") }

	// 1. A good update, through the proxy, its download cut once.
	start := time.Now()
	b.powerOn()
	ctx, cancel := context.WithTimeout(context.Background(), *stepLimit)
	sensor, err := c.waitSensor(ctx)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if sensor.Board != board {
		t.Fatalf("the box registered as board %q, want %s", sensor.Board, board)
	}
	lap(start, "power-on to registered through the proxy")
	wait(goodVersion, update.PhaseArmed)
	lap(start, "power-on to "+goodVersion+" downloaded (resumed), written, verified, armed")
	committed := wait(goodVersion, update.PhaseCommitted)
	lap(start, "power-on to "+goodVersion+" trial booted, healthy, committed")
	if committed.Running != goodVersion || committed.Slot != "b" {
		t.Fatalf("committed step %+v: want running %s from slot b", committed, goodVersion)
	}
	if b.kernelsOf(update.SlotB) == 0 {
		t.Fatalf("the kernel never ran from slot b: no root=.../PARTNROFF=2 on the UART (%s)", b.v.uartLog)
	}
	// The boot partition stays read-only but while the updater writes to
	// it, so the boots of the trial and after the commit find it clean.
	if klog, err := os.ReadFile(b.v.serialLog); err != nil || bytes.Contains(klog, []byte("not properly unmounted")) {
		t.Fatalf("a boot found a file system marked dirty (%v); kernel log in %s", err, b.v.serialLog)
	}
	steps := c.steps(goodVersion)
	t.Logf("the collector shows the steps of %s: %q", goodVersion, phaseList(steps))
	var phases []string
	for _, st := range steps {
		phases = append(phases, st.Phase)
	}
	want := []string{update.PhaseDownloading, update.PhaseDownloading, update.PhaseDownloading, update.PhaseVerified,
		update.PhaseWriting, update.PhaseArmed, update.PhaseTrial, update.PhaseCommitted}
	if !slices.Equal(phases, want) || !strings.Contains(steps[1].Detail, "stopped at byte") {
		t.Fatalf("steps of %s: %q; want %q, the second saying where the download stopped", goodVersion, phaseList(steps), want)
	}
	// The download resumed where it stopped: one request of the whole
	// artefact, cut by the relay, then one from where the box stood.
	ranges := c.artefactRanges()
	cutAt := c.relay.cutAt()
	if len(ranges) != 2 || ranges[0] != "" || !strings.HasPrefix(ranges[1], "bytes=") {
		t.Fatalf("artefact requests' ranges %q: want the whole artefact, then one range", ranges)
	}
	var from int64
	fmt.Sscanf(ranges[1], "bytes=%d-", &from)
	if cutAt == 0 || from <= 0 || from > cutAt || from >= good.m.Size {
		t.Fatalf("resumed from byte %d; the relay cut after %d bytes of a %d-byte artefact", from, cutAt, good.m.Size)
	}
	t.Logf("the download was cut after %d bytes on the wire and resumed with Range: %s", cutAt, ranges[1])
	if pl := c.proxyLg.String(); !strings.Contains(pl, "CONNECT "+c.relay.addr) {
		t.Fatalf("tinyproxy's log shows no CONNECT to the cloud %s:\n%s", c.relay.addr, pl)
	}
	var ss []sensorInfo
	if err := c.api("/api/sensors", &ss); err != nil || len(ss) != 1 || ss[0].Version != goodVersion {
		t.Fatalf("the collector shows the sensors %+v (%v); want one running %s", ss, err, goodVersion)
	}

	// 2. Refused before a byte is written: a bad signature, a wrong hash,
	// an image for another board, a downgrade below the signed floor.
	// Slot a holds 1.0.0, as built; it must stay so.
	start = time.Now()
	_, attacker, _ := ed25519.GenerateKey(rand.Reader)
	forged := resign(key, good, "1.3.0", nil)
	forged.m.Sign(attacker)
	wrongHash := resign(key, good, "1.3.1", nil)
	otherBoard := resign(key, good, "1.3.2", func(m *update.Manifest) { m.Board = "rpi4" })
	downgrade := resign(key, good, "1.0.1", func(m *update.Manifest) { m.Downgrade = true })
	for _, r := range []struct {
		what string
		rel  release
		want string
	}{
		{"a forged signature", forged, "signature"},
		{"a wrong hash", wrongHash, "sha256"},
		{"an image for another board", otherBoard, `built for board "rpi4"`},
		{"a downgrade below the signed floor", downgrade, "below the version floor " + goodVersion},
	} {
		step := time.Now()
		c.publish(r.rel.m, r.rel.artefact, sensor.ID)
		if r.rel.m.Version == wrongHash.m.Version {
			// The artefact the collector serves goes bad after it was
			// published (storage, a tampering mirror): its bytes no
			// longer match the signed hash.
			corrupt(t, filepath.Join(c.data, "artefacts", r.rel.m.SHA256+".upd"), good.m.Size/2)
		}
		st := wait(r.rel.m.Version, update.PhaseFailed)
		if !strings.Contains(st.Detail, r.want) || st.Running != goodVersion {
			t.Fatalf("%s: step %+v; want a failure naming %q while running %s", r.what, st, r.want, goodVersion)
		}
		lap(step, fmt.Sprintf("%s (%s) refused", r.rel.m.Version, r.what))
		t.Logf("%s refused: %s", r.what, st.Detail)
	}
	// Power cut while idle, then look at the disk from outside.
	step := time.Now()
	b.kill()
	aOff, aSize := partition(t, img, 2)
	if got, want := hashRange(t, b.disk, aOff, aSize), hashRange(t, img, aOff, aSize); got != want {
		t.Fatalf("slot a's root partition changed while updates were refused (sha256 %s, built %s)", got, want)
	}
	for _, f := range []string{"a/vmlinuz", "loader/entries/slot-a.conf"} {
		if !bytes.Equal(espFile(t, b.disk, f), espFile(t, img, f)) {
			t.Fatalf("%s on the boot partition changed while updates were refused", f)
		}
	}
	var state update.State
	if err := json.Unmarshal(readPerm(t, b.disk, "/update/state.json"), &state); err != nil || state.Phase != update.PhaseFailed || state.Floor != goodVersion {
		t.Fatalf("updater state %+v (%v): want the last refusal, floor %s", state, err, goodVersion)
	}
	t.Logf("after the refusals slot a's %d-byte root and its kernel and entry are as built", aSize)
	lap(start, "four refusals, then the disk checked with qemu stopped")

	// 3. Broken updates fall back by themselves and say so: the box
	// reports the rollback from slot b, running the committed version.
	b.powerOn()
	randomRoot := release{m: good.m, artefact: randomizeRoot(t, good)}
	randomRoot = resign(key, randomRoot, "1.2.0", func(m *update.Manifest) { rehash(t, m, randomRoot.artefact) })
	for _, r := range []struct {
		what string
		rel  release
		want string
	}{
		{"a root of random bytes (kernel panic)", randomRoot, "did not come up"},
		{"a sensor that exits at start", sensorExits, "restarted"},
		{"a hang (watchdog reset)", hang, "in slot a"},
	} {
		step := time.Now()
		trials, backs := b.kernelsOf(update.SlotA), b.kernelsOf(update.SlotB)
		c.publish(r.rel.m, r.rel.artefact, sensor.ID)
		wait(r.rel.m.Version, update.PhaseArmed)
		lap(step, r.rel.m.Version+" ordered to armed")
		st := func() updateStep {
			ctx, cancel := context.WithTimeout(context.Background(), *stepLimit)
			defer cancel()
			st, err := c.waitStep(ctx, r.rel.m.Version, time.Second, "rolled back, running "+goodVersion, func(s updateStep) bool {
				return s.Phase == update.PhaseCommitted || s.Phase == update.PhaseRolledBack && s.Running == goodVersion
			})
			if err != nil {
				t.Fatal(err)
			}
			return st
		}()
		if st.Phase == update.PhaseCommitted {
			t.Fatalf("%s: the broken release was committed: %q", r.what, phaseList(c.steps(r.rel.m.Version)))
		}
		if !strings.Contains(st.Detail, r.want) || !strings.Contains(st.Detail, "back on "+goodVersion) {
			t.Fatalf("%s: step %+v; want a rollback naming %q, back on %s", r.what, st, r.want, goodVersion)
		}
		if b.kernelsOf(update.SlotA) <= trials || b.kernelsOf(update.SlotB) <= backs {
			t.Fatalf("%s: the UART shows no trial kernel from slot a, or no kernel from slot b after it: %v", r.what, b.kernels())
		}
		lap(step, fmt.Sprintf("%s (%s) ordered to back on %s", r.rel.m.Version, r.what, goodVersion))
		t.Logf("%s: the collector shows %q", r.what, phaseList(c.steps(r.rel.m.Version)))
		if r.rel.m.Version == hangVersion {
			w := b.qmp.since("WATCHDOG", step)
			if len(w) == 0 || !strings.Contains(string(w[0].Data), "reset") {
				t.Fatalf("the hung trial was not reset by the watchdog: qemu reported WATCHDOG events %v", w)
			}
			t.Logf("qemu reported the watchdog's reset %v after the order: %s", w[0].at.Sub(step).Round(time.Second), w[0].Data)
		}
	}
	if out, _ := os.ReadFile(b.v.serialLog); !bytes.Contains(out, []byte("Kernel panic")) {
		t.Fatal("no kernel panic on the console: the random root did not fail the way it should")
	}

	// 4. kill -9 of qemu in the middle of an install: back on the old
	// version, the box installs again.
	start = time.Now()
	mid := resign(key, good, "1.4.0", nil)
	c.publish(mid.m, mid.artefact, sensor.ID)
	func() {
		ctx, cancel := context.WithTimeout(context.Background(), *stepLimit)
		defer cancel()
		if _, err := c.waitStep(ctx, mid.m.Version, 100*time.Millisecond, "writing", func(s updateStep) bool { return s.Phase == update.PhaseWriting }); err != nil {
			t.Fatal(err)
		}
	}()
	b.kill()
	if err := json.Unmarshal(readPerm(t, b.disk, "/update/state.json"), &state); err != nil || state.Phase != update.PhaseWriting {
		t.Fatalf("updater state after the kill %+v (%v): the kill did not land in the middle of the install", state, err)
	}
	lap(start, "1.4.0 ordered to qemu killed while writing slot a")
	step = time.Now()
	b.powerOn()
	wait(mid.m.Version, update.PhaseArmed)
	if first, ok := b.firstKernel(); !ok || first != update.SlotB {
		t.Fatalf("after the cut during the install the firmware started %v, want slot b (%s)", b.kernels(), goodVersion)
	}
	if st := wait(mid.m.Version, update.PhaseCommitted); st.Running != mid.m.Version || st.Slot != "a" {
		t.Fatalf("1.4.0 committed as %+v", st)
	}
	lap(step, "power-on after the cut (on "+goodVersion+") to 1.4.0 installed again and committed")

	// 5. kill -9 of qemu in the middle of the trial boot: back on the
	// committed version, which reports it; a new order installs.
	start = time.Now()
	trial := resign(key, good, "1.5.0", nil)
	kernels := b.kernelsOf(update.SlotB)
	c.publish(trial.m, trial.artefact, sensor.ID)
	wait(trial.m.Version, update.PhaseArmed)
	for deadline := time.Now().Add(*stepLimit); b.kernelsOf(update.SlotB) == kernels; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the trial kernel of slot b never started")
		}
	}
	time.Sleep(3 * time.Second) // into the trial kernel's boot
	b.kill()
	lap(start, "1.5.0 ordered to qemu killed during its trial boot")
	step = time.Now()
	b.powerOn()
	st := waitOn(trial.m.Version, update.PhaseRolledBack, mid.m.Version)
	if first, ok := b.firstKernel(); !ok || first != update.SlotA {
		t.Fatalf("after the cut during the trial the firmware started %v, want slot a (%s)", b.kernels(), mid.m.Version)
	}
	t.Logf("after the cut during the trial: %s", st.Detail)
	lap(step, "power-on after the cut to 1.5.0 reported rolled back")
	again := resign(key, good, "1.5.1", nil)
	c.publish(again.m, again.artefact, sensor.ID)
	if st := wait(again.m.Version, update.PhaseCommitted); st.Running != again.m.Version || st.Slot != "b" {
		t.Fatalf("1.5.1 committed as %+v", st)
	}
	lap(step, "then 1.5.1 ordered, installed and committed")
	if err := c.api("/api/sensors", &ss); err != nil || len(ss) != 1 || ss[0].Version != again.m.Version {
		t.Fatalf("the collector shows the sensors %+v (%v); want one running %s", ss, err, again.m.Version)
	}
	t.Logf("%d power-ons of the box", b.boots)
}

// corrupt flips one byte of a file at off.
func corrupt(t *testing.T, path string, off int64) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var one [1]byte
	f.ReadAt(one[:], off)
	one[0] ^= 0xff
	if _, err := f.WriteAt(one[:], off); err != nil {
		t.Fatal(err)
	}
}

// randomizeRoot writes a copy of r's artefact whose root part is random
// bytes and returns its path.
func randomizeRoot(t *testing.T, r release) string {
	b, err := os.ReadFile(r.artefact)
	if err != nil {
		t.Fatal(err)
	}
	root := r.m.Parts[0]
	if root.Name != update.PartRoot {
		t.Fatalf("first part of %s is %q, not the root", r.artefact, root.Name)
	}
	rand.Read(b[root.Offset : root.Offset+root.Size])
	path := filepath.Join(t.TempDir(), "random-root.upd")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// rehash sets the manifest's hashes to the artefact's content.
func rehash(t *testing.T, m *update.Manifest, artefact string) {
	st, err := os.Stat(artefact)
	if err != nil {
		t.Fatal(err)
	}
	m.Size, m.SHA256 = st.Size(), hashRange(t, artefact, 0, st.Size())
	for i, p := range m.Parts {
		m.Parts[i].SHA256 = hashRange(t, artefact, p.Offset, p.Size)
	}
}

// post sends an authenticated POST to gokrazy's HTTP API.
func (v *vm) post(ctx context.Context, pw, path string) error {
	for {
		req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+v.httpAddr+path, nil)
		req.SetBasicAuth("gokrazy", pw)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s", resp.Status)
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(2 * time.Second):
		}
	}
}
