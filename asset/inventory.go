package asset

import (
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
)

// Bounds of what the inventory keeps.
const (
	DefaultMaxRecords = 200000 // IP records, and MAC records, each
	MaxAttrs          = 64     // other attributes per asset record
	MaxValueLen       = 256    // bytes of an attribute value
	MaxProtocols      = 64     // protocols per record
	MaxPorts          = 256    // open ports per record
	MaxServiceValues  = 32     // values per "service:PROTO" attribute
	MaxRoles          = 16     // roles per record
	MaxIPsPerMAC      = 64     // addresses bound to one MAC
	MaxGroupIPs       = 64     // addresses listed on a group pseudo-asset
	MaxResolved       = 8192   // addresses learnt from DNS for monitored FQDNs
)

// Attributes the inventory files dissect.AttrDomain under when the
// protocol says which kind of domain it is, so that a NetBIOS workgroup or
// a Kerberos realm does not overwrite the DNS domain (Asset.Domain).
const (
	AttrWorkgroup     = "netbios.domain" // NetBIOS workgroup or NT domain name
	AttrKerberosRealm = "kerberos.realm" // Kerberos realm
)

// Pseudo-asset IDs.
const (
	IDExternal = "external"
	IDExcluded = "excluded" // used in traffic records only; never an asset
)

// field indexes of the named attributes.
const (
	fHostname = iota
	fDomain
	fVendor
	fModel
	fFirmware
	fSerial
	fOS
	fClass
	numFields
)

var fieldOf = map[string]int{
	dissect.AttrHostname: fHostname,
	dissect.AttrDomain:   fDomain,
	dissect.AttrVendor:   fVendor,
	dissect.AttrModel:    fModel,
	dissect.AttrFirmware: fFirmware,
	dissect.AttrSerial:   fSerial,
	dissect.AttrOS:       fOS,
	dissect.AttrClass:    fClass,
}

// info is what is known about one record (an IP, a MAC or a pseudo-asset).
type info struct {
	fields      [numFields]string
	attrs       map[string]string
	roles       []string
	protocols   []string
	ports       []Port
	services    map[string][]string // protocol -> "value@peer"
	fp          *fpSets             // signals kept for NAT detection; nil until one is seen
	first, last time.Time
}

func (in *info) seen(t time.Time) {
	if t.IsZero() {
		return
	}
	if in.first.IsZero() || t.Before(in.first) {
		in.first = t
	}
	if t.After(in.last) {
		in.last = t
	}
}

func (in *info) empty() bool {
	return in.fields == [numFields]string{} && len(in.attrs) == 0 && len(in.roles) == 0 &&
		len(in.protocols) == 0 && len(in.ports) == 0 && len(in.services) == 0 && in.fp == nil
}

// addSorted inserts s into the sorted set ss, bounded by max.
func addSorted(ss []string, s string, max int) []string {
	i, ok := slices.BinarySearch(ss, s)
	if ok || len(ss) >= max {
		return ss
	}
	return slices.Insert(ss, i, s)
}

func (in *info) addProtocol(p string) {
	if p != "" {
		in.protocols = addSorted(in.protocols, clip(p), MaxProtocols)
	}
}

func portLess(a, b Port) int {
	if a.Proto != b.Proto {
		return int(a.Proto) - int(b.Proto)
	}
	return int(a.Port) - int(b.Port)
}

func (in *info) addPort(p Port) {
	i, ok := slices.BinarySearchFunc(in.ports, p, portLess)
	if ok || len(in.ports) >= MaxPorts {
		return
	}
	in.ports = slices.Insert(in.ports, i, p)
}

func (in *info) setAttr(k, v string) {
	if in.attrs == nil {
		in.attrs = map[string]string{}
	}
	if _, ok := in.attrs[k]; !ok && len(in.attrs) >= MaxAttrs {
		return
	}
	in.attrs[k] = v
}

func (in *info) addService(proto, v string) {
	if in.services == nil {
		in.services = map[string][]string{}
	}
	vs, ok := in.services[proto]
	if !ok && len(in.services) >= MaxProtocols {
		return
	}
	in.services[proto] = addSorted(vs, v, MaxServiceValues)
}

