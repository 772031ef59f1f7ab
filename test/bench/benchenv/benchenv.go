// Package benchenv is what each benchmark of test/bench runs in: a scratch
// directory, the plugin built from the working tree (and as it was at a git
// ref, when one is asked for) and the test control plane.
package benchenv

import (
	"context"
	"fmt"
	"os"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/cluster"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/plugin"
)

// Env is a benchmark's scratch directory, plugin builds and control plane.
type Env struct {
	// Dir is the scratch directory, removed by Close; it is the HOME of
	// the tools measured.
	Dir string
	// Plugin is the plugin built from the working tree.
	Plugin string
	// AtRef is the plugin built at the ref given to Start ("" without one).
	AtRef   string
	Cluster *cluster.Cluster
}

// Start builds the plugin (also at ref, unless ref is "") and starts the
// test control plane, saying so on stderr. name prefixes the scratch
// directory.
func Start(ctx context.Context, name, ref string) (*Env, error) {
	dir, err := os.MkdirTemp("", name+"-")
	if err != nil {
		return nil, err
	}
	e := &Env{Dir: dir}
	if err := e.start(ctx, ref); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

func (e *Env) start(ctx context.Context, ref string) (err error) {
	if e.Plugin, err = plugin.Build(ctx, e.Dir, ""); err != nil {
		return err
	}
	if ref != "" {
		if e.AtRef, err = plugin.BuildAt(ctx, ref, e.Dir); err != nil {
			return err
		}
	}
	fmt.Fprintln(os.Stderr, "starting the test control plane...")
	e.Cluster, err = cluster.Start(ctx, cluster.Options{Log: os.Stderr})
	return err
}

// Environ is this process's environment with the control plane's
// kubeconfig, the scratch HOME and no colour, then extra (KEY=VALUE).
func (e *Env) Environ(extra ...string) []string {
	return append(append(os.Environ(), "KUBECONFIG="+e.Cluster.Kubeconfig, "HOME="+e.Dir, "NO_COLOR=1"), extra...)
}

// Close stops the control plane and removes the scratch directory.
func (e *Env) Close() {
	if e.Cluster != nil {
		e.Cluster.Stop()
	}
	os.RemoveAll(e.Dir)
}
