// Package plugin builds the plugin binary for the tests and benchmarks that
// run it the way users do.
package plugin

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// Name is the binary's file name: kubectl runs it for `kubectl gitlab-agent`.
const Name = "kubectl-gitlab_agent"

// Repo is the repository's root directory.
func Repo() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Build builds the plugin from the working tree as dir/kubectl-gitlab_agent,
// with the version string given (none: the build's default), and returns
// its path.
func Build(ctx context.Context, dir, version string) (string, error) {
	return build(ctx, Repo(), filepath.Join(dir, Name), version)
}

// BuildAt builds the plugin as it was at git ref (a commit, a tag) into
// dir, for a benchmark beside an earlier build, and returns its path.
func BuildAt(ctx context.Context, ref, dir string) (string, error) {
	src := filepath.Join(dir, "src-"+ref)
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	archive := exec.CommandContext(ctx, "sh", "-c", `git archive --format=tar "$0" | tar -x -C "$1"`, ref, src)
	archive.Dir = Repo()
	if out, err := archive.CombinedOutput(); err != nil {
		return "", fmt.Errorf("git archive %s: %v\n%s", ref, err, out)
	}
	return build(ctx, src, filepath.Join(dir, Name+"-"+ref), "")
}

// build builds into out, stripped as releases are. The linker writes its
// output through a memory map, and a binary written that way is mapped with
// more of it resident when it runs (seen: 57 MB RSS for `version`, 37 MB for
// the same bytes written by cp or tar); so the binary is then copied, as
// krew's tar extraction or a package manager writes it: memory figures are
// the ones users see.
func build(ctx context.Context, src, out, version string) (string, error) {
	linked := out + ".linked"
	// -s -w as .goreleaser.yaml builds releases: no symbol table and no
	// DWARF, which also makes the link a third faster.
	ldflags := "-s -w"
	if version != "" {
		ldflags += " -X github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/version.version=" + version
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", linked, "-ldflags", ldflags, "./cmd/kubectl-gitlab_agent")
	cmd.Dir = src
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the plugin in %s: %v\n%s", src, err, b)
	}
	defer os.Remove(linked)
	return out, copyFile(linked, out)
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	f, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, in); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