// fold adds what src knows and dst does not.
func (dst *info) fold(src *info) {
	for i, v := range src.fields {
		if dst.fields[i] == "" {
			dst.fields[i] = v
		}
	}
	for k, v := range src.attrs {
		if _, ok := dst.attrs[k]; !ok {
			dst.setAttr(k, v)
		}
	}
	for _, r := range src.roles {
		dst.roles = addSorted(dst.roles, r, MaxRoles)
	}
	for _, p := range src.protocols {
		dst.addProtocol(p)
	}
	for _, p := range src.ports {
		dst.addPort(p)
	}
	for p, vs := range src.services {
		for _, v := range vs {
			dst.addService(p, v)
		}
	}
	if src.fp != nil {
		if dst.fp == nil {
			dst.fp = &fpSets{}
		}
		dst.fp.fold(src.fp)
	}
	dst.seen(src.first)
	dst.seen(src.last)
}

// clip bounds a value's length, keeping it valid UTF-8.
func clip(s string) string {
	if len(s) > MaxValueLen {
		s = s[:MaxValueLen]
		for len(s) > 0 && !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return strings.ToValidUTF8(s, "")
}

// ipRec is one address, always kept, whether or not a MAC groups it.
type ipRec struct {
	ip         netip.Addr
	id         string // "ip:..."
	gen        uint64 // Asset.Gen
	pos        int    // place in Inventory.ipList
	snap       uint64 // the last snapshot (Assets) that took it
	kind       Kind
	addressing string
	mac        capture.MAC // bound MAC; zero when keyed by IP
	claimed    bool        // the binding came from the MAC's own claim (ARP, DHCP)
	info
}

// macRec is one MAC: a host (grouping its IPs) or a router.
type macRec struct {
	mac      capture.MAC
	id       string       // "mac:..."
	gen      uint64       // Asset.Gen
	pos      int          // place in Inventory.macList
	snap     uint64       // the last snapshot (Assets) that took it
	ips      []netip.Addr // bound addresses, current first
	claims   map[netip.Addr]bool
	carried  map[netip.Addr]bool // distinct unclaimed IPs (IPv6: /64s) seen in its frames
	n4, n6   int                 // IPv4 and IPv6 entries of carried
	router   bool
	observed bool // an observation named this MAC as its own
	info
}

// pseudo is the external asset or a monitored group's.
type pseudo struct {
	id   string
	gen  uint64 // Asset.Gen
	kind Kind
	ips  []netip.Addr
	info
}

// Inventory decides which observations and flows are the same device.
// It is safe for concurrent use.
//
// Identity: every inventoried address has its own record. An address is
// grouped under a MAC (asset "mac:...") while that MAC is seen as its
// own: claimed by ARP/DHCP observations, or the source MAC of its frames.
// A MAC's asset lists the addresses it has held, current first: when an
// address moves to another MAC it stays in the old MAC's list as history,
// while Lookup and traffic records name its current holder.
// A MAC that carries more than RouterIPThreshold distinct IPv4 addresses
// (or IPv6 /64 prefixes) it does not claim, or any external IPv4 address,
// is a router's (see carry): it becomes an asset
// of its own (Router set, keeping only the addresses it claims) and each
// address behind it is an asset of its own ("ip:..."), with what was
// learnt about it.
type Inventory struct {
	mu       sync.Mutex
	cl       *classifier
	ips      map[netip.Addr]*ipRec
	macs     map[capture.MAC]*macRec
	resolved map[netip.Addr]string // address -> group, from DNS answers
	groups   map[string]*pseudo
	external *pseudo
	// Every record of ips and macs, for the passes that walk them a
	// bounded step at a time (see aging.go).
	ipList  []*ipRec
	macList []*macRec
	evict   evictPass // the eviction pass in progress
	snaps   uint64    // snapshots taken (Assets)
	// MaxRecords bounds the IP records and the MAC records (each); new
	// ones beyond it are dropped and counted. Set before use.
	MaxRecords int
	// MaxAge is how long an asset not seen is kept; Age removes older
	// ones. Zero keeps them all. Set before use.
	MaxAge   time.Duration
	dropped  uint64
	gens     uint64               // records created: the last Asset.Gen given
	aged     uint64               // assets removed by Age
	evicted  uint64               // assets removed to make room under MaxRecords
	tcpCache map[string]tcpCached // p0f matches of TCP signatures
	idGen    uint64               // see IdentityGen
}

// NewInventory returns an empty inventory judging addresses by c. Invalid
// entries of c are skipped (LoadClasses reports them).
func NewInventory(c Classes) *Inventory {
	cl, err := compile(c)
	if err != nil {
		cl = compileLenient(c)
	}
	return &Inventory{
		cl:         cl,
		ips:        map[netip.Addr]*ipRec{},
		macs:       map[capture.MAC]*macRec{},
		resolved:   map[netip.Addr]string{},
		groups:     map[string]*pseudo{},
		MaxRecords: DefaultMaxRecords,
		MaxAge:     DefaultMaxAge,
	}
}

// compileLenient compiles c without its invalid entries.
func compileLenient(c Classes) *classifier {
	var ok Classes
	ok.RouterIPThreshold = c.RouterIPThreshold
	try := func(f func(*Classes)) {
		t := ok
		f(&t)
		if _, err := compile(t); err == nil {
			ok = t
		}
	}
	for _, r := range c.Inventoried {
		try(func(t *Classes) { t.Inventoried = append(slices.Clip(t.Inventoried), r) })
	}
	for _, p := range c.NonInventoried {
		try(func(t *Classes) { t.NonInventoried = append(slices.Clip(t.NonInventoried), p) })
	}
	for _, p := range c.ExcludedIPs {
		try(func(t *Classes) { t.ExcludedIPs = append(slices.Clip(t.ExcludedIPs), p) })
	}
	for _, m := range c.ExcludedMACs {
		try(func(t *Classes) { t.ExcludedMACs = append(slices.Clip(t.ExcludedMACs), m) })
	}
	for _, g := range c.Groups {
		try(func(t *Classes) { t.Groups = append(slices.Clip(t.Groups), g) })
	}
	cl, _ := compile(ok)
	return cl
}

// Dropped returns how many records were not created because of MaxRecords
// (room is made by evicting the least recently seen assets first, see
// Evicted, so this counts only what eviction could not make room for).
func (inv *Inventory) Dropped() uint64 {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return inv.dropped
}

// IdentityGen grows whenever an asset may have appeared: a new address,
// MAC or group record, an address joining a MAC, a MAC first named by an
// observation or found to be a router. A reporter that sees it move knows
// there may be something new to report without taking a snapshot.
func (inv *Inventory) IdentityGen() uint64 {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return inv.idGen
}

// Class returns the class of ip, and the group name for a monitored
// external address.
func (inv *Inventory) Class(ip netip.Addr) (Kind, string) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	k, g, _ := inv.class(ip)
	return k, g
}

