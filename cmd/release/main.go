// Command release makes the signed update artefacts the cloud hands to
// sensors: one artefact per board and version (the root file system and
// the slot's boot files, one after the other) and its manifest, signed
// with the release key.
//
//	release keygen -o release.key          # prints the public key
//	release sign -key release.key -board arm64-efi -version 1.4.0 \
//	    -root root.squashfs -boot vmlinuz=out/vmlinuz -url https://cdn.example/u/ -o out/release
//	collector -data DIR update publish -manifest out/release/sensor-1.4.0-arm64-efi.json \
//	    -artefact out/release/sensor-1.4.0-arm64-efi.upd     # serve it from the reference cloud
//	release verify -pub HEX -board arm64-efi -running 1.3.0 out/release/sensor-1.4.0-arm64-efi.json
//
// The private key is 32 bytes of seed, hex, in a file only the release
// machine holds; sensors carry the public key.
package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/passivesensor/sensor/update"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "keygen":
		err = keygen(os.Args[2:])
	case "sign":
		err = sign(os.Args[2:])
	case "pub":
		err = pubkey(os.Args[2:])
	case "disk":
		err = disk(os.Args[2:])
	case "verify":
		err = verify(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: release keygen|pub|sign|disk|verify [flags] (release CMD -h for flags)")
	os.Exit(2)
}

func keygen(args []string) error {
	fs := flag.NewFlagSet("keygen", flag.ExitOnError)
	out := fs.String("o", "release.key", "file to write the private key to (must not exist)")
	fs.Parse(args)
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return err
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(f, hex.EncodeToString(seed)); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	fmt.Println(hex.EncodeToString(pub))
	return nil
}

// pubkey prints the public half of a release key, hex: what the image
// carries in /etc/sensor/release.pub.
func pubkey(args []string) error {
	fs := flag.NewFlagSet("pub", flag.ExitOnError)
	keyFile := fs.String("key", "release.key", "release key file")
	fs.Parse(args)
	key, err := readKey(*keyFile)
	if err != nil {
		return err
	}
	fmt.Println(hex.EncodeToString(key.Public().(ed25519.PublicKey)))
	return nil
}

// ReadKey reads a private key file written by keygen.
func readKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	seed, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%s: not a release key (want %d bytes of hex seed)", path, ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

type bootFlags []string

func (b *bootFlags) String() string     { return strings.Join(*b, ",") }
func (b *bootFlags) Set(s string) error { *b = append(*b, s); return nil }

func sign(args []string) error {
	fs := flag.NewFlagSet("sign", flag.ExitOnError)
	keyFile := fs.String("key", "", "release key file")
	board := fs.String("board", "", "board profile the image is built for")
	version := fs.String("version", "", "version the artefact installs")
	root := fs.String("root", "", "root file system image (squashfs)")
	urlBase := fs.String("url", "", "URL prefix the artefact will be served under (not signed; a collector that publishes it serves it from its own URL)")
	floor := fs.String("floor", "", "lowest version sensors may run from now on")
	downgrade := fs.Bool("downgrade", false, "order a downgrade (the version is older than what sensors run)")
	outDir := fs.String("o", ".", "output directory")
	var boots bootFlags
	fs.Var(&boots, "boot", "NAME=FILE boot file of the slot (repeat); the kernel is vmlinuz")
	fs.Parse(args)
	if *keyFile == "" || *board == "" || *version == "" || *root == "" {
		return fmt.Errorf("sign needs -key, -board, -version and -root")
	}
	key, err := readKey(*keyFile)
	if err != nil {
		return err
	}
	type src struct{ name, path string }
	srcs := []src{{update.PartRoot, *root}}
	for _, b := range boots {
		name, path, ok := strings.Cut(b, "=")
		if !ok || name == "" || path == "" {
			return fmt.Errorf("-boot %q: want NAME=FILE", b)
		}
		srcs = append(srcs, src{"boot/" + name, path})
	}
	if err := os.MkdirAll(*outDir, 0o755); err != nil {
		return err
	}
	base := fmt.Sprintf("sensor-%s-%s", *version, *board)
	artefact := filepath.Join(*outDir, base+".upd")
	out, err := os.Create(artefact)
	if err != nil {
		return err
	}
	defer out.Close()
	whole := sha256.New()
	m := update.Manifest{Version: *version, Board: *board, Floor: *floor, Downgrade: *downgrade}
	if *urlBase != "" {
		m.URL = strings.TrimSuffix(*urlBase, "/") + "/" + base + ".upd"
	}
	var off int64
	for _, s := range srcs {
		f, err := os.Open(s.path)
		if err != nil {
			return err
		}
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(out, whole, h), f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", s.path, err)
		}
		m.Parts = append(m.Parts, update.Part{Name: s.name, Offset: off, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))})
		off += n
	}
	if err := out.Sync(); err != nil {
		return err
	}
	m.Size, m.SHA256 = off, hex.EncodeToString(whole.Sum(nil))
	m.Sign(key)
	pub := key.Public().(ed25519.PublicKey)
	// Check what we sign as a sensor would (any running version older).
	if err := m.Check(pub, *board, "0"); err != nil && !*downgrade {
		return fmt.Errorf("the manifest does not pass the sensor's checks: %w", err)
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(filepath.Join(*outDir, base+".json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Printf("%s (%d bytes) and %s.json signed by %s\n", artefact, off, base, hex.EncodeToString(pub))
	return nil
}

func verify(args []string) error {
	fs := flag.NewFlagSet("verify", flag.ExitOnError)
	pubHex := fs.String("pub", "", "release public key, hex")
	board := fs.String("board", "", "board of the box")
	running := fs.String("running", "0", "version the box runs")
	fs.Parse(args)
	if fs.NArg() != 1 {
		return fmt.Errorf("verify takes one manifest file")
	}
	pub, err := hex.DecodeString(*pubHex)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("-pub: want %d bytes of hex", ed25519.PublicKeySize)
	}
	b, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	var m update.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	if err := m.Check(pub, *board, *running); err != nil {
		return err
	}
	fmt.Printf("%s: version %s for %s, %d bytes, signature good\n", fs.Arg(0), m.Version, m.Board, m.Size)
	return nil
}
