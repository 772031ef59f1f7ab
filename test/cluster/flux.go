package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The versions the Flux tools modules pin. Change them together with those
// go.mod files (tools/source-controller, tools/kustomize-controller).
const (
	SourceControllerVersion    = "v1.9.6"
	KustomizeControllerVersion = "v1.9.6"
)

// Names inside Flux's cache directory.
const (
	SourceController    = "source-controller"
	KustomizeController = "kustomize-controller"
	// FluxCRDs is the directory of the controllers' CustomResourceDefinitions.
	FluxCRDs = "crds"
)

// FluxNamespace is the namespace StartFlux creates, the controllers' runtime
// namespace as in a `flux install`.
const FluxNamespace = "flux-system"

// fluxBuildRecipe is bumped when the way Flux is built changes.
const fluxBuildRecipe = "flux-1"

// fluxCacheKey names Flux's directory beside the control plane's.
func fluxCacheKey() (string, error) {
	sum, err := modulesHash(fluxBuildRecipe, SourceController, KustomizeController)
	if err != nil {
		return "", err
	}
	if SourceControllerVersion == KustomizeControllerVersion {
		return fmt.Sprintf("flux-%s-%s", SourceControllerVersion, sum), nil
	}
	return fmt.Sprintf("flux-source-%s-kustomize-%s-%s", SourceControllerVersion, KustomizeControllerVersion, sum), nil
}

// EnsureFlux returns the directory holding source-controller,
// kustomize-controller and their CRDs (in FluxCRDs), building them from the Go
// module proxy first if these versions have not been built on this machine.
func EnsureFlux(ctx context.Context, log io.Writer) (string, error) {
	key, err := fluxCacheKey()
	if err != nil {
		return "", err
	}
	files := []string{SourceController, KustomizeController, FluxCRDs}
	return ensureBuilt(ctx, log, key, files, func(tmp string) error {
		fmt.Fprintf(log, "building test Flux %s (cold builds take several minutes on 2 cores)\n", key)
		crds := filepath.Join(tmp, FluxCRDs)
		if err := os.Mkdir(crds, 0o755); err != nil {
			return err
		}
		for _, c := range []struct{ name, module string }{
			{SourceController, "github.com/fluxcd/source-controller"},
			{KustomizeController, "github.com/fluxcd/kustomize-controller"},
		} {
			if err := goBuild(ctx, log, c.name, "-ldflags", "-s -w", "-o", filepath.Join(tmp, c.name), c.module); err != nil {
				return err
			}
			dir, err := moduleDir(ctx, c.name, c.module)
			if err != nil {
				return err
			}
			if err := copyYAML(filepath.Join(dir, "config", "crd", "bases"), crds); err != nil {
				return fmt.Errorf("copying the CRDs of %s: %w", c.name, err)
			}
		}
		return nil
	})
}

// copyYAML copies the .yaml files of src into dst.
func copyYAML(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	n := 0
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("no CRDs in %s", src)
	}
	return nil
}

// FluxOptions tune StartFlux.
type FluxOptions struct {
	// Log receives build progress; the cluster's Log when nil.
	Log io.Writer
	// LogLevel is the controllers' --log-level: "info" when empty, "debug"
	// to see every fetch and apply.
	LogLevel string
	// SourceControllerArgs and KustomizeControllerArgs are added after
	// StartFlux's flags (a repeated flag's last value wins), e.g.
	// "--concurrent=10" or "--kube-api-qps=500".
	SourceControllerArgs, KustomizeControllerArgs []string
}

// Flux is source-controller and kustomize-controller running as local
// processes against a Cluster, as a `flux install` would run them in it.
type Flux struct {
	// Namespace is FluxNamespace, the controllers' runtime namespace.
	Namespace string
	// Dir holds source-controller's artifact storage.
	Dir string
	// SourceControllerLog and KustomizeControllerLog are the controllers'
	// logs (JSON lines), in the cluster's logs directory: StopKeepLogs
	// keeps them.
	SourceControllerLog, KustomizeControllerLog string
	// StorageURL is source-controller's artifact server, the host of every
	// artifact URL (http://127.0.0.1:<port>).
	StorageURL string
	// SourceControllerMetrics and KustomizeControllerMetrics are the
	// controllers' Prometheus endpoints (http://127.0.0.1:<port>/metrics).
	SourceControllerMetrics, KustomizeControllerMetrics string
	procs                                               []*process
}

