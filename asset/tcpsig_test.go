package asset

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/internal/testcorpus"
)

// p0fCaptures are corpus captures with handshakes of many stacks.
var p0fCaptures = []string{
	"ICS-Pcaps__BOOTP__packet.pcap",
	"nDPI__tests__cfgs__default__pcap__1kxun.pcap",
	"zeek__testing__btest__Traces__ssh__ssh.pcap",
	"ICS-Pcaps__S7COMM__s2.pcap",
	"ICS-Security-Tools__pcaps__ModbusTCP__mb2.pcap",
	"ICS-Pcaps__DNP3__dnp3_test_data_part1.pcap",
	"ICS-Pcaps__DNP3__dnp3dataset_capturerem_to_cite_the_paper.pcap",
	"Malcolm-PCAP__pcaps__protocols__KRB5.pcap",
	"Malcolm-PCAP__pcaps__protocols__DNS.pcap",
	"Malcolm-PCAP__pcaps__protocols__DNP3.pcap",
	"Malcolm-PCAP__pcaps__protocols__Telnet.pcap",
	"suricata-verify__tests__smb2-ntlmssp-negotiateflags__input.pcap",
	"ICS-Security-Tools__pcaps__C37.118__C37118__c37118_1100_unclean.pcap",
	"Malcolm-PCAP__pcaps__protocols__OPCUA-Binary.pcap",
}

// p0fLog is one "mod=syn" or "mod=syn+ack" line of p0f's log.
type p0fLog struct {
	synack      bool
	subject, os string // os "" when p0f gives none ("???")
	raw         string
	app         bool
}

func runP0f(t testing.TB, path string) []p0fLog {
	t.Helper()
	if _, err := exec.LookPath("p0f"); err != nil {
		t.Skip("p0f not installed (apt-get install p0f): it is the oracle for OS verdicts from TCP")
	}
	log := filepath.Join(t.TempDir(), "p0f.log")
	if out, err := exec.Command("p0f", "-r", path, "-o", log).CombinedOutput(); err != nil {
		t.Fatalf("p0f -r %s: %v\n%s", path, err, out)
	}
	f, err := os.Open(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []p0fLog
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		_, rest, _ := strings.Cut(sc.Text(), "] ")
		kv := map[string]string{}
		for _, f := range strings.Split(rest, "|") {
			k, v, _ := strings.Cut(f, "=")
			kv[k] = v
		}
		var l p0fLog
		switch kv["mod"] {
		case "syn":
			l.subject = kv["cli"]
		case "syn+ack":
			l.synack, l.subject = true, kv["srv"]
		default:
			continue
		}
		l.subject = l.subject[:strings.LastIndexByte(l.subject, '/')]
		l.os, l.raw = kv["os"], kv["raw_sig"]
		if a, ok := kv["app"]; ok {
			l.os, l.app = a, true
		}
		if l.os == "???" {
			l.os = ""
		}
		out = append(out, l)
	}
	return out
}

// TestMatchTCPAgreesWithP0f: every raw signature p0f logs on the corpus
// captures gets from MatchTCP the label p0f gave it (or none when p0f had
// none). Userland tools (nmap) p0f reports as "app" are matched too.
func TestMatchTCPAgreesWithP0f(t *testing.T) {
	n, withOS := 0, 0
	for _, name := range p0fCaptures {
		for _, l := range runP0f(t, testcorpus.File(t, name)) {
			n++
			m, ok := MatchTCP(l.raw, l.synack)
			got := ""
			if ok {
				got = m.Label()
			}
			if l.os != "" {
				withOS++
			}
			if got != l.os {
				t.Errorf("%s: %s (synack %v) %s: p0f %q, ours %q", name, l.subject, l.synack, l.raw, l.os, got)
			}
		}
	}
	t.Logf("%d handshake signatures, %d with an OS from p0f", n, withOS)
	if withOS < 100 {
		t.Fatalf("only %d signatures with an OS: the test checks too little", withOS)
	}
}

func TestMatchTCPCases(t *testing.T) {
	cases := []struct {
		raw    string
		synack bool
		want   string
		fuzzy  bool
	}{
		{"4:64+0:0:1460:mss*20,7:mss,sok,ts,nop,ws:df,id+:0", false, "Linux 3.11 and newer", false},
		{"4:128+0:0:1460:8192,8:mss,nop,ws,nop,nop,sok:df,id+:0", false, "Windows 7 or 8", false},
		{"4:127+1:0:1460:64512,0:mss,nop,nop,sok:df,id+:0", false, "Windows NT kernel", false},
		{"4:64+0:0:1460:65535,6:mss,nop,ws,nop,nop,ts,sok,eol+1:df,id+:0", false, "Mac OS X", false},
		// Linux's SYN with DF but a zero IP ID: 'id+' gone is a fuzzy match.
		{"4:64+0:0:1460:mss*20,7:mss,sok,ts,nop,ws:df:0", false, "Linux 3.11 and newer", true},
		// p0f is lenient: TTL out of range and df,id+ gone still match fuzzily.
		{"4:255+0:0:1460:2920,0:mss::0", false, "Linux 2.2.x-3.x (barebone)", true},
		{"4:255+0:0:1460:2920,0:mss,nop,?99::0", false, "", false},
	}
	for _, c := range cases {
		m, _ := MatchTCP(c.raw, c.synack)
		if m.Label() != c.want || m.Fuzzy != c.fuzzy {
			t.Errorf("MatchTCP(%s) = %q fuzzy %v, want %q fuzzy %v", c.raw, m.Label(), m.Fuzzy, c.want, c.fuzzy)
		}
	}
}