func (inv *Inventory) class(ip netip.Addr) (k Kind, group, addressing string) {
	ip = ip.Unmap()
	k, group, addressing = inv.cl.class(ip)
	if k == External {
		if g, ok := inv.resolved[ip]; ok {
			return MonitoredExternal, g, ""
		}
	}
	return k, group, addressing
}

// ResolveDNS tells the inventory that DNS answered name with addrs (as
// seen on the wire): if name is a monitored FQDN (or matches a "*.domain"
// entry), those addresses belong to its group.
func (inv *Inventory) ResolveDNS(name string, addrs []netip.Addr) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	inv.resolveDNS(name, addrs)
}

func (inv *Inventory) resolveDNS(name string, addrs []netip.Addr) {
	name = normName(name)
	g, ok := inv.cl.fqdnGroup[name]
	for n := name; !ok; {
		i := strings.IndexByte(n, '.')
		if i < 0 {
			break
		}
		n = n[i+1:]
		g, ok = inv.cl.fqdnGroup["*."+n]
	}
	if !ok {
		return
	}
	for _, a := range addrs {
		a = a.Unmap()
		if never(a) {
			continue
		}
		if _, had := inv.resolved[a]; !had && len(inv.resolved) >= MaxResolved {
			continue
		}
		inv.resolved[a] = g
	}
}

