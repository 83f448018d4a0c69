package main

// Updates: the collector hands out signed update manifests the release
// machine made (it holds no release key and signs nothing), serves their
// artefacts with range requests so boxes resume interrupted downloads, and
// records the steps the boxes report.
//
//	GET  /v1/update/manifest?board=B&version=V   Bearer; 200 manifest JSON, 204 nothing to do
//	                                             (nothing ordered, or V is that version or newer);
//	                                             Retry-After: seconds until the sensor asks again
//	GET  /v1/update/artefacts/{name}             Bearer; the artefact, Range supported
//	POST /v1/update/report                       Bearer; {"running","version","phase","slot","detail"}
//
// The manifest's URL is not covered by its signature (see update.Manifest):
// the collector rewrites it to its own artefact endpoint as the sensor
// reached it. The box still checks the signed size and SHA-256.

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/passivesensor/sensor/update"
)

// Paths of the update API.
const (
	PathUpdateManifest  = "/v1/update/manifest"
	PathUpdateArtefacts = "/v1/update/artefacts/"
	PathUpdateReport    = "/v1/update/report"
)

// artefactDir holds the published artefacts, named by their SHA-256.
const artefactDir = "artefacts"

// MaxReportBody bounds an update report's body.
const MaxReportBody = 4 << 10

// maxManifestFile bounds a manifest file given to publish.
const maxManifestFile = 64 << 10

const updateSchema = `
CREATE TABLE IF NOT EXISTS update_orders (
	scope     TEXT NOT NULL, -- 'board' or 'sensor'
	target    TEXT NOT NULL, -- board name or sensor id
	version   TEXT NOT NULL,
	board     TEXT NOT NULL,
	manifest  TEXT NOT NULL,
	artefact  TEXT NOT NULL,
	published INTEGER NOT NULL,
	PRIMARY KEY (scope, target)
);
CREATE TABLE IF NOT EXISTS update_reports (
	sensor  TEXT NOT NULL,
	time    INTEGER NOT NULL,
	running TEXT NOT NULL,
	version TEXT NOT NULL,
	phase   TEXT NOT NULL,
	slot    TEXT NOT NULL,
	detail  TEXT NOT NULL
);
`

var artefactName = regexp.MustCompile(`^[0-9a-f]{64}\.upd$`)

// ParseManifest reads a signed manifest as release sign writes it and
// checks its form: version, board, a size within update.MaxArtefactSize, a
// SHA-256 and a signature of the right length. The signature itself is
// the box's to verify: the collector does not hold the release key.
func ParseManifest(data []byte) (update.Manifest, error) {
	var m update.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("manifest: %w", err)
	}
	sig, err := base64.StdEncoding.DecodeString(m.Signature)
	switch {
	case m.Version == "" || m.Board == "":
		return m, errors.New("manifest names no version or no board")
	case m.Size <= 0 || m.Size > update.MaxArtefactSize:
		return m, fmt.Errorf("manifest of %s: size %d out of range", m.Version, m.Size)
	case len(m.SHA256) != 64 || !isLowerHex(m.SHA256):
		return m, fmt.Errorf("manifest of %s: sha256 %q is not 64 lowercase hex digits", m.Version, m.SHA256)
	case err != nil || len(sig) != 64:
		return m, fmt.Errorf("manifest of %s is not signed (signature %q)", m.Version, m.Signature)
	case len(m.Parts) == 0:
		return m, fmt.Errorf("manifest of %s has no parts", m.Version)
	}
	return m, nil
}

func isLowerHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Publish stores the manifest and its artefact (checked against the
// manifest's size and SHA-256) and orders it for sensor, or for every
// sensor of the manifest's board when sensor is "". A later publish for
// the same target replaces the order.
func (s *Store) Publish(ctx context.Context, dir string, manifestJSON []byte, artefactPath, sensor string) (update.Manifest, error) {
	m, err := ParseManifest(manifestJSON)
	if err != nil {
		return m, err
	}
	scope, target := "board", m.Board
	if sensor != "" {
		var n int
		if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM sensors WHERE id = ?`, sensor).Scan(&n); err != nil {
			return m, err
		}
		if n == 0 {
			return m, fmt.Errorf("unknown sensor %q", sensor)
		}
		scope, target = "sensor", sensor
	}
	name := m.SHA256 + ".upd"
	if err := copyArtefact(artefactPath, filepath.Join(dir, artefactDir), name, m); err != nil {
		return m, err
	}
	canon, _ := json.Marshal(m)
	_, err = s.db.ExecContext(ctx, `INSERT INTO update_orders(scope, target, version, board, manifest, artefact, published)
		VALUES(?,?,?,?,?,?,?) ON CONFLICT(scope, target) DO UPDATE SET version = excluded.version, board = excluded.board,
		manifest = excluded.manifest, artefact = excluded.artefact, published = excluded.published`,
		scope, target, m.Version, m.Board, string(canon), name, time.Now().Unix())
	return m, err
}

// copyArtefact copies src to dir/name through a temporary file, checking
// size and hash on the way, and syncs it before the rename.
func copyArtefact(src, dir, name string, m update.Manifest) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("artefact: %w", err)
	}
	defer in.Close()
	tmp, err := os.CreateTemp(dir, ".publish-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(in, m.Size+1))
	if err != nil {
		return fmt.Errorf("artefact %s: %w", src, err)
	}
	if n > m.Size {
		return fmt.Errorf("artefact %s is larger than the %d bytes the manifest of %s says", src, m.Size, m.Version)
	}
	if n < m.Size {
		return fmt.Errorf("artefact %s has %d bytes, the manifest of %s says %d", src, n, m.Version, m.Size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != m.SHA256 {
		return fmt.Errorf("artefact %s has sha256 %s, the manifest of %s says %s", src, got, m.Version, m.SHA256)
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// UpdateOrderJSON is an ordered update as the JSON API shows it.
type UpdateOrderJSON struct {
	Scope     string    `json:"scope"`  // "board" or "sensor"
	Target    string    `json:"target"` // the board or the sensor id
	Version   string    `json:"version"`
	Board     string    `json:"board"`
	Artefact  string    `json:"artefact"`
	Published time.Time `json:"published"`
}

// OrderFor returns the manifest ordered for sensor: its own order, else its
// board's, and the artefact's file name; ok is false when none is.
func (s *Store) OrderFor(ctx context.Context, sensor, board string) (m update.Manifest, artefact string, ok bool, err error) {
	var mj string
	err = s.db.QueryRowContext(ctx, `SELECT manifest, artefact FROM update_orders
		WHERE (scope = 'sensor' AND target = ?) OR (scope = 'board' AND target = ?)
		ORDER BY scope = 'sensor' DESC LIMIT 1`, sensor, board).Scan(&mj, &artefact)
	if errors.Is(err, sql.ErrNoRows) {
		return m, "", false, nil
	}
	if err != nil {
		return m, "", false, err
	}
	if err := json.Unmarshal([]byte(mj), &m); err != nil {
		return m, "", false, fmt.Errorf("stored manifest for %s: %w", sensor, err)
	}
	return m, artefact, true, nil
}

// Orders lists the ordered updates.
func (s *Store) Orders(ctx context.Context) ([]UpdateOrderJSON, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT scope, target, version, board, artefact, published FROM update_orders ORDER BY scope, target`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []UpdateOrderJSON
	for rows.Next() {
		var o UpdateOrderJSON
		var t int64
		if err := rows.Scan(&o.Scope, &o.Target, &o.Version, &o.Board, &o.Artefact, &t); err != nil {
			return nil, err
		}
		o.Published = time.Unix(t, 0).UTC()
		out = append(out, o)
	}
	return out, rows.Err()
}

// UpdateReport is one step a box reports, as it sends it.
type UpdateReport struct {
	Running string `json:"running"`
	Version string `json:"version"`
	Phase   string `json:"phase"`
	Slot    string `json:"slot"`
	Detail  string `json:"detail"`
}

// UpdateReportJSON is a stored report.
type UpdateReportJSON struct {
	Sensor string    `json:"sensor"`
	Time   time.Time `json:"time"`
	UpdateReport
}

// updatePhases are the phases a box reports (update.Phase*).
var updatePhases = map[string]bool{
	update.PhaseDownloading: true, update.PhaseVerified: true, update.PhaseWriting: true, update.PhaseArmed: true,
	update.PhaseTrial: true, update.PhaseCommitted: true, update.PhaseFailed: true, update.PhaseRolledBack: true,
}

// validate bounds a report's fields.
func (r UpdateReport) validate() error {
	if !updatePhases[r.Phase] {
		return fmt.Errorf("unknown update phase %q", r.Phase)
	}
	for name, v := range map[string]string{"running": r.Running, "version": r.Version, "slot": r.Slot} {
		if len(v) > 64 {
			return fmt.Errorf("%s of %d bytes exceeds 64", name, len(v))
		}
	}
	if r.Version == "" {
		return errors.New("report names no version")
	}
	if len(r.Detail) > 2048 {
		return fmt.Errorf("detail of %d bytes exceeds 2048", len(r.Detail))
	}
	return nil
}

// AddUpdateReport stores a report, as an update report and as an event,
// and takes the running version as the sensor's.
func (s *Store) AddUpdateReport(ctx context.Context, sensor string, r UpdateReport) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now := time.Now().Unix()
	if _, err := tx.Exec(`INSERT INTO update_reports(sensor, time, running, version, phase, slot, detail) VALUES(?,?,?,?,?,?,?)`,
		sensor, now, r.Running, r.Version, r.Phase, r.Slot, r.Detail); err != nil {
		return err
	}
	detail := fmt.Sprintf("update %s %s (slot %s, running %s)", r.Version, r.Phase, r.Slot, r.Running)
	if r.Detail != "" {
		detail += ": " + r.Detail
	}
	if _, err := tx.Exec(`INSERT INTO events(batch, sensor, time, kind, detail, count) VALUES(x'', ?, ?, 'Update', ?, 0)`,
		sensor, now, detail); err != nil {
		return err
	}
	if r.Running != "" {
		if _, err := tx.Exec(`UPDATE sensors SET version = ?, last_seen = ? WHERE id = ?`, r.Running, now, sensor); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// UpdateReports lists the stored reports of one sensor or all, newest first.
func (s *Store) UpdateReports(ctx context.Context, sensor string) ([]UpdateReportJSON, error) {
	q := `SELECT sensor, time, running, version, phase, slot, detail FROM update_reports`
	var args []any
	if sensor != "" {
		q += ` WHERE sensor = ?`
		args = append(args, sensor)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY rowid DESC LIMIT 1000`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []UpdateReportJSON
	for rows.Next() {
		var r UpdateReportJSON
		var t int64
		if err := rows.Scan(&r.Sensor, &t, &r.Running, &r.Version, &r.Phase, &r.Slot, &r.Detail); err != nil {
			return nil, err
		}
		r.Time = time.Unix(t, 0).UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}

// lastUpdates returns each sensor's latest report.
func (s *Store) lastUpdates(ctx context.Context) (map[string]UpdateReportJSON, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT sensor, time, running, version, phase, slot, detail FROM update_reports
		WHERE rowid IN (SELECT max(rowid) FROM update_reports GROUP BY sensor)`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]UpdateReportJSON{}
	for rows.Next() {
		var r UpdateReportJSON
		var t int64
		if err := rows.Scan(&r.Sensor, &t, &r.Running, &r.Version, &r.Phase, &r.Slot, &r.Detail); err != nil {
			return nil, err
		}
		r.Time = time.Unix(t, 0).UTC()
		out[r.Sensor] = r
	}
	return out, rows.Err()
}

// sensorBoard returns the board a sensor registered with.
func (s *Store) sensorBoard(ctx context.Context, sensor string) string {
	var b string
	s.db.QueryRowContext(ctx, `SELECT board FROM sensors WHERE id = ?`, sensor).Scan(&b)
	return b
}

// updateManifest answers the manifest ordered for the asking sensor, its
// URL pointing at this collector's artefact endpoint as the sensor reached
// it; 204 when nothing is ordered, the sensor runs that version, or a newer
// one and the order is not a downgrade.
func (s *Server) updateManifest(w http.ResponseWriter, r *http.Request) {
	sensor, ok := s.auth(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	board, running := q.Get("board"), q.Get("version")
	if board == "" {
		board = s.Store.sensorBoard(r.Context(), sensor)
	}
	if s.UpdatePoll > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(max(s.UpdatePoll, time.Second)/time.Second)))
	}
	m, name, ok, err := s.Store.OrderFor(r.Context(), sensor, board)
	if err != nil {
		s.Log.Error("update order", "sensor", sensor, "err", err)
		fail(w, http.StatusInternalServerError, "update order: %v", err)
		return
	}
	// Nothing to do: no order, the sensor runs it, or it runs something
	// newer and the order is no signed downgrade (the box would refuse it).
	if !ok || (running != "" && (update.CompareVersions(running, m.Version) == 0 ||
		update.CompareVersions(running, m.Version) > 0 && !m.Downgrade)) {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	scheme := "https"
	if r.TLS == nil {
		scheme = "http"
	}
	m.URL = scheme + "://" + r.Host + PathUpdateArtefacts + name
	s.Log.Info("update manifest", "sensor", sensor, "board", board, "running", running, "version", m.Version)
	writeJSON(w, http.StatusOK, m)
}

// updateArtefact serves a published artefact with range requests.
func (s *Server) updateArtefact(w http.ResponseWriter, r *http.Request) {
	sensor, ok := s.auth(w, r)
	if !ok {
		return
	}
	name := r.PathValue("name")
	if !artefactName.MatchString(name) {
		fail(w, http.StatusNotFound, "no artefact %q", name)
		return
	}
	f, err := os.Open(filepath.Join(s.Dir, artefactDir, name))
	if err != nil {
		fail(w, http.StatusNotFound, "no artefact %q", name)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		fail(w, http.StatusInternalServerError, "artefact %s: %v", name, err)
		return
	}
	// An artefact of hundreds of megabytes outlasts the server's write
	// timeout on a slow site link; give this answer hours instead.
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(4 * time.Hour))
	s.Log.Info("update artefact", "sensor", sensor, "artefact", name, "range", r.Header.Get("Range"))
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, name, st.ModTime(), f)
}

