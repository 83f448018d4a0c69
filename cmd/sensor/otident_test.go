package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/asset"
	"github.com/passivesensor/sensor/internal/testcorpus"
)

// otJSONAssets runs a capture through the sensor, with the private ranges
// and any extra ones inventoried, and returns its -json asset lines by
// each of their IPs.
func otJSONAssets(t *testing.T, path string, extra ...string) map[string]jsonAsset {
	t.Helper()
	classes := asset.DefaultClasses()
	for _, p := range extra {
		classes.Inventoried = append(classes.Inventoried, asset.Range{Prefix: netip.MustParsePrefix(p), Addressing: asset.AddressingStatic})
	}
	var buf bytes.Buffer
	Printer{W: &buf, JSON: true}.Print(runFileWith(t, path, classes))
	out := map[string]jsonAsset{}
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var a jsonAsset
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if a.Kind == "asset" && a.IP != "" {
			out[a.IP] = a
			for _, ip := range a.IPs {
				out[ip] = a
			}
		}
	}
	return out
}

// The -json output on industrial corpus captures lists each controller
// with the identity its protocol carries, equal to what tshark reads.
func TestOTControllersJSON(t *testing.T) {
	t.Run("S7comm SZL", func(t *testing.T) {
		for _, name := range []string{"ICS-Security-Tools__pcaps__s7__snap7_s300_everything.pcapng", "ICS-Pcaps__S7COMM__s3.pcap"} {
			path := testcorpus.File(t, name)
			rows := testcorpus.Tshark(t, path, "s7comm.szl.001c.0005.serialn", "ip.src", "s7comm.szl.001c.0005.serialn", "s7comm.szl.001c.0002.name")
			mlfb := testcorpus.Tshark(t, path, "s7comm.szl.xy11.0001.index", "s7comm.szl.xy11.0001.index", "s7comm.szl.xy11.0001.anz", "s7comm.szl.xy11.0001.ausbg", "s7comm.szl.xy11.0001.ausbe")
			if len(rows) == 0 || len(mlfb) == 0 {
				t.Fatalf("%s: tshark reads no SZL 0x001C / 0x0011 answer", name)
			}
			var model, fw string
			for _, r := range mlfb {
				idx, anz, bg, be := strings.Split(r[0], ","), strings.Split(r[1], ","), strings.Split(r[2], ","), strings.Split(r[3], ",")
				for i := range idx {
					switch idx[i] {
					case "0x0001":
						model = strings.TrimSpace(anz[i])
					case "0x0007":
						g, _ := strconv.Atoi(bg[i])
						e, _ := strconv.Atoi(be[i])
						// 'V', major; minor, patch (SZL 0x0011 index 7).
						fw = "V" + strconv.Itoa(g&0xff) + "." + strconv.Itoa(e>>8) + "." + strconv.Itoa(e&0xff)
					}
				}
			}
			plc := rows[0][0]
			// The snap7 capture's PLC has a public address: the operator
			// inventories its range.
			a, ok := otJSONAssets(t, path, "134.217.61.0/24")[plc]
			if !ok {
				t.Fatalf("%s: PLC %s not listed", name, plc)
			}
			if a.Vendor != "Siemens" || a.Model != model || a.Serial != rows[0][1] || (fw != "" && a.Firmware != fw) ||
				!strings.Contains(a.Attrs["role"], "s7-server") || a.Attrs["name"] != rows[0][2] {
				t.Errorf("%s: PLC %s listed as %+v; want vendor Siemens, model %q, firmware %q, serial %q, name %q, role s7-server",
					name, plc, a, model, fw, rows[0][1], rows[0][2])
			}
		}
	})
	t.Run("MMS Identify", func(t *testing.T) {
		path := testcorpus.File(t, "ICS-Security-Tools__pcaps__IEC61850__8d7c7db0-9804-012b-b2a6-0016cb8cea27.pcap")
		rows := testcorpus.Tshark(t, path, "mms.vendorName", "ip.src", "mms.vendorName", "mms.modelName", "mms.revision")
		if len(rows) == 0 {
			t.Fatal("tshark reads no Identify answer")
		}
		assets := otJSONAssets(t, path)
		for _, r := range rows {
			a := assets[r[0]]
			if a.Vendor != r[1] || a.Model != r[2] || a.Firmware != r[3] || !strings.Contains(a.Attrs["role"], "mms-server") {
				t.Errorf("IED %s listed as %+v; want vendor %q model %q firmware %q (tshark), role mms-server", r[0], a, r[1], r[2], r[3])
			}
		}
	})
	t.Run("DNP3 roles", func(t *testing.T) {
		path := testcorpus.File(t, "ICS-Security-Tools__pcaps__dnp3__dnp3_test_data_part2.pcap")
		rows := testcorpus.Tshark(t, path, "dnp3.ctl.dir==0", "ip.src", "dnp3.src")
		if len(rows) == 0 {
			t.Fatal("tshark reads no frame from an outstation")
		}
		a := otJSONAssets(t, path)[rows[0][0]]
		if !strings.Contains(a.Attrs["role"], "dnp3-outstation") || !strings.Contains(a.Attrs["dnp3.address"], rows[0][1]) {
			t.Errorf("outstation %s listed as %+v; want role dnp3-outstation, address %s", rows[0][0], a, rows[0][1])
		}
	})
	t.Run("IEC 104 roles", func(t *testing.T) {
		path := testcorpus.File(t, "ICS-Pcaps__IEC60870-104__50.pcap")
		rows := testcorpus.Tshark(t, path, "iec60870_asdu.typeid==36", "ip.src", "iec60870_asdu.addr")
		if len(rows) == 0 {
			t.Fatal("tshark reads no M_ME_TF_1")
		}
		a := otJSONAssets(t, path)[rows[0][0]]
		if !strings.Contains(a.Attrs["role"], "iec104-controlled") || a.Attrs["iec104.common_addresses"] != strings.Split(rows[0][1], ",")[0] ||
			!strings.Contains(a.Attrs["service:iec104"], "iec104:36 M_ME_TF_1") {
			t.Errorf("controlled station %s listed as %+v; want role iec104-controlled, common address %s", rows[0][0], a, rows[0][1])
		}
	})
}
