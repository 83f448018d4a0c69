package ot

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
	"github.com/passivesensor/sensor/internal/testcorpus"
)

// TestADSCorpus compares what the sensor learns from the nDPI ADS capture
// (TwinCAT 2 runtime answering Read Device Info on ports 300 and 800) with
// tshark's ams dissector: AMS Net Ids (ams.sendernetid by ip.src), AMS
// ports (ams.senderport by ip.src, ams.targetport of commands by ip.dst),
// commands (ams.cmdid of commands by ip.dst) and the Read Device Info
// replies (ams.ads_devicename, ams.ads_versionversion/revision/build).
func TestADSCorpus(t *testing.T) {
	path := testcorpus.File(t, "nDPI__tests__cfgs__default__pcap__beckhoff_ads.pcapng")
	rows := testcorpus.Tshark(t, path, "ams", "ip.src", "ip.dst", "ams.sendernetid", "ams.senderport", "ams.targetport",
		"ams.cmdid", "ams.state_response", "ams.ads_devicename", "ams.ads_versionversion", "ams.ads_versionrevision", "ams.ads_versionbuild")
	if len(rows) == 0 {
		t.Fatal("tshark read no AMS packet")
	}
	want := map[string][]string{}
	add := func(k, v string) { want[k] = append(want[k], v) }
	for _, r := range rows {
		add(r[0]+" "+AttrADSNetID, r[2])
		add(r[0]+" "+AttrADSPort, r[3])
		if r[6] == "0" || r[6] == "False" {
			add(r[1]+" "+AttrADSPort, r[4])
			add(r[1]+" service", r[5])
		}
		if r[7] != "" {
			add(r[0]+" "+AttrADSDevice, r[3]+" "+r[7]+" "+r[8]+"."+r[9]+"."+r[10])
		}
	}
	out := runFile(t, path, NewADS())
	got := vndFacts(out)
	for k, v := range got {
		if strings.HasSuffix(k, " service") {
			for i := range v {
				v[i], _, _ = strings.Cut(strings.TrimPrefix(v[i], "ads:"), " ")
			}
		}
	}
	for k, w := range want {
		g := vndSet(got[k])
		switch {
		case strings.HasSuffix(k, AttrADSPort):
			g = vndUnion(got[k], ",")
		case strings.HasSuffix(k, AttrADSDevice):
			g = vndUnion(got[k], "; ")
		}
		if w := vndSet(w); !slices.Equal(g, w) {
			t.Errorf("%s: got %q, tshark %q", k, g, w)
		}
	}
	if len(want["192.168.1.8 "+AttrADSDevice]) == 0 {
		t.Fatal("tshark found no Read Device Info reply")
	}
	if fw := got["192.168.1.8 firmware"]; len(fw) != 1 || fw[0] != "TwinCAT 2.11.2100" && fw[0] != "TwinCAT 2.11.2103" {
		t.Errorf("firmware %q", fw)
	}
	if !slices.Equal(got["192.168.1.8 role"], []string{RoleADSServer}) || !slices.Equal(got["192.168.1.99 role"], []string{RoleADSClient}) {
		t.Errorf("roles %v %v", got["192.168.1.8 role"], got["192.168.1.99 role"])
	}
	vndOnce(t, out, 1)
}

// amsPacket builds an AMS/TCP frame (ADS specification: AMS/TCP header,
// AMS header, ADS data; little endian).
func amsPacket(target, source [6]byte, tport, sport, cmd uint16, resp bool, invoke uint32, data []byte) []byte {
	b := []byte{0, 0, 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(b[2:], uint32(amsHeaderLen+len(data)))
	b = append(b, target[:]...)
	b = binary.LittleEndian.AppendUint16(b, tport)
	b = append(b, source[:]...)
	b = binary.LittleEndian.AppendUint16(b, sport)
	b = binary.LittleEndian.AppendUint16(b, cmd)
	state := uint16(adsStateADSCmd)
	if resp {
		state |= adsStateResponse
	}
	b = binary.LittleEndian.AppendUint16(b, state)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, invoke)
	return append(b, data...)
}

