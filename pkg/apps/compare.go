package apps

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/diff"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/flux"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/fluxbuild"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
)

var (
	configMaps = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	secrets    = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
)

// Comparer compares apps' live objects with what their source builds: the
// source fetched from GitLab (the repository archive at the revision, once
// per project and revision however many apps use it), built as
// kustomize-controller builds it, diffed under Flux's rules.
type Comparer struct {
	Env    Env
	GitLab *gitlab.Client
	// Cluster is what the diff reads and dry-runs.
	Cluster diff.Cluster
	// Concurrency bounds the diff's requests per app (default 8).
	Concurrency int

	mu    sync.Mutex
	trees map[string]*tree
	// schemas are the cluster's OpenAPI schemas, read once for every app.
	schemas diff.SchemaCache
}

// tree is one extracted archive, shared by the apps built from it.
type tree struct {
	once    sync.Once
	dir     string
	cleanup func()
	err     error
}

// Close removes the extracted archives.
func (c *Comparer) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.trees {
		if t.cleanup != nil {
			t.cleanup()
		}
	}
	c.trees = nil
}

// Comparison is an app's live objects against its source.
type Comparison struct {
	// Revision is the source revision built ("main@sha1:…", or the SHA
	// given).
	Revision string
	Result   *diff.Result
	// SecretValues are values substituted from Secrets: masked in
	// Result's texts already; never print them.
	SecretValues []string
}

// Drifted counts the objects that differ: created, changed or pruned.
func (c *Comparison) Drifted() int {
	n := c.Result.Counts()
	return n[diff.Created] + n[diff.Changed] + n[diff.Pruned]
}

// NotComparableError is an app whose source this comparer cannot read.
type NotComparableError struct{ App, Why string }

func (e *NotComparableError) Error() string {
	return fmt.Sprintf("cannot compare %s with its source: %s", e.App, e.Why)
}

// Compare builds the app's source at revision ("" its source's current
// artifact) and diffs the live objects with it.
func (c *Comparer) Compare(ctx context.Context, a *App, revision string) (*Comparison, error) {
	switch {
	case a.Kind != KindKustomization:
		return nil, &NotComparableError{App: a.Key(), Why: "it is a " + a.Kind + " (Flux's status is its sync)"}
	case a.source == nil:
		return nil, &NotComparableError{App: a.Key(), Why: "its source " + a.Source + " does not exist"}
	case a.source.GetKind() != "GitRepository":
		return nil, &NotComparableError{App: a.Key(), Why: "its source is a " + a.source.GetKind() + ", not a GitRepository of a GitLab project"}
	case a.Project == "":
		return nil, &NotComparableError{App: a.Key(), Why: fmt.Sprintf("its source's URL %s is not a project of the GitLab at %s (--gitlab-url)", sourceURL(a), firstNonEmpty(c.Env.GitLabURL, "none"))}
	case c.GitLab == nil:
		return nil, &NotComparableError{App: a.Key(), Why: "no GitLab credential to read " + a.Project + " with (GITLAB_TOKEN or --gitlab-token-file)"}
	}
	rev := revision
	sha := revision
	if rev == "" {
		rev = a.SourceRevision
		sha = flux.RevisionSHA(rev)
		if sha == "" {
			return nil, &NotComparableError{App: a.Key(), Why: "its source has no artifact yet (" + firstNonEmpty(rev, "no revision") + ")"}
		}
	}
	dir, err := c.tree(ctx, a, sha)
	if err != nil {
		return nil, err
	}
	built, err := fluxbuild.Build(ctx, dir, a.obj, varSource{c.Env.Flux})
	if err != nil {
		return nil, fmt.Errorf("building %s at %s: %w", a.Key(), shortSHA(sha), err)
	}
	objs := make([]map[string]any, len(built.Objects))
	for i, o := range built.Objects {
		objs[i] = o.Object
	}
	ms, err := kube.FromObjects(objs, a.Project+"@"+shortSHA(sha))
	if err != nil {
		return nil, err
	}
	o := diff.Options{
		Manager: diff.FluxFieldManager, Force: true,
		Policy:           diff.FluxPolicy{Name: a.Name, Namespace: a.Namespace},
		DefaultNamespace: a.Namespace,
		Concurrency:      c.Concurrency,
		Schemas:          &c.schemas,
	}
	if prune, _, _ := unstructured.NestedBool(a.obj.Object, "spec", "prune"); prune {
		o.PruneRefs = missing(flux.Inventory(a.obj), built.Objects)
	}
	res, err := diff.Run(ctx, c.Cluster, ms, o)
	if err != nil {
		return nil, fmt.Errorf("comparing %s with %s: %w", a.Key(), shortSHA(sha), err)
	}
	maskValues(res, built.SecretValues)
	return &Comparison{Revision: rev, Result: res, SecretValues: built.SecretValues}, nil
}

