package tunnel

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

func TestEntryNames(t *testing.T) {
	n, err := EntryNames("https://gitlab.example.com", "infra/agents", "prod", 42)
	if err != nil || n.Cluster != "gitlab_example_com" || n.User != "gitlab_example_com-42" || n.Context != "gitlab_example_com-infra_agents-prod" {
		t.Fatalf("%+v %v", n, err)
	}
	n, _ = EntryNames("https://example.com/gitlab/", "a/b/c", "x", 1)
	if n.Cluster != "example_com_gitlab" || n.Context != "example_com_gitlab-a_b_c-x" {
		t.Fatalf("%+v", n)
	}
	// Names from GitLab's answers become context names: GitLab's own
	// rules hold, or nothing is named.
	for _, c := range [][2]string{{"infra/agents", "Prod"}, {"infra/agents", "x\x1b[2J"}, {"infra/agents; rm -rf ~", "x"}, {"infra//agents", "x"}, {"", "x"}, {"a/b\n", "x"}} {
		if _, err := EntryNames("https://gitlab.example.com", c[0], c[1], 1); err == nil || strings.ContainsAny(err.Error(), "\x1b\n") {
			t.Errorf("project %q, agent %q: %v", c[0], c[1], err)
		}
	}
}

// The cluster name is the GitLab URL's host and path, decoded: an escape
// must not put a control character (or shell syntax) into the names.
func TestEntryNamesFromTheGitLabURL(t *testing.T) {
	for _, c := range []struct{ url, cluster string }{
		{"https://gitlab.example.com", "gitlab_example_com"},
		{"https://gitlab.example.com:8443/", "gitlab_example_com_8443"},
		{"https://example.com/gitlab", "example_com_gitlab"},
		{"https://example.com/git%2Dlab/", "example_com_git-lab"},
		{"http://127.0.0.1:3000", "127_0_0_1_3000"},
		{"https://[::1]:8443", "[__1]_8443"},
		{"https://example.com/~ops/gitlab?x=%0A#%1b", "example_com_~ops_gitlab"},
		{"https://example.com/%0Aevil", ""},
		{"https://example.com/gitlab%0d%0a", ""},
		{"https://example.com/%1b%5b2J", ""},
		{"https://example.com/%1b]0;title%07", ""},
		{"https://example.com/%e2%80%ae", ""}, // a bidi override
		{"https://example.com/%c2%9b", ""},    // C1 CSI
		{"https://example.com/a%20b", ""},
		{"https://example.com/$(id)", ""},
		{"https://a$(id).example.com", ""},
		{"https://example.com/%ff", ""},
	} {
		n, err := EntryNames(c.url, "infra/agents", "prod", 7)
		if c.cluster == "" {
			if err == nil || strings.ContainsAny(err.Error(), "\x00\x1b\n\r\x07\u009b\u202e") {
				t.Errorf("%s: %+v %v", c.url, n, err)
			}
			continue
		}
		if err != nil || n.Cluster != c.cluster || n.User != c.cluster+"-7" || n.Context != c.cluster+"-infra_agents-prod" {
			t.Errorf("%s: %+v %v", c.url, n, err)
		}
	}
}

func TestKeyIsSafeAndPerCredential(t *testing.T) {
	a, b := Key("https://gitlab.com", "tok-a"), Key("https://gitlab.com", "tok-b")
	if a == b || strings.ContainsAny(a, "/\\:") || strings.Contains(a, "tok") {
		t.Fatalf("keys %q %q", a, b)
	}
}

func fixture(t *testing.T) (*fakegitlab.Server, string, *Cache) {
	t.Helper()
	f := fakegitlab.New()
	t.Cleanup(f.Close)
	_, tok := f.AddUser("maria")
	return f, tok, &Cache{Dir: filepath.Join(t.TempDir(), "tokens")}
}

