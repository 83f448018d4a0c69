package uplink

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/klauspost/compress/zstd"

	"github.com/passivesensor/sensor/asset"
	"github.com/passivesensor/sensor/capture"
)

// Wire format
//
// Everything the sensor sends is a Batch (schema.cddl, rule "batch"): a CBOR
// map with small integer keys in Core Deterministic Encoding (RFC 8949
// section 4.2.1), so the same batch always encodes to the same bytes. A
// batch on the wire or in the spool is either that CBOR, or a zstd frame
// holding it. The two are told apart by their first bytes: a zstd frame
// starts with the magic 28 b5 2f fd, a batch's CBOR with a map head
// (0xa0..0xbf). EncodeBatch compresses only when it makes the batch smaller.
//
// Addresses are byte strings of 4 or 16 bytes, a MAC is a 6-byte string.
// Times inside a batch are signed seconds relative to the batch's base time
// (unix seconds), so most fit in one to three bytes. Strings repeated across
// asset records travel once, in the batch's string table (strtab.go).

// Limits for decoding untrusted input.
const (
	MaxBatchSize = 16 << 20 // bytes of CBOR after decompression
	maxElements  = 1 << 17  // array elements / map pairs per container
	maxNesting   = 12
	batchIDLen   = 16
)

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
	zenc    *zstd.Encoder
	zdec    *zstd.Decoder
)

func init() {
	var err error
	eopts := cbor.CoreDetEncOptions()
	// A nil slice or map is sent as an empty one, never as null: the
	// schema has no nulls.
	eopts.NilContainers = cbor.NilContainerAsEmpty
	if encMode, err = eopts.EncMode(); err != nil {
		panic("uplink: CBOR encoder options: " + err.Error())
	}
	dopts := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		MaxNestedLevels:   maxNesting,
		MaxArrayElements:  maxElements,
		MaxMapPairs:       maxElements,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		UTF8:              cbor.UTF8RejectInvalid,
		NaN:               cbor.NaNDecodeForbidden,
		Inf:               cbor.InfDecodeForbidden,
	}
	if decMode, err = dopts.DecMode(); err != nil {
		panic("uplink: CBOR decoder options: " + err.Error())
	}
	if zenc, err = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithWindowSize(1<<20)); err != nil {
		panic("uplink: zstd encoder: " + err.Error())
	}
	if zdec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxMemory(MaxBatchSize), zstd.WithDecoderMaxWindow(8<<20)); err != nil {
		panic("uplink: zstd decoder: " + err.Error())
	}
}

// Batch is the envelope of everything sent: an id the collector uses to
// drop a batch it already has (resending after a crash is harmless), the
// sensor, the base time the messages' times are relative to, and the
// messages in order.
type Batch struct {
	ID       []byte    `cbor:"1,keyasint"` // 16 random bytes
	Sensor   string    `cbor:"2,keyasint"`
	Base     int64     `cbor:"3,keyasint"` // unix seconds
	Messages []Message `cbor:"4,keyasint"`
	// Dict is the static string dictionary version the encoding may use
	// (dict.go); 0: none.
	Dict uint `cbor:"6,keyasint,omitempty"`
}

// NewBatch starts a batch with a fresh random id.
func NewBatch(sensor string, base time.Time) (*Batch, error) {
	id := make([]byte, batchIDLen)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("uplink: batch id: %w", err)
	}
	return &Batch{ID: id, Sensor: sensor, Base: base.Unix()}, nil
}

// BaseTime is the batch's base time.
func (b *Batch) BaseTime() time.Time { return time.Unix(b.Base, 0).UTC() }

// Message is one of the message kinds; exactly one field is set.
type Message struct {
	Registration  *Registration  `cbor:"1,keyasint,omitempty"`
	Heartbeat     *Heartbeat     `cbor:"2,keyasint,omitempty"`
	AssetReport   *AssetReport   `cbor:"3,keyasint,omitempty"`
	TrafficReport *TrafficReport `cbor:"4,keyasint,omitempty"`
	Event         *Event         `cbor:"5,keyasint,omitempty"`
}

func (m *Message) count() int {
	n := 0
	for _, set := range []bool{m.Registration != nil, m.Heartbeat != nil, m.AssetReport != nil,
		m.TrafficReport != nil, m.Event != nil} {
		if set {
			n++
		}
	}
	return n
}

