package e2e

// Issue 27 item 5: the k8s_proxy token cache in the OS keyring. The keyring
// is a trust boundary (any program of the user's may write its items); these
// run the built plugin against a real Secret Service of the test's own.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zalando/go-keyring"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/secretservice"
)

// keyringService names the plugin's items (tunnel.KeyringService; this
// package imports nothing of pkg/).
const keyringService = "kubectl-gitlab-agent:k8s_proxy"

var (
	secretServiceOnce sync.Once
	secretServiceEnv  string
	secretServiceErr  error
)

// secretService is the Secret Service the keyring tests share (gnome-keyring
// on a private session bus), as an environment entry for the plugin. This
// process's own keyring calls, which plant items, go to it too: godbus keeps
// one session bus per process, hence one service for all. Skipped where
// none can start.
func secretService(t *testing.T) string {
	t.Helper()
	if m := secretservice.Missing(); m != "" {
		t.Skipf("no Secret Service to test the OS keyring with: %s", m)
	}
	secretServiceOnce.Do(func() {
		s, err := secretservice.Start()
		if err != nil {
			secretServiceErr = err
			return
		}
		secretServiceEnv = s.Env()
		secretServiceErr = os.Setenv("DBUS_SESSION_BUS_ADDRESS", s.Address)
	})
	if secretServiceErr != nil {
		t.Fatalf("starting a Secret Service: %v", secretServiceErr)
	}
	return secretServiceEnv
}