func (inv *Inventory) usableMAC(m capture.MAC) bool {
	return !m.IsZero() && !m.IsMulticast() && !inv.cl.exMACs[m]
}

// broadcast reports whether ip is a directed broadcast of an inventoried
// subnet (see classifier.directedBroadcast) that no MAC has claimed as its
// own address: traffic to it is no device's.
func (inv *Inventory) broadcast(ip netip.Addr) bool {
	if r := inv.ips[ip]; r != nil && r.claimed {
		return false
	}
	return inv.cl.directedBroadcast(ip)
}

func (inv *Inventory) ipRec(ip netip.Addr, k Kind, addressing string) *ipRec {
	r := inv.ips[ip]
	if r == nil {
		if len(inv.ips) >= inv.MaxRecords {
			inv.dropped++
			return nil
		}
		inv.gens++
		r = &ipRec{ip: ip, id: "ip:" + ip.String(), gen: inv.gens, kind: k, addressing: addressing}
		inv.ips[ip] = r
		inv.listIP(r)
		inv.idGen++
	}
	return r
}

func (inv *Inventory) macRec(m capture.MAC) *macRec {
	r := inv.macs[m]
	if r == nil {
		if len(inv.macs) >= inv.MaxRecords {
			inv.dropped++
			return nil
		}
		inv.gens++
		r = &macRec{mac: m, id: "mac:" + m.String(), gen: inv.gens}
		inv.macs[m] = r
		inv.listMAC(r)
		inv.idGen++
	}
	return r
}

func (inv *Inventory) pseudo(k Kind, group string) *pseudo {
	if k == External {
		if inv.external == nil {
			inv.gens++
			inv.external = &pseudo{id: IDExternal, gen: inv.gens, kind: External}
			inv.idGen++
		}
		return inv.external
	}
	p := inv.groups[group]
	if p == nil {
		inv.gens++
		p = &pseudo{id: "group:" + group, gen: inv.gens, kind: MonitoredExternal}
		inv.groups[group] = p
		inv.idGen++
	}
	return p
}

func (p *pseudo) addIP(ip netip.Addr) {
	if p.kind != MonitoredExternal || slices.Contains(p.ips, ip) || len(p.ips) >= MaxGroupIPs {
		return
	}
	p.ips = append(p.ips, ip)
}

// bind groups address r under MAC m. A claim (ARP, DHCP) moves an address
// between MACs, folding what was learnt about it into the old MAC (it
// described the old device); a binding seen in frames never overrides a
// claim, and never binds to a router.
func (inv *Inventory) bind(r *ipRec, m *macRec, claimed bool) {
	if claimed {
		if m.claims == nil {
			m.claims = map[netip.Addr]bool{}
		}
		if !m.claims[r.ip] && len(m.claims) < MaxIPsPerMAC {
			m.claims[r.ip] = true
		}
		if k := carriedKey(r.ip); m.carried[k] {
			delete(m.carried, k)
			if k.Is4() {
				m.n4--
			} else {
				m.n6--
			}
		}
	} else if m.router {
		return
	}
	if r.mac == m.mac {
		r.claimed = r.claimed || claimed
		m.ips = toFront(m.ips, r.ip)
		return
	}
	if !r.mac.IsZero() {
		if r.claimed && !claimed {
			return
		}
		if old := inv.macs[r.mac]; old != nil {
			// The old MAC keeps the address in its history (after its
			// current one), but no longer holds it.
			delete(old.claims, r.ip)
			if claimed {
				old.info.fold(&r.info)
				r.info = info{}
			}
		}
	}
	if len(m.ips) >= MaxIPsPerMAC {
		last := m.ips[len(m.ips)-1]
		m.ips = m.ips[:len(m.ips)-1]
		if lr := inv.ips[last]; lr != nil && lr.mac == m.mac {
			lr.mac, lr.claimed = capture.MAC{}, false
		}
	}
	r.mac, r.claimed = m.mac, claimed
	m.ips = toFront(m.ips, r.ip)
	inv.idGen++
}

