package main

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/passivesensor/sensor/asset"
	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/internal/dissecttest"
	"github.com/passivesensor/sensor/internal/testcorpus"
	"github.com/passivesensor/sensor/it"
	"github.com/passivesensor/sensor/ot"
)

// hostileSources names, by a word of their file names, the protocols whose
// corpus captures give the damaged frames of hostileFrames: the smallest
// Ethernet capture of each.
var hostileSources = []string{
	"modbus", "dnp3", "s7comm", "cotp", "enip", "cip", "bacnet", "iec104", "iec-5-104", "mms", "goose",
	"opcua", "mqtt", "profinet", "ethercat", "fins", "melsec", "ads", "fox", "srtp", "pcworx",
	"arp", "dhcp", "dns", "lldp", "cdp", "http", "tls", "ssl", "snmp", "netbios", "ssdp", "ssh", "smb", "kerberos",
}

// hostileFrames returns frames no healthy network carries, made
// deterministically from seed: headers cut short or lying about their
// lengths, tunnels and tag stacks that go nowhere, runts and jumbo frames,
// garbage on every port and EtherType a dissector asks for, and frames of
// real captures of every protocol with their payloads damaged. Their
// addresses are documentation ones (external) and their MACs locally
// administered, and no byte run equals an address in keep, so that they
// state nothing about the devices of another capture.
func hostileFrames(t *testing.T, seed uint64, keep []netip.Addr) [][]byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	randBytes := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	mac := func() []byte { m := randBytes(6); m[0] = m[0]&^1 | 2; return m }
	eth := func(et uint16, rest ...[]byte) []byte {
		f := append(append(mac(), mac()...), byte(et>>8), byte(et))
		for _, r := range rest {
			f = append(f, r...)
		}
		return f
	}
	extIP4 := func() []byte { return []byte{198, 51, 100, byte(1 + rng.IntN(254))} }
	ipv4 := func(proto byte, ihl, total int, payload []byte) []byte {
		h := make([]byte, 20)
		h[0] = 0x40 | byte(ihl&0xf)
		binary.BigEndian.PutUint16(h[2:], uint16(total))
		h[8], h[9] = 64, proto
		copy(h[12:], extIP4())
		copy(h[16:], []byte{203, 0, 113, byte(1 + rng.IntN(254))})
		return append(h, payload...)
	}
	l4 := func(proto byte, port uint16, payload []byte) []byte {
		var h []byte
		sport := uint16(1024 + rng.IntN(60000))
		if proto == 6 {
			h = make([]byte, 20)
			binary.BigEndian.PutUint32(h[4:], rng.Uint32())
			h[12], h[13] = 5<<4, 0x18 // PSH ACK
		} else {
			h = make([]byte, 8)
			binary.BigEndian.PutUint16(h[4:], uint16(8+len(payload)))
		}
		binary.BigEndian.PutUint16(h[0:], sport)
		binary.BigEndian.PutUint16(h[2:], port)
		if rng.IntN(2) == 0 { // the server answering
			binary.BigEndian.PutUint16(h[0:], port)
			binary.BigEndian.PutUint16(h[2:], sport)
		}
		seg := append(h, payload...)
		return ipv4(proto, 5, 20+len(seg), seg)
	}

	var frames [][]byte
	add := func(f []byte) { frames = append(frames, f) }

	// Headers that lie.
	for _, et := range []uint16{0x0800, 0x86dd, 0x8100, 0x88a8, 0x0806, 0x88cc, 0x8892, 0x88a4, 0x88be, 0x22eb, 0x6558} {
		add(eth(et))                            // nothing after the EtherType
		add(eth(et, randBytes(1+rng.IntN(40)))) // a few bytes of garbage
	}
	for ihl := range 16 {
		add(eth(0x0800, ipv4(6, ihl, 40, make([]byte, 20))))
	}
	add(eth(0x0800, ipv4(6, 5, 65535, make([]byte, 20)))) // total length beyond the frame
	add(eth(0x0800, ipv4(6, 5, 3, make([]byte, 20))))     // shorter than its header
	for _, off := range []byte{0, 1, 4, 15} {             // TCP data offsets
		seg := l4(6, 502, randBytes(30))
		seg[20+12] = off << 4
		add(eth(0x0800, seg))
	}
	udp := l4(17, 47808, randBytes(30))
	binary.BigEndian.PutUint16(udp[20+4:], 4) // UDP length shorter than its header
	add(eth(0x0800, udp))
	udp = l4(17, 47808, randBytes(30))
	binary.BigEndian.PutUint16(udp[20+4:], 60000) // and beyond the datagram
	add(eth(0x0800, udp))
	frag := l4(6, 102, randBytes(100))
	frag[6], frag[7] = 0x3f, 0xff // a later fragment at the largest offset
	add(eth(0x0800, frag))
	ip6 := make([]byte, 40)
	ip6[0], ip6[6], ip6[7] = 0x60, 0, 64 // hop-by-hop header promised, none there
	binary.BigEndian.PutUint16(ip6[4:], 500)
	copy(ip6[8:], netip.MustParseAddr("2001:db8::1").AsSlice())
	copy(ip6[24:], netip.MustParseAddr("2001:db8::2").AsSlice())
	add(eth(0x86dd, ip6, []byte{6, 255}))
	var tags []byte
	for range 8 {
		tags = append(tags, 0x81, 0x00, byte(rng.IntN(16)), byte(rng.Uint32()), 0x81, 0x00)
	}
	add(eth(0x8100, tags[:len(tags)-2], []byte{0x08, 0x00}, ipv4(17, 5, 28, make([]byte, 8)))) // eight tags deep
	add(eth(0x0800, ipv4(47, 5, 28, []byte{0, 0, 0x88, 0xbe, 0x10, 0, 0, 0})))                 // ERSPAN with nothing inside
	add(eth(0x0800, ipv4(47, 5, 30, []byte{0xb0, 0, 0x65, 0x58, 0, 0})))                       // GRE with options missing
	add(eth(0x0800, l4(6, 502, randBytes(8900))))                                              // a jumbo frame

	// Garbage on every port and EtherType a dissector asks for.
	for _, d := range append(it.All(), ot.All()...) {
		w := d.Wants()
		for _, p := range w.TCPPorts {
			add(eth(0x0800, l4(6, p, randBytes(rng.IntN(300)))))
		}
		for _, p := range w.UDPPorts {
			add(eth(0x0800, l4(17, p, randBytes(rng.IntN(300)))))
		}
		for _, et := range w.EtherTypes {
			add(eth(et, randBytes(rng.IntN(300))))
		}
	}

	// Real frames of every protocol, damaged.
	dir := testcorpus.Dir(t)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	type file struct {
		name string
		size int64
	}
	var files []file
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && (strings.HasSuffix(e.Name(), ".pcap") || strings.HasSuffix(e.Name(), ".pcapng")) {
			files = append(files, file{e.Name(), fi.Size()})
		}
	}
	sort.Slice(files, func(i, j int) bool {
		if files[i].size != files[j].size {
			return files[i].size < files[j].size
		}
		return files[i].name < files[j].name
	})
	ip4s, macs := map[[4]byte][4]byte{}, map[[6]byte][]byte{}
	for _, word := range hostileSources {
		for _, f := range files {
			if !strings.Contains(strings.ToLower(f.name), word) {
				continue
			}
			n := damage(t, filepath.Join(dir, f.name), rng, ip4s, macs, add)
			if n > 0 {
				break // the smallest Ethernet capture with payloads
			}
		}
	}
	for _, f := range frames {
		for _, a := range keep {
			if bytes.Contains(f, a.AsSlice()) {
				// Wipe the address: a damaged frame must not name a device
				// of the capture it is compared with.
				for i := bytes.Index(f, a.AsSlice()); i >= 0; i = bytes.Index(f, a.AsSlice()) {
					f[i] ^= 0x80
				}
			}
		}
	}
	return frames
}

