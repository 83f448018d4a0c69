// Command serialconsole is the set-up menu on the appliance's serial port,
// for a technician's laptop running PuTTY (115200 8N1, PuTTY's default
// terminal settings): network (DHCP or static), proxy, personalization
// code, the box's status, pending update, reboot and factory reset. It
// draws with plain VT100 sequences, accepts CR, LF or CRLF and Backspace
// as DEL or BS, logs out when idle and reopens the port when the line
// fails (cable pulled). It never starts a shell or runs any command.
//
//	serialconsole -port DEVICE -settings DIR
package main

import (
	"flag"
	"log/slog"
	"os"
	"time"

	"go.bug.st/serial"

	"github.com/passivesensor/sensor/board"
	"github.com/passivesensor/sensor/hw"
	"github.com/passivesensor/sensor/menu"
	"github.com/passivesensor/sensor/netcfg"
	"github.com/passivesensor/sensor/settings"
)

func main() {
	portName := flag.String("port", "", "serial device (default: the board profile's console)")
	dir := flag.String("settings", settings.DefaultDir, "state directory holding settings.json and status.json")
	boardName := flag.String("board", "", "board profile (default: detected)")
	idle := flag.Duration("idle", 10*time.Minute, "log out after this long without a key")
	apply := flag.Bool("apply", true, "apply network settings, reboot and reset on this machine (false: only save settings)")
	flag.Parse()

	iface := "eth0"
	prof, err := board.Select(*boardName)
	if err != nil {
		slog.Warn("serialconsole: no board profile, management interface eth0", "err", err)
	} else {
		iface = prof.Mgmt
		if *portName == "" {
			*portName = prof.Serial
		}
	}
	if *portName == "" {
		// gokrazy does not restart a program that exits with 125.
		slog.Error("serialconsole: no serial port: give -port DEVICE")
		os.Exit(125)
	}
	env := menu.Env{Dir: *dir, Net: func() menu.NetInfo {
		i := netcfg.Inspect(iface)
		return menu.NetInfo{Name: i.Name, IP: i.IP, MAC: i.MAC, Link: i.Link}
	}}
	if *apply {
		env.Actions = &hw.System{Iface: iface, Dir: *dir}
	}
	m := menu.New(env)
	serve(*portName, m, *idle)
}

// serve runs sessions on the port forever, reopening it after any error.
func serve(portName string, m *menu.Menu, idle time.Duration) {
	wait := time.Second
	for {
		p, err := hw.OpenSerial(portName)
		if err != nil {
			slog.Warn("serialconsole: port not available, retrying", "port", portName, "err", err)
			time.Sleep(wait)
			wait = min(2*wait, 10*time.Second)
			continue
		}
		wait = time.Second
		p.SetReadTimeout(100 * time.Millisecond)
		slog.Info("serialconsole: serving", "port", portName)
		err = newConsole(p, m, idle).run()
		p.Close()
		if se, ok := err.(*serial.PortError); ok {
			slog.Info("serialconsole: line closed, reopening", "port", portName, "err", se)
		} else {
			slog.Info("serialconsole: line failed, reopening", "port", portName, "err", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
