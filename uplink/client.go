package uplink

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// HTTP API between sensor and cloud
//
//	POST /v1/register  body: a batch (CBOR, maybe zstd) holding one registration
//	                   200 {"sensor_id": "...", "token": "..."}
//	                   403 {"error": "not issued or already used"}: the code is refused
//	POST /v1/batches   Authorization: Bearer TOKEN; body: a batch as spooled
//	                   200 {"batch": "HEX", "duplicate": false}; a batch id already
//	                   stored is answered 200 with "duplicate": true and not stored again
//	                   400 malformed, 401 wrong credentials, 413 too large
//	GET  /v1/config    Authorization: Bearer TOKEN; 200 Config as JSON
//
// Error answers are JSON {"error": "..."}.
const (
	PathRegister = "/v1/register"
	PathBatches  = "/v1/batches"
	PathConfig   = "/v1/config"
	// ContentType is the media type of a batch body.
	ContentType = "application/cbor"
	// MaxBody bounds a batch body as sent (compressed); MaxBatchSize
	// bounds it decompressed.
	MaxBody = 8 << 20
)

// Proxy is an HTTP proxy the uplink tunnels through with CONNECT, with
// optional Basic credentials.
type Proxy struct {
	Address  string // host:port; empty: direct
	User     string
	Password string
}

// ClientOptions configure the HTTPS client.
type ClientOptions struct {
	// CAFile is a PEM file of CA certificates trusted besides the system's.
	CAFile string
	Proxy  Proxy
	// Timeout bounds one request; default 60 s.
	Timeout time.Duration
}

// Client talks to the cloud over HTTPS. Certificates are always verified.
type Client struct {
	base  *url.URL
	hc    *http.Client
	proxy string
}

// NewClient returns a client for the cloud at baseURL (https://...).
func NewClient(baseURL string, o ClientOptions) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("uplink: cloud URL %q: want https://host[:port]", baseURL)
	}
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("uplink: CA file: %w", err)
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("uplink: CA file %s holds no PEM certificate", o.CAFile)
		}
	}
	tr := &http.Transport{
		TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		DialContext:           (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          2,
		ForceAttemptHTTP2:     true,
	}
	if o.Proxy.Address != "" {
		pu := &url.URL{Scheme: "http", Host: o.Proxy.Address}
		if o.Proxy.User != "" {
			pu.User = url.UserPassword(o.Proxy.User, o.Proxy.Password)
		}
		// For an https:// target the transport opens a CONNECT tunnel
		// and sends the credentials as Proxy-Authorization: Basic.
		tr.Proxy = http.ProxyURL(pu)
	}
	if o.Timeout == 0 {
		o.Timeout = 60 * time.Second
	}
	return &Client{base: u, hc: &http.Client{Transport: tr, Timeout: o.Timeout}, proxy: o.Proxy.Address}, nil
}

// URL is the cloud's base URL.
func (c *Client) URL() string { return c.base.String() }

// CloseIdle closes idle connections (after a settings change).
func (c *Client) CloseIdle() { c.hc.CloseIdleConnections() }

// HTTPError is an answer other than 2xx.
type HTTPError struct {
	Op     string // register, send, config
	Status int
	Msg    string // the cloud's error text
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("uplink: %s: cloud answered %d: %s", e.Op, e.Status, e.Msg)
}

// Permanent reports whether retrying the same request cannot succeed.
func (e *HTTPError) Permanent() bool {
	return e.Status >= 400 && e.Status < 500 && e.Status != http.StatusTooManyRequests && e.Status != http.StatusRequestTimeout
}

// ErrCodeRefused matches (errors.Is) the error of a refused registration.
var ErrCodeRefused = errors.New("personalization code refused")

// RefusedError is a registration the cloud refused. Its text is what the
// LCD and the console show, e.g. "code ABCD-EFGH-JKMN-PQRS refused by the
// cloud: not issued or already used".
type RefusedError struct {
	Code   string
	Reason string // the cloud's words
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("code %s refused by the cloud: %s", e.Code, e.Reason)
}

// Is makes errors.Is(err, ErrCodeRefused) true.
func (e *RefusedError) Is(target error) bool { return target == ErrCodeRefused }

// ErrUnauthorized is wrapped when the cloud refuses the sensor's credentials.
var ErrUnauthorized = errors.New("credentials refused by the cloud")

// Credentials are what registration gives the sensor.
type Credentials struct {
	SensorID string `json:"sensor_id"`
	Token    string `json:"token"`
}

type errorBody struct {
	Error string `json:"error"`
}

