package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // pure-Go SQLite, registers driver "sqlite"

	"github.com/passivesensor/sensor/asset"
	"github.com/passivesensor/sensor/settings"
	"github.com/passivesensor/sensor/uplink"
)

// dbFile is the SQLite database's name in the data directory.
const dbFile = "collector.db"

// Store is the collector's SQLite database.
type Store struct {
	db *sql.DB
}

const schema = `
CREATE TABLE IF NOT EXISTS codes (
	code    TEXT PRIMARY KEY,
	created INTEGER NOT NULL,
	sensor  TEXT
);
CREATE TABLE IF NOT EXISTS sensors (
	id          TEXT PRIMARY KEY,
	code        TEXT NOT NULL UNIQUE,
	hardware_id TEXT NOT NULL,
	token_hash  TEXT NOT NULL UNIQUE,
	version     TEXT NOT NULL DEFAULT '',
	board       TEXT NOT NULL DEFAULT '',
	registered  INTEGER NOT NULL,
	last_seen   INTEGER NOT NULL DEFAULT 0,
	heartbeat   TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS batches (
	id       BLOB PRIMARY KEY,
	sensor   TEXT NOT NULL,
	received INTEGER NOT NULL,
	bytes    INTEGER NOT NULL,
	messages INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS assets (
	sensor     TEXT NOT NULL,
	id         TEXT NOT NULL,
	record     TEXT NOT NULL,
	first_seen INTEGER NOT NULL,
	last_seen  INTEGER NOT NULL,
	reports    INTEGER NOT NULL,
	PRIMARY KEY (sensor, id)
);
CREATE TABLE IF NOT EXISTS traffic (
	batch       BLOB NOT NULL,
	sensor      TEXT NOT NULL,
	start       INTEGER NOT NULL,
	end         INTEGER NOT NULL,
	src         TEXT NOT NULL,
	dst         TEXT NOT NULL,
	dport       INTEGER NOT NULL,
	proto       INTEGER NOT NULL,
	src_asset   TEXT NOT NULL,
	dst_asset   TEXT NOT NULL,
	bytes_out   INTEGER NOT NULL,
	bytes_in    INTEGER NOT NULL,
	packets_out INTEGER NOT NULL,
	packets_in  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
	batch  BLOB NOT NULL,
	sensor TEXT NOT NULL,
	time   INTEGER NOT NULL,
	kind   TEXT NOT NULL,
	detail TEXT NOT NULL,
	count  INTEGER NOT NULL
);
`

// OpenStore opens (creating if needed) the database in dir.
func OpenStore(dir string) (*Store, error) {
	dsn := "file:" + filepath.Join(dir, dbFile) + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", dir, err)
	}
	db.SetMaxOpenConns(1) // one writer; SQLite serialises anyway
	if _, err := db.Exec(schema + updateSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("database %s: schema: %w", dir, err)
	}
	return &Store{db: db}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// NewCode issues a personalization code: 16 characters of
// settings.CodeAlphabet, shown as ABCD-EFGH-JKMN-PQRS.
func (s *Store) NewCode() (string, error) {
	for try := 0; try < 10; try++ {
		var raw [settings.CodeLen]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return "", err
		}
		var b strings.Builder
		for i, r := range raw {
			if i > 0 && i%4 == 0 {
				b.WriteByte('-')
			}
			// 256 is a multiple of the alphabet's 32 characters: no bias.
			b.WriteByte(settings.CodeAlphabet[int(r)%len(settings.CodeAlphabet)])
		}
		code := b.String()
		res, err := s.db.Exec(`INSERT OR IGNORE INTO codes(code, created) VALUES(?, ?)`, code, time.Now().Unix())
		if err != nil {
			return "", fmt.Errorf("storing a new code: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return code, nil
		}
	}
	return "", errors.New("no unused code found")
}

// errRefused is a registration the collector refuses; its text goes to the sensor.
type errRefused string

func (e errRefused) Error() string { return string(e) }

