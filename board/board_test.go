package board

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"
)

func TestDetectFS(t *testing.T) {
	tests := []struct {
		name     string
		files    fstest.MapFS
		override string
		want     string // profile name; "" means an error is expected
	}{
		{
			name:  "pi4 device tree with NUL terminator",
			files: fstest.MapFS{"proc/device-tree/model": {Data: []byte("Raspberry Pi 4 Model B Rev 1.4\x00")}},
			want:  "rpi4",
		},
		{
			name:  "cm4 device tree",
			files: fstest.MapFS{"proc/device-tree/model": {Data: []byte("Raspberry Pi Compute Module 4 Rev 1.0\x00")}},
			want:  "rpi4",
		},
		{
			name:  "qemu virt booted with a device tree",
			files: fstest.MapFS{"proc/device-tree/model": {Data: []byte("linux,dummy-virt\x00")}},
			want:  "arm64-efi",
		},
		{
			name: "EFI/ACPI box (qemu virt with AAVMF)",
			files: fstest.MapFS{
				"sys/class/dmi/id/product_name": {Data: []byte("QEMU KVM Virtual Machine\n")},
			},
			want: "arm64-efi",
		},
		{
			name:     "override wins over the device tree",
			files:    fstest.MapFS{"proc/device-tree/model": {Data: []byte("Raspberry Pi 4 Model B Rev 1.4\x00")}},
			override: "arm64-efi",
			want:     "arm64-efi",
		},
		{
			name: "override file on /perm wins over DMI",
			files: fstest.MapFS{
				"sys/class/dmi/id/product_name": {Data: []byte("QEMU KVM Virtual Machine\n")},
				"perm/board":                    {Data: []byte("qemu-panel\n")},
			},
			want: "qemu-panel",
		},
		{
			name:     "environment wins over the override file",
			files:    fstest.MapFS{"perm/board": {Data: []byte("qemu-panel\n")}},
			override: "arm64-efi",
			want:     "arm64-efi",
		},
		{
			name: "empty override file is no override",
			files: fstest.MapFS{
				"proc/device-tree/model": {Data: []byte("Raspberry Pi 4 Model B Rev 1.4\x00")},
				"perm/board":             {Data: []byte("\n")},
			},
			want: "rpi4",
		},
		{
			name: "unknown name in the override file",
			files: fstest.MapFS{
				"proc/device-tree/model": {Data: []byte("Raspberry Pi 4 Model B Rev 1.4\x00")},
				"perm/board":             {Data: []byte("rpi5\n")},
			},
		},
		{
			name:  "unknown device tree board",
			files: fstest.MapFS{"proc/device-tree/model": {Data: []byte("Pine64 RockPro64 v2.1\x00")}},
		},
		{
			name:  "nothing to identify the machine",
			files: fstest.MapFS{},
		},
		{
			name:     "unknown override",
			files:    fstest.MapFS{},
			override: "rpi5",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := DetectFS(tt.files, tt.override)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("DetectFS = %q, want an error", p.Name)
				}
				return
			}
			if err != nil {
				t.Fatalf("DetectFS: %v", err)
			}
			if p.Name != tt.want {
				t.Fatalf("DetectFS = %q, want %q", p.Name, tt.want)
			}
		})
	}
}

// TestOverrideFileError names the file when it holds an unknown profile,
// so a technician knows what to fix.
func TestOverrideFileError(t *testing.T) {
	_, err := DetectFS(fstest.MapFS{"perm/board": {Data: []byte("rpi5\n")}}, "")
	if err == nil || !strings.Contains(err.Error(), "/perm/board") || !strings.Contains(err.Error(), `"rpi5"`) {
		t.Fatalf("err = %v, want one naming /perm/board and rpi5", err)
	}
}

func TestDetectFSUnknownIsErrUnknownBoard(t *testing.T) {
	_, err := DetectFS(fstest.MapFS{}, "")
	if !errors.Is(err, ErrUnknownBoard) {
		t.Fatalf("err = %v, want ErrUnknownBoard", err)
	}
}

func TestProfilesComplete(t *testing.T) {
	for _, name := range Names() {
		p, err := Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		if p.Name != name || p.Model == "" || p.Mgmt == "" || len(p.Sniff) == 0 {
			t.Errorf("profile %q incomplete: %+v", name, p)
		}
		// The image a profile runs is built for a profile of that name,
		// which runs it too.
		if img, err := Lookup(p.Image); err != nil || img.Image != p.Image {
			t.Errorf("profile %q runs image %q, which no profile of its own describes (%v)", name, p.Image, err)
		}
		if p.LCD != nil && p.LCD.Bus == "" && p.PanelPort == "" {
			t.Errorf("profile %q: LCD on neither an I2C bus nor a panel port", name)
		}
		for _, s := range p.Sniff {
			if s == p.Mgmt {
				t.Errorf("profile %q sniffs on its management interface %q", name, s)
			}
		}
		if p.LCD != nil && (p.LCD.Addr == 0 || p.LCD.Addr > 0x7f || p.LCD.Cols <= 0 || p.LCD.Rows <= 0) {
			t.Errorf("profile %q: bad LCD %+v", name, *p.LCD)
		}
		seen := map[int]string{}
		for b, line := range p.Buttons {
			if other, ok := seen[line]; ok {
				t.Errorf("profile %q: buttons %q and %q share GPIO line %d", name, b, other, line)
			}
			seen[line] = b
		}
	}
}

func TestLookupReturnsCopy(t *testing.T) {
	p, err := Lookup("rpi4")
	if err != nil {
		t.Fatal(err)
	}
	p.Sniff[0] = "changed"
	p.LCD.Addr = 1
	p.Buttons["up"] = -1
	q, _ := Lookup("rpi4")
	if q.Sniff[0] == "changed" || q.LCD.Addr == 1 || q.Buttons["up"] == -1 {
		t.Fatalf("Lookup handed out the shared table: %+v", q)
	}
}

func TestRpi4LCD(t *testing.T) {
	p, _ := Lookup("rpi4")
	if p.LCD == nil || p.LCD.Bus != "1" || p.LCD.Addr != 0x27 {
		t.Fatalf("rpi4 LCD = %+v, want I2C bus 1 address 0x27", p.LCD)
	}
}

// TestButtonsComplete checks that every profile with buttons names all five
// front-panel buttons, on distinct lines, with a chip to find them on.
func TestButtonsComplete(t *testing.T) {
	for _, n := range Names() {
		p, _ := Lookup(n)
		if len(p.Buttons) == 0 {
			continue
		}
		if p.GPIOChip == "" {
			t.Errorf("%s: buttons but no GPIOChip", n)
		}
		seen := map[int]string{}
		for _, b := range ButtonNames {
			line, ok := p.Buttons[b]
			if !ok {
				t.Errorf("%s: no %q button", n, b)
				continue
			}
			if o, dup := seen[line]; dup {
				t.Errorf("%s: %s and %s share GPIO line %d", n, o, b, line)
			}
			seen[line] = b
		}
		if len(p.Buttons) != len(ButtonNames) {
			t.Errorf("%s: %d buttons, want %d", n, len(p.Buttons), len(ButtonNames))
		}
	}
}
