// Package update installs signed software updates on the inactive A/B slot
// of the appliance, boots the new slot once on trial, and commits it only
// after it proved healthy; a trial that fails, hangs or panics falls back to
// the previous slot by itself, because the trial is a one-shot boot and the
// default stays on the old slot until the commit.
//
// The order of an install never changes: fetch the artefact to a staging
// file (resuming an interrupted download), verify its size, SHA-256 and the
// manifest's Ed25519 signature, and only then write the inactive slot;
// flush, read the slot back and hash it again, and only then arm the trial.
// The running slot's files are never written.
package update

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Manifest is what the cloud sends to order an update. Every field but
// URL and Signature is signed by the release key.
//
// The URL is left out of the signature on purpose: the artefact is served
// by whichever cloud the box reports to (the reference collector serves it
// from its own endpoint), and that cloud does not hold the release key. The
// URL protects nothing: the box checks the signed size and SHA-256 of what
// it downloaded (and of every part) before it writes a byte, so a changed
// URL can at worst make the download fail, which anyone on the path could
// do anyway. Version, board, size, hash, floor, downgrade and parts stay
// signed.
type Manifest struct {
	Version string `json:"version"` // the version the artefact installs
	Board   string `json:"board"`   // board profile name the image is built for
	URL     string `json:"url"`     // where to download the artefact (not signed)
	Size    int64  `json:"size"`    // artefact size in bytes
	SHA256  string `json:"sha256"`  // artefact hash, lowercase hex
	// Floor is the lowest version the box may ever run from now on; an
	// artefact older than the running version is refused unless Downgrade
	// is set, and one below Floor is refused always.
	Floor     string `json:"floor,omitempty"`
	Downgrade bool   `json:"downgrade,omitempty"`
	// Parts say where each piece lies inside the artefact.
	Parts     []Part `json:"parts"`
	Signature string `json:"signature,omitempty"` // base64 Ed25519 over SignedBytes
}