// damage adds up to 60 Ethernet frames of the capture path that carry a
// payload, each with its addresses moved to documentation ones and its
// payload damaged: bytes flipped, cut short, grown with garbage, or runs
// set to 0xff. It returns how many it added.
func damage(t *testing.T, path string, rng *rand.Rand, ip4s map[[4]byte][4]byte, macs map[[6]byte][]byte, add func([]byte)) int {
	src, err := capture.OpenFile(path)
	if err != nil {
		return 0
	}
	defer src.Close()
	n := 0
	for n < 60 {
		fr, err := src.Next()
		if err != nil {
			break
		}
		data := fr.Data
		if fr.LinkType != capture.LinkEthernet {
			continue
		}
		pkt := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.NoCopy)
		app := pkt.ApplicationLayer()
		var payload []byte
		if app != nil {
			payload = app.Payload()
		} else if pkt.NetworkLayer() == nil && len(data) > 14 {
			payload = data[14:] // a link-layer protocol
		}
		if len(payload) == 0 {
			continue
		}
		frame := append([]byte(nil), data...)
		at := len(data) - len(payload)
		for _, o := range []int{0, 6} {
			var k [6]byte
			copy(k[:], frame[o:o+6])
			if k[0]&1 == 1 {
				continue // group addresses stay
			}
			m, ok := macs[k]
			if !ok {
				m = []byte{2, byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())}
				macs[k] = m
			}
			copy(frame[o:], m)
		}
		if ip, ok := pkt.NetworkLayer().(*layers.IPv4); ok {
			off := len(data) - len(ip.Contents) - len(ip.Payload)
			for _, o := range []int{off + 12, off + 16} {
				var k [4]byte
				copy(k[:], frame[o:o+4])
				a, ok := ip4s[k]
				if !ok {
					a = [4]byte{203, 0, 113, byte(len(ip4s) % 250)}
					ip4s[k] = a
				}
				copy(frame[o:], a[:])
			}
		}
		p := frame[at:]
		switch rng.IntN(4) {
		case 0:
			for range 1 + rng.IntN(8) {
				p[rng.IntN(len(p))] ^= byte(1 + rng.IntN(255))
			}
		case 1:
			frame = frame[:at+rng.IntN(len(p))]
		case 2:
			for range 1 + rng.IntN(64) {
				frame = append(frame, byte(rng.Uint32()))
			}
		case 3:
			i := rng.IntN(len(p))
			for j := i; j < len(p) && j < i+1+rng.IntN(16); j++ {
				p[j] = 0xff
			}
		}
		add(frame)
		n++
	}
	return n
}

