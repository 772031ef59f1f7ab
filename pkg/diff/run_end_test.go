package diff

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube/fake"
)

// configMaps are n ConfigMaps, cm-0 to cm-(n-1).
func configMaps(n int) []string {
	docs := make([]string, n)
	for i := range docs {
		docs[i] = configMap(fmt.Sprintf("cm-%d", i), "a: '1'")
	}
	return docs
}

// TestRunEndsOnWhatEveryObjectWouldMeet: a discovery that fails, refused
// credentials (a 401 anywhere, a 401 or 403 of the first read, which goes
// alone) and a cluster that stops answering end the run with that one
// error, and no more is asked of the cluster; a 403 of a later read is that
// object's error.
func TestRunEndsOnWhatEveryObjectWouldMeet(t *testing.T) {
	cm := schema.GroupResource{Resource: "configmaps"}
	unauthorized := apierrors.NewUnauthorized("Unauthorized")
	forbidden := apierrors.NewForbidden(cm, "cm-0", errors.New(`User "bob" cannot get resource "configmaps"`))
	unreachable := &kube.UnreachableError{Server: "https://127.0.0.1:1", Err: errors.New("connection refused")}
	for _, tc := range []struct {
		name   string
		method string
		nth    int // of the calls of method in this run
		err    error
		reads  int // reads made
	}{
		{"discovery refused", fake.Map, 1, &kube.AuthError{Code: 401, Err: unauthorized}, 0},
		{"discovery fails", fake.Map, 1, errors.New("discovering the cluster's API: boom"), 0},
		{"the first read unauthorized", fake.Read, 1, unauthorized, 1},
		{"the first read forbidden", fake.Read, 1, forbidden, 1},
		{"a later read unauthorized", fake.Read, 3, unauthorized, 3},
		{"the cluster stops answering", fake.Read, 2, unreachable, 2},
		{"a dry run unauthorized", fake.DryRun, 1, unauthorized, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fakeCluster(t, false)
			c.Fail(tc.method, c.Count(tc.method)+tc.nth, tc.err)
			reads, dryRuns := c.Count(fake.Read), c.Count(fake.DryRun)
			res, err := Run(context.Background(), c, manifests(t, configMaps(50)...), Options{DefaultNamespace: "default", Concurrency: 1})
			if !errors.Is(err, tc.err) && err != tc.err {
				t.Fatalf("Run: %v, %v; want the error %v", res, err, tc.err)
			}
			if n := c.Count(fake.Read) - reads; tc.reads > 0 && n != tc.reads {
				t.Errorf("%d reads, want %d: the run goes on after an error every object would meet", n, tc.reads)
			}
			if tc.method == fake.DryRun {
				if n := c.Count(fake.DryRun) - dryRuns; n != 1 {
					t.Errorf("%d dry runs, want 1", n)
				}
			}
		})
	}

	// A 403 of a later read is that object's: the others are compared.
	c := fakeCluster(t, false)
	c.Fail(fake.Read, c.Count(fake.Read)+2, apierrors.NewForbidden(cm, "cm-1", errors.New("no")))
	res, err := Run(context.Background(), c, manifests(t, configMaps(50)...), Options{DefaultNamespace: "default", Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Counts(); got[Failed] != 1 || got[Created] != 49 {
		t.Errorf("a later read forbidden: %v", got)
	}
	if o := byName(res)["cm-1"]; !strings.Contains(o.Error, "forbidden") {
		t.Errorf("cm-1: %+v", o)
	}
}

// TestRunInterrupted: a run whose context ends stops asking, and says how
// far it got.
func TestRunInterrupted(t *testing.T) {
	c := fakeCluster(t, false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.Hook(fake.Read, c.Count(fake.Read)+10, func() error { cancel(); return context.Canceled })
	reads := c.Count(fake.Read)
	_, err := Run(ctx, c, manifests(t, configMaps(50)...), Options{DefaultNamespace: "default", Concurrency: 1})
	var ie *InterruptedError
	if !errors.As(err, &ie) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	// Nine were read before; the first's comparison goes on beside the
	// other reads, and may not have ended when the context did.
	want := fmt.Sprintf("%d of 50 objects compared (%d differ, 0 could not be compared), %d not", ie.Compared, ie.Compared, 50-ie.Compared)
	if ie.Total != 50 || ie.Compared < 8 || ie.Compared > 9 || ie.Counts[Created] != ie.Compared || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("%+v: %v", ie, err)
	}
	if n := c.Count(fake.Read) - reads; n != 10 {
		t.Errorf("%d reads, want 10: reading went on after the context ended", n)
	}
}

// TestRunEndsOnAFirstReadTheClusterRefuses: against the real apiserver, a
// user who may discover but not read ConfigMaps gets one error that names
// the cluster, the context and what the apiserver said, after one read.
func TestRunEndsOnAFirstReadTheClusterRefuses(t *testing.T) {
	c, ctx, _, _ := onCluster(t, 2*time.Minute)
	nobody, _ := countingClient(t, c, "nobody")
	_, err := Run(ctx, nobody, manifests(t, configMaps(20)...), Options{DefaultNamespace: "default", Force: true})
	var ae *kube.AuthError
	if !errors.As(err, &ae) || ae.Code != 403 ||
		!strings.Contains(err.Error(), "(context "+nobody.Context+") does not let kubeconfig user ") ||
		!strings.Contains(err.Error(), ` read v1/ConfigMap/default/cm-0 (403 Forbidden: configmaps "cm-0" is forbidden: User "nobody" cannot get resource "configmaps"`) ||
		!strings.HasSuffix(err.Error(), "check what the cluster lets that user do ('kubectl auth can-i --list')") {
		t.Fatalf("%v", err)
	}
	t.Log(err)
}