func TestCredentialCachedAndReplacedWhenRevoked(t *testing.T) {
	f, tok, cache := fixture(t)
	now := time.Now()
	o := CredentialOptions{GitLab: gitlab.New, GitLabURL: f.URL, AgentID: 7, Credentials: gitlab.Credentials{Token: tok, Source: "GITLAB_TOKEN"}, Cache: cache, Now: func() time.Time { return now }}
	first, err := GetCredential(context.Background(), o)
	if err != nil || !first.Minted || !strings.HasPrefix(first.Token, "pat:7:glpat-") {
		t.Fatalf("%+v %v", first, err)
	}
	if want := gitlab.PATExpiry(now, 1).Add(-ExpiryMargin); !first.Expires.Equal(want) {
		t.Errorf("expires %v, want five minutes before the token does, %v", first.Expires, want)
	}
	// A later call uses the cache.
	now = now.Add(time.Minute)
	again, err := GetCredential(context.Background(), o)
	if err != nil || again.Minted || again.Token != first.Token {
		t.Fatalf("second call: %+v %v", again, err)
	}
	// GitLab revokes it; kubectl asks again at once (after a 401): replaced.
	f.RevokePAT(strings.TrimPrefix(first.Token, "pat:7:"))
	now = now.Add(2 * time.Second)
	third, err := GetCredential(context.Background(), o)
	if err != nil || !third.Minted || third.Token == first.Token {
		t.Fatalf("after revocation: %+v %v", third, err)
	}
	// An explicit refresh of a valid token keeps it.
	o.Refresh = true
	now = now.Add(time.Minute)
	fourth, err := GetCredential(context.Background(), o)
	if err != nil || fourth.Token != third.Token {
		t.Fatalf("refresh of a valid token: %+v %v", fourth, err)
	}
	entries, _ := cache.List()
	if len(entries) != 1 {
		t.Fatalf("%d cache entries", len(entries))
	}
	fi, _ := os.Stat(filepath.Join(cache.Dir, entries[0].Key+".json"))
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("cache file mode %v", fi.Mode().Perm())
	}
}

func TestCredentialNearExpiryIsRenewed(t *testing.T) {
	f, tok, cache := fixture(t)
	now := time.Now()
	o := CredentialOptions{GitLab: gitlab.New, GitLabURL: f.URL, AgentID: 7, Credentials: gitlab.Credentials{Token: tok}, Cache: cache, Now: func() time.Time { return now }}
	first, _ := GetCredential(context.Background(), o)
	now = first.Expires.Add(-time.Minute) // within the margin
	next, err := GetCredential(context.Background(), o)
	if err != nil || !next.Minted || next.Token == first.Token {
		t.Fatalf("%+v %v", next, err)
	}
}

// A token made in the day's last minutes (the default lifetime ends at
// 00:00 UTC) must not be handed out already expired: kubectl would then run
// get-token for every request, and each run would mint a token and mail the
// user.
func TestCredentialMintedLateInTheDayLasts(t *testing.T) {
	f, tok, cache := fixture(t)
	now := time.Now().UTC().Truncate(24 * time.Hour).Add(24*time.Hour - 5*time.Minute) // 23:55 UTC
	o := CredentialOptions{GitLab: gitlab.New, GitLabURL: f.URL, AgentID: 7, Credentials: gitlab.Credentials{Token: tok}, Cache: cache, Now: func() time.Time { return now }}
	var first Credential
	for i := range 5 {
		c, err := GetCredential(context.Background(), o)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if !c.Expires.After(now.Add(time.Hour)) {
			t.Errorf("call %d at %s: the credential expires at %s", i, now.Format("15:04:05"), c.Expires)
		}
		if i == 0 {
			first = c
		} else if c.Token != first.Token {
			t.Errorf("call %d got another token", i)
		}
		now = now.Add(10 * time.Second)
	}
	if n := f.Calls("POST /api/v4/user/personal_access_tokens"); n != 1 {
		t.Errorf("%d tokens minted for 5 calls, want 1", n)
	}
}

// The check of a cached token (kubectl asks again within recheckWindow,
// maybe after a 401) needs GitLab's API; while that is down and KAS works,
// the cached token is still served, at once.
func TestCredentialServedWhileGitLabIsDown(t *testing.T) {
	f, tok, cache := fixture(t)
	now := time.Now()
	var log strings.Builder
	o := CredentialOptions{GitLab: gitlab.New, GitLabURL: f.URL, AgentID: 7, Credentials: gitlab.Credentials{Token: tok}, Cache: cache, Log: &log, Now: func() time.Time { return now }}
	first, err := GetCredential(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	f.Inject(fakegitlab.Fault{Route: "GET /api/v4/personal_access_tokens/self", Status: 503})
	now = now.Add(30 * time.Second)
	for i := range 3 { // 5 s apart: each after the first is a recheck
		c, err := GetCredential(context.Background(), o)
		if err != nil || c.Token != first.Token || c.Minted {
			t.Fatalf("call %d with GitLab down: %+v %v", i, c, err)
		}
		now = now.Add(5 * time.Second)
	}
	if f.Calls("GET /api/v4/personal_access_tokens/self") == 0 || !strings.Contains(log.String(), "could not check the cached k8s_proxy token") {
		t.Errorf("no check was tried, or it was not said: %q", log.String())
	}
	if strings.Contains(log.String(), strings.TrimPrefix(first.Token, "pat:7:")) {
		t.Errorf("the log holds the token")
	}
	// When KAS has refused the token (the proxy's Refresh), an unknown
	// verdict is an error: serving it again would only be refused again.
	o.Refresh = true
	if _, err := GetCredential(context.Background(), o); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("refresh with GitLab down: %v", err)
	}
}

