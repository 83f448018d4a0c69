package main

import (
	"encoding/binary"
	"encoding/pem"
)

// TLS 1.2 server: the engineering station opens the managed switch's web
// interface over HTTPS; the switch answers with ServerHello, Certificate
// and ServerHelloDone (RFC 5246 sections 7.4.1.3, 7.4.2, 7.4.5), which
// TLS 1.2 sends in clear.

// switchCertPEM is the switch's self-signed certificate (RSA 2048),
// made once with openssl req -x509 and kept so that the capture stays the
// same from run to run.
const switchCertPEM = `
-----BEGIN CERTIFICATE-----
MIIDujCCAqKgAwIBAgIUcY8SDQCFTJugFKUErWF8Bii4G1IwDQYJKoZIhvcNAQEL
BQAwUjEvMC0GA1UECgwmSGlyc2NobWFubiBBdXRvbWF0aW9uIGFuZCBDb250cm9s
IEdtYkgxHzAdBgNVBAMMFnN3LWNlbGwyLnBsYW50LmV4YW1wbGUwHhcNMjYxMTIz
MTQwNjE1WhcNMzYxMTIwMTQwNjE1WjBSMS8wLQYDVQQKDCZIaXJzY2htYW5uIEF1
dG9tYXRpb24gYW5kIENvbnRyb2wgR21iSDEfMB0GA1UEAwwWc3ctY2VsbDIucGxh
bnQuZXhhbXBsZTCCASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBALYEBWcS
doig5yDOvSqB22UqyyYnfPB2GpV8F4ADa/tacZrTkQ1ioGbxwEnbV9WSwI1vBYdr
sCmvIHQVuMDoHEMRlcnUoRKPhpqDDnf5FpNokUcl8/JEm9R6+FtLVt/TBOlKJtX7
wQhD0XMh6yR9hcNmyREvyGT8MhJvqMprdN9tewp4+NM0JCip8SKFJ69tNfsBhE87
TaaGvaPB6uCsOk2KtM13xlkxD1oFH9FFPuxXePAroETOAGZNgwboDiSQfpn+T14d
/uvePjmdLrWCfny7TA08oz0unasBemep5ISqb0uZoxDROQ/rmVXG6JN8QoCHhlEr
hwl7H9S5sW6b+78CAwEAAaOBhzCBhDAdBgNVHQ4EFgQUHI25pBShyBaySKKCVEe6
XOtPO4UwHwYDVR0jBBgwFoAUHI25pBShyBaySKKCVEe6XOtPO4UwDwYDVR0TAQH/
BAUwAwEB/zAxBgNVHREEKjAoghZzdy1jZWxsMi5wbGFudC5leGFtcGxlgghzdy1j
ZWxsMocECgoAPDANBgkqhkiG9w0BAQsFAAOCAQEAir794CjOkmtrwjNOq1sZGj9A
EBC0MfRYOyp9rXdwDSP9vUED/gJ0mdyAirRPYp060mGwiQypf7yXa3DNgCzFW9az
qs8haLbgdEt4lqpUqRK1uVRWWjD0qc7JajuONa98gGLJ6BAuMkFMNJ3kkZV5NFtI
8tzdtROliOHO6G/1ax4kRgxA3AiQoylTft1LaANB+P4b+/wJGpGR9Cj3KibQPaTb
8iEF1rImP9EEksuFomWHWAnvoaBxz96t5uEjakYAqKmbYp6iUaJHcGy5Up34x/gm
HIL/jaAIzANj7yrTPQjJ0IvOtJY8gMn1/R1lcVlyjixXmzs8nJEZweL6xgYTcw==
-----END CERTIFICATE-----
`

func init() {
	addScene("30-tls", func(wr *Wire) {
		blk, _ := pem.Decode([]byte(switchCertPEM))
		s := wr.Dial(eng.MAC, eng.IP, 50443, mgdSwitch.MAC, mgdSwitch.IP, 443)
		s.Exchange(clientHello("sw-cell2.plant.example", 0x31), tlsServerFlight(blk.Bytes, 0x77))
		s.Close()
	})
}

// tlsServerFlight builds one handshake record holding a TLS 1.2
// ServerHello choosing TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 (0xc02f)
// with the renegotiation_info extension (RFC 5746), a Certificate with
// the chain der, and ServerHelloDone.
func tlsServerFlight(der []byte, random byte) []byte {
	sh := []byte{0x03, 0x03}
	for i := 0; i < 32; i++ {
		sh = append(sh, random+byte(i))
	}
	sh = append(sh, 0)          // session id
	sh = append(sh, 0xc0, 0x2f) // cipher suite
	sh = append(sh, 0)          // compression: null
	sh = append(sh, 0x00, 0x05, 0xff, 0x01, 0x00, 0x01, 0x00)
	cert := []byte{byte(len(der) >> 16), byte(len(der) >> 8), byte(len(der))}
	cert = append(cert, der...)
	cm := []byte{byte(len(cert) >> 16), byte(len(cert) >> 8), byte(len(cert))}
	cm = append(cm, cert...)
	var hs []byte
	for _, m := range []struct {
		typ  byte
		body []byte
	}{{2, sh}, {11, cm}, {14, nil}} {
		hs = append(hs, m.typ, byte(len(m.body)>>16), byte(len(m.body)>>8), byte(len(m.body)))
		hs = append(hs, m.body...)
	}
	rec := []byte{0x16, 0x03, 0x03}
	rec = binary.BigEndian.AppendUint16(rec, uint16(len(hs)))
	return append(rec, hs...)
}
