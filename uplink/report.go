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
// asset's reported record, and only for the assets of the last snapshot it
// was given: an asset that left the inventory (aged out, evicted) is
// forgotten, so what it remembers is bounded by the inventory, and an asset
// removed and seen again (a new record, asset.Asset.Gen) is reported as new.
// It is not safe for concurrent use.
type Reporter struct {
	// Consent allows the protocol-specific raw discovery data (Attrs).
	Consent  bool
	reported map[string]reported
	pass     uint64 // Report calls so far
}

// reported is what a Reporter remembers of one asset.
type reported struct {
	fp   uint64 // fingerprint of the record last reported
	gen  uint64 // the inventory record it was (asset.Asset.Gen)
	pass uint64 // the last Report whose snapshot held the asset
}

// NewReporter returns a reporter that has reported nothing.
func NewReporter(consent bool) *Reporter {
	return &Reporter{Consent: consent, reported: map[string]reported{}}
}

// Reported is the number of assets reported and still in the inventory.
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
// ReportUpdate or ReportFull) over assets, a snapshot of the whole
// inventory, and marks what they carry as reported. No message is returned
// when nothing qualifies.
func (r *Reporter) Report(reason ReportReason, assets []asset.Asset, base int64) []Message {
	return r.report(reason, assets, base, time.Time{})
}

// ReportYoung returns an update report of the assets first seen at or after
// since that were reported and changed since: what a device tells in its
// first minutes (the answers to its first connections, a DHCP renewal)
// reaches the cloud at the pace of new assets rather than of updates.
func (r *Reporter) ReportYoung(assets []asset.Asset, base int64, since time.Time) []Message {
	return r.report(ReportUpdate, assets, base, since)
}

// report is Report, limited to assets first seen at or after young when
// that is set.
func (r *Reporter) report(reason ReportReason, assets []asset.Asset, base int64, young time.Time) []Message {
	r.pass++
	var recs []AssetRecord
	for i := range assets {
		a := &assets[i]
		old, known := r.reported[a.ID]
		if known {
			old.pass = r.pass
			r.reported[a.ID] = old
		}
		seen := known && old.gen == a.Gen // not a new record under the same ID
		if seen && reason == ReportNew || !seen && reason == ReportUpdate {
			continue
		}
		if !young.IsZero() && a.FirstSeen.Before(young) {
			continue
		}
		rec := r.record(a, base)
		fp := fingerprint(rec)
		if reason == ReportUpdate && old.fp == fp {
			continue
		}
		r.reported[a.ID] = reported{fp: fp, gen: a.Gen, pass: r.pass}
		recs = append(recs, rec)
	}
	// Forget the assets the inventory no longer holds.
	for id, e := range r.reported {
		if e.pass != r.pass {
			delete(r.reported, id)
		}
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