// tree extracts the project's archive at sha once per comparer.
func (c *Comparer) tree(ctx context.Context, a *App, sha string) (string, error) {
	// The tree is the source's artifact: the archive less what the
	// GitRepository's ignore rules leave out, so the rules are part of
	// the key (two GitRepositories of one project may differ in them).
	var ignore *string
	if s, ok, _ := unstructured.NestedString(a.source.Object, "spec", "ignore"); ok {
		ignore = &s
	}
	key := a.Project + "@" + sha + "\x00"
	if ignore != nil {
		key += "ignore:" + *ignore
	}
	c.mu.Lock()
	if c.trees == nil {
		c.trees = map[string]*tree{}
	}
	t, ok := c.trees[key]
	if !ok {
		t = &tree{}
		c.trees[key] = t
	}
	c.mu.Unlock()
	t.once.Do(func() {
		r, err := c.GitLab.Archive(ctx, gitlab.ProjectRef{Path: a.Project}, sha, "", 0)
		if err != nil {
			t.err = fmt.Errorf("fetching %s at %s from GitLab: %w", a.Project, shortSHA(sha), err)
			return
		}
		defer r.Close()
		t.dir, t.cleanup, t.err = fluxbuild.Extract(ctx, r, "tar.gz", "", fluxbuild.Limits{})
		if t.err != nil {
			t.err = fmt.Errorf("reading %s at %s: %w", a.Project, shortSHA(sha), t.err)
			return
		}
		if err := fluxbuild.ApplySourceIgnore(t.dir, ignore); err != nil {
			t.err = err
		}
	})
	return t.dir, t.err
}

// missing are the inventory's objects the build no longer has: what Flux
// would prune.
func missing(inv []flux.InventoryEntry, built []*unstructured.Unstructured) []kube.Ref {
	have := map[string]bool{}
	for _, o := range built {
		gv := o.GroupVersionKind()
		have[o.GetNamespace()+"/"+o.GetName()+"/"+gv.Group+"/"+gv.Kind] = true
	}
	var out []kube.Ref
	for _, e := range inv {
		if !have[e.Namespace+"/"+e.Name+"/"+e.Group+"/"+e.Kind] {
			out = append(out, kube.Ref{APIVersion: e.APIVersion(), Kind: e.Kind, Namespace: e.Namespace, Name: e.Name})
		}
	}
	return out
}

// maskValues hides values substituted from Secrets wherever the diff
// shows them; and where a changed field's new value holds one, its old
// value too (the live object holds a value substituted from that Secret
// before it changed).
func maskValues(res *diff.Result, values []string) {
	if len(values) == 0 {
		return
	}
	maskWith := func(vals []string) func(string) string {
		return func(s string) string {
			for _, v := range vals {
				if len(v) >= 3 {
					s = strings.ReplaceAll(s, v, "<masked>")
				}
			}
			return s
		}
	}
	mask := maskWith(values)
	for i := range res.Objects {
		o := &res.Objects[i]
		var olds []string
		for j := range o.Changes {
			ch := &o.Changes[j]
			masked := maskAny(ch.New, mask)
			if fmt.Sprint(masked) != fmt.Sprint(ch.New) {
				// The old value's strings that the new one no longer
				// holds: where the change is a whole list or map (its
				// length changed), the Secret's old value is one of them.
				kept := map[string]bool{}
				leafStrings(ch.New, func(s string) { kept[s] = true })
				leafStrings(ch.Old, func(s string) {
					if s != "" && !kept[s] {
						olds = append(olds, s)
					}
				})
			}
			ch.New = masked
		}
		m := maskWith(append(olds, values...))
		o.Before, o.After, o.Error, o.Note = m(o.Before), m(o.After), m(o.Error), m(o.Note)
		for j := range o.Changes {
			o.Changes[j].Old = maskAny(o.Changes[j].Old, m)
		}
	}
}

