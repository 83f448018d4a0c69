package settings

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// checkErr compares err with want ("" means no error) and checks the field.
func checkErr(t *testing.T, in string, err error, want, field string) {
	t.Helper()
	got := ""
	if err != nil {
		got = err.Error()
	}
	if got != want {
		t.Errorf("%q: got error %q, want %q", in, got, want)
		return
	}
	if err != nil {
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Errorf("%q: error %T is not a *FieldError", in, err)
		} else if fe.Field != field {
			t.Errorf("%q: field %q, want %q", in, fe.Field, field)
		}
	}
}

func TestValidateMode(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"dhcp", ""},
		{"static", ""},
		{"DHCP", `mode must be dhcp or static, not "DHCP"`},
		{"", `mode must be dhcp or static, not ""`},
	} {
		checkErr(t, tc.in, ValidateMode(Mode(tc.in)), tc.want, FieldMode)
	}
}

func TestValidateAddress(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"192.168.1.20/24", ""},
		{"10.0.0.1/8", ""},
		{"10.0.0.1/31", ""},
		{"10.0.0.1/32", ""},
		{"2001:db8::20/64", ""},
		{"192.168.1.20", "address 192.168.1.20 needs a prefix length, like 192.168.1.20/24"},
		{"192.168.1.300/24", `address "192.168.1.300/24" is not like 192.168.1.20/24`},
		{"192.168.1.20/33", `address "192.168.1.20/33" is not like 192.168.1.20/24`},
		{"hello", `address "hello" is not like 192.168.1.20/24`},
		{"192.168.1.20/0", "address 192.168.1.20/0: prefix length /0 is not a usable network"},
		{"0.0.0.0/8", "address 0.0.0.0/8 is the unspecified address, not a host address"},
		{"127.0.0.1/8", "address 127.0.0.1/8 is a loopback address"},
		{"224.0.0.1/4", "address 224.0.0.1/4 is a multicast address"},
		{"192.168.1.0/24", "address 192.168.1.0/24 is the network address of 192.168.1.0/24, not a host address"},
		{"192.168.1.255/24", "address 192.168.1.255/24 is the broadcast address of 192.168.1.0/24, not a host address"},
		{"10.0.0.3/30", "address 10.0.0.3/30 is the broadcast address of 10.0.0.0/30, not a host address"},
	} {
		checkErr(t, tc.in, ValidateAddress(tc.in), tc.want, FieldAddress)
	}
}

func TestValidateGateway(t *testing.T) {
	for _, tc := range []struct{ gw, addr, want string }{
		{"", "10.0.0.5/24", ""},
		{"10.0.0.1", "10.0.0.5/24", ""},
		{"10.0.0.1", "", ""},
		{"10.0.0.1", "garbage", ""}, // the address reports its own error
		{"2001:db8::1", "2001:db8::20/64", ""},
		{"10.0.1.1", "10.0.0.5/24", "gateway 10.0.1.1 is not inside 10.0.0.0/24"},
		{"fe80::1", "2001:db8::20/64", ""},
		{"fe80::1", "10.0.0.5/24", "gateway fe80::1 is not inside 10.0.0.0/24"},
		{"2001:db9::1", "2001:db8::20/64", "gateway 2001:db9::1 is not inside 2001:db8::/64"},
		{"2001:db8::1", "10.0.0.5/24", "gateway 2001:db8::1 is not inside 10.0.0.0/24"},
		{"10.0.0.5", "10.0.0.5/24", "gateway 10.0.0.5 is the sensor's own address"},
		{"10.0.0", "10.0.0.5/24", "gateway 10.0.0 is not an IPv4 or IPv6 address"},
		{"fe80::1%eth0", "", "gateway fe80::1%eth0 is not an IPv4 or IPv6 address"},
		{"0.0.0.0", "", "gateway 0.0.0.0 is not a usable router address"},
	} {
		checkErr(t, tc.gw+" in "+tc.addr, ValidateGateway(tc.gw, tc.addr), tc.want, FieldGateway)
	}
}

