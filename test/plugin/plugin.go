// Package plugin builds the plugin binary for the tests and benchmarks that
// run it the way users do.
package plugin

import (
	"context"
	"fmt"
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

func build(ctx context.Context, src, out, version string) (string, error) {
	args := []string{"build", "-o", out}
	if version != "" {
		args = append(args, "-ldflags", "-X github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/version.version="+version)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "./cmd/kubectl-gitlab_agent")...)
	cmd.Dir = src
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the plugin in %s: %v\n%s", src, err, b)
	}
	return out, nil
}
