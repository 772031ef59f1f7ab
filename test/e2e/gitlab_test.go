package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

// gitlabEnv is a fake GitLab with project infra/agents, a maintainer and a
// developer, and the outputs of every command run against it, so that a test
// can check that no secret was printed.
type gitlabEnv struct {
	fake       *fakegitlab.Server
	project    *fakegitlab.Project
	maintainer *fakegitlab.User
	mToken     string
	dToken     string
	outputs    outputLog
}

// outputLog collects the outputs of the commands a test runs, from any of
// its goroutines.
type outputLog struct {
	mu   sync.Mutex
	outs []string
}

func (l *outputLog) add(outs ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.outs = append(l.outs, outs...)
}

// reset forgets what was collected (for commands that print credentials by
// design).
func (l *outputLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.outs = nil
}

func (l *outputLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.outs...)
}

func newGitLab(t *testing.T) *gitlabEnv {
	t.Helper()
	g := &gitlabEnv{fake: fakegitlab.New()}
	t.Cleanup(g.fake.Close)
	g.project = g.fake.AddProject("infra/agents")
	g.maintainer, g.mToken = g.fake.AddMember(g.project, "maria", fakegitlab.Maintainer)
	_, g.dToken = g.fake.AddMember(g.project, "dev", fakegitlab.Developer)
	t.Cleanup(func() { g.assertNoSecrets(t) })
	return g
}

// run runs `kubectl gitlab-agent args...` as the maintainer, with extra
// environment entries (KEY=VALUE) applied last.
func (g *gitlabEnv) run(t *testing.T, extraEnv []string, args ...string) result {
	t.Helper()
	spec := runSpec{
		env: append([]string{"GITLAB_URL=" + g.fake.URL, "GITLAB_TOKEN=" + g.mToken, "CI_PROJECT_ID=", "CI_JOB_TOKEN="}, extraEnv...),
		dir: t.TempDir(), // no git remote to infer a project from
	}
	r := runIn(t, spec, kubectl, append([]string{"gitlab-agent"}, args...)...)
	if !slices.Contains(args, "--show-token") {
		g.outputs.add(r.stdout)
	}
	g.outputs.add(r.stderr)
	return r
}

// assertNoSecrets fails if an agent token or a personal access token value
// appears in any output (stdout of --show-token runs excepted).
func (g *gitlabEnv) assertNoSecrets(t *testing.T) {
	var secrets []string
	for _, a := range g.fake.Agents(g.project) {
		for _, tok := range g.fake.AgentTokens(&a) {
			secrets = append(secrets, tok.Token)
		}
	}
	secrets = append(secrets, g.mToken, g.dToken)
	for _, d := range g.fake.DeployTokens(g.project.ID) {
		secrets = append(secrets, d.Token)
	}
	for _, out := range g.outputs.all() {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("a secret value appears in the output: %q", out)
			}
		}
	}
}

