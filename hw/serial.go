package hw

import (
	"fmt"

	"go.bug.st/serial"
)

// OpenSerial opens a serial console device at 115200 8N1. The modem
// status lines are left as they are (Mode.InitialStatusBits nil), which a
// pty, as used in tests, requires.
func OpenSerial(dev string) (serial.Port, error) {
	p, err := serial.Open(dev, &serial.Mode{BaudRate: 115200, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit})
	if err != nil {
		return nil, fmt.Errorf("serial: opening %s: %w", dev, err)
	}
	return p, nil
}
