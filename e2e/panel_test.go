//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passivesensor/sensor/hw"
)

// frontPanel is the industrial box's front panel (20x4 HD44780 behind a
// PCF8574 at 0x27, five buttons) emulated on the host and wired to the
// guest's sensor.panel port: the box's lcdmenu drives the emulated chips
// with its real LCD driver, and the test reads the glass and presses the
// buttons.
type frontPanel struct {
	t     *testing.T
	emu   *hw.EmuPanel
	host  *hw.PanelHost
	conn  net.Conn
	ended chan error
}

// connectPanel connects to the VM's panel socket and serves the emulated
// panel on it.
func connectPanel(t *testing.T, v *vm) *frontPanel {
	t.Helper()
	var conn net.Conn
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if conn, err = net.Dial("unix", v.panelSock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("connecting to the panel port's socket: %v", err)
		}
	}
	p := &frontPanel{t: t, emu: hw.NewEmuPanel(0x27, 20, 4), conn: conn, ended: make(chan error, 1)}
	p.host = hw.NewPanelHost(conn, p.emu.Bus)
	go func() { p.ended <- p.host.Serve() }()
	t.Cleanup(func() { conn.Close() })
	return p
}

// glass is what the LCD shows, one line per row, trailing blanks cut.
func (p *frontPanel) glass() string { return p.emu.LCD.Text() }

// want waits until the glass shows every one of lines (each a whole row).
func (p *frontPanel) want(d time.Duration, lines ...string) {
	p.t.Helper()
	var g string
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		g = p.glass()
		rows := strings.Split(g, "\n")
		ok := true
		for _, l := range lines {
			found := false
			for _, r := range rows {
				found = found || r == l
			}
			ok = ok && found
		}
		if ok {
			return
		}
	}
	p.t.Fatalf("the LCD lacks rows %q; it shows:\n%s", lines, g)
}

// press pushes a button as a thumb would: the contact closes, holds past
// the debounce time, and opens.
func (p *frontPanel) press(b hw.Button) {
	p.t.Helper()
	for _, level := range []bool{true, false} {
		if err := p.host.SetButton(b, level); err != nil {
			p.t.Fatalf("pressing %v: %v", b, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPanel boots the image on the board profile that has an LCD, as the
// emulated box qemu-panel: the profile is chosen by /perm/board, the
// override a technician would write, and its panel is emulated on the
// host behind the VM's virtio-serial port. From outside it reads the menu
// off the LCD, moves through it with the buttons, and reads the box's
// address on the status page.
func TestPanel(t *testing.T) {
	img := requireTools(t)
	lap := stepTimer(t)
	disk := filepath.Join(t.TempDir(), "disk.img")
	if out, err := exec.Command("cp", "--sparse=always", img, disk).CombinedOutput(); err != nil {
		t.Fatalf("copying image: %v: %s", err, out)
	}
	writePerm(t, disk, map[string][]byte{"/board": []byte("qemu-panel\n")})
	pw, err := httpPassword(img)
	if err != nil {
		t.Fatal(err)
	}
	v := bootWith(t, disk, bootOpts{panel: true})
	panel := connectPanel(t, v)
	ctx, cancel := context.WithTimeout(context.Background(), *bootTimeout)
	defer cancel()
	panel.want(*bootTimeout, "Setup", ">Network >", " Proxy >", " Registration >")
	lap("boot to the set-up menu on the emulated LCD")
	if !panel.emu.Backpack.Backlight() {
		t.Error("the backlight is off while the menu shows")
	}
	if st := lcdmenuStatus(ctx, t, v, pw); st.Stopped {
		t.Fatalf("gokrazy reports lcdmenu stopped while its menu shows: %+v", st)
	}
	lap("gokrazy's HTTP answers: lcdmenu runs")

	panel.press(hw.Down)
	panel.want(10*time.Second, " Network >", ">Proxy >")
	for range 2 {
		panel.press(hw.Down)
	}
	panel.want(10*time.Second, ">Status >")
	panel.press(hw.Select)
	// qemu's DHCP server gives the first address, 10.0.2.15; the page
	// reads it from the interface.
	panel.want(30*time.Second, "Status", ">IP     10.0.2.15/24")
	panel.press(hw.Left)
	panel.want(10*time.Second, "Setup", ">Status >")
	lap("buttons: through the menu to the status page")
	select {
	case err := <-panel.ended:
		t.Fatalf("the box closed the panel link: %v", err)
	default:
	}
	checkPerm(t, v)
}

// lcdmenuStatus is gokrazy's status of /user/lcdmenu, through its HTTP API.
func lcdmenuStatus(ctx context.Context, t *testing.T, v *vm, pw string) serviceStatus {
	t.Helper()
	var st serviceStatus
	for {
		b, err := v.get(ctx, pw, "/status?path=/user/lcdmenu", "application/json")
		if err == nil {
			if err := json.Unmarshal(b, &st); err != nil {
				t.Fatalf("gokrazy status for /user/lcdmenu: %v: %s", err, b)
			}
			return st
		}
		if ctx.Err() != nil {
			t.Fatalf("gokrazy HTTP on %s never answered: %v", v.httpAddr, err)
		}
		time.Sleep(time.Second)
	}
}

// checkPerm fails the test when the kernel reported a damaged file system
// on the serial console (a broken /perm makes every program that writes
// its state fail, while the box otherwise looks alive).
func checkPerm(t *testing.T, v *vm) {
	t.Helper()
	b, _ := os.ReadFile(v.serialLog)
	if i := strings.Index(string(b), "EXT4-fs error"); i >= 0 {
		line, _, _ := strings.Cut(string(b[i:]), "\n")
		t.Errorf("the kernel reports a damaged file system: %s", line)
	}
}