func toFront(s []netip.Addr, ip netip.Addr) []netip.Addr {
	i := slices.Index(s, ip)
	if i < 0 {
		return slices.Insert(s, 0, ip)
	}
	copy(s[1:i+1], s[:i])
	s[0] = ip
	return s
}

// markRouter makes m a router: the addresses it does not claim are split
// out into assets of their own.
func (inv *Inventory) markRouter(m *macRec) {
	if m.router {
		return
	}
	m.router = true
	m.carried = nil
	inv.idGen++
	kept := m.ips[:0]
	for _, ip := range m.ips {
		if m.claims[ip] {
			kept = append(kept, ip)
			continue
		}
		if r := inv.ips[ip]; r != nil && r.mac == m.mac {
			r.mac, r.claimed = capture.MAC{}, false
		}
	}
	m.ips = kept
}

// carry notes that m's frames carried address ip of class k. IPv4 and
// IPv6 are counted apart, and IPv6 by /64 prefix, so that a dual-stack
// host with temporary (privacy) addresses is not taken for a router;
// link-local addresses are never routed and do not count.
func (inv *Inventory) carry(m *macRec, ip netip.Addr, k Kind) {
	if m.router || ip.IsLinkLocalUnicast() {
		return
	}
	if (k == External || k == MonitoredExternal) && ip.Is4() {
		inv.markRouter(m)
		return
	}
	if m.claims[ip] || (ip.Is6() && eui64(ip, m.mac)) {
		return
	}
	key := carriedKey(ip)
	if m.carried[key] {
		return
	}
	if m.carried == nil {
		m.carried = map[netip.Addr]bool{}
	}
	m.carried[key] = true
	if ip.Is4() {
		m.n4++
	} else {
		m.n6++
	}
	if m.n4 > inv.cl.threshold || m.n6 > inv.cl.threshold {
		inv.markRouter(m)
	}
}

// carriedKey is what carry counts of ip: an IPv4 address, or an IPv6 /64.
func carriedKey(ip netip.Addr) netip.Addr {
	if ip.Is6() {
		return netip.PrefixFrom(ip, 64).Masked().Addr()
	}
	return ip
}

// eui64 reports whether the interface identifier of IPv6 address ip is
// the modified EUI-64 of mac.
func eui64(ip netip.Addr, mac capture.MAC) bool {
	b := ip.As16()
	return b[8] == mac[0]^2 && b[9] == mac[1] && b[10] == mac[2] && b[11] == 0xff &&
		b[12] == 0xfe && b[13] == mac[3] && b[14] == mac[4] && b[15] == mac[5]
}

