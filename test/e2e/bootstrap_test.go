package e2e

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/cluster"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

var (
	fluxOnce sync.Once
	fluxErr  error
)

// needFlux starts Flux's controllers on the test cluster, once.
func needFlux(t *testing.T) {
	t.Helper()
	needCluster(t)
	fluxOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		defer cancel()
		_, fluxErr = cl.StartFlux(ctx, cluster.FluxOptions{Log: os.Stderr})
	})
	if fluxErr != nil {
		t.Fatalf("starting Flux: %v", fluxErr)
	}
}

// gitSecrets are the values no commit may ever hold: every agent token,
// every deploy token, the users' tokens.
func (g *gitlabEnv) gitSecrets() []string {
	s := []string{g.mToken, g.dToken}
	for _, a := range g.fake.Agents(g.project) {
		for _, tok := range g.fake.AgentTokens(&a) {
			s = append(s, tok.Token)
		}
	}
	for _, d := range g.fake.DeployTokens(g.project.ID) {
		s = append(s, d.Token)
	}
	return s
}

// noSecretInGit checks the repository's whole history, every branch.
func (g *gitlabEnv) noSecretInGit(t *testing.T) {
	t.Helper()
	for _, s := range g.gitSecrets() {
		if s != "" && g.fake.AllHistoryContains(g.project.ID, s) {
			t.Errorf("a token is in the repository's history")
		}
	}
	for _, mr := range g.fake.MergeRequests(g.project.ID) {
		for _, s := range g.gitSecrets() {
			if s != "" && strings.Contains(mr.Description+mr.Title, s) {
				t.Errorf("a token is in merge request !%d", mr.IID)
			}
		}
	}
}

func (g *gitlabEnv) activeDeployTokens() int {
	n := 0
	for _, d := range g.fake.DeployTokens(g.project.ID) {
		if !d.Revoked {
			n++
		}
	}
	return n
}

