// Command benchcompare measures the sensor's offline pipeline and nDPI's
// ndpiReader on the same capture, one after the other in the same run, and
// prints packets per second of each and their ratio. Both read the file
// from disk and run on one core (ndpiReader -n 1, one sensor worker); each
// reads the capture -loops times.
//
//	go run ./cmd/sensor/benchcompare -pcap FILE
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"time"

	"github.com/passivesensor/sensor/capture"
)

func main() {
	pcap := flag.String("pcap", "", "capture `file` both tools read")
	loops := flag.Int("loops", 20, "times each tool reads the capture")
	sensor := flag.String("sensor", "", "sensor binary (default: build ./cmd/sensor)")
	flag.Parse()
	if *pcap == "" {
		fmt.Fprintln(os.Stderr, "benchcompare: -pcap FILE is required")
		os.Exit(2)
	}
	if err := run(*pcap, *loops, *sensor); err != nil {
		fmt.Fprintln(os.Stderr, "benchcompare:", err)
		os.Exit(1)
	}
}

func countFrames(path string) (int, error) {
	src, err := capture.OpenFile(path)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	n := 0
	for {
		_, err := src.Next()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n++
	}
}

func run(pcap string, loops int, sensor string) error {
	frames, err := countFrames(pcap)
	if err != nil {
		return err
	}
	if sensor == "" {
		dir, err := os.MkdirTemp("", "benchcompare")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		sensor = dir + "/sensor"
		b := exec.Command("go", "build", "-o", sensor, "./cmd/sensor")
		b.Stderr = os.Stderr
		if err := b.Run(); err != nil {
			return fmt.Errorf("building the sensor: %w", err)
		}
	}
	timeIt := func(name string, args ...string) (time.Duration, error) {
		var best time.Duration
		for i := 0; i < loops; i++ {
			cmd := exec.Command(name, args...)
			var errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = io.Discard, &errb
			cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
			start := time.Now()
			if err := cmd.Run(); err != nil {
				return 0, fmt.Errorf("%s: %v: %s", name, err, errb.String())
			}
			d := time.Since(start)
			if best == 0 || d < best {
				best = d
			}
		}
		return best, nil
	}
	st, err := timeIt(sensor, "-r", pcap, "-json")
	if err != nil {
		return err
	}
	nt, err := timeIt("ndpiReader", "-q", "-n", "1", "-i", pcap)
	if err != nil {
		return err
	}
	sp := float64(frames) / st.Seconds()
	np := float64(frames) / nt.Seconds()
	fmt.Printf("capture %s: %d frames, best of %d runs each, one core (%s)\n", pcap, frames, loops, runtime.GOARCH)
	fmt.Printf("sensor      %12s packets/s  (%v)\n", strconv.FormatFloat(sp, 'f', 0, 64), st)
	fmt.Printf("ndpiReader  %12s packets/s  (%v)\n", strconv.FormatFloat(np, 'f', 0, 64), nt)
	fmt.Printf("ratio sensor/ndpiReader: %.2f\n", sp/np)
	return nil
}