// leafStrings calls f with every string in a JSON value.
func leafStrings(v any, f func(string)) {
	switch x := v.(type) {
	case string:
		f(x)
	case map[string]any:
		for _, e := range x {
			leafStrings(e, f)
		}
	case []any:
		for _, e := range x {
			leafStrings(e, f)
		}
	}
}

// maskAny masks the strings in a JSON value (a change's old or new value).
func maskAny(v any, mask func(string) string) any {
	switch x := v.(type) {
	case string:
		return mask(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = maskAny(e, mask)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = maskAny(e, mask)
		}
		return out
	}
	return v
}

func shortSHA(s string) string {
	if len(s) > 8 {
		return s[:8]
	}
	return s
}

// varSource reads substituteFrom's ConfigMaps and Secrets from the
// cluster.
type varSource struct{ c flux.Cluster }

func (v varSource) ConfigMap(ctx context.Context, ns, name string) (map[string]string, bool, error) {
	o, err := v.c.GetObject(ctx, configMaps, ns, name)
	if err != nil || o == nil {
		return nil, false, err
	}
	data, _, _ := unstructured.NestedStringMap(o.Object, "data")
	return data, true, nil
}

func (v varSource) Secret(ctx context.Context, ns, name string) (map[string][]byte, bool, error) {
	o, err := v.c.GetObject(ctx, secrets, ns, name)
	if err != nil || o == nil {
		return nil, false, err
	}
	raw, _, _ := unstructured.NestedStringMap(o.Object, "data")
	data := make(map[string][]byte, len(raw))
	for k, b64 := range raw {
		b, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return nil, false, fmt.Errorf("Secret %s/%s: key %s is not base64", ns, name, k)
		}
		data[k] = b
	}
	return data, true, nil
}

// CompareAll compares the apps concurrently, at most n at once (default
// 4), and sets each one's Drifted and Sync: Synced when the revision
// applied is the source's and nothing drifted; OutOfSync when either is
// not so; an app that cannot be compared keeps Flux's view, with why in
// its Message. A comparison that fails for every app alike (the cluster,
// GitLab refusing the credential) is returned.
func (c *Comparer) CompareAll(ctx context.Context, list []*App, n int) error {
	if n <= 0 {
		n = 4
	}
	var mu sync.Mutex
	var first error
	kube.Parallel(ctx, len(list), n, func(i int) {
		a := list[i]
		if a.Kind != KindKustomization {
			return
		}
		cmp, err := c.Compare(ctx, a, "")
		var nc *NotComparableError
		switch {
		case errors.As(err, &nc):
			// Synced means compared and the same: without a
			// comparison it cannot be told.
			if a.Sync == Synced {
				a.Sync = Unknown
			}
			a.Message = firstNonEmpty(a.Message, nc.Why)
		case err != nil:
			mu.Lock()
			if first == nil && (gitlab.IsClass(err, gitlab.ClassUnauthenticated) || ctx.Err() != nil) {
				first = err
			}
			mu.Unlock()
			a.Sync, a.Message = Unknown, err.Error()
		default:
			d := cmp.Drifted()
			a.Drifted = &d
			if d > 0 {
				a.Sync = OutOfSync
			}
		}
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}

// DriftedNames names the objects that differ, as kind/namespace/name.
func (c *Comparison) DriftedNames() []string {
	out := []string{}
	for _, o := range c.Result.Objects {
		switch o.Action {
		case diff.Created, diff.Changed, diff.Pruned:
			out = append(out, string(o.Action)+" "+o.Ref.String())
		}
	}
	return out
}
