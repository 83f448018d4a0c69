package update

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Fetcher downloads an artefact into a staging directory on /perm and
// verifies it. An interrupted download resumes with an HTTP Range request
// from where the staging file ends.
type Fetcher struct {
	// Client does the requests; the caller sets its Transport's Proxy
	// (and TLS roots) from the box's settings.
	Client *http.Client
	// Dir is the staging directory.
	Dir string
	// Progress, when set, is told the bytes held after each chunk.
	Progress func(done, total int64)
	// Stall gives up a download that receives nothing for this long
	// (default DefaultStall), so that a dead connection is retried
	// instead of waited on forever.
	Stall time.Duration
}

// DefaultStall is how long a download may receive nothing.
const DefaultStall = 2 * time.Minute

// partName and doneName are the staging file names of an artefact.
func partName(m Manifest) string { return "artefact-" + m.SHA256 + ".part" }
func doneName(m Manifest) string { return "artefact-" + m.SHA256 }

// Fetch returns the path of the verified artefact of m, downloading what is
// missing. A download that stops part-way returns an error wrapping
// ErrDownload and keeps what arrived for the next attempt to resume. A file
// whose size or hash does not match is deleted, so the next attempt starts
// afresh, and ErrSize or ErrHash is returned.
func (f *Fetcher) Fetch(ctx context.Context, m Manifest) (string, error) {
	if err := os.MkdirAll(f.Dir, 0o755); err != nil {
		return "", fmt.Errorf("update: staging directory: %w", err)
	}
	done := filepath.Join(f.Dir, doneName(m))
	if _, err := os.Stat(done); err == nil {
		if err := verifyFile(done, m); err == nil {
			return done, nil
		}
		os.Remove(done)
	}
	f.removeOthers(m)
	part := filepath.Join(f.Dir, partName(m))
	for attempt := 0; ; attempt++ {
		n, err := f.resume(ctx, m, part)
		if err != nil {
			return "", err
		}
		if n == m.Size {
			break
		}
		// The server ignored the range and we restarted; at most once.
		if attempt > 0 {
			return "", fmt.Errorf("update: download of %s stopped at %d of %d bytes", m.URL, n, m.Size)
		}
	}
	if err := verifyFile(part, m); err != nil {
		os.Remove(part)
		return "", err
	}
	if err := os.Rename(part, done); err != nil {
		return "", fmt.Errorf("update: %w", err)
	}
	return done, syncDir(f.Dir)
}

// resume appends to the staging file from its current length and returns
// the length reached.
func (f *Fetcher) resume(ctx context.Context, m Manifest, part string) (int64, error) {
	fh, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return 0, fmt.Errorf("update: %w", err)
	}
	defer fh.Close()
	have, err := fh.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, fmt.Errorf("update: %w", err)
	}
	if have > m.Size {
		if err := fh.Truncate(0); err != nil {
			return 0, fmt.Errorf("update: %w", err)
		}
		have, _ = fh.Seek(0, io.SeekStart)
	}
	if have == m.Size {
		return have, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.URL, nil)
	if err != nil {
		return have, fmt.Errorf("update: artefact URL %q: %w", m.URL, err)
	}
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
	}
	client := f.Client
	if client == nil {
		client = http.DefaultClient
	}
	stall := f.Stall
	if stall <= 0 {
		stall = DefaultStall
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	errStalled := fmt.Errorf("nothing received for %v", stall)
	watchdog := time.AfterFunc(stall, func() { cancel(errStalled) })
	defer watchdog.Stop()
	resp, err := client.Do(req.WithContext(ctx))
	if err != nil {
		if c := context.Cause(ctx); c == errStalled {
			err = c
		}
		return have, fmt.Errorf("update: download %s: %w: %w", m.URL, ErrDownload, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0:
		start, ok := contentRangeStart(resp.Header.Get("Content-Range"))
		if !ok || start != have {
			return have, fmt.Errorf("update: download %s: server resumed at %q, asked for byte %d", m.URL, resp.Header.Get("Content-Range"), have)
		}
	case resp.StatusCode == http.StatusOK:
		// A full answer: start over (the server does not do ranges).
		if err := fh.Truncate(0); err != nil {
			return 0, fmt.Errorf("update: %w", err)
		}
		if _, err := fh.Seek(0, io.SeekStart); err != nil {
			return 0, fmt.Errorf("update: %w", err)
		}
		have = 0
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		// The staging file does not belong to this artefact any more.
		return have, fmt.Errorf("update: download %s: range from %d refused: %w", m.URL, have, errors.Join(ErrSize, fh.Truncate(0)))
	case resp.StatusCode >= 500:
		return have, fmt.Errorf("update: download %s: %s: %w", m.URL, resp.Status, ErrDownload)
	default:
		return have, fmt.Errorf("update: download %s: %s", m.URL, resp.Status)
	}
	buf := make([]byte, 256<<10)
	for have < m.Size {
		n, rerr := resp.Body.Read(buf[:min(int64(len(buf)), m.Size-have)])
		watchdog.Reset(stall)
		if n > 0 {
			if _, err := fh.Write(buf[:n]); err != nil {
				return have, fmt.Errorf("update: staging file: %w", err)
			}
			have += int64(n)
			if f.Progress != nil {
				f.Progress(have, m.Size)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			fh.Sync()
			if c := context.Cause(ctx); c == errStalled {
				rerr = c
			}
			return have, fmt.Errorf("update: download %s stopped at byte %d of %d: %w: %w", m.URL, have, m.Size, ErrDownload, rerr)
		}
	}
	if err := fh.Sync(); err != nil {
		return have, fmt.Errorf("update: staging file: %w", err)
	}
	return have, nil
}

// removeOthers deletes staging files of other artefacts.
func (f *Fetcher) removeOthers(m Manifest) {
	ents, _ := os.ReadDir(f.Dir)
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, "artefact-") && n != partName(m) && n != doneName(m) {
			os.Remove(filepath.Join(f.Dir, n))
		}
	}
}

// contentRangeStart reads the first byte position of "bytes START-END/LEN".
func contentRangeStart(s string) (int64, bool) {
	s, ok := strings.CutPrefix(s, "bytes ")
	if !ok {
		return 0, false
	}
	a, _, ok := strings.Cut(s, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(a, 10, 64)
	return n, err == nil
}

// verifyFile checks the artefact's size, its hash and every part's hash.
func verifyFile(path string, m Manifest) error {
	fh, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	if st.Size() != m.Size {
		return fmt.Errorf("update %s: artefact has %d bytes, manifest says %d: %w", m.Version, st.Size(), m.Size, ErrSize)
	}
	if got, err := hashReader(io.NewSectionReader(fh, 0, m.Size)); err != nil {
		return err
	} else if got != m.SHA256 {
		return fmt.Errorf("update %s: artefact sha256 %s, manifest says %s: %w", m.Version, got, m.SHA256, ErrHash)
	}
	for _, p := range m.Parts {
		got, err := hashReader(io.NewSectionReader(fh, p.Offset, p.Size))
		if err != nil {
			return err
		}
		if got != p.SHA256 {
			return fmt.Errorf("update %s: part %s sha256 %s, manifest says %s: %w", m.Version, p.Name, got, p.SHA256, ErrHash)
		}
	}
	return nil
}

func hashReader(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", fmt.Errorf("update: hash: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("update: sync %s: %w", dir, err)
	}
	return nil
}
