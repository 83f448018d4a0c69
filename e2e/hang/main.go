// Command hang stops the box dead, as a release with a runaway real-time
// thread would: after a delay it lifts the kernel's real-time throttling
// and spins one SCHED_FIFO thread on every CPU, so that no ordinary task
// runs again, gokrazy's init (which pings the hardware watchdog) included.
// Only the deliberately broken "hang" release of make e2e-update carries
// it: the watchdog has to reset the box, and the trial fall back.
package main

import (
	"flag"
	"log"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	delay := flag.Duration("delay", 15*time.Second, "how long the box runs before it hangs")
	flag.Parse()
	// A spinning goroutine must never be preempted: the runtime would park
	// its thread, and the CPU would be free again for a moment.
	if !strings.Contains(os.Getenv("GODEBUG"), "asyncpreemptoff=1") {
		exe, err := os.Executable()
		if err != nil {
			log.Fatal(err)
		}
		env := append(os.Environ(), "GODEBUG=asyncpreemptoff=1")
		log.Fatal(syscall.Exec(exe, os.Args, env))
	}
	time.Sleep(*delay)
	if err := os.WriteFile("/proc/sys/kernel/sched_rt_runtime_us", []byte("-1\n"), 0o644); err != nil {
		log.Printf("lifting real-time throttling: %v", err)
	}
	n := runtime.NumCPU()
	log.Printf("hanging the box: spinning on %d CPUs at SCHED_FIFO", n)
	time.Sleep(100 * time.Millisecond) // let the line reach the log
	for cpu := range n {
		go spin(cpu)
	}
	select {}
}

// spin takes one CPU for good.
func spin(cpu int) {
	runtime.LockOSThread()
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		log.Printf("cpu %d: affinity: %v", cpu, err)
	}
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: 1 /* SCHED_FIFO */, Priority: 50}
	if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
		log.Printf("cpu %d: SCHED_FIFO: %v", cpu, err)
	}
	for {
	}
}
