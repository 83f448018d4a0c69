//go:build e2e

package e2e

import (
	"context"
	"path/filepath"
	"testing"
)

// TestUplinkSmoke is the short image check CI runs: one boot of the image,
// provisioned at the factory with the collector and a personalization
// code, registers with a real collector on the host, and the plant capture
// that ships with the sensor, replayed into the sniffing NIC, reaches the
// collector as the same assets `sensor -r` finds in it.
func TestUplinkSmoke(t *testing.T) {
	img := requireTools(t)
	lap := stepTimer(t)
	col := startCollector(t)
	disk := provision(t, img, col, col.code(t))
	lap("collector, disk copy, provisioning with a code")

	sniffAddr, sniff := sniffSocket(t)
	v := bootWith(t, disk, bootOpts{sniff: sniff})
	ctx, cancel := context.WithTimeout(context.Background(), 2**bootTimeout)
	defer cancel()
	if _, err := v.waitSerial(ctx, regexpMust(`entered promiscuous mode`)); err != nil {
		t.Fatal(err)
	}
	lap("boot to a running sensor")
	col.waitRegistered(ctx, t, func() string { return tail(v.serialLog, 30) })
	lap("registration at the collector")
	replayAndCompare(ctx, t, col, sniffAddr, filepath.Join("..", "demo", "plant.pcap"))
	lap("the plant capture's assets at the collector")
	checkPerm(t, v)
}