// writeFrames writes frames, then those of the pcap file then (if any), to a
// new Ethernet pcap file.
func writeFrames(t *testing.T, frames [][]byte, then string) string {
	t.Helper()
	var all []capture.Frame
	ts := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, f := range frames {
		ts = ts.Add(time.Millisecond)
		all = append(all, capture.Frame{Data: f, Time: ts, WireLen: len(f), LinkType: capture.LinkEthernet})
	}
	if then != "" {
		dissecttest.Frames(t, then, func(fr capture.Frame) {
			fr.Data = slices.Clone(fr.Data)
			all = append(all, fr)
		})
	}
	return dissecttest.WritePcap(t, all)
}

// classesOf inventories exactly the addresses given, as a classes file.
func classesOf(t *testing.T, ips []netip.Addr) (asset.Classes, string) {
	t.Helper()
	var c asset.Classes
	var prefixes []string
	for _, a := range ips {
		c.Inventoried = append(c.Inventoried, asset.Range{Prefix: netip.PrefixFrom(a, a.BitLen()), Addressing: asset.AddressingStatic})
		prefixes = append(prefixes, `{"prefix":"`+netip.PrefixFrom(a, a.BitLen()).String()+`","addressing":"static"}`)
	}
	p := filepath.Join(t.TempDir(), "classes.json")
	if err := os.WriteFile(p, []byte(`{"inventoried":[`+strings.Join(prefixes, ",")+`]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := asset.LoadClasses(p); err != nil {
		t.Fatalf("classes file: %v", err)
	}
	return c, p
}

// hostileCase is the capture the hostile-frame tests run: frames no healthy
// network carries, then a real capture whose devices are the only ones
// inventoried. What the sensor reports of those devices is what it reports
// of the real capture alone.
//
// On a live interface, a frame whose 802.1Q or 802.1ad EtherType has no tag
// after it never reaches a packet socket (the kernel's receive path fails to
// take the tag off and frees it, counted in rx_packets only): live leaves
// those out.
func hostileCase(t *testing.T, live bool) (file, config string, want map[string]bool, frames uint64) {
	t.Helper()
	real := testcorpus.File(t, "ICS-Pcaps__COTP__cotp.pcap")
	keep := []netip.Addr{netip.MustParseAddr("192.168.1.3"), netip.MustParseAddr("172.16.10.201")}
	classes, config := classesOf(t, keep)
	alone := runFileWith(t, real, classes)
	want = pairs(alone)
	if len(want) == 0 {
		t.Fatalf("the real capture alone gives no (IP, MAC) pair of %v", keep)
	}
	hostile := hostileFrames(t, 1, keep)
	if live {
		hostile = slices.DeleteFunc(hostile, func(f []byte) bool {
			et := binary.BigEndian.Uint16(f[12:])
			return (et == 0x8100 || et == 0x88a8) && len(f) < 18
		})
	}
	t.Logf("%d hostile frames", len(hostile))
	return writeFrames(t, hostile, real), config, want, alone.Stats.Frames + uint64(len(hostile))
}

// Frames no healthy network carries neither stop nor derail the pipeline:
// every one is counted, and the real capture after them gives the same
// devices as alone.
func TestHostileFramesOffline(t *testing.T) {
	file, config, want, frames := hostileCase(t, false)
	classes, err := asset.LoadClasses(config)
	if err != nil {
		t.Fatal(err)
	}
	r := runFileWith(t, file, classes)
	if r.Stats.Frames != frames {
		t.Errorf("read %d frames of %d", r.Stats.Frames, frames)
	}
	if r.Stats.DecodeErrors == 0 {
		t.Error("no decode error counted: the hostile frames were not hostile")
	}
	if d := diff(want, pairs(r)); d != "" {
		t.Errorf("(IP, MAC) pairs after the hostile frames differ from the real capture's alone:\n%s", d)
	}
}

// The same on live sources: AF_PACKET rings and the raw socket hand out
// every hostile frame and keep capturing.
func TestLiveHostileFrames(t *testing.T) {
	file, config, want, frames := hostileCase(t, true)
	liveReplay(t, file, want, frames, "-config", config)
}