func hashToken(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Register binds a code to a sensor and returns its credentials. A code
// already used by the same hardware registers it again (a lost answer) with
// a new token; any other use of a used code is refused.
func (s *Store) Register(ctx context.Context, r *uplink.Registration) (uplink.Credentials, error) {
	code, err := settings.NormalizePersonalizationCode(r.Code)
	if err != nil || code == "" {
		return uplink.Credentials{}, errRefused("not a valid personalization code")
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return uplink.Credentials{}, err
	}
	defer tx.Rollback()
	var used sql.NullString
	if err := tx.QueryRow(`SELECT sensor FROM codes WHERE code = ?`, code).Scan(&used); errors.Is(err, sql.ErrNoRows) {
		return uplink.Credentials{}, errRefused("not issued or already used")
	} else if err != nil {
		return uplink.Credentials{}, err
	}
	token := randomHex(32)
	var id string
	if used.Valid {
		var hw string
		if err := tx.QueryRow(`SELECT hardware_id FROM sensors WHERE id = ?`, used.String).Scan(&hw); err != nil {
			return uplink.Credentials{}, err
		}
		if hw != r.HardwareID {
			return uplink.Credentials{}, errRefused("not issued or already used")
		}
		id = used.String
		if _, err := tx.Exec(`UPDATE sensors SET token_hash = ?, version = ?, board = ? WHERE id = ?`,
			hashToken(token), r.Version, r.Board, id); err != nil {
			return uplink.Credentials{}, err
		}
	} else {
		id = "sensor-" + randomHex(6)
		if _, err := tx.Exec(`INSERT INTO sensors(id, code, hardware_id, token_hash, version, board, registered) VALUES(?,?,?,?,?,?,?)`,
			id, code, r.HardwareID, hashToken(token), r.Version, r.Board, time.Now().Unix()); err != nil {
			return uplink.Credentials{}, err
		}
		if _, err := tx.Exec(`UPDATE codes SET sensor = ? WHERE code = ?`, id, code); err != nil {
			return uplink.Credentials{}, err
		}
	}
	if err := tx.Commit(); err != nil {
		return uplink.Credentials{}, err
	}
	return uplink.Credentials{SensorID: id, Token: token}, nil
}

// SensorByToken returns the sensor holding the bearer token.
func (s *Store) SensorByToken(ctx context.Context, token string) (string, bool) {
	if token == "" {
		return "", false
	}
	var id string
	err := s.db.QueryRowContext(ctx, `SELECT id FROM sensors WHERE token_hash = ?`, hashToken(token)).Scan(&id)
	return id, err == nil
}

// AssetJSON is an asset as the JSON API and the store show it.
type AssetJSON struct {
	Sensor    string            `json:"sensor,omitempty"`
	ID        string            `json:"id"`
	Kind      string            `json:"kind"`
	MAC       string            `json:"mac,omitempty"`
	IPs       []string          `json:"ips,omitempty"`
	Router    bool              `json:"router,omitempty"`
	Hostname  string            `json:"hostname,omitempty"`
	Domain    string            `json:"domain,omitempty"`
	Vendor    string            `json:"vendor,omitempty"`
	Model     string            `json:"model,omitempty"`
	Firmware  string            `json:"firmware,omitempty"`
	Serial    string            `json:"serial,omitempty"`
	OS        string            `json:"os,omitempty"`
	Class     string            `json:"class,omitempty"`
	Protocols []string          `json:"protocols,omitempty"`
	OpenPorts []string          `json:"open_ports,omitempty"`
	Attrs     map[string]string `json:"attrs,omitempty"`
	FirstSeen time.Time         `json:"first_seen"`
	LastSeen  time.Time         `json:"last_seen"`
}

func protoName(p uint8) string {
	switch p {
	case 6:
		return "tcp"
	case 17:
		return "udp"
	}
	return fmt.Sprint(p)
}

func assetJSON(a *asset.Asset) AssetJSON {
	j := AssetJSON{ID: a.ID, Kind: a.Kind.String(), Router: a.Router, Hostname: a.Hostname, Domain: a.Domain,
		Vendor: a.Vendor, Model: a.Model, Firmware: a.Firmware, Serial: a.Serial, OS: a.OS, Class: a.Class,
		Protocols: a.Protocols, Attrs: a.Attrs, FirstSeen: a.FirstSeen.UTC(), LastSeen: a.LastSeen.UTC()}
	if !a.MAC.IsZero() {
		j.MAC = a.MAC.String()
	}
	for _, ip := range a.IPs {
		j.IPs = append(j.IPs, ip.String())
	}
	for _, p := range a.OpenPorts {
		j.OpenPorts = append(j.OpenPorts, fmt.Sprintf("%d/%s", p.Port, protoName(p.Proto)))
	}
	return j
}

func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// IngestResult says what happened to a batch.
type IngestResult struct {
	Duplicate bool
}

// Ingest stores a validated batch in one transaction. A batch id already
// stored is acknowledged as a duplicate and nothing is stored again.
func (s *Store) Ingest(ctx context.Context, sensor string, b *uplink.Batch, size int) (IngestResult, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return IngestResult{}, err
	}
	defer tx.Rollback()
	now := time.Now().Unix()
	res, err := tx.Exec(`INSERT OR IGNORE INTO batches(id, sensor, received, bytes, messages) VALUES(?,?,?,?,?)`,
		b.ID, sensor, now, size, len(b.Messages))
	if err != nil {
		return IngestResult{}, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return IngestResult{Duplicate: true}, nil
	}
	if _, err := tx.Exec(`UPDATE sensors SET last_seen = ? WHERE id = ?`, now, sensor); err != nil {
		return IngestResult{}, err
	}
	for i := range b.Messages {
		m := &b.Messages[i]
		switch {
		case m.Heartbeat != nil:
			hb, _ := json.Marshal(m.Heartbeat)
			if _, err := tx.Exec(`UPDATE sensors SET heartbeat = ?, version = ? WHERE id = ?`, string(hb), m.Heartbeat.Version, sensor); err != nil {
				return IngestResult{}, err
			}
		case m.AssetReport != nil:
			for j := range m.AssetReport.Assets {
				a, err := m.AssetReport.Assets[j].Asset(b.Base)
				if err != nil {
					return IngestResult{}, err
				}
				rec, _ := json.Marshal(assetJSON(&a))
				if _, err := tx.Exec(`INSERT INTO assets(sensor, id, record, first_seen, last_seen, reports) VALUES(?,?,?,?,?,1)
					ON CONFLICT(sensor, id) DO UPDATE SET record = excluded.record,
					first_seen = min(first_seen, excluded.first_seen), last_seen = max(last_seen, excluded.last_seen),
					reports = reports + 1`,
					sensor, a.ID, string(rec), a.FirstSeen.Unix(), a.LastSeen.Unix()); err != nil {
					return IngestResult{}, err
				}
			}
		case m.TrafficReport != nil:
			tr := m.TrafficReport
			for j := range tr.Records {
				t, err := tr.Records[j].TrafficRecord()
				if err != nil {
					return IngestResult{}, err
				}
				if _, err := tx.Exec(`INSERT INTO traffic(batch, sensor, start, end, src, dst, dport, proto, src_asset, dst_asset,
					bytes_out, bytes_in, packets_out, packets_in) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
					b.ID, sensor, b.Base+tr.Start, b.Base+tr.End, addrText(t.Src), addrText(t.Dst), t.DPort, t.Proto,
					t.SrcAsset, t.DstAsset, int64(t.BytesOut), int64(t.BytesIn), int64(t.PacketsOut), int64(t.PacketsIn)); err != nil {
					return IngestResult{}, err
				}
			}
		case m.Event != nil:
			e := m.Event
			if _, err := tx.Exec(`INSERT INTO events(batch, sensor, time, kind, detail, count) VALUES(?,?,?,?,?,?)`,
				b.ID, sensor, b.Base+e.Time, e.Kind.String(), e.Detail, int64(e.Count)); err != nil {
				return IngestResult{}, err
			}
		}
	}
	return IngestResult{}, tx.Commit()
}

// Assets lists the stored asset records, of one sensor or all.
func (s *Store) Assets(ctx context.Context, sensor string) ([]AssetJSON, error) {
	q := `SELECT sensor, record, first_seen, last_seen FROM assets`
	var args []any
	if sensor != "" {
		q += ` WHERE sensor = ?`
		args = append(args, sensor)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY sensor, id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AssetJSON
	for rows.Next() {
		var sn, rec string
		var first, last int64
		if err := rows.Scan(&sn, &rec, &first, &last); err != nil {
			return nil, err
		}
		var a AssetJSON
		if err := json.Unmarshal([]byte(rec), &a); err != nil {
			return nil, err
		}
		a.Sensor = sn
		a.FirstSeen, a.LastSeen = time.Unix(first, 0).UTC(), time.Unix(last, 0).UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}

// TrafficJSON is one traffic aggregate summed over every stored interval.
type TrafficJSON struct {
	Sensor     string `json:"sensor"`
	Src        string `json:"src,omitempty"`
	Dst        string `json:"dst,omitempty"`
	SrcAsset   string `json:"src_asset,omitempty"`
	DstAsset   string `json:"dst_asset,omitempty"`
	DPort      uint16 `json:"dport"`
	Proto      string `json:"proto"`
	BytesOut   uint64 `json:"bytes_out"`
	BytesIn    uint64 `json:"bytes_in"`
	PacketsOut uint64 `json:"packets_out"`
	PacketsIn  uint64 `json:"packets_in"`
	Intervals  int    `json:"intervals"`
}

// Traffic sums the stored traffic per sensor and 4-tuple.
func (s *Store) Traffic(ctx context.Context, sensor string) ([]TrafficJSON, error) {
	q := `SELECT sensor, src, dst, src_asset, dst_asset, dport, proto, sum(bytes_out), sum(bytes_in), sum(packets_out), sum(packets_in), count(*)
		FROM traffic`
	var args []any
	if sensor != "" {
		q += ` WHERE sensor = ?`
		args = append(args, sensor)
	}
	q += ` GROUP BY sensor, src, dst, src_asset, dst_asset, dport, proto ORDER BY sensor, src, dst, dport, proto`
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []TrafficJSON
	for rows.Next() {
		var t TrafficJSON
		var proto uint8
		var bo, bi, po, pi int64
		if err := rows.Scan(&t.Sensor, &t.Src, &t.Dst, &t.SrcAsset, &t.DstAsset, &t.DPort, &proto, &bo, &bi, &po, &pi, &t.Intervals); err != nil {
			return nil, err
		}
		t.Proto = protoName(proto)
		t.BytesOut, t.BytesIn, t.PacketsOut, t.PacketsIn = uint64(bo), uint64(bi), uint64(po), uint64(pi)
		out = append(out, t)
	}
	return out, rows.Err()
}

// SensorJSON is a registered sensor.
type SensorJSON struct {
	ID         string          `json:"id"`
	HardwareID string          `json:"hardware_id"`
	Version    string          `json:"version,omitempty"`
	Board      string          `json:"board,omitempty"`
	Registered time.Time       `json:"registered"`
	LastSeen   time.Time       `json:"last_seen,omitzero"`
	Batches    int             `json:"batches"`
	Heartbeat  json.RawMessage `json:"heartbeat,omitempty"`
	// Update is the last update step the sensor reported.
	Update *UpdateReportJSON `json:"update,omitempty"`
}

// Sensors lists the registered sensors.
func (s *Store) Sensors(ctx context.Context) ([]SensorJSON, error) {
	// Before the main query: the database has one connection.
	lastUpd, err := s.lastUpdates(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, hardware_id, version, board, registered, last_seen, heartbeat,
		(SELECT count(*) FROM batches WHERE batches.sensor = sensors.id) FROM sensors ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []SensorJSON
	for rows.Next() {
		var j SensorJSON
		var reg, last int64
		var hb string
		if err := rows.Scan(&j.ID, &j.HardwareID, &j.Version, &j.Board, &reg, &last, &hb, &j.Batches); err != nil {
			return nil, err
		}
		j.Registered = time.Unix(reg, 0).UTC()
		if last > 0 {
			j.LastSeen = time.Unix(last, 0).UTC()
		}
		if hb != "" {
			j.Heartbeat = json.RawMessage(hb)
		}
		if u, ok := lastUpd[j.ID]; ok {
			j.Update = &u
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// EventJSON is a stored event.
type EventJSON struct {
	Sensor string    `json:"sensor"`
	Time   time.Time `json:"time"`
	Kind   string    `json:"kind"`
	Detail string    `json:"detail,omitempty"`
	Count  uint64    `json:"count,omitempty"`
}

// Events lists the stored events, newest first.
func (s *Store) Events(ctx context.Context, sensor string) ([]EventJSON, error) {
	q := `SELECT sensor, time, kind, detail, count FROM events`
	var args []any
	if sensor != "" {
		q += ` WHERE sensor = ?`
		args = append(args, sensor)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY time DESC LIMIT 1000`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []EventJSON
	for rows.Next() {
		var e EventJSON
		var t, c int64
		if err := rows.Scan(&e.Sensor, &t, &e.Kind, &e.Detail, &c); err != nil {
			return nil, err
		}
		e.Time, e.Count = time.Unix(t, 0).UTC(), uint64(c)
		out = append(out, e)
	}
	return out, rows.Err()
}
