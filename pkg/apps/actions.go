package apps

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/flux"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
)

// gvrOf is the resource of an app's kind.
func gvrOf(a *App) schema.GroupVersionResource {
	if a.Kind == KindHelmRelease {
		return HelmReleases
	}
	return flux.Kustomizations
}

// Reconcile asks Flux to reconcile the app now, as `flux reconcile` does
// (its source first with withSource), and waits until Flux handled the
// request and the app is Ready; progress hears Flux's conditions. A
// suspended app is refused; a reconciliation Flux reports as failed is a
// *flux.FailedError with Flux's message.
func Reconcile(ctx context.Context, e Env, ns, name string, withSource bool, progress func(string)) (*App, error) {
	a, err := Get(ctx, e, ns, name)
	if err != nil {
		return nil, err
	}
	if a.Suspended {
		return a, &flux.SuspendedError{Kind: a.Kind, Namespace: ns, Name: name}
	}
	wait := func(gvr schema.GroupVersionResource, ns, name string) error {
		at, err := flux.RequestReconcile(ctx, e.Flux, gvr, ns, name, kube.FieldManager)
		if err != nil {
			return err
		}
		_, err = flux.WaitReconciled(ctx, e.Flux, gvr, ns, name, at, e.poll(), func(s flux.Status) {
			if progress != nil {
				progress(fmt.Sprintf("waiting for Flux to reconcile %s/%s: %s", ns, name, s.Summary()))
			}
		})
		return err
	}
	if withSource {
		if a.source == nil {
			return a, fmt.Errorf("the source %s of %s does not exist", a.Source, a.Key())
		}
		gvr, _ := sourceGVR(a.source.GetKind())
		if err := wait(gvr, a.source.GetNamespace(), a.source.GetName()); err != nil {
			return a, err
		}
	}
	if err := wait(gvrOf(a), ns, name); err != nil {
		return a, err
	}
	return Get(ctx, e, ns, name)
}

// SetSuspended sets spec.suspend, as `flux suspend` and `flux resume` do.
func SetSuspended(ctx context.Context, e Env, ns, name string, suspend bool) (*App, error) {
	a, err := Get(ctx, e, ns, name)
	if err != nil {
		return nil, err
	}
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"suspend": suspend}})
	if err := e.Flux.MergePatch(ctx, gvrOf(a), ns, name, patch, kube.FieldManager); err != nil {
		return a, fmt.Errorf("setting spec.suspend of %s %s: %w", a.Kind, a.Key(), err)
	}
	return Get(ctx, e, ns, name)
}

// Revision is one revision Flux applied, newest first, with the commit
// GitLab knows for it.
type Revision struct {
	Revision string `json:"revision"`
	SHA      string `json:"sha"`
	// Status is how Flux's last reconcile of it ended
	// (ReconciliationSucceeded, HealthCheckFailed, ...).
	Status          string     `json:"status"`
	FirstReconciled *time.Time `json:"firstReconciled"`
	LastReconciled  *time.Time `json:"lastReconciled"`
	Reconciliations int64      `json:"reconciliations"`
	// Current: the revision applied now.
	Current bool `json:"current"`
	// The commit's author, title and time, from GitLab ("" when not
	// asked or not found).
	Author    string     `json:"author"`
	Title     string     `json:"title"`
	Committed *time.Time `json:"committed"`
	WebURL    string     `json:"webURL,omitempty"`
}

// History is the revisions Flux applied (status.history: 5 at most, newest
// first), joined with GitLab's commits of the app's path so that a
// reviewer sees who changed what. gl may be nil: then Flux's part only.
func History(ctx context.Context, gl *gitlab.Client, a *App) ([]Revision, error) {
	if a.Kind != KindKustomization {
		return nil, fmt.Errorf("history is kept for Kustomizations; %s is a %s", a.Key(), a.Kind)
	}
	entries, _, _ := unstructured.NestedSlice(a.obj.Object, "status", "history")
	var out []Revision
	for _, e := range entries {
		m, _ := e.(map[string]any)
		r := Revision{}
		if md, ok := m["metadata"].(map[string]any); ok {
			r.Revision, _ = md["revision"].(string)
		}
		r.SHA = flux.RevisionSHA(r.Revision)
		r.Status, _ = m["lastReconciledStatus"].(string)
		r.FirstReconciled = timeOf(m["firstReconciled"])
		r.LastReconciled = timeOf(m["lastReconciled"])
		switch n := m["totalReconciliations"].(type) {
		case int64:
			r.Reconciliations = n
		case float64:
			r.Reconciliations = int64(n)
		}
		r.Current = r.Revision != "" && r.Revision == a.Revision
		out = append(out, r)
	}
	if len(out) == 0 && a.Revision != "" {
		// kustomize-controller before v1.7 keeps no history.
		out = append(out, Revision{Revision: a.Revision, SHA: flux.RevisionSHA(a.Revision), Current: true})
	}
	if gl == nil || a.Project == "" {
		return out, nil
	}
	ref := gitlab.ProjectRef{Path: a.Project}
	commits, err := gl.ListCommits(ctx, ref, branchOf(a), appPath(a), 100)
	if err != nil {
		return out, fmt.Errorf("reading the commits of %s in %s: %w", appPath(a), a.Project, err)
	}
	bySHA := map[string]gitlab.Commit{}
	for _, c := range commits {
		bySHA[c.ID] = c
	}
	for i := range out {
		c, ok := bySHA[out[i].SHA]
		if !ok && out[i].SHA != "" {
			// A revision whose commit did not touch the path (the
			// branch moved for another reason): the commit itself.
			if cs, err := gl.ListCommits(ctx, ref, out[i].SHA, "", 1); err == nil && len(cs) == 1 && cs[0].ID == out[i].SHA {
				c, ok = cs[0], true
			}
		}
		if ok {
			t := c.CreatedAt
			out[i].Author, out[i].Title, out[i].Committed, out[i].WebURL = c.AuthorName, c.Title, &t, c.WebURL
		}
	}
	return out, nil
}