func TestValidateDNS(t *testing.T) {
	for _, tc := range []struct {
		n        int
		in, want string
	}{
		{1, "8.8.8.8", ""},
		{2, "2001:4860:4860::8888", ""},
		{1, "300.1.1.1", "DNS server 1: 300.1.1.1 is not an IPv4 or IPv6 address"},
		{3, "dns.google", "DNS server 3: dns.google is not an IPv4 or IPv6 address"},
		{2, "", "DNS server 2 is empty"},
		{1, "0.0.0.0", "DNS server 1: 0.0.0.0 is not a usable server address"},
	} {
		checkErr(t, tc.in, ValidateDNS(tc.n, tc.in), tc.want, FieldDNS)
	}
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{"1.1.1.1", "8.8.8.8", "9.9.9.9"}, ""},
		{[]string{"1.1.1.1", "8.8.8.8", "9.9.9.9", "8.8.4.4"}, "at most 3 DNS servers, got 4"},
		{[]string{"1.1.1.1", "300.1.1.1"}, "DNS server 2: 300.1.1.1 is not an IPv4 or IPv6 address"},
		{[]string{"1.1.1.1", "1.1.1.1"}, "DNS server 2: 1.1.1.1 is the same as DNS server 1"},
	} {
		checkErr(t, strings.Join(tc.in, ","), ValidateDNSList(tc.in), tc.want, FieldDNS)
	}
}

func TestValidateProxy(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"proxy.example.com:3128", ""},
		{"10.0.0.2:8080", ""},
		{"[2001:db8::1]:8080", ""},
		{"proxy:65535", ""},
		{"proxy:0", "proxy port must be 1-65535"},
		{"proxy:65536", "proxy port must be 1-65535"},
		{"proxy:http", "proxy port must be 1-65535"},
		{"proxy:", "proxy port must be 1-65535"},
		{"proxy.example.com", `proxy "proxy.example.com" must be host:port, like proxy.example.com:3128`},
		{"http://proxy:3128", `proxy "http://proxy:3128": give only host:port, without http://`},
		{":3128", `proxy ":3128" has no host name`},
		{"bad_host:3128", `proxy host "bad_host" contains '_'; use only letters a-z, digits 0-9, hyphens and dots`},
		{"0.0.0.0:3128", "proxy host 0.0.0.0 is not a usable address"},
	} {
		checkErr(t, tc.in, ValidateProxyAddress(tc.in), tc.want, FieldProxyAddress)
	}
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"alice", ""},
		{`DOMAIN\alice`, ""},
		{"a:b", "proxy user must not contain ':'"},
		{"a\nb", "proxy user must not contain control characters"},
		{strings.Repeat("u", 256), "proxy user is longer than 255 characters"},
	} {
		checkErr(t, tc.in, ValidateProxyUser(tc.in), tc.want, FieldProxyUser)
	}
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"p:a ss!", ""},
		{"hunter2\x00", "proxy password must not contain control characters"},
		{strings.Repeat("p", 256), "proxy password is longer than 255 characters"},
	} {
		err := ValidateProxyPassword(Secret(tc.in))
		checkErr(t, "password", err, tc.want, FieldProxyPassword)
		if err != nil && tc.in != "" && strings.Contains(err.Error(), tc.in) {
			t.Errorf("password error %q reveals the password", err)
		}
	}
}

