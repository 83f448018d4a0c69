package asset

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
)

// classVote is one signal's opinion of what kind of device an asset is.
type classVote struct {
	class    string
	weight   int
	evidence string
}

// roleClasses says what a protocol role makes of a device unless it states
// otherwise (dissect.AttrClass wins). Roles are the dissectors' dissect.AttrRole
// values; a role absent here, and not in classlessRoles, is a gap the tests
// catch. Client roles default to HMI and turn to engineering when the
// device's service use includes program transfer, run/stop or firmware.
var roleClasses = map[string]classVote{
	// Controllers answering their vendor's or the open protocol's requests.
	"modbus-server":          {dissect.ClassPLC, 60, ""},
	"s7-server":              {dissect.ClassPLC, 65, ""},
	"enip-server":            {dissect.ClassPLC, 40, ""}, // adapters state their CIP device type as a class
	"fins-server":            {dissect.ClassPLC, 60, ""},
	"ads-server":             {dissect.ClassPLC, 60, ""},
	"slmp-server":            {dissect.ClassPLC, 60, ""},
	"melsoft-server":         {dissect.ClassPLC, 65, ""},
	"srtp-server":            {dissect.ClassPLC, 65, ""},
	"pcworx-server":          {dissect.ClassPLC, 65, ""},
	"proconos-server":        {dissect.ClassPLC, 65, ""},
	"optommp-server":         {dissect.ClassPLC, 55, ""},
	"cclink-iefb-master":     {dissect.ClassPLC, 55, ""},
	"profinet-io-controller": {dissect.ClassPLC, 60, ""},
	"ethercat-master":        {dissect.ClassPLC, 50, ""},
	"deltav-controller":      {dissect.ClassPLC, 65, ""}, // a DCS controller
	// Outstations and substation devices.
	"dnp3-outstation":   {dissect.ClassRTU, 65, ""},
	"iec104-controlled": {dissect.ClassRTU, 60, ""},
	"mms-server":        {dissect.ClassRelay, 45, ""}, // an IED; the model may say otherwise
	// Field devices.
	"profinet-io-device": {dissect.ClassIO, 50, ""},
	"cclink-iefb-slave":  {dissect.ClassIO, 50, ""},
	// Building automation.
	"bacnet-device":         {dissect.ClassBMS, 55, ""},
	"bacnet-server":         {dissect.ClassBMS, 55, ""},
	"bacnet-bbmd":           {dissect.ClassBMS, 45, ""},
	"bacnet-router":         {dissect.ClassBMS, 40, ""},
	"bacnet-foreign-device": {dissect.ClassBMS, 30, ""},
	"niagara-station":       {dissect.ClassBMS, 60, ""},
	"fox-server":            {dissect.ClassBMS, 50, ""},
	// Operator panels serving their own protocol.
	"crimson-server": {dissect.ClassHMI, 55, ""},
	// Polling clients: HMI or SCADA unless engineering services show.
	"modbus-client":          {dissect.ClassHMI, 45, ""},
	"s7-client":              {dissect.ClassHMI, 45, ""},
	"enip-client":            {dissect.ClassHMI, 35, ""},
	"fins-client":            {dissect.ClassHMI, 40, ""},
	"toyopuc-server":         {dissect.ClassPLC, 60, ""},
	"toyopuc-client":         {dissect.ClassHMI, 40, ""},
	"ads-client":             {dissect.ClassHMI, 35, ""},
	"slmp-client":            {dissect.ClassHMI, 40, ""},
	"srtp-client":            {dissect.ClassHMI, 40, ""},
	"optommp-client":         {dissect.ClassHMI, 40, ""},
	"dnp3-master":            {dissect.ClassHMI, 45, ""},
	"iec104-controlling":     {dissect.ClassHMI, 45, ""},
	"mms-client":             {dissect.ClassHMI, 40, ""},
	"bacnet-client":          {dissect.ClassHMI, 30, ""},
	"fox-client":             {dissect.ClassHMI, 35, ""},
	"deltav-workstation":     {dissect.ClassHMI, 45, ""}, // operator station
	"profinet-io-supervisor": {dissect.ClassEngineering, 50, ""},
	"profinet-dcp-client":    {dissect.ClassEngineering, 30, ""},
	// Tools whose protocol is engineering by nature.
	"melsoft-client":    {dissect.ClassEngineering, 60, ""},
	"pcworx-client":     {dissect.ClassEngineering, 55, ""},
	"proconos-client":   {dissect.ClassEngineering, 55, ""},
	"crimson-client":    {dissect.ClassEngineering, 50, ""},
	"niagara-workbench": {dissect.ClassEngineering, 60, ""},
	// Data servers: the historian or SCADA server side of OT data, and
	// message brokers.
	// Weak: controllers embed OPC UA servers too, and the maker's hint
	// (a PLC maker's MAC) or a stated class outweighs it.
	"opcua-server": {dissect.ClassHistorian, 20, ""},
	"mqtt-broker":  {dissect.ClassServer, 30, ""},
	// Network infrastructure.
	"router":            {dissect.ClassRouter, 70, ""},
	"ipv6-router":       {dissect.ClassRouter, 70, ""},
	"dhcp-server":       {dissect.ClassRouter, 35, ""},
	"dhcp-relay":        {dissect.ClassRouter, 50, ""},
	"dhcpv6-relay":      {dissect.ClassRouter, 50, ""},
	"dhcpv6-server":     {dissect.ClassServer, 30, ""},
	"dns-server":        {dissect.ClassServer, 30, ""},
	"domain-controller": {dissect.ClassServer, 70, ""},
	"kerberos-kdc":      {dissect.ClassServer, 70, ""},
	"wins-server":       {dissect.ClassServer, 50, ""},
	"smtp-server":       {dissect.ClassServer, 40, ""},
	"sip-registrar":     {dissect.ClassServer, 40, ""},
	"sip-ua":            {dissect.ClassPhone, 30, ""},
}

