//go:build unix

package input

import (
	"os"
	"syscall"
)

// openNoWait opens path for reading without waiting for a FIFO's writer
// (O_NONBLOCK; a regular file reads as ever).
func openNoWait(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}