func TestPersonalizationCode(t *testing.T) {
	for _, tc := range []struct{ in, norm, want string }{
		{"", "", ""},
		{"ABCD-EFGH-JKMN-PQRS", "ABCD-EFGH-JKMN-PQRS", ""},
		{"abcd-efgh-jkmn-pqrs", "ABCD-EFGH-JKMN-PQRS", ""},
		{"abcdefghjkmnpqrs", "ABCD-EFGH-JKMN-PQRS", ""},
		{"ABCD EFGH JKLM 2345", "ABCD-EFGH-JKLM-2345", ""},
		{"tuvw-xyz2-3456-789a", "TUVW-XYZ2-3456-789A", ""},
		{"ABOD-EFGH-JKMN-PQRS", "", `personalization code: character 3 is 'O', which codes never use (no I, O, 0 or 1); check the code sheet`},
		{"AB0D-EFGH-JKMN-PQRS", "", `personalization code: character 3 is '0', which codes never use (no I, O, 0 or 1); check the code sheet`},
		{"ABCD-EFGH-iKMN-PQRS", "", `personalization code: character 9 is 'i', which codes never use (no I, O, 0 or 1); check the code sheet`},
		{"ABCD-EFGH-JKMN-PQR1", "", `personalization code: character 16 is '1', which codes never use (no I, O, 0 or 1); check the code sheet`},
		{"ABCD-EFGH-JKMN-PQR#", "", `personalization code: character 16 '#' is not a letter or digit`},
		{"ABCD-EFGH-JKMN-PQRÄ", "", `personalization code: character 16 'Ä' is not a letter or digit`},
		{"ABCD-EFGH-JKMN-PQR", "", "personalization code must be 16 letters and digits, like ABCD-EFGH-JKMN-PQRS; got 15"},
		{"ABCD-EFGH-JKMN-PQRST", "", "personalization code must be 16 letters and digits, like ABCD-EFGH-JKMN-PQRS; got 17"},
	} {
		norm, err := NormalizePersonalizationCode(tc.in)
		checkErr(t, tc.in, err, tc.want, FieldPersonalizationCode)
		if norm != tc.norm {
			t.Errorf("%q: normalized %q, want %q", tc.in, norm, tc.norm)
		}
		checkErr(t, tc.in, ValidatePersonalizationCode(tc.in), tc.want, FieldPersonalizationCode)
	}
	// Every alphabet character is accepted, every other ASCII one rejected.
	for c := rune(0x21); c < 0x7f; c++ {
		code := strings.Repeat("A", 15) + string(c)
		_, err := NormalizePersonalizationCode(code)
		up := c
		if c >= 'a' && c <= 'z' {
			up = c - 32
		}
		ok := strings.ContainsRune(CodeAlphabet, up) || c == '-'
		if c == '-' {
			continue // separator: the code is then 15 long
		}
		if (err == nil) != ok {
			t.Errorf("code character %q: err %v, want accepted=%v", c, err, ok)
		}
	}
}

func TestValidateCloudURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"https://cloud.example.com", ""},
		{"https://cloud.example.com:8443/ingest", ""},
		{"HTTPS://10.1.2.3/", ""},
		{"https://[2001:db8::1]:443/", ""},
		{"http://cloud.example.com", `cloud URL must start with https:// (got "http://cloud.example.com")`},
		{"cloud.example.com", `cloud URL must start with https:// (got "cloud.example.com")`},
		{"https://", `cloud URL "https://" has no host name`},
		{"https://user:pw@cloud.example.com", "cloud URL must not contain a user name or password"},
		{"https://cloud.example.com:99999/", "cloud URL port must be 1-65535"},
		{"https://cloud.example.com:/", "cloud URL port must be 1-65535"},
		{"https://bad_host/", `cloud URL host "bad_host" contains '_'; use only letters a-z, digits 0-9, hyphens and dots`},
		{"https://cloud example", `cloud URL "https://cloud example" is not a valid URL, like https://cloud.example.com`},
		{"mailto:x@y", `cloud URL "mailto:x@y" is not a valid URL, like https://cloud.example.com`},
	} {
		checkErr(t, tc.in, ValidateCloudURL(tc.in), tc.want, FieldCloudURL)
	}
}

func TestValidateName(t *testing.T) {
	long := strings.Repeat("a", 64)
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"sensor-01", ""},
		{"1sensor", ""}, // RFC 1123 allows a leading digit
		{"sensor.plant1.example", ""},
		{strings.Repeat("a", 63), ""},
		{long, fmt.Sprintf(`sensor name %q has a part longer than 63 characters (%q)`, long, long)},
		{strings.Repeat("a.", 127), fmt.Sprintf(`sensor name %q is longer than 253 characters`, strings.Repeat("a.", 127))},
		{"-sensor", `sensor name "-sensor" has a part "-sensor" that starts or ends with a hyphen`},
		{"sensor-", `sensor name "sensor-" has a part "sensor-" that starts or ends with a hyphen`},
		{"sensor_01", `sensor name "sensor_01" contains '_'; use only letters a-z, digits 0-9, hyphens and dots`},
		{"sensor 01", `sensor name "sensor 01" contains ' '; use only letters a-z, digits 0-9, hyphens and dots`},
		{"sensor..x", `sensor name "sensor..x" has an empty part (a dot at the start or end, or two dots in a row)`},
		{"sensor.", `sensor name "sensor." has an empty part (a dot at the start or end, or two dots in a row)`},
	} {
		checkErr(t, tc.in, ValidateName(tc.in), tc.want, FieldName)
	}
}

