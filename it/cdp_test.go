package it

import (
	"github.com/passivesensor/sensor/internal/testcorpus"
	"strconv"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
)

// cdpCorpus are captures the corpus README marks "cdp".
var cdpCorpus = []string{
	"ICS-Pcaps__CDP__cdp_v2.pcap",
	"ICS-Pcaps__LLDP__LLDP.pcap",
	"Malcolm-PCAP__pcaps__protocols__BSAP.pcap",
	"ICS-Security-Tools__pcaps__openics__EIP-SoftwareUploadFailure.pcap",
}

// TestCDPCorpus checks frame by frame that ParseCDP reads what tshark
// reads (device id, platform, port, capabilities, native VLAN, VTP domain,
// IPv4 addresses) and that Handle reports the device id and platform about
// the frame's source MAC.
func TestCDPCorpus(t *testing.T) {
	fields := []string{"frame.number", "cdp.deviceid", "cdp.platform", "cdp.portid", "cdp.capabilities",
		"cdp.native_vlan", "cdp.vtp_management_domain", "cdp.nrgyz.ip_address", "eth.src", "cdp.software_version"}
	total := 0
	for _, name := range cdpCorpus {
		t.Run(name, func(t *testing.T) {
			pkts := decodeFile(t, name)
			rows := testcorpus.Tshark(t, testcorpus.File(t, name), "cdp", fields...)
			if len(rows) == 0 {
				t.Fatalf("tshark reads no CDP in %s", name)
			}
			d := NewCDP()
			seen := map[int]bool{}
			for _, row := range rows {
				n := frameNumber(t, row[0], len(pkts))
				seen[n] = true
				p := &pkts[n-1]
				if p.Packet == nil || !d.Probe(p) {
					t.Errorf("frame %d: Probe refuses CDP", n)
					continue
				}
				var m CDPInfo
				if err := ParseCDP(p.Payload, &m); err != nil {
					t.Errorf("frame %d: %v", n, err)
				}
				var buf [4 * maxText]byte
				text := func(b []byte) string { return string(cleanText(buf[:0], b, maxText)) }
				caps := ""
				if m.HasCaps {
					caps = "0x" + strings.Repeat("0", 8-len(strconv.FormatUint(uint64(m.Caps), 16))) + strconv.FormatUint(uint64(m.Caps), 16)
				}
				vlan := ""
				if m.NativeVLAN != 0 {
					vlan = strconv.Itoa(int(m.NativeVLAN))
				}
				var ips []string
				for _, a := range m.Addrs[:m.NumAddrs] {
					if a.Is4() {
						ips = append(ips, a.String())
					}
				}
				// tshark lists an address once per TLV (Addresses and
				// Management Addresses); ParseCDP keeps it once.
				want := row[7]
				if want != "" {
					var uniq []string
					for _, a := range strings.Split(want, ",") {
						dup := false
						for _, u := range uniq {
							dup = dup || u == a
						}
						if !dup {
							uniq = append(uniq, a)
						}
					}
					want = strings.Join(uniq, ",")
				}
				got := []string{text(m.DeviceID), text(m.Platform), text(m.PortID), caps, vlan, text(m.VTPDomain), strings.Join(ips, ",")} // columns 1..7
				row[7] = want
				for i, g := range got {
					if g != row[i+1] {
						t.Errorf("frame %d: %s = %q, tshark says %q", n, fields[i+1], g, row[i+1])
					}
				}
				var out collect
				d.seen = advertisers{}
				d.Handle(p, &out)
				// tshark lists the software version's lines as occurrences
				// joined by ","; the firmware is the one naming the version.
				if row[9] != "" {
					fw := ""
					for _, o := range out {
						if o.Attr == dissect.AttrFirmware {
							fw = o.Value
						}
					}
					if fw == "" || !strings.Contains(row[9], fw) || (strings.Contains(row[9], "Version") && !strings.Contains(fw, "Version")) {
						t.Errorf("frame %d: firmware %q is not the version line of %q", n, fw, row[9])
					}
				}
				for _, kv := range [][2]string{{dissect.AttrHostname, row[1]}, {dissect.AttrModel, row[2]}} {
					if kv[1] != "" && !hasObs(out, kv[0], kv[1]) {
						t.Errorf("frame %d: no %s %q observation in %+v", n, kv[0], kv[1], out)
					}
				}
				for _, o := range out {
					if o.MAC.String() != row[8] {
						t.Errorf("frame %d: observation about %s, frame from %s", n, o.MAC, row[8])
					}
				}
				total++
			}
			for i := range pkts {
				if !seen[i+1] && pkts[i].Packet != nil && d.Probe(&pkts[i]) {
					t.Errorf("frame %d: Probe accepts what tshark does not read as CDP", i+1)
				}
			}
		})
	}
	t.Logf("%d CDP frames compared with tshark", total)
}

// TestCDPRegistry checks that CDP frames reach the CDP dissector through a
// registry of All(), and LLDP frames the LLDP one.
func TestCDPRegistry(t *testing.T) {
	reg := dissect.NewRegistry(All()...)
	var out collect
	for _, p := range decodeFile(t, "ICS-Pcaps__LLDP__LLDP.pcap") {
		if p.Packet != nil {
			reg.Dispatch(&p, &out)
		}
	}
	counts := map[string]int{}
	for _, o := range out {
		counts[o.Protocol+" "+o.Attr]++
	}
	for _, k := range []string{"cdp hostname", "cdp model", "cdp class", "lldp hostname"} {
		if counts[k] == 0 {
			t.Errorf("no %q observation through the registry; got %v", k, counts)
		}
	}
}

func cdpSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, name := range cdpCorpus[:2] {
		for _, p := range decodeFile(t, name) {
			if p.Packet != nil && p.EtherType == 0 && NewCDP().Probe(&p) {
				seeds = append(seeds, p.Payload)
			}
		}
	}
	return seeds
}

func cdpPacket(b []byte) *dissect.Packet {
	return &dissect.Packet{Packet: &capture.Packet{HasEth: true, SrcMAC: capture.MAC{0, 1, 2, 3, 4, 5}, Payload: b}}
}

// TestCDPTruncated cuts every corpus CDP frame at every length.
func TestCDPTruncated(t *testing.T) {
	seeds := cdpSeeds(t)
	if len(seeds) == 0 {
		t.Fatal("no CDP seeds")
	}
	for _, s := range seeds {
		for n := 0; n <= len(s); n++ {
			b := append([]byte(nil), s[:n]...)
			var out collect
			d := NewCDP()
			if d.Probe(cdpPacket(b)) {
				d.Handle(cdpPacket(b), &out)
			}
			checkObs(t, "cdp", out)
		}
	}
}

func FuzzCDP(f *testing.F) {
	for _, s := range cdpSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m CDPInfo
		err := ParseCDP(b, &m)
		d := NewCDP()
		if d.Probe(cdpPacket(b)) != (err != ErrCDPNotCDP) {
			t.Fatalf("Probe and ParseCDP disagree (err %v)", err)
		}
		var out collect
		d.Handle(cdpPacket(b), &out)
		checkObs(t, "cdp", out)
	})
}
