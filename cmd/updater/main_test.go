package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestRetryAfter(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"soon", 0}, {"-5", 0}, {"0", 0}, {"1", minPoll}, {"20", 20 * time.Second},
		{" 600 ", 10 * time.Minute}, {"86400", maxPoll}, {"99999999999999999", maxPoll},
		{"Wed, 21 Oct 2015 07:28:00 GMT", 0},
	} {
		if got := retryAfter(c.in); got != c.want {
			t.Errorf("retryAfter(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

// fakeGokrazy answers /status for a service from status().
func fakeGokrazy(t *testing.T, status func() serviceStatus) gokrazy {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/status" || r.URL.Query().Get("path") != "/user/sensor" {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(status())
	}))
	t.Cleanup(srv.Close)
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", srv.Listener.Addr().String())
	}}
	return gokrazy{HTTP: &http.Client{Transport: tr}}
}

func fastHealthPoll(t *testing.T) {
	old := healthPoll
	healthPoll = 10 * time.Millisecond
	t.Cleanup(func() { healthPoll = old })
}

// A sensor that exits at start is restarted by gokrazy again and again: the
// trial is unhealthy after maxRestarts restarts, long before the bound.
func TestHealthyGivesUpOnRestarts(t *testing.T) {
	fastHealthPoll(t)
	var pid atomic.Int32
	pid.Store(100)
	g := fakeGokrazy(t, func() serviceStatus {
		p := pid.Add(1)
		return serviceStatus{Pid: int(p), StartTime: time.Unix(int64(p), 0)}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	err := healthy(ctx, g, "/user/sensor", time.Hour)
	if err == nil || !strings.Contains(err.Error(), "restarted 3 times") {
		t.Fatalf("crash-looping service: %v, want restarted 3 times", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("took %v to see the restarts", time.Since(start))
	}
}

// A stopped service never proves healthy: the bound ends the trial with
// the last reason.
func TestHealthyBound(t *testing.T) {
	fastHealthPoll(t)
	g := fakeGokrazy(t, func() serviceStatus { return serviceStatus{Stopped: true} })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := healthy(ctx, g, "/user/sensor", 10*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "not healthy within the bound") || !strings.Contains(err.Error(), "not running") {
		t.Fatalf("stopped service: %v", err)
	}
}

// A service that runs with a packet socket open and keeps its process for
// the window is healthy; this process stands in for the sensor.
func TestHealthyCapturingService(t *testing.T) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		t.Skipf("no packet socket (needs CAP_NET_RAW): %v", err)
	}
	fastHealthPoll(t)
	started := time.Now()
	g := fakeGokrazy(t, func() serviceStatus { return serviceStatus{Pid: os.Getpid(), StartTime: started} })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := healthy(ctx, g, "/user/sensor", 100*time.Millisecond); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	// Without the socket the same process is not capturing.
	unix.Close(fd)
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := healthy(ctx, g, "/user/sensor", 50*time.Millisecond); err == nil || !strings.Contains(err.Error(), "no capture open") {
		t.Fatalf("without a capture: %v", err)
	}
}
