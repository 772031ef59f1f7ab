package kube

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/cluster"
)

func clientFor(t *testing.T, kubeconfig string) *Client {
	t.Helper()
	cf := genericclioptions.NewConfigFlags(false)
	cf.KubeConfig = &kubeconfig
	c, err := NewClient(cf)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestClaimSecretAndReachable runs against a real apiserver: a claim wins
// only while the Secret is as it was read, and a cluster that does not
// answer is one UnreachableError.
func TestClaimSecretAndReachable(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cl, err := cluster.Start(ctx, cluster.Options{Log: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Stop()
	c := clientFor(t, cl.Kubeconfig)
	if err := c.Reachable(ctx); err != nil {
		t.Fatalf("the test cluster: %v", err)
	}
	// A ServiceAccount whose Namespace is deleted too is left to it (an
	// agent carrying the deletes keeps its token until the last one) and
	// still waited for: all three are gone when DeleteAndWait returns.
	{
		ms, err := Decode("test", []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: del-sa}\n---\n"+
			"apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: agent, namespace: del-sa}\n---\n"+
			"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm, namespace: del-sa}\n"))
		if err != nil {
			t.Fatal(err)
		}
		targets, err := c.MapAll(ms, "default")
		if err != nil {
			t.Fatal(err)
		}
		var objs []*unstructured.Unstructured
		for _, tg := range targets {
			o, err := tg.Object()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Apply(ctx, tg, o, FieldManager, true, false); err != nil {
				t.Fatal(err)
			}
			objs = append(objs, o)
		}
		// A server dry run of the deletions deletes nothing.
		if err := c.DeleteDryRun(ctx, objs); err != nil {
			t.Fatalf("DeleteDryRun: %v", err)
		}
		if _, err := c.Dynamic.Resource(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}).Namespace("del-sa").Get(ctx, "cm", metav1.GetOptions{}); err != nil {
			t.Fatalf("after DeleteDryRun: %v", err)
		}
		if err := c.DeleteAndWait(ctx, objs); err != nil {
			t.Fatalf("DeleteAndWait: %v", err)
		}
		if sa, err := c.Dynamic.Resource(schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}).Namespace("del-sa").Get(ctx, "agent", metav1.GetOptions{}); err == nil {
			t.Errorf("the ServiceAccount is still there: %v", sa.GetDeletionTimestamp())
		}
	}
	secret := func(token string) (Target, Manifest) {
		ms, err := Decode("test", []byte("apiVersion: v1\nkind: Secret\nmetadata: {name: claimed, namespace: default}\nstringData: {token: "+token+"}\n"))
		if err != nil {
			t.Fatal(err)
		}
		targets, err := c.MapAll(ms, "default")
		if err != nil {
			t.Fatal(err)
		}
		return targets[0], ms[0]
	}
	claim := func(token, rv string) error {
		tg, _ := secret(token)
		obj, err := tg.Object()
		if err != nil {
			t.Fatal(err)
		}
		return c.ClaimSecret(ctx, tg, obj, rv, FieldManager)
	}
	// Absent when read: the first create wins, a second loses.
	if err := claim("first", ""); err != nil {
		t.Fatal(err)
	}
	if err := claim("second", ""); !errors.Is(err, ErrSecretChanged) {
		t.Fatalf("a second create: %v", err)
	}
	s, err := c.GetSecret(ctx, "default", "claimed")
	if err != nil || string(s.Data["token"]) != "first" {
		t.Fatalf("%v %v", s, err)
	}
	// Read at rv: a claim with it wins once; one with the old rv loses.
	rv := s.ResourceVersion
	if err := claim("third", rv); err != nil {
		t.Fatalf("a claim with the current resourceVersion: %v", err)
	}
	if err := claim("fourth", rv); !errors.Is(err, ErrSecretChanged) {
		t.Fatalf("a claim with a stale resourceVersion: %v", err)
	}
	if s, _ := c.GetSecret(ctx, "default", "claimed"); string(s.Data["token"]) != "third" {
		t.Fatalf("the Secret holds %q", s.Data["token"])
	}

	// A cluster that is not there.
	gone := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(gone, []byte(`apiVersion: v1
kind: Config
clusters: [{name: gone, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: gone, context: {cluster: gone, user: u}}]
current-context: gone
`), 0o600); err != nil {
		t.Fatal(err)
	}
	err = clientFor(t, gone).Reachable(ctx)
	var ue *UnreachableError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "https://127.0.0.1:1 (context gone)") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("%v", err)
	}
}