// substationRoles are the roles of devices whose model tells a protection
// relay (IED) from an RTU or automation controller.
var substationRoles = []string{"mms-server", "dnp3-outstation", "iec104-controlled", "modbus-server"}

// modelClasses: words of a substation device's model (dissect.AttrModel,
// case folded) that name its kind, first match wins: RTUs and automation
// controllers before relay families (an "SEL-3505 RTAC" is no relay).
var modelClasses = []struct{ word, class string }{
	{"rtac", dissect.ClassRTU}, {"rtu", dissect.ClassRTU}, {"sicam", dissect.ClassRTU},
	{"relay", dissect.ClassRelay}, {"siprotec", dissect.ClassRelay}, {"micom", dissect.ClassRelay},
	{"multilin", dissect.ClassRelay}, {"easergy", dissect.ClassRelay}, {"sepam", dissect.ClassRelay},
	// ABB Relion 615/620/630/640/650/670 families: REF615, RET620, REL670 ...
	{"ref6", dissect.ClassRelay}, {"ret6", dissect.ClassRelay}, {"rem6", dissect.ClassRelay},
	{"red6", dissect.ClassRelay}, {"rel6", dissect.ClassRelay}, {"reb6", dissect.ClassRelay},
	{"rec6", dissect.ClassRelay}, {"reu6", dissect.ClassRelay}, {"rer6", dissect.ClassRelay},
}

// classlessRoles are roles that say nothing of the kind of device: any
// host may be an SSH or TLS server, an SNMP agent or an MQTT client.
var classlessRoles = map[string]bool{
	"ssh-server": true, "ssh-client": true, "tls-server": true, "telnet-server": true,
	"snmp-agent": true, "snmp-manager": true, "master-browser": true, "domain-master-browser": true,
	"mqtt-client": true, "opcua-client": true,
}

// engineeringServices are words of service values (dissect.AttrService)
// that only engineering tools use: program transfer, run/stop, firmware.
var engineeringServices = []string{"download", "upload", "program", "firmware", "plc-stop", "plc-run", "cpu-stop", "stop-cpu", "umas", "delete-block"}

