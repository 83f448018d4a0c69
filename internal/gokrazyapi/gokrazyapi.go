// Package gokrazyapi talks to gokrazy's HTTP API from a program on the
// box: over the unix socket init listens on, authenticated with the
// password init read from gokr-pw.txt.
package gokrazyapi

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Socket is where gokrazy's init serves its HTTP API on the box.
const Socket = "/run/gokrazy-http.sock"

// Client is gokrazy's API.
type Client struct {
	HTTP     *http.Client
	Password string
}

// New returns the box's API client: the socket, and the password from
// /etc/gokr-pw.txt (the image's) or /perm/gokr-pw.txt.
func New() Client {
	var pw string
	for _, p := range []string{"/etc/gokr-pw.txt", "/perm/gokr-pw.txt"} {
		if b, err := os.ReadFile(p); err == nil {
			pw = strings.TrimSpace(string(b))
			break
		}
	}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", Socket)
	}}
	return Client{HTTP: &http.Client{Transport: tr, Timeout: 30 * time.Second}, Password: pw}
}

// Do sends a request for path and returns the answer's body (JSON where
// gokrazy offers it); any status but 200 is an error.
func (c Client) Do(method, path string) ([]byte, error) {
	req, err := http.NewRequest(method, "http://gokrazy"+path, nil)
	if err != nil {
		return nil, err
	}
	if c.Password != "" {
		req.SetBasicAuth("gokrazy", c.Password)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	return b, err
}

// Reboot asks gokrazy to stop the services, unmount /perm and reboot, and
// waits for it; when that fails, it syncs and reboots itself.
func (c Client) Reboot() error {
	if _, err := c.Do(http.MethodPost, "/reboot"); err == nil {
		time.Sleep(time.Minute)
	}
	unix.Sync()
	return unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
}
