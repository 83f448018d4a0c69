package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// registrationFile is where the uplink keeps the credentials the cloud gave
// at registration, in its state directory (uplink.RegistrationFile):
// JSON with "sensor_id", "token" and the "cloud_url" that issued them.
const registrationFile = "registration.json"

// maxRegistrationFile bounds what is read of that file.
const maxRegistrationFile = 64 << 10

// bearer is a RoundTripper that adds the sensor's credentials
// (Authorization: Bearer TOKEN) to requests for the cloud the box reports
// to, and to no other host: an artefact URL or a redirect that leads
// elsewhere never sees the token. It is sent over HTTPS only, and only to
// the cloud that issued it. The registration file is read on every
// request: the uplink rewrites it when the box registers again.
type bearer struct {
	base    http.RoundTripper
	regFile string
	// cloud returns the URL of the cloud the box reports to now.
	cloud func() string
}

// RoundTrip adds the header when the request is for the cloud.
func (b *bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("Authorization") == "" {
		if tok := b.tokenFor(r.URL); tok != "" {
			r = r.Clone(r.Context())
			r.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	return b.base.RoundTrip(r)
}

// tokenFor returns the token to send to u, or "".
func (b *bearer) tokenFor(u *url.URL) string {
	if u.Scheme != "https" || b.cloud == nil {
		return ""
	}
	if cloud := b.cloud(); cloud == "" || !sameOrigin(u, cloud) {
		return ""
	}
	f, err := os.Open(b.regFile)
	if err != nil {
		return ""
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxRegistrationFile))
	if err != nil {
		return ""
	}
	var reg struct {
		Token    string `json:"token"`
		CloudURL string `json:"cloud_url"`
	}
	if json.Unmarshal(data, &reg) != nil {
		return ""
	}
	if reg.CloudURL != "" && !sameOrigin(u, reg.CloudURL) {
		return "" // issued by another cloud
	}
	if strings.ContainsAny(reg.Token, "\r\n") {
		return ""
	}
	return reg.Token
}

// sameOrigin reports whether u goes to the HTTPS host and port of base.
func sameOrigin(u *url.URL, base string) bool {
	b, err := url.Parse(base)
	if err != nil || b.Scheme != "https" || u.Scheme != "https" {
		return false
	}
	return strings.EqualFold(b.Hostname(), u.Hostname()) && httpsPort(b) == httpsPort(u)
}

func httpsPort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	return "443"
}
