package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/passivesensor/sensor/uplink"
)

func TestRegistrationFileIsTheUplinks(t *testing.T) {
	if registrationFile != uplink.RegistrationFile {
		t.Fatalf("updater reads %q, the uplink writes %q", registrationFile, uplink.RegistrationFile)
	}
}

// writeReg writes a registration file as the uplink does.
func writeReg(t *testing.T, dir, cloud, token string) string {
	t.Helper()
	p := filepath.Join(dir, registrationFile)
	r := map[string]any{"sensor_id": "sensor-1", "token": token, "code": "X"}
	if cloud != "" {
		r["cloud_url"] = cloud
	}
	b, _ := json.Marshal(r)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// recorder is a RoundTripper that keeps the Authorization header it saw.
type recorder struct{ auth []string }

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.auth = append(r.auth, req.Header.Get("Authorization"))
	return &http.Response{StatusCode: 204, Body: http.NoBody, Request: req}, nil
}

func TestBearerOnlyForTheCloud(t *testing.T) {
	dir := t.TempDir()
	const cloud = "https://cloud.example:8443"
	reg := writeReg(t, dir, cloud, "tok123")
	// A registration file without the issuing cloud's URL: only the
	// configured cloud decides.
	bare := writeReg(t, t.TempDir(), "", "tok456")
	cases := []struct {
		name, cloud, reg, url, preset, want string
	}{
		{"manifest", cloud, reg, cloud + "/v1/update/manifest?board=b&version=1", "", "Bearer tok123"},
		{"artefact", cloud, reg, cloud + "/v1/update/artefacts/x.upd", "", "Bearer tok123"},
		{"host case", cloud, reg, "https://CLOUD.example:8443/v1/update/report", "", "Bearer tok123"},
		{"artefact on a CDN", cloud, reg, "https://cdn.example/u/x.upd", "", ""},
		{"same host other port", cloud, reg, "https://cloud.example/v1/update/manifest", "", ""},
		{"plain http", cloud, reg, "http://cloud.example:8443/v1/update/manifest", "", ""},
		{"no cloud configured", "", reg, cloud + "/v1/update/manifest", "", ""},
		{"token of another cloud", "https://new.example", reg, "https://new.example/v1/update/manifest", "", ""},
		{"no registration", cloud, filepath.Join(dir, "none.json"), cloud + "/v1/update/manifest", "", ""},
		{"bare registration to the cloud", cloud, bare, cloud + "/v1/update/manifest", "", "Bearer tok456"},
		{"bare registration elsewhere", cloud, bare, "https://cdn.example/u/x.upd", "", ""},
		{"header already set", cloud, reg, cloud + "/v1/update/manifest", "Bearer other", "Bearer other"},
	}
	for _, c := range cases {
		rec := &recorder{}
		cloudURL := c.cloud
		b := &bearer{base: rec, regFile: c.reg, cloud: func() string { return cloudURL }}
		req, _ := http.NewRequest(http.MethodGet, c.url, nil)
		if c.preset != "" {
			req.Header.Set("Authorization", c.preset)
		}
		if _, err := b.RoundTrip(req); err != nil {
			t.Fatal(err)
		}
		if rec.auth[0] != c.want {
			t.Errorf("%s: Authorization %q, want %q", c.name, rec.auth[0], c.want)
		}
		if c.preset == "" && req.Header.Get("Authorization") != "" {
			t.Errorf("%s: the caller's request was modified", c.name)
		}
	}
	// Default port: https://h and https://h:443 are the same origin.
	u, _ := url.Parse("https://cloud.example:443/x")
	if !sameOrigin(u, "https://cloud.example") {
		t.Error("https://cloud.example:443 and https://cloud.example differ")
	}
}

// A redirect from the cloud to another server (both real TLS on loopback)
// does not carry the token there, and a new registration's token is used
// at once.
func TestBearerNotFollowingRedirects(t *testing.T) {
	var otherSaw, cloudSaw []string
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		otherSaw = append(otherSaw, r.Header.Get("Authorization"))
	}))
	defer other.Close()
	cloud := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cloudSaw = append(cloudSaw, r.Header.Get("Authorization"))
		http.Redirect(w, r, other.URL+"/elsewhere", http.StatusFound)
	}))
	defer cloud.Close()
	// One transport trusting both test certificates.
	tr := cloud.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.RootCAs.AddCert(other.Certificate())
	dir := t.TempDir()
	reg := writeReg(t, dir, cloud.URL, "first")
	c := &http.Client{Transport: &bearer{base: tr, regFile: reg, cloud: func() string { return cloud.URL }}}
	resp, err := c.Get(cloud.URL + "/v1/update/artefacts/x.upd")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	writeReg(t, dir, cloud.URL, "second")
	if resp, err = c.Get(cloud.URL + "/v1/update/manifest"); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(cloudSaw) != 2 || cloudSaw[0] != "Bearer first" || cloudSaw[1] != "Bearer second" {
		t.Fatalf("cloud saw %q, want the first then the second token", cloudSaw)
	}
	if len(otherSaw) != 2 || otherSaw[0] != "" || otherSaw[1] != "" {
		t.Fatalf("the server redirected to saw %q, want no credentials", otherSaw)
	}
}
