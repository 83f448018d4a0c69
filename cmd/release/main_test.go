package main

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/passivesensor/sensor/update"
)

// sign writes an artefact and manifest that the sensor's checks accept,
// and whose parts are where the manifest says.
func TestSignAndVerify(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "k")
	if err := keygen([]string{"-o", key}); err != nil {
		t.Fatal(err)
	}
	if err := keygen([]string{"-o", key}); err == nil {
		t.Fatal("keygen overwrote an existing key")
	}
	root := filepath.Join(dir, "root.squashfs")
	kern := filepath.Join(dir, "vmlinuz")
	os.WriteFile(root, []byte("root file system"), 0o644)
	os.WriteFile(kern, []byte("kernel"), 0o644)
	out := filepath.Join(dir, "out")
	if err := sign([]string{"-key", key, "-board", "arm64-efi", "-version", "1.2.0", "-root", root,
		"-boot", "vmlinuz=" + kern, "-url", "https://cdn.example/u/", "-o", out}); err != nil {
		t.Fatal(err)
	}
	priv, err := readKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pub := hex.EncodeToString(priv.Public().(ed25519.PublicKey))
	mf := filepath.Join(out, "sensor-1.2.0-arm64-efi.json")
	if err := verify([]string{"-pub", pub, "-board", "arm64-efi", "-running", "1.1.0", mf}); err != nil {
		t.Fatal(err)
	}
	if err := verify([]string{"-pub", pub, "-board", "rpi4", "-running", "1.1.0", mf}); !errors.Is(err, update.ErrBoard) {
		t.Fatalf("verify for another board: %v", err)
	}
	b, _ := os.ReadFile(mf)
	var m update.Manifest
	json.Unmarshal(b, &m)
	art, _ := os.ReadFile(filepath.Join(out, "sensor-1.2.0-arm64-efi.upd"))
	if m.Size != int64(len(art)) || string(art[m.Parts[1].Offset:]) != "kernel" || m.URL != "https://cdn.example/u/sensor-1.2.0-arm64-efi.upd" {
		t.Fatalf("manifest %+v does not describe the artefact %q", m, art)
	}
	m.Version = "9.9.9"
	b, _ = json.Marshal(m)
	os.WriteFile(mf, b, 0o644)
	if err := verify([]string{"-pub", pub, "-board", "arm64-efi", "-running", "1.1.0", mf}); !errors.Is(err, update.ErrSignature) {
		t.Fatalf("verify of an edited manifest: %v", err)
	}
}
