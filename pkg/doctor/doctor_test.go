package doctor

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/install"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube/fake"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/manifest"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakekas"
)

// world is a fake GitLab, an in-memory cluster with the agent installed by
// install, and a KAS agent endpoint; setup options change what is built.
type world struct {
	gl       *fakegitlab.Server
	user     *fakegitlab.User
	token    string
	project  *fakegitlab.Project
	cluster  *fake.Cluster
	endpoint *fakekas.AgentEndpoint
	env      Env
}

type setup struct {
	endpoint     fakekas.Endpoint
	path         string                          // of the endpoint ("/" by default)
	agentAddress func(endpointURL string) string // what agentk is given (nil: the endpoint's URL)
	noCA         bool                            // agentk is not given the endpoint's CA
	agentVersion string
	notConnected bool
	role         fakegitlab.Role
	values       func(*manifest.Values) // changes to the chart's values before install
}

func newWorld(t *testing.T, s setup) *world {
	t.Helper()
	if s.path == "" {
		s.path = "/"
	}
	if s.role == 0 {
		s.role = fakegitlab.Maintainer
	}
	w := &world{gl: fakegitlab.New(), cluster: fake.New(), endpoint: fakekas.NewAgentEndpoint(s.endpoint, s.path)}
	t.Cleanup(w.gl.Close)
	t.Cleanup(w.endpoint.Close)
	w.project = w.gl.AddProject("infra/agents")
	w.user, w.token = w.gl.AddMember(w.project, "maria", fakegitlab.Maintainer)
	w.gl.SetMetadata(func(m *fakegitlab.Metadata) { m.KAS.ExternalURL = w.endpoint.URL })
	client, err := gitlab.New(gitlab.Options{URL: w.gl.URL, Credentials: gitlab.Credentials{Token: w.token, Source: "GITLAB_TOKEN"}, RetryBase: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	w.cluster.OnApply = func(o *unstructured.Unstructured) {
		if s.notConnected || o.GetKind() != "Deployment" {
			return
		}
		for _, ref := range w.cluster.Objects() {
			if ref.Kind == "Secret" && ref.Namespace == o.GetNamespace() {
				if tok, ok, _ := unstructured.NestedString(w.cluster.Get(ref).Object, "data", "token"); ok {
					b, _ := base64.StdEncoding.DecodeString(tok)
					w.gl.MarkTokenUsed(string(b), time.Now())
				}
			}
		}
	}
	values, err := manifest.Load()
	if err != nil {
		t.Fatal(err)
	}
	values.Config.KasAddress = w.endpoint.URL
	if s.agentAddress != nil {
		values.Config.KasAddress = s.agentAddress(w.endpoint.URL)
	}
	if !s.noCA {
		values.Config.KasCaCert = w.endpoint.CAPEM()
	}
	if s.values != nil {
		s.values(&values)
	}
	set := manifest.Keys{manifest.KeyKasAddress: true}
	if s.agentVersion != "" {
		values.Image.Tag, set[manifest.KeyImageTag] = s.agentVersion, true
	}
	in := manifest.Input{Name: "prod", Namespace: "gitlab-agent-prod", Values: values, Set: set}
	if _, err := install.Install(context.Background(), install.Env{GitLab: client, Cluster: w.cluster, Poll: time.Millisecond},
		install.InstallOptions{Options: install.Options{Name: "prod", Project: gitlab.ProjectRef{Path: "infra/agents"}, Input: in, Timeout: time.Second, NoWait: s.notConnected}}); err != nil {
		t.Fatalf("install: %v", err)
	}
	w.gl.SetRole(w.project, w.user, s.role)
	// The pods the Deployment would run, ready.
	for i := 0; i < 2; i++ {
		w.cluster.Put(pod(fmt.Sprintf("prod-%d", i), "", 0))
		w.cluster.SetLogs("gitlab-agent-prod", fmt.Sprintf("prod-%d", i), "gitlab-agent", `{"level":"info","msg":"Feature status change"}`+"\n")
	}
	anon, err := gitlab.New(gitlab.Options{URL: w.gl.URL, Anonymous: true, RetryBase: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	w.env = Env{GitLabURL: w.gl.URL, GitLab: client, Anonymous: anon, Project: gitlab.ProjectRef{Path: "infra/agents"},
		Cluster: w.cluster, RootCAs: x509.NewCertPool(), Timeout: 2 * time.Second}
	return w
}

// pod is a pod of the agent's Deployment; waiting names a container state.
func pod(name, waiting string, restarts int) *unstructured.Unstructured {
	return podFinished(name, waiting, restarts, 5*time.Minute)
}

// podFinished is a pod whose container last terminated ago.
func podFinished(name, waiting string, restarts int, ago time.Duration) *unstructured.Unstructured {
	state := map[string]any{"running": map[string]any{}}
	if waiting != "" {
		state = map[string]any{"waiting": map[string]any{"reason": waiting}}
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": name, "namespace": "gitlab-agent-prod",
			"labels": map[string]any{"app.kubernetes.io/name": "gitlab-agent", "app.kubernetes.io/instance": "prod"}},
		"status": map[string]any{"phase": "Running", "containerStatuses": []any{map[string]any{
			"name": "gitlab-agent", "ready": waiting == "", "restartCount": int64(restarts), "image": "agentk", "imageID": "", "state": state,
			"lastState": map[string]any{"terminated": map[string]any{"reason": "Error", "exitCode": int64(1),
				"finishedAt": time.Now().Add(-ago).UTC().Format(time.RFC3339)}},
		}}},
	}}
}

func (w *world) run(t *testing.T, name string) *Report {
	t.Helper()
	return Run(context.Background(), w.env, name)
}

func byID(r *Report) map[string]Check {
	out := map[string]Check{}
	for _, c := range r.Checks {
		out[c.ID] = c
	}
	return out
}

func TestHealthy(t *testing.T) {
	w := newWorld(t, setup{})
	before := w.cluster.Count(fake.GetSecret)
	start := time.Now()
	r := w.run(t, "prod")
	took := time.Since(start)
	for _, c := range r.Checks {
		if c.Status != Pass && !(c.Status == Skip && c.ID == "k8s-proxy") {
			t.Errorf("%s: %s %q (fix %q)", c.ID, c.Status, c.Message, c.Fix)
		}
	}
	if r.Verdict != Healthy || r.Failed() {
		t.Errorf("verdict %s", r.Verdict)
	}
	if len(r.Checks) != len(IDs()) {
		t.Errorf("%d checks, want %d", len(r.Checks), len(IDs()))
	}
	if w.endpoint.Upgrades() != 1 {
		t.Errorf("%d WebSocket upgrades, want 1", w.endpoint.Upgrades())
	}
	t.Logf("healthy run in %s", took)
	// No token value is in the report.
	b, _ := json.Marshal(r)
	for _, tok := range w.gl.AgentTokens(&w.gl.Agents(w.project)[0]) {
		if strings.Contains(string(b), tok.Token) {
			t.Error("the report holds an agent token")
		}
	}
	if strings.Contains(string(b), w.token) {
		t.Error("the report holds the GitLab token")
	}
	// The token Secret's data is never read.
	if n := w.cluster.Count(fake.GetSecret); n != before {
		t.Errorf("doctor read the token Secret %d times", n-before)
	}
	if w.cluster.Count(fake.SecretMetadata) == 0 {
		t.Error("agent-token did not read the Secret's metadata")
	}
}

// want checks that id has the status and that its fix (or message) says s.
func want(t *testing.T, r *Report, id string, st Status, s string) {
	t.Helper()
	c := byID(r)[id]
	if c.Status != st || !strings.Contains(c.Fix+" "+c.Message, s) {
		t.Errorf("%s: %s %q, fix %q; want %s saying %q", id, c.Status, c.Message, c.Fix, st, s)
	}
	if st == Fail && r.Verdict != Broken || st == Warn && r.Verdict == Healthy {
		t.Errorf("%s %s, verdict %s", id, st, r.Verdict)
	}
}

func TestTrailingSlash(t *testing.T) {
	// KAS on GitLab's own host, and agentk given the address without its
	// trailing slash.
	w := newWorld(t, setup{path: "/-/kubernetes-agent/", agentAddress: func(u string) string { return strings.TrimSuffix(u, "/") }})
	r := w.run(t, "prod")
	want(t, r, "kas-address", Fail, "trailing slash")
	want(t, r, "kas-handshake", Fail, "trailing slash")
	if w.endpoint.Upgrades() != 0 {
		t.Errorf("%d upgrades", w.endpoint.Upgrades())
	}
	// With the slash, the same endpoint passes.
	r = newWorld(t, setup{path: "/-/kubernetes-agent/"}).run(t, "prod")
	for _, id := range []string{"kas-address", "kas-handshake"} {
		if c := byID(r)[id]; c.Status != Pass {
			t.Errorf("%s with the slash: %s %q", id, c.Status, c.Message)
		}
	}
}

func pool(pems ...string) *x509.CertPool {
	p := x509.NewCertPool()
	for _, s := range pems {
		p.AppendCertsFromPEM([]byte(s))
	}
	return p
}

// TestSameAddressWrittenOtherwise: what differs only in how it is written
// (case, the default port, an empty path for "/") is the same address.
func TestSameAddressWrittenOtherwise(t *testing.T) {
	for _, tc := range []struct{ agent, advertised string }{
		{"wss://kas.example.com", "wss://kas.example.com/"},
		{"wss://KAS.Example.com:443/", "wss://kas.example.com"},
		{"WSS://kas.example.com/", "wss://kas.example.com:443/"},
	} {
		w := newWorld(t, setup{agentAddress: func(string) string { return tc.agent }})
		w.gl.SetMetadata(func(m *fakegitlab.Metadata) { m.KAS.ExternalURL = tc.advertised })
		want(t, w.run(t, "prod"), "kas-address", Pass, "as GitLab advertises")
	}
	// A different port or path is another address.
	for _, tc := range []struct{ agent, advertised, says string }{
		{"wss://kas.example.com:8443/", "wss://kas.example.com/", "host kas.example.com:8443"},
		{"wss://kas.example.com/-/kubernetes-agent", "wss://kas.example.com/-/kubernetes-agent/", "trailing slash"},
	} {
		w := newWorld(t, setup{agentAddress: func(string) string { return tc.agent }})
		w.gl.SetMetadata(func(m *fakegitlab.Metadata) { m.KAS.ExternalURL = tc.advertised })
		want(t, w.run(t, "prod"), "kas-address", Fail, tc.says)
	}
}

// TestHangingCluster: a cluster that never answers takes only the cluster
// checks down; KAS is still probed as GitLab advertises it.
func TestHangingCluster(t *testing.T) {
	w := newWorld(t, setup{})
	w.env.Cluster, w.env.Timeout = hangingCluster{w.cluster}, 300*time.Millisecond
	w.env.RootCAs = pool(w.endpoint.CAPEM())
	r := w.run(t, "prod")
	want(t, r, "cluster-reachable", Fail, "kubeconfig context")
	for _, id := range []string{"kas-dns", "kas-tls", "kas-handshake", "agent-registered", "agent-connected", "gitlab-token"} {
		if c := byID(r)[id]; c.Status != Pass {
			t.Errorf("%s: %s %q", id, c.Status, c.Message)
		}
	}
}

// hangingCluster answers nothing until the caller gives up.
type hangingCluster struct{ *fake.Cluster }

func (hangingCluster) Reachable(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

func (hangingCluster) FindDeployments(ctx context.Context, _ string) ([]*appsv1.Deployment, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestTokenSecretFoundByItsMount: with the observability TLS Secret
// mounted too, agent-token still reads the Secret behind --token-file.
func TestTokenSecretFoundByItsMount(t *testing.T) {
	w := newWorld(t, setup{values: func(v *manifest.Values) {
		v.Config.Observability.TLS = manifest.ObservabilityTLS{Enabled: true, Cert: "cert", Key: "key", Secret: manifest.ObservabilityTLSSecret{Create: true, Name: "obs-tls"}}
	}})
	want(t, w.run(t, "prod"), "agent-token", Pass, "")
}

func TestUntrustedCertificate(t *testing.T) {
	w := newWorld(t, setup{noCA: true})
	r := w.run(t, "prod")
	want(t, r, "kas-tls", Fail, "config.kasCaCert")
	want(t, r, "kas-handshake", Fail, "kas-tls")
}

func TestBlackHoledKASDoesNotHang(t *testing.T) {
	w := newWorld(t, setup{endpoint: fakekas.BlackHole, noCA: true})
	w.env.Timeout = 500 * time.Millisecond
	start := time.Now()
	r := w.run(t, "prod")
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("doctor took %s with a KAS that never answers", took)
	}
	want(t, r, "kas-tls", Fail, "the TLS handshake gets no answer within 500ms")
	want(t, r, "kas-tls", Fail, "check egress to 127.0.0.1")
	want(t, r, "kas-handshake", Fail, "gets no answer within 500ms")
	// A port where nothing listens is refused, not a timeout.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	w = newWorld(t, setup{agentAddress: func(string) string { return "wss://" + addr + "/" }})
	want(t, w.run(t, "prod"), "kas-tls", Fail, "connection refused")
}

func TestUnresolvableKAS(t *testing.T) {
	w := newWorld(t, setup{agentAddress: func(string) string { return "wss://kas.invalid/" }})
	r := w.run(t, "prod")
	want(t, r, "kas-dns", Fail, "does not resolve")
	want(t, r, "kas-address", Fail, "kas.invalid")
}

func TestProtocolMismatch(t *testing.T) {
	// agentk dials wss:// where KAS speaks gRPC only.
	w := newWorld(t, setup{endpoint: fakekas.GRPC, agentAddress: func(u string) string { return "wss://" + strings.TrimPrefix(u, "grpcs://") }})
	r := w.run(t, "prod")
	want(t, r, "kas-handshake", Fail, "speaks another protocol")
	if c := byID(r)["kas-handshake"]; !strings.Contains(c.Fix, "grpcs://") {
		t.Errorf("fix %q", c.Fix)
	}
	want(t, r, "kas-address", Warn, "another protocol")
	// grpcs:// where KAS speaks WebSocket only: no HTTP/2 there.
	w = newWorld(t, setup{agentAddress: func(u string) string { return "grpcs://" + strings.TrimPrefix(u, "wss://") }})
	want(t, w.run(t, "prod"), "kas-handshake", Fail, "does not offer HTTP/2")
	// And grpcs:// where it is gRPC: HTTP/2 is there.
	r = newWorld(t, setup{endpoint: fakekas.GRPC}).run(t, "prod")
	if c := byID(r)["kas-handshake"]; c.Status != Pass {
		t.Errorf("grpcs: %s %q", c.Status, c.Message)
	}
}

func TestVersionSkew(t *testing.T) {
	r := newWorld(t, setup{agentVersion: "v17.9.0"}).run(t, "prod")
	want(t, r, "kas-version-skew", Fail, "--agent-version v17.3.1")
	r = newWorld(t, setup{agentVersion: "v17.1.0"}).run(t, "prod")
	want(t, r, "kas-version-skew", Warn, "upgrade prod")
	// The minor version either side of KAS's is supported.
	r = newWorld(t, setup{agentVersion: "v17.4.0"}).run(t, "prod")
	want(t, r, "kas-version-skew", Pass, "agentk v17.4.0 with KAS 17.3.1")
	// KAS on a pre-release: the fix names the release before it, a tag
	// that exists.
	w := newWorld(t, setup{agentVersion: "v19.2.0"})
	w.gl.SetMetadata(func(m *fakegitlab.Metadata) { m.KAS.Version = "19.7.0-rc42" })
	want(t, w.run(t, "prod"), "kas-version-skew", Warn, "upgrade prod --agent-version v19.6.0")
}

func TestTokenFailures(t *testing.T) {
	w := newWorld(t, setup{})
	a := w.gl.Agents(w.project)[0]
	// A second token: rotation is blocked.
	w.gl.AddAgentToken(&a, "spare", w.user)
	r := w.run(t, "prod")
	want(t, r, "agent-token-limit", Warn, "token revoke prod")

	// The Secret's token revoked.
	w = newWorld(t, setup{})
	a = w.gl.Agents(w.project)[0]
	revokeAll(t, w, a)
	r = w.run(t, "prod")
	want(t, r, "agent-token", Fail, "install prod")
	want(t, r, "agent-connected", Fail, "kas-*")

	// A Secret that does not say which token it holds.
	w = newWorld(t, setup{})
	for _, ref := range w.cluster.Objects() {
		if ref.Kind == "Secret" {
			s := w.cluster.Get(ref)
			s.SetAnnotations(nil)
			w.cluster.Put(s)
		}
	}
	want(t, w.run(t, "prod"), "agent-token", Warn, "adopts")
}

func revokeAll(t *testing.T, w *world, a fakegitlab.Agent) {
	t.Helper()
	for _, tok := range w.gl.AgentTokens(&a) {
		req, _ := http.NewRequest(http.MethodDelete, fmt.Sprintf("%s/api/v4/projects/%d/cluster_agents/%d/tokens/%d", w.gl.URL, w.project.ID, a.ID, tok.ID), nil)
		req.Header.Set("PRIVATE-TOKEN", w.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
}

func TestNeverConnected(t *testing.T) {
	want(t, newWorld(t, setup{notConnected: true}).run(t, "prod"), "agent-connected", Fail, "never connected")
}

func TestNotRegisteredNorInstalled(t *testing.T) {
	r := newWorld(t, setup{}).run(t, "other")
	want(t, r, "agent-registered", Fail, "install other")
	want(t, r, "agent-pods", Fail, "not installed in this cluster")
}

func TestAgentConfigProblems(t *testing.T) {
	w := newWorld(t, setup{})
	w.gl.SetFile(w.project, "main", ".gitlab/agents/prod/config.yaml",
		[]byte("gitops:\n  manifest_projects:\n  - id: infra/agents\nci_access:\n  projects:\n  - id: infra/agents\n  - id: gone/away\n  groups:\n  - id: infra\n  - id: nowhere\n"))
	r := w.run(t, "prod")
	want(t, r, "agent-config", Warn, "gitops.manifest_projects")
	c := byID(r)["agent-config"]
	if !strings.Contains(c.Message, "gone/away") || !strings.Contains(c.Message, "nowhere") || strings.Contains(c.Message, "projects names infra/agents") {
		t.Errorf("agent-config: %q", c.Message)
	}
	w.gl.SetFile(w.project, "main", ".gitlab/agents/prod/config.yaml", []byte("ci_access: [\n"))
	want(t, w.run(t, "prod"), "agent-config", Fail, "cannot parse")

	// GitLab fails on the names: not a pass, not a "does not exist".
	w.gl.SetFile(w.project, "main", ".gitlab/agents/prod/config.yaml", []byte("ci_access:\n  groups:\n  - id: infra\n"))
	w.gl.Inject(fakegitlab.Fault{Route: "GET /api/v4/groups/{id}", Status: http.StatusInternalServerError})
	r = w.run(t, "prod")
	want(t, r, "agent-config", Warn, "not fully checked: GitLab did not answer for infra")
	if c := byID(r)["agent-config"]; strings.Contains(c.Message, "does not exist") || !strings.Contains(c.Fix, "run doctor again") {
		t.Errorf("agent-config: %q / %q", c.Message, c.Fix)
	}
}

// TestInheritedMaintainer: a Maintainer through the group (GitLab then
// sends no project_access) has the role every command needs.
func TestInheritedMaintainer(t *testing.T) {
	w := newWorld(t, setup{})
	w.gl.SetInheritedRole(w.project, w.user, fakegitlab.Maintainer)
	want(t, w.run(t, "prod"), "gitlab-token", Pass, "Maintainer")
}

func TestGitLabFailures(t *testing.T) {
	t.Run("unreachable", func(t *testing.T) {
		w := newWorld(t, setup{})
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		url := "http://" + l.Addr().String()
		l.Close()
		anon, _ := gitlab.New(gitlab.Options{URL: url, Anonymous: true, MaxRetries: 1, RetryBase: time.Millisecond})
		w.env.GitLab, w.env.Anonymous, w.env.GitLabURL = nil, anon, url
		w.env.NoCredentials = fmt.Errorf("no credentials")
		r := w.run(t, "prod")
		want(t, r, "gitlab-reachable", Fail, "HTTPS_PROXY")
		// The cluster checks still run.
		if c := byID(r)["agent-pods"]; c.Status != Pass {
			t.Errorf("agent-pods without GitLab: %s %q", c.Status, c.Message)
		}
		if c := byID(r)["agent-token"]; c.Status != Skip {
			t.Errorf("agent-token without GitLab: %s", c.Status)
		}
		// Why there are no credentials is said once, by gitlab-token; the
		// checks that need them point there.
		said := 0
		for _, c := range r.Checks {
			if strings.Contains(c.Message, "no credentials") {
				said++
			}
		}
		if c := byID(r)["gitlab-token"]; said != 1 || c.Message != "no credentials" {
			t.Errorf("the missing credentials are explained in %d checks, gitlab-token says %q; want once, there", said, c.Message)
		}
		for _, id := range []string{"agent-registered", "agent-token", "agent-config", "k8s-proxy"} {
			if c := byID(r)[id]; c.Status != Skip || c.Message != "no GitLab credentials: see gitlab-token" {
				t.Errorf("%s without credentials: %s %q", id, c.Status, c.Message)
			}
		}
	})
	t.Run("an HTML page", func(t *testing.T) {
		w := newWorld(t, setup{})
		html := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			rw.Header().Set("Content-Type", "text/html")
			_, _ = rw.Write([]byte("<html><body>Sign in</body></html>"))
		}))
		defer html.Close()
		anon, _ := gitlab.New(gitlab.Options{URL: html.URL, Anonymous: true, RetryBase: time.Millisecond})
		w.env.GitLab, w.env.Anonymous, w.env.GitLabURL, w.env.NoCredentials = nil, anon, html.URL, fmt.Errorf("none")
		want(t, w.run(t, "prod"), "gitlab-reachable", Fail, "--gitlab-url")
	})
	t.Run("a token GitLab refuses", func(t *testing.T) {
		w := newWorld(t, setup{})
		bad, _ := gitlab.New(gitlab.Options{URL: w.gl.URL, Credentials: gitlab.Credentials{Token: "glpat-nope", Source: "GITLAB_TOKEN"}, RetryBase: time.Millisecond})
		w.env.GitLab = bad
		want(t, w.run(t, "prod"), "gitlab-token", Fail, "GITLAB_TOKEN")
	})
	t.Run("only a CI job token", func(t *testing.T) {
		// The agents API refuses a job token: its checks skip and point at
		// gitlab-token (a warning), they do not fail; the rest runs.
		w := newWorld(t, setup{})
		job, _ := gitlab.New(gitlab.Options{URL: w.gl.URL, Credentials: gitlab.Credentials{JobToken: w.gl.AddJobToken(w.user, w.project), Source: "CI_JOB_TOKEN"}, RetryBase: time.Millisecond})
		w.env.GitLab = job
		before := len(w.gl.Requests())
		r := w.run(t, "prod")
		want(t, r, "gitlab-token", Warn, "api scope")
		for _, id := range []string{"agent-registered", "agent-token", "agent-config", "k8s-proxy"} {
			if c := byID(r)[id]; c.Status != Skip {
				t.Errorf("%s with a job token: %s %q", id, c.Status, c.Message)
			}
		}
		for _, id := range []string{"kas-tls", "agent-pods", "cluster-reachable"} {
			if c := byID(r)[id]; c.Status != Pass {
				t.Errorf("%s with a job token: %s %q", id, c.Status, c.Message)
			}
		}
		if r.Failed() {
			t.Errorf("a job token alone fails doctor: %+v", r)
		}
		for _, q := range w.gl.Requests()[before:] {
			if strings.Contains(q.Path, "cluster_agents") || strings.Contains(q.Path, "repository") {
				t.Errorf("asked %s with a job token", q.Path)
			}
		}
	})
	t.Run("a Developer", func(t *testing.T) {
		want(t, newWorld(t, setup{role: fakegitlab.Developer}).run(t, "prod"), "gitlab-token", Warn, "Maintainer")
	})
	t.Run("a Reporter", func(t *testing.T) {
		want(t, newWorld(t, setup{role: fakegitlab.Reporter}).run(t, "prod"), "gitlab-token", Fail, "Developer role")
	})
	t.Run("KAS disabled", func(t *testing.T) {
		w := newWorld(t, setup{})
		w.gl.SetMetadata(func(m *fakegitlab.Metadata) { m.KAS.Enabled = false })
		r := w.run(t, "prod")
		want(t, r, "kas-enabled", Fail, "enables the agent server")
		if c := byID(r)["gitlab-reachable"]; c.Status != Pass {
			t.Errorf("gitlab-reachable: %s", c.Status)
		}
	})
}

func TestClusterFailures(t *testing.T) {
	t.Run("unreachable", func(t *testing.T) {
		w := newWorld(t, setup{})
		w.cluster.Fail(fake.Reachable, w.cluster.Count(fake.Reachable)+1, fmt.Errorf("cannot reach the cluster at https://x"))
		w.cluster.Fail(fake.Reachable, w.cluster.Count(fake.Reachable)+2, fmt.Errorf("cannot reach the cluster at https://x"))
		r := w.run(t, "prod")
		want(t, r, "cluster-reachable", Fail, "kubeconfig context")
		for _, id := range []string{"agent-pods", "agent-logs", "agent-token"} {
			if c := byID(r)[id]; c.Status != Skip {
				t.Errorf("%s: %s %q", id, c.Status, c.Message)
			}
		}
	})
	t.Run("no cluster", func(t *testing.T) {
		w := newWorld(t, setup{})
		w.env.Cluster, w.env.NoCluster = nil, fmt.Errorf("no kubeconfig")
		r := w.run(t, "prod")
		for _, id := range []string{"cluster-reachable", "agent-pods", "agent-logs", "agent-token", "kas-version-skew"} {
			if c := byID(r)[id]; c.Status != Skip {
				t.Errorf("%s: %s %q", id, c.Status, c.Message)
			}
		}
		// KAS is probed as GitLab advertises it (with the system's CAs).
		w.env.RootCAs = pool(w.endpoint.CAPEM())
		r = w.run(t, "prod")
		for _, id := range []string{"kas-dns", "kas-tls", "kas-handshake", "agent-registered", "agent-connected"} {
			if c := byID(r)[id]; c.Status != Pass {
				t.Errorf("%s: %s %q", id, c.Status, c.Message)
			}
		}
	})
	t.Run("a crash loop", func(t *testing.T) {
		w := newWorld(t, setup{})
		w.cluster.Rollout = func(*appsv1.Deployment) kube.RolloutStatus { return kube.RolloutStatus{Desired: 2, Available: 1} }
		// Apply again so that the Deployment's status follows Rollout.
		d := w.cluster.Get(kube.Ref{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "gitlab-agent-prod", Name: "prod-gitlab-agent-v2"})
		w.cluster.Put(d)
		w.cluster.Put(pod("prod-1", "CrashLoopBackOff", 7))
		targets, _ := w.cluster.MapAll(mustManifests(t, d), "gitlab-agent-prod")
		_ = w.cluster.ApplyAll(context.Background(), targets, kube.FieldManager)
		want(t, w.run(t, "prod"), "agent-pods", Fail, "CrashLoopBackOff")
	})
	t.Run("restarts long ago", func(t *testing.T) {
		w := newWorld(t, setup{})
		w.cluster.Put(podFinished("prod-1", "", 3, 3*time.Hour))
		want(t, w.run(t, "prod"), "agent-pods", Pass, "3 restarts")
		w.cluster.Put(podFinished("prod-1", "", 4, 10*time.Minute))
		want(t, w.run(t, "prod"), "agent-pods", Warn, "restarted 4 times, last 10m")
	})
	// The second token starts at byte 188 of its line, so that the 200-byte
	// clip would cut it to a stub too short to look like a token.
	line2 := `{"level":"error","msg":"token glagent-abcdefghijklmnop is 401 Unauthorized `
	line2 += strings.Repeat("x", 188-len(line2)) + `glagent-qrstuvwxyz0123456789"}`
	logs := `{"level":"error","msg":"Error handling a connection","error":"rpc error: code = Unavailable desc = connection error: tls: failed to verify certificate: x509: certificate signed by unknown authority"}` + "\n" +
		line2 + "\n"
	for _, connected := range []bool{false, true} {
		t.Run(fmt.Sprintf("errors in the logs, connected %v", connected), func(t *testing.T) {
			w := newWorld(t, setup{notConnected: !connected})
			w.cluster.SetLogs("gitlab-agent-prod", "prod-0", "gitlab-agent", logs)
			r := w.run(t, "prod")
			if connected {
				// Connected now: what it logged was passing.
				want(t, r, "agent-logs", Warn, "agentk is connected, but logged")
			} else {
				want(t, r, "agent-logs", Fail, "config.kasCaCert")
			}
			c := byID(r)["agent-logs"]
			if !strings.Contains(c.Fix, "active token") || strings.Contains(c.Message, "glagent-") {
				t.Errorf("agent-logs: %q / %q", c.Message, c.Fix)
			}
			for _, q := range w.cluster.LogQueries() {
				if q.Since != logWindow || q.Lines == 0 || q.Limit == 0 {
					t.Errorf("logs read with %+v: want the last %s, bounded", q, logWindow)
				}
			}
		})
	}
}

func mustManifests(t *testing.T, objs ...*unstructured.Unstructured) []kube.Manifest {
	t.Helper()
	var maps []map[string]any
	for _, o := range objs {
		maps = append(maps, o.Object)
	}
	ms, err := kube.FromObjects(maps, "test")
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func TestK8sProxy(t *testing.T) {
	var got string
	status := http.StatusOK
	proxy := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Authorization") + " " + r.URL.Path
		rw.WriteHeader(status)
	}))
	defer proxy.Close()
	w := newWorld(t, setup{})
	w.gl.SetMetadata(func(m *fakegitlab.Metadata) { m.KAS.ExternalK8sProxyURL = proxy.URL + "/k8s-proxy" })
	w.env.ProxyCredential = func(id int64) (string, bool) { return fmt.Sprintf("pat:%d:glpat-x", id), true }
	r := w.run(t, "prod")
	if c := byID(r)["k8s-proxy"]; c.Status != Pass || !strings.HasSuffix(got, " /k8s-proxy/version") || !strings.HasPrefix(got, "Bearer pat:") {
		t.Errorf("k8s-proxy: %s %q; KAS saw %q", c.Status, c.Message, got)
	}
	status = http.StatusForbidden
	want(t, w.run(t, "prod"), "k8s-proxy", Fail, "--ci-access-project")
	status = http.StatusUnauthorized
	want(t, w.run(t, "prod"), "k8s-proxy", Fail, "token-cache clear")
	w.env.ProxyCredential = func(int64) (string, bool) { return "", false }
	want(t, w.run(t, "prod"), "k8s-proxy", Skip, "kubeconfig prod")
}

