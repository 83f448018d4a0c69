package ot

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/passivesensor/sensor/dissect"
	"github.com/passivesensor/sensor/flow"
	"github.com/passivesensor/sensor/internal/testcorpus"
)

var mqttCorpus = []string{
	"ICS-Pcaps__MQTT__mqtt.pcap",
	"ICS-Pcaps__MQTT__mqtt_user_credentials.pcap",
	"ICS-Pcaps__Mergecap__kokteyl.pcap",
}

// TestMQTTTshark compares client ids, versions, credential flags and the
// topics clients publish and subscribe to with tshark's mqtt.clientid,
// mqtt.ver, mqtt.conflag.uname, mqtt.conflag.passwd and mqtt.topic; the
// sender of CONNECT is the client, the side on 1883 the broker. No
// observation holds the password or user name tshark reads.
func TestMQTTTshark(t *testing.T) {
	for _, name := range mqttCorpus {
		path := testcorpus.File(t, name)
		out := runFile(t, path, NewMQTT())
		got := obsSet(out)
		n := 0
		for _, r := range testcorpus.Tshark(t, path, "mqtt.msgtype==1", "ip.src", "ip.dst", "mqtt.clientid", "mqtt.ver", "mqtt.conflag.uname", "mqtt.conflag.passwd", "mqtt.username", "mqtt.passwd") {
			ver := map[string]string{"3": "3.1", "4": "3.1.1", "5": "5.0"}[r[3]]
			creds := "no"
			if r[4] == "1" || r[5] == "1" || r[4] == "True" || r[5] == "True" {
				creds = "yes"
			}
			for _, w := range []string{
				r[0] + " " + AttrMQTTClientID + "=" + r[2], r[0] + " " + AttrMQTTVersion + "=" + ver,
				r[0] + " " + AttrMQTTCredentials + "=" + creds, r[0] + " role=" + RoleMQTTClient, r[1] + " role=" + RoleMQTTBroker,
			} {
				if !got[w] {
					t.Errorf("%s: %s missing; have %v", name, w, keys(got))
				}
			}
			for _, secret := range r[6:8] {
				if secret == "" {
					continue
				}
				for _, o := range out {
					if strings.Contains(o.Value, secret) {
						t.Errorf("%s: observation %v holds a credential", name, o)
					}
				}
			}
			n++
		}
		for _, r := range testcorpus.Tshark(t, path, "mqtt.msgtype==3 && tcp.dstport==1883 || mqtt.msgtype==8", "ip.src", "mqtt.msgtype", "mqtt.topic") {
			attr := AttrMQTTPublish
			if strings.HasPrefix(r[1], "8") {
				attr = AttrMQTTSubscribe
			}
			for _, tp := range strings.Split(r[2], ",") {
				if !got[r[0]+" "+attr+"="+tp] {
					t.Errorf("%s: %s %s=%s missing", name, r[0], attr, tp)
				}
			}
		}
		if n == 0 {
			t.Errorf("%s: tshark sees no CONNECT", name)
		}
	}
}

// mqttMsg builds a message: fixed header (type, flags, remaining length
// as a variable byte integer, MQTT 3.1.1 section 2.2.3), then body.
func mqttMsg(typ, flags byte, body ...[]byte) []byte {
	var b []byte
	for _, x := range body {
		b = append(b, x...)
	}
	h := []byte{typ<<4 | flags}
	l := len(b)
	for {
		c := byte(l & 0x7f)
		l >>= 7
		if l > 0 {
			c |= 0x80
		}
		h = append(h, c)
		if l == 0 {
			break
		}
	}
	return append(h, b...)
}

func mqttStr(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }

// mqttExchange is a 3.1.1 session (sections 3.1, 3.3, 3.8): CONNECT with
// user name and password, PUBLISH, SUBSCRIBE, and the broker's answers.
func mqttExchange() (cli, srv [][]byte) {
	connect := mqttMsg(1, 0, mqttStr("MQTT"), []byte{4, 0xc4, 0, 60}, mqttStr("line1-gw"), mqttStr("plant/status"), mqttStr("offline"), mqttStr("operator"), mqttStr("s3cret"))
	cli = [][]byte{connect, mqttMsg(3, 0, mqttStr("plant/line1/temp"), []byte("21.5")), mqttMsg(8, 2, []byte{0, 1}, mqttStr("plant/cmd/#"), []byte{1})}
	srv = [][]byte{{0x20, 2, 0, 0}, {0x90, 3, 0, 1, 1}}
	return
}