func timeOf(v any) *time.Time {
	s, _ := v.(string)
	if s == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return nil
	}
	return &t
}

// branchOf is the branch the app's GitRepository follows ("" none).
func branchOf(a *App) string {
	if a.source == nil || a.source.GetKind() != "GitRepository" {
		return ""
	}
	return flux.Branch(a.source)
}

// appPath is the Kustomization's spec.path as a repository path.
func appPath(a *App) string {
	p, _, _ := unstructured.NestedString(a.obj.Object, "spec", "path")
	return flux.CleanPath(p)
}

// RollbackResult is what a rollback did.
type RollbackResult struct {
	App    *App   `json:"app"`
	To     string `json:"to"`
	Branch string `json:"branch"`
	Path   string `json:"path"`
	// Files are the commit's files (action and path); none when the path
	// already holds the revision's content.
	Files        []FileAction         `json:"files"`
	Commit       *gitlab.Commit       `json:"commit,omitempty"`
	MergeRequest *gitlab.MergeRequest `json:"mergeRequest,omitempty"`
	// Revision is what Flux applied after the rollback ("" with a merge
	// request).
	Revision string `json:"revision,omitempty"`
}

// FileAction is one file of a rollback commit.
type FileAction struct {
	Action string `json:"action"`
	Path   string `json:"path"`
}

// RollbackOptions say where to roll back to and how.
type RollbackOptions struct {
	// To is the commit whose content of the app's path is restored.
	To string
	// MergeRequest opens a merge request instead of committing to the
	// branch the source follows.
	MergeRequest bool
	// Progress hears the waits.
	Progress func(string)
}