// adsDeviceInfo is the data of a Read Device Info reply: result, major,
// minor, build, 16-byte name.
func adsDeviceInfo(major, minor byte, build uint16, name string) []byte {
	b := []byte{0, 0, 0, 0, major, minor}
	b = binary.LittleEndian.AppendUint16(b, build)
	return append(b, pad(name, 16)...)
}

// adsDiscoveryReply builds a discovery reply as TwinCAT routers send it
// (layout as read by nmap's twincat-scan script: header, then tags 5 host
// name, 4 OSVERSIONINFO, 3 TwinCAT version).
func adsDiscoveryReply(netid [6]byte, host string, osMajor, osMinor, osBuild, platform uint32, tc [4]byte) []byte {
	b := []byte{0x03, 0x66, 0x14, 0x71, 0, 0, 0, 0}
	b = binary.LittleEndian.AppendUint32(b, adsDiscResponse|adsDiscSearch)
	b = append(b, netid[:]...)
	b = binary.LittleEndian.AppendUint16(b, 10000)
	b = binary.LittleEndian.AppendUint32(b, 3)
	tag := func(id uint16, v []byte) {
		b = binary.LittleEndian.AppendUint16(b, id)
		b = binary.LittleEndian.AppendUint16(b, uint16(len(v)))
		b = append(b, v...)
	}
	tag(adsTagHostname, append([]byte(host), 0))
	osv := binary.LittleEndian.AppendUint32(nil, 276)
	for _, x := range []uint32{osMajor, osMinor, osBuild, platform} {
		osv = binary.LittleEndian.AppendUint32(osv, x)
	}
	tag(adsTagOS, append(osv, make([]byte, 256)...))
	tag(adsTagVersion, tc[:])
	return b
}

var (
	adsCli    = netip.MustParseAddrPort("10.3.0.5:51000")
	adsSrv    = netip.MustParseAddrPort("10.3.0.20:48898")
	adsNetCli = [6]byte{10, 3, 0, 5, 1, 1}
	adsNetSrv = [6]byte{5, 20, 30, 40, 1, 1}
)

// TestADSSpecBuilt: Read Device Info, Write and Write Control built from
// the ADS specification, split across segments.
func TestADSSpecBuilt(t *testing.T) {
	d := NewADS()
	f := tcpFlow(adsCli, adsSrv)
	var out collect
	seq := [2]uint32{}
	send := func(dir flow.Dir, b []byte) {
		for i := 0; i < len(b); i += 10 {
			d.Handle(vndPkt(f, dir, seq[dir]+uint32(i), b[i:min(i+10, len(b))]), &out)
		}
		seq[dir] += uint32(len(b))
	}
	req := amsPacket(adsNetSrv, adsNetCli, 851, 32905, 1, false, 7, nil)
	if !d.Probe(vndPkt(f, flow.FromClient, 0, req)) {
		t.Fatal("Probe rejected Read Device Info")
	}
	send(flow.FromClient, req)
	send(flow.FromServer, amsPacket(adsNetCli, adsNetSrv, 32905, 851, 1, true, 7, adsDeviceInfo(3, 1, 4024, "Plc30 App")))
	send(flow.FromClient, amsPacket(adsNetSrv, adsNetCli, 851, 32905, 3, false, 8, []byte{0x20, 0xf0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 1, 0}))
	send(flow.FromClient, amsPacket(adsNetSrv, adsNetCli, 851, 32905, 5, false, 9, []byte{6, 0, 0, 0, 0, 0, 0, 0}))
	got := vndFacts(out)
	srv, cli := adsSrv.Addr().String(), adsCli.Addr().String()
	for k, w := range map[string][]string{
		srv + " " + AttrADSDevice:  {"851 Plc30 App 3.1.4024"},
		srv + " firmware":          {"TwinCAT 3.1.4024"},
		srv + " " + AttrADSNetID:   {"5.20.30.40.1.1"},
		cli + " " + AttrADSNetID:   {"10.3.0.5.1.1"},
		srv + " " + AttrADSPort:    {"851"},
		cli + " " + AttrADSPort:    {"32905"},
		srv + " " + AttrADSWrite:   {"ads:3 write"},
		srv + " " + AttrADSControl: {"ads:5 write-control stop"},
		srv + " service":           {"ads:1 read-device-info", "ads:3 write", "ads:5 write-control"},
	} {
		if !slices.Equal(got[k], w) {
			t.Errorf("%s: got %q, want %q", k, got[k], w)
		}
	}
}

