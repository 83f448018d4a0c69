//go:build e2e

package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
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

	"context"
	"crypto/ed25519"

	"github.com/passivesensor/sensor/settings"
	"github.com/passivesensor/sensor/update"
)

var (
	releaseDir = flag.String("release", "", "directory make release wrote the update artefact to (default ../out/release)")
	releaseKey = flag.String("release-key", "", "release key the image trusts (default ../out/release-dev.key)")
	updateTo   = flag.String("update-version", "1.1.0", "version of the artefact in -release")
	stepLimit  = flag.Duration("step_timeout", 8*time.Minute, "how long one update scenario may take")
)

// cloud is the update side of the cloud as the box sees it at
// https://10.0.2.2:PORT (qemu's user network reaches the host's loopback
// there): the manifest it orders, the artefacts, and the box's reports.
type cloud struct {
	t        *testing.T
	mu       sync.Mutex
	manifest []byte // JSON; nil: nothing ordered
	files    map[string][]byte
	reports  []map[string]string
	port     int
	caPEM    []byte
	key      ed25519.PrivateKey
	requests map[string]int // artefact GETs with a Range header
}

func newCloud(t *testing.T, key ed25519.PrivateKey) *cloud {
	c := &cloud{t: t, files: map[string][]byte{}, key: key, requests: map[string]int{}}
	cert, pemBytes := selfSigned(t)
	c.caPEM = pemBytes
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	c.port = ln.Addr().(*net.TCPAddr).Port
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/update/manifest", func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		m := c.manifest
		c.mu.Unlock()
		if m == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(m)
	})
	mux.HandleFunc("GET /artefacts/{name}", func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		b, ok := c.files[r.PathValue("name")]
		if r.Header.Get("Range") != "" {
			c.requests[r.PathValue("name")]++
		}
		c.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, r.PathValue("name"), time.Unix(0, 0), bytes.NewReader(b))
	})
	mux.HandleFunc("POST /v1/update/report", func(w http.ResponseWriter, r *http.Request) {
		var rep map[string]string
		if err := json.NewDecoder(r.Body).Decode(&rep); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		c.reports = append(c.reports, rep)
		c.mu.Unlock()
		t.Logf("box reports: %v", rep)
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return c
}

// url is how the box reaches path on the cloud.
func (c *cloud) url(path string) string { return fmt.Sprintf("https://10.0.2.2:%d%s", c.port, path) }

// order publishes artefact under name and orders m (re-signed for the URL
// the box uses, unless keepSignature).
func (c *cloud) order(name string, artefact []byte, m update.Manifest, resign bool) {
	m.URL = c.url("/artefacts/" + name)
	if resign {
		m.Sign(c.key)
	}
	b, _ := json.Marshal(m)
	c.mu.Lock()
	c.files[name] = artefact
	c.manifest = b
	c.mu.Unlock()
}

// waitReport waits for a report of version in phase.
func (c *cloud) waitReport(ctx context.Context, version, phase string) (map[string]string, error) {
	for {
		c.mu.Lock()
		for _, r := range c.reports {
			if r["version"] == version && r["phase"] == phase {
				c.mu.Unlock()
				return r, nil
			}
		}
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no %q report for %s: %w", phase, version, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

func (c *cloud) phases(version string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, r := range c.reports {
		if r["version"] == version {
			out = append(out, r["phase"])
		}
	}
	return out
}

func selfSigned(t *testing.T) (tls.Certificate, []byte) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test cloud"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("10.0.2.2"), net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// permOffset finds where /perm (GPT partition 4) starts in a disk image.
func permOffset(t *testing.T, img string) int64 {
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
	size := int64(binary.LittleEndian.Uint32(hdr[84:]))
	e := make([]byte, 128)
	f.ReadAt(e, entries*512+3*size)
	return int64(binary.LittleEndian.Uint64(e[32:])) * 512
}

// writePerm puts files into the image's /perm (ext4), as a technician's
// earlier set-up would have left them.
func writePerm(t *testing.T, img string, files map[string][]byte) {
	if _, err := exec.LookPath("debugfs"); err != nil {
		t.Skip("debugfs not installed (apt-get install e2fsprogs)")
	}
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

// TestUpdate drives the A/B updater in the booted image from outside, as
// the cloud would: a good update installs, reboots into the other slot,
// proves healthy and commits; an update whose root is random bytes panics
// on trial and the box comes back on the committed version by itself; a
// forged manifest is refused without writing anything.
func TestUpdate(t *testing.T) {
	img := requireTools(t)
	dir := *releaseDir
	if dir == "" {
		dir = filepath.Join(filepath.Dir(img), "release")
	}
	keyPath := *releaseKey
	if keyPath == "" {
		keyPath = filepath.Join(filepath.Dir(img), "release-dev.key")
	}
	key := readKeyFile(t, keyPath)
	base := fmt.Sprintf("sensor-%s-arm64-efi", *updateTo)
	artefact, err := os.ReadFile(filepath.Join(dir, base+".upd"))
	if err != nil {
		t.Skipf("update artefact missing (make e2e-update builds it): %v", err)
	}
	var good update.Manifest
	if b, err := os.ReadFile(filepath.Join(dir, base+".json")); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(b, &good); err != nil {
		t.Fatal(err)
	}

	// The box: a copy of the image (the boxes' disk), set up with the
	// cloud's URL and CA in /perm.
	disk := filepath.Join(t.TempDir(), "disk.img")
	if out, err := exec.Command("cp", "--sparse=always", img, disk).CombinedOutput(); err != nil {
		t.Fatalf("copy image: %v: %s", err, out)
	}
	c := newCloud(t, key)
	s := settings.Defaults()
	s.CloudURL = c.url("")
	sj, err := settings.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	writePerm(t, disk, map[string][]byte{"sensor/settings.json": sj, "sensor/cloud-ca.pem": c.caPEM})

	// 1. A good update, ordered before the box starts.
	c.order(base+".upd", artefact, good, true)
	start := time.Now()
	v := bootWith(t, disk, bootOpts{persistent: true, watchdog: true})
	pw, err := httpPassword(img)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *stepLimit)
	defer cancel()
	if _, err := c.waitReport(ctx, good.Version, update.PhaseArmed); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s downloaded, written to slot b, verified and armed %v after power-on", good.Version, time.Since(start).Round(time.Second))
	if _, err := c.waitReport(ctx, good.Version, update.PhaseCommitted); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s booted on trial, proved healthy and committed %v after power-on; reports %v",
		good.Version, time.Since(start).Round(time.Second), c.phases(good.Version))
	// The kernel prints its command line on the UART (firmware console).
	if b, _ := os.ReadFile(v.uartLog); !regexp.MustCompile(`root=PARTUUID=\S+/PARTNROFF=2`).Match(b) {
		t.Fatalf("the kernel never ran from slot b: no root=.../PARTNROFF=2 in %s", v.uartLog)
	}

	// 2. An update whose root is random bytes: the trial kernel cannot
	// mount it and panics; panic=10 reboots, and the firmware starts the
	// committed slot again.
	bad := bytes.Clone(artefact)
	rootPart := good.Parts[0]
	rand.Read(bad[rootPart.Offset : rootPart.Offset+rootPart.Size])
	badM := good
	badM.Version = "1.2.0"
	badM.Parts = append([]update.Part{}, good.Parts...)
	badM.Parts[0].SHA256 = sha(bad[rootPart.Offset : rootPart.Offset+rootPart.Size])
	badM.SHA256 = sha(bad)
	c.order("sensor-1.2.0-arm64-efi.upd", bad, badM, true)
	step := time.Now()
	// The updater asks at start: reboot the box through gokrazy's API.
	ctx2, cancel2 := context.WithTimeout(context.Background(), *stepLimit)
	defer cancel2()
	if err := v.post(ctx2, pw, "/reboot"); err != nil {
		t.Fatalf("reboot through gokrazy: %v", err)
	}
	if _, err := c.waitReport(ctx2, "1.2.0", update.PhaseArmed); err != nil {
		t.Fatal(err)
	}
	if _, err := c.waitReport(ctx2, "1.2.0", update.PhaseRolledBack); err != nil {
		t.Fatal(err)
	}
	t.Logf("1.2.0 (random root) armed, panicked on trial and was reported rolled back %v after it was ordered; reports %v",
		time.Since(step).Round(time.Second), c.phases("1.2.0"))

	// 3. A forged manifest: refused before a byte is written.
	forged := good
	forged.Version = "1.3.0"
	forged.URL = c.url("/artefacts/sensor-1.3.0-arm64-efi.upd")
	_, attacker, _ := ed25519.GenerateKey(rand.Reader)
	forged.Sign(attacker) // not the release key
	c.order("sensor-1.3.0-arm64-efi.upd", artefact, forged, false)
	step = time.Now()
	if err := v.post(ctx2, pw, "/reboot"); err != nil {
		t.Fatalf("reboot through gokrazy: %v", err)
	}
	rep, err := c.waitReport(ctx2, "1.3.0", update.PhaseFailed)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rep["detail"], "signature") || rep["running"] != good.Version {
		t.Fatalf("forged manifest report %v: want a signature failure while running %s", rep, good.Version)
	}
	t.Logf("forged 1.3.0 refused %v after it was ordered: %s", time.Since(step).Round(time.Second), rep["detail"])
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
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
