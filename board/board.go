// Package board describes the hardware boxes the sensor image runs on: which
// network interface manages the box, which ones sniff, where the serial
// console and the front-panel LCD sit, and which GPIO lines the buttons use.
//
// The profile is picked at run time from what the kernel says the machine is
// (/proc/device-tree/model on device-tree boards, /sys/class/dmi/id/product_name
// on EFI/ACPI boxes), unless the operator or a test names it: the
// SENSOR_BOARD environment variable, else the file /perm/board (one line,
// the profile's name), which survives reboots and updates.
package board

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// EnvOverride names the environment variable that forces a profile by name.
const EnvOverride = "SENSOR_BOARD"

// OverrideFile, when present, names the profile (one line) for every
// program of the box; EnvOverride wins over it.
const OverrideFile = "/perm/board"

// LCD says where an HD44780 character LCD behind a PCF8574 I2C backpack sits.
type LCD struct {
	Bus  string // I2C bus name as periph.io opens it, e.g. "1" for /dev/i2c-1
	Addr uint16 // 7-bit I2C address of the backpack
	Cols int    // characters per line
	Rows int    // lines
}

// Profile is what the software needs to know about one kind of box.
type Profile struct {
	Name  string // short identifier, the value SENSOR_BOARD takes
	Model string // human-readable description
	// Image is the board the box's image and its updates are built for
	// (the board of update manifests). Profiles that differ only in their
	// peripherals share one image.
	Image string

	// Mgmt is the management interface: DHCP or static IP, reaches the cloud.
	Mgmt string
	// Sniff lists the interfaces fed by the mirror port; never sent on.
	Sniff []string
	// Serial is the device of the set-up serial console ("" if none).
	Serial string
	// LCD is the front-panel display, nil if the box has none.
	LCD *LCD
	// Buttons maps a button name (ButtonUp, ButtonDown, ButtonLeft,
	// ButtonRight, ButtonSelect) to the GPIO line offset on GPIOChip; empty
	// if the box has none.
	Buttons map[string]int
	// GPIOChip is the GPIO character device the buttons are on, e.g. "gpiochip0".
	GPIOChip string
	// PanelPort names the virtio-serial port that carries the front panel
	// of a virtual machine whose LCD and buttons are emulated on its host:
	// the LCD's I2C transactions and the buttons' levels travel over it
	// (hw.PanelLink), and LCD.Bus and Buttons are unused. Real boards
	// leave it empty.
	PanelPort string
}

// The front-panel button names used in Profile.Buttons.
const (
	ButtonUp     = "up"
	ButtonDown   = "down"
	ButtonLeft   = "left"
	ButtonRight  = "right"
	ButtonSelect = "select"
)

// ButtonNames lists the five front-panel buttons in a fixed order.
var ButtonNames = []string{ButtonUp, ButtonDown, ButtonLeft, ButtonRight, ButtonSelect}

// Profiles known to this build, by name.
var profiles = map[string]Profile{
	"rpi4": {
		Name:  "rpi4",
		Model: "Raspberry Pi 4 / Compute Module 4 industrial box",
		Image: "rpi4",
		Mgmt:  "eth0", // on-board BCM54213 (genet)
		// Second NIC: a USB 3 gigabit adapter on the Pi 4, or the second
		// port of the CM4 carrier board.
		Sniff: []string{"eth1"},
		// gokrazy enables the UART on GPIO 14/15 (pins 8/10) and links
		// /dev/serial0 to it; with Bluetooth enabled that is the mini UART
		// (ttyS0), so the stable name is serial0, not ttyAMA0 (which
		// gokrazy turns into a compatibility symlink to ttyS0).
		Serial: "/dev/serial0",
		// 20x4 HD44780 with a PCF8574 backpack at its default address
		// 0x27 on the header's I2C bus (pins 3/5, /dev/i2c-1).
		LCD: &LCD{Bus: "1", Addr: 0x27, Cols: 20, Rows: 4},
		// BCM GPIO numbers on gpiochip0, each button to ground with the
		// internal pull-up (active low). GPIO 5/6/13/19/26 are free of the
		// UART (14/15) and I2C1 (2/3) pins and sit together on the header
		// (pins 29/31/33/35/37).
		GPIOChip: "gpiochip0",
		Buttons:  map[string]int{ButtonUp: 5, ButtonDown: 6, ButtonLeft: 13, ButtonRight: 19, ButtonSelect: 26},
	},
	"arm64-efi": {
		Name:  "arm64-efi",
		Model: "generic arm64 EFI box (and qemu -M virt)",
		Image: "arm64-efi",
		Mgmt:  "eth0",
		Sniff: []string{"eth1"},
		// qemu's virt machine has one PL011 UART, which Linux names
		// ttyAMA0; EFI arm64 servers with a PL011 (SBSA UART) do too.
		Serial: "/dev/ttyAMA0",
	},
	// The arm64 EFI image in qemu with the front panel of the industrial
	// box (20x4 HD44780 behind a PCF8574 at 0x27, five buttons) emulated
	// on the VM's host: qemu connects the virtio-serial port to the host
	// (-device virtserialport,name=sensor.panel). Chosen only by the
	// override; nothing detects it.
	"qemu-panel": {
		Name:      "qemu-panel",
		Model:     "arm64 EFI virtual machine with its front panel emulated on the host",
		Image:     "arm64-efi",
		Mgmt:      "eth0",
		Sniff:     []string{"eth1"},
		Serial:    "/dev/ttyAMA0",
		LCD:       &LCD{Addr: 0x27, Cols: 20, Rows: 4},
		PanelPort: "sensor.panel",
	},
}

