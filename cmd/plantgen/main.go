// Command plantgen writes the capture of a small plant network that the
// sensor's demo and tests read: PLCs, an HMI, an engineering station, a
// switch, a DHCP server and router, office PCs, and the traffic between them
// in the protocols the sensor reads so far, built from their specifications.
//
// The output is deterministic: the same program writes the same bytes.
//
//	plantgen -o demo/plant.pcap
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	out := flag.String("o", "demo/plant.pcap", "pcap file to write")
	flag.Parse()
	data, err := Generate()
	if err != nil {
		fmt.Fprintln(os.Stderr, "plantgen:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(*out, data, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "plantgen:", err)
		os.Exit(1)
	}
	fmt.Printf("plantgen: wrote %d bytes to %s\n", len(data), *out)
}