// Observe takes one fact a dissector learnt.
func (inv *Inventory) Observe(o dissect.Observation) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	inv.makeRoom()
	mac := o.MAC
	if inv.cl.exMACs[mac] {
		return
	}
	if !inv.usableMAC(mac) {
		mac = capture.MAC{}
	}
	ip := o.IP.Unmap()
	switch o.Attr {
	case dissect.AttrDNSAnswer:
		// Not a fact about the answered address's device: it tells which
		// addresses a monitored FQDN stands for.
		inv.resolveDNS(o.Value, []netip.Addr{ip})
		return
	case dissect.AttrProtocol:
		if !ip.IsValid() && !mac.IsZero() {
			// A link-layer protocol, spoken by the MAC itself.
			if r := inv.macRec(mac); r != nil {
				if !r.observed {
					r.observed = true
					inv.idGen++
				}
				r.addProtocol(o.Value)
				r.seen(o.Time)
			}
			return
		}
		inv.touchProtocol(ip, o.Value, o.Time)
		inv.touchProtocol(o.Peer.Unmap(), o.Value, o.Time)
		return
	case dissect.AttrIP:
		if a, err := netip.ParseAddr(strings.TrimSpace(o.Value)); err == nil {
			ip = a.Unmap()
		}
		if mac.IsZero() {
			return
		}
	}
	var k Kind
	var group, addressing string
	if never(ip) || (inv.broadcast(ip) && !(o.Attr == dissect.AttrIP && !mac.IsZero())) {
		// A subnet's broadcast is no device, unless a MAC claims it.
		ip = netip.Addr{}
	} else {
		k, group, addressing = inv.class(ip)
		switch k {
		case Excluded:
			return
		case NonInventoried:
			if r := inv.ipRec(ip, k, ""); r != nil {
				r.seen(o.Time)
			}
			return
		case External, MonitoredExternal:
			p := inv.pseudo(k, group)
			p.addIP(ip)
			p.seen(o.Time)
			if mac.IsZero() {
				return
			}
			// A device stating its own MAC is on our segment whatever its
			// address: it is known by its MAC, without the address.
			ip = netip.Addr{}
		}
	}
	var target *info
	var r *ipRec
	if ip.IsValid() {
		if r = inv.ipRec(ip, k, addressing); r == nil {
			return
		}
		r.seen(o.Time)
		target = &r.info
	}
	if !mac.IsZero() {
		m := inv.macRec(mac)
		if m == nil {
			return
		}
		if !m.observed {
			m.observed = true
			inv.idGen++
		}
		m.seen(o.Time)
		if r != nil {
			inv.bind(r, m, true)
		}
		target = &m.info
	}
	if target == nil || o.Attr == dissect.AttrIP {
		return
	}
	inv.apply(target, o)
}

// apply records attribute o.Attr on in.
func (inv *Inventory) apply(in *info, o dissect.Observation) {
	v := clip(strings.TrimSpace(o.Value))
	if v == "" {
		return
	}
	if o.Attr == dissect.AttrDomain {
		switch o.Protocol {
		case "nbns", "nbdgm", "browser", "netbios", "smb", "smb2":
			// A NetBIOS workgroup or NT domain: not the DNS domain.
			in.setAttr(AttrWorkgroup, v)
			return
		case "kerberos":
			// A realm: the DNS domain in capitals, by convention only.
			in.setAttr(AttrKerberosRealm, v)
			if in.fields[fDomain] == "" {
				in.fields[fDomain] = strings.ToLower(v)
			}
			return
		}
	}
	if i, ok := fieldOf[o.Attr]; ok {
		in.fields[i] = v
		return
	}
	switch o.Attr {
	case dissect.AttrFQDN:
		in.setAttr(o.Attr, v)
		host, dom, _ := strings.Cut(strings.TrimSuffix(v, "."), ".")
		if in.fields[fHostname] == "" {
			in.fields[fHostname] = host
		}
		if in.fields[fDomain] == "" && dom != "" {
			in.fields[fDomain] = dom
		}
	case dissect.AttrRole:
		in.roles = addSorted(in.roles, v, MaxRoles)
	case dissect.AttrService:
		val := v
		if o.Peer.IsValid() {
			val += "@" + o.Peer.Unmap().String()
		}
		in.addService(clip(o.Protocol), val)
	default:
		inv.noteFP(in, o.Attr, v)
		in.setAttr(clip(o.Attr), v)
	}
}

// touchProtocol adds protocol p to the record of ip.
func (inv *Inventory) touchProtocol(ip netip.Addr, p string, t time.Time) {
	if never(ip) || inv.broadcast(ip) {
		return
	}
	k, group, addressing := inv.class(ip)
	switch k {
	case Excluded:
	case NonInventoried:
		if r := inv.ipRec(ip, k, ""); r != nil {
			r.seen(t)
		}
	case External, MonitoredExternal:
		ps := inv.pseudo(k, group)
		ps.addIP(ip)
		ps.addProtocol(p)
		ps.seen(t)
	default:
		if r := inv.ipRec(ip, k, addressing); r != nil {
			r.addProtocol(p)
			r.seen(t)
		}
	}
}

