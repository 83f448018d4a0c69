package asset

import (
	"cmp"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Attributes the fingerprinting reads (emitted by the it/ dissectors) and
// writes. The inventory does not import the dissectors: the names are the
// contract.
const (
	attrDHCPParams  = "dhcp.params"
	attrDHCPVendor  = "dhcp.vendor_class"
	attrTCPSyn      = "tcp.syn"
	attrTCPSynAck   = "tcp.synack"
	attrTCPTSClock  = "tcp.ts_clock"
	attrUserAgent   = "http.user_agent"
	attrBrowserOS   = "browser.os_version"
	attrSSHBanner   = "ssh.banner"
	attrSNMPDescr   = "snmp.sys_descr"
	attrLLDPDescr   = "lldp.system_description"
	attrCDPVersion  = "cdp.software_version"
	attrLLDPCaps    = "lldp.capabilities"
	attrCDPCaps     = "cdp.capabilities"
	AttrOSName      = "os.name"       // the verdict's OS name ("Windows", "Linux", ...)
	AttrOSVersion   = "os.version"    // its version or flavour, when known
	AttrOSFamily    = "os.family"     // windows, linux, apple, bsd, cisco, ...
	AttrOSConf      = "os.confidence" // 0-100
	AttrOSEvidence  = "os.evidence"   // the signals weighed, strongest first
	AttrOSCandidate = "os.candidates" // on a NAT: the unlike systems seen behind it
	AttrNAT         = "nat"           // "true" when several devices show behind one address
	AttrNATEvidence = "nat.evidence"
	AttrClassEvid   = "class.evidence"
	AttrMACVendor   = "mac.vendor" // IEEE registry organisation of the MAC's prefix
	AttrMACKind     = "mac.kind"   // set for locally administered (randomized) MACs
)

// osGuess is one signal's opinion of a device's OS.
type osGuess struct {
	name, version, family string
	weight                int // 0-100: how much the signal is worth on its own
	source, value         string
}

// OS families; a guess of a family's generic name ("Linux") supports any
// more specific name of the family ("Android").
var genericOfFamily = map[string]string{
	"windows": "Windows", "linux": "Linux", "apple": "Apple", "bsd": "BSD", "cisco": "Cisco IOS",
}

func familyOf(name string) string {
	l := strings.ToLower(name)
	switch {
	case strings.Contains(l, "windows"):
		return "windows"
	case strings.Contains(l, "android"), strings.Contains(l, "linux"), strings.Contains(l, "chrome os"):
		return "linux"
	case strings.Contains(l, "ios") && !strings.Contains(l, "cisco"), strings.Contains(l, "mac"), l == "apple":
		return "apple"
	case strings.Contains(l, "bsd"):
		return "bsd"
	case strings.Contains(l, "cisco"), strings.Contains(l, "nx-os"):
		return "cisco"
	}
	return strings.ToLower(strings.Fields(name + " other")[0])
}

func guess(name, version string, weight int) osGuess {
	return osGuess{name: name, version: strings.TrimSpace(version), family: familyOf(name), weight: weight}
}

// osFromDHCPVendor reads option 60. Clients that name their OS there
// (Windows' "MSFT 5.0", Android's "android-dhcp-13", dhcpcd's
// "dhcpcd-9.4.1:Linux-5.15.0:armv7l:...") say it themselves.
func osFromDHCPVendor(v string) (osGuess, bool) {
	l := strings.ToLower(v)
	switch {
	case l == "msft 98":
		return guess("Windows", "98/ME", 80), true
	case strings.HasPrefix(l, "msft"):
		return guess("Windows", "", 75), true
	case strings.HasPrefix(l, "android-dhcp-"):
		return guess("Android", v[len("android-dhcp-"):], 85), true
	case strings.HasPrefix(l, "dhcpcd"):
		// dhcpcd-VERSION:SYSTEM-RELEASE:MACHINE:PLATFORM
		f := strings.Split(v, ":")
		if len(f) >= 2 {
			sys, rel, _ := strings.Cut(f[1], "-")
			if strings.EqualFold(sys, "Linux") {
				return guess("Linux", rel, 80), true
			}
			if sys != "" {
				return guess(sys, rel, 80), true
			}
		}
		return guess("Linux", "", 50), true
	case strings.HasPrefix(l, "udhcp"):
		// BusyBox's udhcpc: an embedded Linux.
		return guess("Linux", "embedded (BusyBox)", 65), true
	}
	return osGuess{}, false
}

// dhcpParamRules tell client families from the order of their option 55
// lists, as their DHCP clients write them (each client sends a fixed list
// in its own order): rules derived from the clients' sources and
// behaviour, checked on the corpus's captures.
var dhcpParamRules = []struct {
	prefix, has   string // prefix of the list; options that must all be present
	name, version string
	weight        int
}{
	// Windows 10/11 and Server 2016+: 1,3,6,15,31,33,43,44,46,47,119,121,249,252.
	{"1,3,6,15,31,33,43,44,46,47,119,121,249,252", "", "Windows", "10/11", 55},
	// Windows 8/8.1: the same, without domain search (119).
	{"1,3,6,15,31,33,43,44,46,47,121,249,252", "", "Windows", "8", 50},
	// Windows Vista/7: 1,15,3,6,44,46,47,31,33,121,249,43(,252).
	{"1,15,3,6,44,46,47,31,33,121,249", "", "Windows", "Vista/7", 50},
	// Windows XP/2003: 1,15,3,6,44,46,47,31,33,249,43.
	{"1,15,3,6,44,46,47,31,33,249", "", "Windows", "XP/2003", 50},
	{"1,15,3,6,44,46,47", "", "Windows", "", 45},
	// Apple: 1,121,3,6,15,119,252 (iOS), plus 95 (LDAP) and 44,46 on macOS.
	{"1,121,3,6,15,", "95", "macOS", "", 50},
	{"1,121,3,6,15,119,252", "", "iOS", "", 45},
	{"1,3,6,15,119,95,252,44,46", "", "macOS", "", 50},
	// Android's dhcpcd / DhcpClient: 1,3,6,15,26,28,51,58,59(,43,114).
	{"1,3,6,15,26,28,51,58,59", "", "Android", "", 50},
	// ISC dhclient (Debian/Ubuntu/RHEL): 1,28,2,3,15,6,119,12,44,47,26,121,42.
	{"1,28,2,3,15,6", "", "Linux", "", 45},
	// systemd-networkd: 1,3,6,12,15,28,42,43,119,121 (order varies by version).
	{"1,3,6,12,15,28,42,", "119", "Linux", "", 35},
	// BusyBox udhcpc's default: 1,3,6,12,15,28,42.
	{"1,3,6,12,15,28,42", "", "Linux", "embedded (BusyBox)", 40},
}

func osFromDHCPParams(v string) (osGuess, bool) {
	for _, r := range dhcpParamRules {
		if !strings.HasPrefix(v+",", r.prefix+",") && !(strings.HasSuffix(r.prefix, ",") && strings.HasPrefix(v, r.prefix)) {
			continue
		}
		ok := true
		for _, o := range strings.Split(r.has, ",") {
			if o != "" && !slices.Contains(strings.Split(v, ","), o) {
				ok = false
			}
		}
		if ok {
			return guess(r.name, r.version, r.weight), true
		}
	}
	return osGuess{}, false
}

// windowsNT names Windows releases by their NT version (User-Agent
// "Windows NT x.y", Browser announcements' OS version).
var windowsNT = map[string]string{
	"10.0": "10/11", "6.3": "8.1", "6.2": "8", "6.1": "7", "6.0": "Vista", "5.2": "XP x64/2003", "5.1": "XP", "5.0": "2000", "4.0": "NT 4",
}

var (
	reUAWinNT   = regexp.MustCompile(`Windows NT (\d+\.\d+)`)
	reUAAndroid = regexp.MustCompile(`Android (\d+(?:\.\d+)*)`)
	reUAiOS     = regexp.MustCompile(`(?:iPhone|CPU) OS (\d+(?:_\d+)*)`)
	reUAMac     = regexp.MustCompile(`Mac OS X (\d+(?:[._]\d+)*)`)
	reUACrOS    = regexp.MustCompile(`CrOS \S+ (\d+(?:\.\d+)*)`)
)

// osFromUserAgent reads the OS tokens browsers and most HTTP libraries put
// in User-Agent (RFC 9110 section 10.1.5 leaves the format free; these are
// the tokens in use).
func osFromUserAgent(ua string) (osGuess, bool) {
	const w = 45
	if m := reUAWinNT.FindStringSubmatch(ua); m != nil {
		return guess("Windows", cmp.Or(windowsNT[m[1]], "NT "+m[1]), w), true
	}
	if m := reUAAndroid.FindStringSubmatch(ua); m != nil {
		return guess("Android", m[1], w), true
	}
	if m := reUAiOS.FindStringSubmatch(ua); m != nil && (strings.Contains(ua, "iPhone") || strings.Contains(ua, "iPad") || strings.Contains(ua, "iPod")) {
		return guess("iOS", strings.ReplaceAll(m[1], "_", "."), w), true
	}
	if m := reUAMac.FindStringSubmatch(ua); m != nil {
		return guess("macOS", strings.ReplaceAll(m[1], "_", "."), w), true
	}
	if m := reUACrOS.FindStringSubmatch(ua); m != nil {
		return guess("Chrome OS", m[1], w), true
	}
	switch {
	case strings.Contains(ua, "Windows"):
		return guess("Windows", "", w-10), true
	case strings.Contains(ua, "Ubuntu"):
		return guess("Linux", "Ubuntu", w), true
	case strings.Contains(ua, "Fedora"):
		return guess("Linux", "Fedora", w), true
	case strings.Contains(ua, "Linux"), strings.Contains(ua, "X11"):
		return guess("Linux", "", w-5), true
	case strings.Contains(ua, "FreeBSD"):
		return guess("FreeBSD", "", w), true
	case strings.HasPrefix(ua, "Microsoft-CryptoAPI/"), strings.HasPrefix(ua, "Microsoft-Delivery-Optimization/"),
		strings.HasPrefix(ua, "Microsoft NCSI"), strings.HasPrefix(ua, "Windows-Update-Agent"):
		return guess("Windows", "", w), true
	case strings.HasPrefix(ua, "CaptiveNetworkSupport"):
		return guess("Apple", "", w-10), true
	}
	return osGuess{}, false
}

// osFromBrowser reads the OS version of a Browser host announcement
// (MS-BRWS 2.2.1: major.minor of the Windows NT kernel; Samba announces
// its own numbers, so the weight stays moderate).
func osFromBrowser(v string) (osGuess, bool) {
	if name, ok := windowsNT[v]; ok {
		return guess("Windows", name, 55), true
	}
	return osGuess{}, false
}

// osFromSSH reads an SSH identification string (RFC 4253 section 4.2:
// SSH-protoversion-softwareversion SP comments), where OpenSSH builds of
// distributions name themselves.
func osFromSSH(b string) (osGuess, bool) {
	l := strings.ToLower(b)
	switch {
	case strings.Contains(l, "for_windows"), strings.Contains(l, "windows"):
		return guess("Windows", "", 60), true
	case strings.Contains(l, "ubuntu"):
		return guess("Linux", "Ubuntu", 60), true
	case strings.Contains(l, "debian"):
		v := ""
		if i := strings.Index(l, "+deb"); i >= 0 {
			v = strings.TrimRightFunc(l[i+4:], func(r rune) bool { return r < '0' || r > '9' })
			if j := strings.IndexFunc(v, func(r rune) bool { return r < '0' || r > '9' }); j >= 0 {
				v = v[:j]
			}
		}
		return guess("Linux", strings.TrimSpace("Debian "+v), 60), true
	case strings.Contains(l, "raspbian"):
		return guess("Linux", "Raspbian", 60), true
	case strings.Contains(l, "freebsd"):
		return guess("FreeBSD", "", 60), true
	case strings.Contains(l, "dropbear"):
		return guess("Linux", "embedded (Dropbear)", 40), true
	case strings.HasPrefix(l, "ssh-2.0-cisco") || strings.HasPrefix(l, "ssh-1.99-cisco"):
		return guess("Cisco IOS", "", 70), true
	case strings.Contains(l, "rosssh"):
		return guess("RouterOS", "", 70), true
	}
	return osGuess{}, false
}

var (
	reIOS      = regexp.MustCompile(`(?i)Cisco (IOS(?:[ -]XE)?|NX-OS|Adaptive Security Appliance)[^,]*(?:,.*?)? Version ([^\s,]+)`)
	reWinVer   = regexp.MustCompile(`Windows(?: Version)? (\d+\.\d+)`)
	reLinuxRel = regexp.MustCompile(`Linux \S+ (\d+\.\d+[\w.+~-]*)`)
	reJunos    = regexp.MustCompile(`(?i)JUNOS (\S+)`)
)

// osFromSysDescr reads a system description as SNMP sysDescr (RFC 3418),
// LLDP's System Description (IEEE 802.1AB 8.5.8) or CDP's software
// version carry it: the device's own words.
func osFromSysDescr(s string, weight int) (osGuess, bool) {
	if m := reIOS.FindStringSubmatch(s); m != nil {
		name := "Cisco " + strings.ToUpper(m[1][:1]) + m[1][1:]
		if strings.EqualFold(m[1], "Adaptive Security Appliance") {
			name = "Cisco ASA"
		}
		return guess(name, m[2], weight), true
	}
	l := strings.ToLower(s)
	switch {
	case strings.Contains(l, "windows"):
		v := ""
		if m := reWinVer.FindStringSubmatch(s); m != nil {
			v = cmp.Or(windowsNT[m[1]], m[1])
		}
		return guess("Windows", v, weight), true
	case strings.HasPrefix(l, "linux"):
		v := ""
		if m := reLinuxRel.FindStringSubmatch(s); m != nil {
			v = m[1]
		}
		return guess("Linux", v, weight), true
	case strings.Contains(l, "junos"):
		v := ""
		if m := reJunos.FindStringSubmatch(s); m != nil {
			v = m[1]
		}
		return guess("JUNOS", v, weight), true
	case strings.HasPrefix(l, "freebsd"):
		return guess("FreeBSD", fieldAfter(s, 2), weight), true
	case strings.Contains(l, "routeros"):
		return guess("RouterOS", "", weight), true
	case strings.Contains(l, "vxworks"):
		return guess("VxWorks", "", weight), true
	case strings.Contains(l, "cisco ios"), strings.Contains(l, "ios software"):
		return guess("Cisco IOS", "", weight), true
	}
	return osGuess{}, false
}

func fieldAfter(s string, i int) string {
	f := strings.Fields(s)
	if i < len(f) {
		return f[i]
	}
	return ""
}

// osFromTCP names the p0f signature's OS.
func osFromTCP(m TCPMatch, synack bool) (osGuess, bool) {
	if m.Class == "!" || m.Name == "" {
		return osGuess{}, false
	}
	w := 40
	switch {
	case m.Fuzzy:
		w = 20
	case m.Generic:
		w = 30
	}
	if synack {
		w -= 5
	}
	name := m.Name
	switch name {
	case "Mac OS X", "MacOS X":
		name = "macOS"
	}
	return guess(name, m.Flavor, w), true
}

// osFromEmbeddedStack recognises the stacks of controllers and other
// embedded devices: a SYN or SYN-ACK with the MSS as its only option and
// no don't-fragment bit. Every general-purpose system has sent window
// scale and SACK-permitted (RFC 7323, RFC 2018) for twenty years, and the
// PLCs in the corpus answer like this; p0f's fuzzy matching calls them
// "Windows 7 or 8", which this rule overrides.
func osFromEmbeddedStack(raw string) (osGuess, bool) {
	t, ok := parseTCPSig(raw, false)
	if !ok || t.layout != "mss" || t.quirks&qDF != 0 {
		return osGuess{}, false
	}
	return osGuess{name: "Embedded", version: "TCP/IP stack", family: "embedded", weight: 30}, true
}

// osFromStated reads an OS a protocol stated (dissect.AttrOS).
func osFromStated(s string) osGuess {
	if g, ok := osFromSysDescr(s, 90); ok && g.version != "" {
		return g
	}
	name, version := s, ""
	if i := strings.LastIndexByte(s, ' '); i > 0 && strings.ContainsAny(s[i+1:], "0123456789") {
		name, version = s[:i], s[i+1:]
	}
	return guess(name, version, 90)
}

// osVerdict is the combined opinion of the signals.
type osVerdict struct {
	name, version, family string
	confidence            int
	evidence              []osGuess
}

// combine weighs the guesses: the family with the strongest support wins
// (support is a noisy-or of the weights of the guesses in it), lowered by
// the support of the other families; within it, the most supported name,
// a specific one ("Android") before its family's generic one ("Linux").
func combine(gs []osGuess) (osVerdict, bool) {
	if len(gs) == 0 {
		return osVerdict{}, false
	}
	slices.SortStableFunc(gs, func(a, b osGuess) int { return cmp.Compare(b.weight, a.weight) })
	fams := map[string]float64{}
	for _, g := range gs {
		p := fams[g.family]
		fams[g.family] = 1 - (1-p)*(1-float64(g.weight)/100)
	}
	best, bestP := "", -1.0
	for f, p := range fams {
		if p > bestP || (p == bestP && f < best) {
			best, bestP = f, p
		}
	}
	other := 0.0
	for f, p := range fams {
		if f != best {
			other = 1 - (1-other)*(1-p)
		}
	}
	generic := genericOfFamily[best]
	names := map[string]int{}
	for _, g := range gs {
		if g.family != best {
			continue
		}
		names[g.name] += g.weight
	}
	type cand struct {
		name  string
		score int
	}
	var cs []cand
	for n, sc := range names {
		if n != generic {
			sc += names[generic]
		}
		cs = append(cs, cand{n, sc})
	}
	slices.SortFunc(cs, func(a, b cand) int {
		return cmp.Or(cmp.Compare(b.score, a.score), cmp.Compare(boolInt(a.name == generic), boolInt(b.name == generic)), cmp.Compare(a.name, b.name))
	})
	name := cs[0].name
	v := osVerdict{name: name, family: best, evidence: gs}
	for _, g := range gs {
		if g.name == name && g.version != "" {
			v.version = g.version
			break
		}
	}
	v.confidence = int(math.Round(100 * bestP * (1 - 0.7*other)))
	v.confidence = max(1, min(v.confidence, 99))
	return v, true
}

func (g osGuess) String() string {
	var b strings.Builder
	b.Grow(len(g.source) + len(g.value) + len(g.name) + len(g.version) + 16)
	b.WriteString(g.source)
	b.WriteString("=\"")
	b.WriteString(clipTo(g.value, 80))
	b.WriteString("\": ")
	b.WriteString(g.name)
	if g.version != "" {
		b.WriteByte(' ')
		b.WriteString(g.version)
	}
	b.WriteString(" (")
	b.WriteString(strconv.Itoa(g.weight))
	b.WriteString(")")
	return b.String()
}

func clipTo(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