// Registration asks the cloud to register this box with the personalization
// code the installer typed.
type Registration struct {
	Code       string `cbor:"1,keyasint"`
	HardwareID string `cbor:"2,keyasint"`
	Version    string `cbor:"3,keyasint,omitempty"` // firmware version
	Board      string `cbor:"4,keyasint,omitempty"` // board profile name
}

// SensorState is the sensor's life-cycle state.
type SensorState uint8

// Sensor states.
const (
	StateUnregistered SensorState = iota
	StateRegistered
	StateSensing
	numStates
)

// Heartbeat reports the sensor's health.
type Heartbeat struct {
	State          SensorState     `cbor:"1,keyasint"`
	Version        string          `cbor:"2,keyasint"`
	Uptime         uint64          `cbor:"3,keyasint"`           // seconds
	CPU            uint8           `cbor:"4,keyasint"`           // percent, 0..100
	RAM            uint8           `cbor:"5,keyasint"`           // percent used, 0..100
	Interfaces     []InterfaceStat `cbor:"6,keyasint,omitempty"` // sniffing interfaces
	ActiveAssets1h uint64          `cbor:"7,keyasint"`           // assets seen in the last hour
	NewAssets24h   uint64          `cbor:"8,keyasint"`           // assets discovered in the last 24 h
}

// InterfaceStat is one sniffing interface in a heartbeat.
type InterfaceStat struct {
	Name        string `cbor:"1,keyasint"`
	Link        bool   `cbor:"2,keyasint"`
	RateMbps    uint32 `cbor:"3,keyasint,omitempty"` // negotiated speed
	Utilisation uint8  `cbor:"4,keyasint"`           // percent of RateMbps over the interval
	Packets     uint64 `cbor:"5,keyasint"`           // since the last heartbeat
	Drops       uint64 `cbor:"6,keyasint"`           // since the last heartbeat
}

// ReportReason says why an asset report is sent.
type ReportReason uint8

// Report reasons.
const (
	ReportNew    ReportReason = iota // assets discovered since the last report (5 min)
	ReportUpdate                     // assets whose attributes changed (30 min)
	ReportFull                       // the whole inventory
	numReasons
)

// AssetReport carries asset records.
type AssetReport struct {
	Reason ReportReason  `cbor:"1,keyasint"`
	Assets []AssetRecord `cbor:"2,keyasint"`
}

// AssetRecord is asset.Asset on the wire. The id is left out when it is
// the one implied by the addresses: "mac:" and the MAC when there is one,
// else "ip:" and the first address.
type AssetRecord struct {
	ID        string            `cbor:"1,keyasint,omitempty"`
	Kind      uint8             `cbor:"2,keyasint"`
	MAC       []byte            `cbor:"3,keyasint,omitempty"` // 6 bytes
	IPs       [][]byte          `cbor:"4,keyasint,omitempty"` // 4 or 16 bytes each, current first
	Router    bool              `cbor:"5,keyasint,omitempty"`
	Hostname  string            `cbor:"6,keyasint,omitempty"`
	Domain    string            `cbor:"7,keyasint,omitempty"`
	Vendor    string            `cbor:"8,keyasint,omitempty"`
	Model     string            `cbor:"9,keyasint,omitempty"`
	Firmware  string            `cbor:"10,keyasint,omitempty"`
	Serial    string            `cbor:"11,keyasint,omitempty"`
	OS        string            `cbor:"12,keyasint,omitempty"`
	Class     string            `cbor:"13,keyasint,omitempty"`
	Protocols []string          `cbor:"14,keyasint,omitempty"`
	Ports     []PortRecord      `cbor:"15,keyasint,omitempty"`
	Attrs     map[string]string `cbor:"16,keyasint,omitempty"`
	FirstSeen int64             `cbor:"17,keyasint"` // seconds from the batch base
	LastSeen  int64             `cbor:"18,keyasint"` // seconds from the batch base
}

// PortRecord is an open port: [proto, port].
type PortRecord struct {
	_     struct{} `cbor:",toarray"`
	Proto uint8
	Port  uint16
}

