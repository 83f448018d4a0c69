//go:build e2e

package e2e

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// siteCloudName is the cloud's name on the site's own name server: no
// public resolver knows it, so a box that reaches the cloud by it uses the
// DNS server typed at its console.
const siteCloudName = "cloud.site.example."

// siteDNS is the site's name server: a real UDP DNS server on the host's
// port 53 that knows siteCloudName (an A record) and nothing else.
type siteDNS struct {
	// guestAddr is the server's address as the guest reaches it.
	guestAddr string
	queries   chan string // names asked, for the log
}

// startSiteDNS listens on listenHost:53 and answers siteCloudName with
// cloud. It returns nil when port 53 cannot be had (not root, or another
// server holds it): the caller then says that DNS is not put to the test.
func startSiteDNS(t *testing.T, listenHost, guestAddr string, cloud netip.Addr) *siteDNS {
	t.Helper()
	pc, err := net.ListenPacket("udp4", net.JoinHostPort(listenHost, "53"))
	if err != nil {
		t.Logf("no site name server (%v): the DNS server typed at the console is not put to the test", err)
		return nil
	}
	t.Cleanup(func() { pc.Close() })
	d := &siteDNS{guestAddr: guestAddr, queries: make(chan string, 64)}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp, name, ok := answerSiteDNS(buf[:n], cloud); ok {
				pc.WriteTo(resp, from)
				select {
				case d.queries <- name:
				default:
				}
			}
		}
	}()
	return d
}

// answerSiteDNS answers one query: siteCloudName's A record, no AAAA
// record for it, and NXDOMAIN for any other name.
func answerSiteDNS(q []byte, cloud netip.Addr) ([]byte, string, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(q)
	if err != nil || h.Response {
		return nil, "", false
	}
	question, err := p.Question()
	if err != nil {
		return nil, "", false
	}
	name := question.Name.String()
	known := strings.EqualFold(name, siteCloudName)
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	if !known {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if b.StartQuestions() != nil || b.Question(question) != nil || b.StartAnswers() != nil {
		return nil, "", false
	}
	if known && question.Type == dnsmessage.TypeA && question.Class == dnsmessage.ClassINET {
		rr := dnsmessage.ResourceHeader{Name: question.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 60}
		if b.AResource(rr, dnsmessage.AResource{A: cloud.As4()}) != nil {
			return nil, "", false
		}
	}
	resp, err := b.Finish()
	return resp, name, err == nil
}
