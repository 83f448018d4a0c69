package ot

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
	"github.com/passivesensor/sensor/internal/testcorpus"
)

// Captures whose ListIdentity replies or Identity object reads carry
// identities.
var enipIdentityCorpus = []string{
	"ICS-Security-Tools__pcaps__EthernetIP__enip_test.pcap",
	"ICS-Security-Tools__pcaps__openics__EIP-ChangePortConfigurationAttempt.pcap",
	"ICS-Security-Tools__pcaps__openics__EIP-FirmwareChange.pcap",
	"ICS-Security-Tools__pcaps__openics__EIP-RebootorRestart.pcap",
	"ICS-Security-Tools__pcaps__openics__EIP-SoftwareUpload.pcap",
}

// Captures holding EtherNet/IP identities (ListIdentity replies or
// Identity object reads) and CIP services.
var enipCorpus = []string{
	// The smaller captures first: tests read these by default.
	"ICS-Security-Tools__pcaps__EthernetIP__enip_test.pcap",
	"ICS-Security-Tools__pcaps__openics__EIP-RebootorRestart.pcap",
	"ICS-Security-Tools__pcaps__openics__EIP-SoftwareUpload.pcap",
	"ICS-Security-Tools__pcaps__openics__EIP-RemoteModeChangeAttempt.pcap",
	"ICS-Pcaps__CIP__ENIP_CIP-CM.pcap",
	"ICS-Pcaps__LocalPCAP__enip.pcap",
	"ICS-Security-Tools__pcaps__openics__EIP-ChangePortConfigurationAttempt.pcap",
	"ICS-Security-Tools__pcaps__openics__EIP-FirmwareChange.pcap",
	"ICS-Security-Tools__pcaps__openics__EIP-LockPLCAttempt.pcap",
	"ICS-Security-Tools__pcaps__CIP__cip_only.pcap",
	"ct-samples__Protocols__EthernetIP__Plant1_EthernetIP.pcap",
}

// obsSet returns "IP attr=value" for every observation of attrs.
func obsSet(out collect, attrs ...string) map[string]bool {
	m := map[string]bool{}
	for _, o := range out {
		if len(attrs) == 0 || slices.Contains(attrs, o.Attr) {
			m[o.IP.String()+" "+o.Attr+"="+o.Value] = true
		}
	}
	return m
}

// TestENIPListIdentityTshark compares the identity read from ListIdentity
// replies with tshark's enip.lir.vendor, enip.lir.devtype,
// enip.lir.prodcode, enip.lir.revision, enip.lir.serial, enip.lir.name and
// enip.lir.state.
func TestENIPListIdentityTshark(t *testing.T) {
	for _, name := range enipIdentityCorpus {
		path := testcorpus.File(t, name)
		rows := testcorpus.Tshark(t, path, "enip.lir.name", "ip.src", "enip.lir.vendor", "enip.lir.devtype",
			"enip.lir.prodcode", "enip.lir.revision", "enip.lir.serial", "enip.lir.name", "enip.lir.state")
		if len(rows) == 0 {
			continue
		}
		got := obsSet(runFile(t, path, NewENIP()))
		for _, r := range rows {
			vendor, _ := strconv.ParseUint(strings.TrimPrefix(r[1], "0x"), 16, 16)
			devType, _ := strconv.ParseUint(strings.TrimPrefix(r[2], "0x"), 0, 16)
			rev, _ := strconv.Atoi(r[4]) // tshark reads major and minor as one big-endian number
			serial, _ := strconv.ParseUint(strings.TrimPrefix(r[5], "0x"), 16, 32)
			state, _ := strconv.ParseUint(strings.TrimPrefix(r[7], "0x"), 16, 8)
			want := []string{
				AttrCIPVendorID + "=" + strconv.Itoa(int(vendor)),
				AttrCIPDeviceType + "=0x" + fmt.Sprintf("%04x", devType) + " " + cipDeviceTypes[uint16(devType)].name,
				AttrCIPProductCode + "=" + r[3],
				dissect.AttrFirmware + "=" + strconv.Itoa(rev>>8) + "." + strconv.Itoa(rev&0xff),
				dissect.AttrSerial + "=" + fmt.Sprintf("0x%08x", serial),
				dissect.AttrModel + "=" + r[6],
				AttrCIPState + "=" + fmt.Sprintf("0x%02x", state),
			}
			if c := CIPDeviceClass(uint16(devType)); c != "" {
				want = append(want, dissect.AttrClass+"="+c)
			}
			if v := CIPVendor(uint16(vendor)); v != "" {
				want = append(want, dissect.AttrVendor+"="+v)
			}
			for _, w := range want {
				if !got[r[0]+" "+w] {
					t.Errorf("%s: %s %s missing; have %v", name, r[0], w, keys(got))
				}
			}
		}
	}
}

