//go:build unix

package tunnel

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/input"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/secretfile"
)

// Another user plants /tmp/x.kubeconfig, a link to the victim's own
// kubeconfig, in the sticky /tmp that CI runners share; the victim then runs
// `kubeconfig --kubeconfig /tmp/x.kubeconfig` or `proxy --kubeconfig-out
// /tmp/x.kubeconfig`. Neither writes through the link.
func TestKubeconfigWritesRefuseALinkAnotherUserPlanted(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: only root can give a link to another user (os.Lchown) to play the second account")
	}
	shared := t.TempDir()
	if err := os.Chmod(shared, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	victims := filepath.Join(t.TempDir(), "config") // ~/.kube/config
	if err := os.WriteFile(victims, []byte(handWritten), 0o600); err != nil {
		t.Fatal(err)
	}
	planted := filepath.Join(shared, "x.kubeconfig")
	if err := os.Symlink(victims, planted); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(planted, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, errKubeconfig := WriteKubeconfig(ctx, planted, entry("/usr/local/bin/kubectl-gitlab_agent"))
	t.Setenv("KUBECONFIG", planted)
	_, errEnv := WriteKubeconfig(ctx, "", entry("/usr/local/bin/kubectl-gitlab_agent"))
	errProxy := WriteProxyKubeconfig(planted, "http://127.0.0.1:8001", "prod")
	for what, err := range map[string]error{"kubeconfig --kubeconfig": errKubeconfig, "kubeconfig with KUBECONFIG": errEnv, "proxy --kubeconfig-out": errProxy} {
		var untrusted *secretfile.UntrustedLinkError
		if !errors.As(err, &untrusted) || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "uid 65534") {
			t.Errorf("%s: %v", what, err)
		}
	}
	if b, _ := os.ReadFile(victims); string(b) != handWritten {
		t.Fatalf("the victim's kubeconfig was written:\n%s", b)
	}
	if _, err := os.Stat(planted + ".lock"); err == nil {
		t.Error("the lock was left behind")
	}
}

// People link ~/.kube/config to their dotfiles: that link is theirs, in
// their own directory, and is followed (it stays a link).
func TestKubeconfigWritesFollowTheUsersOwnLink(t *testing.T) {
	home := t.TempDir()
	dotfiles := filepath.Join(home, "dotfiles", "kube", "config")
	if err := os.MkdirAll(filepath.Dir(dotfiles), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dotfiles, []byte(handWritten), 0o640); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(home, ".kube", "config")
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../dotfiles/kube/config", link); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteKubeconfig(context.Background(), link, entry("/usr/local/bin/kubectl-gitlab_agent")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v %v", fi, err)
	}
	b, _ := os.ReadFile(dotfiles)
	if !strings.Contains(string(b), "gitlab_example_com-infra_agents-prod") || !strings.HasPrefix(string(b), handWritten[:40]) {
		t.Fatalf("%s", b)
	}
	if fi, _ := os.Stat(dotfiles); fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
	if err := WriteProxyKubeconfig(link, "http://127.0.0.1:8001", "prod"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dotfiles); !strings.Contains(string(b), "gitlab-agent-proxy-prod") {
		t.Fatalf("%s", b)
	}
}

// A kubeconfig that is a FIFO with no writer, /dev/zero or a directory: the
// plugin's own reads (the file kubeconfig edits, every file of $KUBECONFIG,
// --ci's read of GitLab's injected one) refuse it at once rather than wait
// in open() or read without end.
func TestKubeconfigReadsRefuseWhatIsNotAFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	good := filepath.Join(dir, "config")
	if err := os.WriteFile(good, []byte(handWritten), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background() // no deadline: a wait would hang the test
	for _, bad := range []string{fifo, "/dev/zero", dir} {
		calls := map[string]func() error{
			"WriteKubeconfig": func() error {
				_, err := WriteKubeconfig(ctx, bad, entry("/usr/local/bin/kubectl-gitlab_agent"))
				return err
			},
			"WriteKubeconfig with KUBECONFIG": func() error {
				t.Setenv("KUBECONFIG", good+string(os.PathListSeparator)+bad)
				_, err := WriteKubeconfig(ctx, "", entry("/usr/local/bin/kubectl-gitlab_agent"))
				return err
			},
			"LoadKubeconfigs": func() error {
				t.Setenv("KUBECONFIG", good+string(os.PathListSeparator)+bad)
				_, err := LoadKubeconfigs(ctx)
				return err
			},
		}
		for name, call := range calls {
			err := unblocking(t, fifo, call)
			var nr *input.NotRegularError
			if !errors.As(err, &nr) || !strings.Contains(err.Error(), bad+" is a") || strings.Contains(err.Error(), "\n") {
				t.Errorf("%s on %s: %v", name, bad, err)
			}
		}
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("the FIFO was replaced: %v %v", fi, err)
	}
	if b, _ := os.ReadFile(good); string(b) != handWritten {
		t.Fatal("the good kubeconfig was written")
	}
}

// unblocking runs call; should call wait in opening fifo for a writer (the
// bug), a writer comes and goes, so that the test fails instead of hanging.
func unblocking(t *testing.T, fifo string, call func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- call() }()
	for {
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Millisecond):
		}
		if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close() // a reader was waiting: it reads an empty file now
		}
	}
}
