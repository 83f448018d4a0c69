package permfs

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// FileAt is a partition inside a disk image file or a whole-disk block
// device: byte 0 of the partition is byte Off of File. It is a Device and
// a Zeroer, and reads with ReadAt.
type FileAt struct {
	File *os.File
	Off  int64
}

func (p FileAt) ReadAt(b []byte, off int64) (int, error)  { return p.File.ReadAt(b, p.Off+off) }
func (p FileAt) WriteAt(b []byte, off int64) (int, error) { return p.File.WriteAt(b, p.Off+off) }
func (p FileAt) Sync() error                              { return p.File.Sync() }

// Zero zeros n bytes from off: BLKZEROOUT on a block device (the device
// may then write zeros without transferring them), a punched hole in a
// regular file; by writing zeros where neither works.
func (p FileAt) Zero(off, n int64) error {
	if st, err := p.File.Stat(); err == nil {
		fd := p.File.Fd()
		if st.Mode()&os.ModeDevice != 0 {
			r := [2]uint64{uint64(p.Off + off), uint64(n)}
			if _, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, unix.BLKZEROOUT, uintptr(unsafe.Pointer(&r[0]))); errno == 0 {
				return nil
			}
		} else if unix.Fallocate(int(fd), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, p.Off+off, n) == nil {
			return nil
		}
	}
	return writeZeros(p, off, n)
}