func (c *Client) do(ctx context.Context, op, method, path, token string, body []byte, out any) error {
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + path
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return fmt.Errorf("uplink: %s: %w", op, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", ContentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if c.proxy != "" && errors.As(err, &ue) {
			// A proxy refusing the CONNECT tunnel comes back as its bare
			// status text.
			switch t := ue.Err.Error(); t {
			case "Proxy Authentication Required", "Unauthorized", "Forbidden":
				return fmt.Errorf("uplink: %s: proxy %s refused the tunnel to %s: %s (check the proxy user and password)", op, c.proxy, u.Host, t)
			}
		}
		return fmt.Errorf("uplink: %s %s: %w", op, u.Host, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxConfigSize+1))
	if err != nil {
		return fmt.Errorf("uplink: %s %s: reading the answer: %w", op, u.Host, err)
	}
	if resp.StatusCode/100 != 2 {
		var eb errorBody
		msg := strings.TrimSpace(string(data))
		if json.Unmarshal(data, &eb) == nil && eb.Error != "" {
			msg = eb.Error
		}
		if len(msg) > 200 {
			msg = msg[:200]
		}
		if resp.StatusCode == http.StatusProxyAuthRequired {
			msg = "proxy refused the credentials"
		}
		return &HTTPError{Op: op, Status: resp.StatusCode, Msg: msg}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("uplink: %s: answer is not the expected JSON: %w", op, err)
		}
	}
	return nil
}

// Register sends the registration and returns the credentials. A refused
// code gives an error wrapping ErrCodeRefused whose text the LCD shows:
// "code ABCD-EFGH-JKMN-PQRS refused by the cloud: not issued or already used".
func (c *Client) Register(ctx context.Context, reg Registration) (Credentials, error) {
	b, err := NewBatch("", time.Now())
	if err != nil {
		return Credentials{}, err
	}
	b.Messages = []Message{{Registration: &reg}}
	body, err := EncodeBatch(b)
	if err != nil {
		return Credentials{}, err
	}
	var cr Credentials
	err = c.do(ctx, "register", http.MethodPost, PathRegister, "", body, &cr)
	var he *HTTPError
	if errors.As(err, &he) && (he.Status == http.StatusForbidden || he.Status == http.StatusNotFound) {
		return cr, &RefusedError{Code: reg.Code, Reason: he.Msg}
	}
	if err != nil {
		return cr, err
	}
	if cr.SensorID == "" || cr.Token == "" {
		return cr, fmt.Errorf("uplink: register: the cloud answered without a sensor id or token")
	}
	return cr, nil
}

// SendResult is the cloud's acknowledgement of a batch.
type SendResult struct {
	Batch     string `json:"batch"`
	Duplicate bool   `json:"duplicate"`
}

// Send posts one batch as spooled. Any 2xx acknowledges it.
func (c *Client) Send(ctx context.Context, cr Credentials, body []byte) (SendResult, error) {
	var r SendResult
	err := c.do(ctx, "send", http.MethodPost, PathBatches, cr.Token, body, &r)
	var he *HTTPError
	if errors.As(err, &he) && he.Status == http.StatusUnauthorized {
		return r, fmt.Errorf("%w: %s", ErrUnauthorized, he.Msg)
	}
	return r, err
}

// FetchConfig pulls the sensor's configuration.
func (c *Client) FetchConfig(ctx context.Context, cr Credentials) (Config, error) {
	var raw json.RawMessage
	err := c.do(ctx, "config", http.MethodGet, PathConfig, cr.Token, nil, &raw)
	var he *HTTPError
	if errors.As(err, &he) && he.Status == http.StatusUnauthorized {
		return Config{}, fmt.Errorf("%w: %s", ErrUnauthorized, he.Msg)
	}
	if err != nil {
		return Config{}, err
	}
	return ParseConfig(raw)
}

// Backoff gives exponentially growing waits with full jitter between
// Min and Max.
type Backoff struct {
	Min, Max time.Duration
	n        int
}

// Next returns the wait before the next attempt.
func (b *Backoff) Next() time.Duration {
	if b.Min <= 0 {
		b.Min = time.Second
	}
	if b.Max < b.Min {
		b.Max = b.Min
	}
	d := b.Min << min(b.n, 30)
	if d > b.Max || d <= 0 {
		d = b.Max
	} else {
		b.n++
	}
	// Half fixed, half random: spreads a fleet's retries after an outage.
	return d/2 + rand.N(d/2+1)
}

// Reset starts again from Min after a success.
func (b *Backoff) Reset() { b.n = 0 }
