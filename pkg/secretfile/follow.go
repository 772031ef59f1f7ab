package secretfile

import "fmt"

// A symbolic link on a path the plugin writes is followed only when nobody
// but the user and root could have put it there or could swap it:
//
//   - the link belongs to the user or to root, and
//   - its directory belongs to the user or to root, and either has the
//     sticky bit (as /tmp: there only a link's owner, the directory's owner
//     and root may rename or remove it) or is writable by no one else (not
//     by all; by its group only when that group is the user's own, named
//     after the user, as user private groups are).
//
// The kernel's fs.protected_symlinks does not help: Go resolves the link
// itself (filepath.EvalSymlinks), and the kernel only sees the target. The
// rule is stricter than the kernel's (which trusts a link another user owns
// when that user also owns the sticky directory): a link in a shared
// directory that someone else made is never followed.

// UntrustedLinkError is a symbolic link that someone else could have planted
// or could swap, to make the command write over another file of the user's.
type UntrustedLinkError struct {
	Link string
	Why  string
}

func (e *UntrustedLinkError) Error() string {
	return fmt.Sprintf("not following the symbolic link %s: %s, so it could point this write at any file of yours; remove the link or give another path", e.Link, e.Why)
}

// maxLinks bounds the links followed in one path, as the kernel's ELOOP.
const maxLinks = 40
