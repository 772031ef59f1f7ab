// Package cluster runs a real Kubernetes control plane for tests: etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler built from the Go
// module proxy, and kwok so that fake nodes run pods and Deployments roll out.
package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// The versions the tools modules under tools/ pin. Change them together with
// those go.mod files.
const (
	KubeVersion = "v1.37.2"
	EtcdVersion = "v3.7.3"
	KwokVersion = "v0.8.0"
)

// Binary names inside the cache directory.
const (
	Etcd              = "etcd"
	KubeAPIServer     = "kube-apiserver"
	KubeControllerMgr = "kube-controller-manager"
	KubeScheduler     = "kube-scheduler"
	Kwok              = "kwok"
	// KwokStages is the kwok configuration with the "fast" node and pod stages.
	KwokStages = "kwok-stages.yaml"
)

// buildRecipe is bumped when the way binaries are built changes, so that old
// caches are not reused.
const buildRecipe = "1"

// toolsDir is test/cluster/tools in this checkout.
func toolsDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "tools")
}

// CacheRoot is where built binaries are kept between runs: $KGA_TESTBIN_DIR,
// else <user cache dir>/kubectl-gitlab-agent/testbin.
func CacheRoot() (string, error) {
	if d := os.Getenv("KGA_TESTBIN_DIR"); d != "" {
		return d, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding the user cache directory (set KGA_TESTBIN_DIR): %w", err)
	}
	return filepath.Join(base, "kubectl-gitlab-agent", "testbin"), nil
}

// cacheKey names the binaries' directory after the versions and a hash of the
// tools modules, so a change of pins or Go version builds afresh.
func cacheKey() (string, error) {
	sum, err := modulesHash(buildRecipe, "kube", "etcd", "kwok")
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("k8s-%s-etcd-%s-kwok-%s-%s", KubeVersion, EtcdVersion, KwokVersion, sum), nil
}

// modulesHash hashes the recipe, the Go version and the go.mod and go.sum of
// the named tools modules.
func modulesHash(recipe string, modules ...string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "recipe=%s go=%s %s/%s\n", recipe, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	for _, m := range modules {
		for _, f := range []string{"go.mod", "go.sum"} {
			b, err := os.ReadFile(filepath.Join(toolsDir(), m, f))
			if err != nil {
				return "", fmt.Errorf("reading tools module: %w", err)
			}
			fmt.Fprintf(h, "%s/%s\n", m, f)
			h.Write(b)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

// kubeLDFlags makes the components report KubeVersion from /version, as a
// release build would.
func kubeLDFlags() string {
	minor := strings.Split(strings.TrimPrefix(KubeVersion, "v"), ".")[1]
	flags := []string{"-s", "-w"}
	for _, p := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		flags = append(flags,
			"-X", p+".gitVersion="+KubeVersion,
			"-X", p+".gitMajor=1",
			"-X", p+".gitMinor="+minor,
			"-X", p+".gitTreeState=clean",
			"-X", p+".buildDate=2026-01-01T00:00:00Z",
		)
	}
	return strings.Join(flags, " ")
}

// EnsureBinaries returns the directory holding the control-plane binaries,
// building them first if this version has not been built on this machine.
// Concurrent callers (test packages run in parallel) wait for one build.
func EnsureBinaries(ctx context.Context, log io.Writer) (string, error) {
	key, err := cacheKey()
	if err != nil {
		return "", err
	}
	files := []string{Etcd, KubeAPIServer, KubeControllerMgr, KubeScheduler, Kwok, KwokStages}
	return ensureBuilt(ctx, log, key, files, func(tmp string) error {
		fmt.Fprintf(log, "building test control plane %s (cold builds take ~10 minutes on 2 cores)\n", key)
		if err := goBuild(ctx, log, "etcd", "-o", filepath.Join(tmp, Etcd), "go.etcd.io/etcd/server/v3"); err != nil {
			return err
		}
		if err := goBuild(ctx, log, "kwok", "-o", filepath.Join(tmp, Kwok), "sigs.k8s.io/kwok/cmd/kwok"); err != nil {
			return err
		}
		if err := goBuild(ctx, log, "kube", "-ldflags", kubeLDFlags(), "-o", tmp+string(os.PathSeparator),
			"k8s.io/kubernetes/cmd/kube-apiserver",
			"k8s.io/kubernetes/cmd/kube-controller-manager",
			"k8s.io/kubernetes/cmd/kube-scheduler"); err != nil {
			return err
		}
		return writeKwokStages(ctx, filepath.Join(tmp, KwokStages))
	})
}

// ensureBuilt returns CacheRoot/key, first running build into a temporary
// directory that becomes it if any of files is missing there. One lock file
// serialises the builds of every caller and process: two cores cannot run two
// cold builds at once in reasonable time.
func ensureBuilt(ctx context.Context, log io.Writer, key string, files []string, build func(tmp string) error) (string, error) {
	root, err := CacheRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, key)
	if complete(dir, files) {
		return dir, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("creating %s: %w", root, err)
	}
	unlock, err := lockFile(filepath.Join(root, ".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if complete(dir, files) { // built by another process while we waited
		return dir, nil
	}
	tmp, err := os.MkdirTemp(root, ".build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	start := time.Now()
	if err := build(tmp); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("moving binaries into the cache: %w", err)
	}
	fmt.Fprintf(log, "%s built in %s into %s\n", key, time.Since(start).Round(time.Second), dir)
	return dir, nil
}

// goBuild runs `go build args...` in the tools module named module, outside
// any workspace.
func goBuild(ctx context.Context, log io.Writer, module string, args ...string) error {
	return goBuildIn(ctx, log, filepath.Join(toolsDir(), module), module, args...)
}

func goBuildIn(ctx context.Context, log io.Writer, dir, what string, args ...string) error {
	t := time.Now()
	cmd := exec.CommandContext(ctx, "go", append([]string{"build"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building %s: %w", what, err)
	}
	fmt.Fprintf(log, "  built %s in %s\n", what, time.Since(t).Round(time.Second))
	return nil
}

// moduleDir is the directory of the module path that the tools module named
// module requires, downloaded if needed.
func moduleDir(ctx context.Context, module, path string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", path)
	cmd.Dir = filepath.Join(toolsDir(), module)
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("locating the %s module: %w", path, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// complete reports whether dir holds every file.
func complete(dir string, files []string) bool {
	for _, b := range files {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return false
		}
	}
	return true
}

// writeKwokStages concatenates kwok's own "fast" stages (the ones kwokctl uses
// by default) from the pinned kwok module: nodes become Ready at once and
// renew their leases; pods become Ready at once and are removed on delete.
func writeKwokStages(ctx context.Context, dst string) error {
	mod, err := moduleDir(ctx, "kwok", "sigs.k8s.io/kwok")
	if err != nil {
		return err
	}
	src := filepath.Join(mod, "kustomize", "stage")
	var docs []string
	for _, f := range []string{
		"node/fast/node-initialize.yaml",
		"node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
		"pod/fast/pod-ready.yaml",
		"pod/fast/pod-complete.yaml",
		"pod/fast/pod-delete.yaml",
	} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			return fmt.Errorf("reading kwok stage: %w", err)
		}
		docs = append(docs, strings.TrimSpace(string(b)))
	}
	return os.WriteFile(dst, []byte(strings.Join(docs, "\n---\n")+"\n"), 0o644)
}