// AddFlow takes a flow when it is created, answered or ended: it binds
// each side's address to the MAC its frames came from (or learns that MAC
// is a router's), records the server's open port when the flow was
// answered, and updates last seen.
func (inv *Inventory) AddFlow(f *flow.Flow) {
	if f == nil {
		return
	}
	inv.mu.Lock()
	defer inv.mu.Unlock()
	inv.makeRoom()
	inv.side(f.Client.Addr(), f.ClientMAC, f, false)
	inv.side(f.Server.Addr(), f.ServerMAC, f, true)
}

func (inv *Inventory) side(ip netip.Addr, mac capture.MAC, f *flow.Flow, server bool) {
	ip = ip.Unmap()
	if never(ip) || inv.broadcast(ip) {
		return
	}
	k, group, addressing := inv.class(ip)
	if k == Excluded {
		return
	}
	if inv.cl.exMACs[mac] && (k == Inventoried || k == NonInventoried) {
		return // the device excluded by its MAC
	}
	var m *macRec
	if inv.usableMAC(mac) {
		m = inv.macRec(mac)
		if m != nil {
			inv.carry(m, ip, k)
			m.seen(f.First)
			m.seen(f.Last)
		}
	}
	switch k {
	case External, MonitoredExternal:
		p := inv.pseudo(k, group)
		p.addIP(ip)
		p.seen(f.First)
		p.seen(f.Last)
		return
	}
	r := inv.ipRec(ip, k, addressing)
	if r == nil {
		return
	}
	r.seen(f.First)
	r.seen(f.Last)
	if k != Inventoried {
		return
	}
	if m != nil && !m.router {
		inv.bind(r, m, false)
	}
	if server && f.Answered && (f.Proto == capture.ProtoTCP || f.Proto == capture.ProtoUDP) {
		r.addPort(Port{Proto: f.Proto, Port: f.Server.Port()})
	}
}

// assetID returns the ID of the asset holding inventoried or
// non-inventoried address ip (which need not have a record yet).
func (inv *Inventory) assetID(ip netip.Addr) string {
	if r := inv.ips[ip]; r != nil {
		if m := inv.macs[r.mac]; m != nil && !r.mac.IsZero() {
			return m.id
		}
		return r.id
	}
	return "ip:" + ip.String()
}

// snapChunk is how many records Assets reads per hold of the lock.
const snapChunk = 256

