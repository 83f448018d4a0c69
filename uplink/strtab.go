package uplink

import (
	"fmt"
	"sort"
)

// String table
//
// Asset records repeat the same strings many times over: vendors, models,
// device classes, operating systems, protocol names, attribute names and
// common attribute values; traffic records repeat the asset ids of the
// busy devices. On the wire a batch may carry a string table (key 5 of
// batch): every text field of an asset record and the asset ids of a
// traffic record (schema rule "text") are then either the text itself or
// the index of a table entry (an unsigned integer, one byte for the 24
// most frequent, two up to 256). EncodeBatch puts in the table each
// string that occurs at least twice in the batch's records and whose
// reference is shorter than the text,
// most frequent first; DecodeBatch resolves the references. The Go types
// (Batch, AssetRecord) always hold the plain strings.

// wireBatch is Batch as encoded by EncodeBatch.
type wireBatch struct {
	ID       []byte        `cbor:"1,keyasint"`
	Sensor   string        `cbor:"2,keyasint"`
	Base     int64         `cbor:"3,keyasint"`
	Messages []wireMessage `cbor:"4,keyasint"`
	Strings  []string      `cbor:"5,keyasint,omitempty"`
	Dict     uint          `cbor:"6,keyasint,omitempty"`
}

type wireMessage struct {
	Registration  *Registration      `cbor:"1,keyasint,omitempty"`
	Heartbeat     *Heartbeat         `cbor:"2,keyasint,omitempty"`
	AssetReport   *wireAssetReport   `cbor:"3,keyasint,omitempty"`
	TrafficReport *wireTrafficReport `cbor:"4,keyasint,omitempty"`
	Event         *Event             `cbor:"5,keyasint,omitempty"`
}

type wireTrafficReport struct {
	Start   int64         `cbor:"1,keyasint"`
	End     int64         `cbor:"2,keyasint"`
	Records []wireTraffic `cbor:"3,keyasint"`
}

// wireTraffic is TrafficRecord with its asset ids as text or table index.
type wireTraffic struct {
	Src        []byte `cbor:"1,keyasint,omitempty"`
	Dst        []byte `cbor:"2,keyasint,omitempty"`
	DPort      uint16 `cbor:"3,keyasint"`
	Proto      uint8  `cbor:"4,keyasint"`
	SrcAsset   any    `cbor:"5,keyasint,omitempty"`
	DstAsset   any    `cbor:"6,keyasint,omitempty"`
	BytesOut   uint64 `cbor:"7,keyasint,omitempty"`
	BytesIn    uint64 `cbor:"8,keyasint,omitempty"`
	PacketsOut uint64 `cbor:"9,keyasint,omitempty"`
	PacketsIn  uint64 `cbor:"10,keyasint,omitempty"`
}

type wireAssetReport struct {
	Reason ReportReason `cbor:"1,keyasint"`
	Assets []wireAsset  `cbor:"2,keyasint"`
}

// wireAsset is AssetRecord with its text fields as text or table index
// (string or uint64; nil when empty).
type wireAsset struct {
	ID        any          `cbor:"1,keyasint,omitempty"`
	Kind      uint8        `cbor:"2,keyasint"`
	MAC       []byte       `cbor:"3,keyasint,omitempty"`
	IPs       [][]byte     `cbor:"4,keyasint,omitempty"`
	Router    bool         `cbor:"5,keyasint,omitempty"`
	Hostname  any          `cbor:"6,keyasint,omitempty"`
	Domain    any          `cbor:"7,keyasint,omitempty"`
	Vendor    any          `cbor:"8,keyasint,omitempty"`
	Model     any          `cbor:"9,keyasint,omitempty"`
	Firmware  any          `cbor:"10,keyasint,omitempty"`
	Serial    any          `cbor:"11,keyasint,omitempty"`
	OS        any          `cbor:"12,keyasint,omitempty"`
	Class     any          `cbor:"13,keyasint,omitempty"`
	Protocols []any        `cbor:"14,keyasint,omitempty"`
	Ports     []PortRecord `cbor:"15,keyasint,omitempty"`
	Attrs     map[any]any  `cbor:"16,keyasint,omitempty"`
	FirstSeen int64        `cbor:"17,keyasint"`
	LastSeen  int64        `cbor:"18,keyasint"`
}

// refLen is the CBOR length of an unsigned integer.
func refLen(i int) int {
	switch {
	case i < 24:
		return 1
	case i < 256:
		return 2
	}
	return 3
}

// strLen is the CBOR length of a text string.
func strLen(s string) int { return refLen(len(s)) + len(s) }

