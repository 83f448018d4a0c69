// Command sensor is the passive sensor's daemon. It reads frames from a
// capture file (-r) or from one or more sniffing interfaces (-i), learns who
// is on the network and who talks to whom, and prints the inventory and the
// traffic summary. With neither flag it reads the plant capture built into
// the binary, so a first run shows what it does.
//
//	sensor                        # the built-in plant capture
//	sensor -r site.pcapng         # a capture file (pcap or pcapng)
//	sensor -i eth1,eth2 -workers 2  # live, AF_PACKET rings with fanout
//	sensor -json                  # one JSON object per line
//	sensor -i eth1 -cloud https://cloud.example.com -ca ca.pem -state /perm/sensor
//	sensor -r site.pcap -cloud URL -ca FILE -state DIR  # register, upload, drain, exit
//
// With -cloud (or -state) the sensor reports to the cloud instead of
// printing: it registers with the personalization code from the settings
// file in the state directory (settings.json), spools its reports there,
// pulls its configuration from the cloud, and writes status.json for the
// LCD menu and the serial console every few seconds.
//
// The sniffing interfaces are only ever read: the sensor never sends a frame
// on them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/passivesensor/sensor/asset"
	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/demo"
	"github.com/passivesensor/sensor/uplink"
)

func main() {
	var (
		file     = flag.String("r", "", "read frames from this pcap or pcapng `file`")
		ifaces   = flag.String("i", "", "sniff these comma-separated `interfaces` (live)")
		workers  = flag.Int("workers", 1, "live capture: worker goroutines, each on its own AF_PACKET ring of a fanout group")
		raw      = flag.Bool("raw", false, "live capture: use a plain raw socket (one frame per syscall) instead of AF_PACKET rings; for the smallest boxes")
		config   = flag.String("config", "", "operator's IP classes as a JSON `file` (default: RFC 1918 ranges inventoried)")
		jsonOut  = flag.Bool("json", false, "print one JSON object per line instead of tables")
		interval = flag.Duration("interval", 5*time.Minute, "live capture without the cloud: print the inventory and traffic every `interval` (with the cloud its configuration sets the reporting intervals)")
		cloudURL = flag.String("cloud", "", "report to the cloud at this https `URL` (the settings file's cloud URL wins when set)")
		caFile   = flag.String("ca", "", "trust this PEM `file` of CA certificates for the cloud, besides the system's")
		stateDir = flag.String("state", "", "state `directory`: settings.json, status.json, registration, spool, cloud configuration (default /perm/sensor with -cloud)")
		upWait   = flag.Duration("upload-timeout", 0, "with -r and -cloud: give up registering and uploading after this `duration` (0: wait)")
	)
	flag.Parse()
	up := uplinkFlags{cloudURL: *cloudURL, caFile: *caFile, stateDir: *stateDir, timeout: *upWait}
	if up.stateDir == "" && up.cloudURL != "" {
		up.stateDir = "/perm/sensor"
	}
	if err := run(*file, *ifaces, *workers, *raw, *config, *jsonOut, *interval, up); err != nil {
		fmt.Fprintln(os.Stderr, "sensor:", err)
		os.Exit(1)
	}
}

// uplinkFlags are the cloud link's flags; an empty stateDir means no cloud.
type uplinkFlags struct {
	cloudURL, caFile, stateDir string
	timeout                    time.Duration
}

func run(file, ifaces string, workers int, raw bool, config string, jsonOut bool, interval time.Duration, up uplinkFlags) error {
	classes := asset.DefaultClasses()
	if config != "" {
		c, err := asset.LoadClasses(config)
		if err != nil {
			return err
		}
		classes = c
	}
	s := New(classes)
	out := Printer{W: os.Stdout, JSON: jsonOut}
	var cl *cloud
	if up.stateDir != "" {
		var names []string
		if ifaces != "" {
			names = strings.Split(ifaces, ",")
		}
		cl = newCloud(s, names)
		if err := cl.openAgent(up.stateDir, up.cloudURL, up.caFile, config != ""); err != nil {
			return err
		}
		defer cl.agent.Close()
	}

	if ifaces != "" {
		if file != "" {
			return errors.New("give either -r or -i, not both")
		}
		names := strings.Split(ifaces, ",")
		for _, n := range names {
			prepareInterface(n)
		}
		var srcs []capture.Source
		var err error
		if raw {
			srcs, err = openRaw(names)
		} else {
			srcs, err = capture.OpenAFPacket(names, workers)
		}
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		slog.Info("sensing", "interfaces", names, "sources", len(srcs))
		if cl == nil {
			return s.RunLive(ctx, srcs, interval, func(r Report) { out.Print(r) })
		}
		go cl.agent.Run(ctx)
		go cl.loop(ctx)
		cl.agent.SetSensing(true)
		defer cl.agent.SetSensing(false)
		traffic := func() time.Duration {
			return cl.agent.Config().Intervals.WithDefaults(uplink.DefaultIntervals()).Traffic
		}
		s.Interval = traffic
		last := time.Now()
		return s.RunLive(ctx, srcs, traffic(), func(r Report) {
			now := time.Now()
			cl.onReport(r, last, now)
			last = now
		})
	}

	src, name, err := openFile(file)
	if err != nil {
		return err
	}
	defer src.Close()
	// A record that cannot be read ends the file, not the run: what was read
	// before it is reported. A capture cut short (the capturing process was
	// stopped, the disk filled) is common and only warned about; a corrupt
	// record is an error once the report is out.
	readErr := readFile(s, src, name, os.Stderr)
	if cl != nil {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := cl.uploadFile(ctx, s.Report(), up.timeout); err != nil {
			return err
		}
		return readErr
	}
	out.Print(s.Report())
	return readErr
}

// readFile runs the capture src, called name, through s. A last record cut
// short gets a warning on warn and no error; any other error that ended the
// file is returned, the frames before it having been read all the same.
func readFile(s *Sensor, src capture.Source, name string, warn io.Writer) error {
	err := s.RunFile(src)
	var rerr *capture.RecordError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &rerr) && rerr.Truncated():
		fmt.Fprintf(warn, "sensor: warning: %s: record %d is cut short (the file ends inside it); the %d records before it are reported\n",
			name, rerr.Record, rerr.Record-1)
		return nil
	case errors.As(err, &rerr):
		return fmt.Errorf("reading %s: record %d: %w; the %d records before it are reported", name, rerr.Record, rerr.Err, rerr.Record-1)
	}
	return fmt.Errorf("reading %s: %w", name, err)
}

// openFile opens the named capture, or the built-in plant capture.
func openFile(name string) (capture.Source, string, error) {
	if name != "" {
		src, err := capture.OpenFile(name)
		return src, name, err
	}
	src, err := openDemo()
	return src, "the built-in plant capture", err
}

// openDemo opens the plant capture built into the binary. The reader wants a
// file, so the bytes go to a temporary one that is unlinked once open.
func openDemo() (capture.Source, error) {
	f, err := os.CreateTemp("", "plant-*.pcap")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := f.Write(demo.Plant); err != nil {
		return nil, fmt.Errorf("writing the built-in capture to %s: %w", f.Name(), err)
	}
	return capture.OpenFile(f.Name())
}

func openRaw(names []string) ([]capture.Source, error) {
	var srcs []capture.Source
	for _, n := range names {
		s, err := capture.OpenRaw(n)
		if err != nil {
			for _, o := range srcs {
				o.Close()
			}
			return nil, err
		}
		srcs = append(srcs, s)
	}
	return srcs, nil
}
