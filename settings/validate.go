package settings

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// Field names used in FieldError.Field, one per settings field.
const (
	FieldVersion             = "version"
	FieldMode                = "mode"
	FieldAddress             = "address"
	FieldGateway             = "gateway"
	FieldDNS                 = "dns"
	FieldProxyAddress        = "proxy.address"
	FieldProxyUser           = "proxy.user"
	FieldProxyPassword       = "proxy.password"
	FieldPersonalizationCode = "personalization_code"
	FieldCloudURL            = "cloud_url"
	FieldName                = "name"
)

// FieldError is one problem with one field. Msg is a complete sentence for a
// field technician; it never contains the proxy password.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Msg }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// ValidationError lists every problem Validate found, in field order.
type ValidationError struct {
	Problems []*FieldError
}

func (e *ValidationError) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.Msg
	}
	return strings.Join(msgs, "; ")
}

// ValidateMode checks the management interface mode: "dhcp" or "static".
func ValidateMode(m Mode) error {
	switch m {
	case ModeDHCP, ModeStatic:
		return nil
	}
	return fieldErr(FieldMode, "mode must be dhcp or static, not %q", string(m))
}

// ValidateAddress checks a static address in CIDR form ("192.168.1.20/24",
// "2001:db8::20/64"). Empty is accepted here; Validate requires it in static mode.
func ValidateAddress(s string) error {
	if s == "" {
		return nil
	}
	if !strings.Contains(s, "/") {
		if _, err := netip.ParseAddr(s); err == nil {
			return fieldErr(FieldAddress, "address %s needs a prefix length, like 192.168.1.20/24", s)
		}
		return fieldErr(FieldAddress, "address %q is not like 192.168.1.20/24", s)
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return fieldErr(FieldAddress, "address %q is not like 192.168.1.20/24", s)
	}
	a := p.Addr()
	switch {
	case p.Bits() == 0:
		return fieldErr(FieldAddress, "address %s: prefix length /0 is not a usable network", s)
	case a.IsUnspecified():
		return fieldErr(FieldAddress, "address %s is the unspecified address, not a host address", s)
	case a.IsLoopback():
		return fieldErr(FieldAddress, "address %s is a loopback address", s)
	case a.IsMulticast():
		return fieldErr(FieldAddress, "address %s is a multicast address", s)
	}
	if a.Is4() && p.Bits() <= 30 {
		net := p.Masked()
		if a == net.Addr() {
			return fieldErr(FieldAddress, "address %s is the network address of %s, not a host address", s, net)
		}
		if a == broadcast4(net) {
			return fieldErr(FieldAddress, "address %s is the broadcast address of %s, not a host address", s, net)
		}
	}
	return nil
}

