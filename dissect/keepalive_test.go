package dissect

import "testing"

// One-octet TCP keep-alives before the first data do not use up the tries
// of an unclaimed flow.
func TestRegistryKeepAlivesAreNotTries(t *testing.T) {
	iec := &fake{name: "iec104", magic: "h", wants: Wants{TCPPorts: []uint16{2404}}}
	r := NewRegistry(iec)
	var o obs
	f := newFlow(2404)
	for i := 0; i < 2*DefaultMaxTries; i++ {
		r.Dispatch(tcpPacket(f, "\x00"), &o)
	}
	if f.App != 0 || f.Tries != 0 {
		t.Fatalf("after keep-alives: App %d, Tries %d; want 0, 0", f.App, f.Tries)
	}
	r.Dispatch(tcpPacket(f, "h\x04\x43\x00\x00\x00"), &o)
	if f.App <= 0 || iec.handled != 1 {
		t.Errorf("flow not claimed after keep-alives: App %d, handled %d", f.App, iec.handled)
	}
}
