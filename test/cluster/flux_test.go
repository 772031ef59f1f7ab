package cluster

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
)

var (
	gitRepositories = schema.GroupVersionResource{Group: "source.toolkit.fluxcd.io", Version: "v1", Resource: "gitrepositories"}
	kustomizations  = schema.GroupVersionResource{Group: "kustomize.toolkit.fluxcd.io", Version: "v1", Resource: "kustomizations"}
)

const (
	gitUser     = "flux"
	gitPassword = "s3cret-for-the-test" // #nosec G101 -- test-only, loopback git server
)

// TestFlux runs source-controller and kustomize-controller against the test
// cluster and a git repository served over smart HTTP with basic auth: a
// commit reaches the cluster, and a second one does on a reconcile request,
// as `flux reconcile kustomization --with-source` asks for it.
func TestFlux(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane and Flux")
	}
	// A cold build takes minutes: not out of the five the test gets.
	if _, err := EnsureFlux(t.Context(), os.Stderr); err != nil {
		t.Fatal(err)
	}
	ctx, c := startClusterForTest(t)
	start := time.Now()
	f, err := c.StartFlux(ctx, FluxOptions{Log: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	t.Logf("StartFlux took %s", time.Since(start).Round(time.Millisecond))

	cs, err := NewClients(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}

	repo := newGitRepo(t)
	commit1 := repo.commitConfigMap(t, "1")
	srv := httptest.NewServer(repo.handler())
	t.Cleanup(srv.Close)
	url := srv.URL + "/app.git"

	// The server refuses requests without the credentials.
	for _, auth := range []func(*http.Request){
		func(*http.Request) {},
		func(r *http.Request) { r.SetBasicAuth(gitUser, "wrong") },
		func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+gitPassword) },
	} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/info/refs?service=git-upload-pack", nil)
		auth(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("git server answered %s to %v, want 401", resp.Status, req.Header)
		}
	}

	createSecret(t, ctx, cs, f.Namespace, "git-auth", map[string]string{"username": gitUser, "password": gitPassword})
	create(t, ctx, dyn, gitRepositories, f.Namespace, "GitRepository", "app", map[string]any{
		"url":       url,
		"ref":       map[string]any{"branch": "main"},
		"interval":  "1m",
		"secretRef": map[string]any{"name": "git-auth"},
	})
	create(t, ctx, dyn, kustomizations, f.Namespace, "Kustomization", "app", map[string]any{
		"path":      "./",
		"prune":     true,
		"interval":  "1m",
		"sourceRef": map[string]any{"kind": "GitRepository", "name": "app"},
	})
	gr := dyn.Resource(gitRepositories).Namespace(f.Namespace)
	ks := dyn.Resource(kustomizations).Namespace(f.Namespace)
	waitFor(t, ctx, "the ConfigMap from the first commit", cs.CoreV1().ConfigMaps("default").Get, "flux-probe", func(cm *corev1.ConfigMap) (string, bool) {
		return fmt.Sprint(cm.Data), cm.Data["revision"] == "1"
	})
	waitFor(t, ctx, "the Kustomization to be Ready at the first commit", getter(ks), "app", applied("main@sha1:"+commit1))
	if repo.served.Load() == 0 {
		t.Fatal("source-controller fetched nothing with credentials")
	}
	t.Logf("basic auth over plain http: %d requests served with credentials, %d refused", repo.served.Load(), repo.refused.Load())

	// A second commit, and reconcile requests as `flux reconcile
	// kustomization app --with-source` sends them: the source first, then,
	// once it has handled the request, the Kustomization.
	commit2 := repo.commitConfigMap(t, "2")
	start = time.Now()
	requested := requestReconcile(t, ctx, gr, "app")
	poll(t, ctx, "the GitRepository to fetch the second commit", func() (string, bool) {
		o, err := gr.Get(ctx, "app", metav1.GetOptions{})
		if err != nil {
			return err.Error(), false
		}
		handled, _, _ := unstructured.NestedString(o.Object, "status", "lastHandledReconcileAt")
		rev, _, _ := unstructured.NestedString(o.Object, "status", "artifact", "revision")
		return fmt.Sprintf("handled %q, artifact %s", handled, rev), handled == requested && rev == "main@sha1:"+commit2
	})
	fetched := time.Since(start)
	requestReconcile(t, ctx, ks, "app")
	poll(t, ctx, "the second commit to be applied", func() (string, bool) {
		o, err := ks.Get(ctx, "app", metav1.GetOptions{})
		if err != nil {
			return err.Error(), false
		}
		seen, ok := applied("main@sha1:" + commit2)(o)
		if !ok {
			return seen, false
		}
		cm, err := cs.CoreV1().ConfigMaps("default").Get(ctx, "flux-probe", metav1.GetOptions{})
		if err != nil {
			return err.Error(), false
		}
		return fmt.Sprint(cm.Data), cm.Data["revision"] == "2"
	})
	t.Logf("second commit: fetched %s and applied %s after the first reconcile request",
		fetched.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	// Over HTTPS, the Secret's ca.crt makes source-controller trust the
	// server's certificate (GitRepository docs, §HTTPS Certificate
	// Authority).
	tlsSrv := httptest.NewTLSServer(repo.handler())
	t.Cleanup(tlsSrv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw})
	createSecret(t, ctx, cs, f.Namespace, "git-auth-tls", map[string]string{"username": gitUser, "password": gitPassword, "ca.crt": string(ca)})
	create(t, ctx, dyn, gitRepositories, f.Namespace, "GitRepository", "app-tls", map[string]any{
		"url":       tlsSrv.URL + "/app.git",
		"ref":       map[string]any{"branch": "main"},
		"interval":  "1m",
		"secretRef": map[string]any{"name": "git-auth-tls"},
	})
	waitFor(t, ctx, "the GitRepository over HTTPS to be Ready", getter(gr), "app-tls", func(o *unstructured.Unstructured) (string, bool) {
		rev, _, _ := unstructured.NestedString(o.Object, "status", "artifact", "revision")
		status, msg := condition(o, "Ready")
		return fmt.Sprintf("Ready=%s %q, artifact %s", status, msg, rev), status == "True" && rev == "main@sha1:"+commit2
	})
	if err := f.Exited(); err != nil {
		t.Fatal(err)
	}
}