// broadcast4 returns the all-ones host address of an IPv4 network.
func broadcast4(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= (1<<(32-p.Bits()) - 1)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// ValidateGateway checks the default gateway. When address (the CIDR static
// address) is valid, the gateway must lie inside its network and differ from
// it; an IPv6 link-local gateway (fe80::/10) is accepted with an IPv6
// address. Empty is accepted (no default route).
func ValidateGateway(gw, address string) error {
	if gw == "" {
		return nil
	}
	g, err := netip.ParseAddr(gw)
	if err != nil || g.Zone() != "" {
		return fieldErr(FieldGateway, "gateway %s is not an IPv4 or IPv6 address", gw)
	}
	if g.IsUnspecified() || g.IsMulticast() || g.IsLoopback() {
		return fieldErr(FieldGateway, "gateway %s is not a usable router address", gw)
	}
	if address == "" || ValidateAddress(address) != nil {
		return nil
	}
	p, _ := netip.ParsePrefix(address)
	if g.Is6() && p.Addr().Is6() && g.IsLinkLocalUnicast() {
		return nil // IPv6 routers are commonly reached by their link-local address
	}
	if !p.Masked().Contains(g) {
		return fieldErr(FieldGateway, "gateway %s is not inside %s", gw, p.Masked())
	}
	if g == p.Addr() {
		return fieldErr(FieldGateway, "gateway %s is the sensor's own address", gw)
	}
	return nil
}

// ValidateDNS checks DNS server number n (1-based, as the front end shows it).
func ValidateDNS(n int, s string) error {
	if s == "" {
		return fieldErr(FieldDNS, "DNS server %d is empty", n)
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return fieldErr(FieldDNS, "DNS server %d: %s is not an IPv4 or IPv6 address", n, s)
	}
	if a.IsUnspecified() || a.IsMulticast() {
		return fieldErr(FieldDNS, "DNS server %d: %s is not a usable server address", n, s)
	}
	return nil
}

// ValidateDNSList checks the DNS server list: at most MaxDNS, each valid, no repeats.
func ValidateDNSList(list []string) error {
	if len(list) > MaxDNS {
		return fieldErr(FieldDNS, "at most %d DNS servers, got %d", MaxDNS, len(list))
	}
	for i, s := range list {
		if err := ValidateDNS(i+1, s); err != nil {
			return err
		}
		for j := 0; j < i; j++ {
			if list[j] == s {
				return fieldErr(FieldDNS, "DNS server %d: %s is the same as DNS server %d", i+1, s, j+1)
			}
		}
	}
	return nil
}

// ValidateProxyAddress checks the proxy as "host:port". Empty means no proxy.
func ValidateProxyAddress(s string) error {
	if s == "" {
		return nil
	}
	if strings.Contains(s, "://") {
		return fieldErr(FieldProxyAddress, "proxy %q: give only host:port, without http://", s)
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fieldErr(FieldProxyAddress, "proxy %q must be host:port, like proxy.example.com:3128", s)
	}
	if host == "" {
		return fieldErr(FieldProxyAddress, "proxy %q has no host name", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fieldErr(FieldProxyAddress, "proxy port must be 1-65535")
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" || a.IsUnspecified() || a.IsMulticast() {
			return fieldErr(FieldProxyAddress, "proxy host %s is not a usable address", host)
		}
		return nil
	}
	if msg := hostnameProblem(host); msg != "" {
		return fieldErr(FieldProxyAddress, "proxy host %q %s", host, msg)
	}
	return nil
}

// ValidateProxyUser checks the proxy user name.
func ValidateProxyUser(u string) error {
	if strings.Contains(u, ":") {
		return fieldErr(FieldProxyUser, "proxy user must not contain ':'")
	}
	if hasControl(u) {
		return fieldErr(FieldProxyUser, "proxy user must not contain control characters")
	}
	if len(u) > 255 {
		return fieldErr(FieldProxyUser, "proxy user is longer than 255 characters")
	}
	return nil
}

// ValidateProxyPassword checks the proxy password; the message never shows it.
func ValidateProxyPassword(p Secret) error {
	if hasControl(string(p)) {
		return fieldErr(FieldProxyPassword, "proxy password must not contain control characters")
	}
	if len(p) > 255 {
		return fieldErr(FieldProxyPassword, "proxy password is longer than 255 characters")
	}
	return nil
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return true
		}
	}
	return false
}

// CodeAlphabet is the characters a personalization code is made of: A-Z and
// 2-9 without the look-alikes I, O, 0 and 1.
const CodeAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// CodeLen is the number of code characters (without dashes).
const CodeLen = 16

// NormalizePersonalizationCode checks a personalization code and returns it
// in canonical form "ABCD-EFGH-JKMN-PQRS". Input is case-insensitive; dashes
// and spaces anywhere are ignored. Empty returns "" and no error (not
// registered yet).
func NormalizePersonalizationCode(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	var b [CodeLen]byte
	n := 0
	pos := 0 // 1-based position among code characters, for messages
	for _, r := range s {
		if r == '-' || r == ' ' {
			continue
		}
		pos++
		u := r
		if u >= 'a' && u <= 'z' {
			u -= 'a' - 'A'
		}
		switch u {
		case 'O', '0', 'I', '1':
			return "", fieldErr(FieldPersonalizationCode,
				"personalization code: character %d is %q, which codes never use (no I, O, 0 or 1); check the code sheet", pos, r)
		}
		if u > 0x7f || !strings.ContainsRune(CodeAlphabet, u) {
			return "", fieldErr(FieldPersonalizationCode,
				"personalization code: character %d %q is not a letter or digit", pos, r)
		}
		if n < CodeLen {
			b[n] = byte(u)
		}
		n++
	}
	if n != CodeLen {
		return "", fieldErr(FieldPersonalizationCode,
			"personalization code must be %d letters and digits, like ABCD-EFGH-JKMN-PQRS; got %d", CodeLen, n)
	}
	return string(b[0:4]) + "-" + string(b[4:8]) + "-" + string(b[8:12]) + "-" + string(b[12:16]), nil
}

// ValidatePersonalizationCode checks a personalization code (see NormalizePersonalizationCode).
func ValidatePersonalizationCode(s string) error {
	_, err := NormalizePersonalizationCode(s)
	return err
}

