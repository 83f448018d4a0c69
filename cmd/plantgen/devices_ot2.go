package main

import "net/netip"

// Vendor controllers of the cell (10.10.0.160-219), each with a MAC from
// its maker's OUI, for the FINS, ADS, SLMP, Fox, EtherCAT and CC-Link IE
// Field Basic scenes.
var (
	omronPLC    = Device{"plc-press", mac("00:00:0a:10:01:60"), netip.MustParseAddr("10.10.0.160")}        // OMRON TATEISI ELECTRONICS
	beckhoffCX  = Device{"cx-conveyor", mac("00:01:05:10:01:61"), netip.MustParseAddr("10.10.0.161")}      // Beckhoff Automation
	melsecPLC   = Device{"plc-packer", mac("38:e0:8e:10:01:62"), netip.MustParseAddr("10.10.0.162")}       // Mitsubishi Electric
	niagaraJACE = Device{"jace-ahu", mac("00:01:f0:10:01:63"), netip.MustParseAddr("10.10.0.163")}         // Tridium
	ecatPort    = Device{"cx-conveyor-ecat", mac("00:01:05:10:01:64"), netip.Addr{}}                       // the CX's EtherCAT port
	phoenixILC  = Device{"plc-dosing", mac("00:a0:45:10:01:66"), netip.MustParseAddr("10.10.0.166")}       // Phoenix Contact
	optoPAC     = Device{"pac-boiler", mac("00:a0:3d:10:01:67"), netip.MustParseAddr("10.10.0.167")}       // Opto 22
	redlionHMI  = Device{"hmi-dock", mac("00:05:e4:10:01:68"), netip.MustParseAddr("10.10.0.168")}         // Red Lion Controls
	cclinkIO    = Device{"remote-io-packer", mac("10:4b:46:10:01:65"), netip.MustParseAddr("10.10.0.165")} // Mitsubishi Electric
)

// cellBroadcast is the cell subnet's broadcast address.
var cellBroadcast = netip.MustParseAddr("10.10.0.255")