// updateReport stores a step a box reports.
func (s *Server) updateReport(w http.ResponseWriter, r *http.Request) {
	sensor, ok := s.auth(w, r)
	if !ok {
		return
	}
	if r.ContentLength > MaxReportBody {
		fail(w, http.StatusRequestEntityTooLarge, "report of %d bytes exceeds the limit of %d bytes", r.ContentLength, MaxReportBody)
		return
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, MaxReportBody+1))
	if err != nil {
		fail(w, http.StatusBadRequest, "reading the report: %v", err)
		return
	}
	if len(data) > MaxReportBody {
		fail(w, http.StatusRequestEntityTooLarge, "report exceeds the limit of %d bytes", MaxReportBody)
		return
	}
	var rep UpdateReport
	if err := json.Unmarshal(data, &rep); err != nil {
		fail(w, http.StatusBadRequest, "malformed update report: %v", err)
		return
	}
	if err := rep.validate(); err != nil {
		fail(w, http.StatusBadRequest, "update report: %v", err)
		return
	}
	if err := s.Store.AddUpdateReport(r.Context(), sensor, rep); err != nil {
		s.Log.Error("update report", "sensor", sensor, "err", err)
		fail(w, http.StatusInternalServerError, "storing the report: %v", err)
		return
	}
	s.Log.Info("update report", "sensor", sensor, "version", rep.Version, "phase", rep.Phase, "slot", rep.Slot, "detail", rep.Detail)
	w.WriteHeader(http.StatusNoContent)
}

// UpdatesJSON is what /api/updates answers.
type UpdatesJSON struct {
	Orders  []UpdateOrderJSON  `json:"orders"`
	Reports []UpdateReportJSON `json:"reports"`
}

func (s *Server) apiUpdates(w http.ResponseWriter, r *http.Request) {
	var out UpdatesJSON
	var err error
	if out.Orders, err = s.Store.Orders(r.Context()); err == nil {
		out.Reports, err = s.Store.UpdateReports(r.Context(), r.URL.Query().Get("sensor"))
	}
	if err != nil {
		fail(w, http.StatusInternalServerError, "%v", err)
		return
	}
	out.Orders, out.Reports = nonNil(out.Orders), nonNil(out.Reports)
	writeJSON(w, http.StatusOK, out)
}