// TrafficReport carries the traffic aggregates of one interval.
type TrafficReport struct {
	Start   int64           `cbor:"1,keyasint"` // seconds from the batch base
	End     int64           `cbor:"2,keyasint"`
	Records []TrafficRecord `cbor:"3,keyasint"`
}

// TrafficRecord is asset.TrafficRecord on the wire. An asset id equal to
// "ip:" and the record's address is left out (it is implied).
type TrafficRecord struct {
	Src        []byte `cbor:"1,keyasint,omitempty"` // absent for an excluded endpoint
	Dst        []byte `cbor:"2,keyasint,omitempty"`
	DPort      uint16 `cbor:"3,keyasint"`
	Proto      uint8  `cbor:"4,keyasint"`
	SrcAsset   string `cbor:"5,keyasint,omitempty"`
	DstAsset   string `cbor:"6,keyasint,omitempty"`
	BytesOut   uint64 `cbor:"7,keyasint,omitempty"`
	BytesIn    uint64 `cbor:"8,keyasint,omitempty"`
	PacketsOut uint64 `cbor:"9,keyasint,omitempty"`
	PacketsIn  uint64 `cbor:"10,keyasint,omitempty"`
}

// EventKind names what happened.
type EventKind uint16

// Event kinds. New kinds are appended; numbers never change.
const (
	EventRebootRequired        EventKind = iota // a change needs a reboot to take effect
	EventDriverChangeRequired                   // the sniffing NIC needs another driver/kernel
	EventAssetReportingStopped                  // the inventory stopped producing reports
	EventCaptureDrops                           // the capture lost frames (Count)
	EventSpoolOverflow                          // the spool dropped unsent records (Count)
	EventCloudUnreachable                       // the collector could not be reached
	EventUpdateApplied                          // a software update was installed
	EventUpdateRolledBack                       // a software update failed its health check
	EventLinkDown                               // a sniffing interface lost its link
	EventLinkUp                                 // a sniffing interface got its link back
	numEventKinds
)

var eventNames = [...]string{
	"reboot-required", "driver-change-required", "asset-reporting-stopped", "capture-drops",
	"spool-overflow", "cloud-unreachable", "update-applied", "update-rolled-back", "link-down", "link-up",
}

func (k EventKind) String() string {
	if int(k) < len(eventNames) {
		return eventNames[k]
	}
	return fmt.Sprintf("event-%d", uint16(k))
}

// Event is something the cloud should know about now.
type Event struct {
	Kind   EventKind `cbor:"1,keyasint"`
	Time   int64     `cbor:"2,keyasint"` // seconds from the batch base
	Detail string    `cbor:"3,keyasint,omitempty"`
	Count  uint64    `cbor:"4,keyasint,omitempty"` // frames dropped, records lost, ...
}

// addrBytes is an address as 4 or 16 bytes; nil for the zero Addr.
func addrBytes(a netip.Addr) []byte {
	if !a.IsValid() {
		return nil
	}
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return b[:]
	}
	b := a.As16()
	return b[:]
}

func addrFrom(b []byte) (netip.Addr, error) {
	switch len(b) {
	case 0:
		return netip.Addr{}, nil
	case 4, 16:
		a, _ := netip.AddrFromSlice(b)
		return a, nil
	}
	return netip.Addr{}, fmt.Errorf("address of %d bytes, want 4 or 16", len(b))
}

func delta(t time.Time, base int64) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix() - base
}

// NewAssetRecord converts an asset for a batch with the given base time
// (unix seconds). A zero time is sent as the base time.
func NewAssetRecord(a *asset.Asset, base int64) AssetRecord {
	r := AssetRecord{
		ID: a.ID, Kind: uint8(a.Kind), Router: a.Router,
		Hostname: a.Hostname, Domain: a.Domain, Vendor: a.Vendor, Model: a.Model,
		Firmware: a.Firmware, Serial: a.Serial, OS: a.OS, Class: a.Class,
		Protocols: a.Protocols,
		FirstSeen: delta(a.FirstSeen, base), LastSeen: delta(a.LastSeen, base),
	}
	if !a.MAC.IsZero() {
		r.MAC = append([]byte(nil), a.MAC[:]...)
	}
	for _, ip := range a.IPs {
		if b := addrBytes(ip); b != nil {
			r.IPs = append(r.IPs, b)
		}
	}
	for _, p := range a.OpenPorts {
		r.Ports = append(r.Ports, PortRecord{Proto: p.Proto, Port: p.Port})
	}
	if len(a.Attrs) > 0 {
		r.Attrs = a.Attrs
	}
	if r.ID != "" && r.ID == assetImpliedID(a.MAC, a.IPs) {
		r.ID = ""
	}
	return r
}