// TestMQTTSegments: split, merged, retransmitted and mid-way streams.
func TestMQTTSegments(t *testing.T) {
	cli, srv := mqttExchange()
	streamCase{
		newD: func() dissect.Dissector { return NewMQTT() }, probe: true, cliMsgs: cli, srvMsgs: srv,
		cli: netip.MustParseAddrPort("10.1.1.10:50000"), srv: netip.MustParseAddrPort("10.1.1.20:1883"),
		must: []string{"10.1.1.10 " + AttrMQTTSubscribe + "=plant/cmd/#", "10.1.1.10 " + AttrMQTTPublish + "=plant/line1/temp"},
	}.check(t)
	d := NewMQTT()
	var out collect
	f := tcpFlow(netip.MustParseAddrPort("10.1.1.10:50000"), netip.MustParseAddrPort("10.1.1.20:1883"))
	d.Handle(pkt(f, flow.FromClient, 0, cli[0]), &out)
	got := obsSet(out)
	for _, w := range []string{"10.1.1.10 mqtt.client_id=line1-gw", "10.1.1.10 mqtt.credentials=yes", "10.1.1.10 mqtt.will_topic=plant/status", "10.1.1.10 mqtt.version=3.1.1"} {
		if !got[w] {
			t.Errorf("%s missing: %v", w, keys(got))
		}
	}
	for _, o := range out {
		if strings.Contains(o.Value, "s3cret") || strings.Contains(o.Value, "operator") {
			t.Errorf("credential in %v", o)
		}
	}
}

// TestMQTTHeuristicAndTLS: a CONNECT claims a flow on another port;
// 8883 says only that TLS is used.
func TestMQTTHeuristicAndTLS(t *testing.T) {
	cli, _ := mqttExchange()
	d := NewMQTT()
	f := tcpFlow(netip.MustParseAddrPort("10.1.1.10:50000"), netip.MustParseAddrPort("10.1.1.20:11883"))
	if !d.Probe(pkt(f, flow.FromClient, 0, cli[0])) {
		t.Error("CONNECT on another port not claimed")
	}
	if d.Probe(pkt(f, flow.FromClient, 0, cli[1])) {
		t.Error("PUBLISH alone claimed a flow on another port")
	}
	if d.Probe(pkt(tcpFlow(netip.MustParseAddrPort("10.1.1.10:50000"), netip.MustParseAddrPort("10.1.1.20:1883")), flow.FromClient, 0, []byte("GET / HTTP/1.1\r\n"))) {
		t.Error("HTTP on 1883 claimed")
	}
	tf := tcpFlow(netip.MustParseAddrPort("10.1.1.10:50000"), netip.MustParseAddrPort("10.1.1.20:8883"))
	hello := []byte{0x16, 3, 1, 0, 5, 1, 0, 0, 1, 0}
	p := pkt(tf, flow.FromClient, 0, hello)
	if !d.Probe(p) {
		t.Fatal("TLS on 8883 not claimed")
	}
	var out collect
	d.Handle(p, &out)
	if got := obsSet(out); !got["10.1.1.10 "+AttrMQTTTLS+"=yes"] || !got["10.1.1.20 role="+RoleMQTTBroker] {
		t.Errorf("TLS use not learnt: %v", keys(got))
	}
}

// TestMQTTOversized: a PUBLISH larger than the stream buffer is read from
// its start and the next message after it is read too.
func TestMQTTOversized(t *testing.T) {
	big := mqttMsg(3, 0, mqttStr("big/topic"), make([]byte, 3*dissect.DefaultStreamMax))
	next := mqttMsg(8, 2, []byte{0, 1}, mqttStr("after/big"), []byte{0})
	d := NewMQTT()
	var out collect
	f := tcpFlow(netip.MustParseAddrPort("10.1.1.10:50000"), netip.MustParseAddrPort("10.1.1.20:1883"))
	seq := uint32(0)
	stream := append(big, next...)
	for o := 0; o < len(stream); o += 1400 {
		e := min(o+1400, len(stream))
		d.Handle(pkt(f, flow.FromClient, seq, stream[o:e]), &out)
		seq += uint32(e - o)
	}
	got := obsSet(out)
	if !got["10.1.1.10 "+AttrMQTTPublish+"=big/topic"] || !got["10.1.1.10 "+AttrMQTTSubscribe+"=after/big"] {
		t.Errorf("oversized publish: %v", keys(got))
	}
}

