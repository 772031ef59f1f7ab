package kube

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestReachableNamesTheBoundThatEnded: a cluster that accepts and never
// answers; the caller's 300 ms (doctor's per-check bound) ends the wait
// before Reachable's own 15 s, and the error names it.
func TestReachableNamesTheBoundThatEnded(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	kc := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters: [{name: mute, cluster: {server: "http://`+l.Addr().String()+`"}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: mute, context: {cluster: mute, user: u}}]
current-context: mute
`), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = clientFor(t, kc).Reachable(ctx)
	var ue *UnreachableError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "no answer within 300ms") {
		t.Fatalf("%v", err)
	}
}

func TestTakenByNamespace(t *testing.T) {
	obj := func(apiVersion, kind, ns, name string) *unstructured.Unstructured {
		o := &unstructured.Unstructured{}
		o.SetAPIVersion(apiVersion)
		o.SetKind(kind)
		o.SetNamespace(ns)
		o.SetName(name)
		return o
	}
	sa := obj("v1", "ServiceAccount", "gitlab-agent-prod", "prod-gitlab-agent")
	withNS := []*unstructured.Unstructured{sa, obj("v1", "Namespace", "", "gitlab-agent-prod")}
	if !takenByNamespace(sa, withNS) {
		t.Error("the ServiceAccount of a Namespace deleted too is deleted by itself")
	}
	if takenByNamespace(sa, []*unstructured.Unstructured{sa, obj("v1", "Namespace", "", "other")}) {
		t.Error("another Namespace takes it")
	}
	if takenByNamespace(obj("v1", "Secret", "gitlab-agent-prod", "t"), withNS) {
		t.Error("only ServiceAccounts are left to their Namespace")
	}
}
