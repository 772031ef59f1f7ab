package cmd

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

// TestAgentRegisterGetDelete: register is re-runnable, get finds the agent
// by name and ID, delete asks (and with no terminal refuses) unless --yes.
func TestAgentRegisterGetDelete(t *testing.T) {
	w := newInProcess(t)
	code, out, errOut := w.run(t, "agent", "register", "prod")
	if code != 0 || !strings.Contains(out+errOut, "prod") || len(w.gl.Agents(w.project)) != 1 {
		t.Fatalf("register: exit %d, %q, %q, agents %v", code, out, errOut, w.gl.Agents(w.project))
	}
	if code, _, errOut = w.run(t, "agent", "register", "prod"); code != 0 || len(w.gl.Agents(w.project)) != 1 {
		t.Fatalf("register again: exit %d, %s, agents %v", code, errOut, w.gl.Agents(w.project))
	}
	id := strconv.FormatInt(w.gl.Agents(w.project)[0].ID, 10)
	for _, ref := range []string{"prod", id} {
		if code, out, errOut = w.run(t, "agent", "get", ref); code != 0 || !strings.Contains(out, "prod") {
			t.Errorf("get %s: exit %d, %q, %s", ref, code, out, errOut)
		}
	}
	if code, _, errOut = w.run(t, "agent", "delete", "prod"); code == 0 || len(w.gl.Agents(w.project)) != 1 {
		t.Errorf("delete without --yes and no terminal: exit %d, %s; want a refusal, the agent kept", code, errOut)
	}
	if code, _, errOut = w.run(t, "agent", "delete", "prod", "--yes"); code != 0 || len(w.gl.Agents(w.project)) != 0 {
		t.Errorf("delete --yes: exit %d, %s, agents %v", code, errOut, w.gl.Agents(w.project))
	}
	if code, _, errOut = w.run(t, "agent", "get", "prod"); code == 0 || !strings.Contains(errOut, "prod") {
		t.Errorf("get after delete: exit %d, %s", code, errOut)
	}
}

// TestTokenCreateAndRevoke: the token goes to a 0600 file and nowhere else;
// an existing file is kept without --force; revoke ends the token in GitLab.
func TestTokenCreateAndRevoke(t *testing.T) {
	w := newInProcess(t)
	a := w.gl.AddAgent(w.project, "prod", w.user)
	file := filepath.Join(t.TempDir(), "agent-token")
	code, out, errOut := w.run(t, "token", "create", "prod", "--name", "ci", "--token-file", file)
	if code != 0 {
		t.Fatalf("create: exit %d, %s", code, errOut)
	}
	toks := w.gl.AgentTokens(a)
	if len(toks) != 1 || toks[0].Name != "ci" {
		t.Fatalf("tokens %+v", toks)
	}
	b, err := os.ReadFile(file)
	if err != nil || strings.TrimSpace(string(b)) != toks[0].Token {
		t.Fatalf("token file %q, %v", b, err)
	}
	if st, _ := os.Stat(file); st.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, want 0600", st.Mode().Perm())
	}
	if strings.Contains(out+errOut, toks[0].Token) {
		t.Errorf("the token was printed: %q %q", out, errOut)
	}
	if code, _, errOut = w.run(t, "token", "create", "prod", "--name", "ci2", "--token-file", file); code == 0 || !strings.Contains(errOut, "--force") || len(w.gl.AgentTokens(a)) != 1 {
		t.Errorf("create over an existing file: exit %d, %s; want a refusal before any token", code, errOut)
	}
	code, out, errOut = w.run(t, "token", "create", "prod", "--name", "ci2", "--show-token")
	if toks = w.gl.AgentTokens(a); code != 0 || len(toks) != 2 || strings.TrimSpace(out) != toks[1].Token {
		t.Fatalf("create --show-token: exit %d, %q, %s, tokens %d", code, out, errOut, len(toks))
	}
	id := strconv.FormatInt(toks[0].ID, 10)
	if code, _, errOut = w.run(t, "token", "revoke", "prod", id); code != 0 || w.gl.AgentTokens(a)[0].Status != "revoked" {
		t.Errorf("revoke: exit %d, %s, tokens %+v", code, errOut, w.gl.AgentTokens(a))
	}
}