// TestK8sProxyKeepsTheCredential: the proxy URL GitLab advertises may
// redirect elsewhere or be cleartext; the credential goes to neither.
func TestK8sProxyKeepsTheCredential(t *testing.T) {
	var mu sync.Mutex
	var stolen []string
	thief := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		stolen = append(stolen, r.Header.Get("Authorization"))
		mu.Unlock()
	}))
	defer thief.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		http.Redirect(rw, r, thief.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	w := newWorld(t, setup{})
	w.env.ProxyCredential = func(id int64) (string, bool) { return fmt.Sprintf("pat:%d:glpat-secret", id), true }
	w.gl.SetMetadata(func(m *fakegitlab.Metadata) { m.KAS.ExternalK8sProxyURL = redirector.URL + "/k8s-proxy" })
	want(t, w.run(t, "prod"), "k8s-proxy", Fail, "was not sent on")
	mu.Lock()
	if len(stolen) > 0 {
		t.Errorf("the redirect target got %q", stolen)
	}
	mu.Unlock()

	w.gl.SetMetadata(func(m *fakegitlab.Metadata) { m.KAS.ExternalK8sProxyURL = "http://kas.example.invalid/k8s-proxy" })
	want(t, w.run(t, "prod"), "k8s-proxy", Skip, "not encrypted")
}

