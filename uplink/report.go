package uplink

import (
	"hash/fnv"
	"time"

	"github.com/passivesensor/sensor/asset"
)

// MaxRecordsPerMessage bounds the records of one asset or traffic report,
// so a batch stays far below the spool's record size.
const MaxRecordsPerMessage = 2000

// Reporter decides which assets an asset report carries: those never
// reported (new), those whose attributes changed since they were last
// reported (update), or all (full). It remembers a fingerprint of each
// asset's reported record; it is not safe for concurrent use.
type Reporter struct {
	// Consent allows the protocol-specific raw discovery data (Attrs).
	Consent  bool
	reported map[string]uint64
}

// NewReporter returns a reporter that has reported nothing.
func NewReporter(consent bool) *Reporter {
	return &Reporter{Consent: consent, reported: map[string]uint64{}}
}

// Reported is the number of assets reported so far.
func (r *Reporter) Reported() int { return len(r.reported) }

func (r *Reporter) record(a *asset.Asset, base int64) AssetRecord {
	rec := NewAssetRecord(a, base)
	if !r.Consent {
		rec.Attrs = nil
	}
	return rec
}

// fingerprint hashes what an update reports: everything but the times.
func fingerprint(rec AssetRecord) uint64 {
	rec.FirstSeen, rec.LastSeen = 0, 0
	b, err := Marshal(&rec)
	if err != nil {
		return 0
	}
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64()
}

// Report returns the asset-report messages for reason (ReportNew,
// ReportUpdate or ReportFull) over the inventory snapshot, and marks what
// they carry as reported. No message is returned when nothing qualifies.
func (r *Reporter) Report(reason ReportReason, assets []asset.Asset, base int64) []Message {
	var recs []AssetRecord
	for i := range assets {
		rec := r.record(&assets[i], base)
		fp := fingerprint(rec)
		old, seen := r.reported[assets[i].ID]
		switch reason {
		case ReportNew:
			if seen {
				continue
			}
		case ReportUpdate:
			if !seen || old == fp {
				continue
			}
		}
		r.reported[assets[i].ID] = fp
		recs = append(recs, rec)
	}
	var out []Message
	for len(recs) > 0 {
		n := min(len(recs), MaxRecordsPerMessage)
		out = append(out, Message{AssetReport: &AssetReport{Reason: reason, Assets: recs[:n:n]}})
		recs = recs[n:]
	}
	return out
}

// TrafficMessages turns one interval's traffic aggregates into traffic
// reports (several when there are many records).
func TrafficMessages(recs []asset.TrafficRecord, start, end time.Time, base int64) []Message {
	var out []Message
	for len(recs) > 0 || len(out) == 0 {
		n := min(len(recs), MaxRecordsPerMessage)
		tr := &TrafficReport{Start: delta(start, base), End: delta(end, base), Records: make([]TrafficRecord, n)}
		for i := range recs[:n] {
			tr.Records[i] = NewTrafficRecord(&recs[i])
		}
		out = append(out, Message{TrafficReport: tr})
		recs = recs[n:]
		if len(recs) == 0 {
			break
		}
	}
	return out
}

// ActivityCounts returns how many assets were seen within the hour before
// now and how many were first seen within the 24 hours before now
// (pseudo-assets not counted).
func ActivityCounts(assets []asset.Asset, now time.Time) (active1h, new24h uint64) {
	for i := range assets {
		a := &assets[i]
		if a.Kind == asset.External || a.Kind == asset.MonitoredExternal {
			continue
		}
		if now.Sub(a.LastSeen) <= time.Hour {
			active1h++
		}
		if now.Sub(a.FirstSeen) <= 24*time.Hour {
			new24h++
		}
	}
	return active1h, new24h
}
