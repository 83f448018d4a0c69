package settings_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/passivesensor/sensor/settings"
)

// A front end checks each field as it is typed, then commits the change
// with Update, which keeps whatever the other front end changed meanwhile.
func Example() {
	dir, _ := os.MkdirTemp("", "settings-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "sensor", "settings.json")

	s, st, _ := settings.Load(path)
	fmt.Println(st.Source, s.Mode)

	if err := settings.ValidateGateway("10.0.1.1", "10.0.0.5/24"); err != nil {
		fmt.Println(err)
	}
	s, err := settings.Update(path, func(s *settings.Settings) error {
		s.Mode = settings.ModeStatic
		s.Address, s.Gateway = "10.0.0.5/24", "10.0.0.1"
		s.Proxy = settings.Proxy{Address: "proxy:3128", User: "sensor", Password: "hunter2"}
		return nil
	})
	if err != nil {
		fmt.Println(err)
	}
	fmt.Println(s)
	// Output:
	// missing dhcp
	// gateway 10.0.1.1 is not inside 10.0.0.0/24
	// v2 static address 10.0.0.5/24 gateway 10.0.0.1 proxy proxy:3128 user sensor password [redacted]
}
