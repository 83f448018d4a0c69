package asset

import (
	"net/netip"
	"sort"
	"sync"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/flow"
)

// DefaultMaxTrafficRecords bounds the records of one reporting interval.
const DefaultMaxTrafficRecords = 100000

// Asset IDs used in traffic records for addresses that are never assets.
const (
	IDMulticast = "multicast"
	IDBroadcast = "broadcast"
	// IDUnspecified stands for hosts sending from 0.0.0.0 or ::.
	IDUnspecified = "unspecified"
)

// Traffic aggregates flows per reporting interval by (client IP, server IP,
// server port, TCP|UDP): Src is the client, Dst the server, "out" is from
// client to server. Each side's asset is resolved through the inventory:
// an excluded side has a zero address and asset "excluded"; an external
// side keeps its address with asset "external" (or "group:NAME" for a
// monitored-external group). It is safe for concurrent use.
type Traffic struct {
	mu   sync.Mutex
	inv  *Inventory
	recs map[TrafficKey]*TrafficRecord
	// Max bounds the records of one interval; flows that would add a
	// record beyond it are counted in Dropped. Set before use.
	Max     int
	dropped uint64
}

// NewTraffic returns an empty aggregate that resolves assets through inv.
func NewTraffic(inv *Inventory) *Traffic {
	return &Traffic{inv: inv, recs: map[TrafficKey]*TrafficRecord{}, Max: DefaultMaxTrafficRecords}
}

// Dropped returns how many flow deltas were not aggregated because the
// interval had Max records already.
func (t *Traffic) Dropped() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.dropped
}

// AddFlow adds what f carried since it was last added (f.Packets and
// f.Bytes less f.Reported*) to this interval, and advances f.Reported*.
// Call it for every flow at the end of each interval (flow.Table.Range)
// and when a flow leaves the table (flow.Config.OnEvict).
func (t *Traffic) AddFlow(f *flow.Flow) {
	if f == nil || (f.Proto != capture.ProtoTCP && f.Proto != capture.ProtoUDP) {
		return
	}
	var dp, db [2]uint64
	for d := range 2 {
		if f.Packets[d] >= f.ReportedPackets[d] {
			dp[d] = f.Packets[d] - f.ReportedPackets[d]
		}
		if f.Bytes[d] >= f.ReportedBytes[d] {
			db[d] = f.Bytes[d] - f.ReportedBytes[d]
		}
	}
	if dp == [2]uint64{} && db == [2]uint64{} {
		return
	}
	src, srcID := t.inv.trafficSide(f.Client.Addr(), f.ClientMAC)
	dst, dstID := t.inv.trafficSide(f.Server.Addr(), f.ServerMAC)
	k := TrafficKey{Src: src, Dst: dst, DPort: f.Server.Port(), Proto: f.Proto}

	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.recs[k]
	if r == nil {
		if len(t.recs) >= t.Max {
			t.dropped++
			return // not reported: keep the delta for the next interval
		}
		r = &TrafficRecord{TrafficKey: k}
		t.recs[k] = r
	}
	r.SrcAsset, r.DstAsset = srcID, dstID
	r.PacketsOut += dp[flow.FromClient]
	r.PacketsIn += dp[flow.FromServer]
	r.BytesOut += db[flow.FromClient]
	r.BytesIn += db[flow.FromServer]
	f.ReportedPackets = f.Packets
	f.ReportedBytes = f.Bytes
}

// Flush returns the interval's records, sorted by key, and starts a new
// interval.
func (t *Traffic) Flush() []TrafficRecord {
	t.mu.Lock()
	recs := t.recs
	t.recs = make(map[TrafficKey]*TrafficRecord, len(recs))
	t.mu.Unlock()
	out := make([]TrafficRecord, 0, len(recs))
	for _, r := range recs {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return keyLess(out[i].TrafficKey, out[j].TrafficKey) })
	return out
}

func keyLess(a, b TrafficKey) bool {
	if c := a.Src.Compare(b.Src); c != 0 {
		return c < 0
	}
	if c := a.Dst.Compare(b.Dst); c != 0 {
		return c < 0
	}
	if a.DPort != b.DPort {
		return a.DPort < b.DPort
	}
	return a.Proto < b.Proto
}

// trafficSide returns the address and asset ID a traffic record shows for
// one side of a flow.
func (inv *Inventory) trafficSide(ip netip.Addr, mac capture.MAC) (netip.Addr, string) {
	ip = ip.Unmap()
	switch {
	case !ip.IsValid():
		return netip.Addr{}, ""
	case ip.IsMulticast():
		return ip, IDMulticast
	case ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return ip, IDBroadcast
	case ip.IsUnspecified():
		// Hosts with no address yet (DHCP clients): records are keyed by
		// address, so several such hosts share one and no MAC names it.
		return ip, IDUnspecified
	}
	inv.mu.Lock()
	defer inv.mu.Unlock()
	k, group, _ := inv.class(ip)
	switch k {
	case Excluded:
		return netip.Addr{}, IDExcluded
	case External:
		return ip, IDExternal
	case MonitoredExternal:
		return ip, "group:" + group
	}
	if inv.cl.exMACs[mac] {
		return netip.Addr{}, IDExcluded
	}
	if inv.broadcast(ip) {
		return ip, IDBroadcast // a subnet's directed broadcast
	}
	return ip, inv.assetID(ip)
}
