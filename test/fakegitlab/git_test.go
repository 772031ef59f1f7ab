package fakegitlab_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

type world struct {
	fake       *fakegitlab.Server
	project    *fakegitlab.Project
	maintainer *fakegitlab.User
	mToken     string
	dToken     string
	rToken     string
	gToken     string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{fake: fakegitlab.New()}
	t.Cleanup(w.fake.Close)
	w.project = w.fake.AddProject("infra/fleet")
	w.maintainer, w.mToken = w.fake.AddMember(w.project, "maria", fakegitlab.Maintainer)
	_, w.dToken = w.fake.AddMember(w.project, "dev", fakegitlab.Developer)
	_, w.rToken = w.fake.AddMember(w.project, "rita", fakegitlab.Reporter)
	_, w.gToken = w.fake.AddMember(w.project, "gus", fakegitlab.Guest)
	return w
}

// call sends body as JSON (nil: none) with token and decodes the answer.
func (w *world) call(t *testing.T, method, path, token string, body any) (int, any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, w.fake.URL+"/api/v4/projects/"+url.PathEscape(w.project.PathWithNS)+path, r)
	req.Header.Set("PRIVATE-TOKEN", token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var v any
	_ = json.Unmarshal(raw, &v)
	return resp.StatusCode, v
}