// eachText calls f on every text of an asset record, in field order.
func (r *AssetRecord) eachText(f func(s string)) {
	for _, s := range []string{r.ID, r.Hostname, r.Domain, r.Vendor, r.Model, r.Firmware, r.Serial, r.OS, r.Class} {
		if s != "" {
			f(s)
		}
	}
	for _, p := range r.Protocols {
		f(p)
	}
	for k, v := range r.Attrs {
		f(k)
		f(v)
	}
}

// toWire builds the wire form of b with its string table.
func toWire(b *Batch) *wireBatch {
	static := dictIndex(b.Dict)
	count := map[string]int{}
	for i := range b.Messages {
		if ar := b.Messages[i].AssetReport; ar != nil {
			for j := range ar.Assets {
				ar.Assets[j].eachText(func(s string) { count[s]++ })
			}
		}
		if tr := b.Messages[i].TrafficReport; tr != nil {
			for j := range tr.Records {
				for _, s := range []string{tr.Records[j].SrcAsset, tr.Records[j].DstAsset} {
					if s != "" {
						count[s]++
					}
				}
			}
		}
	}
	type cand struct {
		s string
		n int
	}
	var cands []cand
	for s, n := range count {
		if _, ok := static[s]; ok {
			continue // the dictionary has it
		}
		// Worth it if it saves bytes even as a two-byte reference; the
		// table entry costs the text once.
		if n >= 2 && (n-1)*strLen(s) > n*2 {
			cands = append(cands, cand{s, n})
		}
	}
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].n != cands[j].n {
			return cands[i].n > cands[j].n
		}
		return cands[i].s < cands[j].s
	})
	w := &wireBatch{ID: b.ID, Sensor: b.Sensor, Base: b.Base, Dict: b.Dict, Messages: make([]wireMessage, len(b.Messages))}
	index := map[string]int{}
	for i, c := range cands {
		if refLen(i) >= strLen(c.s) {
			continue
		}
		index[c.s] = len(w.Strings)
		w.Strings = append(w.Strings, c.s)
	}
	text := func(s string) any {
		if s == "" {
			return nil
		}
		if i, ok := static[s]; ok {
			return int64(-1 - i)
		}
		if i, ok := index[s]; ok {
			return uint64(i)
		}
		return s
	}
	for i := range b.Messages {
		m := &b.Messages[i]
		wm := &w.Messages[i]
		wm.Registration, wm.Heartbeat, wm.Event = m.Registration, m.Heartbeat, m.Event
		if tr := m.TrafficReport; tr != nil {
			wtr := &wireTrafficReport{Start: tr.Start, End: tr.End, Records: make([]wireTraffic, len(tr.Records))}
			for j := range tr.Records {
				r := &tr.Records[j]
				wtr.Records[j] = wireTraffic{Src: r.Src, Dst: r.Dst, DPort: r.DPort, Proto: r.Proto,
					SrcAsset: text(r.SrcAsset), DstAsset: text(r.DstAsset),
					BytesOut: r.BytesOut, BytesIn: r.BytesIn, PacketsOut: r.PacketsOut, PacketsIn: r.PacketsIn}
			}
			wm.TrafficReport = wtr
		}
		if m.AssetReport == nil {
			continue
		}
		war := &wireAssetReport{Reason: m.AssetReport.Reason, Assets: make([]wireAsset, len(m.AssetReport.Assets))}
		for j := range m.AssetReport.Assets {
			r := &m.AssetReport.Assets[j]
			wa := wireAsset{ID: text(r.ID), Kind: r.Kind, MAC: r.MAC, IPs: r.IPs, Router: r.Router,
				Hostname: text(r.Hostname), Domain: text(r.Domain), Vendor: text(r.Vendor), Model: text(r.Model),
				Firmware: text(r.Firmware), Serial: text(r.Serial), OS: text(r.OS), Class: text(r.Class),
				Ports: r.Ports, FirstSeen: r.FirstSeen, LastSeen: r.LastSeen}
			for _, p := range r.Protocols {
				wa.Protocols = append(wa.Protocols, textOrEmpty(text(p)))
			}
			if len(r.Attrs) > 0 {
				wa.Attrs = make(map[any]any, len(r.Attrs))
				for k, v := range r.Attrs {
					wa.Attrs[textOrEmpty(text(k))] = textOrEmpty(text(v))
				}
			}
			war.Assets[j] = wa
		}
		wm.AssetReport = war
	}
	return w
}

// textOrEmpty keeps an empty string inside an array or map as "" (never null).
func textOrEmpty(v any) any {
	if v == nil {
		return ""
	}
	return v
}

