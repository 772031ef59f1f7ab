//go:build !unix

package input

import (
	"fmt"
	"os"
)

// openNoWait opens path for reading; what is not a regular file is refused
// before the open (Windows has no FIFOs in the file system to wait on).
func openNoWait(path string) (*os.File, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is %s, not a regular file", path, kind(fi.Mode()))
	}
	return os.Open(path)
}
