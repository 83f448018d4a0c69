package uplink

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/passivesensor/sensor/asset"
	"github.com/passivesensor/sensor/capture"
)

var testNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// sampleAssets makes n assets like an OT site's inventory: a mix of PLCs,
// HMIs and workstations with the attributes dissectors fill in.
func sampleAssets(n int, rng *rand.Rand) []asset.Asset {
	vendors := []string{"Siemens AG", "Rockwell Automation", "Schneider Electric", "Dell Inc.", "Hewlett Packard", "Moxa Inc."}
	models := []string{"S7-1500 CPU 1515-2 PN", "1756-L83E ControlLogix", "M580 BMEP582040", "OptiPlex 7090", "EliteDesk 800 G6", "NPort 5150"}
	classes := []string{"PLC", "PLC", "PLC", "workstation", "workstation", "gateway"}
	protos := [][]string{{"profinet", "s7comm"}, {"cip", "enip"}, {"modbus"}, {"dhcp", "dns", "netbios", "smb"}, {"dhcp", "dns", "http"}, {"modbus", "http"}}
	ports := [][]asset.Port{{{Proto: 6, Port: 102}}, {{Proto: 6, Port: 44818}, {Proto: 17, Port: 2222}}, {{Proto: 6, Port: 502}},
		{{Proto: 6, Port: 139}, {Proto: 6, Port: 445}}, {{Proto: 6, Port: 3389}}, {{Proto: 6, Port: 80}, {Proto: 6, Port: 502}}}
	out := make([]asset.Asset, n)
	for i := range out {
		v := rng.Intn(len(vendors))
		mac := capture.MAC{0x00, 0x1b, 0x1b, byte(rng.Intn(256)), byte(i >> 8), byte(i)}
		ip := netip.AddrFrom4([4]byte{10, 20, byte(i >> 8), byte(i)})
		a := asset.Asset{
			ID: "mac:" + mac.String(), Kind: asset.Inventoried, MAC: mac, IPs: []netip.Addr{ip},
			Hostname: fmt.Sprintf("line%d-%s-%03d", i%7, classes[v], i), Domain: "plant.example.com",
			Vendor: vendors[v], Model: models[v], Firmware: fmt.Sprintf("V%d.%d.%d", 2+v, i%10, rng.Intn(20)),
			Serial: fmt.Sprintf("S C-%08X", rng.Uint32()), Class: classes[v],
			Protocols: protos[v], OpenPorts: ports[v],
			FirstSeen: testNow.Add(-time.Duration(rng.Intn(86400)) * time.Second),
			LastSeen:  testNow.Add(-time.Duration(rng.Intn(300)) * time.Second),
		}
		if v >= 3 {
			a.OS = "Windows 10 Enterprise"
			a.Attrs = map[string]string{"dhcp.vendor_class": "MSFT 5.0", "smb.os": "Windows 10 Enterprise 19045"}
		} else {
			a.Attrs = map[string]string{"rack": fmt.Sprint(i % 4), "slot": fmt.Sprint(i % 8)}
		}
		if i%10 == 0 {
			a.IPs = append(a.IPs, netip.MustParseAddr(fmt.Sprintf("fd00::%x", i+1)))
		}
		out[i] = a
	}
	return out
}

func sampleTraffic(n int, rng *rand.Rand) []asset.TrafficRecord {
	out := make([]asset.TrafficRecord, n)
	dports := []uint16{102, 502, 44818, 443, 53, 445, 80}
	for i := range out {
		src := netip.AddrFrom4([4]byte{10, 20, 0, byte(rng.Intn(60))})
		dst := netip.AddrFrom4([4]byte{10, 20, 1, byte(rng.Intn(60))})
		t := asset.TrafficRecord{
			TrafficKey: asset.TrafficKey{Src: src, Dst: dst, DPort: dports[rng.Intn(len(dports))], Proto: capture.ProtoTCP},
			SrcAsset:   "ip:" + src.String(), DstAsset: "ip:" + dst.String(),
			BytesOut: uint64(rng.Intn(1 << 24)), BytesIn: uint64(rng.Intn(1 << 22)),
			PacketsOut: uint64(rng.Intn(1 << 14)), PacketsIn: uint64(rng.Intn(1 << 14)),
		}
		switch i % 10 {
		case 7:
			t.Dst = netip.MustParseAddr("8.8.8.8")
			t.DstAsset = "external"
			t.Proto, t.DPort = capture.ProtoUDP, 53
		case 8:
			t.Dst = netip.Addr{}
			t.DstAsset = "group:vendor-cloud"
		case 9:
			t.SrcAsset = "mac:00:1b:1b:00:00:09" // a router's MAC
		}
		out[i] = t
	}
	return out
}

