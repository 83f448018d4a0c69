package main

import "net/netip"

// Devices of the IT application scenes (SNMP, SSH, SIP, Kerberos, TLS),
// on 10.10.0.60-79, with MACs from their makers' OUIs.
var (
	// A Hirschmann managed switch, polled by SNMP and managed over HTTPS.
	mgdSwitch = Device{"sw-cell2", mac("00:80:63:10:00:60"), netip.MustParseAddr("10.10.0.60")}
	// A Linux historian server on Supermicro hardware, reached over SSH.
	histSrv = Device{"historian", mac("00:25:90:10:00:61"), netip.MustParseAddr("10.10.0.61")}
	// A Yealink desk phone on the control room desk, and its PBX.
	sipPhone = Device{"phone-201", mac("80:5e:c0:10:00:62"), netip.MustParseAddr("10.10.0.62")}
	pbx      = Device{"pbx", mac("00:25:90:10:00:63"), netip.MustParseAddr("10.10.0.63")}
	// The plant's Windows domain controller (HPE server).
	dc = Device{"dc1", mac("94:18:82:10:00:64"), netip.MustParseAddr("10.10.0.64")}
)
