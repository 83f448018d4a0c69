package main

import (
	"net/netip"
	"time"
)

// The plant: a control cell on 10.10.0.0/24 and an office on 10.10.1.0/24
// behind the router, which also serves DHCP and DNS on the cell. The mirror
// port sees the cell's segment, so office hosts appear behind the router's
// MAC, as they would on a real SPAN of a routed network.
var (
	router  = Device{"gw-dhcp", mac("00:1e:bd:10:00:01"), netip.MustParseAddr("10.10.0.1")}
	swtch   = Device{"cell-switch", mac("00:1b:1b:10:00:02"), netip.MustParseAddr("10.10.0.2")}
	plc1    = Device{"plc-filler", mac("00:80:f4:10:00:11"), netip.MustParseAddr("10.10.0.11")}
	plc2    = Device{"plc-capper", mac("00:00:bc:10:00:12"), netip.MustParseAddr("10.10.0.12")}
	hmi     = Device{"hmi-line1", mac("00:90:e8:10:00:21"), netip.MustParseAddr("10.10.0.21")}
	eng     = Device{"eng-station", mac("00:14:22:10:00:31"), netip.MustParseAddr("10.10.0.31")}
	office1 = Device{"office-pc1", mac("3c:d9:2b:10:01:65"), netip.MustParseAddr("10.10.1.101")}
	office2 = Device{"office-pc2", mac("3c:d9:2b:10:01:66"), netip.MustParseAddr("10.10.1.102")}
	cloud   = netip.MustParseAddr("203.0.113.80") // an outside web service (TEST-NET-3)
)

// Generate writes the plant's traffic and returns the pcap file's bytes.
func Generate() ([]byte, error) {
	wr := newWire(time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC))

	// Start of shift: the switch and PLCs announce themselves.
	wr.GratuitousARP(swtch)
	wr.GratuitousARP(plc1)
	wr.GratuitousARP(plc2)

	// The HMI and the engineering station take their addresses by DHCP.
	winParams := []byte{1, 3, 6, 15, 31, 33, 43, 44, 46, 47, 119, 121, 249, 252}
	wr.DHCPLease(dhcpClient{MAC: hmi.MAC, Hostname: "HMI-LINE1", VendorClass: "MSFT 5.0", Params: winParams}, router, hmi.IP, router.IP, 86400, "plant.example")
	wr.Advance(200 * time.Millisecond)
	wr.DHCPLease(dhcpClient{MAC: eng.MAC, Hostname: "ENG-STATION", FQDN: "eng-station.plant.example", VendorClass: "MSFT 5.0", Params: winParams}, router, eng.IP, router.IP, 86400, "plant.example")

	// ARP before talking.
	wr.ARP(hmi, plc1)
	wr.ARP(hmi, plc2)
	wr.ARP(eng, plc1)
	wr.ARP(hmi, router)

	// The HMI polls both PLCs over Modbus/TCP.
	s1 := wr.Dial(hmi.MAC, hmi.IP, 49152, plc1.MAC, plc1.IP, 502)
	s2 := wr.Dial(hmi.MAC, hmi.IP, 49153, plc2.MAC, plc2.IP, 502)
	for i := uint16(0); i < 20; i++ {
		s1.Exchange(mbap(i, 1, readHoldingRegisters(0, 10)), mbap(i, 1, readHoldingRegistersReply(10, 100+i)))
		s2.Exchange(mbap(i, 1, readHoldingRegisters(100, 4)), mbap(i, 1, readHoldingRegistersReply(4, 200+i)))
		wr.Advance(500 * time.Millisecond)
	}
	// The engineering station changes a set point on the filler PLC.
	s3 := wr.Dial(eng.MAC, eng.IP, 50200, plc1.MAC, plc1.IP, 502)
	s3.Exchange(mbap(1, 1, readDeviceID()), mbap(1, 1, readDeviceIDReply("Schneider Electric", "BMX P34 2020", "v3.20")))
	s3.Exchange(mbap(2, 1, writeSingleRegister(40, 1200)), mbap(2, 1, writeSingleRegister(40, 1200)))
	s3.Close()

	// Office PCs, behind the router, reach the HMI's web page and an outside
	// service; their frames on this segment carry the router's MAC.
	web := wr.Dial(router.MAC, office1.IP, 51000, hmi.MAC, hmi.IP, 80)
	web.Exchange([]byte("GET / HTTP/1.1\r\nHost: hmi-line1\r\nUser-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64)\r\n\r\n"),
		[]byte("HTTP/1.1 200 OK\r\nServer: HMI-Web/2.1\r\nContent-Length: 0\r\n\r\n"))
	web.Close()
	out := wr.Dial(eng.MAC, eng.IP, 51001, router.MAC, cloud, 443)
	out.Exchange(clientHello("updates.vendor.example", 0x5a), nil)
	out.Close()
	rdp := wr.Dial(router.MAC, office2.IP, 51002, eng.MAC, eng.IP, 3389)
	rdp.Exchange([]byte{0x03, 0x00, 0x00, 0x0b, 0x06, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00}, []byte{0x03, 0x00, 0x00, 0x0b, 0x06, 0xd0, 0x00, 0x00, 0x00, 0x00, 0x00})
	rdp.Close()

	s1.Close()
	s2.Close()

	// Every other protocol's scene, each in its own file.
	playScenes(wr)
	return wr.buf.Bytes(), wr.err
}
