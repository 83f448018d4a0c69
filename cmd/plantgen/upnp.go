package main

import (
	"fmt"
	"net/netip"
	"time"
)

var (
	ssdpGroup    = netip.MustParseAddr("239.255.255.250")
	ssdpGroupMAC = mac("01:00:5e:7f:ff:fa")
)

const (
	prnUUID   = "3a3e4f1c-5c52-4b21-9a0e-b00cd1100045"
	prnServer = "Linux/3.12 UPnP/1.0 HP-LaserJet-M404n/002.2118A"
)

// ssdpAlive is an ssdp:alive NOTIFY (UPnP Device Architecture 2.0
// section 1.2.2) for one notification type.
func ssdpAlive(d Device, nt string) []byte {
	usn := "uuid:" + prnUUID
	if nt != usn {
		usn += "::" + nt
	}
	return []byte(fmt.Sprintf("NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nCACHE-CONTROL: max-age=1800\r\nLOCATION: http://%s:80/DevMgmt/DiscoveryTree.xml\r\nNT: %s\r\nNTS: ssdp:alive\r\nSERVER: %s\r\nUSN: %s\r\nBOOTID.UPNP.ORG: 1\r\nCONFIGID.UPNP.ORG: 1\r\n\r\n", d.IP, nt, prnServer, usn))
}

// ssdpSearchResponse answers an M-SEARCH (section 1.3.3).
func ssdpSearchResponse(d Device, st string) []byte {
	return []byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=1800\r\nDATE: Mon, 05 Jan 2026 08:00:30 GMT\r\nEXT:\r\nLOCATION: http://%s:80/DevMgmt/DiscoveryTree.xml\r\nSERVER: %s\r\nST: %s\r\nUSN: uuid:%s::%s\r\nBOOTID.UPNP.ORG: 1\r\n\r\n", d.IP, prnServer, st, prnUUID, st))
}

// wsdEnvelope is a SOAP-over-UDP message of the WS-Discovery 2005/04 draft
// that Windows and WSD printers speak (sections 4 and 5), with the
// action's body; a reply relates to the message it answers.
func wsdEnvelope(action, messageID, relatesTo, body string) []byte {
	to := "urn:schemas-xmlsoap-org:ws:2005:04:discovery"
	if relatesTo != "" {
		to = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
	}
	header := "<wsa:To>" + to + "</wsa:To><wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/" + action +
		"</wsa:Action><wsa:MessageID>urn:uuid:" + messageID + "</wsa:MessageID>"
	if relatesTo != "" {
		header += "<wsa:RelatesTo>urn:uuid:" + relatesTo + "</wsa:RelatesTo>"
	}
	if action != "Probe" {
		header += `<wsd:AppSequence InstanceId="12" MessageNumber="1"></wsd:AppSequence>`
	}
	return []byte(`<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:wsd="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:wsdp="http://schemas.xmlsoap.org/ws/2006/02/devprof" xmlns:wprt="http://schemas.microsoft.com/windows/2006/08/wdp/print">` +
		"<soap:Header>" + header + "</soap:Header><soap:Body>" + body + "</soap:Body></soap:Envelope>")
}

// wsdTarget is the part of Hello and ProbeMatch that describes the printer.
func wsdTarget(d Device) string {
	return "<wsa:EndpointReference><wsa:Address>urn:uuid:" + prnUUID + "</wsa:Address></wsa:EndpointReference>" +
		"<wsd:Types>wsdp:Device wprt:PrintDeviceType</wsd:Types>" +
		"<wsd:XAddrs>http://" + d.IP.String() + ":3911/</wsd:XAddrs><wsd:MetadataVersion>2</wsd:MetadataVersion>"
}

func init() {
	addScene("20-upnp", func(wr *Wire) {
		// The printer comes up and announces itself, in UPnP and WSD.
		for _, nt := range []string{"upnp:rootdevice", "uuid:" + prnUUID, "urn:schemas-upnp-org:device:Printer:1", "urn:schemas-upnp-org:service:PrintBasic:1"} {
			wr.UDP(prnLine1.MAC, ssdpGroupMAC, prnLine1.IP, 1900, ssdpGroup, 1900, ssdpAlive(prnLine1, nt))
		}
		wr.UDP(prnLine1.MAC, ssdpGroupMAC, prnLine1.IP, 3702, ssdpGroup, 3702, wsdEnvelope("Hello", "0e1f2a3b-4c5d-4e6f-8a9b-000000000001", "", "<wsd:Hello>"+wsdTarget(prnLine1)+"</wsd:Hello>"))
		wr.Advance(2 * time.Second)

		// The operator PC looks for devices: SSDP and WSD searches, and
		// the printer answers both.
		wr.UDP(opsPC40.MAC, ssdpGroupMAC, opsPC40.IP, 51900, ssdpGroup, 1900,
			[]byte("M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: urn:schemas-upnp-org:device:Printer:1\r\n\r\n"))
		wr.UDP(prnLine1.MAC, opsPC40.MAC, prnLine1.IP, 1900, opsPC40.IP, 51900, ssdpSearchResponse(prnLine1, "urn:schemas-upnp-org:device:Printer:1"))
		probeID := "5d6e7f80-9a0b-4c1d-8e2f-30415263a4b5"
		probe := wsdEnvelope("Probe", probeID, "", "<wsd:Probe><wsd:Types>wsdp:Device</wsd:Types></wsd:Probe>")
		wr.UDP(opsPC40.MAC, ssdpGroupMAC, opsPC40.IP, 53702, ssdpGroup, 3702, probe)
		wr.UDP(prnLine1.MAC, opsPC40.MAC, prnLine1.IP, 3702, opsPC40.IP, 53702,
			wsdEnvelope("ProbeMatches", "0e1f2a3b-4c5d-4e6f-8a9b-000000000002", probeID, "<wsd:ProbeMatches><wsd:ProbeMatch>"+wsdTarget(prnLine1)+"</wsd:ProbeMatch></wsd:ProbeMatches>"))
	})
}