// Assets returns a snapshot of every asset, sorted by first IP, then ID.
// It is taken snapChunk records at a time, so that observations and flows
// go on meanwhile: an asset that changes while it is taken is in it as it
// was or as it is.
func (inv *Inventory) Assets() []Asset {
	var out []Asset
	inv.mu.Lock()
	inv.snaps++
	snap := inv.snaps
	for _, macs := range []bool{true, false} {
		for next := math.MaxInt; ; {
			if out == nil {
				out = make([]Asset, 0, len(inv.macList)+len(inv.ipList)+len(inv.groups)+1)
			}
			// A walk from the end sees every record that stays (see
			// aging.go); one moved by a removal may come round again.
			if macs {
				next = walkBack(inv.macList, next, snapChunk, func(m *macRec) {
					if m.snap != snap && (len(m.ips) > 0 || m.router || m.observed) {
						m.snap = snap
						out = append(out, inv.macAsset(m))
					}
				})
			} else {
				next = walkBack(inv.ipList, next, snapChunk, func(r *ipRec) {
					if r.snap != snap && r.mac.IsZero() {
						r.snap = snap
						out = append(out, inv.ipAsset(r))
					}
				})
			}
			if next < 0 {
				break
			}
			inv.mu.Unlock()
			inv.mu.Lock()
		}
	}
	if inv.external != nil {
		out = append(out, pseudoAsset(inv.external))
	}
	for _, p := range inv.groups {
		out = append(out, pseudoAsset(p))
	}
	inv.mu.Unlock()
	// Sorting a large snapshot takes a while: not under the lock.
	slices.SortFunc(out, func(a, b Asset) int {
		var x, y netip.Addr
		if len(a.IPs) > 0 {
			x = a.IPs[0]
		}
		if len(b.IPs) > 0 {
			y = b.IPs[0]
		}
		if c := x.Compare(y); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// Lookup returns the asset holding ip.
func (inv *Inventory) Lookup(ip netip.Addr) (Asset, bool) {
	ip = ip.Unmap()
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if never(ip) {
		return Asset{}, false
	}
	k, group, _ := inv.class(ip)
	switch k {
	case Excluded:
		return Asset{}, false
	case External:
		if inv.external == nil {
			return Asset{}, false
		}
		return pseudoAsset(inv.external), true
	case MonitoredExternal:
		p := inv.groups[group]
		if p == nil {
			return Asset{}, false
		}
		return pseudoAsset(p), true
	}
	r := inv.ips[ip]
	if r == nil {
		return Asset{}, false
	}
	if !r.mac.IsZero() {
		if m := inv.macs[r.mac]; m != nil {
			return inv.macAsset(m), true
		}
	}
	return inv.ipAsset(r), true
}

// LookupMAC returns the asset keyed by MAC m.
func (inv *Inventory) LookupMAC(m capture.MAC) (Asset, bool) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	r := inv.macs[m]
	if r == nil || (len(r.ips) == 0 && !r.router && !r.observed) {
		return Asset{}, false
	}
	return inv.macAsset(r), true
}

func (inv *Inventory) macAsset(m *macRec) Asset {
	var in info
	in.fold(&m.info)
	for _, ip := range m.ips {
		if r := inv.ips[ip]; r != nil && r.mac == m.mac {
			in.fold(&r.info) // not what a later holder of the address said
		}
	}
	a := fill(Asset{
		ID:     m.id,
		Gen:    m.gen,
		Kind:   Inventoried,
		MAC:    m.mac,
		IPs:    slices.Clone(m.ips),
		Router: m.router,
	}, &in)
	if len(m.ips) > 0 {
		if r := inv.ips[m.ips[0]]; r != nil && r.addressing != "" {
			a.Attrs = setAttr(a.Attrs, "addressing", r.addressing)
		}
	}
	if m.router {
		a.Attrs = setAttr(a.Attrs, "router", "true")
	}
	inv.derive(&a, &in, m.mac)
	return a
}

func setAttr(m map[string]string, k, v string) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	m[k] = v
	return m
}

func (inv *Inventory) ipAsset(r *ipRec) Asset {
	a := Asset{ID: r.id, Gen: r.gen, Kind: r.kind, IPs: []netip.Addr{r.ip}}
	if r.kind != Inventoried {
		a.FirstSeen, a.LastSeen = r.first, r.last
		return a
	}
	a = fill(a, &r.info)
	if r.addressing != "" {
		a.Attrs = setAttr(a.Attrs, "addressing", r.addressing)
	}
	inv.derive(&a, &r.info, capture.MAC{})
	return a
}

func pseudoAsset(p *pseudo) Asset {
	a := fill(Asset{ID: p.id, Gen: p.gen, Kind: p.kind, IPs: slices.Clone(p.ips)}, &p.info)
	slices.SortFunc(a.IPs, netip.Addr.Compare)
	return a
}

// fill copies in into a.
func fill(a Asset, in *info) Asset {
	a.Hostname = in.fields[fHostname]
	a.Domain = in.fields[fDomain]
	a.Vendor = in.fields[fVendor]
	a.Model = in.fields[fModel]
	a.Firmware = in.fields[fFirmware]
	a.Serial = in.fields[fSerial]
	a.OS = in.fields[fOS]
	a.Class = in.fields[fClass]
	a.Protocols = slices.Clone(in.protocols)
	a.OpenPorts = slices.Clone(in.ports)
	if len(in.attrs) > 0 || len(in.roles) > 0 || len(in.services) > 0 {
		a.Attrs = make(map[string]string, len(in.attrs)+len(in.services)+1)
		for k, v := range in.attrs {
			a.Attrs[k] = v
		}
		if len(in.roles) > 0 {
			a.Attrs[dissect.AttrRole] = strings.Join(in.roles, ",")
		}
		for p, vs := range in.services {
			a.Attrs["service:"+p] = strings.Join(vs, ",")
		}
	}
	a.FirstSeen, a.LastSeen = in.first, in.last
	return a
}
