package apps

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/diff"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/flux"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube/fake"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

func u(o map[string]any) *unstructured.Unstructured { return &unstructured.Unstructured{Object: o} }

func cluster() *fake.Cluster {
	c := fake.New()
	c.AddKind(flux.SourceAPIVersion, "GitRepository", "gitrepositories", true, true)
	c.AddKind(flux.KustomizeAPIVersion, "Kustomization", "kustomizations", true, true)
	c.AddKind("v1", "Event", "events", true, false)
	return c
}

func gitRepo(ns, name, url, branch, rev string) *unstructured.Unstructured {
	return u(map[string]any{"apiVersion": flux.SourceAPIVersion, "kind": "GitRepository",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec":     map[string]any{"url": url, "ref": map[string]any{"branch": branch}},
		"status": map[string]any{"artifact": map[string]any{"revision": rev},
			"conditions": []any{map[string]any{"type": "Ready", "status": "True"}}}})
}

func kustomization(ns, name, src, path, applied, ready string, extra map[string]any) *unstructured.Unstructured {
	o := u(map[string]any{"apiVersion": flux.KustomizeAPIVersion, "kind": "Kustomization",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec":     map[string]any{"path": path, "prune": true, "sourceRef": map[string]any{"kind": "GitRepository", "name": src}},
		"status": map[string]any{"lastAppliedRevision": applied,
			"conditions": []any{map[string]any{"type": "Ready", "status": ready, "message": "msg of " + name, "lastTransitionTime": "2026-12-01T00:00:00Z"}}}})
	for k, v := range extra {
		unstructured.SetNestedField(o.Object, v, "spec", k)
	}
	return o
}

