// Command hang makes a box hang the way gokrazy's hardware watchdog is
// there to catch: after a delay it freezes every thread of PID 1, gokrazy's
// init, with ptrace. Init supervises the services, serves the box's HTTP
// API (the updater's health check asks it about the sensor) and pings the
// watchdog once a second; frozen, it does none of that, and the watchdog
// resets the box. Only the deliberately broken "hang" release of make
// e2e-update carries it.
//
// Starving init with real-time threads does not do: since Linux 6.12 the
// fair-class deadline server keeps 5% of each CPU for ordinary tasks even
// with real-time throttling off, and init's pings need far less.
package main

import (
	"flag"
	"log"
	"os"
	"runtime"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	delay := flag.Duration("delay", 15*time.Second, "how long the box runs before it hangs")
	flag.Parse()
	time.Sleep(*delay)
	// Said now: init reads the services' output, and will not again.
	log.Printf("hanging the box: stopping every thread of init")
	// ptrace requests come from the thread that attached; it must live
	// on, or the tracees run again.
	runtime.LockOSThread()
	frozen := map[int]bool{}
	for {
		tids, err := os.ReadDir("/proc/1/task")
		if err != nil {
			log.Fatal(err)
		}
		more := false
		for _, e := range tids {
			tid, err := strconv.Atoi(e.Name())
			if err != nil || frozen[tid] {
				continue
			}
			more = true
			if err := unix.PtraceSeize(tid); err != nil {
				log.Fatalf("seize init thread %d: %v", tid, err)
			}
			if err := unix.PtraceInterrupt(tid); err != nil {
				log.Fatalf("stop init thread %d: %v", tid, err)
			}
			frozen[tid] = true
		}
		if !more { // no thread started while we stopped the others
			break
		}
	}
	for {
		time.Sleep(time.Hour)
	}
}
