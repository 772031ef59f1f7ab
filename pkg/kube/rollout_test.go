package kube

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// rolloutServer answers GETs of deployment web in ns a: with the answers in
// order, then a finished rollout.
func rolloutServer(t *testing.T, answers ...func(http.ResponseWriter)) (*Client, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/apis/apps/v1/namespaces/a/deployments/web" {
			http.NotFound(w, r)
			return
		}
		i := int(n.Add(1)) - 1
		if i < len(answers) {
			answers[i](w)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": map[string]any{"name": "web", "namespace": "a", "generation": 1},
			"spec":     map[string]any{"replicas": 1},
			"status":   map[string]any{"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1, "readyReplicas": 1},
		})
	}))
	t.Cleanup(srv.Close)
	dyn, err := dynamic.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return &Client{Dynamic: dyn}, &n
}

func status(code int, msg string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": msg, "code": code})
	}
}

func hangUp(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
}

// TestWaitRolloutRidesOutTransientFailures: a KAS with no agent connected for
// a moment (503, 502, a dropped connection) does not end the wait; a refusal
// does, at once.
func TestWaitRolloutRidesOutTransientFailures(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, n := rolloutServer(t, status(503, "GitLab Agent Server: no agent connected"), hangUp, status(502, "bad gateway"))
	if err := c.WaitRollout(ctx, "a", "web", func(RolloutStatus) {}); err != nil {
		t.Fatalf("WaitRollout: %v", err)
	}
	if n.Load() != 4 {
		t.Errorf("%d requests, want 4", n.Load())
	}

	c, n = rolloutServer(t, status(403, "GitLab Agent Server: Forbidden: agentId is not allowed"))
	err := c.WaitRollout(ctx, "a", "web", func(RolloutStatus) {})
	if err == nil || !strings.Contains(err.Error(), "agentId is not allowed") || n.Load() != 1 {
		t.Fatalf("a refusal: %v after %d requests", err, n.Load())
	}

	// Transient until the deadline: the error says what the last answer was.
	always := make([]func(http.ResponseWriter), 100)
	for i := range always {
		always[i] = status(503, "GitLab Agent Server: no agent connected")
	}
	c, _ = rolloutServer(t, always...)
	short, cancelShort := context.WithTimeout(ctx, 1200*time.Millisecond)
	defer cancelShort()
	err = c.WaitRollout(short, "a", "web", func(RolloutStatus) {})
	if err == nil || !strings.Contains(err.Error(), "no agent connected") {
		t.Fatalf("503 until the deadline: %v", err)
	}
}
