package gitlab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

var ctx = context.Background()

func TestCreateCommit(t *testing.T) {
	f := newFixture(t)
	c := f.client(t, f.mToken)
	// A first commit into the empty repository.
	made, err := c.CreateCommit(ctx, proj, CommitOptions{Branch: "main", Message: "Add Flux\n\nby bootstrap", Actions: []CommitAction{
		{Action: "create", Path: "clusters/prod/flux-system/gotk-sync.yaml", Content: []byte("kind: Kustomization\n")},
		{Action: "create", Path: "clusters/prod/apps.yaml", Content: []byte{0, 1, 2, 0xff}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	log, _ := f.fake.GitLog(f.project.ID, "main")
	if len(log) != 1 || made.ID != log[0].ID || made.Title != "Add Flux" || made.Message != "Add Flux\n\nby bootstrap" || made.AuthorName != "Maria" ||
		made.ShortID != made.ID[:8] || !strings.Contains(made.WebURL, "/infra/agents/-/commit/") || made.CreatedAt.IsZero() || len(made.ParentIDs) != 0 {
		t.Fatalf("made %+v, main %+v", made, log)
	}
	if !bytes.Equal(log[0].Files["clusters/prod/apps.yaml"], []byte{0, 1, 2, 0xff}) {
		t.Errorf("binary content arrived as %q", log[0].Files["clusters/prod/apps.yaml"])
	}

	// An update locked on the file's last commit; a stale lock is a
	// conflict that says to run again.
	file, _, err := c.GetFile(ctx, proj, "clusters/prod/apps.yaml", "main")
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.CreateCommit(ctx, proj, CommitOptions{Branch: "main", Message: "Update apps", Actions: []CommitAction{
		{Action: "update", Path: "clusters/prod/apps.yaml", Content: []byte("kind: Kustomization\n"), LastCommitID: file.LastCommitID},
		{Action: "delete", Path: "clusters/prod/flux-system/gotk-sync.yaml"},
	}})
	if err != nil || len(second.ParentIDs) != 1 || second.ParentIDs[0] != made.ID {
		t.Fatalf("update: %+v %v", second, err)
	}
	_, err = c.CreateCommit(ctx, proj, CommitOptions{Branch: "main", Message: "stale", Actions: []CommitAction{
		{Action: "update", Path: "clusters/prod/apps.yaml", Content: []byte("x"), LastCommitID: made.ID},
	}})
	if !IsClass(err, ClassConflict) || !strings.Contains(err.Error(), "has changed since you started editing it") || !strings.Contains(err.Error(), "run the command again") {
		t.Errorf("stale: %v", err)
	}
	_, err = c.CreateCommit(ctx, proj, CommitOptions{Branch: "main", Message: "again", Actions: []CommitAction{{Action: "create", Path: "clusters/prod/apps.yaml"}}})
	if !IsClass(err, ClassConflict) || !strings.Contains(err.Error(), "A file with this name already exists") {
		t.Errorf("create over a file: %v", err)
	}
	_, err = c.CreateCommit(ctx, proj, CommitOptions{Branch: "main", Message: "gone", Actions: []CommitAction{{Action: "delete", Path: "nope.yaml"}}})
	if !IsClass(err, ClassInvalid) || !strings.Contains(err.Error(), "doesn't exist") || !strings.Contains(err.Error(), "check that main exists in infra/agents") {
		t.Errorf("delete of nothing: %v", err)
	}

	// A developer may not push to the protected default branch, but
	// may open a branch from it.
	dc := f.client(t, f.dToken)
	_, err = dc.CreateCommit(ctx, proj, CommitOptions{Branch: "main", Message: "x", Actions: []CommitAction{{Action: "create", Path: "x"}}})
	if !IsClass(err, ClassForbidden) || !strings.Contains(err.Error(), "Maintainer for a protected branch") {
		t.Errorf("developer on main: %v", err)
	}
	_, err = dc.CreateCommit(ctx, proj, CommitOptions{Branch: "bootstrap", Message: "x", Actions: []CommitAction{{Action: "create", Path: "x"}}})
	if !IsClass(err, ClassInvalid) || !strings.Contains(err.Error(), "when you are on a branch") {
		t.Errorf("new branch without a start: %v", err)
	}
	onBranch, err := dc.CreateCommit(ctx, proj, CommitOptions{Branch: "bootstrap", StartBranch: "main", Message: "x", Actions: []CommitAction{{Action: "create", Path: "x", Content: []byte("1")}}})
	if err != nil || onBranch.ParentIDs[0] != second.ID {
		t.Fatalf("new branch: %+v %v", onBranch, err)
	}
	b, found, err := dc.GetBranch(ctx, proj, "bootstrap")
	if err != nil || !found || b.CommitID != onBranch.ID || b.Protected {
		t.Errorf("branch: %+v %v %v", b, found, err)
	}
	if b, found, err := dc.GetBranch(ctx, proj, "main"); err != nil || !found || !b.Protected {
		t.Errorf("main: %+v %v %v", b, found, err)
	}
	if _, found, err := dc.GetBranch(ctx, proj, "nope"); err != nil || found {
		t.Errorf("missing branch: %v %v", found, err)
	}
	if _, _, err := dc.GetBranch(ctx, ProjectRef{Path: "other/proj"}, "main"); !IsClass(err, ClassNotFound) {
		t.Errorf("branch of an unknown project: %v", err)
	}
	if _, err := f.client(t, "glpat-wrong").CreateCommit(ctx, proj, CommitOptions{Branch: "main", Message: "x", Actions: []CommitAction{{Action: "create", Path: "y"}}}); !IsClass(err, ClassUnauthenticated) {
		t.Errorf("wrong token: %v", err)
	}
	if n := len(f.fake.Commits()); n != 3 {
		t.Errorf("%d commits, want 3", n)
	}
}

func TestCreateCommitWhoseAnswerIsLost(t *testing.T) {
	opts := func(msg string) CommitOptions {
		return CommitOptions{Branch: "main", Message: msg, Actions: []CommitAction{{Action: "create", Path: "a.yaml", Content: []byte("a: 1\n")}}}
	}
	t.Run("made", func(t *testing.T) {
		f := newFixture(t)
		f.fake.Inject(fakegitlab.Fault{Route: fakegitlab.CommitsRoute, Nth: 1, Status: 502, AfterWork: true})
		made, err := f.client(t, f.mToken).CreateCommit(ctx, proj, opts("Add a"))
		if err != nil || made == nil || made.Title != "Add a" {
			t.Fatalf("%+v %v", made, err)
		}
		if n := f.fake.Calls(fakegitlab.CommitsRoute); n != 1 || len(f.fake.Commits()) != 1 || made.ID != f.fake.Commits()[0].ID {
			t.Errorf("sent %d times, %d commits", n, len(f.fake.Commits()))
		}
	})
	t.Run("dropped after the work", func(t *testing.T) {
		f := newFixture(t)
		f.fake.Inject(fakegitlab.Fault{Route: fakegitlab.CommitsRoute, Nth: 1, Drop: true, AfterWork: true})
		if made, err := f.client(t, f.mToken).CreateCommit(ctx, proj, opts("Add a")); err != nil || made == nil {
			t.Fatalf("%+v %v", made, err)
		}
	})
	t.Run("not made", func(t *testing.T) {
		f := newFixture(t)
		f.fake.SetFile(f.project, "main", "a.yaml", []byte("a: 1\n")) // the content is there, the commit is not
		f.fake.Inject(fakegitlab.Fault{Route: fakegitlab.CommitsRoute, Nth: 1, Status: 500})
		_, err := f.client(t, f.mToken).CreateCommit(ctx, proj, CommitOptions{Branch: "main", Message: "Update a", Actions: []CommitAction{{Action: "update", Path: "a.yaml", Content: []byte("a: 1\n")}}})
		if !IsClass(err, ClassServer) || !strings.Contains(err.Error(), "may or may not have been made") || f.fake.Calls(fakegitlab.CommitsRoute) != 1 {
			t.Errorf("%v after %d calls", err, f.fake.Calls(fakegitlab.CommitsRoute))
		}
	})
	t.Run("a conflict is no lost answer", func(t *testing.T) {
		f := newFixture(t)
		f.fake.Inject(fakegitlab.Fault{Route: fakegitlab.CommitsRoute, Status: 409})
		_, err := f.client(t, f.mToken).CreateCommit(ctx, proj, opts("Add a"))
		if !IsClass(err, ClassConflict) || !strings.Contains(err.Error(), "run the command again") || strings.Contains(err.Error(), "may or may not") {
			t.Errorf("%v", err)
		}
	})
}

// fastImport makes n commits on branch of the fake's repository in one git
// process, commit i setting f.txt to i (and even ones g.txt too).
func fastImport(t *testing.T, dir, branch string, n int) {
	t.Helper()
	var in bytes.Buffer
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&in, "commit refs/heads/%s\nmark :%d\ncommitter T <t@example.com> %d +0000\ndata <<EOF\ncommit %d\nEOF\n", branch, i, 1700000000+i, i)
		if i > 1 {
			fmt.Fprintf(&in, "from :%d\n", i-1)
		}
		fmt.Fprintf(&in, "M 100644 inline f.txt\ndata <<EOF\n%d\nEOF\n", i)
		if i%2 == 0 {
			fmt.Fprintf(&in, "M 100644 inline g.txt\ndata <<EOF\n%d\nEOF\n", i)
		}
	}
	cmd := exec.Command("git", "fast-import", "--quiet")
	cmd.Env = append(os.Environ(), "GIT_DIR="+dir)
	cmd.Stdin = &in
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("fast-import: %v %s", err, out)
	}
}

func TestListCommits(t *testing.T) {
	f := newFixture(t)
	fastImport(t, f.fake.RepoDir(f.project.ID), "main", 105)
	r := f.fake.AddMember
	_, rToken := r(f.project, "rita", fakegitlab.Reporter)
	c := f.client(t, rToken)
	all, err := c.ListCommits(ctx, proj, "main", "", 0)
	if err != nil || len(all) != 105 || all[0].Title != "commit 105" || all[104].Title != "commit 1" {
		t.Fatalf("%d commits, %v", len(all), err)
	}
	const route = "GET /api/v4/projects/{id}/repository/commits"
	if n := f.fake.Calls(route); n != 2 {
		t.Errorf("%d pages read, want 2", n)
	}
	top, err := c.ListCommits(ctx, proj, "", "", 3)
	if err != nil || len(top) != 3 || top[0].Title != "commit 105" || f.fake.Calls(route) != 3 {
		t.Errorf("limit 3: %d, %v, %d calls", len(top), err, f.fake.Calls(route))
	}
	even, err := c.ListCommits(ctx, proj, "main", "g.txt", 0)
	if err != nil || len(even) != 52 || even[0].Title != "commit 104" {
		t.Errorf("commits of g.txt: %d %v", len(even), err)
	}
	// Exactly 100: GitLab advertises a next page that is empty.
	fastImport(t, f.fake.RepoDir(f.project.ID), "hundred", 100)
	if list, err := c.ListCommits(ctx, proj, "hundred", "", 0); err != nil || len(list) != 100 {
		t.Errorf("hundred: %d %v", len(list), err)
	}
	if list, err := c.ListCommits(ctx, proj, "nope", "", 0); err != nil || len(list) != 0 {
		t.Errorf("missing ref: %v %v", list, err)
	}
	if _, err := f.client(t, f.mToken).ListCommits(ctx, ProjectRef{Path: "other/x"}, "", "", 0); !IsClass(err, ClassNotFound) {
		t.Errorf("unknown project: %v", err)
	}
}

func TestListTree(t *testing.T) {
	f := newFixture(t)
	c := f.client(t, f.dToken)
	if _, found, err := c.ListTree(ctx, proj, "", "main", true); err != nil || found {
		t.Errorf("empty repository: %v %v", found, err)
	}
	f.fake.SetFile(f.project, "main", "clusters/prod/flux-system/gotk-sync.yaml", []byte("a"))
	f.fake.SetFile(f.project, "main", "clusters/prod/apps.yaml", []byte("b"))
	f.fake.SetFile(f.project, "main", "README.md", []byte("c"))
	top, found, err := c.ListTree(ctx, proj, "", "main", false)
	if err != nil || !found || len(top) != 2 {
		t.Fatalf("root: %+v %v %v", top, found, err)
	}
	all, found, err := c.ListTree(ctx, proj, "clusters/prod", "", true)
	var paths []string
	for _, e := range all {
		paths = append(paths, e.Type+" "+e.Path)
	}
	if err != nil || !found || strings.Join(paths, ",") != "blob clusters/prod/apps.yaml,tree clusters/prod/flux-system,blob clusters/prod/flux-system/gotk-sync.yaml" {
		t.Errorf("recursive: %v %v %v", paths, found, err)
	}
	for _, tc := range []struct{ path, ref string }{{"clusters/staging", "main"}, {"", "nope"}, {"README.md", "main"}} {
		if list, found, err := c.ListTree(ctx, proj, tc.path, tc.ref, false); err != nil || found || list != nil {
			t.Errorf("%+v: %v %v %v", tc, list, found, err)
		}
	}
	if _, _, err := c.ListTree(ctx, ProjectRef{Path: "other/x"}, "", "", false); !IsClass(err, ClassNotFound) {
		t.Errorf("unknown project: %v", err)
	}
	f.fake.Inject(fakegitlab.Fault{Route: "GET /api/v4/projects/{id}/repository/tree", Nth: 1, Status: 503})
	if _, found, err := c.ListTree(ctx, proj, "", "main", false); err != nil || !found {
		t.Errorf("a 503 is retried: %v %v", found, err)
	}
}

func TestMergeRequests(t *testing.T) {
	f := newFixture(t)
	f.fake.SetFile(f.project, "main", "a", []byte("1"))
	f.fake.SetFile(f.project, "bootstrap/prod", "a", []byte("2"))
	c := f.client(t, f.dToken)
	if _, found, err := c.FindOpenMergeRequest(ctx, proj, "bootstrap/prod", "main"); err != nil || found {
		t.Fatalf("none yet: %v %v", found, err)
	}
	mr, err := c.CreateMergeRequest(ctx, proj, "bootstrap/prod", "main", "Bootstrap prod", "Adds Flux")
	if err != nil || mr.IID != 1 || mr.State != "opened" || mr.SourceBranch != "bootstrap/prod" || mr.TargetBranch != "main" ||
		mr.Description != "Adds Flux" || !strings.HasSuffix(mr.WebURL, "/infra/agents/-/merge_requests/1") || len(mr.SHA) != 40 {
		t.Fatalf("create: %+v %v", mr, err)
	}
	// GitLab's 409 for a second one: the open one comes back.
	again, err := c.CreateMergeRequest(ctx, proj, "bootstrap/prod", "main", "Other title", "")
	if err != nil || again.IID != 1 || again.Title != "Bootstrap prod" {
		t.Fatalf("again: %+v %v", again, err)
	}
	found, ok, err := c.FindOpenMergeRequest(ctx, proj, "bootstrap/prod", "main")
	if err != nil || !ok || *found != *mr {
		t.Errorf("find: %+v %v %v", found, ok, err)
	}
	up, err := c.UpdateMergeRequest(ctx, proj, mr.IID, "Bootstrap prod (v2)", "")
	if err != nil || up.Title != "Bootstrap prod (v2)" || up.Description != "" {
		t.Errorf("update: %+v %v", up, err)
	}
	if _, err := c.UpdateMergeRequest(ctx, proj, 99, "x", "y"); !IsClass(err, ClassNotFound) || !strings.Contains(err.Error(), "no merge request !99") {
		t.Errorf("update of a missing one: %v", err)
	}
	if _, err := c.CreateMergeRequest(ctx, proj, "nope", "main", "x", ""); !IsClass(err, ClassInvalid) || !strings.Contains(err.Error(), `Source branch \"nope\" does not exist`) && !strings.Contains(err.Error(), `Source branch "nope" does not exist`) {
		t.Errorf("missing branch: %v", err)
	}
	_, gToken := f.fake.AddMember(f.project, "gus", fakegitlab.Reporter)
	if _, err := f.client(t, gToken).CreateMergeRequest(ctx, proj, "bootstrap/prod", "main", "x", ""); !IsClass(err, ClassForbidden) || !strings.Contains(err.Error(), "Developer role") {
		t.Errorf("reporter: %v", err)
	}
	// A lost answer of one that was made.
	f.fake.SetMergeRequestState(f.project.ID, 1, "closed")
	route := "POST /api/v4/projects/{id}/merge_requests"
	f.fake.Inject(fakegitlab.Fault{Route: route, Nth: 1, Status: 504, AfterWork: true})
	lost, err := c.CreateMergeRequest(ctx, proj, "bootstrap/prod", "main", "Bootstrap prod", "")
	if err != nil || lost.IID != 2 || f.fake.Calls(route) != 5 || len(f.fake.MergeRequests(f.project.ID)) != 2 {
		t.Errorf("lost answer: %+v %v, %d calls", lost, err, f.fake.Calls(route))
	}
}

func TestDeployTokens(t *testing.T) {
	f := newFixture(t)
	c := f.client(t, f.mToken)
	expires := time.Now().Add(30 * 24 * time.Hour).Truncate(time.Second)
	tok, err := c.CreateDeployToken(ctx, proj, "flux-prod", []string{"read_repository"}, expires)
	if err != nil || tok.Token == "" || !strings.HasPrefix(tok.Username, "gitlab+deploy-token-") || tok.ExpiresAt == nil || !tok.ExpiresAt.Equal(expires) || tok.Revoked {
		t.Fatalf("create: %+v %v", tok, err)
	}
	for _, s := range []string{fmt.Sprint(tok), fmt.Sprintf("%+v", tok), fmt.Sprintf("%#v", *tok), fmt.Sprintf("%v", []DeployToken{*tok})} {
		if strings.Contains(s, tok.Token) {
			t.Errorf("printing the token shows its secret: %s", s)
		}
	}
	if b, _ := json.Marshal(tok); strings.Contains(string(b), tok.Token) {
		t.Errorf("its JSON shows the secret: %s", b)
	}
	old := f.fake.AddDeployToken(f.project, "old", []string{"read_repository"}, nil)
	past := time.Now().Add(-time.Minute)
	f.fake.AddDeployToken(f.project, "expired", []string{"read_repository"}, &past)
	revoked := f.fake.AddDeployToken(f.project, "revoked", []string{"read_repository"}, nil)
	f.fake.RevokeDeployToken(revoked.ID)
	list, err := c.ListDeployTokens(ctx, proj)
	if err != nil || len(list) != 2 || list[0].ID != tok.ID || list[1].ID != old.ID || list[0].Token != "" {
		t.Fatalf("list: %v %v", list, err)
	}
	if err := c.RevokeDeployToken(ctx, proj, old.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.RevokeDeployToken(ctx, proj, old.ID); err != nil {
		t.Errorf("revoking one gone: %v", err)
	}
	if _, err := c.CreateDeployToken(ctx, proj, "x", []string{"api"}, time.Time{}); !IsClass(err, ClassInvalid) || !strings.Contains(err.Error(), "read_repository") {
		t.Errorf("bad scope: %v", err)
	}
	dc := f.client(t, f.dToken)
	if _, err := dc.CreateDeployToken(ctx, proj, "x", []string{"read_repository"}, time.Time{}); !IsClass(err, ClassForbidden) || !strings.Contains(err.Error(), "need the Maintainer role on infra/agents") {
		t.Errorf("developer: %v", err)
	}
	if _, err := dc.ListDeployTokens(ctx, proj); !IsClass(err, ClassForbidden) {
		t.Errorf("developer's list: %v", err)
	}
	// A lost answer: the token nobody holds is revoked.
	route := "POST /api/v4/projects/{id}/deploy_tokens"
	f.fake.Inject(fakegitlab.Fault{Route: route, Nth: 1, Status: 502, AfterWork: true})
	calls := f.fake.Calls(route)
	_, err = c.CreateDeployToken(ctx, proj, "flux-lost", []string{"read_repository"}, time.Time{})
	if err == nil || !strings.Contains(err.Error(), "anyway, and it was revoked") || f.fake.Calls(route) != calls+1 {
		t.Errorf("lost answer: %v", err)
	}
	for _, dt := range f.fake.DeployTokens(f.project.ID) {
		if dt.Name == "flux-lost" {
			t.Errorf("the stray token is still there: %+v", dt)
		}
	}
}

// TestDeployTokenValuesNeverShow: a deploy token GitLab gave the client is
// redacted from every message after, as the credential is, though GitLab
// (or something posing as it) echoes it.
func TestDeployTokenValuesNeverShow(t *testing.T) {
	const secret = "gldt-the-deploy-secret-42"
	var created atomic.Bool
	var logBuf bytes.Buffer
	c := hostile(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == "GET" && strings.HasSuffix(r.URL.Path, "/deploy_tokens"):
			_, _ = w.Write([]byte("[]"))
		case r.Method == "POST" && strings.HasSuffix(r.URL.Path, "/deploy_tokens"):
			created.Store(true)
			w.WriteHeader(201)
			fmt.Fprintf(w, `{"id":7,"name":"flux","username":"gitlab+deploy-token-7","token":%q,"scopes":["read_repository"],"revoked":false,"expired":false}`, secret)
		default:
			w.WriteHeader(500)
			fmt.Fprintf(w, `{"message":"boom: the token was %s"}`, secret)
		}
	})
	c.log = &logBuf
	tok, err := c.CreateDeployToken(ctx, proj, "flux", []string{"read_repository"}, time.Time{})
	if err != nil || tok.Token != secret || !created.Load() {
		t.Fatalf("%+v %v", tok, err)
	}
	_, err = c.ListCommits(ctx, proj, "main", "", 1)
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "[REDACTED]") {
		t.Errorf("an echo of the token: %v", err)
	}
	if strings.Contains(logBuf.String(), secret) {
		t.Errorf("the log shows the token: %s", logBuf.String())
	}
}