// TestENIPIdentityObjectTshark compares Identity object (class 1) replies
// with tshark's cip.id.vendor_id, cip.id.device_type, cip.id.product_code,
// cip.id.major_rev, cip.id.minor_rev, cip.id.serial_number and
// cip.id.product_name: read directly they are the device's identity, read
// through a backplane route they describe a module (AttrCIPModule).
func TestENIPIdentityObjectTshark(t *testing.T) {
	checked := 0
	for _, name := range enipIdentityCorpus {
		path := testcorpus.File(t, name)
		rows := testcorpus.Tshark(t, path, "cip.id.product_name", "ip.src", "cip.id.vendor_id", "cip.id.device_type",
			"cip.id.product_code", "cip.id.major_rev", "cip.id.minor_rev", "cip.id.serial_number", "cip.id.product_name")
		if len(rows) == 0 {
			continue
		}
		out := runFile(t, path, NewENIP())
		got := obsSet(out)
		modules := strings.Join(keys(obsSet(out, AttrCIPModule)), "\n")
		for _, r := range rows {
			vendor, _ := strconv.ParseUint(strings.TrimPrefix(r[1], "0x"), 16, 16)
			serial := r[6]
			direct := got[r[0]+" "+dissect.AttrModel+"="+r[7]] &&
				got[r[0]+" "+dissect.AttrVendor+"="+CIPVendor(uint16(vendor))] &&
				got[r[0]+" "+dissect.AttrFirmware+"="+r[4]+"."+r[5]] &&
				got[r[0]+" "+dissect.AttrSerial+"="+serial] &&
				got[r[0]+" "+AttrCIPProductCode+"="+r[3]]
			routed := strings.Contains(modules, r[0]+" "+AttrCIPModule+"=") &&
				strings.Contains(modules, CIPVendor(uint16(vendor))+" "+r[7]+" type "+r[2]) &&
				strings.Contains(modules, "product "+r[3]+" rev "+r[4]+"."+r[5]+" serial "+serial)
			if !direct && !routed {
				t.Errorf("%s: identity %v of %s not read; have %v", name, r, r[0], keys(got))
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no Identity object reply in the corpus")
	}
}

// TestENIPServicesTshark compares the (server, CIP service) pairs of the
// requests with tshark's cip.service (outer and embedded requests), on the
// smaller captures (all of them with OT_ALL_CORPUS=1).
func TestENIPServicesTshark(t *testing.T) {
	files := enipCorpus[:6]
	if os.Getenv("OT_ALL_CORPUS") != "" {
		files = enipCorpus
	}
	for _, name := range files {
		path := testcorpus.File(t, name)
		want := map[string]bool{}
		for _, r := range testcorpus.Tshark(t, path, "cip && tcp.dstport==44818 && !tcp.analysis.retransmission", "ip.dst", "cip.service") {
			for _, s := range strings.Split(r[1], ",") {
				v, _ := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 8)
				if v&0x80 == 0 {
					want[fmt.Sprintf("%s %02x", r[0], v)] = true
				}
			}
		}
		if len(want) == 0 {
			continue
		}
		e := NewENIP()
		got := map[string]bool{}
		e.onCIP = func(p *dissect.Packet, svc uint8, _ uint16, _, _ uint32) {
			got[fmt.Sprintf("%s %02x", p.DstIP, svc)] = true
		}
		out := runFile(t, path, e)
		for k := range want {
			if !got[k] {
				t.Errorf("%s: request %s (server, service) not read", name, k)
			}
		}
		for k := range got {
			if !want[k] {
				t.Errorf("%s: read request %s that tshark does not see", name, k)
			}
		}
		// Roles follow the direction of requests: the server is the side
		// on 44818.
		for _, o := range out {
			if o.Attr == dissect.AttrService && o.IP == o.Peer {
				t.Errorf("%s: service %v with the server as its own peer", name, o)
			}
		}
	}
}

// TestENIPFlags: the captures' stories are flagged: a firmware update, a
// remote stop, PCCC and tag writes.
func TestENIPFlags(t *testing.T) {
	for name, f := range map[string]string{
		"ICS-Security-Tools__pcaps__openics__EIP-FirmwareChange.pcap":          AttrCIPFirmwareUpdate,
		"ICS-Security-Tools__pcaps__openics__EIP-RemoteModeChangeAttempt.pcap": AttrCIPModeChange,
		"ICS-Security-Tools__pcaps__CIP__cip_only.pcap":                        AttrCIPWrite,
		"ct-samples__Protocols__EthernetIP__Plant1_EthernetIP.pcap":            AttrCIPWrite,
	} {
		if len(obsSet(runFile(t, testcorpus.File(t, name), NewENIP()), f)) == 0 {
			t.Errorf("%s: no %s flag", name, f)
		}
	}
}

// TestENIPForwardOpenTshark compares the RPIs and connection paths of
// Forward_Open requests with tshark's cip.cm.otrpi and cip.cm.torpi.
func TestENIPForwardOpenTshark(t *testing.T) {
	path := testcorpus.File(t, "ICS-Security-Tools__pcaps__CIP__cip_only.pcap")
	rows := testcorpus.Tshark(t, path, "cip.service==0x54 && tcp.dstport==44818", "ip.dst", "cip.cm.otrpi", "cip.cm.torpi")
	if len(rows) == 0 {
		t.Fatal("tshark reads no Forward_Open")
	}
	got := strings.Join(keys(obsSet(runFile(t, path, NewENIP()), AttrCIPConnection)), "\n")
	for _, r := range rows {
		if !strings.Contains(got, "rpi_ot_us "+r[1]+" rpi_to_us "+r[2]) {
			t.Errorf("Forward_Open to %s with RPIs %s/%s not described; have\n%s", r[0], r[1], r[2], got)
		}
	}
}

// enipEncap builds an encapsulation message (CIP vol. 2, 2-3).
func enipEncap(cmd uint16, session uint32, ctx uint64, data []byte) []byte {
	b := make([]byte, 24, 24+len(data))
	binary.LittleEndian.PutUint16(b, cmd)
	binary.LittleEndian.PutUint16(b[2:], uint16(len(data)))
	binary.LittleEndian.PutUint32(b[4:], session)
	binary.LittleEndian.PutUint64(b[12:], ctx)
	return append(b, data...)
}

// enipRR wraps a CIP message in SendRRData (interface handle, timeout,
// null address item, unconnected data item).
func enipRR(ctx uint64, cip []byte) []byte {
	d := []byte{0, 0, 0, 0, 10, 0, 2, 0, 0, 0, 0, 0, 0xb2, 0, byte(len(cip)), byte(len(cip) >> 8)}
	return enipEncap(encSendRRData, 0x11223344, ctx, append(d, cip...))
}

// enipIdentityAll is a Get_Attributes_All reply of the Identity object.
func enipIdentityAll(vendor, devType, prod uint16, major, minor uint8, serial uint32, name string) []byte {
	b := []byte{0x81, 0, 0, 0}
	b = binary.LittleEndian.AppendUint16(b, vendor)
	b = binary.LittleEndian.AppendUint16(b, devType)
	b = binary.LittleEndian.AppendUint16(b, prod)
	b = append(b, major, minor, 0x60, 0x30)
	b = binary.LittleEndian.AppendUint32(b, serial)
	b = append(b, byte(len(name)))
	return append(append(b, name...), 3)
}

var enipGetAll = []byte{0x01, 0x02, 0x20, 0x01, 0x24, 0x01}

// enipStream is a client/server exchange of several messages; its
// observations are the same however the bytes are cut into segments.
func enipStream() (cli, srv [][]byte) {
	reg := enipEncap(encRegisterSession, 0, 1, []byte{1, 0, 0, 0})
	cli = [][]byte{reg, enipRR(2, enipGetAll), enipRR(3, []byte{0x10, 0x03, 0x20, 0xf5, 0x24, 0x01, 0x30, 0x05, 1, 2, 3, 4})}
	srv = [][]byte{reg, enipRR(2, enipIdentityAll(1, 0x0e, 54, 20, 11, 0x00c0ffee, "1756-L73/B LOGIX5573")), enipRR(3, []byte{0x90, 0, 0, 0})}
	return
}

// TestENIPSegments: split messages, several per segment, retransmissions
// and a flow picked up mid-way all give the observations of the plain
// exchange.
func TestENIPSegments(t *testing.T) {
	cli, srv := enipStream()
	streamCase{
		newD: func() dissect.Dissector { return NewENIP() }, probe: true, cliMsgs: cli, srvMsgs: srv,
		cli: netip.MustParseAddrPort("10.1.1.10:50000"), srv: netip.MustParseAddrPort("10.1.1.20:44818"),
		must: []string{"10.1.1.20 " + dissect.AttrModel + "=1756-L73/B LOGIX5573", "10.1.1.20 " + dissect.AttrFirmware + "=20.11",
			"10.1.1.20 " + dissect.AttrSerial + "=0x00c0ffee", "10.1.1.20 " + dissect.AttrClass + "=plc",
			"10.1.1.20 " + AttrCIPWrite + "=cip:set-attribute-single tcp-ip-interface"},
	}.check(t)
}

// TestENIPNotENIP: other traffic on 44818 is not claimed.
func TestENIPNotENIP(t *testing.T) {
	e := NewENIP()
	f := tcpFlow(netip.MustParseAddrPort("10.1.1.10:50000"), netip.MustParseAddrPort("10.1.1.20:44818"))
	for _, b := range [][]byte{
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		make([]byte, 24), // NOP with options... zero is a NOP: but followed by junk below
		append(enipEncap(0x0099, 0, 0, nil), 1, 2, 3),
		enipEncap(encRegisterSession, 0, 0, []byte{1, 0}), // wrong length
	} {
		if b2 := b; len(b2) == 24 {
			b2 = append(b2, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1)
			b = b2
		}
		if e.Probe(pkt(f, flow.FromClient, 1, b)) {
			t.Errorf("claimed %x", b)
		}
	}
}

func enipSeeds() [][]byte {
	cli, srv := enipStream()
	seeds := append(slices.Clone(cli), srv...)
	// A ListIdentity reply (CIP vol. 2, 2-4.3.2).
	item := []byte{1, 0, 0, 2, 0xaf, 0x12, 10, 1, 1, 20, 0, 0, 0, 0, 0, 0, 0, 0}
	item = append(item, enipIdentityAll(1, 0x0c, 58, 4, 3, 0x524d8e, "1756-ENBT/A")[4:]...)
	li := []byte{1, 0, 0x0c, 0, byte(len(item)), 0}
	seeds = append(seeds, enipEncap(encListIdentity, 0, 0, append(li, item...)))
	// A Multiple_Service_Packet through Unconnected Send.
	msp := []byte{0x0a, 0x02, 0x20, 0x02, 0x24, 0x01, 2, 0, 6, 0, 12, 0}
	msp = append(msp, enipGetAll...)
	msp = append(msp, 0x4c, 0x02, 0x91, 0x02, 'A', 'B', 1, 0)
	us := []byte{0x52, 0x02, 0x20, 0x06, 0x24, 0x01, 0x0a, 0xf0, byte(len(msp)), 0}
	us = append(append(us, msp...), 1, 0, 1, 0)
	seeds = append(seeds, enipRR(9, us))
	return seeds
}

// TestENIPListIdentityUDP: a ListIdentity reply on UDP is about its
// sender, emitted once per identity however many scans repeat it.
func TestENIPListIdentityUDP(t *testing.T) {
	seeds := enipSeeds()
	reply := seeds[len(seeds)-2]
	e := NewENIP()
	var out collect
	for i := range 3 {
		f := udpFlow(netip.MustParseAddrPort("10.1.1.20:44818"), netip.AddrPortFrom(netip.MustParseAddr("10.1.1.9"), uint16(40000+i)))
		p := pkt(f, flow.FromClient, 0, reply)
		if !e.Probe(p) {
			t.Fatal("ListIdentity reply not probed")
		}
		e.Handle(p, &out)
	}
	got := obsSet(out)
	for _, w := range []string{"10.1.1.20 model=1756-ENBT/A", "10.1.1.20 firmware=4.3", "10.1.1.20 enip.socket=10.1.1.20:44818", "10.1.1.20 class=io", "10.1.1.20 vendor=Rockwell Automation/Allen-Bradley"} {
		if !got[w] {
			t.Errorf("%s missing: %v", w, keys(got))
		}
	}
	n := 0
	for _, o := range out {
		if o.Attr == dissect.AttrModel {
			n++
		}
	}
	if n != 1 {
		t.Errorf("model emitted %d times over 3 scans, want 1", n)
	}
}

// TestENIPTruncated offers every prefix of every seed both ways.
func TestENIPTruncated(t *testing.T) {
	for _, s := range enipSeeds() {
		for n := 0; n <= len(s); n++ {
			for _, dir := range []flow.Dir{flow.FromClient, flow.FromServer} {
				e := NewENIP()
				f := tcpFlow(netip.MustParseAddrPort("10.1.1.10:50000"), netip.MustParseAddrPort("10.1.1.20:44818"))
				p := pkt(f, dir, 1, s[:n])
				e.Probe(p)
				e.Handle(p, dissect.SinkFunc(func(dissect.Observation) {}))
			}
		}
	}
}

// TestENIPAllocs: a claimed flow in steady state allocates nothing.
func TestENIPAllocs(t *testing.T) {
	cli, srv := enipStream()
	e := NewENIP()
	f := tcpFlow(netip.MustParseAddrPort("10.1.1.10:50000"), netip.MustParseAddrPort("10.1.1.20:44818"))
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	seq := [2]uint32{}
	step := func() {
		for i := range cli {
			e.Handle(pkt(f, flow.FromClient, seq[0], cli[i]), sink)
			seq[0] += uint32(len(cli[i]))
			e.Handle(pkt(f, flow.FromServer, seq[1], srv[i]), sink)
			seq[1] += uint32(len(srv[i]))
		}
	}
	step()
	pc := pkt(f, flow.FromClient, 0, cli[1])
	ps := pkt(f, flow.FromServer, 0, srv[1])
	if n := testing.AllocsPerRun(500, func() {
		pc.TCPSeq = seq[0]
		e.Handle(pc, sink)
		seq[0] += uint32(len(cli[1]))
		ps.TCPSeq = seq[1]
		e.Handle(ps, sink)
		seq[1] += uint32(len(srv[1]))
	}); n != 0 {
		t.Errorf("Handle: %v allocations per exchange, want 0", n)
	}
}

// FuzzENIP feeds arbitrary payloads on TCP and UDP, both directions.
func FuzzENIP(f *testing.F) {
	for _, s := range enipSeeds() {
		f.Add(s, uint8(0), uint8(30))
	}
	f.Fuzz(func(t *testing.T, b []byte, mode, cut uint8) {
		e := NewENIP()
		var fl *flow.Flow
		if mode&2 != 0 {
			fl = udpFlow(netip.MustParseAddrPort("10.1.1.10:2222"), netip.MustParseAddrPort("10.1.1.20:2222"))
		} else {
			fl = tcpFlow(netip.MustParseAddrPort("10.1.1.10:50000"), netip.MustParseAddrPort("10.1.1.20:44818"))
		}
		c := min(int(cut), len(b))
		sink := dissect.SinkFunc(func(dissect.Observation) {})
		for _, part := range [][]byte{b[:c], b[c:]} {
			p := pkt(fl, flow.Dir(mode&1), 0, part)
			e.Probe(p)
			e.Handle(p, sink)
		}
	})
}

// udpFlow returns a fresh UDP flow.
func udpFlow(cli, srv netip.AddrPort) *flow.Flow {
	f := tcpFlow(cli, srv)
	f.Proto = 17
	return f
}

// BenchmarkENIPHandle measures a claimed flow's request and reply.
func BenchmarkENIPHandle(b *testing.B) {
	cli, srv := enipStream()
	e := NewENIP()
	f := tcpFlow(netip.MustParseAddrPort("10.1.1.10:50000"), netip.MustParseAddrPort("10.1.1.20:44818"))
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	pc, ps := pkt(f, flow.FromClient, 0, cli[1]), pkt(f, flow.FromServer, 0, srv[1])
	b.ReportAllocs()
	for b.Loop() {
		e.Handle(pc, sink)
		pc.TCPSeq += uint32(len(cli[1]))
		e.Handle(ps, sink)
		ps.TCPSeq += uint32(len(srv[1]))
	}
}

// TestENIPImplicitIO (hand-built from CIP vol. 2, 2-6.3): a UDP 2222
// datagram with a sequenced address item and connected data is claimed
// and noted once per flow; other datagrams on 2222 are not.
func TestENIPImplicitIO(t *testing.T) {
	io := []byte{2, 0, 0x02, 0x80, 8, 0, 0x44, 0x33, 0x22, 0x11, 1, 0, 0, 0, 0xb1, 0, 6, 0, 1, 0, 1, 2, 3, 4}
	e := NewENIP()
	f := udpFlow(netip.MustParseAddrPort("10.1.1.10:2222"), netip.MustParseAddrPort("10.1.1.20:2222"))
	var out collect
	for range 3 {
		p := pkt(f, flow.FromClient, 0, io)
		if !e.Probe(p) {
			t.Fatal("I/O datagram not probed")
		}
		e.Handle(p, &out)
	}
	if len(out) != 1 || out[0].Value != "enip:io-connected" {
		t.Errorf("observations %v, want one enip:io-connected", out)
	}
	if e.Probe(pkt(f, flow.FromClient, 0, []byte("not cip at all, just bytes"))) {
		t.Error("junk on 2222 claimed")
	}
}

// TestENIPIdentityReads (hand-built from CIP vol. 1, 5-2 and A-4): a
// Get_Attribute_Single of the product name, and a Multiple_Service_Packet
// holding a Get_Attribute_List (vendor, serial) and a Read Tag, are
// matched to their replies by sender context.
func TestENIPIdentityReads(t *testing.T) {
	single := []byte{0x0e, 0x03, 0x20, 0x01, 0x24, 0x01, 0x30, 0x07}
	singleReply := append([]byte{0x8e, 0, 0, 0, 11}, "1769-L33ER/"...)
	list := []byte{0x03, 0x02, 0x20, 0x01, 0x24, 0x01, 2, 0, 1, 0, 6, 0}
	read := []byte{0x4c, 0x03, 0x91, 0x03, 'T', 'a', 'g', 0, 1, 0}
	msp := []byte{0x0a, 0x02, 0x20, 0x02, 0x24, 0x01, 2, 0, 6, 0, byte(6 + len(list)), 0}
	msp = append(append(msp, list...), read...)
	listReply := []byte{0x83, 0, 0, 0, 2, 0, 1, 0, 0, 0, 0x01, 0, 6, 0, 0, 0, 0x78, 0x56, 0x34, 0x12}
	readReply := []byte{0xcc, 0, 0, 0, 0xc4, 0, 1, 0, 0, 0}
	mspReply := []byte{0x8a, 0, 0, 0, 2, 0, 6, 0, byte(6 + len(listReply)), 0}
	mspReply = append(append(mspReply, listReply...), readReply...)
	reg := enipEncap(encRegisterSession, 0, 1, []byte{1, 0, 0, 0})
	cli := [][]byte{reg, enipRR(10, single), enipRR(11, msp)}
	srv := [][]byte{reg, enipRR(10, singleReply), enipRR(11, mspReply)}
	streamCase{
		newD: func() dissect.Dissector { return NewENIP() }, probe: true, cliMsgs: cli, srvMsgs: srv,
		cli: netip.MustParseAddrPort("10.1.1.10:50000"), srv: netip.MustParseAddrPort("10.1.1.20:44818"),
		must: []string{"10.1.1.20 model=1769-L33ER/", "10.1.1.20 vendor=" + CIPVendor(1), "10.1.1.20 serial=0x12345678",
			"10.1.1.20 service=cip:read-tag symbolic", "10.1.1.20 service=cip:get-attribute-list identity"},
	}.check(t)
}