// stuckLogs is a cluster whose log reads never return, context or not.
type stuckLogs struct{ *fake.Cluster }

func (stuckLogs) PodLogs(context.Context, string, string, string, kube.LogQuery) (string, error) {
	select {}
}

func TestACheckThatIgnoresItsBoundStillEnds(t *testing.T) {
	w := newWorld(t, setup{})
	w.env.Cluster, w.env.Timeout = stuckLogs{w.cluster}, 200*time.Millisecond
	r := w.run(t, "prod")
	want(t, r, "agent-logs", Fail, "no answer within 200ms")
	if c := byID(r)["agent-pods"]; c.Status != Pass {
		t.Errorf("agent-pods: %s %q", c.Status, c.Message)
	}
}

func TestInfer(t *testing.T) {
	w := newWorld(t, setup{})
	if n, err := Infer(context.Background(), w.env); n != "prod" || err != nil {
		t.Errorf("one agent in the cluster: %q, %v", n, err)
	}
	// Without a cluster, the project's only agent.
	w.env.Cluster = nil
	if n, err := Infer(context.Background(), w.env); n != "prod" || err != nil {
		t.Errorf("one agent in the project: %q, %v", n, err)
	}
	w.gl.AddAgent(w.project, "staging", w.user)
	var ne *NameError
	if _, err := Infer(context.Background(), w.env); !errors.As(err, &ne) || !strings.Contains(err.Error(), "several (prod, staging)") {
		t.Errorf("two agents in the project: %v", err)
	}
	// Two agents in the cluster: the cluster's say, listed.
	w = newWorld(t, setup{})
	d := w.cluster.Get(kube.Ref{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "gitlab-agent-prod", Name: "prod-gitlab-agent-v2"})
	d.SetName("edge-gitlab-agent-v2")
	d.SetLabels(map[string]string{"app.kubernetes.io/name": "gitlab-agent", "app.kubernetes.io/instance": "edge"})
	w.cluster.Put(d)
	if _, err := Infer(context.Background(), w.env); !errors.As(err, &ne) || !strings.Contains(err.Error(), "several agents run in this cluster (edge, prod)") {
		t.Errorf("two agents in the cluster: %v", err)
	}
	// Nothing to go on.
	if _, err := Infer(context.Background(), Env{}); !errors.As(err, &ne) {
		t.Errorf("nothing: %v", err)
	}
}
