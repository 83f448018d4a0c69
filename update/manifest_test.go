package update

import (
	"errors"
	"strings"
	"testing"
)

// Every field but URL and Signature is covered by the signature: changing
// any of them makes Check fail with ErrSignature; changing the URL does not.
func TestManifestSignedFields(t *testing.T) {
	_, good := newRelease("3.0.0", 1000).artefact(testBoard, "https://cdn.example/u/sensor-3.0.0.upd")
	if err := good.Check(testPub(), testBoard, "2.0.0"); err != nil {
		t.Fatalf("signed manifest: %v", err)
	}
	if !strings.HasPrefix(string(good.SignedBytes()), "passivesensor update manifest v2\n") {
		t.Fatalf("signed bytes do not start with the versioned context: %q", good.SignedBytes()[:40])
	}
	moved := good
	moved.URL = "https://collector.site.example:8443/v1/update/artefacts/x.upd"
	if err := moved.Check(testPub(), testBoard, "2.0.0"); err != nil {
		t.Fatalf("manifest with another URL: %v, want the signature to still verify", err)
	}
	cases := map[string]func(m *Manifest){
		"version":   func(m *Manifest) { m.Version = "3.0.1" },
		"board":     func(m *Manifest) { m.Board = "rpi4" },
		"size":      func(m *Manifest) { m.Size++ },
		"sha256":    func(m *Manifest) { m.SHA256 = m.Parts[0].SHA256 },
		"floor":     func(m *Manifest) { m.Floor = "1.0.0" },
		"downgrade": func(m *Manifest) { m.Downgrade = true },
		"part name": func(m *Manifest) { m.Parts[1].Name = "boot/other" },
		"part offset": func(m *Manifest) {
			m.Parts[1].Offset--
		},
		"part size": func(m *Manifest) { m.Parts[0].Size-- },
		"part hash": func(m *Manifest) { m.Parts[0].SHA256 = m.SHA256 },
		"part gone": func(m *Manifest) { m.Parts = m.Parts[:1] },
	}
	for name, change := range cases {
		m := good
		m.Parts = append([]Part(nil), good.Parts...)
		change(&m)
		if err := m.Check(testPub(), testBoard, "2.0.0"); !errors.Is(err, ErrSignature) {
			t.Errorf("%s changed after signing: Check says %v, want %v", name, err, ErrSignature)
		}
	}
}