// cachedEntries is `token-cache list -o json` in env.
func cachedEntries(t *testing.T, env []string) map[string]cacheEntry {
	t.Helper()
	r := runIn(t, runSpec{env: env}, pluginBin(), "token-cache", "list", "-o", "json")
	var l struct {
		Tokens []cacheEntry `json:"tokens"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &l) != nil {
		t.Fatalf("token-cache list: %+v", r)
	}
	out := map[string]cacheEntry{}
	for _, e := range l.Tokens {
		out[e.GitLabURL] = e
	}
	return out
}

// cacheEntry is an entry as token-cache list -o json shows it.
type cacheEntry struct {
	Key       string `json:"key"`
	GitLabURL string `json:"gitlabURL"`
	ID        int64  `json:"id"`
	Store     string `json:"store"`
}

// getToken runs get-token for agent of g with GitLab token tok ("": none at
// hand) and returns what it did and the PAT it printed.
func getToken(t *testing.T, g *gitlabEnv, agent *fakegitlab.Agent, tok string, extra ...string) (result, string) {
	t.Helper()
	env := append([]string{"GITLAB_URL=" + g.fake.URL, "GITLAB_TOKEN=" + tok, "GLAB_CONFIG_DIR=" + t.TempDir(), "CI_PROJECT_ID=", "CI_JOB_TOKEN="}, extra...)
	r := runIn(t, runSpec{env: env}, pluginBin(), "get-token", "--agent-id", fmt.Sprint(agent.ID))
	g.outputs.add(r.stderr)
	var cred struct {
		Status struct {
			Token string `json:"token"`
		} `json:"status"`
	}
	_ = json.Unmarshal([]byte(r.stdout), &cred)
	_, pat, _ := strings.Cut(strings.TrimPrefix(cred.Status.Token, "pat:"), ":")
	return r, pat
}

// proxyPATs are u's k8s_proxy tokens on g: all of them, and the active.
func proxyPATs(g *gitlabEnv) (all, active []string) {
	for _, p := range g.fake.PersonalAccessTokens(g.maintainer) {
		if len(p.Scopes) == 1 && p.Scopes[0] == "k8s_proxy" {
			all = append(all, p.Token)
			if !p.Revoked {
				active = append(active, p.Token)
			}
		}
	}
	return all, active
}

// An item of another GitLab's planted under this GitLab's entry (any
// program of yours may write the keyring), even relabelled as this entry's,
// is never served: not without credentials, not with them; the token it
// displaced is replaced and revoked, and the other GitLab's is untouched.
func TestAttack27Item5KeyringItemOfAnotherGitLab(t *testing.T) {
	t.Parallel()
	bus := secretService(t)
	cache := t.TempDir()
	env := []string{bus, "XDG_CACHE_HOME=" + cache}
	a, b := newGitLab(t), newGitLab(t)
	agentA, agentB := a.fake.AddAgent(a.project, "tun", a.maintainer), b.fake.AddAgent(b.project, "tun", b.maintainer)

	rB, secretB := getToken(t, b, agentB, b.mToken, env...)
	rA, secretA := getToken(t, a, agentA, a.mToken, env...)
	for _, r := range []result{rA, rB} {
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("get-token with a Secret Service: %+v", r)
		}
	}
	files, _ := filepath.Glob(filepath.Join(cache, "kubectl-gitlab-agent", "k8s-proxy-tokens", "*.json"))
	for _, f := range files {
		if b, _ := os.ReadFile(f); strings.Contains(string(b), secretA) || strings.Contains(string(b), secretB) {
			t.Errorf("%s holds a secret: %s", f, b)
		}
	}
	entries := cachedEntries(t, env)
	keyA, keyB := entries[a.fake.URL], entries[b.fake.URL]
	if len(files) != 2 || keyA.Store != "keyring" || keyB.Store != "keyring" {
		t.Fatalf("cache files %v, entries %+v: want two, their secrets in the keyring", files, entries)
	}
	itemB, err := keyring.Get(keyringService, keyB.Key)
	if err != nil || !strings.Contains(itemB, secretB) {
		t.Fatalf("B's keyring item: %v", err)
	}

	// B's secret relabelled with A's GitLab, entry and token ID (what a
	// program that may write the keyring and list its items can make; the
	// two fakes number their tokens alike, so A's ID is B's too), B's item
	// as it is, B's bare token.
	relabelled := func() string {
		b, _ := json.Marshal(map[string]any{"gitlabURL": a.fake.URL, "key": keyA.Key, "id": cachedEntries(t, env)[a.fake.URL].ID, "token": secretB})
		return string(b)
	}
	newA := secretA
	for _, planted := range []func() string{relabelled, func() string { return itemB }, func() string { return secretB }} {
		if err := keyring.Set(keyringService, keyA.Key, planted()); err != nil {
			t.Fatal(err)
		}
		// Planted more than a minute after the token was made: a lost
		// secret is replaced at most once per RenewInterval.
		backdate(t, filepath.Join(cache, "kubectl-gitlab-agent", "k8s-proxy-tokens", keyA.Key+".json"), 2*time.Minute)
		r, got := getToken(t, a, agentA, "", env...)
		wantError(t, r, "cannot be read", "creating one needs GitLab credentials")
		if got != "" || strings.Contains(r.stderr, secretB) {
			t.Fatalf("B's token went out for A: %+v", r)
		}
		old := newA
		r, newA = getToken(t, a, agentA, a.mToken, env...)
		if r.code != 0 || newA == "" || newA == old || newA == secretB {
			t.Fatalf("A with credentials: %+v", r)
		}
		if _, active := proxyPATs(a); len(active) != 1 || active[0] != newA {
			t.Errorf("A's active k8s_proxy tokens %d: want the new one only (the displaced one revoked)", len(active))
		}
	}
	if _, active := proxyPATs(b); len(active) != 1 || active[0] != secretB {
		t.Errorf("B's active k8s_proxy tokens %d: want B's own", len(active))
	}
	if r, again := getToken(t, b, agentB, "", env...); r.code != 0 || again != secretB {
		t.Errorf("B after the attack: %+v", r)
	}
	if item, err := keyring.Get(keyringService, keyA.Key); err != nil || !strings.Contains(item, newA) || !strings.Contains(item, a.fake.URL) {
		t.Errorf("A's keyring item after: %v", err)
	}

	// clear --revoke reads each secret from the keyring, revokes it with
	// itself, and deletes the items.
	r := runIn(t, runSpec{env: env}, pluginBin(), "token-cache", "clear", "--revoke")
	if r.code != 0 || !strings.Contains(r.stdout, "revoked and removed 2") {
		t.Fatalf("token-cache clear --revoke: %+v", r)
	}
	for _, g := range []*gitlabEnv{a, b} {
		if _, active := proxyPATs(g); len(active) != 0 {
			t.Errorf("%d k8s_proxy tokens still active after clear --revoke", len(active))
		}
	}
	for _, k := range []string{keyA.Key, keyB.Key} {
		if _, err := keyring.Get(keyringService, k); err != keyring.ErrNotFound {
			t.Errorf("a keyring item outlived clear: %v", err)
		}
	}
}

// With no keyring (this test's environment has no session bus) the token
// goes in the 0600 file, which get-token says once, not at every kubectl
// call; later calls read the file.
func TestKeyringFallbackSaidOnce(t *testing.T) {
	t.Parallel()
	g := newGitLab(t)
	agent := g.fake.AddAgent(g.project, "tun", g.maintainer)
	cache := "XDG_CACHE_HOME=" + t.TempDir()
	var first string
	for i := range 3 {
		r, pat := getToken(t, g, agent, g.mToken, cache)
		said := strings.Contains(r.stderr, "no OS keyring answered") && strings.Contains(r.stderr, "(0600) instead (said once")
		if r.code != 0 || pat == "" || said != (i == 0) || (i > 0 && (r.stderr != "" || pat != first)) {
			t.Fatalf("call %d: %+v", i, r)
		}
		first = pat
	}
	if e := cachedEntries(t, []string{cache}); e[g.fake.URL].Store != "file" {
		t.Errorf("entries %+v: want the file", e)
	}
}

// proxy --cache-mode none: one token for all its requests, kept nowhere but
// its memory, and revoked when it stops.
func TestProxyCacheModeNone(t *testing.T) {
	t.Parallel()
	g := newGitLab(t)
	g.fake.AddAgent(g.project, "tun", g.maintainer)
	var mu sync.Mutex
	var seen []string
	kas := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		_, _ = w.Write([]byte(`{"kind":"Status"}`))
	}))
	t.Cleanup(kas.Close)
	cache := t.TempDir()
	cmd, log, addr := startPlugin(t, []string{"GITLAB_URL=" + g.fake.URL, "GITLAB_TOKEN=" + g.mToken, "CI_PROJECT_ID=", "CI_JOB_TOKEN=", "XDG_CACHE_HOME=" + cache},
		true, "proxy", "tun", "--project", "infra/agents", "--port", "0", "--kas-proxy-url", kas.URL+"/k8s-proxy", "--cache-mode", "none")
	for range 3 {
		resp, err := http.Get("http://" + addr + "/api/v1/namespaces")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("through the proxy: %s\n%s", resp.Status, log.String())
		}
	}
	all, active := proxyPATs(g)
	mu.Lock()
	if len(all) != 1 || len(active) != 1 || len(seen) != 3 || seen[0] != seen[2] || !strings.HasSuffix(seen[0], ":"+active[0]) {
		t.Fatalf("%d tokens minted for 3 requests, KAS saw %d credentials", len(all), len(seen))
	}
	mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGINT)
	_ = cmd.Wait()
	g.outputs.add(log.String())
	if code := cmd.ProcessState.ExitCode(); code != 0 || !strings.Contains(log.String(), "revoked the k8s_proxy token") {
		t.Errorf("proxy after Ctrl-C: exit %d\n%s", code, log.String())
	}
	if _, active := proxyPATs(g); len(active) != 0 {
		t.Errorf("the proxy's token is still active after it stopped")
	}
	var kept []string
	_ = filepath.Walk(cache, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			kept = append(kept, p)
		}
		return nil
	})
	if len(kept) != 0 {
		t.Errorf("--cache-mode none left %v", kept)
	}
}

// backdate moves the createdAt of the cache entry in file back by d, as if
// its token had been made d earlier.
func backdate(t *testing.T, file string, d time.Duration) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var entry map[string]any
	if err := json.Unmarshal(b, &entry); err != nil {
		t.Fatal(err)
	}
	at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(entry["createdAt"]))
	if err != nil {
		t.Fatalf("%s: createdAt: %v", file, err)
	}
	entry["createdAt"] = at.Add(-d).Format(time.RFC3339Nano)
	if b, err = json.Marshal(entry); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