// FuzzMQTT feeds arbitrary segments both ways.
func FuzzMQTT(f *testing.F) {
	cli, srv := mqttExchange()
	for _, s := range append(cli, srv...) {
		f.Add(s, uint8(0), uint8(5))
	}
	f.Fuzz(func(t *testing.T, b []byte, mode, cut uint8) {
		d := NewMQTT()
		fl := tcpFlow(netip.MustParseAddrPort("10.1.1.10:50000"), netip.MustParseAddrPort("10.1.1.20:1883"))
		c := min(int(cut), len(b))
		sink := dissect.SinkFunc(func(dissect.Observation) {})
		p := pkt(fl, flow.Dir(mode&1), 0, b[:c])
		d.Probe(p)
		d.Handle(p, sink)
		d.Handle(pkt(fl, flow.Dir(mode&1), uint32(c), b[c:]), sink)
	})
}

// BenchmarkMQTTHandle measures PUBLISH messages on a claimed flow.
func BenchmarkMQTTHandle(b *testing.B) {
	cli, _ := mqttExchange()
	d := NewMQTT()
	f := tcpFlow(netip.MustParseAddrPort("10.1.1.10:50000"), netip.MustParseAddrPort("10.1.1.20:1883"))
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	p := pkt(f, flow.FromClient, 0, cli[1])
	b.ReportAllocs()
	for b.Loop() {
		d.Handle(p, sink)
		p.TCPSeq += uint32(len(cli[1]))
	}
}

// TestMQTTAllocs: PUBLISH messages on a known topic allocate nothing.
func TestMQTTAllocs(t *testing.T) {
	cli, _ := mqttExchange()
	d := NewMQTT()
	f := tcpFlow(netip.MustParseAddrPort("10.1.1.10:50000"), netip.MustParseAddrPort("10.1.1.20:1883"))
	sink := dissect.SinkFunc(func(dissect.Observation) {})
	p := pkt(f, flow.FromClient, 0, cli[1])
	d.Handle(p, sink)
	if n := testing.AllocsPerRun(500, func() { p.TCPSeq += uint32(len(cli[1])); d.Handle(p, sink) }); n != 0 {
		t.Errorf("%v allocations per PUBLISH, want 0", n)
	}
}

// TestMQTT5 (hand-built from MQTT 5.0, 3.1.2.11 properties, 3.1.3.2 will
// properties, 3.8.2.1 SUBSCRIBE properties): properties are skipped and
// what follows them read.
func TestMQTT5(t *testing.T) {
	props := []byte{5, 0x11, 0, 0, 0, 60} // session expiry interval
	willProps := []byte{2, 0x01, 1}       // payload format indicator
	connect := mqttMsg(1, 0, mqttStr("MQTT"), []byte{5, 0x06, 0, 30}, props, mqttStr("sensor-7"), willProps, mqttStr("dev/7/lwt"), mqttStr("gone"))
	sub := mqttMsg(8, 2, []byte{0, 9}, []byte{2, 0x0b, 7}, mqttStr("dev/7/cfg"), []byte{1})
	d := NewMQTT()
	var out collect
	f := tcpFlow(netip.MustParseAddrPort("10.1.1.10:50000"), netip.MustParseAddrPort("10.1.1.20:1883"))
	d.Handle(pkt(f, flow.FromClient, 0, append(connect, sub...)), &out)
	got := obsSet(out)
	for _, w := range []string{"mqtt.version=5.0", "mqtt.client_id=sensor-7", "mqtt.will_topic=dev/7/lwt", "mqtt.credentials=no", "mqtt.subscribe=dev/7/cfg"} {
		if !got["10.1.1.10 "+w] {
			t.Errorf("%s missing: %v", w, keys(got))
		}
	}
}