func TestEnvironments(t *testing.T) {
	f := newFixture(t)
	agent := f.fake.AddAgent(f.project, "prod", f.maintainer)
	foreign := f.fake.AddAgent(f.fake.AddProject("other/agents"), "theirs", f.maintainer)
	c := f.client(t, f.dToken)
	const name = "flux-system/gitlab-agent"
	if _, found, err := c.FindEnvironment(ctx, proj, name); err != nil || found {
		t.Fatalf("none yet: %v %v", found, err)
	}
	ns, path := "flux-system", "helm.toolkit.fluxcd.io/v2/namespaces/flux-system/helmreleases/gitlab-agent"
	env, err := c.CreateEnvironment(ctx, proj, name, EnvironmentOptions{ClusterAgentID: &agent.ID, KubernetesNamespace: &ns, FluxResourcePath: &path, Tier: strPtr("production")})
	if err != nil || env.ID == 0 || env.Name != name || env.State != "available" || env.ClusterAgentID == nil || *env.ClusterAgentID != agent.ID ||
		env.KubernetesNamespace != ns || env.FluxResourcePath != path || env.Tier != "production" {
		t.Fatalf("create: %+v %v", env, err)
	}
	got, found, err := c.FindEnvironment(ctx, proj, name)
	if err != nil || !found || got.ClusterAgentID == nil || *got.ClusterAgentID != agent.ID || got.FluxResourcePath != path {
		t.Fatalf("find: %+v %v %v", got, found, err)
	}
	if n := f.fake.Calls("GET /api/v4/projects/{id}/environments/{environment_id}"); n != 1 {
		t.Errorf("%d single GETs, want 1 (for the agent)", n)
	}
	if _, err := c.CreateEnvironment(ctx, proj, name, EnvironmentOptions{}); !IsClass(err, ClassConflict) || !strings.Contains(err.Error(), "update it instead") {
		t.Errorf("twice: %v", err)
	}
	if _, err := c.CreateEnvironment(ctx, proj, "other", EnvironmentOptions{ClusterAgentID: &foreign.ID}); !IsClass(err, ClassInvalid) ||
		!strings.Contains(err.Error(), "cluster agent doesn't exist") || !strings.Contains(err.Error(), "registered in infra/agents itself") {
		t.Errorf("foreign agent: %v", err)
	}
	// Clearing sends JSON null, which the official client cannot.
	zero, empty := int64(0), ""
	up, err := c.UpdateEnvironment(ctx, proj, env.ID, EnvironmentOptions{ClusterAgentID: &zero, KubernetesNamespace: &empty, FluxResourcePath: &empty, ExternalURL: strPtr("https://prod.example.com")})
	if err != nil || up.ClusterAgentID != nil || up.KubernetesNamespace != "" || up.FluxResourcePath != "" || up.ExternalURL != "https://prod.example.com" || up.Tier != "production" {
		t.Fatalf("clear: %+v %v", up, err)
	}
	if stored := f.fake.Environments(f.project.ID); len(stored) != 1 || stored[0].ClusterAgentID != nil || stored[0].KubernetesNamespace != "" {
		t.Errorf("GitLab holds %+v", stored)
	}
	if _, err := c.UpdateEnvironment(ctx, proj, env.ID, EnvironmentOptions{KubernetesNamespace: &ns}); !IsClass(err, ClassInvalid) || !strings.Contains(err.Error(), "cannot be set without a cluster agent") {
		t.Errorf("a namespace without an agent: %v", err)
	}
	if _, err := c.UpdateEnvironment(ctx, proj, 999999, EnvironmentOptions{Tier: strPtr("staging")}); !IsClass(err, ClassNotFound) {
		t.Errorf("update of a missing one: %v", err)
	}
	if err := c.StopAndDeleteEnvironment(ctx, proj, env.ID); err != nil {
		t.Fatal(err)
	}
	if n := len(f.fake.Environments(f.project.ID)); n != 0 {
		t.Errorf("%d environments left", n)
	}
	if err := c.StopAndDeleteEnvironment(ctx, proj, env.ID); err != nil {
		t.Errorf("deleting one gone: %v", err)
	}
	_, gToken := f.fake.AddMember(f.project, "rita", fakegitlab.Reporter)
	if _, err := f.client(t, gToken).CreateEnvironment(ctx, proj, "x", EnvironmentOptions{}); !IsClass(err, ClassForbidden) || !strings.Contains(err.Error(), "Developer role") {
		t.Errorf("reporter: %v", err)
	}
	// A lost answer of one that was made finds it.
	route := "POST /api/v4/projects/{id}/environments"
	f.fake.Inject(fakegitlab.Fault{Route: route, Nth: 1, Status: 502, AfterWork: true})
	if lost, err := c.CreateEnvironment(ctx, proj, "flux-system/flux-system", EnvironmentOptions{}); err != nil || lost.Name != "flux-system/flux-system" || f.fake.Calls(route) != 5 {
		t.Errorf("lost answer: %+v %v, %d calls", lost, err, f.fake.Calls(route))
	}
}

func strPtr(s string) *string { return &s }

func TestProjectCloneURL(t *testing.T) {
	f := newFixture(t)
	p, err := f.client(t, f.dToken).GetProject(ctx, proj)
	if err != nil || p.HTTPURLToRepo != f.fake.URL+"/infra/agents.git" || p.WebURL != f.fake.URL+"/infra/agents" {
		t.Errorf("%+v %v", p, err)
	}
}
