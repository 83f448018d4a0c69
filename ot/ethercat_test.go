package ot

import (
	"encoding/binary"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/internal/testcorpus"
)

// TestEtherCATCorpus reads ControlThings' EtherCAT capture (a master and
// five slaves) and compares with tshark's ecat dissector: the master is
// the eth.src of frames whose locally administered bit is clear, the
// commands it uses are the ecat.cmd values of its frames, and the slave
// count is the largest ecat.cnt of a BRD/BWR datagram that came back.
func TestEtherCATCorpus(t *testing.T) {
	path := testcorpus.File(t, "ct-samples__Protocols__EtherCAT__EtherCAT.pcap")
	wantCmds := map[string]bool{}
	var master string
	slaves := 0
	for _, r := range testcorpus.Tshark(t, path, "ecat", "eth.src", "ecat.cmd", "ecat.cnt") {
		b0, _ := strconv.ParseUint(r[0][:2], 16, 8)
		cmds, cnts := strings.Split(r[1], ","), strings.Split(r[2], ",")
		for i, c := range cmds {
			n, _ := strconv.ParseUint(strings.TrimPrefix(c, "0x"), 16, 8)
			if b0&2 == 0 {
				master = r[0]
				wantCmds[ecatCommands[n]] = true
			} else if n == ecatCmdBRD || n == ecatCmdBWR {
				w, _ := strconv.Atoi(cnts[i])
				slaves = max(slaves, w)
			}
		}
	}
	if master == "" || slaves == 0 {
		t.Fatalf("tshark: master %q, slaves %d", master, slaves)
	}
	out := runFile(t, path, NewEtherCAT())
	gotCmds := map[string]bool{}
	var roles, counts []string
	for _, o := range out {
		if o.MAC.String() != master {
			t.Errorf("observation about %s, not the master %s: %+v", o.MAC, master, o)
		}
		switch o.Attr {
		case AttrEtherCATCommand:
			for _, c := range strings.Split(o.Value, ",") {
				gotCmds[c] = true
			}
		case dissect.AttrRole:
			roles = append(roles, o.Value)
		case AttrEtherCATSlaves:
			counts = append(counts, o.Value)
		}
	}
	if !mapsEqual(gotCmds, wantCmds) {
		t.Errorf("commands %v, tshark %v", keys(gotCmds), keys(wantCmds))
	}
	if !slices.Equal(roles, []string{RoleEtherCATMaster}) {
		t.Errorf("roles %q", roles)
	}
	if len(counts) == 0 || counts[len(counts)-1] != strconv.Itoa(slaves) {
		t.Errorf("slave counts %q, tshark says %d", counts, slaves)
	}
	if len(out) > 40 {
		t.Errorf("%d observations: not rate-limited", len(out))
	}
}

// ecatDatagrams builds an EtherCAT frame (ETG.1000.4: frame header, then
// datagrams) of (command, ADP, data length, working counter) quadruples.
func ecatDatagrams(dgs ...[4]int) []byte {
	var d []byte
	for i, g := range dgs {
		l := uint16(g[2])
		if i < len(dgs)-1 {
			l |= 0x8000
		}
		d = append(d, byte(g[0]), byte(i))
		d = binary.LittleEndian.AppendUint16(d, uint16(g[1]))
		d = binary.LittleEndian.AppendUint16(d, 0x0130)
		d = binary.LittleEndian.AppendUint16(d, l)
		d = append(d, 0, 0)
		d = append(d, make([]byte, g[2])...)
		d = binary.LittleEndian.AppendUint16(d, uint16(g[3]))
	}
	b := binary.LittleEndian.AppendUint16(nil, uint16(len(d))|ecatTypeDLPDU<<12)
	return append(b, d...)
}

func ecatPacket(src capture.MAC, payload []byte) *dissect.Packet {
	return &dissect.Packet{Packet: &capture.Packet{HasEth: true, SrcMAC: src, DstMAC: capture.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, EtherType: EtherTypeEtherCAT, Payload: payload}}
}

var ecatMasterMAC = capture.MAC{0x00, 0x01, 0x05, 0x11, 0x22, 0x33}