// TestADSLargeWrite: a write too large to buffer (a download) is read by
// its header, and the request that follows it in a segment of its own is
// read too.
func TestADSLargeWrite(t *testing.T) {
	d := NewADS()
	f := tcpFlow(adsCli, adsSrv)
	var out collect
	big := amsPacket(adsNetSrv, adsNetCli, 851, 32905, 3, false, 8, make([]byte, 3*dissect.DefaultStreamMax))
	next := amsPacket(adsNetSrv, adsNetCli, 851, 32905, 5, false, 9, []byte{6, 0, 0, 0, 0, 0, 0, 0})
	seq := uint32(0)
	for _, b := range [][]byte{big[:1400], big[1400 : 2*dissect.DefaultStreamMax], big[2*dissect.DefaultStreamMax:], next} {
		d.Handle(vndPkt(f, flow.FromClient, seq, b), &out)
		seq += uint32(len(b))
	}
	got := vndFacts(out)
	srv := adsSrv.Addr().String()
	if w := []string{"ads:3 write", "ads:5 write-control"}; !slices.Equal(got[srv+" service"], w) {
		t.Errorf("services %q, want %q", got[srv+" service"], w)
	}
}

// TestADSDiscoverySpecBuilt reads a discovery reply built after the layout
// public scanners read (no capture of one is public).
func TestADSDiscoverySpecBuilt(t *testing.T) {
	d := NewADS()
	f := vndUDPFlow(netip.MustParseAddrPort("10.3.0.5:55000"), netip.MustParseAddrPort("10.3.0.20:48899"))
	reply := adsDiscoveryReply(adsNetSrv, "CX-5A1B2C", 7, 0, 0, 3, [4]byte{3, 1, 0xb8, 0x0f})
	p := vndPkt(f, flow.FromServer, 0, reply)
	if !d.Probe(p) {
		t.Fatal("Probe rejected a discovery reply")
	}
	var out collect
	d.Handle(p, &out)
	got := vndFacts(out)
	for k, w := range map[string][]string{
		"10.3.0.20 hostname":            {"CX-5A1B2C"},
		"10.3.0.20 " + AttrADSNetID:     {"5.20.30.40.1.1"},
		"10.3.0.20 " + AttrADSTwinCAT:   {"3.1.4024"},
		"10.3.0.20 os":                  {"Windows CE 7.0"},
		"10.3.0.20 " + dissect.AttrRole: {RoleADSServer},
	} {
		if !slices.Equal(got[k], w) {
			t.Errorf("%s: got %q, want %q", k, got[k], w)
		}
	}
}

// TestADSNotADS: other traffic on the ADS ports is not claimed.
func TestADSNotADS(t *testing.T) {
	d := NewADS()
	bad := amsPacket(adsNetSrv, adsNetCli, 851, 1, 1, false, 1, nil)
	bad[2]++ // length disagrees
	wrongCmd := amsPacket(adsNetSrv, adsNetCli, 851, 1, 12, false, 1, nil)
	for _, b := range [][]byte{[]byte("GET / HTTP/1.1\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n"), bad, wrongCmd, make([]byte, 40)} {
		if d.Probe(vndPkt(tcpFlow(adsCli, adsSrv), flow.FromClient, 0, b)) {
			t.Errorf("Probe(%x) = true", b)
		}
	}
	if d.Probe(vndPkt(vndUDPFlow(adsCli, netip.MustParseAddrPort("10.3.0.20:48899")), flow.FromClient, 0, []byte("M-SEARCH * HTTP/1.1\r\n\r\n"))) {
		t.Error("Probe took text on 48899")
	}
}