func TestBootstrapWithFlux(t *testing.T) {
	needFlux(t)
	g := newGitLab(t)
	g.fake.SetFile(g.project, "main", "README.md", []byte("# fleet\n"))
	simulateAgentk(t, g)
	ctx := context.Background()
	cs := clientset(t)
	p := []string{"--project", "infra/agents", "--manifest-path", "clusters/bs", "--timeout", "3m"}
	commits := func() int {
		log, err := g.fake.GitLog(g.project.ID, "main")
		if err != nil {
			t.Fatal(err)
		}
		return len(log)
	}

	// A dry run: the commit as diffs, the Flux objects, nothing done.
	before := commits()
	r := g.run(t, nil, append([]string{"bootstrap", "bs", "--dry-run"}, p...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "+++ b/clusters/bs/gitlab-agent/deployment-bs-gitlab-agent-v2.yaml") ||
		!strings.Contains(r.stdout, "would apply GitRepository flux-system/gitlab-agent-bs") ||
		!strings.Contains(r.stdout, `would create environment "agents/bs"`) {
		t.Fatalf("dry run: %+v", r)
	}
	if commits() != before || len(g.fake.Agents(g.project)) != 0 || len(g.fake.DeployTokens(g.project.ID)) != 0 {
		t.Fatalf("the dry run changed GitLab")
	}

	start := time.Now()
	r = g.run(t, nil, append([]string{"bootstrap", "bs", "--v=1"}, p...)...)
	if r.code != 0 || !strings.Contains(r.stdout, `agent "bs" is managed by Flux (Kustomization flux-system/gitlab-agent-bs`) ||
		!strings.Contains(r.stdout, `agent: "infra/agents:bs"`) {
		t.Fatalf("bootstrap: %+v", r)
	}
	t.Logf("bootstrap took %s:\n%s", time.Since(start).Round(time.Millisecond), r.stderr)
	if commits() != before+1 {
		t.Fatalf("%d commits, want one", commits()-before)
	}
	d, err := cs.AppsV1().Deployments("gitlab-agent-bs").Get(ctx, "bs-gitlab-agent-v2", metav1.GetOptions{})
	if err != nil || d.Labels["kustomize.toolkit.fluxcd.io/name"] != "gitlab-agent-bs" {
		t.Fatalf("Flux did not apply the Deployment: %v %v", err, d.Labels)
	}
	envs := g.fake.Environments(g.project.ID)
	if len(envs) != 1 || envs[0].Name != "agents/bs" || envs[0].FluxResourcePath != "kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations/gitlab-agent-bs" ||
		envs[0].KubernetesNamespace != "gitlab-agent-bs" {
		t.Fatalf("environments: %+v", envs)
	}
	if g.activeDeployTokens() != 1 {
		t.Fatalf("%d deploy tokens", g.activeDeployTokens())
	}
	for _, dt := range g.fake.DeployTokens(g.project.ID) {
		if strings.Join(dt.Scopes, ",") != "read_repository" || dt.ExpiresAt == nil {
			t.Errorf("deploy token scopes %v, expiry %v", dt.Scopes, dt.ExpiresAt)
		}
	}
	g.noSecretInGit(t)

	// The agent is a Flux app like any other: Synced, nothing drifted
	// (what kustomize-controller applied is what apps builds).
	r = g.run(t, nil, "apps", "list", "-n", "flux-system", "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"name": "gitlab-agent-bs"`) {
		t.Fatalf("apps list after bootstrap: %+v", r)
	}
	r = g.run(t, nil, "apps", "diff", "gitlab-agent-bs", "-n", "flux-system")
	if r.code != 0 {
		t.Fatalf("apps diff of the bootstrapped agent: %+v", r)
	}

	// Again: no commit, no token.
	snap := g.snapshot(t, "gitlab-agent-bs")
	r = g.run(t, nil, append([]string{"bootstrap", "bs"}, p...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "up to date") {
		t.Fatalf("re-run: %+v", r)
	}
	if commits() != before+1 || g.activeDeployTokens() != 1 || len(g.fake.DeployTokens(g.project.ID)) != 1 {
		t.Fatalf("a re-run committed or made a token")
	}
	if after := g.snapshot(t, "gitlab-agent-bs"); after.tokens != snap.tokens {
		t.Fatalf("a re-run made an agent token")
	}

	// upgrade and install refuse: Flux would undo them.
	r = g.run(t, nil, "upgrade", "bs", "--agent-version", "17.3.0")
	wantError(t, r, "managed by Flux", "bootstrap bs --project infra/agents --manifest-path clusters/bs")
	r = g.run(t, nil, "install", "bs", "--project", "infra/agents")
	wantError(t, r, "managed by Flux")

	// An upgrade is a re-run with the new version: one commit, rolled out.
	r = g.run(t, nil, append([]string{"bootstrap", "bs", "--agent-version", "17.3.0"}, p...)...)
	if r.code != 0 || commits() != before+2 {
		t.Fatalf("upgrade by bootstrap: %+v", r)
	}
	d, err = cs.AppsV1().Deployments("gitlab-agent-bs").Get(ctx, "bs-gitlab-agent-v2", metav1.GetOptions{})
	if err != nil || !strings.HasSuffix(d.Spec.Template.Spec.Containers[0].Image, ":v17.3.0") {
		t.Fatalf("the Deployment did not move: %v", err)
	}

	// A merge request instead of a commit, updated by a second run.
	for _, replicas := range []string{"3", "4"} {
		r = g.run(t, nil, append([]string{"bootstrap", "bs", "--agent-version", "17.3.0", "--merge-request", "--set", "replicas=" + replicas}, p...)...)
		if r.code != 0 || !strings.Contains(r.stdout, "merge request for agent") {
			t.Fatalf("--merge-request: %+v", r)
		}
	}
	if mrs := g.fake.MergeRequests(g.project.ID); len(mrs) != 1 || mrs[0].SourceBranch != "gitlab-agent/bs" || mrs[0].State != "opened" {
		t.Fatalf("merge requests: %+v", mrs)
	}
	if commits() != before+2 {
		t.Fatalf("--merge-request committed to main")
	}
	g.noSecretInGit(t)

	// Uninstall: the files go by a commit, Flux prunes, the deploy token
	// is revoked.
	r = g.run(t, nil, "uninstall", "bs", "--yes", "--timeout", "2m")
	if r.code != 0 || !strings.Contains(r.stdout, `agent "bs" uninstalled`) {
		t.Fatalf("uninstall: %+v", r)
	}
	if _, err := cs.AppsV1().Deployments("gitlab-agent-bs").Get(ctx, "bs-gitlab-agent-v2", metav1.GetOptions{}); err == nil {
		t.Fatalf("the Deployment is still there")
	}
	for _, kind := range []string{"kustomization", "gitrepository"} {
		if r := runCmd(t, "", kubectl, "get", kind, "-n", "flux-system", "gitlab-agent-bs"); r.code == 0 {
			t.Fatalf("the %s is still there", kind)
		}
	}
	if g.activeDeployTokens() != 0 {
		t.Fatalf("the deploy token was not revoked")
	}
	if _, ok := g.fake.File(g.project, "main", "clusters/bs/gitlab-agent/kustomization.yaml"); ok {
		t.Fatalf("the files are still in git")
	}
	g.noSecretInGit(t)
}

// TestBootstrapFailuresLeaveNoToken: GitLab failing at each step gives one
// error line, and no token of the run stays active.
func TestBootstrapFailuresLeaveNoToken(t *testing.T) {
	needFlux(t)
	g := newGitLab(t)
	g.fake.SetFile(g.project, "main", "README.md", []byte("# fleet\n"))
	simulateAgentk(t, g)
	p := []string{"--project", "infra/agents", "--manifest-path", "clusters/bf", "--timeout", "1m"}
	for _, c := range []struct {
		route  string
		status int
		want   string
	}{
		{"POST /api/v4/projects/{id}/repository/commits", 400, "400"},
		{"POST /api/v4/projects/{id}/repository/commits", 409, "409"},
		{"POST /api/v4/projects/{id}/repository/commits", 500, "500"},
		{"POST /api/v4/projects/{id}/deploy_tokens", 403, "403"},
		{"POST /api/v4/projects/{id}/environments", 400, "400"},
	} {
		g.fake.ClearFaults()
		g.fake.Inject(fakegitlab.Fault{Route: c.route, Status: c.status})
		r := g.run(t, nil, append([]string{"bootstrap", "bf"}, p...)...)
		wantError(t, r, c.want)
		g.activeTokensHeld(t, "bf")
		for _, dt := range g.fake.DeployTokens(g.project.ID) {
			if !dt.Revoked && c.status != 400 && strings.Contains(c.route, "deploy_tokens") {
				t.Errorf("%s %d: deploy token %d left active", c.route, c.status, dt.ID)
			}
		}
		g.noSecretInGit(t)
	}
	g.fake.ClearFaults()
	// The Kustomization of a run that got as far stays; clean up.
	r := g.run(t, nil, "uninstall", "bf", "--yes", "--timeout", "2m")
	if r.code != 0 {
		t.Logf("cleanup: %+v", r)
	}
}

// TestBootstrapAttacks: the manifest path stays in the repository, a
// GitRepository of another project is never reused or rewritten.
func TestBootstrapAttacks(t *testing.T) {
	needFlux(t)
	g := newGitLab(t)
	g.fake.SetFile(g.project, "main", "README.md", []byte("# fleet\n"))
	for _, mp := range []string{"../outside", "/etc", "clusters/../../x", ".git/hooks"} {
		r := g.run(t, nil, "bootstrap", "ba", "--project", "infra/agents", "--manifest-path", mp)
		wantError(t, r, "--manifest-path")
	}
	if n := len(g.fake.Requests()); n != 0 {
		t.Fatalf("a bad manifest path made %d requests", n)
	}
	// A symbolic link in the repository where the directory goes.
	if err := g.fake.SetSymlink(g.project, "main", "clusters/ba", "/etc"); err != nil {
		t.Fatal(err)
	}
	r := g.run(t, nil, "bootstrap", "ba", "--project", "infra/agents", "--manifest-path", "clusters/ba")
	wantError(t, r, "symbolic link")

	// A GitRepository named as bootstrap's, fetching another project.
	other := []byte(`{"apiVersion":"source.toolkit.fluxcd.io/v1","kind":"GitRepository","metadata":{"name":"gitlab-agent-ba","namespace":"flux-system"},
"spec":{"url":"https://evil.example.com/infra/agents.git","interval":"10m","ref":{"branch":"main"}}}`)
	r = runCmd(t, string(other), kubectl, "apply", "-f", "-")
	if r.code != 0 {
		t.Fatalf("kubectl apply: %+v", r)
	}
	t.Cleanup(func() { runCmd(t, "", kubectl, "delete", "gitrepository", "-n", "flux-system", "gitlab-agent-ba") })
	r = g.run(t, nil, "bootstrap", "ba", "--project", "infra/agents", "--manifest-path", "clusters/other")
	wantError(t, r, "never rewrites")
	r = runCmd(t, "", kubectl, "get", "gitrepository", "-n", "flux-system", "gitlab-agent-ba", "-o", "jsonpath={.spec.url}")
	if r.stdout != "https://evil.example.com/infra/agents.git" {
		t.Fatalf("the GitRepository was rewritten: %+v", r)
	}
	g.activeTokensHeld(t, "ba")
}

// TestBootstrapUnderFluxBootstrap: on a cluster set up as 'flux bootstrap
// gitlab' leaves it (a GitRepository of the project with its own
// credentials, a Kustomization of clusters/NAME), bootstrap reuses both:
// Flux's generated kustomization takes the agent's directory in, and the
// agent is applied by that Kustomization alone.
func TestBootstrapUnderFluxBootstrap(t *testing.T) {
	needFlux(t)
	g := newGitLab(t)
	g.fake.SetFile(g.project, "main", "clusters/fb/flux-system/README.md", []byte("flux bootstrap's own files would be here\n"))
	simulateAgentk(t, g)
	dt := g.fake.AddDeployToken(g.project, "flux", []string{"read_repository"}, nil)
	objs := `apiVersion: v1
kind: Secret
metadata: {name: fleet-auth, namespace: flux-system}
stringData: {username: "` + dt.Username + `", password: "` + dt.Token + `"}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: fleet, namespace: flux-system}
spec: {url: "` + g.fake.URL + `/infra/agents.git", interval: 10m, ref: {branch: main}, secretRef: {name: fleet-auth}}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: fleet, namespace: flux-system}
spec: {path: ./clusters/fb, interval: 10m, prune: true, sourceRef: {kind: GitRepository, name: fleet}}
`
	if r := runCmd(t, objs, kubectl, "apply", "-f", "-"); r.code != 0 {
		t.Fatalf("kubectl apply: %+v", r)
	}
	t.Cleanup(func() {
		runCmd(t, "", kubectl, "delete", "kustomization,gitrepository", "-n", "flux-system", "fleet", "--wait=true")
		runCmd(t, "", kubectl, "delete", "secret", "-n", "flux-system", "fleet-auth")
	})
	r := g.run(t, nil, "bootstrap", "fb", "--project", "infra/agents", "--manifest-path", "clusters/fb", "--timeout", "3m", "-o", "json")
	if r.code != 0 {
		t.Fatalf("bootstrap: %+v", r)
	}
	var res struct {
		GitRepository      struct{ Name, Action string } `json:"gitRepository"`
		Kustomization      struct{ Name, Action string } `json:"kustomization"`
		DeployTokenCreated bool                          `json:"deployTokenCreated"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatal(err)
	}
	if res.GitRepository.Name != "fleet" || res.GitRepository.Action != "reused" || res.Kustomization.Name != "fleet" || res.DeployTokenCreated {
		t.Fatalf("flux bootstrap's objects were not reused: %+v", res)
	}
	d, err := clientset(t).AppsV1().Deployments("gitlab-agent-fb").Get(context.Background(), "fb-gitlab-agent-v2", metav1.GetOptions{})
	if err != nil || d.Labels["kustomize.toolkit.fluxcd.io/name"] != "fleet" {
		t.Fatalf("the agent is not applied by Kustomization fleet: %v", err)
	}
	if r := runCmd(t, "", kubectl, "get", "kustomization", "-n", "flux-system", "gitlab-agent-fb"); r.code == 0 {
		t.Fatal("a second Kustomization applies the agent")
	}
	// Uninstall: the commit removes the files, reconciling fleet prunes them.
	r = g.run(t, nil, "uninstall", "fb", "--yes", "--timeout", "2m")
	if r.code != 0 {
		t.Fatalf("uninstall: %+v", r)
	}
	if _, err := clientset(t).AppsV1().Deployments("gitlab-agent-fb").Get(context.Background(), "fb-gitlab-agent-v2", metav1.GetOptions{}); err == nil {
		t.Fatal("the Deployment is still there")
	}
	if r := runCmd(t, "", kubectl, "get", "gitrepository", "-n", "flux-system", "fleet"); r.code != 0 {
		t.Fatal("uninstall deleted flux bootstrap's GitRepository")
	}
	g.noSecretInGit(t)
}
