// Package demo holds the capture of a small plant network that the sensor
// reads when it is given no capture and no interface. cmd/plantgen writes
// it (make demo-data); it is built from protocol specifications, not copied
// from anyone's network.
package demo

import _ "embed"

// Plant is the pcap file written by cmd/plantgen.
//
//go:embed plant.pcap
var Plant []byte