func TestListSyncAndHealth(t *testing.T) {
	c := cluster()
	c.Put(
		gitRepo("apps", "fleet", "https://gitlab.example.com/infra/fleet.git", "main", "main@sha1:bbbb"),
		kustomization("apps", "synced", "fleet", "./apps/web", "main@sha1:bbbb", "True", nil),
		kustomization("apps", "behind", "fleet", "./apps/api", "main@sha1:aaaa", "True", nil),
		kustomization("apps", "failing", "fleet", "./apps/db", "main@sha1:aaaa", "False", nil),
		kustomization("apps", "paused", "fleet", "./apps/x", "main@sha1:bbbb", "True", map[string]any{"suspend": true}),
		kustomization("apps", "orphan", "gone", "./", "", "False", nil),
		kustomization("other", "elsewhere", "fleet", "./", "", "Unknown", nil),
	)
	list, err := List(context.Background(), Env{Flux: c, GitLabURL: "https://gitlab.example.com"}, "apps")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, a := range list {
		got[a.Name] = a.Sync + " " + a.Health + " " + a.Project
	}
	want := map[string]string{
		"synced":  "Synced Healthy infra/fleet",
		"behind":  "OutOfSync Healthy infra/fleet",
		"failing": "OutOfSync Degraded infra/fleet",
		"paused":  "Synced Suspended infra/fleet",
		"orphan":  "Unknown Degraded ",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	if len(list) != len(want) {
		t.Errorf("%d apps in apps, want %d (not other's)", len(list), len(want))
	}
	if _, err := Get(context.Background(), Env{Flux: c}, "apps", "nope"); err == nil || !strings.Contains(err.Error(), "apps list -A") {
		t.Errorf("a missing app: %v", err)
	}
}

func TestProjectOf(t *testing.T) {
	for _, c := range []struct{ git, gitlab, want string }{
		{"https://gitlab.example.com/infra/fleet.git", "https://gitlab.example.com", "infra/fleet"},
		{"ssh://git@gitlab.example.com/infra/fleet", "https://gitlab.example.com", "infra/fleet"},
		{"https://example.com/gitlab/infra/fleet.git", "https://example.com/gitlab", "infra/fleet"},
		{"https://example.com/other/infra/fleet.git", "https://example.com/gitlab", ""},
		{"https://github.com/infra/fleet.git", "https://gitlab.example.com", ""},
		{"https://gitlab.example.com/fleet.git", "https://gitlab.example.com", ""},
		{"https://gitlab.example.com/a/../b/c.git", "https://gitlab.example.com", ""},
		{"https://gitlab.example.com/infra/fleet.git", "", ""},
		{"https://gitlab.example.com:8443/infra/fleet.git", "https://gitlab.example.com", ""},
		{"https://gitlab.example.com:443/infra/fleet.git", "https://gitlab.example.com", "infra/fleet"},
		{"ssh://git@gitlab.example.com:2222/infra/fleet.git", "https://gitlab.example.com", "infra/fleet"},
	} {
		if got := ProjectOf(c.git, c.gitlab); got != c.want {
			t.Errorf("ProjectOf(%q, %q) = %q, want %q", c.git, c.gitlab, got, c.want)
		}
	}
}

// controller stands in for kustomize-controller and source-controller:
// every request is handled at once, Ready, the source at rev.
func controller(t *testing.T, c *fake.Cluster, rev func() string, fail string) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			for _, gvr := range []struct {
				kind string
			}{{"GitRepository"}, {"Kustomization"}} {
				g := flux.GitRepositories
				if gvr.kind == "Kustomization" {
					g = flux.Kustomizations
				}
				objs, _ := c.ListObjects(ctx, g, "")
				for _, o := range objs {
					want := o.GetAnnotations()[flux.RequestedAtAnnotation]
					if want == "" || flux.ReadStatus(o).Handled == want {
						continue
					}
					ready := map[string]any{"type": "Ready", "status": "True"}
					st := map[string]any{"lastHandledReconcileAt": want, "observedGeneration": o.GetGeneration()}
					if gvr.kind == "GitRepository" {
						st["artifact"] = map[string]any{"revision": rev()}
					} else {
						st["lastAppliedRevision"] = rev()
						if fail != "" {
							ready = map[string]any{"type": "Ready", "status": "False", "reason": "BuildFailed", "message": fail}
						}
					}
					st["conditions"] = []any{ready}
					o.Object["status"] = st
					c.Put(o)
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
}

func TestReconcileSuspendResume(t *testing.T) {
	ctx := context.Background()
	c := cluster()
	c.Put(gitRepo("apps", "fleet", "https://gitlab.example.com/infra/fleet.git", "main", "main@sha1:aaaa"),
		kustomization("apps", "web", "fleet", "./apps/web", "main@sha1:aaaa", "True", nil))
	controller(t, c, func() string { return "main@sha1:cccc" }, "")
	e := Env{Flux: c, Poll: time.Millisecond}
	var heard []string
	a, err := Reconcile(ctx, e, "apps", "web", true, func(s string) { heard = append(heard, s) })
	if err != nil || a.Revision != "main@sha1:cccc" || a.Sync != Synced {
		t.Fatalf("reconcile --with-source: %v %+v", err, a)
	}
	if a, err = SetSuspended(ctx, e, "apps", "web", true); err != nil || !a.Suspended || a.Health != Suspended {
		t.Fatalf("suspend: %v %+v", err, a)
	}
	var se *flux.SuspendedError
	if _, err = Reconcile(ctx, e, "apps", "web", false, nil); !errors.As(err, &se) {
		t.Fatalf("reconcile of a suspended app: %v", err)
	}
	if a, err = SetSuspended(ctx, e, "apps", "web", false); err != nil || a.Suspended {
		t.Fatalf("resume: %v %+v", err, a)
	}
}

func TestReconcileFailureSaysFluxsMessage(t *testing.T) {
	c := cluster()
	c.Put(gitRepo("apps", "fleet", "https://gitlab.example.com/infra/fleet.git", "main", "main@sha1:aaaa"),
		kustomization("apps", "web", "fleet", "./apps/web", "main@sha1:aaaa", "True", nil))
	controller(t, c, func() string { return "main@sha1:aaaa" }, "kustomization path not found")
	_, err := Reconcile(context.Background(), Env{Flux: c, Poll: time.Millisecond}, "apps", "web", false, nil)
	var fe *flux.FailedError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "kustomization path not found") {
		t.Fatalf("a failing reconcile: %v", err)
	}
}

// gitlabWorld is a fake GitLab with a project holding an app's path.
func gitlabWorld(t *testing.T) (*fakegitlab.Server, *fakegitlab.Project, *gitlab.Client) {
	gl := fakegitlab.New()
	t.Cleanup(gl.Close)
	p := gl.AddProject("infra/fleet")
	_, token := gl.AddMember(p, "maria", fakegitlab.Maintainer)
	cl, err := gitlab.New(gitlab.Options{URL: gl.URL, Credentials: gitlab.Credentials{Token: token}, RetryBase: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return gl, p, cl
}

func tip(t *testing.T, gl *fakegitlab.Server, p *fakegitlab.Project) string {
	log, err := gl.GitLog(p.ID, "main")
	if err != nil || len(log) == 0 {
		t.Fatal(err)
	}
	return log[0].ID
}

func TestHistoryAndRollback(t *testing.T) {
	ctx := context.Background()
	gl, p, cl := gitlabWorld(t)
	gl.SetFile(p, "main", "apps/web/cm.yaml", []byte("v: 1\n"))
	gl.SetFile(p, "main", "apps/web/old.yaml", []byte("old\n"))
	gl.SetFile(p, "main", "other/keep.yaml", []byte("keep\n"))
	first := tip(t, gl, p)
	gl.SetFile(p, "main", "apps/web/cm.yaml", []byte("v: 2\n"))
	gl.SetFile(p, "main", "apps/web/new.yaml", []byte("new\n"))
	if _, err := cl.CreateCommit(ctx, gitlab.ProjectRef{Path: "infra/fleet"}, gitlab.CommitOptions{Branch: "main", Message: "Remove old",
		Actions: []gitlab.CommitAction{{Action: "delete", Path: "apps/web/old.yaml"}, {Action: "update", Path: "other/keep.yaml", Content: []byte("changed elsewhere\n")}}}); err != nil {
		t.Fatal(err)
	}
	second := tip(t, gl, p)

	c := cluster()
	ks := kustomization("apps", "web", "fleet", "./apps/web", "main@sha1:"+second, "True", nil)
	unstructured.SetNestedSlice(ks.Object, []any{
		map[string]any{"digest": "sha256:2", "lastReconciled": "2026-12-02T00:00:00Z", "lastReconciledStatus": "ReconciliationSucceeded", "totalReconciliations": int64(3), "metadata": map[string]any{"revision": "main@sha1:" + second}},
		map[string]any{"digest": "sha256:1", "lastReconciled": "2026-12-01T00:00:00Z", "lastReconciledStatus": "ReconciliationSucceeded", "totalReconciliations": int64(1), "metadata": map[string]any{"revision": "main@sha1:" + first}},
	}, "status", "history")
	c.Put(gitRepo("apps", "fleet", gl.URL+"/infra/fleet.git", "main", "main@sha1:"+second), ks)
	e := Env{Flux: c, GitLabURL: gl.URL, Poll: time.Millisecond}
	a, err := Get(ctx, e, "apps", "web")
	if err != nil {
		t.Fatal(err)
	}
	revs, err := History(ctx, cl, a)
	if err != nil {
		t.Fatal(err)
	}
	if len(revs) != 2 || !revs[0].Current || revs[0].SHA != second || revs[0].Title != "Remove old" || revs[1].SHA != first || revs[1].Author == "" {
		t.Fatalf("history: %+v", revs)
	}

	controller(t, c, func() string { return "main@sha1:" + tip(t, gl, p) }, "")
	res, err := Rollback(ctx, e, cl, "apps", "web", RollbackOptions{To: first})
	if err != nil {
		t.Fatal(err)
	}
	if cm, _ := gl.File(p, "main", "apps/web/cm.yaml"); string(cm) != "v: 1\n" {
		t.Errorf("cm.yaml = %q", cm)
	}
	if _, ok := gl.File(p, "main", "apps/web/old.yaml"); !ok {
		t.Error("old.yaml was not restored")
	}
	if _, ok := gl.File(p, "main", "apps/web/new.yaml"); ok {
		t.Error("new.yaml was not removed")
	}
	if keep, _ := gl.File(p, "main", "other/keep.yaml"); string(keep) != "changed elsewhere\n" {
		t.Errorf("a file outside the app's path changed: %q", keep)
	}
	if res.Commit == nil || len(res.Files) != 3 || flux.RevisionSHA(res.Revision) != res.Commit.ID {
		t.Fatalf("rollback: %+v", res)
	}
	// Again: nothing to commit.
	again, err := Rollback(ctx, e, cl, "apps", "web", RollbackOptions{To: first})
	if err != nil || again.Commit != nil {
		t.Fatalf("a second rollback: %v %+v", err, again)
	}
	// A merge request instead.
	mr, err := Rollback(ctx, e, cl, "apps", "web", RollbackOptions{To: second, MergeRequest: true})
	if err != nil || mr.MergeRequest == nil || mr.MergeRequest.TargetBranch != "main" {
		t.Fatalf("rollback --merge-request: %v %+v", err, mr)
	}
	if cm, _ := gl.File(p, "main", "apps/web/cm.yaml"); string(cm) != "v: 1\n" {
		t.Error("--merge-request changed main")
	}
	for _, bad := range []string{"main", "zzzzzzz", "12"} {
		if _, err := Rollback(ctx, e, cl, "apps", "web", RollbackOptions{To: bad}); err == nil || !strings.Contains(err.Error(), "not a commit SHA") {
			t.Errorf("--to %q: %v", bad, err)
		}
	}
}

func TestCompareBuildsFromGitLab(t *testing.T) {
	ctx := context.Background()
	gl, p, cl := gitlabWorld(t)
	gl.SetFile(p, "main", "apps/web/cm.yaml", []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {v: one}\n"))
	gl.SetFile(p, "main", "apps/web/skip.yaml", []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: skip, annotations: {kustomize.toolkit.fluxcd.io/ssa: Ignore}}\ndata: {v: one}\n"))
	sha := tip(t, gl, p)
	c := cluster()
	c.Put(&unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "apps"}}})
	c.Put(gitRepo("apps", "fleet", gl.URL+"/infra/fleet.git", "main", "main@sha1:"+sha),
		kustomization("apps", "web", "fleet", "./apps/web", "main@sha1:"+sha, "True", nil),
		kustomization("apps", "elsewhere", "github", "./", "", "True", nil),
		gitRepo("apps", "github", "https://github.com/x/y.git", "main", "main@sha1:abc"))
	e := Env{Flux: c, GitLabURL: gl.URL}
	list, err := List(ctx, e, "apps")
	if err != nil {
		t.Fatal(err)
	}
	cmp := &Comparer{Env: e, GitLab: cl, Cluster: c}
	defer cmp.Close()
	if err := cmp.CompareAll(ctx, list, 2); err != nil {
		t.Fatal(err)
	}
	byName := map[string]*App{}
	for _, a := range list {
		byName[a.Name] = a
	}
	web := byName["web"]
	if web.Drifted == nil || *web.Drifted != 1 || web.Sync != OutOfSync {
		t.Fatalf("web: the ConfigMap is not in the cluster yet: %+v", web)
	}
	if ew := byName["elsewhere"]; ew.Drifted != nil || ew.Sync != Unknown || !strings.Contains(ew.Message, "not a project of the GitLab") {
		t.Fatalf("a GitHub source: %+v", ew)
	}
	res, err := cmp.Compare(ctx, web, "")
	if err != nil {
		t.Fatal(err)
	}
	var skipped int
	for _, o := range res.Result.Objects {
		if o.Action == "skipped" {
			skipped++
		}
	}
	if skipped != 1 || len(res.DriftedNames()) != 1 {
		t.Fatalf("objects: %+v", res.Result.Objects)
	}
	noGitLab := &Comparer{Env: e, Cluster: c}
	var nc *NotComparableError
	if _, err := noGitLab.Compare(ctx, web, ""); !errors.As(err, &nc) || !strings.Contains(err.Error(), "GITLAB_TOKEN") {
		t.Fatalf("without a credential: %v", err)
	}
}

// TestMaskValuesHidesOldSecretValuesToo: a field whose new value came from
// a Secret has its old value (from that Secret before) masked as well.
func TestMaskValuesHidesOldSecretValuesToo(t *testing.T) {
	res := &diff.Result{Objects: []diff.Object{{
		Action:  diff.Changed,
		Before:  "data:\n  secret: old-s3cret\n  plain: x\n",
		After:   "data:\n  secret: new-s3cret\n  plain: x\n",
		Changes: []diff.Change{{Path: ".data.secret", Old: "old-s3cret", New: "new-s3cret"}},
	}}}
	maskValues(res, []string{"new-s3cret"})
	o := res.Objects[0]
	if strings.Contains(o.Before+o.After+fmt.Sprint(o.Changes), "s3cret") {
		t.Fatalf("a Secret's value shows: %+v", o)
	}
	if !strings.Contains(o.Before, "plain: x") {
		t.Fatalf("more than the values was masked: %q", o.Before)
	}
}
