package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
)

// scriptedServer answers GETs of path with answers in order, then with
// final, and every DELETE with 200; its client maps ConfigMaps.
func scriptedServer(t *testing.T, path string, final func(http.ResponseWriter), answers ...func(http.ResponseWriter)) (*Client, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path != path:
			http.NotFound(w, r)
		case r.Method == http.MethodDelete:
			status(200, "")(w)
		default:
			if i := int(n.Add(1)) - 1; i < len(answers) {
				answers[i](w)
			} else {
				final(w)
			}
		}
	}))
	t.Cleanup(srv.Close)
	dyn, err := dynamic.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	m := meta.NewDefaultRESTMapper(nil)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, meta.RESTScopeNamespace)
	return &Client{Dynamic: dyn, Mapper: resettable{m}}, &n
}

// rolloutServer answers GETs of deployment web in ns a: with the answers in
// order, then a finished rollout.
func rolloutServer(t *testing.T, answers ...func(http.ResponseWriter)) (*Client, *atomic.Int32) {
	t.Helper()
	done := func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": map[string]any{"name": "web", "namespace": "a", "generation": 1},
			"spec":     map[string]any{"replicas": 1},
			"status":   map[string]any{"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1, "readyReplicas": 1},
		})
	}
	return scriptedServer(t, "/apis/apps/v1/namespaces/a/deployments/web", done, answers...)
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
	var said []string
	if err := c.WaitRollout(ctx, "a", "web", func(s RolloutStatus) { said = append(said, s.String()) }); err != nil {
		t.Fatalf("WaitRollout: %v", err)
	}
	if n.Load() != 4 {
		t.Errorf("%d requests, want 4", n.Load())
	}
	// Once that it retries (not per attempt), then the state it reached.
	if len(said) != 2 || !strings.Contains(said[0], "(retrying: ") || !strings.Contains(said[0], "no agent connected") || said[1] != "1/1 updated, 1/1 available" {
		t.Errorf("progress: %q", said)
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

// TestTransient: what a gateway or an overloaded server answers, and a
// connection that is refused, reset or cut short, pass; a refusal does not.
func TestTransient(t *testing.T) {
	get := func(err error) error {
		return &url.Error{Op: "Get", URL: "https://kas.example.com/k8s-proxy/api", Err: err}
	}
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{apierrors.NewServiceUnavailable("no agent"), true},
		{apierrors.NewTooManyRequests("slow down", 1), true},
		{apierrors.NewGenericServerResponse(502, "get", schema.GroupResource{}, "", "bad gateway", 0, false), true},
		{apierrors.NewGenericServerResponse(504, "get", schema.GroupResource{}, "", "timeout", 0, false), true},
		{get(&net.OpError{Op: "read", Net: "tcp", Err: &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}}), true},
		{get(&net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}), true},
		{get(io.EOF), true},
		{get(io.ErrUnexpectedEOF), true},
		{get(timeoutError{}), true},
		{apierrors.NewForbidden(schema.GroupResource{Resource: "deployments"}, "web", errors.New("agentId is not allowed")), false},
		{apierrors.NewUnauthorized("no"), false},
		{apierrors.NewInternalError(errors.New("boom")), false},
		{errors.New("the Deployment is gone"), false},
	} {
		if got := Transient(tt.err); got != tt.want {
			t.Errorf("Transient(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// deleteServer deletes ConfigMap a/web and answers its GETs with answers in
// order, then 404.
func deleteServer(t *testing.T, answers ...func(http.ResponseWriter)) *Client {
	t.Helper()
	c, _ := scriptedServer(t, "/api/v1/namespaces/a/configmaps/web", status(404, `configmaps "web" not found`), answers...)
	return c
}

// TestDeleteAndWaitTellsARefusalFromAPause: a KAS with no agent for a
// moment is waited out; a refusal to read the object ends the wait at once
// with the reason, not at the deadline.
func TestDeleteAndWaitTellsARefusalFromAPause(t *testing.T) {
	cm := &unstructured.Unstructured{}
	cm.SetAPIVersion("v1")
	cm.SetKind("ConfigMap")
	cm.SetNamespace("a")
	cm.SetName("web")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := deleteServer(t, status(503, "no agent connected"), status(200, "")).DeleteAndWait(ctx, []*unstructured.Unstructured{cm.DeepCopy()}); err != nil {
		t.Fatalf("a pause: %v", err)
	}
	err := deleteServer(t, status(403, "GitLab Agent Server: Forbidden: agentId is not allowed")).DeleteAndWait(ctx, []*unstructured.Unstructured{cm.DeepCopy()})
	if err == nil || !strings.Contains(err.Error(), "checking that v1/ConfigMap/a/web is gone: forbidden: ") || !strings.Contains(err.Error(), "agentId is not allowed") {
		t.Fatalf("a refusal: %v", err)
	}
	short, cancelShort := context.WithTimeout(ctx, time.Second)
	defer cancelShort()
	always := make([]func(http.ResponseWriter), 100)
	for i := range always {
		always[i] = status(503, "no agent connected")
	}
	if err := deleteServer(t, always...).DeleteAndWait(short, []*unstructured.Unstructured{cm.DeepCopy()}); err == nil || !strings.Contains(err.Error(), "no agent connected") {
		t.Fatalf("503 until the deadline: %v", err)
	}
}

// TestWouldPassDeadline: client-go's rate limiter, asked to wait past the
// deadline, refuses at once; DeleteAndWait takes that for the deadline.
func TestWouldPassDeadline(t *testing.T) {
	rl := flowcontrol.NewTokenBucketRateLimiter(0.001, 1)
	rl.Accept() // the one token
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := rl.Wait(ctx)
	if !wouldPassDeadline(fmt.Errorf("client rate limiter Wait returned an error: %w", err)) || ctx.Err() != nil {
		t.Errorf("the limiter's refusal (%v) is not recognised, or came at the deadline (%v)", err, ctx.Err())
	}
	if wouldPassDeadline(errors.New("the server is currently unable to handle the request")) || wouldPassDeadline(nil) {
		t.Error("another error taken for the deadline")
	}
}

// TestWaitRolloutAfterAFailedOne: the apply just made generation 2, which the
// controller has not seen yet; the condition left by generation 1's rollout
// (ProgressDeadlineExceeded) is not this rollout's, and the wait goes on. On
// the generation it speaks of, it ends the wait at once.
func TestWaitRolloutAfterAFailedOne(t *testing.T) {
	deployment := func(generation, observed int) func(http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{
				"apiVersion": "apps/v1", "kind": "Deployment",
				"metadata": map[string]any{"name": "web", "namespace": "a", "generation": generation},
				"spec":     map[string]any{"replicas": 1},
				"status": map[string]any{"observedGeneration": observed, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 0,
					"conditions": []any{map[string]any{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": `ReplicaSet "web-abc" has timed out progressing.`}}},
			})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, n := rolloutServer(t, deployment(2, 1))
	if err := c.WaitRollout(ctx, "a", "web", func(RolloutStatus) {}); err != nil || n.Load() != 2 {
		t.Errorf("after a failed rollout: %v after %d requests, want the new one waited for", err, n.Load())
	}
	c, n = rolloutServer(t, deployment(2, 2))
	if err := c.WaitRollout(ctx, "a", "web", func(RolloutStatus) {}); err == nil || !strings.Contains(err.Error(), "timed out progressing") || n.Load() != 1 {
		t.Errorf("this rollout's own deadline: %v after %d requests", err, n.Load())
	}
}

// TestListStopsOnAContinueThatDoesNotMove: something in front of the
// cluster that answers every page with the same continue token ends the list
// instead of looping until the deadline; an empty page with a new token (a
// server may filter a whole page away) does not end it.
func TestListStopsOnAContinueThatDoesNotMove(t *testing.T) {
	page := func(cont string, names ...string) func(http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			items := []any{}
			for _, n := range names {
				items = append(items, map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": n, "namespace": "a"}})
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"apiVersion": "v1", "kind": "ConfigMapList", "metadata": map[string]any{"continue": cont}, "items": items})
		}
	}
	target := Target{
		Mapping: &meta.RESTMapping{Resource: schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, GroupVersionKind: schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, Scope: meta.RESTScopeNamespace},
		Ref:     Ref{APIVersion: "v1", Kind: "ConfigMap", Namespace: "a"},
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for name, c := range map[string]struct {
		final    func(http.ResponseWriter)
		answers  []func(http.ResponseWriter)
		requests int32
		items    int
	}{
		"the same token again":  {page("t1", "x"), []func(http.ResponseWriter){page("t1", "a")}, 2, 2},
		"an empty page between": {page("", "b"), []func(http.ResponseWriter){page("t1", "a"), page("t2")}, 3, 2},
		"two good pages":        {page("", "b"), []func(http.ResponseWriter){page("t1", "a")}, 2, 2},
	} {
		cl, n := scriptedServer(t, "/api/v1/namespaces/a/configmaps", c.final, c.answers...)
		got, err := cl.list(ctx, cl.Dynamic, target, "")
		if err != nil || len(got) != c.items || n.Load() != c.requests {
			t.Errorf("%s: %d items in %d requests, %v; want %d in %d", name, len(got), n.Load(), err, c.items, c.requests)
		}
	}
}
