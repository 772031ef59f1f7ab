package install

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube/fake"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/manifest"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

// world is a fake GitLab with a project the user maintains, an in-memory
// cluster whose agentk "connects" (marks its token used) when its Deployment
// is applied, and a Reporter that records what the action said.
type world struct {
	gl      *fakegitlab.Server
	user    *fakegitlab.User
	project *fakegitlab.Project
	cluster *fake.Cluster
	client  *gitlab.Client
	report  *recorder
	// connect: agentk connects when its Deployment is applied.
	connect bool
	// behind is how far GitLab's clock, which stamps the token's use, is
	// behind this machine's.
	behind time.Duration
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{gl: fakegitlab.New(), cluster: fake.New(), report: &recorder{}, connect: true}
	t.Cleanup(w.gl.Close)
	var token string
	w.project = w.gl.AddProject("infra/agents")
	w.user, token = w.gl.AddMember(w.project, "maria", fakegitlab.Maintainer)
	var err error
	w.client, err = gitlab.New(gitlab.Options{URL: w.gl.URL, Credentials: gitlab.Credentials{Token: token}, RetryBase: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	w.cluster.OnApply = func(o *unstructured.Unstructured) {
		if !w.connect || o.GetKind() != "Deployment" {
			return
		}
		// agentk starts with the token of the Secret it mounts.
		for _, ref := range w.cluster.Objects() {
			if ref.Kind == "Secret" && ref.Namespace == o.GetNamespace() {
				s := w.cluster.Get(ref)
				if tok, ok, _ := unstructured.NestedString(s.Object, "data", "token"); ok {
					w.gl.MarkTokenUsed(decode(t, tok), time.Now().Add(-w.behind))
				}
			}
		}
	}
	return w
}

func (w *world) env() Env {
	return Env{GitLab: w.client, Cluster: w.cluster, Report: w.report, Poll: time.Millisecond}
}

func (w *world) opts(name string) Options {
	in := manifest.Input{Name: name, Namespace: manifest.DefaultNamespace(name)}
	v, err := manifest.Load()
	if err != nil {
		panic(err)
	}
	in.Values = v
	return Options{Name: name, Project: gitlab.ProjectRef{Path: w.project.PathWithNS}, Input: in, Timeout: time.Second}
}

// install runs a fresh install of name that must succeed.
func (w *world) install(t *testing.T, name string) *InstallResult {
	t.Helper()
	res, err := Install(context.Background(), w.env(), InstallOptions{Options: w.opts(name)})
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	return res
}

// active lists the agent's active token IDs.
func (w *world) active(t *testing.T, name string) []int64 {
	t.Helper()
	var out []int64
	for _, a := range w.gl.Agents(w.project) {
		if a.Name != name {
			continue
		}
		for _, tok := range w.gl.AgentTokens(&a) {
			if tok.Status == "active" {
				out = append(out, tok.ID)
			}
		}
	}
	return out
}

// agent is the fake's agent name, which must exist.
func (w *world) agent(t *testing.T, name string) *fakegitlab.Agent {
	t.Helper()
	for _, a := range w.gl.Agents(w.project) {
		if a.Name == name {
			return &a
		}
	}
	t.Fatalf("agent %q is not registered", name)
	return nil
}

// secret is the agent's token Secret in the cluster: the token ID it names
// and the token it holds.
func (w *world) secret(t *testing.T, name string) (int64, string) {
	t.Helper()
	in := w.opts(name).Input
	s, err := w.cluster.GetSecret(context.Background(), in.Namespace, manifest.SecretName(in))
	if err != nil || s == nil {
		t.Fatalf("no token Secret: %v", err)
	}
	return secretToken(s)
}

// tokenValue is the value of the fake's token id.
func (w *world) tokenValue(t *testing.T, name string, id int64) string {
	t.Helper()
	for _, tok := range w.gl.AgentTokens(w.agent(t, name)) {
		if tok.ID == id {
			return tok.Token
		}
	}
	t.Fatalf("no token %d", id)
	return ""
}

// recorder is a Reporter that keeps what it heard.
type recorder struct {
	mu     sync.Mutex
	lines  []string
	phases []string
}

func (r *recorder) Step(msg string)    { r.add("step: " + msg) }
func (r *recorder) Waiting(msg string) { r.add("wait: " + msg) }
func (r *recorder) Phase(p Phase) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.phases = append(r.phases, p.Name)
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, s)
}

func (r *recorder) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}

func decode(t *testing.T, b64 string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// secretObject is a token Secret of agent name holding token id, as
// another writer would leave it.
func secretObject(in manifest.Input, id int64, token string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{
			"name": manifest.SecretName(in), "namespace": in.Namespace,
			"annotations": map[string]any{TokenIDAnnotation: fmt.Sprint(id)},
			"labels":      map[string]any{"app.kubernetes.io/name": "gitlab-agent", "app.kubernetes.io/instance": in.Name},
		},
		"data": map[string]any{"token": base64.StdEncoding.EncodeToString([]byte(token))},
	}}
	return u
}

// failedSaying fails the test unless err is an error that says each of want;
// what is the action that should have failed.
func failedSaying(t *testing.T, what string, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s succeeded", what)
	}
	for _, s := range want {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error lacks %q: %v", s, err)
		}
	}
}
