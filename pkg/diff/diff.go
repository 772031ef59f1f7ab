// Package diff compares manifests with the live cluster the way a server-side
// apply would change it: each object is dry-run applied with the plugin's field
// manager (or, when the manager's own fields already hold the desired values,
// known unchanged without a request), normalised and Secrets masked. It
// returns results (the objects, their hunks, the -o json Document); pkg/cmd
// prints them.
package diff

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
)

// Action is what applying the manifests would do to an object.
type Action string

// The actions, as -o summary and -o json name them.
const (
	Created   Action = "created"
	Changed   Action = "changed"
	Unchanged Action = "unchanged"
	Pruned    Action = "pruned"
	// Skipped is an object a controller's rules (Options.Policy) leave
	// alone: neither applied nor pruned; its Note says why.
	Skipped Action = "skipped"
	Failed  Action = "error"
)

// Options tune a diff.
type Options struct {
	// Manager is the field manager the apply would use.
	Manager string
	// Force takes over fields other managers own, as install does.
	Force       bool
	Concurrency int
	ShowStatus  bool
	ShowSecrets bool
	// MaskKey keys the hashes that stand for Secret values (MaskKey());
	// nil: a key for this run only.
	MaskKey []byte
	Ignore  []IgnoreRule
	// PruneSelector, when set, lists live objects with these labels that
	// the manifests no longer contain; PruneOnly, when set, keeps those it
	// accepts (namespace "" for a cluster-scoped object), as the objects of
	// one install among others that carry the same labels.
	PruneSelector string
	PruneOnly     func(namespace, name string) bool
	// DefaultNamespace is where namespaced objects without one go;
	// EnforceNamespace makes other namespaces an error (-n was given).
	DefaultNamespace string
	EnforceNamespace bool
	// ServerOnly sends every object that exists to the server's dry run,
	// predicting nothing locally (for tests that compare the two).
	ServerOnly bool
	// Policy adds a GitOps controller's rules: the objects it leaves alone
	// and the live ones it keeps rather than prunes (FluxPolicy). nil:
	// none, as the plugin's own apply has none.
	Policy Policy
	// Schemas, when set, keeps the cluster's OpenAPI schemas between the
	// diffs of one process that share it (one cluster's).
	Schemas *SchemaCache
	// PruneRefs are more live objects to prune, beside PruneSelector's: a
	// controller's inventory entries that the manifests no longer hold.
	// Each is read; those that exist are pruned unless Policy keeps them.
	// Those the manifests hold, and kinds the cluster has not, are left out.
	PruneRefs []kube.Ref
}

// Object is the outcome for one object.
type Object struct {
	kube.Ref
	Action       Action   `json:"action"`
	ChangedPaths []string `json:"changedPaths,omitempty"`
	// Changes are the changed paths with their old and new values, for a
	// changed object.
	Changes []Change `json:"changes,omitempty"`
	Error   string   `json:"error,omitempty"`
	// Note says what could not be checked (an object created with its
	// Namespace or CRD, which no dry run can take yet), or why an object
	// is skipped.
	Note string `json:"note,omitempty"`
	// Before and After are the normalised, masked YAML texts compared.
	Before string `json:"-"`
	After  string `json:"-"`
	Origin string `json:"-"`
}

// Result is the outcome for every object, in a stable order.
type Result struct {
	Objects []Object
	// Notes say what made the diff slower or less certain than it could be
	// (for the user, on stderr).
	Notes []string `json:"-"`
}

// Counts tallies the actions.
func (r *Result) Counts() map[Action]int {
	c := map[Action]int{}
	for _, o := range r.Objects {
		c[o.Action]++
	}
	return c
}

// Differs reports whether applying would change anything.
func (r *Result) Differs() bool {
	c := r.Counts()
	return c[Created]+c[Changed]+c[Pruned] > 0
}

// Failed reports whether any object could not be diffed.
func (r *Result) Failed() bool { return r.Counts()[Failed] > 0 }

