package board

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestGokrazyInstancesSniffProfile checks that each gokrazy instance starts
// the sensor on the sniffing interfaces that every board profile running its
// image names and keeps gokrazy's own console off the serial port those
// profiles give to the set-up console (two readers on one UART would each get half the keystrokes), so
// the image and the profile cannot drift apart.
func TestGokrazyInstancesSniffProfile(t *testing.T) {
	instances := map[string]string{"arm64": "arm64-efi", "rpi4": "rpi4"}
	for dir, name := range instances {
		t.Run(dir, func(t *testing.T) {
			path := filepath.Join("..", "gokrazy", dir, "config.json")
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("instance config: %v", err)
			}
			var cfg struct {
				SerialConsole string
				PackageConfig map[string]struct{ CommandLineFlags []string }
			}
			if err := json.Unmarshal(b, &cfg); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			// Every profile that runs this image must agree with it.
			for _, pn := range Names() {
				p, _ := Lookup(pn)
				if p.Image != name {
					continue
				}
				flags := cfg.PackageConfig["github.com/passivesensor/sensor/cmd/sensor"].CommandLineFlags
				i := slices.Index(flags, "-i")
				if i < 0 || i+1 >= len(flags) {
					t.Fatalf("%s: sensor has no -i flag: %q", path, flags)
				}
				if got, want := flags[i+1], strings.Join(p.Sniff, ","); got != want {
					t.Errorf("%s: sensor sniffs %q, profile %q says %q", path, got, pn, want)
				}
				console, _, _ := strings.Cut(cfg.SerialConsole, ",")
				if console == "" || (p.Serial != "" && "/dev/"+console == p.Serial) {
					t.Errorf("%s: gokrazy's console %q is on the set-up console's port %q (profile %q): set it to \"disabled\" or another port", path, cfg.SerialConsole, p.Serial, pn)
				}
			}
			for _, cmd := range []string{"serialconsole", "lcdmenu", "netcfgd"} {
				if _, ok := cfg.PackageConfig["github.com/passivesensor/sensor/cmd/"+cmd]; !ok {
					t.Errorf("%s: no PackageConfig for cmd/%s", path, cmd)
				}
			}
		})
	}
}
