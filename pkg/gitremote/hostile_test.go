//go:build !windows

package gitremote

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

const evilConfig = "[remote \"origin\"]\n\turl = http://127.0.0.1:18765/evil/project.git\n"

// TestAnotherUsersCheckoutIsNotRead: a .git another user made above the
// working directory (anyone may create /tmp/.git) names no remote, as git
// refuses it (safe.directory); the user's own is read.
func TestAnotherUsersCheckoutIsNotRead(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to hand the .git to another user (uid 65534)")
	}
	top := t.TempDir()
	if err := os.Chmod(top, 0o1777); err != nil {
		t.Fatal(err)
	}
	git := filepath.Join(top, ".git")
	if err := os.MkdirAll(git, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(git, "config"), []byte(evilConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(top, "victim")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	if len(Remotes(work)) != 1 {
		t.Fatalf("root's own checkout: remotes %v", Remotes(work))
	}
	for _, p := range []string{git, filepath.Join(git, "config")} {
		if err := os.Lchown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	if r := Remotes(work); len(r) != 0 {
		t.Errorf("another user's .git was read: %v", r)
	}
	// Their config in the user's own .git directory is not read either.
	if err := os.Lchown(git, 0, 0); err != nil {
		t.Fatal(err)
	}
	if r := Remotes(work); len(r) != 0 {
		t.Errorf("another user's config was read: %v", r)
	}
}

// TestGitFilesThatAreNotFiles: a .git (or its config) that is a FIFO or a
// device is not read: no hang in open, no endless read.
func TestGitFilesThatAreNotFiles(t *testing.T) {
	for name, plant := range map[string]func(path string) error{
		"a FIFO":    func(p string) error { return syscall.Mkfifo(p, 0o600) },
		"/dev/zero": func(p string) error { return os.Symlink("/dev/zero", p) },
	} {
		for _, where := range []string{".git", ".git/config"} {
			t.Run(name+" as "+where, func(t *testing.T) {
				dir := t.TempDir()
				if where == ".git/config" {
					if err := os.Mkdir(filepath.Join(dir, ".git"), 0o755); err != nil {
						t.Fatal(err)
					}
				}
				if err := plant(filepath.Join(dir, where)); err != nil {
					t.Fatal(err)
				}
				done := make(chan []Remote, 1)
				go func() { done <- Remotes(dir) }()
				select {
				case r := <-done:
					if len(r) != 0 {
						t.Errorf("remotes %v", r)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("still reading after 10s")
				}
			})
		}
	}
}