// portClasses: services whose server side names the kind of device.
var portClasses = []struct {
	proto uint8
	port  uint16
	vote  classVote
}{
	{capture.ProtoTCP, 9100, classVote{dissect.ClassPrinter, 55, "raw printing (jetdirect) 9100/tcp"}},
	{capture.ProtoTCP, 631, classVote{dissect.ClassPrinter, 45, "IPP 631/tcp"}},
	{capture.ProtoTCP, 515, classVote{dissect.ClassPrinter, 50, "LPD 515/tcp"}},
	{capture.ProtoTCP, 554, classVote{dissect.ClassCamera, 50, "RTSP 554/tcp"}},
	{capture.ProtoUDP, 5060, classVote{dissect.ClassPhone, 35, "SIP 5060/udp"}},
	{capture.ProtoTCP, 5060, classVote{dissect.ClassPhone, 30, "SIP 5060/tcp"}},
	{capture.ProtoTCP, 5061, classVote{dissect.ClassPhone, 30, "SIP-TLS 5061/tcp"}},
	{capture.ProtoUDP, 2000, classVote{dissect.ClassPhone, 20, "SCCP 2000/udp"}},
}

// vendorClasses is a small curated table of makers whose MAC prefixes
// mostly sit on one kind of device (the organisation names as the IEEE
// registry spells them, compared by prefix, case folded). A weak hint.
// Makers of everything (Siemens, ABB, Mitsubishi Electric, Emerson,
// Yokogawa, Honeywell: switches, drives, meters as well as PLCs) are left
// out on purpose.
var vendorClasses = []struct {
	prefix, class string
}{
	{"rockwell automation", dissect.ClassPLC}, {"allen-bradley", dissect.ClassPLC},
	{"schneider electric", dissect.ClassPLC}, {"telemecanique", dissect.ClassPLC}, {"modicon", dissect.ClassPLC},
	{"beckhoff", dissect.ClassPLC}, {"wago", dissect.ClassPLC},
	{"phoenix contact", dissect.ClassPLC}, {"omron", dissect.ClassPLC},
	{"b&r industrial", dissect.ClassPLC}, {"bernecker", dissect.ClassPLC}, {"ge fanuc", dissect.ClassPLC}, {"koyo", dissect.ClassPLC},
	{"hilscher", dissect.ClassIO}, {"moxa", dissect.ClassIO}, {"hms industrial", dissect.ClassIO}, {"turck", dissect.ClassIO},
	{"red lion", dissect.ClassHMI}, {"pro-face", dissect.ClassHMI}, {"hirschmann", dissect.ClassSwitch},
	{"axis communications", dissect.ClassCamera}, {"hangzhou hikvision", dissect.ClassCamera}, {"zhejiang dahua", dissect.ClassCamera},
	{"mobotix", dissect.ClassCamera}, {"vivotek", dissect.ClassCamera},
	{"polycom", dissect.ClassPhone}, {"yealink", dissect.ClassPhone}, {"grandstream", dissect.ClassPhone}, {"snom", dissect.ClassPhone},
	{"lexmark", dissect.ClassPrinter}, {"zebra technologies", dissect.ClassPrinter}, {"kyocera", dissect.ClassPrinter},
	{"ricoh", dissect.ClassPrinter}, {"xerox", dissect.ClassPrinter}, {"brother industries", dissect.ClassPrinter},
	{"seiko epson", dissect.ClassPrinter},
	{"ruckus", dissect.ClassAccessPoint}, {"aruba", dissect.ClassAccessPoint}, {"ubiquiti", dissect.ClassAccessPoint},
}

// capClasses maps LLDP (IEEE 802.1AB 8.5.8) and CDP capability names to
// classes, strongest first.
var capClasses = []struct {
	word, class string
	weight      int
}{
	{"telephone", dissect.ClassPhone, 80}, {"phone", dissect.ClassPhone, 80},
	{"wlan", dissect.ClassAccessPoint, 75}, {"access-point", dissect.ClassAccessPoint, 75},
	{"bridge", dissect.ClassSwitch, 70}, {"switch", dissect.ClassSwitch, 70},
	{"router", dissect.ClassRouter, 65},
	{"docsis", dissect.ClassRouter, 50},
	{"repeater", dissect.ClassSwitch, 50},
}