func assetImpliedID(mac capture.MAC, ips []netip.Addr) string {
	if !mac.IsZero() {
		return "mac:" + mac.String()
	}
	if len(ips) > 0 {
		return impliedID(ips[0])
	}
	return ""
}

// Asset converts the record back, given the batch's base time.
func (r *AssetRecord) Asset(base int64) (asset.Asset, error) {
	a := asset.Asset{
		ID: r.ID, Kind: asset.Kind(r.Kind), Router: r.Router,
		Hostname: r.Hostname, Domain: r.Domain, Vendor: r.Vendor, Model: r.Model,
		Firmware: r.Firmware, Serial: r.Serial, OS: r.OS, Class: r.Class,
		Protocols: r.Protocols, Attrs: r.Attrs,
		FirstSeen: time.Unix(base+r.FirstSeen, 0).UTC(),
		LastSeen:  time.Unix(base+r.LastSeen, 0).UTC(),
	}
	switch len(r.MAC) {
	case 0:
	case 6:
		a.MAC = capture.MAC(r.MAC)
	default:
		return a, fmt.Errorf("uplink: asset %q: MAC of %d bytes, want 6", r.ID, len(r.MAC))
	}
	for i, b := range r.IPs {
		ip, err := addrFrom(b)
		if err != nil || !ip.IsValid() {
			return a, fmt.Errorf("uplink: asset %q: address %d: %d bytes, want 4 or 16", r.ID, i, len(b))
		}
		a.IPs = append(a.IPs, ip)
	}
	for _, p := range r.Ports {
		a.OpenPorts = append(a.OpenPorts, asset.Port{Proto: p.Proto, Port: p.Port})
	}
	if a.ID == "" {
		if a.ID = assetImpliedID(a.MAC, a.IPs); a.ID == "" {
			return a, fmt.Errorf("uplink: asset record with neither id nor address")
		}
	}
	return a, nil
}

func impliedID(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return "ip:" + a.Unmap().String()
}

// NewTrafficRecord converts a traffic aggregate.
func NewTrafficRecord(t *asset.TrafficRecord) TrafficRecord {
	r := TrafficRecord{
		Src: addrBytes(t.Src), Dst: addrBytes(t.Dst), DPort: t.DPort, Proto: t.Proto,
		SrcAsset: t.SrcAsset, DstAsset: t.DstAsset,
		BytesOut: t.BytesOut, BytesIn: t.BytesIn, PacketsOut: t.PacketsOut, PacketsIn: t.PacketsIn,
	}
	if r.SrcAsset == impliedID(t.Src) {
		r.SrcAsset = ""
	}
	if r.DstAsset == impliedID(t.Dst) {
		r.DstAsset = ""
	}
	return r
}

// TrafficRecord converts the record back.
func (r *TrafficRecord) TrafficRecord() (asset.TrafficRecord, error) {
	src, err := addrFrom(r.Src)
	if err != nil {
		return asset.TrafficRecord{}, fmt.Errorf("uplink: traffic source: %w", err)
	}
	dst, err := addrFrom(r.Dst)
	if err != nil {
		return asset.TrafficRecord{}, fmt.Errorf("uplink: traffic destination: %w", err)
	}
	t := asset.TrafficRecord{
		TrafficKey: asset.TrafficKey{Src: src, Dst: dst, DPort: r.DPort, Proto: r.Proto},
		SrcAsset:   r.SrcAsset, DstAsset: r.DstAsset,
		BytesOut: r.BytesOut, BytesIn: r.BytesIn, PacketsOut: r.PacketsOut, PacketsIn: r.PacketsIn,
	}
	if t.SrcAsset == "" {
		t.SrcAsset = impliedID(src)
	}
	if t.DstAsset == "" {
		t.DstAsset = impliedID(dst)
	}
	return t, nil
}

