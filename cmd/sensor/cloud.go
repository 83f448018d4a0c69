package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/passivesensor/sensor/asset"
	"github.com/passivesensor/sensor/board"
	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/status"
	"github.com/passivesensor/sensor/update"
	"github.com/passivesensor/sensor/uplink"
)

// Version is the firmware version sent at registration and in heartbeats:
// on the appliance, the version of the slot it runs from (the updater puts
// it on the slot's kernel command line).
var Version = slotVersion("/proc/cmdline", "dev")

// boardName is the board the sensor registers with: the board its image
// and updates are built for, so that the cloud can order updates per
// board; "" off the appliance.
func boardName() string {
	p, err := board.Detect()
	if err != nil {
		return ""
	}
	return p.Image
}

// slotVersion reads the slot's version from the kernel command line file,
// or returns def when there is none (not on the appliance).
func slotVersion(cmdline, def string) string {
	b, err := os.ReadFile(cmdline)
	if err != nil {
		return def
	}
	if v := update.SlotVersion(string(b)); v != "" {
		return v
	}
	return def
}

// cloud ties the sensor to the uplink agent: it turns the inventory and
// the traffic summary into reports at the configured intervals and keeps
// what the status file shows.
type cloud struct {
	agent  *uplink.Agent
	s      *Sensor
	ifaces []string
	start  time.Time

	mu         sync.Mutex
	rep        *uplink.Reporter
	repSensor  string        // the sensor id rep reports for
	stats      capture.Stats // capture counters at the last report
	reportedDr uint64        // kernel drops already reported
	cpu        uplink.CPUSample
	ifPrev     map[string]uplink.IfaceCounters
	ifPrevT    time.Time
	ifStatus   []status.Interface
	linkUp     map[string]bool // last link state seen per interface
	linkEvents []uplink.Message
	assets     int
	active     int
	lastFrames uint64
	framesT    time.Time // when Frames last moved
	stopped    bool      // an asset-reporting-stopped event is out
	lastNew    time.Time
	lastUpd    time.Time
	lastHB     time.Time
	idGen      uint64    // the inventory's IdentityGen at the last look
	newSince   time.Time // when an asset may have appeared since the last new-asset report
}

// NewAssetSettle is how long after a device first shows up its new-asset
// report waits: long enough for what its first exchanges tell (ARP, DHCP,
// the answers to its first connections) to be in its first record, and for
// a burst of discoveries to share one batch; short enough that a site sees
// a new device within a minute. The configured new-assets interval stays
// the bound: a device is never reported later than that.
const NewAssetSettle = 15 * time.Second

func newCloud(s *Sensor, ifaces []string) *cloud {
	now := time.Now()
	c := &cloud{s: s, ifaces: ifaces, start: now, ifPrev: map[string]uplink.IfaceCounters{}, ifPrevT: now, framesT: now,
		linkUp: map[string]bool{}}
	c.cpu, _ = uplink.ReadCPU()
	for _, n := range ifaces {
		c.ifPrev[n] = uplink.ReadIfaceCounters(n)
	}
	return c
}

// openAgent opens the uplink agent on the state directory; the cloud's
// configuration (cached or new) is applied to the inventory unless the
// operator gave local classes.
func (c *cloud) openAgent(stateDir, cloudURL, caFile string, localClasses bool) error {
	a, err := uplink.OpenAgent(uplink.AgentOptions{
		StateDir: stateDir, CloudURL: cloudURL, CAFile: caFile, Version: Version, Board: boardName(),
		StatusFill: c.fillStatus,
		OnConfig: func(cfg uplink.Config) {
			c.mu.Lock()
			if c.rep != nil {
				c.rep.Consent = cfg.FingerprintConsent
			}
			c.mu.Unlock()
			if localClasses {
				return
			}
			if err := c.s.Inv.SetClasses(cfg.Classes); err != nil {
				slog.Error("cloud configuration: classes not applied", "revision", cfg.Revision, "err", err)
			}
		},
	})
	if err != nil {
		return err
	}
	c.agent = a
	return nil
}

func (c *cloud) fillStatus(s *status.Status) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s.Interfaces = append([]status.Interface(nil), c.ifStatus...)
	s.Assets, s.ActiveAssets = c.assets, c.active
}

