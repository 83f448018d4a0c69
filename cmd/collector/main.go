// Command collector is the reference cloud the sensors report to: a small
// HTTPS server that issues personalization codes, registers sensors,
// ingests and validates their CBOR batches, stores assets and traffic in
// SQLite, serves each sensor's configuration, and shows what it holds on a
// plain web page and a JSON API, with devices de-duplicated across sensors.
//
//	collector -listen 127.0.0.1:8443 -data /var/lib/collector   # serve
//	collector -data /var/lib/collector code new                  # issue a personalization code
//	collector -data /var/lib/collector update publish -manifest sensor-1.4.0-arm64-efi.json \
//	    -artefact sensor-1.4.0-arm64-efi.upd [-sensor ID]        # order an update
//
// On first start it creates its own certificate authority in the data
// directory (ca.pem) and prints its URL and the CA's path; give that file
// to the sensors (sensor -ca FILE). Each sensor's configuration is
// DATA/config/SENSOR-ID.json, falling back to DATA/config/default.json
// (uplink.Config as JSON).
//
// update publish stores a manifest signed by release sign (the collector
// holds no release key and does not sign) and its artefact in the data
// directory, and orders it for every sensor of the manifest's board, or for
// one sensor with -sensor. Sensors poll /v1/update/manifest and download
// the artefact from this collector.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	var (
		listen = flag.String("listen", "127.0.0.1:8443", "serve HTTPS on this `address`")
		data   = flag.String("data", "", "data `directory`: database, CA, configurations (required)")
		hosts  = flag.String("hosts", "", "extra comma-separated host `names` or addresses for the server certificate")
		poll   = flag.Duration("update-poll", 10*time.Minute, "tell sensors to ask for update orders this often (0: leave it to them)")
	)
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage:\n  collector -listen ADDR -data DIR\n  collector -data DIR code new\n"+
			"  collector -data DIR update publish -manifest FILE.json -artefact FILE.upd [-sensor ID]\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *data == "" {
		flag.Usage()
		os.Exit(2)
	}
	var err error
	switch args := flag.Args(); {
	case len(args) == 0:
		err = serve(*listen, *data, *hosts, *poll)
	case len(args) == 2 && args[0] == "code" && args[1] == "new":
		err = newCode(*data)
	case len(args) >= 2 && args[0] == "update" && args[1] == "publish":
		err = publish(*data, args[2:])
	default:
		flag.Usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "collector:", err)
		os.Exit(1)
	}
}

func newCode(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	st, err := OpenStore(dir)
	if err != nil {
		return err
	}
	defer st.Close()
	code, err := st.NewCode()
	if err != nil {
		return err
	}
	fmt.Println(code)
	return nil
}

func publish(dir string, args []string) error {
	fs := flag.NewFlagSet("update publish", flag.ExitOnError)
	manifest := fs.String("manifest", "", "signed manifest `file` (release sign's .json)")
	artefact := fs.String("artefact", "", "artefact `file` (release sign's .upd)")
	sensor := fs.String("sensor", "", "order the update for this sensor `id` only (default: every sensor of the manifest's board)")
	fs.Parse(args)
	if *manifest == "" || *artefact == "" || fs.NArg() != 0 {
		return errors.New("update publish needs -manifest FILE.json and -artefact FILE.upd")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	data, err := readLimited(*manifest, maxManifestFile)
	if err != nil {
		return err
	}
	st, err := OpenStore(dir)
	if err != nil {
		return err
	}
	defer st.Close()
	m, err := st.Publish(context.Background(), dir, data, *artefact, *sensor)
	if err != nil {
		return fmt.Errorf("%s: %w", *manifest, err)
	}
	target := "every sensor of board " + m.Board
	if *sensor != "" {
		target = "sensor " + *sensor
	}
	fmt.Printf("collector: update %s (%d bytes, sha256 %s) ordered for %s\n", m.Version, m.Size, m.SHA256, target)
	return nil
}

// readLimited reads a file of at most max bytes.
func readLimited(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, max)
	}
	return data, nil
}

func serve(listen, dir, extraHosts string, poll time.Duration) error {
	if err := os.MkdirAll(filepath.Join(dir, "config"), 0o700); err != nil {
		return err
	}
	ca, caKey, err := loadOrCreateCA(dir)
	if err != nil {
		return err
	}
	st, err := OpenStore(dir)
	if err != nil {
		return err
	}
	defer st.Close()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if h, _, err := net.SplitHostPort(listen); err == nil && h != "" && h != "0.0.0.0" && h != "::" {
		hosts = append([]string{h}, hosts...)
	}
	if hn, err := os.Hostname(); err == nil {
		hosts = append(hosts, hn)
	}
	for _, h := range strings.Split(extraHosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	cert, err := serverCert(ca, caKey, hosts)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	srv := &http.Server{
		Handler:           (&Server{Store: st, Dir: dir, Log: log, UpdatePoll: poll}).Handler(),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		WriteTimeout:      2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	addr := ln.Addr().(*net.TCPAddr)
	host := hosts[0]
	if ip := addr.IP; !ip.IsUnspecified() {
		host = ip.String()
	}
	fmt.Printf("collector: listening on https://%s\n", net.JoinHostPort(host, fmt.Sprint(addr.Port)))
	abs, _ := filepath.Abs(filepath.Join(dir, caCertFile))
	fmt.Printf("collector: CA certificate %s\n", abs)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}
	return nil
}
