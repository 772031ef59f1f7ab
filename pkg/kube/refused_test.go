package kube

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"k8s.io/cli-runtime/pkg/genericclioptions"
)

// standIn is an apiserver stand-in: /version answers, and everything else
// gets answer; it counts the requests, and stores its listener in listener.
func standIn(t *testing.T, answer http.HandlerFunc, listener ...*atomic.Pointer[net.Listener]) (*Client, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if r.URL.Path == "/version" {
			fmt.Fprint(w, `{"major":"1","minor":"37","gitVersion":"v1.37.2"}`)
			return
		}
		answer(w, r)
	}))
	t.Cleanup(s.Close)
	for _, l := range listener {
		l.Store(&s.Listener)
	}
	kc := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "`+s.URL+`"}}]
users: [{name: alice, user: {token: x}}]
contexts: [{name: prod, context: {cluster: c, user: alice}}]
current-context: prod
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cf := genericclioptions.NewConfigFlags(true)
	cache := t.TempDir()
	cf.KubeConfig, cf.CacheDir = &kc, &cache
	c, err := NewClient(cf)
	if err != nil {
		t.Fatal(err)
	}
	return c, &n
}

func apiStatus(code int, reason, message string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":%q,"message":%q,"code":%d}`, reason, message, code)
	}
}

var configMap = Manifest{Ref: Ref{APIVersion: "v1", Kind: "ConfigMap", Namespace: "default", Name: "web"}}

// TestRefusedDiscoveryIsOneError: a cluster that refuses discovery (401,
// 403) is an *AuthError that says which cluster, context and user, and what
// to check; it is not one object's error.
func TestRefusedDiscoveryIsOneError(t *testing.T) {
	for _, tc := range []struct {
		code         int
		reason, want string
	}{
		{401, "Unauthorized", `does not accept the credentials of kubeconfig user "alice" (401 Unauthorized): check that its token or client certificate is current ('kubectl auth whoami'`},
		// client-go's discovery reads no Status from the answer: no message.
		{403, "Forbidden", `does not let kubeconfig user "alice" discover its API (403 Forbidden): check what the cluster lets that user do ('kubectl auth can-i --list')`},
	} {
		c, _ := standIn(t, apiStatus(tc.code, tc.reason, `forbidden: User "system:anonymous" cannot get path "/api"`))
		_, err := c.Map(context.Background(), configMap, "default", false)
		var ae *AuthError
		var oe *ObjectError
		if !errors.As(err, &ae) || errors.As(err, &oe) || ae.Code != tc.code ||
			!strings.HasPrefix(err.Error(), "the cluster at "+ae.Server+" (context prod) ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d: %v", tc.code, err)
		}
	}
}

// TestOneErrorForAClusterThatDoesNotAnswer: a request that gets no answer
// is the *UnreachableError that Reachable gives, whichever request it is
// (diff NAME reads the agent's Deployment first): one message in every
// command, not Go's `Get "https://...": EOF`.
func TestOneErrorForAClusterThatDoesNotAnswer(t *testing.T) {
	var listener atomic.Pointer[net.Listener]
	c, _ := standIn(t, func(w http.ResponseWriter, _ *http.Request) {
		(*listener.Load()).Close() // no more connections are taken
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close() // and this one is dropped
		}
	}, &listener)
	if err := c.Reachable(context.Background()); err != nil {
		t.Fatalf("/version answers: %v", err)
	}
	_, err := c.GetDeployment(context.Background(), "gitlab-agent-prod", "prod-gitlab-agent")
	var ue *UnreachableError
	if !errors.As(err, &ue) || !strings.HasPrefix(err.Error(), "cannot reach the cluster at http://127.0.0.1:") || strings.Contains(err.Error(), `Get "`) {
		t.Errorf("GetDeployment: %v", err)
	}
	_, err = c.Map(context.Background(), configMap, "default", false)
	if !errors.As(err, &ue) {
		t.Errorf("Map: %v", err)
	}
}
