package cmd

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

// TestKubeconfigCIWithTheJobTokenAlone: in a job with only CI_JOB_TOKEN,
// kubeconfig --ci writes the context with no agents API call, the proxy URL
// from /metadata when the job token may read it, else derived from
// CI_SERVER_URL; nothing secret is written.
func TestKubeconfigCIWithTheJobTokenAlone(t *testing.T) {
	w := newInProcess(t)
	jobToken := w.gl.AddJobToken(w.user, w.project)
	t.Setenv("CI", "true")
	t.Setenv("CI_SERVER_URL", w.gl.URL)
	t.Setenv("CI_PROJECT_ID", strconv.FormatInt(w.project.ID, 10))
	t.Setenv("CI_JOB_TOKEN", jobToken)
	w.gl.SetMetadata(func(m *fakegitlab.Metadata) { m.KAS.ExternalK8sProxyURL = w.gl.URL + "/-/k8s-proxy-from-metadata" })
	dir := t.TempDir()

	kc := filepath.Join(dir, "metadata")
	code, out, errOut := w.runBare(t, "kubeconfig", "101", "--ci", "--kubeconfig", kc)
	if code != 0 || !strings.Contains(errOut, "(from GitLab's /metadata)") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	wantServer(t, kc, w.gl.URL+"/-/k8s-proxy-from-metadata", jobToken)

	// /metadata refuses the job token: the URL is derived.
	w.gl.Inject(fakegitlab.Fault{Route: "GET /api/v4/metadata", Status: 403})
	kc = filepath.Join(dir, "derived")
	code, out, errOut = w.runBare(t, "kubeconfig", "101", "--ci", "--kubeconfig", kc)
	if code != 0 || !strings.Contains(errOut, "derived from "+w.gl.URL) {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	wantServer(t, kc, w.gl.URL+"/-/kubernetes-agent/k8s-proxy", jobToken)
	for _, r := range w.gl.Requests() {
		if strings.Contains(r.Path, "cluster_agents") || strings.Contains(r.Path, "/projects") {
			t.Errorf("a call a job token cannot make: %s %s", r.Method, r.Path)
		}
	}

	// GitLab's context name, the ID read from the injected KUBECONFIG.
	injected := filepath.Join(dir, "injected")
	if err := os.WriteFile(injected, []byte(`apiVersion: v1
kind: Config
clusters: [{name: gitlab, cluster: {server: "https://kas.example.com/k8s-proxy"}}]
users: [{name: agent:104, user: {token: "ci:104:`+jobToken+`"}}]
contexts: [{name: "infra/agents:prod", context: {cluster: gitlab, user: "agent:104"}}]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", injected)
	kc = filepath.Join(dir, "by-name")
	code, out, errOut = w.runBare(t, "kubeconfig", "infra/agents:prod", "--ci", "--kubeconfig", kc, "--kas-proxy-url", "https://kas.example.com/k8s-proxy")
	if code != 0 || !strings.Contains(out, "for agent 104") || strings.Contains(out+errOut, jobToken) {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	cfg := wantServer(t, kc, "https://kas.example.com/k8s-proxy", jobToken)
	if u := cfg.AuthInfos[cfg.Contexts[cfg.CurrentContext].AuthInfo]; u == nil || u.Exec == nil || !strings.Contains(strings.Join(u.Exec.Args, " "), "--agent-id 104 --ci") {
		t.Errorf("the user does not run get-token --agent-id 104 --ci: %+v", u)
	}
	if w.gl.Calls("GET /api/v4/metadata") == 0 {
		t.Error("/metadata was never asked")
	}

	// Without --kubeconfig the file would be GitLab's own: refused, untouched.
	before, _ := os.ReadFile(injected)
	code, _, errOut = w.runBare(t, "kubeconfig", "infra/agents:prod", "--ci", "--kas-proxy-url", "https://kas.example.com/k8s-proxy")
	if after, _ := os.ReadFile(injected); code == 0 || !bytes.Equal(before, after) || !strings.Contains(errOut, "is the one GitLab writes for this job") ||
		!strings.Contains(errOut, "--kubeconfig FILE") || strings.Contains(errOut, jobToken) {
		t.Errorf("into GitLab's KUBECONFIG: exit %d, %s", code, errOut)
	}

	// A name a job token cannot resolve.
	if code, _, errOut = w.runBare(t, "kubeconfig", "prod", "--ci", "--kubeconfig", kc); code == 0 || !strings.Contains(errOut, "only CI_JOB_TOKEN, give the agent's numeric ID or PROJECT_PATH:AGENT_NAME") {
		t.Errorf("by plain name: exit %d, %s", code, errOut)
	}
	if code, _, errOut = w.runBare(t, "kubeconfig", "infra/agents:other", "--ci", "--kubeconfig", kc); code == 0 || !strings.Contains(errOut, `no context "infra/agents:other"`) {
		t.Errorf("an agent not injected: exit %d, %s", code, errOut)
	}
}

// TestJobTokenStaysWithTheJobsGitLab: with --ci the credential is the job
// token, for the GitLab that runs the job (CI_SERVER_URL) only; a
// --gitlab-url or GITLAB_URL naming another one is refused by kubeconfig,
// get-token and proxy, and the token is not printed.
func TestJobTokenStaysWithTheJobsGitLab(t *testing.T) {
	w := newInProcess(t)
	jobToken := w.gl.AddJobToken(w.user, w.project)
	t.Setenv("CI", "true")
	t.Setenv("CI_SERVER_URL", w.gl.URL)
	t.Setenv("CI_JOB_TOKEN", jobToken)
	t.Setenv("CI_PROJECT_ID", strconv.FormatInt(w.project.ID, 10))
	t.Setenv("GITLAB_URL", "https://other-gitlab.example")
	kc := filepath.Join(t.TempDir(), "config")
	for _, args := range [][]string{
		{"kubeconfig", "101", "--ci", "--kubeconfig", kc},
		{"get-token", "--agent-id", "101", "--ci"},
		{"get-token", "--agent-id", "101", "--ci", "--gitlab-url", "https://other-gitlab.example/"},
		{"proxy", "101", "--ci", "--port", "0"},
	} {
		code, out, errOut := w.runBare(t, args...)
		if code == 0 || !strings.Contains(errOut, "CI_JOB_TOKEN") || !strings.Contains(errOut, "the job's GitLab, not https://other-gitlab.example") || strings.Contains(out+errOut, jobToken) {
			t.Errorf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	if _, err := os.Stat(kc); err == nil {
		t.Error("a kubeconfig was written")
	}
	// The job's own GitLab, however it is spelled, is fine.
	code, out, errOut := w.runBare(t, "get-token", "--agent-id", "101", "--ci", "--gitlab-url", w.gl.URL+"/")
	if code != 0 || !strings.Contains(out, "ci:101:") {
		t.Errorf("the job's GitLab: exit %d\n%s", code, errOut)
	}
}

// wantServer checks the kubeconfig's only context: its server, and that no
// secret is in the file.
func wantServer(t *testing.T, path, server, secret string) *clientcmdapi.Config {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), secret) {
		t.Errorf("%s holds the job token", path)
	}
	cfg, err := clientcmd.Load(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Clusters) != 1 {
		t.Fatalf("%s: %d clusters", path, len(cfg.Clusters))
	}
	for _, c := range cfg.Clusters {
		if c.Server != server {
			t.Errorf("%s: server %s, want %s", path, c.Server, server)
		}
	}
	cfg.CurrentContext = firstKey(cfg.Contexts)
	return cfg
}

func firstKey[V any](m map[string]V) string {
	for k := range m {
		return k
	}
	return ""
}

func TestShellWord(t *testing.T) {
	for in, want := range map[string]string{
		"gitlab_com-infra_agents-prod": "gitlab_com-infra_agents-prod",
		"[__1]_8080-a-b":               "'[__1]_8080-a-b'",
		"it's":                         `'it'\''s'`,
		"a\x1b[2J":                     `'a\x1b[2J'`,
	} {
		if got := shellWord(in); got != want {
			t.Errorf("shellWord(%q) = %s, want %s", in, got, want)
		}
	}
}