// classVotes gathers the opinions on a's class.
func classVotes(a *Asset, os osVerdict, haveOS bool, ouiVendor string) []classVote {
	var vs []classVote
	add := func(c string, w int, ev string) { vs = append(vs, classVote{c, w, ev}) }
	for _, k := range []string{attrLLDPCaps, attrCDPCaps} {
		caps := strings.ToLower(a.Attrs[k])
		if caps == "" {
			continue
		}
		for _, c := range capClasses {
			if strings.Contains(caps, c.word) {
				add(c.class, c.weight, k+"="+caps)
				break // the strongest capability speaks for the device
			}
		}
	}
	roles := strings.Split(a.Attrs[dissect.AttrRole], ",")
	// A device that uses an engineering tool's protocol, or transfers
	// programs, stops CPUs or writes firmware, is an engineering
	// workstation: its polling is that of the tool, not of an HMI.
	eng := engineering(a)
	for _, r := range roles {
		if v, ok := roleClasses[r]; ok && v.class == dissect.ClassEngineering && v.weight >= 50 {
			eng = true
		}
	}
	for _, r := range roles {
		v, ok := roleClasses[r]
		if !ok {
			continue
		}
		if v.class == dissect.ClassHMI && eng {
			v.class = dissect.ClassEngineering
			v.weight = max(v.weight, 60)
		}
		add(v.class, v.weight, "role "+r)
	}
	if m := strings.ToLower(a.Model); m != "" && slices.ContainsFunc(roles, func(r string) bool { return slices.Contains(substationRoles, r) }) {
		for _, c := range modelClasses {
			if strings.Contains(m, c.word) {
				add(c.class, 70, "model "+a.Model)
				break
			}
		}
	}
	if a.Router {
		add(dissect.ClassRouter, 70, "MAC carries many addresses")
	}
	for _, p := range portClasses {
		if slices.Contains(a.OpenPorts, Port{p.proto, p.port}) {
			add(p.vote.class, p.vote.weight, "serves "+p.vote.evidence)
		}
	}
	if vc := strings.ToLower(a.Attrs[attrDHCPVendor]); vc != "" {
		switch {
		case strings.Contains(vc, "ip phone"), strings.Contains(vc, "voip"):
			add(dissect.ClassPhone, 85, attrDHCPVendor+"="+a.Attrs[attrDHCPVendor])
		case strings.HasPrefix(vc, "android-dhcp"):
			add(dissect.ClassMobile, 60, attrDHCPVendor+"="+a.Attrs[attrDHCPVendor])
		}
	}
	if haveOS {
		ev := "OS " + strings.TrimSpace(os.name+" "+os.version)
		switch {
		case os.family == "windows" && strings.Contains(strings.ToLower(os.version), "server"):
			add(dissect.ClassServer, 45, ev)
		case os.family == "windows":
			add(dissect.ClassWorkstation, 35, ev)
		case os.name == "Android", os.name == "iOS":
			add(dissect.ClassMobile, 55, ev)
		case os.name == "macOS", os.name == "Chrome OS":
			add(dissect.ClassWorkstation, 40, ev)
		}
	}
	if v := strings.ToLower(ouiVendor); v != "" {
		for _, h := range vendorClasses {
			if strings.HasPrefix(v, h.prefix) {
				add(h.class, 25, "MAC vendor "+ouiVendor)
				break
			}
		}
	}
	return vs
}

// engineering reports whether a's service use includes program transfer
// or run/stop commands.
func engineering(a *Asset) bool {
	for k, v := range a.Attrs {
		if !strings.HasPrefix(k, "service:") {
			continue
		}
		l := strings.ToLower(v)
		for _, w := range engineeringServices {
			if strings.Contains(l, w) {
				return true
			}
		}
	}
	return false
}

// decideClass returns the class with the strongest support (noisy-or of
// its votes) and the evidence for it.
func decideClass(vs []classVote) (string, []string) {
	if len(vs) == 0 {
		return "", nil
	}
	p := map[string]float64{}
	for _, v := range vs {
		p[v.class] = 1 - (1-p[v.class])*(1-float64(v.weight)/100)
	}
	best := ""
	for c, q := range p {
		if best == "" || q > p[best] || (q == p[best] && c < best) {
			best = c
		}
	}
	slices.SortStableFunc(vs, func(a, b classVote) int { return cmp.Compare(b.weight, a.weight) })
	var ev []string
	for _, v := range vs {
		if v.class == best {
			ev = append(ev, v.evidence+" ("+strconv.Itoa(v.weight)+")")
		}
	}
	for _, v := range vs {
		if v.class != best {
			ev = append(ev, "outvoted "+v.class+": "+v.evidence+" ("+strconv.Itoa(v.weight)+")")
		}
	}
	return best, ev
}