func fullBatch(t testing.TB, assets []asset.Asset, traffic []asset.TrafficRecord) *Batch {
	b, err := NewBatch("sensor-0042", testNow)
	if err != nil {
		t.Fatal(err)
	}
	b.Dict = DictVersion
	ar := &AssetReport{Reason: ReportNew}
	for i := range assets {
		ar.Assets = append(ar.Assets, NewAssetRecord(&assets[i], b.Base))
	}
	tr := &TrafficReport{Start: -300, End: 0}
	for i := range traffic {
		tr.Records = append(tr.Records, NewTrafficRecord(&traffic[i]))
	}
	b.Messages = []Message{
		{Registration: &Registration{Code: "ABCD-1234", HardwareID: "rpi4-10000000deadbeef", Version: "1.4.2", Board: "rpi4-lcd"}},
		{Heartbeat: &Heartbeat{State: StateSensing, Version: "1.4.2", Uptime: 86400 * 3, CPU: 37, RAM: 61,
			Interfaces:     []InterfaceStat{{Name: "eth1", Link: true, RateMbps: 1000, Utilisation: 12, Packets: 1234567, Drops: 3}},
			ActiveAssets1h: 143, NewAssets24h: 4}},
		{AssetReport: ar},
		{TrafficReport: tr},
		{Event: &Event{Kind: EventSpoolOverflow, Time: -12, Detail: "spool full, oldest segment dropped", Count: 57}},
	}
	return b
}

func TestAssetRecordRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	assets := sampleAssets(50, rng)
	assets = append(assets, asset.Asset{ID: "external", Kind: asset.External, FirstSeen: testNow, LastSeen: testNow},
		asset.Asset{ID: "ip:192.168.1.9", Kind: asset.NonInventoried,
			IPs: []netip.Addr{netip.MustParseAddr("::ffff:192.168.1.9")}, FirstSeen: testNow.Add(-time.Hour), LastSeen: testNow})
	traffic := sampleTraffic(50, rng)
	b := fullBatch(t, assets, traffic)
	enc, err := EncodeBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeBatch(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, b) {
		t.Fatalf("batch changed in a round trip:\n got %+v\nwant %+v", got, b)
	}
	for i, r := range got.Messages[2].AssetReport.Assets {
		a, err := r.Asset(got.Base)
		if err != nil {
			t.Fatal(err)
		}
		want := assets[i]
		for j, ip := range want.IPs {
			want.IPs[j] = ip.Unmap()
		}
		want.FirstSeen, want.LastSeen = want.FirstSeen.UTC(), want.LastSeen.UTC()
		if !reflect.DeepEqual(a, want) {
			t.Fatalf("asset %d:\n got %+v\nwant %+v", i, a, want)
		}
	}
	for i, r := range got.Messages[3].TrafficReport.Records {
		tr, err := r.TrafficRecord()
		if err != nil {
			t.Fatal(err)
		}
		if tr != traffic[i] {
			t.Fatalf("traffic %d:\n got %+v\nwant %+v", i, tr, traffic[i])
		}
	}
}

func TestDeterministic(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	b := fullBatch(t, sampleAssets(20, rng), sampleTraffic(20, rng))
	a1, err := Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ { // map iteration order differs run to run
		a2, err := Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a1, a2) {
			t.Fatal("two encodings of the same batch differ")
		}
	}
	// Core deterministic: a decode/re-encode gives the same bytes.
	var back Batch
	if err := Unmarshal(a1, &back); err != nil {
		t.Fatal(err)
	}
	a3, _ := Marshal(&back)
	if !bytes.Equal(a1, a3) {
		t.Fatal("re-encoding a decoded batch changed its bytes")
	}
}

