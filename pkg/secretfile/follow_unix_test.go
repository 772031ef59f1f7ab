//go:build unix

package secretfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// nobody is the other account the tests give links to.
const nobody = 65534

// needRoot skips a test that must hand a file to another user.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: only root can give a link to another user (os.Lchown) to play the second account")
	}
}

// sharedTmp is a directory like /tmp: world-writable, sticky.
func sharedTmp(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	return dir
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Another user plants /tmp/x.kubeconfig -> a file of the victim's; the
// victim's command must not write through it, nor through a planted
// directory link.
func TestALinkAnotherUserPlantedIsNotFollowed(t *testing.T) {
	needRoot(t)
	shared := sharedTmp(t)
	private := t.TempDir()
	precious := filepath.Join(private, "bashrc")
	if err := os.WriteFile(precious, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	planted := filepath.Join(shared, "x.kubeconfig")
	if err := os.Symlink(precious, planted); err != nil {
		t.Fatal(err)
	}
	plantedDir := filepath.Join(shared, "kube")
	if err := os.Symlink(private, plantedDir); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{planted, plantedDir} {
		if err := os.Lchown(l, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name  string
		write func() error
	}{
		{"Replace through the link", func() error { return Replace(planted, []byte("owned\n")) }},
		{"Replace through a directory link", func() error { return Replace(filepath.Join(plantedDir, "bashrc"), []byte("owned\n")) }},
		{"Write into a directory link", func() error { return Write(filepath.Join(plantedDir, "token"), []byte("glagent-x\n")) }},
	} {
		err := c.write()
		var untrusted *UntrustedLinkError
		if !errors.As(err, &untrusted) || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "belongs to") || !strings.Contains(err.Error(), "uid 65534") {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	if got := mustRead(t, precious); got != "precious\n" {
		t.Fatalf("the victim's file was written: %q", got)
	}
	if _, err := os.Lstat(filepath.Join(private, "token")); err == nil {
		t.Fatal("the token went into the directory the planted link names")
	}
	if fi, err := os.Lstat(planted); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the planted link was touched: %v %v", fi, err)
	}

	// Write replaces a link at the path itself (never writes through it):
	// the planted link goes, the victim's file stays.
	if err := Write(planted, []byte("glagent-x\n")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(planted); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file %v %v", fi, err)
	}
	if got := mustRead(t, precious); got != "precious\n" {
		t.Fatalf("the victim's file was written: %q", got)
	}

	// The same links, the user's own (here root's), are followed.
	own := filepath.Join(shared, "own.kubeconfig")
	if err := os.Symlink(precious, own); err != nil {
		t.Fatal(err)
	}
	if err := Replace(own, []byte("mine\n")); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, precious); got != "mine\n" {
		t.Fatalf("through the user's own link: %q", got)
	}
}

// A link of the user's in a directory others may write (and that is not
// sticky) could be swapped between the check and the write: not followed.
func TestALinkOthersCanSwapIsNotFollowed(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(real, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "config")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	err := Replace(link, []byte("new\n"))
	var untrusted *UntrustedLinkError
	if !errors.As(err, &untrusted) || !strings.Contains(err.Error(), "writable by everyone") {
		t.Fatalf("%v", err)
	}
	// Group-writable for a group that is not the user's own.
	if os.Geteuid() == 0 {
		if err := os.Chmod(dir, 0o775); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, 0, nobody); err != nil {
			t.Fatal(err)
		}
		if err := Replace(link, []byte("new\n")); !errors.As(err, &untrusted) || !strings.Contains(err.Error(), "writable by group") {
			t.Fatalf("group-writable: %v", err)
		}
		// A directory of another user's: that user may swap the link.
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, nobody, 0); err != nil {
			t.Fatal(err)
		}
		if err := Replace(link, []byte("new\n")); !errors.As(err, &untrusted) || !strings.Contains(err.Error(), "its directory") {
			t.Fatalf("another user's directory: %v", err)
		}
		if err := os.Chown(dir, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	if got := mustRead(t, real); got != "old\n" {
		t.Fatalf("written through: %q", got)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Replace(link, []byte("new\n")); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, real); got != "new\n" {
		t.Fatalf("%q", got)
	}
}

// The user's own links resolve as the kernel resolves them: chains,
// relative targets, directory links and ".." after a link.
func TestResolveFollowsTheUsersOwnLinks(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mk := func(p string) {
		if err := os.MkdirAll(filepath.Join(root, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, at string) {
		if err := os.Symlink(target, filepath.Join(root, at)); err != nil {
			t.Fatal(err)
		}
	}
	mk("dotfiles/kube")
	mk("home/.kube")
	mk("a/b")
	if err := os.WriteFile(filepath.Join(root, "dotfiles/kube/config"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	link("../../dotfiles/kube/config", "home/.kube/config") // relative
	link(filepath.Join(root, "home/.kube/config"), "home/config")
	link(filepath.Join(root, "dotfiles"), "home/df") // a directory
	link("a/b", "ab")
	link("loop2", "loop1")
	link("loop1", "loop2")
	for in, want := range map[string]string{
		"home/config":             "dotfiles/kube/config",
		"home/.kube/config":       "dotfiles/kube/config",
		"home/df/kube/config":     "dotfiles/kube/config",
		"home/df/kube/new":        "dotfiles/kube/new",
		"home/df/missing/sub/new": "dotfiles/missing/sub/new",
		"ab/../b-sibling":         "a/b-sibling", // ".." of the link's target
		"home/./df/../home/x":     "home/x",
	} {
		got, err := Resolve(root + "/" + in) // not Join: it would clean ".." away
		if err != nil || got != filepath.Join(root, want) {
			t.Errorf("%s: %s %v, want %s", in, got, err, want)
		}
	}
	wd, _ := os.Getwd()
	t.Chdir(filepath.Join(root, "home"))
	if got, err := Resolve("config"); err != nil || got != filepath.Join(root, "dotfiles/kube/config") {
		t.Errorf("relative path: %s %v", got, err)
	}
	t.Chdir(wd)
	if _, err := Resolve(filepath.Join(root, "loop1")); !errors.Is(err, syscall.ELOOP) {
		t.Errorf("a loop: %v", err)
	}
}

// Replace never puts a file in the place of a pipe, device or directory.
func TestReplaceOnlyReplacesRegularFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	for _, p := range []string{fifo, dir} {
		if err := Replace(p, []byte("x")); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("%s: %v", p, err)
		}
		if err := Write(p, []byte("x")); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Write %s: %v", p, err)
		}
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("%v %v", fi, err)
	}
}

// TestReplaceKeepsNoModeOfAPlantedFile: a file another user planted where
// the user writes (a sticky /tmp, as root) is replaced with mode 0600, not
// its 0666 that would let them rewrite the kubeconfig's exec entry; the
// user's own file keeps its mode, less others' write bits.
func TestReplaceKeepsNoModeOfAPlantedFile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to plant a file as another user (uid 65534)")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o1777); err != nil {
		t.Fatal(err)
	}
	planted := filepath.Join(dir, "ci.kubeconfig")
	if err := os.WriteFile(planted, []byte("planted"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(planted, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(planted, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := Replace(planted, []byte("ours")); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(planted); fi.Mode().Perm() != 0o600 {
		t.Errorf("the planted file's replacement has mode %v, want 0600", fi.Mode().Perm())
	}
	own := filepath.Join(t.TempDir(), "config")
	for _, tc := range []struct{ was, want os.FileMode }{{0o644, 0o644}, {0o666, 0o644}, {0o600, 0o600}} {
		if err := os.WriteFile(own, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(own, tc.was); err != nil {
			t.Fatal(err)
		}
		if err := Replace(own, []byte("y")); err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Stat(own); fi.Mode().Perm() != tc.want {
			t.Errorf("the user's %v file became %v, want %v", tc.was, fi.Mode().Perm(), tc.want)
		}
	}
}