// Run diffs manifests against the cluster. It does not ask whether the
// cluster answers (Cluster.Reachable): the caller does, first.
//
// What fails for every object alike ends the run with one error, not one
// per object: a discovery that fails, credentials the cluster refuses (a
// 401 anywhere; a 401 or 403 of the first read, which is made alone), a
// cluster that stops answering. When ctx ends, the requests in flight stop
// and the error is an *InterruptedError that says how far it got.
//
// It runs in phases: targets (map the manifests), fetch live (read the live
// objects, each compared as it arrives: decide per object, asking the
// cluster only what cannot be known without it), prune.
func Run(ctx context.Context, c Cluster, manifests []kube.Manifest, o Options) (*Result, error) {
	r := newRun(c, manifests, o)
	targets, seen, err := r.targets(ctx, manifests)
	if err != nil {
		return nil, err
	}
	manifests = nil // the targets hold them now
	// An error that every object would meet ends the run: the requests in
	// flight stop, and what is left is not compared.
	r.runCtx, r.cancel = context.WithCancel(ctx)
	defer r.cancel()
	r.startPrediction(targets)
	r.fetchLive(targets, r.compare)
	r.ready.Wait()
	if r.ending != nil {
		return nil, r.ending
	}
	if ctx.Err() != nil {
		return nil, r.stopped(ctx)
	}
	if err := r.admission.Unknown(); err != nil {
		r.res.Notes = append(r.res.Notes, "every object was dry-run on the server: "+err.Error()+" (webhooks and admission policies could act on any apply)")
	}
	if err := r.prune(ctx, targets, seen); err != nil {
		return nil, err
	}
	sort.SliceStable(r.res.Objects, func(i, j int) bool { return r.res.Objects[i].Ref.Less(r.res.Objects[j].Ref) })
	return r.res, nil
}

func created(ref kube.Ref, m kube.Manifest, after map[string]any) Object {
	return Object{Ref: ref, Action: Created, After: toYAML(after), ChangedPaths: []string{"."}, Origin: m.Origin}
}

// groupKind is "Kind.group" ("Kind" for the core group), as GroupKind prints.
func groupKind(r kube.Ref) string {
	group := ""
	if i := strings.LastIndex(r.APIVersion, "/"); i >= 0 {
		group = r.APIVersion[:i]
	}
	if group == "" {
		return r.Kind
	}
	return r.Kind + "." + group
}

// objectMessage is an API error as one line, as one object's error.
func objectMessage(err error) string {
	if oe, ok := err.(*kube.ObjectError); ok {
		err = oe.Err
	}
	if ae, ok := err.(*kube.AuthError); ok {
		err = ae.Err
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}

// endsRun reports whether err, met reading or applying one object, is the
// cluster's or the credentials' rather than the object's: a 401, a cluster
// that no longer answers. Every other object would meet it too.
func endsRun(err error) bool {
	var ue *kube.UnreachableError
	return apierrors.IsUnauthorized(err) || errors.As(err, &ue)
}

// InterruptedError is a run that its context ended (Ctrl-C, SIGTERM): how
// far it got.
type InterruptedError struct {
	// Compared is how many of the Total manifests have an outcome, and
	// Counts those outcomes.
	Compared, Total int
	Counts          map[Action]int
	// Err is the context's error.
	Err error
}

func (e *InterruptedError) Error() string {
	c := e.Counts
	return fmt.Sprintf("%d of %d objects compared (%d differ, %d could not be compared), %d not: %v",
		e.Compared, e.Total, c[Created]+c[Changed]+c[Pruned], c[Failed], e.Total-e.Compared, e.Err)
}

func (e *InterruptedError) Unwrap() error { return e.Err }

func interrupted(ctx context.Context, res *Result, mu *sync.Mutex, total int) error {
	mu.Lock()
	defer mu.Unlock()
	e := &InterruptedError{Compared: min(len(res.Objects), total), Total: total, Counts: res.Counts(), Err: ctx.Err()}
	return e
}

func toYAML(m map[string]any) string {
	if m == nil {
		return ""
	}
	b, err := yaml.Marshal(m)
	if err != nil {
		return fmt.Sprintf("# cannot print: %v\n", err)
	}
	return string(b)
}

// applyView is the part of an object that an apply configuration holds;
// status only where it is an ordinary field (keepStatus).
func applyView(o *unstructured.Unstructured, keepStatus bool) map[string]any {
	c := o.DeepCopy().Object
	for _, f := range []string{"managedFields", "resourceVersion", "uid", "generation", "creationTimestamp", "selfLink"} {
		unstructured.RemoveNestedField(c, "metadata", f)
	}
	if !keepStatus {
		delete(c, "status")
	}
	if m, ok := c["metadata"].(map[string]any); ok {
		for _, k := range []string{"labels", "annotations"} {
			if v, ok := m[k].(map[string]any); ok && len(v) == 0 {
				delete(m, k)
			}
		}
	}
	return c
}
