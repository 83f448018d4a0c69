package asset

import (
	"net/netip"
	"testing"
	"time"

	"github.com/passivesensor/sensor/capture"
	"github.com/passivesensor/sensor/dissect"
)

func TestSetClassesJudgesAgain(t *testing.T) {
	inv := NewInventory(DefaultClasses())
	now := time.Unix(1_700_000_000, 0)
	macA := capture.MAC{0x00, 0x1b, 0x1b, 1, 2, 3}
	for i, ip := range []string{"10.0.0.1", "10.0.0.2", "192.168.5.5"} {
		o := dissect.Observation{IP: netip.MustParseAddr(ip), Attr: dissect.AttrHostname, Value: "h" + ip, Time: now}
		if i == 0 {
			o.MAC = macA
		}
		inv.Observe(o)
	}
	if n := len(inv.Assets()); n != 3 {
		t.Fatalf("%d assets before, want 3: %+v", n, inv.Assets())
	}
	bad := Classes{Inventoried: []Range{{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Addressing: "bootp"}}}
	if err := inv.SetClasses(bad); err == nil {
		t.Fatal("invalid classes accepted")
	}
	c := Classes{
		Inventoried:    []Range{{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Addressing: AddressingDHCP}},
		NonInventoried: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/32")},
		ExcludedMACs:   []string{macA.String()},
	}
	if err := inv.SetClasses(c); err != nil {
		t.Fatal(err)
	}
	got := inv.Assets()
	if len(got) != 1 || got[0].ID != "ip:10.0.0.2" || got[0].Kind != NonInventoried {
		t.Fatalf("after new classes: %+v, want only ip:10.0.0.2 non-inventoried", got)
	}
	if k, _ := inv.Class(netip.MustParseAddr("192.168.5.5")); k != External {
		t.Fatalf("192.168.5.5 is %v, want external", k)
	}
}