// gitRepo is a bare repository app.git, a working copy that pushes to it,
// and a smart-HTTP handler serving it with basic auth.
type gitRepo struct {
	root, work string
	env        []string
	served     atomic.Int64
	refused    atomic.Int64
}

func newGitRepo(t *testing.T) *gitRepo {
	t.Helper()
	dir := t.TempDir()
	r := &gitRepo{root: filepath.Join(dir, "repos"), work: filepath.Join(dir, "work")}
	// No user or system configuration of this machine takes part.
	r.env = append(os.Environ(),
		"HOME="+dir, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=test", "GIT_AUTHOR_EMAIL=test@example.invalid",
		"GIT_COMMITTER_NAME=test", "GIT_COMMITTER_EMAIL=test@example.invalid",
	)
	r.git(t, dir, "init", "--quiet", "--bare", "--initial-branch=main", filepath.Join(r.root, "app.git"))
	r.git(t, dir, "init", "--quiet", "--initial-branch=main", r.work)
	return r
}

func (r *gitRepo) git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir, cmd.Env = dir, r.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// commitConfigMap commits a ConfigMap whose data.revision is rev, pushes it
// to app.git and returns the commit's hash.
func (r *gitRepo) commitConfigMap(t *testing.T, rev string) string {
	t.Helper()
	cm := fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: flux-probe\n  namespace: default\ndata:\n  revision: %q\n", rev)
	if err := os.WriteFile(filepath.Join(r.work, "configmap.yaml"), []byte(cm), 0o644); err != nil {
		t.Fatal(err)
	}
	r.git(t, r.work, "add", "configmap.yaml")
	r.git(t, r.work, "commit", "--quiet", "-m", "revision "+rev)
	r.git(t, r.work, "push", "--quiet", filepath.Join(r.root, "app.git"), "main")
	return r.git(t, r.work, "rev-parse", "HEAD")
}

// handler serves the repositories read-only through `git http-backend`,
// only to requests with basic auth gitUser:gitPassword; anything else gets a
// 401 with a Basic challenge.
func (r *gitRepo) handler() http.Handler {
	backend := &cgi.Handler{
		Path: "git",
		Args: []string{"http-backend"},
		Env:  []string{"GIT_PROJECT_ROOT=" + r.root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1"},
	}
	if p, err := exec.LookPath("git"); err == nil {
		backend.Path = p
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		user, password, ok := req.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(user), []byte(gitUser)) != 1 ||
			subtle.ConstantTimeCompare([]byte(password), []byte(gitPassword)) != 1 {
			r.refused.Add(1)
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		r.served.Add(1)
		backend.ServeHTTP(w, req)
	})
}

func createSecret(t *testing.T, ctx context.Context, cs *Clients, ns, name string, data map[string]string) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, StringData: data}
	if _, err := cs.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func create(t *testing.T, ctx context.Context, dyn dynamic.Interface, res schema.GroupVersionResource, ns, kind, name string, spec map[string]any) {
	t.Helper()
	o := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": res.GroupVersion().String(),
		"kind":       kind,
		"metadata":   map[string]any{"name": name, "namespace": ns},
		"spec":       spec,
	}}
	if _, err := dyn.Resource(res).Namespace(ns).Create(ctx, o, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating %s %s: %v", kind, name, err)
	}
}

// requestReconcile sets reconcile.fluxcd.io/requestedAt with a merge patch,
// as the flux CLI does, and returns the value.
func requestReconcile(t *testing.T, ctx context.Context, res dynamic.ResourceInterface, name string) string {
	t.Helper()
	now := time.Now().Format(time.RFC3339Nano)
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{"reconcile.fluxcd.io/requestedAt": now}}})
	if _, err := res.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	return now
}

func getter(res dynamic.ResourceInterface) func(context.Context, string, metav1.GetOptions) (*unstructured.Unstructured, error) {
	return func(ctx context.Context, name string, opts metav1.GetOptions) (*unstructured.Unstructured, error) {
		return res.Get(ctx, name, opts)
	}
}

// applied holds for a Kustomization Ready at revision.
func applied(revision string) func(*unstructured.Unstructured) (string, bool) {
	return func(o *unstructured.Unstructured) (string, bool) {
		rev, _, _ := unstructured.NestedString(o.Object, "status", "lastAppliedRevision")
		status, msg := condition(o, "Ready")
		return fmt.Sprintf("Ready=%s %q, lastAppliedRevision %s", status, msg, rev), status == "True" && rev == revision
	}
}

// condition returns the status and message of the condition typ.
func condition(o *unstructured.Unstructured, typ string) (status, message string) {
	conds, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == typ {
			s, _ := m["status"].(string)
			msg, _ := m["message"].(string)
			return s, msg
		}
	}
	return "", ""
}

// poll checks cond every 20ms (timings are measured with it) until it
// holds, failing the test after two minutes.
func poll(t *testing.T, ctx context.Context, what string, cond func() (string, bool)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		seen, ok := cond()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v; last seen: %s", what, ctx.Err(), seen)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
