//go:build unix

package secretfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Resolve is path with every symbolic link on it (the file's and its
// directories') followed, each only when trustLink allows it, resolved as the
// kernel would ("a/link/.." is the parent of the link's target). A path whose
// tail does not exist yet is resolved as far as it exists.
func Resolve(path string) (string, error) {
	if path == "" {
		return "", errors.New("empty path")
	}
	todo := path
	if !filepath.IsAbs(path) {
		wd, err := os.Getwd()
		if err != nil {
			return "", err
		}
		todo = wd + "/" + path
	}
	resolved := "/"
	links := 0
	for todo != "" {
		var c string
		c, todo, _ = strings.Cut(todo, "/")
		switch c {
		case "", ".":
			continue
		case "..":
			resolved = filepath.Dir(resolved)
			continue
		}
		next := filepath.Join(resolved, c)
		fi, err := os.Lstat(next)
		if errors.Is(err, fs.ErrNotExist) {
			return filepath.Join(next, todo), nil
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			resolved = next
			continue
		}
		if links++; links > maxLinks {
			return "", &fs.PathError{Op: "resolve", Path: path, Err: syscall.ELOOP}
		}
		if err := trustLink(next, fi); err != nil {
			return "", err
		}
		target, err := os.Readlink(next)
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(target, "/") {
			resolved = "/"
		}
		todo = target + "/" + todo
	}
	return resolved, nil
}

// trustLink says why the link at path (its directory already resolved)
// must not be followed, or nil: see the rule in follow.go.
func trustLink(path string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	me := uint32(os.Geteuid())
	if st.Uid != me && st.Uid != 0 {
		return &UntrustedLinkError{Link: path, Why: "it belongs to " + owner(st.Uid) + ", not to you or root"}
	}
	dir := filepath.Dir(path)
	di, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	dst, ok := di.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if dst.Uid != me && dst.Uid != 0 {
		return &UntrustedLinkError{Link: path, Why: "its directory " + dir + " belongs to " + owner(dst.Uid) + ", who may replace the link"}
	}
	mode := di.Mode()
	switch {
	case mode&fs.ModeSticky != 0:
		// Only the link's owner, the directory's owner and root may
		// rename or remove an entry here: all are you or root.
	case mode&0o002 != 0:
		return &UntrustedLinkError{Link: path, Why: fmt.Sprintf("its directory %s is writable by everyone (mode %04o, no sticky bit), who may replace the link", dir, mode.Perm())}
	case mode&0o020 != 0 && !ownGroup(dst.Gid):
		return &UntrustedLinkError{Link: path, Why: fmt.Sprintf("its directory %s is writable by group %s (mode %04o), whose members may replace the link", dir, group(dst.Gid), mode.Perm())}
	}
	return nil
}

// owner names a uid for a message: "nobody (uid 65534)", or "uid 65534".
func owner(uid uint32) string {
	id := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(id); err == nil && u.Username != "" {
		return u.Username + " (uid " + id + ")"
	}
	return "uid " + id
}

func group(gid uint32) string {
	id := strconv.FormatUint(uint64(gid), 10)
	if g, err := user.LookupGroupId(id); err == nil && g.Name != "" {
		return g.Name + " (gid " + id + ")"
	}
	return "gid " + id
}

// ownGroup reports the user's private group: the primary group, named after
// the user (Debian's and Ubuntu's umask 002 makes directories group-writable
// for it).
func ownGroup(gid uint32) bool {
	if gid != uint32(os.Getegid()) {
		return false
	}
	u, err := user.Current()
	if err != nil {
		return false
	}
	g, err := user.LookupGroupId(strconv.FormatUint(uint64(gid), 10))
	return err == nil && g.Name == u.Username
}

// ownedBySelf reports whether the user running this owns fi.
func ownedBySelf(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid()
}
