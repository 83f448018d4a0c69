// Package status is what the sensor daemon tells the set-up front ends (the
// LCD menu and the serial console) about itself: registration and cloud
// state, capture counters, the inventory's size, the update in progress.
// The daemon writes it to one small file on /perm every few seconds; the
// front ends read it. It is a leaf package: it knows nothing of the
// daemon's internals.
package status

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// FileName is the status file's name inside the daemon's state directory.
const FileName = "status.json"

// Registration states, as the heartbeat and the front ends name them.
const (
	Unregistered = "unregistered" // no personalization code accepted yet
	Registering  = "registering"  // a code is set, the cloud has not answered
	Registered   = "registered"   // the cloud gave a sensor id, not yet sensing
	Sensing      = "sensing"      // registered and reporting
)

// Interface is one sniffing interface's counters.
type Interface struct {
	Name     string  `json:"name"`
	Up       bool    `json:"up"`
	SpeedMbs int     `json:"speed_mbs,omitempty"` // link speed, 0 when unknown
	RateBps  float64 `json:"rate_bps"`            // bits per second, last interval
	Packets  uint64  `json:"packets"`
	Drops    uint64  `json:"drops"`
}

// Update is the state of a software update the cloud ordered.
type Update struct {
	State   string `json:"state,omitempty"`   // "", downloading, verifying, writing, trial, committed, rolled-back, failed
	Version string `json:"version,omitempty"` // the version being installed
	Detail  string `json:"detail,omitempty"`  // progress or the reason of a failure
}

// Status is the daemon's state as the front ends show it.
type Status struct {
	Time         time.Time   `json:"time"` // when it was written
	Version      string      `json:"version"`
	OtherVersion string      `json:"other_version,omitempty"` // the inactive A/B slot's version
	Registration string      `json:"registration"`
	SensorID     string      `json:"sensor_id,omitempty"`
	CloudURL     string      `json:"cloud_url,omitempty"`
	CloudOK      bool        `json:"cloud_ok"`              // last contact with the cloud succeeded
	LastContact  time.Time   `json:"last_contact,omitzero"` // last successful contact
	CloudError   string      `json:"cloud_error,omitempty"` // why the last contact failed
	Interfaces   []Interface `json:"interfaces,omitempty"`
	Assets       int         `json:"assets"`        // assets in the inventory
	ActiveAssets int         `json:"active_assets"` // seen in the last hour
	SpoolBytes   int64       `json:"spool_bytes"`   // reports waiting for the cloud
	Update       Update      `json:"update,omitzero"`
}

// Write replaces dir/status.json atomically (temporary file, fsync,
// rename), so a reader never sees half a file and a power cut leaves the
// old or the new one.
func Write(dir string, s Status) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	f, err := os.CreateTemp(dir, FileName+".tmp-*")
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, FileName))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("status: write %s: %w", dir, err)
	}
	return nil
}

// Read returns the status the daemon last wrote in dir. A missing file is
// an error the front ends show as "sensor not running".
func Read(dir string) (Status, error) {
	var s Status
	data, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		return s, fmt.Errorf("status: %w", err)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("status: %s: %w", filepath.Join(dir, FileName), err)
	}
	return s, nil
}