// Part is one piece of the artefact: the root file system ("root") or a
// boot file ("boot/NAME": the slot's kernel, device tree, ...).
type Part struct {
	Name   string `json:"name"`
	Offset int64  `json:"offset"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// PartRoot names the root file system part.
const PartRoot = "root"

// signingContext separates these signatures from any other use of the key
// and names the signed encoding: v2 covers every field but URL and
// Signature (v1 covered the URL too; a v1 signature does not verify).
const signingContext = "passivesensor update manifest v2\n"

// SignedBytes returns the bytes the signature covers: a fixed context line
// and the manifest with URL and Signature emptied as JSON (encoding/json
// writes struct fields in declaration order, so the encoding is stable).
func (m Manifest) SignedBytes() []byte {
	m.URL, m.Signature = "", ""
	b, err := json.Marshal(m)
	if err != nil {
		panic(err) // a struct of strings and integers always marshals
	}
	return append([]byte(signingContext), b...)
}

// Sign sets m.Signature with the release key.
func (m *Manifest) Sign(key ed25519.PrivateKey) {
	m.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, m.SignedBytes()))
}

// Errors the checks return; each is wrapped with the offending values.
var (
	ErrSignature = errors.New("manifest signature does not verify with the release key")
	ErrBoard     = errors.New("update is for another board")
	ErrVersion   = errors.New("update version refused")
	ErrManifest  = errors.New("manifest is malformed")
	ErrHash      = errors.New("artefact hash does not match the manifest")
	ErrSize      = errors.New("artefact size does not match the manifest")
	// ErrDownload is a download that stopped part-way (connection lost,
	// stalled, or the server failing for now): what arrived is kept and
	// the next attempt resumes from there.
	ErrDownload = errors.New("download interrupted")
)

// MaxArtefactSize bounds what the box agrees to download and write: two
// root slots of gokrazy's layout are 500 MiB each.
const MaxArtefactSize = 1 << 30

// Check verifies the signature and that the manifest may be installed on a
// box of board running version running: same board, newer version (or an
// explicit signed downgrade not below the floor), well-formed parts.
func (m Manifest) Check(pub ed25519.PublicKey, board, running string) error {
	sig, err := base64.StdEncoding.DecodeString(m.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, m.SignedBytes(), sig) {
		return fmt.Errorf("update %s: %w", m.Version, ErrSignature)
	}
	if m.Board != board {
		return fmt.Errorf("update %s is built for board %q, this box is %q: %w", m.Version, m.Board, board, ErrBoard)
	}
	if !validVersion(m.Version) {
		return fmt.Errorf("update version %q is not 1 to 64 letters, digits and .+-_: %w", m.Version, ErrManifest)
	}
	if m.Floor != "" && CompareVersions(m.Version, m.Floor) < 0 {
		return fmt.Errorf("update %s is below the version floor %s: %w", m.Version, m.Floor, ErrVersion)
	}
	switch c := CompareVersions(m.Version, running); {
	case c == 0:
		return fmt.Errorf("update %s is the running version: %w", m.Version, ErrVersion)
	case c < 0 && !m.Downgrade:
		return fmt.Errorf("update %s is older than the running %s and the cloud did not order a downgrade: %w", m.Version, running, ErrVersion)
	}
	if m.Size <= 0 || m.Size > MaxArtefactSize {
		return fmt.Errorf("update %s: size %d out of range (1..%d): %w", m.Version, m.Size, int64(MaxArtefactSize), ErrManifest)
	}
	if !isHash(m.SHA256) {
		return fmt.Errorf("update %s: sha256 %q is not 64 hex digits: %w", m.Version, m.SHA256, ErrManifest)
	}
	root := false
	seen := map[string]bool{}
	for _, p := range m.Parts {
		if p.Offset < 0 || p.Size <= 0 || p.Offset > m.Size || p.Size > m.Size-p.Offset || !isHash(p.SHA256) {
			return fmt.Errorf("update %s: part %q (offset %d, size %d) does not lie inside the %d-byte artefact or has no hash: %w",
				m.Version, p.Name, p.Offset, p.Size, m.Size, ErrManifest)
		}
		if seen[p.Name] {
			return fmt.Errorf("update %s: part %q twice: %w", m.Version, p.Name, ErrManifest)
		}
		seen[p.Name] = true
		switch {
		case p.Name == PartRoot:
			root = true
		case strings.HasPrefix(p.Name, "boot/") && validBootName(p.Name[len("boot/"):]):
		default:
			return fmt.Errorf("update %s: part name %q is neither %q nor boot/NAME: %w", m.Version, p.Name, PartRoot, ErrManifest)
		}
	}
	if !root {
		return fmt.Errorf("update %s has no root part: %w", m.Version, ErrManifest)
	}
	return nil
}

// validVersion accepts a version that fits a boot entry and a kernel
// command line as one word.
func validVersion(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".+-_", c)) {
			return false
		}
	}
	return true
}

// validBootName accepts a plain file name: no directories, no dot files.
func validBootName(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '.' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func isHash(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == 32 && strings.ToLower(s) == s
}

// CompareVersions orders versions such as "1.4.2", "v2026.11.3" or
// "1.5.0-rc2": dot-separated numbers compared numerically, a leading "v"
// ignored, and a pre-release suffix after '-' sorting before the release.
func CompareVersions(a, b string) int {
	a, b = strings.TrimPrefix(a, "v"), strings.TrimPrefix(b, "v")
	ar, apre, _ := strings.Cut(a, "-")
	br, bpre, _ := strings.Cut(b, "-")
	as, bs := strings.Split(ar, "."), strings.Split(br, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y string
		if i < len(as) {
			x = as[i]
		}
		if i < len(bs) {
			y = bs[i]
		}
		if c := compareField(x, y); c != 0 {
			return c
		}
	}
	switch {
	case apre == bpre:
		return 0
	case apre == "":
		return 1
	case bpre == "":
		return -1
	}
	return strings.Compare(apre, bpre)
}

func compareField(x, y string) int {
	xn, xerr := strconv.ParseUint(orZero(x), 10, 64)
	yn, yerr := strconv.ParseUint(orZero(y), 10, 64)
	if xerr == nil && yerr == nil {
		switch {
		case xn < yn:
			return -1
		case xn > yn:
			return 1
		}
		return 0
	}
	return strings.Compare(x, y)
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}
