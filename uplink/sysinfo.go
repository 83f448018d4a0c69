package uplink

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// HardwareID identifies the box to the cloud: the systemd/gokrazy machine
// id, the management interface's MAC and the DMI product serial, each when
// present, as "machine-id=...;mac=...;dmi-serial=...". A box with none of
// them (no machine-id, no such interface, no DMI) sends "unknown".
func HardwareID(mgmtIface string) string {
	var parts []string
	for _, p := range []string{"/etc/machine-id", "/perm/machine-id", "/var/lib/dbus/machine-id"} {
		if b, err := os.ReadFile(p); err == nil {
			if id := strings.TrimSpace(string(b)); id != "" {
				parts = append(parts, "machine-id="+id)
				break
			}
		}
	}
	if mgmtIface == "" {
		mgmtIface = firstEthernet()
	}
	if mgmtIface != "" {
		if ifi, err := net.InterfaceByName(mgmtIface); err == nil && len(ifi.HardwareAddr) == 6 {
			parts = append(parts, "mac="+ifi.HardwareAddr.String())
		}
	}
	if b, err := os.ReadFile("/sys/class/dmi/id/product_serial"); err == nil {
		if s := strings.TrimSpace(string(b)); s != "" && !strings.EqualFold(s, "none") && !strings.Contains(strings.ToLower(s), "to be filled") {
			parts = append(parts, "dmi-serial="+s)
		}
	}
	if len(parts) == 0 {
		return "unknown"
	}
	return strings.Join(parts, ";")
}

// firstEthernet is the first non-loopback interface with a MAC, by index.
func firstEthernet() string {
	ifs, err := net.Interfaces()
	if err != nil {
		return ""
	}
	for _, ifi := range ifs {
		if ifi.Flags&net.FlagLoopback == 0 && len(ifi.HardwareAddr) == 6 {
			return ifi.Name
		}
	}
	return ""
}

// CPUSample is a reading of /proc/stat's aggregate cpu line.
type CPUSample struct{ Busy, Total uint64 }

// ReadCPU reads /proc/stat.
func ReadCPU() (CPUSample, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return CPUSample{}, err
	}
	return parseCPU(b)
}

func parseCPU(b []byte) (CPUSample, error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return CPUSample{}, fmt.Errorf("uplink: /proc/stat: first line %q is not the cpu line", line)
	}
	var s CPUSample
	for i, v := range f[1:] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return CPUSample{}, fmt.Errorf("uplink: /proc/stat: field %d %q", i+1, v)
		}
		s.Total += n
		if i != 3 && i != 4 { // idle, iowait
			s.Busy += n
		}
	}
	return s, nil
}

// CPUPercent is the busy share between two samples, 0..100.
func CPUPercent(prev, cur CPUSample) uint8 {
	if cur.Total <= prev.Total || cur.Busy < prev.Busy {
		return 0
	}
	p := (cur.Busy - prev.Busy) * 100 / (cur.Total - prev.Total)
	return uint8(min(p, 100))
}

// RAMPercent is the share of memory in use (MemTotal - MemAvailable) from
// /proc/meminfo, 0..100.
func RAMPercent() (uint8, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var total, avail uint64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "MemTotal":
			total = n
		case "MemAvailable":
			avail = n
		}
	}
	if total == 0 || avail > total {
		return 0, fmt.Errorf("uplink: /proc/meminfo without MemTotal/MemAvailable")
	}
	return uint8((total - avail) * 100 / total), nil
}

// Uptime is the system's uptime in seconds from /proc/uptime.
func Uptime() uint64 {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return uint64(v)
}

// LinkInfo is a network interface's link state and speed from sysfs.
func LinkInfo(name string) (up bool, mbps uint32) {
	b, err := os.ReadFile("/sys/class/net/" + name + "/operstate")
	if err == nil {
		s := strings.TrimSpace(string(b))
		up = s == "up" || s == "unknown"
	}
	if b, err := os.ReadFile("/sys/class/net/" + name + "/speed"); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 {
			mbps = uint32(n)
		}
	}
	return up, mbps
}

// IfaceCounters are a network interface's receive counters from sysfs.
type IfaceCounters struct {
	Packets, Bytes, Drops uint64
}

// ReadIfaceCounters reads /sys/class/net/NAME/statistics (rx_packets,
// rx_bytes, rx_dropped plus rx_missed_errors).
func ReadIfaceCounters(name string) IfaceCounters {
	read := func(f string) uint64 {
		b, err := os.ReadFile("/sys/class/net/" + name + "/statistics/" + f)
		if err != nil {
			return 0
		}
		n, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		return n
	}
	return IfaceCounters{Packets: read("rx_packets"), Bytes: read("rx_bytes"), Drops: read("rx_dropped") + read("rx_missed_errors")}
}