func TestDecodeRejectsUntrusted(t *testing.T) {
	good, err := Marshal(fullBatch(t, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	deep := bytes.Repeat([]byte{0x81}, 100) // 100 nested arrays
	deep = append(deep, 0x00)
	cases := map[string][]byte{
		"empty":            {},
		"not a map":        {0x83, 1, 2, 3},
		"deep nesting":     append([]byte{0xa1, 0x04}, deep...),
		"indefinite array": {0xa1, 0x04, 0x9f, 0xff},
		"duplicate key":    {0xa2, 0x02, 0x61, 'a', 0x02, 0x61, 'b'},
		"unknown key":      {0xa1, 0x18, 0x63, 0x00},
		"tag":              {0xa1, 0x03, 0xc1, 0x01},
		"short id":         {0xa1, 0x01, 0x42, 1, 2},
		"huge array claim": {0xa1, 0x04, 0x9b, 0, 0, 0, 1, 0, 0, 0, 0},
		"truncated":        good[:len(good)/2],
		"two kinds": mustMarshal(t, &Batch{ID: make([]byte, 16), Messages: []Message{
			{Heartbeat: &Heartbeat{}, Event: &Event{}}}}),
		"bad mac": mustMarshal(t, &Batch{ID: make([]byte, 16), Messages: []Message{
			{AssetReport: &AssetReport{Assets: []AssetRecord{{ID: "x", MAC: []byte{1, 2, 3}}}}}}}),
		"asset without id or address": mustMarshal(t, &Batch{ID: make([]byte, 16), Messages: []Message{
			{AssetReport: &AssetReport{Assets: []AssetRecord{{Hostname: "plc1"}}}}}}),
		"bad address": mustMarshal(t, &Batch{ID: make([]byte, 16), Messages: []Message{
			{TrafficReport: &TrafficReport{Records: []TrafficRecord{{Src: []byte{1, 2, 3, 4, 5}}}}}}}),
		"cpu 101%": mustMarshal(t, &Batch{ID: make([]byte, 16), Messages: []Message{
			{Heartbeat: &Heartbeat{CPU: 101}}}}),
		"string reference out of range": mustMarshal(t, &wireBatch{ID: make([]byte, 16), Strings: []string{"Siemens AG"},
			Messages: []wireMessage{{AssetReport: &wireAssetReport{Assets: []wireAsset{{ID: "ip:10.0.0.1", Vendor: uint64(1)}}}}}}),
		"vendor as bytes": mustMarshal(t, &wireBatch{ID: make([]byte, 16),
			Messages: []wireMessage{{AssetReport: &wireAssetReport{Assets: []wireAsset{{ID: "ip:10.0.0.1", Vendor: []byte("x")}}}}}}),
		"null attribute": mustMarshal(t, &wireBatch{ID: make([]byte, 16),
			Messages: []wireMessage{{AssetReport: &wireAssetReport{Assets: []wireAsset{{ID: "ip:10.0.0.1", Attrs: map[any]any{"a": nil}}}}}}}),
		"attribute twice by reference": mustMarshal(t, &wireBatch{ID: make([]byte, 16), Strings: []string{"rack"},
			Messages: []wireMessage{{AssetReport: &wireAssetReport{Assets: []wireAsset{{ID: "ip:10.0.0.1", Attrs: map[any]any{"rack": "1", uint64(0): "2"}}}}}}}),
		"unknown dictionary version": mustMarshal(t, &wireBatch{ID: make([]byte, 16), Dict: DictVersion + 1}),
		"dictionary entry out of range": mustMarshal(t, &wireBatch{ID: make([]byte, 16), Dict: 1,
			Messages: []wireMessage{{AssetReport: &wireAssetReport{Assets: []wireAsset{{ID: "ip:10.0.0.1", Vendor: int64(-1 - len(dictV1))}}}}}}),
		"dictionary entry without a dictionary": mustMarshal(t, &wireBatch{ID: make([]byte, 16),
			Messages: []wireMessage{{TrafficReport: &wireTrafficReport{Records: []wireTraffic{{SrcAsset: int64(-1)}}}}}}),
		"zstd garbage": append([]byte{0x28, 0xb5, 0x2f, 0xfd}, bytes.Repeat([]byte{0xee}, 40)...),
		// Zeros compressed: over MaxBatchSize once decompressed.
		"zstd bomb": zenc.EncodeAll(make([]byte, MaxBatchSize+1024), nil),
	}
	for name, in := range cases {
		if _, err := DecodeBatch(in); err == nil {
			t.Errorf("%s: DecodeBatch accepted %d bytes", name, len(in))
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	if _, err := DecodeBatch(good); err != nil {
		t.Fatalf("the good batch: %v", err)
	}
	// Random mutations must never panic.
	rng := rand.New(rand.NewSource(3))
	for i := 0; i < 5000; i++ {
		m := append([]byte(nil), good...)
		for j := 0; j < 1+rng.Intn(4); j++ {
			m[rng.Intn(len(m))] = byte(rng.Intn(256))
		}
		DecodeBatch(m)
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzDecodeBatch(f *testing.F) {
	rng := rand.New(rand.NewSource(4))
	b := fullBatch(f, sampleAssets(3, rng), sampleTraffic(3, rng))
	good, _ := Marshal(b)
	f.Add(good)
	f.Add(zenc.EncodeAll(good, nil))
	// The wire form: string table and dictionary references.
	wire, _ := encMode.Marshal(toWire(b))
	f.Add(wire)
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := DecodeBatch(data)
		if err != nil {
			return
		}
		// What decodes re-encodes and decodes to the same thing.
		enc, err := EncodeBatch(b)
		if err != nil {
			t.Fatalf("decoded batch does not encode: %v", err)
		}
		b2, err := DecodeBatch(enc)
		if err != nil || !reflect.DeepEqual(b, b2) {
			t.Fatalf("re-decode: %v", err)
		}
	})
}

// sizes measures one record kind: bytes per record of CBOR and JSON, raw
// and in a zstd-compressed batch of n records.
type sizes struct {
	cbor, json, cborZ, jsonZ float64
}

func measure(t testing.TB, n int) (as, ts sizes) {
	rng := rand.New(rand.NewSource(5))
	assets := sampleAssets(n, rng)
	traffic := sampleTraffic(n, rng)
	full := fullBatch(t, assets, traffic)
	// wire is the batch's CBOR as EncodeBatch writes it (string table
	// included), before compression.
	wire := func(msgs ...Message) []byte {
		b := *full
		b.Messages = msgs
		raw, err := encMode.Marshal(toWire(&b))
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	// A record's share: the batch with n records minus the batch without.
	per := func(msg, empty Message, js any) sizes {
		c, e := wire(msg), wire(empty)
		j, err := json.Marshal(js)
		if err != nil {
			t.Fatal(err)
		}
		f := float64(n)
		cz, ez := zenc.EncodeAll(c, nil), zenc.EncodeAll(e, nil)
		return sizes{
			cbor: float64(len(c)-len(e)) / f, json: float64(len(j)) / f,
			cborZ: float64(len(cz)-len(ez)) / f, jsonZ: float64(len(zenc.EncodeAll(j, nil))) / f,
		}
	}
	return per(full.Messages[2], Message{AssetReport: &AssetReport{Reason: ReportNew}}, assets),
		per(full.Messages[3], Message{TrafficReport: &TrafficReport{Start: -300}}, traffic)
}

// TestRecordSizes compares the wire size of asset and traffic records (their
// share of a batch of 100 as EncodeBatch writes it, string table included)
// with encoding/json of the same asset.Asset / asset.TrafficRecord values
// (readable field names, addresses as text, RFC 3339 times).
func TestRecordSizes(t *testing.T) {
	as, ts := measure(t, 100)
	for _, x := range []struct {
		name string
		s    sizes
	}{{"asset", as}, {"traffic", ts}} {
		t.Logf("%s record, batch of 100: CBOR %.1f B, JSON %.1f B (%.1fx); zstd: CBOR %.1f B, JSON %.1f B (%.1fx); zstd CBOR vs raw JSON %.1fx",
			x.name, x.s.cbor, x.s.json, x.s.json/x.s.cbor, x.s.cborZ, x.s.jsonZ, x.s.jsonZ/x.s.cborZ, x.s.json/x.s.cborZ)
		if x.s.json/x.s.cbor < 4 || x.s.json/x.s.cborZ < 4 {
			t.Errorf("%s records are not compact enough: %+v", x.name, x.s)
		}
	}
}

func BenchmarkRecordSizes(b *testing.B) {
	var as, ts sizes
	for i := 0; i < b.N; i++ {
		as, ts = measure(b, 100)
	}
	b.ReportMetric(as.cbor, "asset-cbor-B")
	b.ReportMetric(as.json, "asset-json-B")
	b.ReportMetric(as.cborZ, "asset-cborzstd-B")
	b.ReportMetric(as.jsonZ, "asset-jsonzstd-B")
	b.ReportMetric(ts.cbor, "traffic-cbor-B")
	b.ReportMetric(ts.json, "traffic-json-B")
	b.ReportMetric(ts.cborZ, "traffic-cborzstd-B")
	b.ReportMetric(ts.jsonZ, "traffic-jsonzstd-B")
}

func BenchmarkEncodeBatch(b *testing.B) {
	rng := rand.New(rand.NewSource(6))
	batch := fullBatch(b, sampleAssets(100, rng), sampleTraffic(100, rng))
	b.ReportAllocs()
	var n int
	for i := 0; i < b.N; i++ {
		enc, err := EncodeBatch(batch)
		if err != nil {
			b.Fatal(err)
		}
		n = len(enc)
	}
	b.ReportMetric(float64(n), "batch-B")
}
