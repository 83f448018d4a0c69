//go:build linux

package capture

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A burst of 2590 frames sent while the reader is busy waits in the raw
// socket's receive buffer and is handed out whole, with no drop.
func TestLiveRawBurst(t *testing.T) {
	lab := newNetnsLab(t)
	file := liveCorpus(t, liveFileMany)
	want := liveFileFrames(t, file)
	sniffIf, sendIf := lab.addVeth(t)
	var src Source
	err := lab.Do(lab.Sniff, func() (err error) {
		src, err = OpenRaw(sniffIf)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var rcvbuf int
	src.(*rawSource).rc.Control(func(fd uintptr) {
		rcvbuf, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	})
	if err != nil || rcvbuf < rawRcvBuf {
		t.Errorf("receive buffer %d bytes (%v), want at least %d", rcvbuf, err, rawRcvBuf)
	}
	// Nobody reads while the file is sent.
	lab.replay(t, sendIf, file)
	rec := liveRecord([]Source{src})
	rec.waitQuiet(300*time.Millisecond, 5*time.Second)
	st := src.Stats()
	rec.stop(t, 0, 0)
	if d := liveDiff(rec.bySrc[0], want); d != "" || st.KernelDrops != 0 {
		t.Errorf("burst into the raw socket: %s; %d kernel drops", d, st.KernelDrops)
	}
}
