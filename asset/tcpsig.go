package asset

import (
	"bufio"
	"bytes"
	_ "embed"
	"log/slog"
	"strconv"
	"strings"
	"sync"
)

// p0fTCP is the [tcp:request] and [tcp:response] sections of p0f v3's
// signature database (p0f.fp, (C) Michal Zalewski, GNU LGPL 2.1), written
// by `make p0f-data`.
//
//go:embed p0f-tcp.fp
var p0fTCP []byte

// p0f's limit on how far a TTL may be below the signature's initial TTL
// for an exact match (config.h MAX_DIST).
const p0fMaxDist = 35

// Window kinds of a signature.
const (
	winNormal uint8 = iota
	winAny
	winMod
	winMSS
	winMTU
)

// tcpSig is one side of a signature match: a database entry or a packet's
// signature parsed back from its raw form.
type tcpSig struct {
	ver     int8 // 4, 6, or -1 for any
	ttl     int  // initial TTL (database) or TTL seen (packet)
	badTTL  bool
	olen    int
	mss     int // -1: any
	winType uint8
	win     int
	scale   int // -1: any
	layout  string
	eolPad  int
	quirks  uint32
	pclass  int8 // -1 any, 0 none, 1 payload
}

// p0f quirk names, each a bit of tcpSig.quirks.
var p0fQuirks = map[string]uint32{
	"df": 1 << 0, "id+": 1 << 1, "id-": 1 << 2, "ecn": 1 << 3, "0+": 1 << 4, "flow": 1 << 5,
	"seq-": 1 << 6, "ack+": 1 << 7, "ack-": 1 << 8, "uptr+": 1 << 9, "urgf+": 1 << 10, "pushf+": 1 << 11,
	"ts1-": 1 << 12, "ts2+": 1 << 13, "opt+": 1 << 14, "exws": 1 << 15, "bad": 1 << 16,
}

const (
	qDF   = 1 << 0
	qNZID = 1 << 1
	qZID  = 1 << 2
	qECN  = 1 << 3
	qFlow = 1 << 5
)

// TCPMatch is what the database says of a signature.
type TCPMatch struct {
	Class   string // "win", "unix", "other"; "!" for a userland tool
	Name    string // "Linux", "Windows", ...
	Flavor  string // "3.11 and newer", "7 or 8", ...
	Generic bool   // a generic signature of the OS
	Fuzzy   bool   // matched with a quirk or TTL out of place
}

// Label returns "Name Flavor".
func (m TCPMatch) Label() string { return strings.TrimSpace(m.Name + " " + m.Flavor) }

type tcpRecord struct {
	sig   tcpSig
	match TCPMatch
}

type tcpDB struct {
	request, response []tcpRecord
}

var (
	tcpDBOnce sync.Once
	tcpDBv    *tcpDB
)

func p0fDB() *tcpDB {
	tcpDBOnce.Do(func() {
		tcpDBv = parseP0F(p0fTCP)
	})
	return tcpDBv
}

func parseP0F(data []byte) *tcpDB {
	db := &tcpDB{}
	var section *[]tcpRecord
	var label TCPMatch
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == ';':
			continue
		case line == "[tcp:request]":
			section = &db.request
			continue
		case line == "[tcp:response]":
			section = &db.response
			continue
		case line[0] == '[':
			section = nil
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || section == nil {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "label":
			f := strings.SplitN(v, ":", 4)
			if len(f) != 4 {
				slog.Warn("p0f signatures: bad label", "line", n, "label", v)
				continue
			}
			label = TCPMatch{Generic: f[0] == "g", Class: f[1], Name: f[2], Flavor: f[3]}
		case "sig":
			s, ok := parseTCPSig(v, true)
			if !ok {
				slog.Warn("p0f signatures: bad signature", "line", n, "sig", v)
				continue
			}
			*section = append(*section, tcpRecord{sig: s, match: label})
		}
	}
	return db
}

// parseTCPSig reads a signature in p0f v3's format. In a database entry
// (ref) the TTL is the initial TTL, "64-" marks a tool's random TTL and
// wildcards are allowed; in a packet's raw signature the TTL is the one
// seen ("63+1", the distance being a guess) and the window may be written
// as a multiple of the MSS or MTU.
func parseTCPSig(s string, ref bool) (tcpSig, bool) {
	var t tcpSig
	f := strings.Split(s, ":")
	if len(f) != 8 {
		return t, false
	}
	switch f[0] {
	case "4":
		t.ver = 4
	case "6":
		t.ver = 6
	case "*":
		t.ver = -1
	default:
		return t, false
	}
	ttl := f[1]
	if i := strings.IndexAny(ttl, "+-"); i >= 0 {
		t.badTTL = ref && ttl[i] == '-'
		if ref && ttl[i] == '+' {
			add, err := strconv.Atoi(ttl[i+1:])
			if err != nil {
				return t, false
			}
			t.ttl += add
		}
		ttl = ttl[:i]
	}
	v, err := strconv.Atoi(ttl)
	if err != nil || v < 0 || v > 255 {
		return t, false
	}
	t.ttl += v
	if t.olen, err = strconv.Atoi(f[2]); err != nil {
		return t, false
	}
	if f[3] == "*" {
		t.mss = -1
	} else if t.mss, err = strconv.Atoi(f[3]); err != nil {
		return t, false
	}
	w, sc, ok := strings.Cut(f[4], ",")
	if !ok {
		return t, false
	}
	switch {
	case w == "*":
		t.winType = winAny
	case strings.HasPrefix(w, "%"):
		t.winType = winMod
		w = w[1:]
	case strings.HasPrefix(w, "mss*"):
		t.winType = winMSS
		w = w[4:]
	case strings.HasPrefix(w, "mtu*"):
		t.winType = winMTU
		w = w[4:]
	}
	if t.winType != winAny {
		if t.win, err = strconv.Atoi(w); err != nil {
			return t, false
		}
	}
	if sc == "*" {
		t.scale = -1
	} else if t.scale, err = strconv.Atoi(sc); err != nil {
		return t, false
	}
	t.layout = f[5]
	if i := strings.Index(t.layout, "eol+"); i >= 0 {
		if t.eolPad, err = strconv.Atoi(t.layout[i+4:]); err != nil {
			return t, false
		}
		t.layout = t.layout[:i+3]
	}
	if f[6] != "" {
		for _, q := range strings.Split(f[6], ",") {
			b, ok := p0fQuirks[q]
			if !ok {
				return t, false
			}
			t.quirks |= b
		}
	}
	switch f[7] {
	case "*":
		t.pclass = -1
	case "0":
	case "+":
		t.pclass = 1
	default:
		return t, false
	}
	return t, true
}