// TestKubeconfigAndTheTokenCache: kubeconfig writes a context whose user
// runs get-token; get-token mints one k8s_proxy token and caches it;
// token-cache lists it and clear --revoke revokes it with itself, through
// the Factory's GitLab client.
func TestKubeconfigAndTheTokenCache(t *testing.T) {
	w := newInProcess(t)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	a := w.gl.AddAgent(w.project, "prod", w.user)
	w.gl.SetMetadata(func(m *fakegitlab.Metadata) { m.KAS.ExternalK8sProxyURL = w.gl.URL + "/-/kubernetes-agent/k8s-proxy" })
	kc := filepath.Join(t.TempDir(), "config")
	code, out, errOut := w.run(t, "kubeconfig", "prod", "--kubeconfig", kc)
	if code != 0 || !strings.Contains(out, kc) {
		t.Fatalf("kubeconfig: exit %d, %q, %s", code, out, errOut)
	}
	cfg, err := clientcmd.LoadFromFile(kc)
	if err != nil || len(cfg.Contexts) != 1 || len(cfg.AuthInfos) != 1 {
		t.Fatalf("kubeconfig written: %v, %+v", err, cfg)
	}
	for _, u := range cfg.AuthInfos {
		if u.Exec == nil || !strings.Contains(strings.Join(u.Exec.Args, " "), "get-token --gitlab-url "+w.gl.URL+" --agent-id "+strconv.FormatInt(a.ID, 10)) {
			t.Errorf("user runs %+v", u.Exec)
		}
	}

	get := []string{"get-token", "--gitlab-url", w.gl.URL, "--gitlab-token-file", w.tokenFile, "--agent-id", strconv.FormatInt(a.ID, 10)}
	for range 2 {
		code, out, errOut = w.runBare(t, get...)
		var cred struct {
			Status struct {
				Token string `json:"token"`
			} `json:"status"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &cred) != nil || !strings.HasPrefix(cred.Status.Token, "pat:"+strconv.FormatInt(a.ID, 10)+":") {
			t.Fatalf("get-token: exit %d, %q, %s", code, out, errOut)
		}
	}
	proxyPATs := func() (out []fakegitlab.PersonalAccessToken) {
		for _, p := range w.gl.PersonalAccessTokens(w.user) {
			if slices.Equal(p.Scopes, []string{"k8s_proxy"}) {
				out = append(out, p)
			}
		}
		return out
	}
	pats := proxyPATs()
	if len(pats) != 1 || pats[0].Revoked {
		t.Fatalf("get-token twice made %+v; want one k8s_proxy token", pats)
	}
	if code, out, errOut = w.runBare(t, "token-cache", "list"); code != 0 || !strings.Contains(out, strconv.FormatInt(pats[0].ID, 10)) || strings.Contains(out, pats[0].Token) {
		t.Errorf("token-cache list: exit %d, %q, %s", code, out, errOut)
	}
	if code, out, errOut = w.runBare(t, "token-cache", "clear", "--revoke"); code != 0 || !strings.Contains(out, "revoked and removed 1") {
		t.Fatalf("token-cache clear --revoke: exit %d, %q, %s", code, out, errOut)
	}
	if pats = proxyPATs(); !pats[0].Revoked {
		t.Errorf("the cached token is still active after clear --revoke: %+v", pats)
	}
	if code, out, _ = w.runBare(t, "token-cache", "list", "-o", "json"); code != 0 || strings.Contains(out, strconv.FormatInt(pats[0].ID, 10)) {
		t.Errorf("token-cache list after clear: exit %d, %q", code, out)
	}
}
