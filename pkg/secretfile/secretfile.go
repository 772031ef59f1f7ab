// Package secretfile writes files that hold secrets: mode 0600 from the
// first byte, and atomically, so that a reader sees the old file or the whole
// new one and an interrupted write leaves no partial token behind.
package secretfile

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Write replaces path with data, mode 0600. A symbolic link at path is
// replaced, not followed; links on the way to its directory are followed
// as Resolve allows.
func Write(path string, data []byte) error {
	dir, err := Resolve(filepath.Dir(path))
	if err != nil {
		return err
	}
	path = filepath.Join(dir, filepath.Base(path))
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() && fi.Mode()&fs.ModeSymlink == 0 {
		return notRegular(path, fi)
	}
	return write(path, data, 0o600)
}

// Replace replaces the file at path (following a symbolic link to the file
// it points at, so that the link stays, when Resolve allows it) with data,
// keeping the mode of a file the user owns, less any write bit for others;
// a new file, or one another user planted, gets mode 0600.
func Replace(path string, data []byte) error {
	path, err := Resolve(path)
	if err != nil {
		return err
	}
	mode := os.FileMode(0o600)
	if fi, err := os.Lstat(path); err == nil {
		if !fi.Mode().IsRegular() {
			return notRegular(path, fi)
		}
		if ownedBySelf(fi) {
			// The user's mode (0644 for a shared kubeconfig), but no one
			// else may rewrite it: an exec entry runs as the user.
			mode = fi.Mode().Perm() &^ 0o022
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return write(path, data, mode)
}

// notRegular refuses to put a file in the place of a device, a pipe or a
// directory (root could replace /dev/null).
func notRegular(path string, fi fs.FileInfo) error {
	return fmt.Errorf("%s is %s, not a regular file: give the path of a file", path, kind(fi.Mode()))
}

// kind names what a non-regular file is, for messages: "a directory", ...
func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m.IsRegular():
		return "a regular file"
	}
	return "a special file"
}

func write(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