// Rollback restores the app's path to its content at o.To by a new commit
// on the branch its GitRepository follows (GitOps: Flux then applies it;
// nothing is applied behind Flux's back), then reconciles with the source
// and waits; or opens a merge request with that commit. Only files inside
// the app's path change.
func Rollback(ctx context.Context, e Env, gl *gitlab.Client, ns, name string, o RollbackOptions) (*RollbackResult, error) {
	a, err := Get(ctx, e, ns, name)
	if err != nil {
		return nil, err
	}
	if a.Kind != KindKustomization {
		return nil, fmt.Errorf("rollback is for Kustomizations; %s is a %s", a.Key(), a.Kind)
	}
	if gl == nil {
		return nil, fmt.Errorf("a rollback commits to the app's GitLab project: it needs GitLab credentials (GITLAB_TOKEN or --gitlab-token-file)")
	}
	if a.Project == "" {
		return nil, fmt.Errorf("the source %s of %s is not a project of this GitLab (%s): roll back where it lives", a.Source, a.Key(), firstNonEmpty(sourceURL(a), "no URL"))
	}
	branch := branchOf(a)
	if branch == "" {
		return nil, fmt.Errorf("the source %s of %s follows a tag, a semver range or a commit, not a branch: change its spec.ref instead", a.Source, a.Key())
	}
	if !IsSHA(o.To) {
		return nil, fmt.Errorf("--to %q is not a commit SHA (7 to 40 hexadecimal digits)", o.To)
	}
	ref := gitlab.ProjectRef{Path: a.Project}
	dir := appPath(a)
	if dir == "" {
		return nil, fmt.Errorf("the path of %s is the repository's root: a rollback would rewrite the whole of %s (its CI and agent configuration, every other app's path); roll back a Kustomization with a narrower path, or revert the commits in GitLab", a.Key(), a.Project)
	}
	if inside, err := appsInside(ctx, e, a, dir); err != nil {
		return nil, err
	} else if len(inside) > 0 {
		return nil, fmt.Errorf("%s of %s holds the path of %s too: a rollback would roll it back as well; roll back each app on its own", dir, a.Key(), strings.Join(inside, ", "))
	}
	res := &RollbackResult{App: a, To: o.To, Branch: branch, Path: dir, Files: []FileAction{}}
	old, err := blobs(ctx, gl, ref, dir, o.To)
	if err != nil {
		return res, err
	}
	if len(old) == 0 {
		return res, fmt.Errorf("%s holds no files of %s at %s: nothing to roll back to", a.Project, firstNonEmpty(dir, "the repository"), o.To)
	}
	cur, err := blobs(ctx, gl, ref, dir, branch)
	if err != nil {
		return res, err
	}
	var actions []gitlab.CommitAction
	for _, p := range sortedKeys(old) {
		if !flux.Under(p, dir) || strings.Contains(p, "..") {
			return res, fmt.Errorf("GitLab listed %q, outside %s: refusing to commit it", p, dir)
		}
		id, ok := cur[p]
		if ok && id == old[p] {
			continue
		}
		f, found, err := gl.GetFile(ctx, ref, p, o.To)
		if err != nil {
			return res, err
		}
		if !found {
			return res, fmt.Errorf("%s at %s disappeared while reading it", p, o.To)
		}
		act := "update"
		if !ok {
			act = "create"
		}
		actions = append(actions, gitlab.CommitAction{Action: act, Path: p, Content: f.Content})
	}
	for _, p := range sortedKeys(cur) {
		if _, ok := old[p]; !ok && flux.Under(p, dir) {
			actions = append(actions, gitlab.CommitAction{Action: "delete", Path: p})
		}
	}
	for _, act := range actions {
		res.Files = append(res.Files, FileAction{Action: act.Action, Path: act.Path})
	}
	short := o.To
	if len(short) > 8 {
		short = short[:8]
	}
	msg := fmt.Sprintf("Roll back %s to %s\n\n%s as it was at %s.\n\nCommitted by kubectl gitlab-agent apps rollback.", a.Key(), short, firstNonEmpty(dir, "The repository"), o.To)
	if o.MergeRequest {
		if len(actions) == 0 {
			return res, nil
		}
		work := "rollback/" + a.Namespace + "-" + a.Name + "-" + short
		res.Branch = work
		c, err := gl.CreateCommit(ctx, ref, gitlab.CommitOptions{Branch: work, StartBranch: branch, Message: msg, Actions: actions})
		if err != nil {
			return res, fmt.Errorf("committing the rollback to %s: %w", work, err)
		}
		res.Commit = c
		mr, err := gl.CreateMergeRequest(ctx, ref, work, branch, fmt.Sprintf("Roll back %s to %s", a.Key(), short), msg)
		if err != nil {
			return res, err
		}
		res.MergeRequest = mr
		return res, nil
	}
	if len(actions) > 0 {
		c, err := gl.CreateCommit(ctx, ref, gitlab.CommitOptions{Branch: branch, Message: msg, Actions: actions})
		if err != nil {
			return res, fmt.Errorf("committing the rollback to %s: %w", branch, err)
		}
		res.Commit = c
	}
	after, err := Reconcile(ctx, e, ns, name, true, o.Progress)
	if after != nil {
		res.App, res.Revision = after, after.Revision
	}
	return res, err
}

// appsInside names the other Kustomizations of a's GitLab project whose
// path is inside dir (in every namespace, or a's when the cluster lets
// list only there).
func appsInside(ctx context.Context, e Env, a *App, dir string) ([]string, error) {
	kss, err := e.Flux.ListObjects(ctx, flux.Kustomizations, "")
	if err != nil {
		if kss, err = e.Flux.ListObjects(ctx, flux.Kustomizations, a.Namespace); err != nil {
			return nil, fmt.Errorf("listing the Kustomizations whose path a rollback of %s could touch: %w", a.Key(), err)
		}
	}
	var out []string
	sources := map[string]*unstructured.Unstructured{}
	for _, ks := range kss {
		if ks.GetNamespace() == a.Namespace && ks.GetName() == a.Name {
			continue
		}
		other := fromObject(ks)
		p, _, _ := unstructured.NestedString(ks.Object, "spec", "path")
		if q := flux.CleanPath(p); q == dir || !flux.Under(q, dir) || other.Source == "" {
			continue // the same path is the same app's content: rolled back alike
		}
		src, ok := sources[other.Source]
		if !ok {
			if src, err = sourceOf(ctx, e.Flux, other.Source); err != nil {
				return nil, err
			}
			sources[other.Source] = src
		}
		other.setSource(src, e.GitLabURL)
		if other.Project == a.Project && branchOf(other) == branchOf(a) {
			out = append(out, other.Key())
		}
	}
	sort.Strings(out)
	return out, nil
}

// blobs lists the files under dir at ref: path → blob ID.
func blobs(ctx context.Context, gl *gitlab.Client, ref gitlab.ProjectRef, dir, at string) (map[string]string, error) {
	entries, found, err := gl.ListTree(ctx, ref, dir, at, true)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	if !found {
		return out, nil
	}
	for _, e := range entries {
		if e.Type == "blob" {
			p := e.Path
			if p == "" {
				p = path.Join(dir, e.Name)
			}
			out[p] = e.ID
		}
	}
	return out, nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// IsSHA says whether s is a commit SHA as --to and --revision take it: 7 to
// 40 lowercase hexadecimal digits.
func IsSHA(s string) bool {
	if len(s) < 7 || len(s) > 40 {
		return false
	}
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return false
		}
	}
	return true
}

func sourceURL(a *App) string {
	if a.source == nil {
		return ""
	}
	u, _, _ := unstructured.NestedString(a.source.Object, "spec", "url")
	return u
}