// StartFlux builds (once) Flux's controllers, applies their CRDs, creates
// FluxNamespace and starts the controllers against the cluster, watching all
// namespaces with leader election off; it returns once both answer their
// readiness probes, their GitRepository and Kustomization workers run and the
// artifact server listens. Stop ends them; so does
// the cluster's Stop. One Flux per cluster.
func (c *Cluster) StartFlux(ctx context.Context, opts FluxOptions) (*Flux, error) {
	if opts.Log == nil {
		opts.Log = c.log
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "info"
	}
	for _, f := range c.fluxes {
		if f.procs != nil {
			return nil, fmt.Errorf("flux already runs in this cluster")
		}
	}
	bin, err := EnsureFlux(ctx, opts.Log)
	if err != nil {
		return nil, err
	}
	if err := c.applyCRDs(ctx, filepath.Join(bin, FluxCRDs)); err != nil {
		return nil, err
	}
	if err := c.createNamespace(ctx, FluxNamespace); err != nil {
		return nil, err
	}
	// As in Start: a free port can be taken before the controller binds it.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		f, err := c.startFlux(ctx, bin, opts)
		if err == nil {
			c.fluxes = append(c.fluxes, f)
			return f, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func (c *Cluster) startFlux(ctx context.Context, bin string, opts FluxOptions) (f *Flux, err error) {
	dir, err := os.MkdirTemp(c.Dir, "flux-")
	if err != nil {
		return nil, err
	}
	f = &Flux{
		Namespace:              FluxNamespace,
		Dir:                    dir,
		SourceControllerLog:    filepath.Join(c.Dir, "logs", SourceController+".log"),
		KustomizeControllerLog: filepath.Join(c.Dir, "logs", KustomizeController+".log"),
	}
	defer func() {
		if err != nil {
			f.Stop()
		}
	}()
	ports, err := freePorts(5)
	if err != nil {
		return f, err
	}
	addr := func(i int) string { return "127.0.0.1:" + strconv.Itoa(ports[i]) }
	f.StorageURL = "http://" + addr(0)
	f.SourceControllerMetrics = "http://" + addr(1) + "/metrics"
	f.KustomizeControllerMetrics = "http://" + addr(3) + "/metrics"
	storage := filepath.Join(dir, "storage")
	if err := os.Mkdir(storage, 0o755); err != nil {
		return f, err
	}
	// The controllers read the kubeconfig from KUBECONFIG (controller-runtime
	// registers --kubeconfig on Go's flag set, which their pflag set omits).
	env := []string{"KUBECONFIG=" + c.Kubeconfig, "RUNTIME_NAMESPACE=" + FluxNamespace}
	common := []string{
		"--watch-all-namespaces=true",
		"--enable-leader-election=false",
		"--log-level=" + opts.LogLevel,
	}
	sc := append(append(common[:len(common):len(common)],
		"--metrics-addr="+addr(1),
		"--health-addr="+addr(2),
		"--storage-path="+storage,
		"--storage-addr="+addr(0),
		// kustomize-controller fetches artifacts from the advertised
		// address, which is in-cluster DNS in a real install.
		"--storage-adv-addr="+addr(0),
	), opts.SourceControllerArgs...)
	kc := append(append(common[:len(common):len(common)],
		"--metrics-addr="+addr(3),
		"--health-addr="+addr(4),
		"--no-remote-bases=true",
	), opts.KustomizeControllerArgs...)
	for _, p := range []struct {
		name, log string
		args      []string
	}{
		{SourceController, f.SourceControllerLog, sc},
		{KustomizeController, f.KustomizeControllerLog, kc},
	} {
		proc, err := startProcess(p.name, p.log, env, filepath.Join(bin, p.name), p.args...)
		if err != nil {
			return f, err
		}
		f.procs = append(f.procs, proc)
	}
	exited := func() error { return exited(f.procs) }
	for _, w := range []struct{ name, url string }{
		{SourceController, "http://" + addr(2) + "/readyz"},
		{KustomizeController, "http://" + addr(4) + "/readyz"},
		// served once the manager runs (at once, leader election off)
		{SourceController + " artifact server", f.StorageURL + "/"},
	} {
		if err := waitHTTP(ctx, w.name, w.url, nil, exited); err != nil {
			return f, fmt.Errorf("%w (logs in %s)", err, filepath.Dir(f.SourceControllerLog))
		}
	}
	// Ready answers before the informers have synced; the workers start
	// after, a second or two later on 2 cores. Wait for them, so that what a
	// test times from here is Flux's work and not its start-up.
	for _, w := range []struct{ log, controller string }{
		{f.SourceControllerLog, "gitrepository"},
		{f.KustomizeControllerLog, "kustomization"},
	} {
		line := `"msg":"Starting workers","controller":"` + w.controller + `"`
		if err := waitLog(ctx, w.log, line, exited); err != nil {
			return f, err
		}
	}
	return f, nil
}

// waitLog polls the log file path for up to 90 seconds until it holds text,
// failing at once when exited returns an error.
func waitLog(ctx context.Context, path, text string, exited func() error) error {
	deadline := time.Now().Add(90 * time.Second)
	for {
		if err := exited(); err != nil {
			return err
		}
		if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, []byte(text)) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no %s in %s after 90s", text, path)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop ends the controllers and removes the artifact storage; the logs stay
// with the cluster's.
func (f *Flux) Stop() {
	for i := len(f.procs) - 1; i >= 0; i-- {
		f.procs[i].stop()
	}
	f.procs = nil
	if f.Dir != "" {
		os.RemoveAll(f.Dir)
	}
}

// Exited returns an error naming a controller that has stopped, nil while
// both run.
func (f *Flux) Exited() error { return exited(f.procs) }
