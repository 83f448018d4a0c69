package asset

import (
	"slices"
	"strconv"
	"strings"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
)

// maxDerivedAttrs is how many attributes derive may add to a snapshot:
// mac.vendor or mac.kind, nat and nat.evidence, six os.*, class.evidence.
const maxDerivedAttrs = 10

// minOSConfidence is the confidence below which a verdict stays in Attrs
// (os.*) and does not fill Asset.OS: a lone fuzzy p0f match is a guess.
const minOSConfidence = 25

// maxFPSet bounds each set of distinct signals kept for NAT detection.
const maxFPSet = 4

// fpSets keeps, per record, the distinct values of the signals that tell
// several devices behind one address apart. Attributes keep only the last
// value; these keep a few.
type fpSets struct {
	ttl   uint8    // initial-TTL bands of SYNs seen: bit 0 for 32, 1 for 64, 2 for 128, 3 for 255
	uaOS  []string // OS families named by User-Agents
	synOS []string // OS families of exact (not fuzzy) SYN signature matches
	dhcp  []string // DHCP parameter lists
	ts    bool     // TCP timestamp clocks disagree
}

func addSet(s []string, v string) []string {
	if v == "" || slices.Contains(s, v) || len(s) >= maxFPSet {
		return s
	}
	return append(s, v)
}

func (f *fpSets) fold(o *fpSets) {
	f.ttl |= o.ttl
	f.ts = f.ts || o.ts
	for _, v := range o.uaOS {
		f.uaOS = addSet(f.uaOS, v)
	}
	for _, v := range o.synOS {
		f.synOS = addSet(f.synOS, v)
	}
	for _, v := range o.dhcp {
		f.dhcp = addSet(f.dhcp, v)
	}
}

func ttlBand(ttl int) uint8 {
	switch {
	case ttl <= 32:
		return 1
	case ttl <= 64:
		return 2
	case ttl <= 128:
		return 4
	}
	return 8
}

// matchTCP is MatchTCP behind a bounded cache (the inventory's lock held).
func (inv *Inventory) matchTCP(raw string, synack bool) (TCPMatch, bool) {
	key := raw
	if synack {
		key = "A" + raw
	}
	if r, ok := inv.tcpCache[key]; ok {
		return r.m, r.ok
	}
	m, ok := MatchTCP(raw, synack)
	if inv.tcpCache == nil || len(inv.tcpCache) >= 4096 {
		inv.tcpCache = map[string]tcpCached{}
	}
	inv.tcpCache[key] = tcpCached{m, ok}
	return m, ok
}

type tcpCached struct {
	m  TCPMatch
	ok bool
}

// noteFP records the NAT-relevant signals of attribute attr.
func (inv *Inventory) noteFP(in *info, attr, v string) {
	switch attr {
	case attrTCPSyn, attrUserAgent, attrDHCPParams, attrTCPTSClock:
	default:
		return
	}
	if in.fp == nil {
		in.fp = &fpSets{}
	}
	f := in.fp
	switch attr {
	case attrTCPSyn:
		if t, ok := parseTCPSig(v, false); ok {
			f.ttl |= ttlBand(t.ttl)
		}
		if m, ok := inv.matchTCP(v, false); ok && !m.Fuzzy {
			if g, ok := osFromTCP(m, false); ok {
				f.synOS = addSet(f.synOS, g.family)
			}
		}
	case attrUserAgent:
		if g, ok := osFromUserAgent(v); ok {
			f.uaOS = addSet(f.uaOS, g.family)
		}
	case attrDHCPParams:
		f.dhcp = addSet(f.dhcp, v)
	case attrTCPTSClock:
		f.ts = true
	}
}

// natEvidence says why the signals of one address come from several
// devices: one strong sign (unlike stacks or OS families) or two weak
// ones (different DHCP fingerprints, timestamp clocks that disagree).
func natEvidence(f *fpSets) []string {
	if f == nil {
		return nil
	}
	var strong, weak []string
	if n := popcount(f.ttl); n > 1 {
		var bands []string
		for i, b := range []string{"32", "64", "128", "255"} {
			if f.ttl&(1<<i) != 0 {
				bands = append(bands, b)
			}
		}
		strong = append(strong, "SYNs with initial TTLs "+strings.Join(bands, " and "))
	}
	if len(f.uaOS) > 1 {
		strong = append(strong, "User-Agents of "+strings.Join(f.uaOS, ", "))
	}
	if len(f.synOS) > 1 {
		strong = append(strong, "TCP stacks of "+strings.Join(f.synOS, ", "))
	}
	if len(f.dhcp) > 1 {
		weak = append(weak, strconv.Itoa(len(f.dhcp))+" DHCP parameter lists")
	}
	if f.ts {
		weak = append(weak, "TCP timestamp clocks disagree")
	}
	if len(strong) == 0 && len(weak) < 2 {
		return nil
	}
	return append(strong, weak...)
}

func popcount(b uint8) int {
	n := 0
	for ; b != 0; b &= b - 1 {
		n++
	}
	return n
}