// Validate checks what the CBOR decoder cannot: lengths and enums.
func (b *Batch) Validate() error {
	if len(b.ID) != batchIDLen {
		return fmt.Errorf("uplink: batch id of %d bytes, want %d", len(b.ID), batchIDLen)
	}
	if b.Dict > DictVersion {
		return fmt.Errorf("uplink: batch uses string dictionary version %d; this software knows up to %d", b.Dict, DictVersion)
	}
	for i := range b.Messages {
		m := &b.Messages[i]
		if n := m.count(); n != 1 {
			return fmt.Errorf("uplink: message %d has %d kinds set, want 1", i, n)
		}
		switch {
		case m.Heartbeat != nil:
			h := m.Heartbeat
			if h.State >= numStates || h.CPU > 100 || h.RAM > 100 {
				return fmt.Errorf("uplink: message %d: heartbeat state %d cpu %d ram %d out of range", i, h.State, h.CPU, h.RAM)
			}
			for _, ifs := range h.Interfaces {
				if ifs.Utilisation > 100 {
					return fmt.Errorf("uplink: message %d: interface %q utilisation %d%%", i, ifs.Name, ifs.Utilisation)
				}
			}
		case m.AssetReport != nil:
			if m.AssetReport.Reason >= numReasons {
				return fmt.Errorf("uplink: message %d: asset report reason %d", i, m.AssetReport.Reason)
			}
			for j := range m.AssetReport.Assets {
				if _, err := m.AssetReport.Assets[j].Asset(b.Base); err != nil {
					return fmt.Errorf("uplink: message %d record %d: %w", i, j, err)
				}
			}
		case m.TrafficReport != nil:
			for j := range m.TrafficReport.Records {
				if _, err := m.TrafficReport.Records[j].TrafficRecord(); err != nil {
					return fmt.Errorf("uplink: message %d record %d: %w", i, j, err)
				}
			}
		case m.Event != nil:
			// Unknown event kinds are accepted: newer sensors may send them.
		}
	}
	return nil
}

// Marshal encodes v with Core Deterministic Encoding.
func Marshal(v any) ([]byte, error) { return encMode.Marshal(v) }

// Unmarshal decodes untrusted CBOR into v with the package's limits.
func Unmarshal(data []byte, v any) error { return decMode.Unmarshal(data, v) }

var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// EncodeBatch encodes a batch, compressed with zstd when that is smaller.
func EncodeBatch(b *Batch) ([]byte, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	raw, err := encMode.Marshal(toWire(b))
	if err != nil {
		return nil, fmt.Errorf("uplink: encode batch: %w", err)
	}
	if len(raw) > MaxBatchSize {
		return nil, fmt.Errorf("uplink: batch of %d bytes exceeds %d", len(raw), MaxBatchSize)
	}
	z := zenc.EncodeAll(raw, make([]byte, 0, len(raw)/2))
	if len(z) < len(raw) {
		return z, nil
	}
	return raw, nil
}

// ErrNotBatch is returned for input that is neither CBOR nor zstd.
var ErrNotBatch = errors.New("uplink: not a batch")

// DecodeBatch decodes (and if needed decompresses) an untrusted batch.
func DecodeBatch(data []byte) (*Batch, error) {
	if bytes.HasPrefix(data, zstdMagic) {
		raw, err := zdec.DecodeAll(data, nil)
		if err != nil {
			return nil, fmt.Errorf("uplink: decompress batch of %d bytes: %w", len(data), err)
		}
		if len(raw) > MaxBatchSize {
			return nil, fmt.Errorf("uplink: batch decompresses to %d bytes, limit %d", len(raw), MaxBatchSize)
		}
		data = raw
	} else if len(data) == 0 || data[0]>>5 != 5 {
		return nil, ErrNotBatch
	}
	var w wireBatch
	if err := decMode.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("uplink: decode batch: %w", err)
	}
	if len(w.Strings) > maxElements {
		return nil, fmt.Errorf("uplink: string table of %d entries, limit %d", len(w.Strings), maxElements)
	}
	b, err := fromWire(&w)
	if err != nil {
		return nil, err
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	return b, nil
}
