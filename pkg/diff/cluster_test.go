package diff

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/cluster"
)

// One control plane for the package's tests that need one, started by the
// first and stopped when they are all done.
var (
	clusterOnce sync.Once
	shared      *cluster.Cluster
	sharedErr   error
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if shared != nil {
		if code != 0 {
			fmt.Fprintf(os.Stderr, "test cluster logs kept in %s\n", shared.StopKeepLogs())
		} else {
			shared.Stop()
		}
	}
	os.Exit(code)
}

// testCluster is the shared control plane; it skips the test under -short.
func testCluster(t testing.TB) *cluster.Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the test control plane")
	}
	clusterOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		shared, sharedErr = cluster.Start(ctx, cluster.Options{Log: os.Stderr})
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

// countingClient is a kube.Client for the test cluster that counts the
// dry-run applies it sends; as names a user to act as (the admin
// impersonates them).
// readTestdata is a file of testdata/.
func readTestdata(name string) string {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		panic(err)
	}
	return string(b)
}

// onCluster is how a test against the control plane starts: the cluster, a
// context that ends after timeout (or with the test), an admin client that
// counts its dry runs, and a dynamic client.
func onCluster(t *testing.T, timeout time.Duration) (*cluster.Cluster, context.Context, *kube.Client, dynamic.Interface) {
	t.Helper()
	c := testCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	k, _ := countingClient(t, c)
	return c, ctx, k, dynamic.NewForConfigOrDie(c.RESTConfig())
}

func countingClient(t testing.TB, c *cluster.Cluster, as ...string) (*kube.Client, *atomic.Int64) {
	t.Helper()
	flags := genericclioptions.NewConfigFlags(true)
	kc, cache := c.Kubeconfig, t.TempDir()
	flags.KubeConfig, flags.CacheDir = &kc, &cache
	if len(as) > 0 {
		flags.Impersonate = &as[0]
	}
	var dryRuns atomic.Int64
	flags.WrapConfigFn = func(cfg *rest.Config) *rest.Config {
		cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
			return roundTripFunc(func(r *http.Request) (*http.Response, error) {
				if r.Method == http.MethodPatch && strings.Contains(r.URL.RawQuery, "dryRun=All") {
					dryRuns.Add(1)
				}
				return rt.RoundTrip(r)
			})
		})
		return cfg
	}
	k, err := kube.NewClient(flags)
	if err != nil {
		t.Fatal(err)
	}
	return k, &dryRuns
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