// osGuesses collects the OS opinions of a's attributes.
func (inv *Inventory) osGuesses(a *Asset, stated string) []osGuess {
	var gs []osGuess
	add := func(g osGuess, ok bool, src, v string) {
		if ok {
			g.source, g.value = src, v
			gs = append(gs, g)
		}
	}
	if stated != "" {
		add(osFromStated(stated), true, dissect.AttrOS, stated)
	}
	at := a.Attrs
	if v := at[attrSNMPDescr]; v != "" {
		g, ok := osFromSysDescr(v, 90)
		add(g, ok, attrSNMPDescr, v)
	}
	if v := at[attrLLDPDescr]; v != "" {
		g, ok := osFromSysDescr(v, 85)
		add(g, ok, attrLLDPDescr, v)
	}
	if v := at[attrCDPVersion]; v != "" {
		g, ok := osFromSysDescr(v, 85)
		add(g, ok, attrCDPVersion, v)
	}
	if v := at[attrDHCPVendor]; v != "" {
		g, ok := osFromDHCPVendor(v)
		add(g, ok, attrDHCPVendor, v)
	}
	if v := at[attrDHCPParams]; v != "" {
		g, ok := osFromDHCPParams(v)
		add(g, ok, attrDHCPParams, v)
	}
	if v := at[attrBrowserOS]; v != "" {
		g, ok := osFromBrowser(v)
		add(g, ok, attrBrowserOS, v)
	}
	if v := at[attrSSHBanner]; v != "" {
		g, ok := osFromSSH(v)
		add(g, ok, attrSSHBanner, v)
	}
	if v := at[attrUserAgent]; v != "" {
		g, ok := osFromUserAgent(v)
		add(g, ok, attrUserAgent, v)
	}
	for _, k := range []string{attrTCPSyn, attrTCPSynAck} {
		if v := at[k]; v != "" {
			if g, ok := osFromEmbeddedStack(v); ok {
				add(g, ok, k, v)
				continue
			}
			if m, ok := inv.matchTCP(v, k == attrTCPSynAck); ok {
				g, ok := osFromTCP(m, k == attrTCPSynAck)
				if m.Fuzzy {
					g.version = strings.TrimSpace(g.version + " (fuzzy)")
				}
				add(g, ok, k, v)
			}
		}
	}
	return gs
}

// derive fills what the inventory concludes from the signals it holds: the
// MAC's registered vendor, the OS verdict, NAT, and the device class, each
// with its evidence in Attrs. mac is zero for an asset known by its IP
// alone: a vendor is never taken from a router's MAC for the addresses
// behind it.
func (inv *Inventory) derive(a *Asset, in *info, mac capture.MAC) {
	set := func(k, v string) { a.Attrs = setAttr(a.Attrs, k, v) }
	ouiVendor := ""
	if !mac.IsZero() {
		v, kind := MACVendor(mac)
		switch kind {
		case MACRandomized:
			set(AttrMACKind, "locally administered, randomized: not a lasting identity")
		case MACUniversal:
			if v != "" {
				ouiVendor = v
				set(AttrMACVendor, v)
				if a.Vendor == "" {
					a.Vendor = v
				}
			}
		}
	}
	if nat := natEvidence(in.fp); nat != nil && !a.Router {
		a.NAT = true
		set(AttrNAT, "true")
		set(AttrNATEvidence, strings.Join(nat, "; "))
	}
	stated := a.OS
	v, ok := combine(inv.osGuesses(a, stated))
	if ok {
		var ev []string
		for _, g := range v.evidence {
			ev = append(ev, g.String())
		}
		set(AttrOSEvidence, clipTo(strings.Join(ev, "; "), 1024))
		if a.NAT {
			// Unlike devices share the address: no one verdict.
			fams := map[string]bool{}
			var cands []string
			for _, g := range v.evidence {
				if !fams[g.family] {
					fams[g.family] = true
					cands = append(cands, g.name)
				}
			}
			set(AttrOSCandidate, strings.Join(cands, ", "))
			ok = false
		} else {
			if v.confidence >= minOSConfidence {
				a.OS = strings.TrimSpace(v.name + " " + v.version)
				if stated != "" && familyOf(stated) == v.family {
					a.OS = stated // the device's own words
				}
				a.OSName, a.OSVersion, a.OSConfidence = v.name, v.version, v.confidence
			}
			set(AttrOSName, v.name)
			if v.version != "" {
				set(AttrOSVersion, v.version)
			}
			set(AttrOSFamily, v.family)
			set(AttrOSConf, strconv.Itoa(v.confidence))
		}
	}
	stated = a.Class
	var votes []classVote
	if stated != "" {
		votes = append(votes, classVote{stated, 95, "stated by the device"})
	}
	votes = append(votes, classVotes(a, v, ok, ouiVendor)...)
	if a.NAT {
		votes = append(votes, classVote{dissect.ClassRouter, 60, "NAT: several devices behind it"})
	}
	if c, ev := decideClass(votes); c != "" {
		if stated == "" {
			a.Class = c
		}
		set(AttrClassEvid, clipTo(strings.Join(ev, "; "), 1024))
	}
}