func TestExecCredential(t *testing.T) {
	exp := time.Date(2026, 11, 25, 23, 55, 0, 0, time.UTC)
	b, err := ExecCredential(Credential{Token: "pat:1:x", Expires: exp})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil || m["kind"] != "ExecCredential" || m["apiVersion"] != "client.authentication.k8s.io/v1" {
		t.Fatalf("%s", b)
	}
	st := m["status"].(map[string]any)
	if st["token"] != "pat:1:x" || st["expirationTimestamp"] != "2026-11-25T23:55:00Z" {
		t.Fatalf("%s", b)
	}
	b, _ = ExecCredential(Credential{Token: "ci:1:y"})
	if strings.Contains(string(b), "expirationTimestamp") {
		t.Errorf("a CI credential has an expiry: %s", b)
	}
}

func TestCIWithoutJobToken(t *testing.T) {
	t.Setenv("CI_JOB_TOKEN", "")
	if _, err := GetCredential(context.Background(), CredentialOptions{CI: true, AgentID: 1}); err == nil || !strings.Contains(err.Error(), "CI_JOB_TOKEN") {
		t.Fatalf("%v", err)
	}
	t.Setenv("CI_JOB_TOKEN", "job")
	c, err := GetCredential(context.Background(), CredentialOptions{CI: true, AgentID: 1})
	if err != nil || c.Token != "ci:1:job" {
		t.Fatalf("%+v %v", c, err)
	}
}

func TestCheckProxyURL(t *testing.T) {
	ok := [][2]string{
		{"https://gitlab.com", "https://kas.gitlab.com/k8s-proxy"},
		{"https://gitlab.example.com", "https://gitlab.example.com/-/kubernetes-agent/k8s-proxy"},
		{"https://gitlab.example.co.uk", "https://kas.example.co.uk/k8s-proxy"},
		{"http://127.0.0.1:3000", "https://127.0.0.1:4443/k8s-proxy"},
		{"http://gitlab.example.com", "http://gitlab.example.com/-/kubernetes-agent/k8s-proxy"},
	}
	for _, c := range ok {
		if err := CheckProxyURL(c[0], c[1], false); err != nil {
			t.Errorf("%s → %s: %v", c[0], c[1], err)
		}
	}
	bad := map[[2]string]string{
		{"https://gitlab.com", "https://kas.evil.example/k8s-proxy"}:        "another site",
		{"https://gitlab.example.co.uk", "https://kas.other.co.uk/"}:        "another site",
		{"https://gitlab.com", "http://kas.gitlab.com/k8s-proxy"}:           "plain http",
		{"https://gitlab.com", "https://user:pw@kas.gitlab.com/k8s-proxy"}:  "invalid",
		{"https://10.0.0.1", "https://10.0.0.2/k8s-proxy"}:                  "another site",
		{"https://gitlab.com", "https://gitlab.com.evil.example/k8s-proxy"}: "another site",
	}
	for c, want := range bad {
		if err := CheckProxyURL(c[0], c[1], false); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s → %s: %v, want %q", c[0], c[1], err, want)
		}
	}
	if err := CheckProxyURL("https://gitlab.com", "https://kas.elsewhere.example/k8s-proxy", true); err != nil {
		t.Errorf("a URL the user gave: %v", err)
	}
}

// A kubectl call while another holds the entry's lock (it may be storing a
// token that replaces this one) is served and writes nothing; a
// call that finds the entry replaced serves the new token.
func TestCredentialFastPathWritesOnlyUnderTheLock(t *testing.T) {
	f, tok, cache := fixture(t)
	now := time.Now()
	o := CredentialOptions{GitLab: gitlab.New, GitLabURL: f.URL, AgentID: 7, Credentials: gitlab.Credentials{Token: tok}, Cache: cache, Now: func() time.Time { return now }}
	first, err := GetCredential(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	key := Key(f.URL, tok)
	before := cache.Load(key).HandedOutAt
	unlock, err := cache.Lock(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	c, err := GetCredential(context.Background(), o)
	if err != nil || c.Token != first.Token {
		t.Fatalf("with the lock held: %+v %v", c, err)
	}
	if got := cache.Load(key).HandedOutAt; !got.Equal(before) {
		t.Errorf("the entry was written without the lock: handed out %s, was %s", got, before)
	}
	unlock()

	// Another call replaced the token after this one read the entry.
	p := cache.Load(key)
	replaced := *p
	replaced.Token, replaced.ID = "glpat-the-new-one", p.ID+1
	if err := cache.Store(key, &replaced); err != nil {
		t.Fatal(err)
	}
	if got := o.handedOut(key, p, now); got.Token != "glpat-the-new-one" || cache.Load(key).Token != "glpat-the-new-one" {
		t.Errorf("served %q, cached %q; want the replacing token in both", got.Token, cache.Load(key).Token)
	}
}
