// Command variant derives a gokrazy instance from one of gokrazy/, with
// packages' command lines changed or packages added, so that make
// e2e-update can build releases that are broken the way real releases
// break: a sensor that exits at start, a program that hangs the box.
//
//	go run ./e2e/variant -from gokrazy/arm64 -o out/variants/sensor-exits/arm64 \
//	    -flags 'github.com/passivesensor/sensor/cmd/sensor=-config /etc/sensor/classes.json'
//	go run ./e2e/variant -from gokrazy/arm64 -o out/variants/hang/arm64 \
//	    -add github.com/passivesensor/sensor/e2e/hang
//
// The copy's build directories point at this working tree by absolute path
// (the originals use paths relative to where they lie).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, " ") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	from := flag.String("from", "", "gokrazy instance directory to start from (holds config.json and builddir)")
	out := flag.String("o", "", "directory of the new instance (replaced)")
	var flags, adds list
	flag.Var(&flags, "flags", "PACKAGE=ARGS: append the space-separated ARGS to the package's command line (repeat)")
	flag.Var(&adds, "add", "PACKAGE of this module to add to the instance (repeat)")
	flag.Parse()
	if *from == "" || *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := derive(*from, *out, flags, adds); err != nil {
		fmt.Fprintln(os.Stderr, "variant:", err)
		os.Exit(1)
	}
}

// replaceLine is a go.mod replace directive to a relative directory.
var replaceLine = regexp.MustCompile(`(?m)^(replace\s+\S+\s+=>\s+)(\.\.?/\S*)[ \t]*$`)

func derive(from, out string, flags, adds []string) error {
	from, err := filepath.Abs(from)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	// Copy the instance, making relative replace directives absolute.
	err = filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		dst := filepath.Join(out, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if d.Name() == "go.mod" {
			b = absReplace(b, filepath.Dir(path))
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(out, "config.json")
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		return err
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf("%s: %w", cfgPath, err)
	}
	pkgs, _ := cfg["Packages"].([]any)
	pkgCfg, _ := cfg["PackageConfig"].(map[string]any)
	if pkgCfg == nil {
		pkgCfg = map[string]any{}
		cfg["PackageConfig"] = pkgCfg
	}
	for _, f := range flags {
		pkg, args, ok := strings.Cut(f, "=")
		if !ok || pkg == "" {
			return fmt.Errorf("-flags %q: want PACKAGE=ARGS", f)
		}
		pc, _ := pkgCfg[pkg].(map[string]any)
		if pc == nil {
			pc = map[string]any{}
			pkgCfg[pkg] = pc
		}
		cl, _ := pc["CommandLineFlags"].([]any)
		for _, a := range strings.Fields(args) {
			cl = append(cl, a)
		}
		pc["CommandLineFlags"] = cl
	}
	for _, pkg := range adds {
		pkgs = append(pkgs, pkg)
		if err := addBuildDir(out, pkg); err != nil {
			return err
		}
	}
	cfg["Packages"] = pkgs
	b, err = json.MarshalIndent(cfg, "", "    ")
	if err != nil {
		return err
	}
	return os.WriteFile(cfgPath, append(b, '\n'), 0o644)
}

func absReplace(gomod []byte, dir string) []byte {
	return replaceLine.ReplaceAllFunc(gomod, func(line []byte) []byte {
		m := replaceLine.FindSubmatch(line)
		return []byte(string(m[1]) + filepath.Join(dir, string(m[2])))
	})
}

// addBuildDir gives a package of this module the build directory that the
// instance's other packages of this module have.
func addBuildDir(instance, pkg string) error {
	mod, err := modulePath()
	if err != nil {
		return err
	}
	if pkg != mod && !strings.HasPrefix(pkg, mod+"/") {
		return fmt.Errorf("-add %s: only packages of %s can be added", pkg, mod)
	}
	builddir := filepath.Join(instance, "builddir")
	var src string
	filepath.WalkDir(filepath.Join(builddir, filepath.FromSlash(mod)), func(path string, d fs.DirEntry, err error) error {
		if err == nil && src == "" && d.Name() == "go.mod" {
			src = filepath.Dir(path)
		}
		return nil
	})
	if src == "" {
		return fmt.Errorf("%s has no build directory of a package of %s to copy", builddir, mod)
	}
	dst := filepath.Join(builddir, filepath.FromSlash(pkg))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, f := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, f), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// modulePath reads the module path from go.mod in the working directory.
func modulePath() (string, error) {
	b, err := os.ReadFile("go.mod")
	if err != nil {
		return "", fmt.Errorf("run from the repository root: %w", err)
	}
	m := regexp.MustCompile(`(?m)^module\s+(\S+)`).FindSubmatch(b)
	if m == nil {
		return "", fmt.Errorf("go.mod names no module")
	}
	return string(m[1]), nil
}