func adsSeeds() [][]byte {
	return [][]byte{
		amsPacket(adsNetSrv, adsNetCli, 851, 32905, 1, false, 7, nil),
		amsPacket(adsNetCli, adsNetSrv, 32905, 851, 1, true, 7, adsDeviceInfo(3, 1, 4024, "Plc30 App")),
		amsPacket(adsNetSrv, adsNetCli, 851, 32905, 5, false, 9, []byte{6, 0, 0, 0, 0, 0, 0, 0}),
		adsDiscoveryReply(adsNetSrv, "CX", 10, 0, 19045, 2, [4]byte{3, 1, 0xb8, 0x0f}),
	}
}

// TestADSTruncated offers every prefix of every seed.
func TestADSTruncated(t *testing.T) {
	for _, s := range adsSeeds() {
		for n := 0; n <= len(s); n++ {
			vndFuzz(t, NewADS(), tcpFlow(adsCli, adsSrv), s[:n], flow.FromServer, n/2)
			vndFuzz(t, NewADS(), vndUDPFlow(adsCli, netip.MustParseAddrPort("10.3.0.20:48899")), s[:n], flow.FromServer, n)
		}
	}
}

// TestADSAllocs: steady state allocates nothing per packet.
func TestADSAllocs(t *testing.T) {
	d := NewADS()
	f := tcpFlow(adsCli, adsSrv)
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	req := amsPacket(adsNetSrv, adsNetCli, 851, 32905, 2, false, 7, make([]byte, 12))
	resp := amsPacket(adsNetCli, adsNetSrv, 32905, 851, 2, true, 7, make([]byte, 12))
	pc, ps := vndPkt(f, flow.FromClient, 0, req), vndPkt(f, flow.FromServer, 0, resp)
	step := func() {
		d.Handle(pc, sink)
		pc.TCPSeq += uint32(len(req))
		d.Handle(ps, sink)
		ps.TCPSeq += uint32(len(resp))
	}
	step()
	if n := testing.AllocsPerRun(1000, step); n != 0 {
		t.Errorf("%v allocations per exchange, want 0", n)
	}
}

// FuzzADS feeds arbitrary payloads over TCP and UDP in both directions.
func FuzzADS(f *testing.F) {
	for _, s := range vndCorpusPayloads("nDPI__tests__cfgs__default__pcap__beckhoff_ads.pcapng", 64) {
		f.Add(s, uint8(0), uint8(9))
	}
	for _, s := range adsSeeds() {
		f.Add(s, uint8(0), uint8(9))
	}
	f.Fuzz(func(t *testing.T, b []byte, mode, cut uint8) {
		fl := tcpFlow(adsCli, adsSrv)
		if mode&2 != 0 {
			fl = vndUDPFlow(adsCli, netip.MustParseAddrPort("10.3.0.20:48899"))
		}
		vndFuzz(t, NewADS(), fl, b, flow.Dir(mode&1), int(cut))
	})
}

// BenchmarkADSHandle measures an ADS Read request and its reply.
func BenchmarkADSHandle(b *testing.B) {
	d := NewADS()
	f := tcpFlow(adsCli, adsSrv)
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	req := amsPacket(adsNetSrv, adsNetCli, 851, 32905, 2, false, 7, make([]byte, 12))
	resp := amsPacket(adsNetCli, adsNetSrv, 32905, 851, 2, true, 7, make([]byte, 12))
	pc, ps := vndPkt(f, flow.FromClient, 0, req), vndPkt(f, flow.FromServer, 0, resp)
	b.ReportAllocs()
	for b.Loop() {
		d.Handle(pc, sink)
		pc.TCPSeq += uint32(len(req))
		d.Handle(ps, sink)
		ps.TCPSeq += uint32(len(resp))
	}
}