// wantError checks the one-line error contract: exit 1, nothing on stdout, the
// last stderr line starting "error: " and containing each of want.
func wantError(t *testing.T, r result, want ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	last := lines[len(lines)-1]
	if r.code != 1 || r.stdout != "" || !strings.HasPrefix(last, "error: ") {
		t.Fatalf("exit %d, stdout %q, stderr %q; want exit 1 and an error line", r.code, r.stdout, r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(last, w) {
			t.Errorf("error %q does not say %q", last, w)
		}
	}
}

func TestAgentCommands(t *testing.T) {
	t.Parallel()
	g := newGitLab(t)
	p := []string{"--project", "infra/agents"}

	r := g.run(t, nil, append([]string{"agent", "register", "Prod_EU"}, p...)...)
	wantError(t, r, `invalid agent name "Prod_EU"`, "lowercase letters, digits and '-'")
	if n := len(g.fake.Requests()); n != 0 {
		t.Fatalf("an invalid name made %d requests", n)
	}

	r = g.run(t, nil, append([]string{"agent", "register", "prod-eu"}, p...)...)
	if r.code != 0 || !strings.Contains(r.stderr, `registered agent "prod-eu" in infra/agents`) {
		t.Fatalf("register: %+v", r)
	}
	r = g.run(t, nil, append([]string{"agent", "register", "prod-eu", "-o", "json"}, p...)...)
	if r.code != 0 || !strings.Contains(r.stderr, "already registered") || len(g.fake.Agents(g.project)) != 1 {
		t.Fatalf("second register: %+v", r)
	}
	var a struct {
		ID            int64  `json:"id"`
		Name          string `json:"name"`
		ConfigProject string `json:"configProject"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &a); err != nil || a.Name != "prod-eu" || a.ConfigProject != "infra/agents" {
		t.Fatalf("register -o json: %q %v", r.stdout, err)
	}

	r = g.run(t, nil, append([]string{"agent", "list"}, p...)...)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "NAME ") || !strings.Contains(r.stdout, "prod-eu") {
		t.Fatalf("list: %+v", r)
	}
	r = g.run(t, nil, "agent", "get", "prod-eu", "--project", itoa(g.project.ID), "-o", "yaml")
	if r.code != 0 || !strings.Contains(r.stdout, "name: prod-eu") {
		t.Fatalf("get by project ID: %+v", r)
	}

	r = g.run(t, nil, append([]string{"agent", "delete", "prod-eu"}, p...)...)
	wantError(t, r, "pass --yes")
	r = g.run(t, nil, append([]string{"agent", "delete", "prod-eu", "--yes"}, p...)...)
	if r.code != 0 || len(g.fake.Agents(g.project)) != 0 {
		t.Fatalf("delete --yes: %+v", r)
	}
	r = g.run(t, nil, append([]string{"agent", "get", "prod-eu"}, p...)...)
	wantError(t, r, `no agent "prod-eu" is registered in infra/agents`)
}

func TestGitLabFailures(t *testing.T) {
	t.Parallel()
	g := newGitLab(t)
	r := g.run(t, nil, "agent", "list", "--project", "other/nothing")
	wantError(t, r, "no project other/nothing")

	r = g.run(t, []string{"GITLAB_TOKEN="}, "agent", "list", "--project", "infra/agents")
	wantError(t, r, "GITLAB_TOKEN")

	r = g.run(t, []string{"GITLAB_TOKEN=" + g.dToken}, "agent", "register", "x", "--project", "infra/agents")
	wantError(t, r, "403", "you need the Maintainer role on infra/agents to register agents")

	r = g.run(t, []string{"GITLAB_TOKEN=glpat-not-a-token"}, "agent", "list", "--project", "infra/agents")
	wantError(t, r, "401", "refused the token from GITLAB_TOKEN")

	r = g.run(t, nil, "agent", "list")
	wantError(t, r, "no project: pass --project")

	const list = "GET /api/v4/projects/{id}/cluster_agents"
	g.fake.Inject(fakegitlab.Fault{Route: list, Nth: 1, Status: 429, RetryAfter: "1"})
	r = g.run(t, nil, "agent", "list", "--project", "infra/agents")
	if r.code != 0 || !strings.Contains(r.stderr, "GitLab answered 429 Too Many Requests; retrying in 1s") {
		t.Fatalf("429 then success: %+v", r)
	}
}

// TestGitLabFailingStorm: a GitLab that answers 500 to everything is tried
// five times, with the real backoff (7.5 s), beside the other tests.
func TestGitLabFailingStorm(t *testing.T) {
	t.Parallel()
	g := newGitLab(t)
	const list = "GET /api/v4/projects/{id}/cluster_agents"
	g.fake.Inject(fakegitlab.Fault{Route: list, Status: 500})
	r := g.run(t, nil, "agent", "list", "--project", "infra/agents")
	wantError(t, r, "500", "is failing (gave up after 5 tries); try again later")
	if n := g.fake.Calls(list); n != 5 {
		t.Errorf("%d attempts in the 500 storm, want 5", n)
	}
	// One line per retry, each naming the try that comes, of the five.
	for k := 2; k <= 5; k++ {
		if !strings.Contains(r.stderr, "GitLab answered 500 Internal Server Error; retrying in ") || !strings.Contains(r.stderr, "(try "+strconv.Itoa(k)+" of 5)\n") {
			t.Errorf("no retry line for try %d of 5:\n%s", k, r.stderr)
		}
	}
}

func TestTokenCommands(t *testing.T) {
	t.Parallel()
	g := newGitLab(t)
	agent := g.fake.AddAgent(g.project, "prod", g.maintainer)
	p := []string{"--project", "infra/agents"}
	dir := t.TempDir()
	file := filepath.Join(dir, "token")

	r := g.run(t, nil, append([]string{"token", "create", "prod", "--name", "ci"}, p...)...)
	wantError(t, r, "--token-file FILE", "--show-token")
	r = g.run(t, nil, append([]string{"token", "create", "prod", "--name", "ci", "--token-file", file}, p...)...)
	if r.code != 0 {
		t.Fatalf("create: %+v", r)
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi, err)
	}
	data, _ := os.ReadFile(file)
	tokens := g.fake.AgentTokens(agent)
	if len(tokens) != 1 || strings.TrimSpace(string(data)) != tokens[0].Token {
		t.Fatalf("the file does not hold the new token")
	}
	r = g.run(t, nil, append([]string{"token", "create", "prod", "--name", "again", "--token-file", file}, p...)...)
	wantError(t, r, "exists: pass --force")
	if n := len(g.fake.AgentTokens(agent)); n != 1 {
		t.Fatalf("a refused create made a token (%d tokens)", n)
	}

	r = g.run(t, nil, append([]string{"token", "create", "prod", "--name", "laptop", "--show-token"}, p...)...)
	tokens = g.fake.AgentTokens(agent)
	if r.code != 0 || len(tokens) != 2 || strings.TrimSpace(r.stdout) != tokens[1].Token {
		t.Fatalf("--show-token: exit %d, %d tokens", r.code, len(tokens))
	}

	g.fake.MarkTokenUsed(tokens[0].Token, time.Now().Add(-3*time.Hour))
	r = g.run(t, nil, append([]string{"token", "create", "prod", "--name", "third", "--token-file", filepath.Join(dir, "t3")}, p...)...)
	wantError(t, r, `agent "prod" already has 2 active tokens`, `"ci" (last used`, `"laptop" (never used)`,
		"token revoke prod "+itoa(tokens[1].ID))

	r = g.run(t, nil, append([]string{"token", "list", "prod"}, p...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "3h ago") || !strings.Contains(r.stdout, "never") {
		t.Fatalf("list: %+v", r)
	}
	r = g.run(t, nil, append([]string{"token", "revoke", "prod", itoa(tokens[1].ID)}, p...)...)
	if r.code != 0 || g.fake.AgentTokens(agent)[1].Status != "revoked" {
		t.Fatalf("revoke: %+v", r)
	}
	r = g.run(t, nil, append([]string{"token", "list", "prod", "-o", "json"}, p...)...)
	if r.code != 0 || strings.Contains(r.stdout, `"laptop"`) || !strings.Contains(r.stdout, `"ci"`) {
		t.Fatalf("list after revoke: %+v", r)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