// winMulti is p0f's reading of window win as a multiple of the MSS or MTU
// (fp_tcp.c detect_win_multi, without the peer's MSS).
func winMulti(win, mss int, v6, ts bool) (int, bool) {
	if win == 0 || mss < 100 {
		return -1, false
	}
	hdr := 40
	if v6 {
		hdr = 60
	}
	divs := []struct {
		d   int
		mtu bool
		ok  bool
	}{
		{mss, false, true}, {mss - 12, false, ts}, {1460, false, true}, {1448, false, true},
		{1440, false, v6}, {1428, false, v6}, {mss + 40, true, true}, {mss + hdr, true, true},
		{mss + 60, true, v6}, {1500, true, true},
	}
	for _, d := range divs {
		if d.ok && d.d > 0 && win%d.d == 0 {
			return win / d.d, d.mtu
		}
	}
	return -1, false
}

// windows returns the raw windows a packet signature's window field may
// stand for: the number, or each product that p0f would have written the
// same way.
func (t tcpSig) windows() []int {
	if t.winType == winNormal {
		return []int{t.win}
	}
	hdr := 40
	if t.ver == 6 {
		hdr = 60
	}
	var out []int
	for _, d := range []int{t.mss, t.mss - 12, 1460, 1448, 1440, 1428, t.mss + 40, t.mss + hdr, t.mss + 60, 1500} {
		w := t.win * d
		if d <= 0 || w > 65535 {
			continue
		}
		if m, mtu := winMulti(w, t.mss, t.ver == 6, t.quirks&p0fQuirks["ts1-"] == 0 && strings.Contains(t.layout, "ts")); m == t.win && mtu == (t.winType == winMTU) {
			out = append(out, w)
		}
	}
	return out
}

// MatchTCP matches a raw signature (as the tcpfp dissector writes it) of a
// SYN (synack false) or SYN-ACK against p0f's database the way p0f does
// (fp_tcp.c tcp_find_match): the first exact specific signature, else the
// first exact generic one, else the first fuzzy one.
func MatchTCP(raw string, synack bool) (TCPMatch, bool) {
	pk, ok := parseTCPSig(raw, false)
	if !ok || pk.winType == winAny || pk.winType == winMod || pk.mss < 0 {
		return TCPMatch{}, false
	}
	db := p0fDB()
	recs := db.request
	if synack {
		recs = db.response
	}
	wins := pk.windows()
	var fmatch, gmatch *tcpRecord
	for i := range recs {
		ref := &recs[i]
		rs := &ref.sig
		if rs.layout != pk.layout {
			continue
		}
		fuzzy := false
		rq := rs.quirks
		if rs.ver == -1 {
			if pk.ver == 4 {
				rq &^= qFlow
			} else {
				rq &^= qDF | qNZID | qZID
			}
		}
		if rq != pk.quirks {
			deleted := (rq ^ pk.quirks) & rq
			added := (rq ^ pk.quirks) & pk.quirks
			if fmatch != nil || deleted&^(qDF|qNZID) != 0 || added&^(qZID|qECN) != 0 {
				continue
			}
			fuzzy = true
		}
		if rs.eolPad != pk.eolPad || rs.olen != pk.olen || (rs.ver != -1 && rs.ver != pk.ver) {
			continue
		}
		if rs.badTTL {
			if rs.ttl < pk.ttl {
				continue
			}
		} else if rs.ttl < pk.ttl || rs.ttl-pk.ttl > p0fMaxDist {
			fuzzy = true
		}
		if rs.mss != -1 && rs.mss != pk.mss {
			continue
		}
		if rs.scale != -1 && rs.scale != pk.scale {
			continue
		}
		if rs.pclass != -1 && rs.pclass != pk.pclass {
			continue
		}
		if !winOK(rs, pk, wins) {
			continue
		}
		switch {
		case !fuzzy && !ref.match.Generic:
			return ref.match, true
		case !fuzzy:
			if gmatch == nil {
				gmatch = ref
			}
		default:
			if fmatch == nil {
				fmatch = ref
			}
		}
	}
	if gmatch != nil {
		return gmatch.match, true
	}
	if fmatch != nil && fmatch.match.Class != "!" {
		m := fmatch.match
		m.Fuzzy = true
		return m, true
	}
	return TCPMatch{}, false
}

func winOK(rs *tcpSig, pk tcpSig, wins []int) bool {
	switch rs.winType {
	case winAny:
		return true
	case winMSS, winMTU:
		return pk.winType == rs.winType && pk.win == rs.win
	}
	for _, w := range wins {
		switch rs.winType {
		case winNormal:
			if w == rs.win {
				return true
			}
		case winMod:
			if rs.win > 0 && w%rs.win == 0 {
				return true
			}
		}
	}
	return false
}