// heartbeat builds a heartbeat from /proc, sysfs and the inventory; it
// also refreshes what the status file shows.
func (c *cloud) heartbeat(now time.Time, assets []asset.Asset) *uplink.Heartbeat {
	hb := &uplink.Heartbeat{State: c.agent.State(), Version: Version, Uptime: uplink.Uptime()}
	if cur, err := uplink.ReadCPU(); err == nil {
		c.mu.Lock()
		hb.CPU = uplink.CPUPercent(c.cpu, cur)
		c.cpu = cur
		c.mu.Unlock()
	}
	hb.RAM, _ = uplink.RAMPercent()
	hb.ActiveAssets1h, hb.NewAssets24h = uplink.ActivityCounts(assets, now)
	c.mu.Lock()
	defer c.mu.Unlock()
	secs := now.Sub(c.ifPrevT).Seconds()
	c.ifStatus = c.ifStatus[:0]
	for _, n := range c.ifaces {
		up, mbps := uplink.LinkInfo(n)
		if was, ok := c.linkUp[n]; (ok && was != up) || (!ok && !up) {
			k := uplink.EventLinkUp
			if !up {
				k = uplink.EventLinkDown
			}
			c.linkEvents = append(c.linkEvents, uplink.Message{Event: &uplink.Event{Kind: k, Detail: n}})
		}
		c.linkUp[n] = up
		cur := uplink.ReadIfaceCounters(n)
		prev := c.ifPrev[n]
		st := uplink.InterfaceStat{Name: n, Link: up, RateMbps: mbps,
			Packets: cur.Packets - min(prev.Packets, cur.Packets), Drops: cur.Drops - min(prev.Drops, cur.Drops)}
		var bps float64
		if secs > 0 {
			bps = float64(cur.Bytes-min(prev.Bytes, cur.Bytes)) * 8 / secs
		}
		if mbps > 0 {
			st.Utilisation = uint8(min(100, bps/(float64(mbps)*1e6)*100))
		}
		hb.Interfaces = append(hb.Interfaces, st)
		c.ifStatus = append(c.ifStatus, status.Interface{Name: n, Up: up, SpeedMbs: int(mbps), RateBps: bps,
			Packets: cur.Packets, Drops: cur.Drops})
		c.ifPrev[n] = cur
	}
	c.ifPrevT = now
	c.assets, c.active = len(assets), int(hb.ActiveAssets1h)
	if hb.Uptime == 0 {
		hb.Uptime = uint64(now.Sub(c.start) / time.Second)
	}
	return hb
}

func (c *cloud) enqueue(base time.Time, msgs ...uplink.Message) {
	if err := enqueueGrouped(c.agent, base, msgs); err != nil && !errors.Is(err, uplink.ErrNotRegistered) {
		slog.Error("uplink: queueing a report", "err", err)
	}
}

// maxBatchRecords bounds the asset and traffic records of one batch, so a
// batch stays well below the spool's record limit.
const maxBatchRecords = 2 * uplink.MaxRecordsPerMessage

// enqueueGrouped queues messages in as few batches as the record bound
// allows: one batch compresses better than many small ones.
func enqueueGrouped(a *uplink.Agent, base time.Time, msgs []uplink.Message) error {
	var group []uplink.Message
	n := 0
	flush := func() error {
		if len(group) == 0 {
			return nil
		}
		err := a.Enqueue(base, group...)
		group, n = nil, 0
		return err
	}
	for _, m := range msgs {
		k := 0
		if m.AssetReport != nil {
			k = len(m.AssetReport.Assets)
		} else if m.TrafficReport != nil {
			k = len(m.TrafficReport.Records)
		}
		if n+k > maxBatchRecords {
			if err := flush(); err != nil {
				return err
			}
		}
		group = append(group, m)
		n += k
	}
	return flush()
}

// reporter returns the asset reporter, a fresh one after (re)registration
// so that the first report after it is a full one.
func (c *cloud) reporter() (rep *uplink.Reporter, fresh bool) {
	id := c.agent.SensorID()
	consent := c.agent.Config().FingerprintConsent
	c.mu.Lock()
	defer c.mu.Unlock()
	if id == "" {
		c.rep, c.repSensor = nil, ""
		return nil, false
	}
	if c.rep == nil || c.repSensor != id {
		c.rep, c.repSensor = uplink.NewReporter(consent), id
		return c.rep, true
	}
	return c.rep, false
}

// onReport takes a report of the live pipeline (one traffic interval).
func (c *cloud) onReport(r Report, start, end time.Time) {
	c.mu.Lock()
	var drops uint64
	if r.Stats.KernelDrops > c.reportedDr {
		drops = r.Stats.KernelDrops - c.reportedDr
		c.reportedDr = r.Stats.KernelDrops
	}
	c.stats = r.Stats
	c.mu.Unlock()
	if !c.agent.Registered() {
		return
	}
	msgs := uplink.TrafficMessages(r.Traffic, start, end, end.Unix())
	if drops > 0 {
		msgs = append(msgs, uplink.Message{Event: &uplink.Event{Kind: uplink.EventCaptureDrops,
			Detail: fmt.Sprintf("the kernel dropped %d frames since the last report", drops), Count: drops}})
	}
	c.enqueue(end, msgs...)
}

