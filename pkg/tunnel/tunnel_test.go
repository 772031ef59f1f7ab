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
	o := CredentialOptions{GitLabURL: f.URL, AgentID: 7, Credentials: gitlab.Credentials{Token: tok, Source: "GITLAB_TOKEN"}, Cache: cache, Now: func() time.Time { return now }}
	first, err := GetCredential(context.Background(), o)
	if err != nil || !first.Minted || !strings.HasPrefix(first.Token, "pat:7:glpat-") {
		t.Fatalf("%+v %v", first, err)
	}
	if first.Expires.After(time.Now().UTC().Truncate(24 * time.Hour).Add(24*time.Hour - ExpiryMargin + time.Second)) {
		t.Errorf("expires %v, later than five minutes before the end of the day", first.Expires)
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
	o := CredentialOptions{GitLabURL: f.URL, AgentID: 7, Credentials: gitlab.Credentials{Token: tok}, Cache: cache, Now: func() time.Time { return now }}
	first, _ := GetCredential(context.Background(), o)
	now = first.Expires.Add(-time.Minute) // within the margin
	next, err := GetCredential(context.Background(), o)
	if err != nil || !next.Minted || next.Token == first.Token {
		t.Fatalf("%+v %v", next, err)
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
