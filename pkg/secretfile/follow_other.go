//go:build !unix

package secretfile

import (
	"errors"
	"io/fs"
	"path/filepath"
)

// Resolve is path with its symbolic links followed. Windows has no link
// owners to check: creating a symbolic link there needs an administrator
// or Developer Mode, and users do not share a sticky temporary directory.
func Resolve(path string) (string, error) {
	real, err := filepath.EvalSymlinks(path)
	if errors.Is(err, fs.ErrNotExist) {
		return filepath.Abs(path)
	}
	return real, err
}

// ownedBySelf: Windows reports no owner here; a file counts as the user's.
func ownedBySelf(fs.FileInfo) bool { return true }