func validStatic() Settings {
	return Settings{
		Version: CurrentVersion, Mode: ModeStatic, Address: "10.0.0.5/24", Gateway: "10.0.0.1",
		DNS:                 []string{"10.0.0.53", "1.1.1.1"},
		Proxy:               Proxy{Address: "proxy.plant.example:3128", User: "sensor", Password: "hunter2"},
		PersonalizationCode: "ABCD-EFGH-JKMN-PQRS", CloudURL: "https://cloud.example.com/api", Name: "sensor-01",
	}
}

func TestValidateRecord(t *testing.T) {
	if err := Defaults().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	if Defaults().Mode != ModeDHCP {
		t.Fatalf("defaults mode %q, want dhcp", Defaults().Mode)
	}
	if err := validStatic().Validate(); err != nil {
		t.Fatalf("valid static record: %v", err)
	}
	for _, tc := range []struct {
		name   string
		change func(*Settings)
		want   string
	}{
		{"static without address", func(s *Settings) { s.Address, s.Gateway = "", "" },
			"static mode needs an address like 192.168.1.20/24"},
		{"dhcp keeps a static address", func(s *Settings) { s.Mode = ModeDHCP }, ""},
		{"gateway outside", func(s *Settings) { s.Gateway = "10.0.1.1" }, "gateway 10.0.1.1 is not inside 10.0.0.0/24"},
		{"proxy creds without proxy", func(s *Settings) { s.Proxy.Address = "" },
			"proxy user and password need a proxy address"},
		{"password without user", func(s *Settings) { s.Proxy.User = "" }, "proxy password needs a proxy user"},
		{"code not normalized", func(s *Settings) { s.PersonalizationCode = "abcdefghjkmnpqrs" },
			`personalization code "abcdefghjkmnpqrs" is not in the form ABCD-EFGH-JKMN-PQRS`},
		{"old version", func(s *Settings) { s.Version = 1 }, "settings version 1 is not the current version 2"},
		{"several problems", func(s *Settings) {
			s.Mode = "auto"
			s.DNS = []string{"300.1.1.1"}
			s.Proxy.Address = "p:0"
			s.CloudURL = "http://x"
		}, `mode must be dhcp or static, not "auto"; DNS server 1: 300.1.1.1 is not an IPv4 or IPv6 address; ` +
			`proxy port must be 1-65535; cloud URL must start with https:// (got "http://x")`},
	} {
		s := validStatic()
		tc.change(&s)
		err := s.Validate()
		got := ""
		if err != nil {
			got = err.Error()
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) == 0 {
				t.Errorf("%s: error %T is not a *ValidationError with problems", tc.name, err)
			}
		}
		if got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestPasswordRedacted(t *testing.T) {
	s := validStatic()
	s.Proxy.Password = "s3cr3t-Pa55"
	// A variable format so vet lets the test try verbs that do not fit a struct:
	// fmt then prints the fields, and the Secret must still hide itself.
	all := "%v %+v %#v %s %q %x %X %d"
	outs := []string{
		s.String(), s.Proxy.String(), s.GoString(),
		fmt.Sprint(s), fmt.Sprintf(all, s, s, s, s, s, s, s, s),
		fmt.Sprintf(all, s.Proxy, s.Proxy, s.Proxy, s.Proxy, s.Proxy, s.Proxy, s.Proxy, s.Proxy),
		fmt.Sprintf("%v %+v %#v %s %q %x %X %d %10s", s.Proxy.Password, s.Proxy.Password, s.Proxy.Password,
			s.Proxy.Password, s.Proxy.Password, s.Proxy.Password, s.Proxy.Password, s.Proxy.Password, s.Proxy.Password),
		fmt.Sprintf("%v", &s), fmt.Sprintf("%+v", []Settings{s}), fmt.Sprintf("%v", map[string]Proxy{"p": s.Proxy}),
	}
	for _, o := range outs {
		for _, leak := range []string{"s3cr3t-Pa55", fmt.Sprintf("%x", "s3cr3t-Pa55"), fmt.Sprintf("%X", "s3cr3t-Pa55")} {
			if strings.Contains(o, leak) {
				t.Errorf("output reveals the password: %s", o)
			}
		}
	}
	if !strings.Contains(s.String(), Redacted) {
		t.Errorf("String() %q does not say a password is set", s.String())
	}
	// The file must keep the real password.
	b, err := Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"password": "s3cr3t-Pa55"`) {
		t.Errorf("marshalled settings lost the password: %s", b)
	}
}
