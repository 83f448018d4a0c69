package ot

import (
	"bytes"
	"encoding/binary"
	"encoding/xml"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/internal/testcorpus"
)

// ecatDatagramFields is what tshark's ecat dissector shows of one
// datagram: command, slave address, offset, and the SII registers it
// decodes at 0x0502 (control/status, address, data words).
type ecatDatagramFields struct {
	cmd, adp, ado   uint64
	ctrl, addr      uint64
	data            []uint64
	hasCtrl, hasAdr bool
}

// ecatPDML runs tshark -T pdml on path and returns, per frame, its source
// MAC and its datagrams' fields, in order.
func ecatPDML(t *testing.T, path string) (srcs []string, frames [][]ecatDatagramFields) {
	t.Helper()
	testcorpus.NeedTshark(t)
	out, err := exec.Command("tshark", "-r", path, "-Y", "ecat", "-T", "pdml").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	dec := xml.NewDecoder(bytes.NewReader(out))
	num := func(s string) uint64 {
		v, _ := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64)
		return v
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch se.Name.Local {
		case "packet":
			srcs = append(srcs, "")
			frames = append(frames, nil)
		case "field":
			var name, show string
			for _, a := range se.Attr {
				switch a.Name.Local {
				case "name":
					name = a.Value
				case "show":
					show = a.Value
				}
			}
			i := len(frames) - 1
			if i < 0 {
				continue
			}
			ds := frames[i]
			switch {
			case name == "eth.src" && srcs[i] == "":
				srcs[i] = show
			case name == "ecat.cmd":
				frames[i] = append(ds, ecatDatagramFields{cmd: num(show)})
			case len(ds) == 0:
			case name == "ecat.adp":
				ds[len(ds)-1].adp = num(show)
			case name == "ecat.ado":
				ds[len(ds)-1].ado = num(show)
			case name == "ecat.reg.ctrlstat":
				ds[len(ds)-1].ctrl, ds[len(ds)-1].hasCtrl = num(show), true
			case name == "ecat.reg.addrl":
				ds[len(ds)-1].addr, ds[len(ds)-1].hasAdr = num(show), true
			case strings.HasPrefix(name, "ecat.reg.data") && len(name) == len("ecat.reg.data0"):
				ds[len(ds)-1].data = append(ds[len(ds)-1].data, num(show))
			}
		}
	}
	return srcs, frames
}

// TestEtherCATSIICorpus: the slave identities the master read from the
// SII EEPROMs in ControlThings' capture, as tshark decodes the ESC
// registers (ecat.reg.ctrlstat, ecat.reg.addrl, ecat.reg.data0/1 of
// datagrams at 0x0502): a read command written by the master for a word
// address, then a returned FPRD with the command done holds that word.
// Words 0x08/0x0A/0x0C/0x0E are vendor id, product code, revision, serial.
func TestEtherCATSIICorpus(t *testing.T) {
	path := testcorpus.File(t, "ct-samples__Protocols__EtherCAT__EtherCAT.pcap")
	srcs, frames := ecatPDML(t, path)
	pend := map[uint64]uint64{}
	words := map[uint64]map[uint64]uint64{}
	for i, ds := range frames {
		returned := strings.HasPrefix(srcs[i], "02:")
		for _, d := range ds {
			if d.ado != ecatRegSII || !d.hasCtrl || !d.hasAdr {
				continue
			}
			switch {
			case !returned && d.cmd == ecatCmdFPWR && d.ctrl&ecatSIIRead != 0:
				pend[d.adp] = d.addr + 1
			case returned && d.cmd == ecatCmdFPRD && d.ctrl&(ecatSIIBusy|ecatSIIRead) == ecatSIIBusy|ecatSIIRead:
				pend[d.adp] = d.addr + 1
			case returned && d.cmd == ecatCmdFPRD && d.ctrl&(ecatSIIBusy|ecatSIIErrors) == 0 && pend[d.adp] == d.addr+1 && len(d.data) >= 2:
				delete(pend, d.adp)
				if words[d.adp] == nil {
					words[d.adp] = map[uint64]uint64{}
				}
				for k := 0; k+1 < len(d.data); k += 2 {
					words[d.adp][d.addr+uint64(k)] = d.data[k+1]<<16 | d.data[k]
				}
			}
		}
	}
	var want []string
	for st, w := range words {
		v, okV := w[0x08]
		p, okP := w[0x0a]
		if !okV || !okP {
			continue
		}
		s := strconv.FormatUint(st, 16) + " vendor 0x" + fmt8x(uint32(v)) + " product 0x" + fmt8x(uint32(p))
		if r, ok := w[0x0c]; ok {
			s += " revision 0x" + fmt8x(uint32(r))
		}
		if sn, ok := w[0x0e]; ok {
			s += " serial 0x" + fmt8x(uint32(sn))
		}
		want = append(want, s)
	}
	slices.Sort(want)
	if len(want) == 0 {
		t.Fatal("tshark shows no completed SII read of vendor and product")
	}
	var last string
	for _, o := range runFile(t, path, NewEtherCAT()) {
		if o.Attr == AttrEtherCATSlaveInfo {
			last = o.Value
		}
	}
	if got := strings.Split(last, "; "); !slices.Equal(got, want) {
		t.Errorf("slave info:\n got %q\nwant %q (tshark)", got, want)
	}
}

// TestEtherCATSIISpecBuilt: a read command of word 0x08 (8-byte access)
// and its completed poll give vendor and product; a poll of another
// address than the one commanded is not taken.
func TestEtherCATSIISpecBuilt(t *testing.T) {
	d := NewEtherCAT()
	back := ecatMasterMAC
	back[0] |= 2
	dg := func(cmd uint8, adp, ado uint16, data []byte, wkc uint16) []byte {
		b := []byte{cmd, 0}
		b = binary.LittleEndian.AppendUint16(b, adp)
		b = binary.LittleEndian.AppendUint16(b, ado)
		b = binary.LittleEndian.AppendUint16(b, uint16(len(data)))
		b = append(b, 0, 0)
		b = append(b, data...)
		b = binary.LittleEndian.AppendUint16(b, wkc)
		return append(binary.LittleEndian.AppendUint16(nil, uint16(len(b))|ecatTypeDLPDU<<12), b...)
	}
	var out collect
	send := func(mac capture.MAC, b []byte) { d.Handle(ecatPacket(mac, b), &out) }
	send(ecatMasterMAC, dg(ecatCmdFPWR, 0x1001, ecatRegSII, []byte{0x00, 0x01, 0x08, 0x00}, 0))
	send(back, dg(ecatCmdFPRD, 0x1001, ecatRegSII, []byte{0x40, 0x01, 0x08, 0, 0, 0, 2, 0, 0, 0, 0x52, 0x2c, 0x4c, 0x04}, 1))
	// Stale data: address 0x0c polled without a command for it.
	send(back, dg(ecatCmdFPRD, 0x1001, ecatRegSII, []byte{0x00, 0x00, 0x0c, 0, 0, 0, 9, 9, 9, 9}, 1))
	send(ecatMasterMAC, dg(ecatCmdBRD, 0, 0x130, []byte{0, 0}, 0))
	var info []string
	for _, o := range out {
		if o.Attr == AttrEtherCATSlaveInfo {
			info = append(info, o.Value)
		}
	}
	if want := []string{"1001 vendor 0x00000002 product 0x044c2c52"}; !slices.Equal(info, want) {
		t.Errorf("slave info %q, want %q", info, want)
	}
}