// TestEtherCATSpecBuilt: a master's BRD goes out, comes back with a
// working counter of 3 from the first slave's altered MAC; a new count is
// emitted on the master's next frame, about the master.
func TestEtherCATSpecBuilt(t *testing.T) {
	d := NewEtherCAT()
	back := ecatMasterMAC
	back[0] |= 2
	var out collect
	send := func(mac capture.MAC, b []byte) {
		p := ecatPacket(mac, b)
		if !d.Probe(p) {
			t.Fatalf("Probe rejected %x", b)
		}
		d.Handle(p, &out)
	}
	send(ecatMasterMAC, ecatDatagrams([4]int{ecatCmdBRD, 0, 2, 0}, [4]int{12, 0, 8, 0}))
	send(back, ecatDatagrams([4]int{ecatCmdBRD, 3, 2, 3}, [4]int{12, 0, 8, 6}))
	send(ecatMasterMAC, ecatDatagrams([4]int{ecatCmdBRD, 0, 2, 0}))
	send(back, ecatDatagrams([4]int{ecatCmdBRD, 3, 2, 3}))
	send(ecatMasterMAC, ecatDatagrams([4]int{ecatCmdBRD, 0, 2, 0}))
	var got []string
	for _, o := range out {
		if o.MAC != ecatMasterMAC {
			t.Errorf("about %s: %+v", o.MAC, o)
		}
		got = append(got, o.Attr+"="+o.Value)
	}
	want := []string{"role=ethercat-master", "ethercat.command=BRD,LRW", "ethercat.slaves=3"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestEtherCATNotEtherCAT: malformed frames are refused.
func TestEtherCATNotEtherCAT(t *testing.T) {
	d := NewEtherCAT()
	ok := ecatDatagrams([4]int{ecatCmdBRD, 0, 2, 0})
	typ4 := slices.Clone(ok)
	typ4[1] = typ4[1]&0x0f | 4<<4
	long := slices.Clone(ok)
	long[0] += 20
	badCmd := slices.Clone(ok)
	badCmd[2] = 15
	for _, b := range [][]byte{nil, {1}, typ4, long, badCmd, ok[:len(ok)-1]} {
		if d.Probe(ecatPacket(ecatMasterMAC, b)) {
			t.Errorf("Probe(%x) = true", b)
		}
	}
}

func ecatSeeds() [][]byte {
	return [][]byte{
		ecatDatagrams([4]int{ecatCmdBRD, 0, 2, 0}),
		ecatDatagrams([4]int{ecatCmdBRD, 5, 2, 5}, [4]int{1, 0xffff, 4, 1}, [4]int{12, 0, 16, 6}),
	}
}

// TestEtherCATTruncated offers every prefix of every seed.
func TestEtherCATTruncated(t *testing.T) {
	d := NewEtherCAT()
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	for _, s := range ecatSeeds() {
		for n := 0; n <= len(s); n++ {
			for _, mac := range []capture.MAC{ecatMasterMAC, {2, 1, 5, 0x11, 0x22, 0x33}} {
				p := ecatPacket(mac, s[:n])
				d.Probe(p)
				d.Handle(p, sink)
			}
		}
	}
}

// TestEtherCATAllocs: steady state allocates nothing.
func TestEtherCATAllocs(t *testing.T) {
	d := NewEtherCAT()
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	out, back := ecatPacket(ecatMasterMAC, ecatSeeds()[0]), ecatPacket(capture.MAC{2, 1, 5, 0x11, 0x22, 0x33}, ecatSeeds()[1])
	step := func() { d.Probe(out); d.Handle(out, sink); d.Probe(back); d.Handle(back, sink) }
	step()
	step()
	if n := testing.AllocsPerRun(1000, step); n != 0 {
		t.Errorf("%v allocations per frame pair", n)
	}
}

// FuzzEtherCAT feeds arbitrary frames from a master's and a slave's MAC.
func FuzzEtherCAT(f *testing.F) {
	for _, s := range vndCorpusPayloads("ct-samples__Protocols__EtherCAT__EtherCAT.pcap", 64) {
		f.Add(s, false)
	}
	for _, s := range ecatSeeds() {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, b []byte, returned bool) {
		d := NewEtherCAT()
		mac := ecatMasterMAC
		if returned {
			mac[0] |= 2
		}
		p := ecatPacket(mac, b)
		d.Probe(p)
		d.Handle(p, dissect.SinkFunc(func(o dissect.Observation) {
			if o.MAC[0]&2 != 0 {
				t.Fatalf("observation about a returned frame's MAC: %+v", o)
			}
		}))
	})
}

// BenchmarkEtherCATHandle measures a cyclic frame out and back.
func BenchmarkEtherCATHandle(b *testing.B) {
	d := NewEtherCAT()
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	out, back := ecatPacket(ecatMasterMAC, ecatSeeds()[1]), ecatPacket(capture.MAC{2, 1, 5, 0x11, 0x22, 0x33}, ecatSeeds()[1])
	b.ReportAllocs()
	for b.Loop() {
		if d.Probe(out) {
			d.Handle(out, sink)
		}
		if d.Probe(back) {
			d.Handle(back, sink)
		}
	}
}