// fromWire resolves the string table and returns the plain batch.
func fromWire(w *wireBatch) (*Batch, error) {
	if w.Dict > DictVersion {
		return nil, fmt.Errorf("uplink: batch uses string dictionary version %d; this software knows up to %d", w.Dict, DictVersion)
	}
	dict := dictionary(w.Dict)
	// resolve turns a wire text into its string.
	resolve := func(v any) (string, error) {
		switch x := v.(type) {
		case string:
			return x, nil
		case uint64:
			if x < uint64(len(w.Strings)) {
				return w.Strings[x], nil
			}
			return "", fmt.Errorf("refers to string %d of a table of %d", x, len(w.Strings))
		case int64:
			if i := -1 - x; x < 0 && i < int64(len(dict)) {
				return dict[i], nil
			}
			return "", fmt.Errorf("refers to entry %d of string dictionary version %d (%d entries)", -1-x, w.Dict, len(dict))
		}
		return "", fmt.Errorf("is %T, want text, string-table index or dictionary entry", v)
	}
	b := &Batch{ID: w.ID, Sensor: w.Sensor, Base: w.Base, Dict: w.Dict, Messages: make([]Message, len(w.Messages))}
	if len(w.Messages) == 0 {
		b.Messages = nil
	}
	for i := range w.Messages {
		wm := &w.Messages[i]
		m := &b.Messages[i]
		m.Registration, m.Heartbeat, m.Event = wm.Registration, wm.Heartbeat, wm.Event
		if wtr := wm.TrafficReport; wtr != nil {
			tr := &TrafficReport{Start: wtr.Start, End: wtr.End}
			if len(wtr.Records) > 0 {
				tr.Records = make([]TrafficRecord, len(wtr.Records))
			}
			var err error
			text := func(j int, field string, v any) string {
				if err != nil || v == nil {
					return ""
				}
				s, rerr := resolve(v)
				if rerr != nil {
					err = fmt.Errorf("uplink: message %d traffic %d: %s %w", i, j, field, rerr)
				}
				return s
			}
			for j := range wtr.Records {
				r := &wtr.Records[j]
				tr.Records[j] = TrafficRecord{Src: r.Src, Dst: r.Dst, DPort: r.DPort, Proto: r.Proto,
					SrcAsset: text(j, "source asset", r.SrcAsset), DstAsset: text(j, "destination asset", r.DstAsset),
					BytesOut: r.BytesOut, BytesIn: r.BytesIn, PacketsOut: r.PacketsOut, PacketsIn: r.PacketsIn}
			}
			if err != nil {
				return nil, err
			}
			m.TrafficReport = tr
		}
		if wm.AssetReport == nil {
			continue
		}
		ar := &AssetReport{Reason: wm.AssetReport.Reason}
		if len(wm.AssetReport.Assets) > 0 {
			ar.Assets = make([]AssetRecord, len(wm.AssetReport.Assets))
		}
		for j := range wm.AssetReport.Assets {
			wa := &wm.AssetReport.Assets[j]
			var err error
			text := func(field string, v any) string {
				if err != nil || v == nil {
					return ""
				}
				s, rerr := resolve(v)
				if rerr != nil {
					err = fmt.Errorf("uplink: message %d asset %d: %s %w", i, j, field, rerr)
				}
				return s
			}
			r := AssetRecord{ID: text("id", wa.ID), Kind: wa.Kind, MAC: wa.MAC, IPs: wa.IPs, Router: wa.Router,
				Hostname: text("hostname", wa.Hostname), Domain: text("domain", wa.Domain), Vendor: text("vendor", wa.Vendor),
				Model: text("model", wa.Model), Firmware: text("firmware", wa.Firmware), Serial: text("serial", wa.Serial),
				OS: text("os", wa.OS), Class: text("class", wa.Class), Ports: wa.Ports, FirstSeen: wa.FirstSeen, LastSeen: wa.LastSeen}
			for _, p := range wa.Protocols {
				if p == nil {
					err = fmt.Errorf("uplink: message %d asset %d: null protocol", i, j)
				}
				r.Protocols = append(r.Protocols, text("protocol", p))
			}
			if len(wa.Attrs) > 0 {
				r.Attrs = make(map[string]string, len(wa.Attrs))
				for k, v := range wa.Attrs {
					ks := text("attribute name", k)
					if _, dup := r.Attrs[ks]; dup && err == nil {
						err = fmt.Errorf("uplink: message %d asset %d: attribute %q twice", i, j, ks)
					}
					if v == nil {
						err = fmt.Errorf("uplink: message %d asset %d: attribute %q is null", i, j, ks)
					}
					r.Attrs[ks] = text("attribute "+ks, v)
				}
			}
			if err != nil {
				return nil, err
			}
			ar.Assets[j] = r
		}
		m.AssetReport = ar
	}
	return b, nil
}
