//go:build !windows

package gitremote

import (
	"os"
	"syscall"
)

// ownedBySelfOrRoot reports whether the user running this, or root, owns fi.
func ownedBySelfOrRoot(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	return int(st.Uid) == os.Geteuid() || st.Uid == 0
}

// openNoWait opens path for reading without waiting for a FIFO's writer.
func openNoWait(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}