// tick sends what is due: heartbeat, new assets, changed assets, and the
// asset-reporting-stopped event when no frame arrived for an update
// interval. New assets go out NewAssetSettle after the first of them
// appeared, and at the latest every new-assets interval.
func (c *cloud) tick(now time.Time) {
	iv := c.agent.Config().Intervals.WithDefaults(uplink.DefaultIntervals())
	rep, fresh := c.reporter()
	hbDue := now.Sub(c.lastHB) >= iv.Heartbeat
	// Read before the snapshot below, so that an asset that appears after
	// the snapshot moves the generation past what is kept here.
	if g := c.s.Inv.IdentityGen(); g != c.idGen {
		c.idGen = g
		if c.newSince.IsZero() {
			c.newSince = now
		}
	}
	settled := !c.newSince.IsZero() && now.Sub(c.newSince) >= min(NewAssetSettle, iv.NewAssets)
	newDue := fresh || settled || now.Sub(c.lastNew) >= iv.NewAssets
	updDue := now.Sub(c.lastUpd) >= iv.Updates
	if !hbDue && !newDue && !updDue {
		return
	}
	assets := c.s.Inv.Assets()
	base := now.Unix()
	var msgs []uplink.Message
	if hbDue {
		msgs = append(msgs, uplink.Message{Heartbeat: c.heartbeat(now, assets)})
		c.lastHB = now
		c.mu.Lock()
		msgs = append(msgs, c.linkEvents...)
		c.linkEvents = nil
		c.mu.Unlock()
	}
	if rep != nil {
		c.mu.Lock()
		switch {
		case fresh:
			msgs = append(msgs, rep.Report(uplink.ReportFull, assets, base)...)
			c.lastNew, c.lastUpd, c.newSince = now, now, time.Time{}
		default:
			if newDue {
				msgs = append(msgs, rep.Report(uplink.ReportNew, assets, base)...)
				if !updDue {
					// What devices told after their first report, in
					// their first two new-asset intervals, goes too.
					msgs = append(msgs, rep.ReportYoung(assets, base, now.Add(-2*iv.NewAssets))...)
				}
				c.lastNew, c.newSince = now, time.Time{}
			}
			if updDue {
				msgs = append(msgs, rep.Report(uplink.ReportUpdate, assets, base)...)
				c.lastUpd = now
			}
		}
		frames := c.stats.Frames
		if frames != c.lastFrames {
			c.lastFrames, c.framesT, c.stopped = frames, now, false
		} else if !c.stopped && now.Sub(c.framesT) >= iv.Updates {
			c.stopped = true
			msgs = append(msgs, uplink.Message{Event: &uplink.Event{Kind: uplink.EventAssetReportingStopped,
				Detail: fmt.Sprintf("no frame captured for %s", now.Sub(c.framesT).Round(time.Second))}})
		}
		c.mu.Unlock()
	}
	c.enqueue(now, msgs...)
	if hbDue {
		c.agent.WriteStatus() // interfaces and asset counts are fresh
	}
}

// loop runs tick every second until ctx ends.
func (c *cloud) loop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		c.tick(time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// uploadFile registers (if needed), queues everything learnt from a
// capture file and waits until the cloud has acknowledged it all.
func (c *cloud) uploadFile(ctx context.Context, r Report, timeout time.Duration) error {
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { c.agent.Run(runCtx); close(done) }()
	defer func() { stop(); <-done }()
	wctx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	if err := c.agent.WaitRegistered(wctx); err != nil {
		return err
	}
	if err := c.agent.RefreshConfig(wctx); err != nil {
		slog.Warn("cloud configuration not pulled; the cached one stays in force", "err", err)
	}
	// Times in the batch are relative to the capture's last frame.
	var first, last time.Time
	for _, a := range r.Assets {
		if !a.LastSeen.IsZero() && a.LastSeen.After(last) {
			last = a.LastSeen
		}
		if !a.FirstSeen.IsZero() && (first.IsZero() || a.FirstSeen.Before(first)) {
			first = a.FirstSeen
		}
	}
	if last.IsZero() {
		last = time.Now()
		first = last
	}
	rep := uplink.NewReporter(c.agent.Config().FingerprintConsent)
	msgs := []uplink.Message{{Heartbeat: c.heartbeat(last, r.Assets)}}
	msgs = append(msgs, rep.Report(uplink.ReportFull, r.Assets, last.Unix())...)
	msgs = append(msgs, uplink.TrafficMessages(r.Traffic, first, last, last.Unix())...)
	if r.Stats.KernelDrops > 0 {
		msgs = append(msgs, uplink.Message{Event: &uplink.Event{Kind: uplink.EventCaptureDrops, Count: r.Stats.KernelDrops}})
	}
	if err := enqueueGrouped(c.agent, last, msgs); err != nil {
		return err
	}
	slog.Info("uploading", "assets", len(r.Assets), "traffic", len(r.Traffic), "sensor", c.agent.SensorID())
	return c.agent.Drain(wctx)
}
