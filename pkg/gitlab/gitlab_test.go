package gitlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

type fixture struct {
	fake       *fakegitlab.Server
	project    *fakegitlab.Project
	maintainer *fakegitlab.User
	developer  *fakegitlab.User
	mToken     string
	dToken     string
	log        *bytes.Buffer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{fake: fakegitlab.New(), log: &bytes.Buffer{}}
	t.Cleanup(f.fake.Close)
	f.project = f.fake.AddProject("infra/agents")
	f.maintainer, f.mToken = f.fake.AddMember(f.project, "maria", fakegitlab.Maintainer)
	f.developer, f.dToken = f.fake.AddMember(f.project, "dev", fakegitlab.Developer)
	return f
}

func (f *fixture) client(t *testing.T, token string) *Client {
	t.Helper()
	c, err := New(Options{
		URL:         f.fake.URL,
		Credentials: Credentials{Token: token, Source: "GITLAB_TOKEN"},
		RetryBase:   time.Millisecond,
		Log:         f.log,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var proj = ProjectRef{Path: "infra/agents"}

func TestAgentLifecycle(t *testing.T) {
	f := newFixture(t)
	c := f.client(t, f.mToken)
	ctx := context.Background()
	a, created, err := c.RegisterAgent(ctx, proj, "prod-eu")
	if err != nil || !created || a.Name != "prod-eu" || a.ConfigProject != "infra/agents" {
		t.Fatalf("register: %+v %v %v", a, created, err)
	}
	again, created, err := c.RegisterAgent(ctx, proj, "prod-eu")
	if err != nil || created || again.ID != a.ID {
		t.Fatalf("second register: %+v %v %v", again, created, err)
	}
	if n := len(f.fake.Agents(f.project)); n != 1 {
		t.Fatalf("%d agents registered, want 1", n)
	}
	byID, err := c.FindAgent(ctx, ProjectRef{ID: f.project.ID}, AgentRef{ID: a.ID})
	if err != nil || byID.Name != "prod-eu" {
		t.Fatalf("find by ID: %+v %v", byID, err)
	}
	_, err = c.FindAgent(ctx, proj, AgentRef{Name: "nope"})
	if !IsClass(err, ClassNotFound) || !strings.Contains(err.Error(), "agent list --project infra/agents") {
		t.Fatalf("find missing: %v", err)
	}
	if err := c.DeleteAgent(ctx, proj, a); err != nil {
		t.Fatal(err)
	}
	if n := len(f.fake.Agents(f.project)); n != 0 {
		t.Fatalf("%d agents after delete", n)
	}
}

func TestListAgentsPaginates(t *testing.T) {
	f := newFixture(t)
	for i := 0; i < 130; i++ {
		f.fake.AddAgent(f.project, fmt.Sprintf("a%03d", i), f.maintainer)
	}
	agents, err := f.client(t, f.dToken).ListAgents(context.Background(), proj)
	if err != nil || len(agents) != 130 || agents[129].Name != "a129" {
		t.Fatalf("got %d agents, %v", len(agents), err)
	}
	if n := f.fake.Calls("GET /api/v4/projects/{id}/cluster_agents"); n != 2 {
		t.Errorf("%d list calls, want 2 pages", n)
	}
}

func TestRoleErrors(t *testing.T) {
	f := newFixture(t)
	_, _, err := f.client(t, f.dToken).RegisterAgent(context.Background(), proj, "x")
	if !IsClass(err, ClassForbidden) || !strings.Contains(err.Error(), "you need the Maintainer role on infra/agents to register agents") {
		t.Fatalf("developer register: %v", err)
	}
	_, err = f.client(t, "glpat-wrong").ListAgents(context.Background(), proj)
	if !IsClass(err, ClassUnauthenticated) || !strings.Contains(err.Error(), "GITLAB_TOKEN") ||
		!strings.HasSuffix(err.Error(), "make one with the api scope at "+f.fake.URL+"/-/user_settings/personal_access_tokens?name=kubectl-gitlab-agent&scopes=api") {
		t.Fatalf("wrong token: %v", err)
	}
	_, err = f.client(t, f.mToken).ListAgents(context.Background(), ProjectRef{Path: "other/proj"})
	if !IsClass(err, ClassNotFound) {
		t.Fatalf("unknown project: %v", err)
	}
}

func TestTokenLimit(t *testing.T) {
	f := newFixture(t)
	ga := f.fake.AddAgent(f.project, "prod", f.maintainer)
	t1 := f.fake.AddAgentToken(ga, "old", f.maintainer)
	t2 := f.fake.AddAgentToken(ga, "ci", f.maintainer)
	f.fake.MarkTokenUsed(t2.Token, time.Now().Add(-time.Hour))
	c := f.client(t, f.mToken)
	a, err := c.FindAgent(context.Background(), proj, AgentRef{Name: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateToken(context.Background(), proj, a, "new", "")
	var lim *TokenLimitError
	if !errors.As(err, &lim) || len(lim.Tokens) != 2 || lim.Tokens[0].ID != t2.ID || lim.Tokens[1].ID != t1.ID {
		t.Fatalf("limit error: %v", err)
	}
	msg := err.Error()
	for _, want := range []string{`"old" (never used)`, `"ci" (last used`, fmt.Sprintf("token revoke prod %d", t1.ID)} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, t1.Token) || strings.Contains(msg, t2.Token) {
		t.Error("the error shows a token value")
	}
	if err := c.RevokeToken(context.Background(), proj, a, t1.ID); err != nil {
		t.Fatal(err)
	}
	nt, err := c.CreateToken(context.Background(), proj, a, "new", "made by a test")
	if err != nil || !strings.HasPrefix(nt.Secret, "glagent-") || nt.Name != "new" {
		t.Fatalf("create after revoke: %+v %v", nt, err)
	}
	list, err := c.ListTokensWithLastUse(context.Background(), proj, a)
	if err != nil || len(list) != 2 || list[0].ID != t2.ID || list[0].LastUsedAt == nil {
		t.Fatalf("list: %v %v", list, err)
	}
}

func TestRetries(t *testing.T) {
	const route = "GET /api/v4/projects/{id}/cluster_agents"
	t.Run("429 then success", func(t *testing.T) {
		f := newFixture(t)
		f.fake.Inject(fakegitlab.Fault{Route: route, Nth: 1, Status: 429, RetryAfter: "0"})
		if _, err := f.client(t, f.mToken).ListAgents(context.Background(), proj); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(f.log.String(), "GitLab answered 429 Too Many Requests; retrying") {
			t.Errorf("retry log: %q", f.log.String())
		}
	})
	t.Run("long Retry-After is not waited for", func(t *testing.T) {
		f := newFixture(t)
		f.fake.Inject(fakegitlab.Fault{Route: route, Status: 429, RetryAfter: "3600"})
		_, err := f.client(t, f.mToken).ListAgents(context.Background(), proj)
		if !IsClass(err, ClassRateLimited) || !strings.Contains(err.Error(), "again in 3600s") || f.fake.Calls(route) != 1 {
			t.Fatalf("%v after %d calls", err, f.fake.Calls(route))
		}
	})
	// A number too large for a Duration once overflowed to a negative wait
	// and was retried at once, four more times.
	for _, ra := range []string{"9300000000", "99999999999999999999"} {
		t.Run("Retry-After "+ra, func(t *testing.T) {
			f := newFixture(t)
			f.fake.Inject(fakegitlab.Fault{Route: route, Status: 429, RetryAfter: ra})
			_, err := f.client(t, f.mToken).ListAgents(context.Background(), proj)
			if !IsClass(err, ClassRateLimited) || !strings.Contains(err.Error(), "asks for a day or more") || strings.Contains(err.Error(), ra) || f.fake.Calls(route) != 1 {
				t.Fatalf("%v after %d calls", err, f.fake.Calls(route))
			}
		})
	}
	t.Run("500 storm gives up", func(t *testing.T) {
		f := newFixture(t)
		f.fake.Inject(fakegitlab.Fault{Route: route, Status: 500})
		_, err := f.client(t, f.mToken).ListAgents(context.Background(), proj)
		if !IsClass(err, ClassServer) || f.fake.Calls(route) != 5 || !strings.Contains(err.Error(), "gave up after 5 tries") || strings.Count(f.log.String(), "GitLab answered 500 Internal Server Error; retrying") != 4 {
			t.Fatalf("%v after %d calls", err, f.fake.Calls(route))
		}
	})
	t.Run("500 on POST is not repeated", func(t *testing.T) {
		f := newFixture(t)
		r := "POST /api/v4/projects/{id}/cluster_agents"
		f.fake.Inject(fakegitlab.Fault{Route: r, Status: 500})
		_, _, err := f.client(t, f.mToken).RegisterAgent(context.Background(), proj, "x")
		if !IsClass(err, ClassServer) || f.fake.Calls(r) != 1 {
			t.Fatalf("%v after %d calls", err, f.fake.Calls(r))
		}
	})
	t.Run("dropped connection on GET is retried", func(t *testing.T) {
		f := newFixture(t)
		f.fake.Inject(fakegitlab.Fault{Route: route, Nth: 1, Drop: true})
		if _, err := f.client(t, f.mToken).ListAgents(context.Background(), proj); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		c, err := New(Options{URL: "http://127.0.0.1:1", Credentials: Credentials{Token: "x", Source: "GITLAB_TOKEN"}, RetryBase: time.Millisecond, MaxRetries: 1})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.ListAgents(context.Background(), proj)
		if !IsClass(err, ClassNetwork) || !strings.Contains(err.Error(), "cannot connect to http://127.0.0.1:1") {
			t.Fatalf("%v", err)
		}
	})
}

func TestFiles(t *testing.T) {
	f := newFixture(t)
	c := f.client(t, f.mToken)
	ctx := context.Background()
	const path = ".gitlab/agents/prod/config.yaml"
	_, found, err := c.GetFile(ctx, proj, path, "main")
	if err != nil || found {
		t.Fatalf("missing file: %v %v", found, err)
	}
	if err := c.CommitFile(ctx, proj, "main", path, []byte("ci_access: {}\n"), "add", nil); err != nil {
		t.Fatal(err)
	}
	got, found, err := c.GetFile(ctx, proj, path, "main")
	if err != nil || !found || string(got.Content) != "ci_access: {}\n" {
		t.Fatalf("read back: %v %v %v", got, found, err)
	}
	if err := c.CommitFile(ctx, proj, "main", path, []byte("# v2\n"), "update", got); err != nil {
		t.Fatal(err)
	}
	// A stale read fails instead of overwriting.
	err = c.CommitFile(ctx, proj, "main", path, []byte("# v3\n"), "stale", got)
	if !IsClass(err, ClassConflict) {
		t.Fatalf("stale update: %v", err)
	}
	if n := len(f.fake.Commits()); n != 2 {
		t.Fatalf("%d commits, want 2", n)
	}
	err = f.client(t, f.dToken).CommitFile(ctx, proj, "main", path, []byte("x"), "dev", got)
	if !IsClass(err, ClassForbidden) || !strings.Contains(err.Error(), "protected") {
		t.Fatalf("developer on protected branch: %v", err)
	}
}

func TestDiscoverKAS(t *testing.T) {
	f := newFixture(t)
	c := f.client(t, f.dToken)
	kas, err := c.DiscoverKAS(context.Background())
	if err != nil || kas.AgentURL != "wss://kas.example.com" || kas.ProxyURL != "https://kas.example.com/k8s-proxy" || kas.Version != "17.3.1" {
		t.Fatalf("%+v %v", kas, err)
	}
	f.fake.SetMetadata(func(m *fakegitlab.Metadata) { m.KAS.ExternalK8sProxyURL = "https://kas.example.com/k8s-proxy/" })
	if kas, _ = c.DiscoverKAS(context.Background()); kas.ProxyURL != "https://kas.example.com/k8s-proxy" {
		t.Errorf("proxy URL from metadata: %q", kas.ProxyURL)
	}
	f.fake.SetMetadata(func(m *fakegitlab.Metadata) { m.KAS.Enabled = false })
	var off *ErrKASDisabled
	if _, err := c.DiscoverKAS(context.Background()); !errors.As(err, &off) {
		t.Errorf("disabled KAS: %v", err)
	}
}

func TestProxyURLFromAgentURL(t *testing.T) {
	for in, want := range map[string]string{
		"wss://kas.gitlab.com":                  "https://kas.gitlab.com/k8s-proxy",
		"wss://example.com/-/kubernetes-agent/": "https://example.com/-/kubernetes-agent/k8s-proxy",
		"wss://example.com:4242":                "https://example.com:4242/k8s-proxy",
		"grpcs://kas.example.com:8150":          "https://kas.example.com:8150/k8s-proxy",
		"ws://gitlab.local/-/kubernetes-agent":  "https://gitlab.local/-/kubernetes-agent/k8s-proxy",
	} {
		if got, err := ProxyURLFromAgentURL(in); err != nil || got != want {
			t.Errorf("%s → %q (%v), want %q", in, got, err, want)
		}
	}
}

func TestCredentials(t *testing.T) {
	t.Setenv("GITLAB_TOKEN", "")
	t.Setenv("CI_JOB_TOKEN", "")
	t.Setenv("GLAB_CONFIG_DIR", t.TempDir())
	_, err := FindCredentials(context.Background(), "https://gitlab.example.com", "")
	if !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("no credentials: %v", err)
	}
	for _, w := range []string{"gitlab.example.com", "GITLAB_TOKEN (not set)", "CI_JOB_TOKEN (not set)", "--gitlab-token-file (not given)", "glab's config", "(not found)",
		"make a personal access token with the api scope at https://gitlab.example.com/-/user_settings/personal_access_tokens?name=kubectl-gitlab-agent&scopes=api and set GITLAB_TOKEN to it"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%q does not name %q", err, w)
		}
	}
	// Under a sub-path, the page is there too.
	_, err = FindCredentials(context.Background(), "https://example.com/gitlab/", "")
	if !strings.Contains(err.Error(), " https://example.com/gitlab/-/user_settings/personal_access_tokens?") {
		t.Errorf("%v", err)
	}
	t.Setenv("CI_JOB_TOKEN", "job")
	if c, _ := FindCredentials(context.Background(), "https://gitlab.example.com", ""); c.JobToken != "job" || c.Token != "" {
		t.Errorf("job token: %+v", c)
	}
	// The job's token goes only to the job's GitLab (CI_SERVER_URL).
	t.Setenv("CI_SERVER_URL", "https://GitLab.example.com:443/")
	if c, _ := FindCredentials(context.Background(), "https://gitlab.example.com", ""); c.JobToken != "job" {
		t.Errorf("job token for the job's GitLab: %+v", c)
	}
	for _, other := range []string{"https://gitlab.evil.example", "http://gitlab.example.com", "https://gitlab.example.com:8443"} {
		c, err := FindCredentials(context.Background(), other, "")
		if c.JobToken != "" || !errors.Is(err, ErrNoCredentials) || !strings.Contains(err.Error(), "the job's GitLab, not") {
			t.Errorf("job token for %s: %+v, %v", other, c, err)
		}
	}
	t.Setenv("CI_SERVER_URL", "")
	t.Setenv("GITLAB_TOKEN", "pat")
	if c, _ := FindCredentials(context.Background(), "https://gitlab.example.com", ""); c.Token != "pat" || c.Source != "GITLAB_TOKEN" {
		t.Errorf("GITLAB_TOKEN: %+v", c)
	}
	f := newFixture(t)
	job := f.fake.AddJobToken(f.developer, f.project)
	c, err := New(Options{URL: f.fake.URL, Credentials: Credentials{JobToken: job, Source: "CI_JOB_TOKEN"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DiscoverKAS(context.Background()); err != nil {
		t.Errorf("job token on /metadata: %v", err)
	}
	_, err = c.ListAgents(context.Background(), proj)
	if !IsClass(err, ClassUnauthenticated) || !strings.Contains(err.Error(), "set GITLAB_TOKEN in the job") || !strings.Contains(err.Error(), "/-/user_settings/personal_access_tokens?name=kubectl-gitlab-agent&scopes=api") {
		t.Errorf("job token on agents: %v", err)
	}
}