// git runs git in dir with nothing of this machine's git configuration; it
// returns the combined output.
func git(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	home := t.TempDir()
	cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=" + os.DevNull,
		"GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=", "SSH_ASKPASS=", "LC_ALL=C",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com"}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// cloneURL is the project's http_url_to_repo with basic credentials.
func (w *world) cloneURL(t *testing.T, user, pass string) string {
	t.Helper()
	_, j := w.call(t, "GET", "", w.mToken, nil)
	raw, _ := j.(map[string]any)["http_url_to_repo"].(string)
	if raw != w.fake.URL+"/infra/fleet.git" {
		t.Fatalf("http_url_to_repo %q", raw)
	}
	u, _ := url.Parse(raw)
	u.User = url.UserPassword(user, pass)
	return u.String()
}

func (w *world) statuses(route string) []int {
	var out []int
	for _, r := range w.fake.Requests() {
		if r.Pattern == route {
			out = append(out, r.Status)
		}
	}
	return out
}

func TestCloneOverSmartHTTP(t *testing.T) {
	w := newWorld(t)
	w.fake.SetFile(w.project, "main", "clusters/prod/kustomization.yaml", []byte("resources: []\n"))
	dt := w.fake.AddDeployToken(w.project, "flux", []string{"read_repository"}, nil)
	if !strings.HasPrefix(dt.Username, "gitlab+deploy-token-") || !strings.HasPrefix(dt.Token, "gldt-") {
		t.Fatalf("deploy token %+v", dt)
	}
	dir := t.TempDir()
	if out, err := git(t, dir, "clone", "--quiet", w.cloneURL(t, dt.Username, dt.Token), "repo"); err != nil {
		t.Fatalf("clone with the deploy token: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(dir, "repo", "clusters/prod/kustomization.yaml"))
	if err != nil || string(got) != "resources: []\n" {
		t.Fatalf("cloned file: %q %v", got, err)
	}

	// A push is refused, whoever asks.
	repo := filepath.Join(dir, "repo")
	if err := os.WriteFile(filepath.Join(repo, "evil.yaml"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := git(t, repo, "add", "."); err != nil {
		t.Fatal(out)
	}
	if out, err := git(t, repo, "commit", "--quiet", "-m", "evil"); err != nil {
		t.Fatal(out)
	}
	before := len(w.statuses(fakegitlab.GitHTTPRoute))
	out, err := git(t, repo, "push", "--quiet", w.cloneURL(t, "maria", w.mToken), "HEAD:main")
	if err == nil {
		t.Fatalf("push went through: %s", out)
	}
	if st := w.statuses(fakegitlab.GitHTTPRoute)[before:]; len(st) == 0 || st[len(st)-1] != http.StatusForbidden {
		t.Errorf("push answered %v, want a 403", st)
	}
	if _, ok := w.fake.File(w.project, "main", "evil.yaml"); ok {
		t.Fatal("the push landed")
	}

	// A member's personal access token reads as well; a guest's does not.
	if out, err := git(t, dir, "clone", "--quiet", w.cloneURL(t, "anything", w.rToken), "by-pat"); err != nil {
		t.Errorf("clone with a reporter's PAT: %v\n%s", err, out)
	}

	refused := map[string][2]string{
		"wrong password": {dt.Username, dt.Token + "x"},
		"wrong username": {"someone", dt.Token},
		"guest's PAT":    {"gus", w.gToken},
		"no password":    {dt.Username, ""},
		"unknown token":  {"x", "glpat-not-a-token"},
	}
	scopeless := w.fake.AddDeployToken(w.project, "registry", []string{"read_registry"}, nil)
	refused["token without read_repository"] = [2]string{scopeless.Username, scopeless.Token}
	past := time.Now().Add(-time.Hour)
	expired := w.fake.AddDeployToken(w.project, "old", []string{"read_repository"}, &past)
	refused["expired token"] = [2]string{expired.Username, expired.Token}
	revoked := w.fake.AddDeployToken(w.project, "gone", []string{"read_repository"}, nil)
	w.fake.RevokeDeployToken(revoked.ID)
	refused["revoked token"] = [2]string{revoked.Username, revoked.Token}
	other := w.fake.AddProject("other/proj")
	foreign := w.fake.AddDeployToken(other, "foreign", []string{"read_repository"}, nil)
	refused["another project's token"] = [2]string{foreign.Username, foreign.Token}
	for name, cred := range refused {
		t.Run(name, func(t *testing.T) {
			before := len(w.statuses(fakegitlab.GitHTTPRoute))
			out, err := git(t, dir, "clone", "--quiet", w.cloneURL(t, cred[0], cred[1]), "refused")
			if err == nil {
				t.Fatalf("clone went through: %s", out)
			}
			st := w.statuses(fakegitlab.GitHTTPRoute)[before:]
			if len(st) == 0 || st[0] != http.StatusUnauthorized {
				t.Errorf("answered %v, want 401: %s", st, out)
			}
		})
	}

	// Without credentials: 401 with GitLab's challenge.
	resp, err := http.Get(w.fake.URL + "/infra/fleet.git/info/refs?service=git-upload-pack")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Basic realm="GitLab"` {
		t.Errorf("anonymous: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

func TestCommitIsAllOrNothing(t *testing.T) {
	w := newWorld(t)
	st, j := w.call(t, "POST", "/repository/commits", w.mToken, map[string]any{
		"branch": "main", "commit_message": "first",
		"actions": []map[string]any{{"action": "create", "file_path": "a.yaml", "content": "a: 1\n"}},
	})
	if st != 201 || j.(map[string]any)["title"] != "first" {
		t.Fatalf("first commit: %d %v", st, j)
	}
	first := j.(map[string]any)["id"].(string)
	st, j = w.call(t, "POST", "/repository/commits", w.mToken, map[string]any{
		"branch": "main", "commit_message": "second",
		"actions": []map[string]any{
			{"action": "create", "file_path": "b.yaml", "content": "c2VjcmV0LWluLWI=", "encoding": "base64"},
			{"action": "update", "file_path": "a.yaml", "content": "a: 2\n"},
			{"action": "update", "file_path": "missing.yaml", "content": "x"},
		},
	})
	if st != 400 || j.(map[string]any)["message"] != "A file with this name doesn't exist" {
		t.Fatalf("bad action: %d %v", st, j)
	}
	log, err := w.fake.GitLog(w.project.ID, "main")
	if err != nil || len(log) != 1 || log[0].ID != first || string(log[0].Files["a.yaml"]) != "a: 1\n" || len(log[0].Files) != 1 {
		t.Fatalf("main after the refused commit: %+v %v", log, err)
	}
	if w.fake.AllHistoryContains(w.project.ID, "secret-in-b") || w.fake.AllHistoryContains(w.project.ID, "a: 2") {
		t.Error("the refused commit left objects behind")
	}
	if !w.fake.AllHistoryContains(w.project.ID, "a: 1") {
		t.Error("AllHistoryContains misses what is there")
	}
	if n := len(w.fake.Commits()); n != 1 {
		t.Errorf("%d commits recorded", n)
	}
}

func TestCommitRefusesPathsOutsideTheTree(t *testing.T) {
	w := newWorld(t)
	for path, want := range map[string]string{
		"../x":              "Path cannot include directory traversal",
		"a/../../etc/x":     "Path cannot include directory traversal",
		"..":                "Path cannot include directory traversal",
		"/etc/passwd":       "invalid path: '/etc/passwd'",
		".git/config":       "invalid path: '.git/config'",
		"sub/.git/hooks/x":  "invalid path: 'sub/.git/hooks/x'",
		".GIT/config":       "invalid path: '.GIT/config'",
		"a//b":              "invalid path: 'a//b'",
		"a/./b":             "invalid path: 'a/./b'",
		"line\nbreak":       "invalid path: 'line\nbreak'",
		"":                  "You must provide a file path",
		`..\windows\system`: "Path cannot include directory traversal",
	} {
		st, j := w.call(t, "POST", "/repository/commits", w.mToken, map[string]any{
			"branch": "main", "commit_message": "attack",
			"actions": []map[string]any{{"action": "create", "file_path": path, "content": "pwned"}},
		})
		if st != 400 || j.(map[string]any)["message"] != want {
			t.Errorf("%q: %d %v, want 400 %q", path, st, j, want)
		}
	}
	// A move from outside is refused too.
	w.fake.SetFile(w.project, "main", "ok.yaml", []byte("ok"))
	st, _ := w.call(t, "POST", "/repository/commits", w.mToken, map[string]any{
		"branch": "main", "commit_message": "attack",
		"actions": []map[string]any{{"action": "move", "file_path": "x", "previous_path": "../../x"}},
	})
	if st != 400 || w.fake.AllHistoryContains(w.project.ID, "pwned") || len(w.fake.Commits()) != 0 {
		t.Errorf("a refused path was written (move: %d)", st)
	}
	// The files API refuses them as well.
	st, _ = w.call(t, "POST", "/repository/files/"+url.PathEscape("../x"), w.mToken, map[string]any{"branch": "main", "content": "pwned", "commit_message": "x"})
	if st != 400 {
		t.Errorf("files API with ../x: %d", st)
	}
}

func TestCommitBranches(t *testing.T) {
	w := newWorld(t)
	commit := func(token string, body map[string]any) (int, map[string]any) {
		t.Helper()
		st, j := w.call(t, "POST", "/repository/commits", token, body)
		m, _ := j.(map[string]any)
		return st, m
	}
	create := func(path, content string) map[string]any {
		return map[string]any{"action": "create", "file_path": path, "content": content}
	}
	// An empty repository takes a first commit on any branch.
	st, c1 := commit(w.mToken, map[string]any{"branch": "main", "commit_message": "Add a\n\nbody", "actions": []any{create("a", "1")}})
	if st != 201 || c1["title"] != "Add a" || c1["message"] != "Add a\n\nbody" || len(c1["parent_ids"].([]any)) != 0 ||
		c1["author_name"] != "Maria" || c1["short_id"] != c1["id"].(string)[:8] || !strings.HasSuffix(c1["web_url"].(string), "/infra/fleet/-/commit/"+c1["id"].(string)) {
		t.Fatalf("first commit: %d %v", st, c1)
	}
	// A developer may not push to the protected default branch.
	if st, m := commit(w.dToken, map[string]any{"branch": "main", "commit_message": "x", "actions": []any{create("b", "2")}}); st != 403 || m["message"] != "You are not allowed to push into this branch" {
		t.Errorf("developer on main: %d %v", st, m)
	}
	// A missing branch needs a start branch.
	if st, m := commit(w.dToken, map[string]any{"branch": "feature", "commit_message": "x", "actions": []any{create("b", "2")}}); st != 400 || m["message"] != "You can only create or edit files when you are on a branch" {
		t.Errorf("no start branch: %d %v", st, m)
	}
	st, c2 := commit(w.dToken, map[string]any{"branch": "feature", "start_branch": "main", "commit_message": "Add b", "actions": []any{create("b", "2")},
		"author_name": "Bot", "author_email": "bot@example.com"})
	if st != 201 || c2["parent_ids"].([]any)[0] != c1["id"] || c2["author_name"] != "Bot" || c2["committer_name"] != "Dev" {
		t.Fatalf("new branch: %d %v", st, c2)
	}
	if st, m := commit(w.dToken, map[string]any{"branch": "feature", "start_branch": "main", "commit_message": "x", "actions": []any{create("c", "3")}}); st != 400 || !strings.Contains(m["message"].(string), "A branch called 'feature' already exists") {
		t.Errorf("start branch onto an existing branch: %d %v", st, m)
	}
	// A stale last_commit_id is refused; the right one goes through.
	upd := func(last string) map[string]any {
		return map[string]any{"branch": "feature", "commit_message": "Update a", "actions": []any{map[string]any{"action": "update", "file_path": "a", "content": "new", "last_commit_id": last}}}
	}
	if st, m := commit(w.dToken, upd(c2["id"].(string))); st != 400 || m["message"] != "The file has changed since you started editing it: a" {
		t.Errorf("stale last_commit_id: %d %v", st, m)
	}
	if st, m := commit(w.dToken, upd(c1["id"].(string))); st != 201 {
		t.Errorf("fresh last_commit_id: %d %v", st, m)
	}
	// move, chmod and delete; a move keeps the content when none is given.
	st, m := commit(w.dToken, map[string]any{"branch": "feature", "commit_message": "shuffle", "actions": []any{
		map[string]any{"action": "move", "previous_path": "b", "file_path": "dir/b"},
		map[string]any{"action": "chmod", "file_path": "dir/b", "execute_filemode": true},
		map[string]any{"action": "delete", "file_path": "a"},
	}})
	if st != 201 {
		t.Fatalf("shuffle: %d %v", st, m)
	}
	log, _ := w.fake.GitLog(w.project.ID, "feature")
	if len(log) != 4 || string(log[0].Files["dir/b"]) != "2" || len(log[0].Files) != 1 {
		t.Fatalf("feature: %+v", log)
	}
	if _, j := w.call(t, "GET", "/repository/tree?ref=feature&recursive=true", w.rToken, nil); len(j.([]any)) != 2 ||
		j.([]any)[1].(map[string]any)["mode"] != "100755" || j.([]any)[0].(map[string]any)["type"] != "tree" {
		t.Errorf("tree: %v", j)
	}
	if st, j := w.call(t, "GET", "/repository/tree?ref=feature&path=nope", w.rToken, nil); st != 404 || j.(map[string]any)["message"] != "404 Tree Not Found" {
		t.Errorf("missing tree path: %d %v", st, j)
	}
	// Commits list: per page, with a next page while pages are full.
	req, _ := http.NewRequest("GET", w.fake.URL+"/api/v4/projects/"+url.PathEscape("infra/fleet")+"/repository/commits?ref_name=feature&per_page=2", nil)
	req.Header.Set("PRIVATE-TOKEN", w.rToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var page []map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&page)
	resp.Body.Close()
	if len(page) != 2 || page[0]["title"] != "shuffle" || resp.Header.Get("X-Next-Page") != "2" || resp.Header.Get("X-Total") != "" {
		t.Errorf("commits page: %v, headers %v", page, resp.Header)
	}
	if _, j := w.call(t, "GET", "/repository/commits?ref_name=feature&path=a", w.rToken, nil); len(j.([]any)) != 3 {
		t.Errorf("commits of a: %v", j)
	}
	if st, j := w.call(t, "GET", "/repository/commits/"+strings.Repeat("a", 40), w.rToken, nil); st != 404 || j.(map[string]any)["message"] != "404 Commit Not Found" {
		t.Errorf("missing commit: %d %v", st, j)
	}
	// Branches.
	if st, j := w.call(t, "GET", "/repository/branches/nope", w.rToken, nil); st != 404 || j.(map[string]any)["message"] != "404 Branch Not Found" {
		t.Errorf("missing branch: %d %v", st, j)
	}
	if st, j := w.call(t, "POST", "/repository/branches", w.dToken, map[string]any{"branch": "topic/x", "ref": "main"}); st != 201 || j.(map[string]any)["commit"].(map[string]any)["id"] != c1["id"] {
		t.Errorf("create branch: %d %v", st, j)
	}
	if st, j := w.call(t, "POST", "/repository/branches", w.dToken, map[string]any{"branch": "topic/x", "ref": "main"}); st != 400 || j.(map[string]any)["message"] != "Branch already exists" {
		t.Errorf("branch again: %d %v", st, j)
	}
	if st, j := w.call(t, "GET", "/repository/branches/"+url.PathEscape("topic/x"), w.rToken, nil); st != 200 || j.(map[string]any)["protected"] != false {
		t.Errorf("get branch with a slash: %d %v", st, j)
	}
}

func TestArchive(t *testing.T) {
	w := newWorld(t)
	w.fake.SetFile(w.project, "main", "clusters/prod/a.yaml", []byte("kind: A\n"))
	w.fake.SetFile(w.project, "main", "apps/b.yaml", []byte("kind: B\n"))
	dir := t.TempDir()
	for _, suffix := range []string{"", ".tar.gz", ".tar"} {
		req, _ := http.NewRequest("GET", w.fake.URL+"/api/v4/projects/"+url.PathEscape("infra/fleet")+"/repository/archive"+suffix+"?sha=main&path=clusters", nil)
		req.Header.Set("PRIVATE-TOKEN", w.rToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("archive%s: %d %s", suffix, resp.StatusCode, b)
		}
		f := filepath.Join(dir, "a"+suffix)
		_ = os.WriteFile(f, b, 0o600)
		out, err := exec.Command("tar", "-tf", f).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "/clusters/prod/a.yaml") || strings.Contains(string(out), "apps/b.yaml") {
			t.Errorf("archive%s holds %s (%v)", suffix, out, err)
		}
	}
	if n := w.fake.Calls(fakegitlab.ArchiveRoute); n != 3 {
		t.Errorf("%d archive calls counted", n)
	}
}

func TestMergeRequestConflictShape(t *testing.T) {
	w := newWorld(t)
	w.fake.SetFile(w.project, "main", "a", []byte("1"))
	w.fake.SetFile(w.project, "feature", "a", []byte("2"))
	body := map[string]any{"source_branch": "feature", "target_branch": "main", "title": "Bootstrap", "description": "d"}
	st, j := w.call(t, "POST", "/merge_requests", w.dToken, body)
	if st != 201 || j.(map[string]any)["iid"] != 1.0 || j.(map[string]any)["state"] != "opened" || j.(map[string]any)["sha"] == "" {
		t.Fatalf("create: %d %v", st, j)
	}
	st, j = w.call(t, "POST", "/merge_requests", w.dToken, body)
	msg, _ := j.(map[string]any)["message"].([]any)
	if st != 409 || len(msg) != 1 || msg[0] != "Another open merge request already exists for this source branch: !1" {
		t.Errorf("second create: %d %v", st, j)
	}
	st, j = w.call(t, "POST", "/merge_requests", w.dToken, map[string]any{"source_branch": "nope", "target_branch": "main", "title": "x"})
	if st != 422 {
		t.Errorf("missing source branch: %d %v", st, j)
	}
	if _, j := w.call(t, "GET", "/merge_requests?state=opened&source_branch=feature&target_branch=main", w.rToken, nil); len(j.([]any)) != 1 {
		t.Errorf("list: %v", j)
	}
	if st, j := w.call(t, "PUT", "/merge_requests/1", w.dToken, map[string]any{"title": "New"}); st != 200 || j.(map[string]any)["title"] != "New" || j.(map[string]any)["description"] != "d" {
		t.Errorf("update: %d %v", st, j)
	}
}

func TestEnvironmentFields(t *testing.T) {
	w := newWorld(t)
	agent := w.fake.AddAgent(w.project, "prod", w.maintainer)
	other := w.fake.AddAgent(w.fake.AddProject("x/y"), "elsewhere", w.maintainer)
	st, j := w.call(t, "POST", "/environments", w.dToken, map[string]any{"name": "flux-system/gitlab-agent", "cluster_agent_id": other.ID})
	if st != 400 || j.(map[string]any)["message"] != "400 Bad request - cluster agent doesn't exist or cannot be associated with this environment" {
		t.Errorf("foreign agent: %d %v", st, j)
	}
	st, j = w.call(t, "POST", "/environments", w.dToken, map[string]any{"name": "flux-system/gitlab-agent", "kubernetes_namespace": "flux-system"})
	if st != 400 {
		t.Errorf("namespace without agent: %d %v", st, j)
	}
	st, j = w.call(t, "POST", "/environments", w.dToken, map[string]any{"name": "flux-system/gitlab-agent", "cluster_agent_id": agent.ID,
		"kubernetes_namespace": "flux-system", "flux_resource_path": "helm.toolkit.fluxcd.io/v2/namespaces/flux-system/helmreleases/gitlab-agent"})
	if st != 201 || j.(map[string]any)["cluster_agent"].(map[string]any)["id"] != float64(agent.ID) {
		t.Fatalf("create: %d %v", st, j)
	}
	id := int64(j.(map[string]any)["id"].(float64))
	_, j = w.call(t, "GET", "/environments?name=flux-system/gitlab-agent", w.dToken, nil)
	if l := j.([]any); len(l) != 1 || l[0].(map[string]any)["kubernetes_namespace"] != "flux-system" {
		t.Errorf("list: %v", j)
	} else if _, has := l[0].(map[string]any)["cluster_agent"]; has {
		t.Error("the list shows cluster_agent")
	}
	path := "/environments/" + strconv.FormatInt(id, 10)
	// JSON null clears, in order: a namespace may not outlive its agent.
	st, j = w.call(t, "PUT", path, w.dToken, map[string]any{"cluster_agent_id": nil})
	if st != 400 {
		t.Errorf("clearing the agent under a namespace: %d %v", st, j)
	}
	st, j = w.call(t, "PUT", path, w.dToken, map[string]any{"cluster_agent_id": nil, "kubernetes_namespace": nil, "flux_resource_path": nil})
	if st != 200 || j.(map[string]any)["cluster_agent"] != nil || j.(map[string]any)["kubernetes_namespace"] != nil {
		t.Errorf("clearing all: %d %v", st, j)
	}
	if st, _ := w.call(t, "DELETE", path, w.dToken, nil); st != 403 {
		t.Errorf("deleting an available environment: %d", st)
	}
	if st, _ := w.call(t, "POST", path+"/stop", w.dToken, nil); st != 200 {
		t.Errorf("stop: %d", st)
	}
	if st, _ := w.call(t, "DELETE", path, w.dToken, nil); st != 204 || len(w.fake.Environments(w.project.ID)) != 0 {
		t.Errorf("delete a stopped one: %d", st)
	}
}

func TestFaultsReachTheNewRoutes(t *testing.T) {
	w := newWorld(t)
	w.fake.Inject(fakegitlab.Fault{Route: fakegitlab.CommitsRoute, Status: 409, Message: "moved"})
	st, j := w.call(t, "POST", "/repository/commits", w.mToken, map[string]any{"branch": "main", "commit_message": "x",
		"actions": []any{map[string]any{"action": "create", "file_path": "a", "content": "1"}}})
	if st != 409 || j.(map[string]any)["message"] != "moved" {
		t.Errorf("fault: %d %v", st, j)
	}
	w.fake.ClearFaults()
	w.fake.Inject(fakegitlab.Fault{Route: fakegitlab.CommitsRoute, Status: 502, AfterWork: true})
	st, _ = w.call(t, "POST", "/repository/commits", w.mToken, map[string]any{"branch": "main", "commit_message": "x",
		"actions": []any{map[string]any{"action": "create", "file_path": "a", "content": "1"}}})
	if b, ok := w.fake.File(w.project, "main", "a"); st != 502 || !ok || string(b) != "1" {
		t.Errorf("after work: %d, file %q %v", st, b, ok)
	}
	w.fake.Inject(fakegitlab.Fault{Route: "POST /api/v4/projects/{id}/deploy_tokens", Status: 403})
	if st, _ := w.call(t, "POST", "/deploy_tokens", w.mToken, map[string]any{"name": "x", "scopes": []string{"read_repository"}}); st != 403 {
		t.Errorf("deploy token fault: %d", st)
	}
}

func TestCommitAsForm(t *testing.T) {
	w := newWorld(t)
	form := "branch=main&commit_message=form&actions%5B%5D%5Baction%5D=create&actions%5B%5D%5Bfile_path%5D=a&actions%5B%5D%5Bcontent%5D=1" +
		"&actions%5B%5D%5Baction%5D=create&actions%5B%5D%5Bfile_path%5D=b&actions%5B%5D%5Bcontent%5D=Mg%3D%3D&actions%5B%5D%5Bencoding%5D=base64"
	req, _ := http.NewRequest("POST", w.fake.URL+"/api/v4/projects/"+url.PathEscape("infra/fleet")+"/repository/commits", strings.NewReader(form))
	req.Header.Set("PRIVATE-TOKEN", w.mToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	a, _ := w.fake.File(w.project, "main", "a")
	b, _ := w.fake.File(w.project, "main", "b")
	if resp.StatusCode != 201 || string(a) != "1" || string(b) != "2" {
		t.Errorf("form commit: %d, a=%q b=%q", resp.StatusCode, a, b)
	}
}

func TestCommitForceAndStartSHA(t *testing.T) {
	w := newWorld(t)
	w.fake.SetFile(w.project, "main", "a", []byte("1"))
	w.fake.SetFile(w.project, "topic", "b", []byte("2"))
	mainLog, _ := w.fake.GitLog(w.project.ID, "main")
	create := []any{map[string]any{"action": "create", "file_path": "c", "content": "3"}}
	// force replaces topic with a commit on main.
	st, j := w.call(t, "POST", "/repository/commits", w.dToken, map[string]any{"branch": "topic", "start_branch": "main", "force": true, "commit_message": "redo", "actions": create})
	if st != 201 || j.(map[string]any)["parent_ids"].([]any)[0] != mainLog[0].ID {
		t.Fatalf("force: %d %v", st, j)
	}
	if _, ok := w.fake.File(w.project, "topic", "b"); ok {
		t.Error("force kept topic's history")
	}
	st, j = w.call(t, "POST", "/repository/commits", w.dToken, map[string]any{"branch": "from-sha", "start_sha": mainLog[0].ID, "commit_message": "x", "actions": create})
	if st != 201 {
		t.Errorf("start_sha: %d %v", st, j)
	}
	st, j = w.call(t, "POST", "/repository/commits", w.dToken, map[string]any{"branch": "bad-sha", "start_sha": strings.Repeat("b", 40), "commit_message": "x", "actions": create})
	if st != 400 || !strings.HasPrefix(j.(map[string]any)["message"].(string), "Cannot find start_sha") {
		t.Errorf("unknown start_sha: %d %v", st, j)
	}
}
