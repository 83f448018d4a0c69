// Command lcdmenu is the set-up menu on the front panel: an HD44780
// character LCD (16x2 or 20x4) behind a PCF8574 I2C backpack and five
// buttons (up, down, left, right, select) on GPIO lines, as the board
// profile describes them. Addresses are entered digit by digit and the
// personalization code character by character; the backlight goes off
// when nobody touches the buttons.
//
//	lcdmenu -settings DIR          the real panel, from the board profile
//	lcdmenu -sim -settings DIR     an emulated panel drawn in this terminal,
//	                               arrow keys and Enter as the buttons
//
// With -sim the real periph LCD driver runs against an emulated I2C bus,
// PCF8574 and HD44780, so what the terminal shows is what the glass would.
// A board profile with a panel port (a virtual machine) has the same
// driver's I2C transactions and the buttons' levels carried over a
// virtio-serial port to a panel emulated on the VM's host.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"periph.io/x/host/v3/sysfs"

	"github.com/passivesensor/sensor/board"
	"github.com/passivesensor/sensor/hw"
	"github.com/passivesensor/sensor/menu"
	"github.com/passivesensor/sensor/netcfg"
	"github.com/passivesensor/sensor/settings"
)

func main() {
	dir := flag.String("settings", settings.DefaultDir, "state directory holding settings.json and status.json")
	sim := flag.Bool("sim", false, "emulated panel in this terminal instead of the hardware")
	boardName := flag.String("board", "", "board profile (default: detected)")
	size := flag.String("size", "20x4", "display size with -sim: 20x4 or 16x2")
	apply := flag.Bool("apply", true, "apply network settings, reboot and reset on this machine (false: only save settings; always false with -sim)")
	lightIdle := flag.Duration("backlight-idle", time.Minute, "switch the backlight off after this long without a press")
	idle := flag.Duration("idle", 10*time.Minute, "return to the top and drop unsaved changes after this long without a press")
	flag.Parse()

	iface := "eth0"
	prof, perr := board.Select(*boardName)
	if perr == nil {
		iface = prof.Mgmt
	}
	env := menu.Env{Dir: *dir, Net: func() menu.NetInfo {
		i := netcfg.Inspect(iface)
		return menu.NetInfo{Name: i.Name, IP: i.IP, MAC: i.MAC, Link: i.Link}
	}}
	if *apply && !*sim {
		env.Actions = &hw.System{Iface: iface, Dir: *dir}
	}
	m := menu.New(env)

	var err error
	if *sim {
		var cols, rows int
		if _, err := fmt.Sscanf(*size, "%dx%d", &cols, &rows); err != nil || !((cols == 20 && rows == 4) || (cols == 16 && rows == 2)) {
			fmt.Fprintf(os.Stderr, "lcdmenu: -size %q: want 20x4 or 16x2\n", *size)
			os.Exit(2)
		}
		err = runSim(m, cols, rows, *lightIdle, *idle)
	} else {
		if perr != nil {
			slog.Error("lcdmenu: no board profile", "err", perr)
			os.Exit(1)
		}
		if prof.LCD == nil {
			// gokrazy does not restart a program that exits with 125.
			slog.Info("lcdmenu: this board has no front-panel LCD; not running", "board", prof.Name)
			os.Exit(125)
		}
		err = runPanel(m, prof, *lightIdle, *idle)
	}
	if err != nil {
		slog.Error("lcdmenu", "err", err)
		os.Exit(1)
	}
}

// runPanel drives the board's real LCD and buttons.
func runPanel(m *menu.Menu, prof board.Profile, lightIdle, idle time.Duration) error {
	if prof.LCD == nil {
		return fmt.Errorf("board %s has no LCD", prof.Name)
	}
	if prof.PanelPort != "" {
		return runLinkedPanel(m, prof, lightIdle, idle)
	}
	n, err := strconv.Atoi(prof.LCD.Bus)
	if err != nil {
		return fmt.Errorf("board %s: I2C bus %q is not a number", prof.Name, prof.LCD.Bus)
	}
	bus, err := sysfs.NewI2C(n)
	if err != nil {
		return fmt.Errorf("opening /dev/i2c-%d: %w", n, err)
	}
	defer bus.Close()
	lcd, err := hw.NewLCD(bus, prof.LCD.Addr, prof.LCD.Cols, prof.LCD.Rows)
	if err != nil {
		return err
	}
	defer lcd.Close()
	buttons, err := hw.OpenGPIOButtons(prof, hw.DefaultTiming)
	if err != nil {
		return err
	}
	defer buttons.Close()
	u := newUI(lcd, m)
	u.BacklightIdle, u.LogoutIdle = lightIdle, idle
	return u.run(buttons.Presses())
}

// runLinkedPanel drives a panel emulated on a virtual machine's host over
// the profile's virtio-serial port: the same LCD driver and menu, the I2C
// bus and the buttons carried by the port.
func runLinkedPanel(m *menu.Menu, prof board.Profile, lightIdle, idle time.Duration) error {
	port, err := hw.OpenVirtioPort(prof.PanelPort)
	if err != nil {
		return fmt.Errorf("board %s: %w", prof.Name, err)
	}
	link := hw.NewPanelLink(port, hw.DefaultTiming)
	defer link.Close()
	lcd, err := hw.NewLCD(link, prof.LCD.Addr, prof.LCD.Cols, prof.LCD.Rows)
	if err != nil {
		return err
	}
	defer lcd.Close()
	slog.Info("lcdmenu: front panel over virtio-serial port", "board", prof.Name, "port", prof.PanelPort)
	u := newUI(lcd, m)
	u.BacklightIdle, u.LogoutIdle = lightIdle, idle
	return u.run(link.Presses())
}
