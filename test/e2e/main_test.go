// Package e2e runs the built plugin the way users and CI jobs do: through
// kubectl's plugin dispatch, against a real control plane.
package e2e

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/cluster"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/plugin"
)

var (
	// env is the process environment for every command the tests run: the
	// plugin first on PATH, and the test cluster's kubeconfig.
	env     []string
	binDir  string
	cl      *cluster.Cluster
	kubectl string
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(mainWithCluster(m))
}

// needCluster skips a test that needs the control plane under -short, which
// runs only what the fake GitLab and the built binary can show. The tests that
// never touch the control plane run in parallel (t.Parallel), each with its
// own fake GitLab; those that do share one cluster and run one at a time.
func needCluster(t *testing.T) {
	t.Helper()
	if cl == nil {
		t.Skip("needs the test control plane (skipped with -short)")
	}
}

func mainWithCluster(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	var err error
	if kubectl, err = exec.LookPath("kubectl"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: kubectl is not on PATH:", err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "kga-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	binDir = filepath.Join(tmp, "bin")
	if _, err := plugin.Build(ctx, binDir, "v0.0.0-e2e"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building the plugin:", err)
		return 1
	}
	kubeconfig := filepath.Join(tmp, "unreachable.kubeconfig")
	if testing.Short() {
		// No control plane: a kubeconfig whose cluster nothing answers,
		// so that a test that needs one and does not say so fails fast.
		if err := os.WriteFile(kubeconfig, []byte(unreachableKubeconfig), 0o600); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
	} else {
		if cl, err = cluster.Start(ctx, cluster.Options{Log: os.Stderr}); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: starting the test cluster:", err)
			return 1
		}
		kubeconfig = cl.Kubeconfig
	}
	env = append(os.Environ(),
		"PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"KUBECONFIG="+kubeconfig,
		"HOME="+tmp, // kubectl's caches stay inside the test
		"NO_COLOR=1",
		// No session bus, so no OS keyring: the tests never touch the
		// user's; the keyring tests start a Secret Service of their own.
		"DBUS_SESSION_BUS_ADDRESS=unix:path="+filepath.Join(tmp, "no-bus"),
	)
	code := m.Run()
	switch {
	case cl == nil:
	case code != 0:
		fmt.Fprintf(os.Stderr, "e2e: test cluster logs kept in %s\n", cl.StopKeepLogs())
	default:
		cl.Stop()
	}
	return code
}

const unreachableKubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: none
  cluster:
    server: https://127.0.0.1:1
contexts:
- name: none
  context:
    cluster: none
    user: none
users:
- name: none
  user: {}
current-context: none
`

// result is what a command did.
type result struct {
	code           int
	stdout, stderr string
}

// runCmd runs name with args in the test environment, stdin from stdin.
func runCmd(t *testing.T, stdin string, name string, args ...string) result {
	t.Helper()
	return runIn(t, runSpec{stdin: stdin}, name, args...)
}

// runSpec is how runIn runs a command: environment entries added to the
// test environment (later ones win), stdin, and the working directory.
type runSpec struct {
	env   []string
	stdin string
	dir   string
}

// runIn runs name with args and returns what it did; only a failure to run
// it at all fails the test.
func runIn(t *testing.T, spec runSpec, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(append([]string{}, env...), spec.env...)
	cmd.Stdin = strings.NewReader(spec.stdin)
	cmd.Dir = spec.dir
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errOut.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running %s %v: %v", name, args, err)
	}
	return r
}

func clientset(t *testing.T) *cluster.Clients {
	t.Helper()
	needCluster(t)
	cs, err := cluster.NewClients(cl.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	return cs
}