// Names returns the names of all known profiles, sorted.
func Names() []string {
	names := make([]string, 0, len(profiles))
	for n := range profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Lookup returns the profile called name.
func Lookup(name string) (Profile, error) {
	p, ok := profiles[name]
	if !ok {
		return Profile{}, fmt.Errorf("board: unknown profile %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	return clone(p), nil
}

// clone copies p so that callers cannot change the table.
func clone(p Profile) Profile {
	p.Sniff = append([]string(nil), p.Sniff...)
	if p.LCD != nil {
		l := *p.LCD
		p.LCD = &l
	}
	if p.Buttons != nil {
		b := make(map[string]int, len(p.Buttons))
		for k, v := range p.Buttons {
			b[k] = v
		}
		p.Buttons = b
	}
	return p
}

// ErrUnknownBoard is returned by Detect when nothing identifies the machine.
var ErrUnknownBoard = errors.New("board: machine not recognised")

// Detect picks the profile for the running machine: SENSOR_BOARD if set,
// else /perm/board if present, else the machine's identity read from the
// real root file system.
func Detect() (Profile, error) {
	return DetectFS(os.DirFS("/"), os.Getenv(EnvOverride))
}

// DetectFS is Detect against root (a file system laid out like /, such as a
// fake sysfs tree in a test) with override in place of SENSOR_BOARD.
func DetectFS(root fs.FS, override string) (Profile, error) {
	if override != "" {
		return Lookup(override)
	}
	name, err := readID(root, strings.TrimPrefix(OverrideFile, "/"))
	if err != nil {
		return Profile{}, err
	}
	if name != "" {
		p, err := Lookup(name)
		if err != nil {
			return Profile{}, fmt.Errorf("%s: %w", OverrideFile, err)
		}
		return p, nil
	}
	model, err := readID(root, "proc/device-tree/model")
	if err != nil {
		return Profile{}, err
	}
	if model != "" {
		if name := matchModel(model); name != "" {
			return Lookup(name)
		}
		return Profile{}, fmt.Errorf("%w: device-tree model %q", ErrUnknownBoard, model)
	}
	product, err := readID(root, "sys/class/dmi/id/product_name")
	if err != nil {
		return Profile{}, err
	}
	if product != "" {
		// Any EFI/ACPI machine (qemu virt with EFI firmware reports
		// "QEMU KVM Virtual Machine") gets the generic profile.
		return Lookup("arm64-efi")
	}
	return Profile{}, fmt.Errorf("%w: neither /proc/device-tree/model nor /sys/class/dmi/id/product_name is readable; set %s to one of %s",
		ErrUnknownBoard, EnvOverride, strings.Join(Names(), ", "))
}

// matchModel maps a device-tree model string to a profile name, "" if none.
func matchModel(model string) string {
	switch {
	case strings.HasPrefix(model, "Raspberry Pi 4"),
		strings.HasPrefix(model, "Raspberry Pi Compute Module 4"):
		return "rpi4"
	case strings.HasPrefix(model, "linux,dummy-virt"), strings.HasPrefix(model, "QEMU"):
		return "arm64-efi"
	}
	return ""
}

// readID reads a small identity file, trimming the NUL terminator that
// device-tree strings carry and surrounding space. A missing file is "", nil.
func readID(root fs.FS, name string) (string, error) {
	f, err := root.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("board: open %s: %w", filepath.Join("/", name), err)
	}
	defer f.Close()
	buf := make([]byte, 256) // identity strings are short; never read more
	n, err := f.Read(buf)
	if n == 0 && err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("board: read %s: %w", filepath.Join("/", name), err)
	}
	b := buf[:n]
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimSpace(string(b)), nil
}

// Select returns the profile called name, or the detected one when name is
// empty; it is what a -board command-line flag feeds.
func Select(name string) (Profile, error) {
	if name != "" {
		return Lookup(name)
	}
	return Detect()
}