// ValidateCloudURL checks the cloud endpoint: https only, with a host, no
// user or password in it. Empty is accepted (not configured yet).
func ValidateCloudURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" {
		return fieldErr(FieldCloudURL, "cloud URL %q is not a valid URL, like https://cloud.example.com", s)
	}
	if !strings.EqualFold(u.Scheme, "https") {
		return fieldErr(FieldCloudURL, "cloud URL must start with https:// (got %q)", s)
	}
	if u.User != nil {
		return fieldErr(FieldCloudURL, "cloud URL must not contain a user name or password")
	}
	host := u.Hostname()
	if host == "" {
		return fieldErr(FieldCloudURL, "cloud URL %q has no host name", s)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fieldErr(FieldCloudURL, "cloud URL port must be 1-65535")
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return fieldErr(FieldCloudURL, "cloud URL port must be 1-65535")
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if msg := hostnameProblem(host); msg != "" {
		return fieldErr(FieldCloudURL, "cloud URL host %q %s", host, msg)
	}
	return nil
}

// ValidateName checks the sensor name against the RFC 1123 host name rules:
// dot-separated parts of 1-63 letters, digits and hyphens, not starting or
// ending with a hyphen, 253 characters at most. Empty is accepted (unnamed).
func ValidateName(s string) error {
	if s == "" {
		return nil
	}
	if msg := hostnameProblem(s); msg != "" {
		return fieldErr(FieldName, "sensor name %q %s", s, msg)
	}
	return nil
}

// hostnameProblem returns what breaks RFC 1123 host name rules in s, as the
// end of a sentence, or "" when s is fine.
func hostnameProblem(s string) string {
	if len(s) > 253 {
		return "is longer than 253 characters"
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" {
			return "has an empty part (a dot at the start or end, or two dots in a row)"
		}
		if len(label) > 63 {
			return fmt.Sprintf("has a part longer than 63 characters (%q)", label)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Sprintf("contains %q; use only letters a-z, digits 0-9, hyphens and dots", r)
			}
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Sprintf("has a part %q that starts or ends with a hyphen", label)
		}
	}
	return ""
}

// Validate checks the whole record and returns a *ValidationError listing
// every problem, or nil.
func (s Settings) Validate() error {
	var ve ValidationError
	add := func(err error) {
		if err == nil {
			return
		}
		if fe, ok := err.(*FieldError); ok {
			ve.Problems = append(ve.Problems, fe)
			return
		}
		ve.Problems = append(ve.Problems, &FieldError{Msg: err.Error()})
	}
	if s.Version != CurrentVersion {
		add(fieldErr(FieldVersion, "settings version %d is not the current version %d", s.Version, CurrentVersion))
	}
	add(ValidateMode(s.Mode))
	if s.Mode == ModeStatic && s.Address == "" {
		add(fieldErr(FieldAddress, "static mode needs an address like 192.168.1.20/24"))
	}
	add(ValidateAddress(s.Address))
	add(ValidateGateway(s.Gateway, s.Address))
	add(ValidateDNSList(s.DNS))
	add(ValidateProxyAddress(s.Proxy.Address))
	add(ValidateProxyUser(s.Proxy.User))
	add(ValidateProxyPassword(s.Proxy.Password))
	if s.Proxy.Address == "" && (s.Proxy.User != "" || s.Proxy.Password != "") {
		add(fieldErr(FieldProxyAddress, "proxy user and password need a proxy address"))
	}
	if s.Proxy.Password != "" && s.Proxy.User == "" {
		add(fieldErr(FieldProxyUser, "proxy password needs a proxy user"))
	}
	if s.PersonalizationCode != "" {
		if norm, err := NormalizePersonalizationCode(s.PersonalizationCode); err != nil {
			add(err)
		} else if norm != s.PersonalizationCode {
			add(fieldErr(FieldPersonalizationCode, "personalization code %q is not in the form ABCD-EFGH-JKMN-PQRS", s.PersonalizationCode))
		}
	}
	add(ValidateCloudURL(s.CloudURL))
	add(ValidateName(s.Name))
	if len(ve.Problems) == 0 {
		return nil
	}
	return &ve
}

// Normalize puts fields in canonical form where that is unambiguous: the
// personalization code upper-case with dashes, the sensor name lower-case.
// Invalid values are left for Validate to report.
func (s *Settings) Normalize() {
	if c, err := NormalizePersonalizationCode(s.PersonalizationCode); err == nil {
		s.PersonalizationCode = c
	}
	s.Name = strings.ToLower(s.Name)
}
