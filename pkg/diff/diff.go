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
	"maps"
	"reflect"
	"slices"
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
	Failed    Action = "error"
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
	// Namespace or CRD, which no dry run can take yet).
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
func Run(ctx context.Context, c Cluster, manifests []kube.Manifest, o Options) (*Result, error) {
	if o.Manager == "" {
		o.Manager = kube.FieldManager
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	n := normalizer{showStatus: o.ShowStatus, showSecrets: o.ShowSecrets, ignore: o.Ignore, key: o.MaskKey}
	res := &Result{}
	var mu sync.Mutex
	add := func(obj Object) {
		mu.Lock()
		res.Objects = append(res.Objects, obj)
		mu.Unlock()
	}
	total := len(manifests)
	stopped := func() error { return interrupted(ctx, res, &mu, total) }

	set := newCreatedBySet(manifests)
	var targets []kube.Target
	seen := map[kube.Ref]string{}
	for _, m := range manifests {
		if ctx.Err() != nil {
			return nil, stopped()
		}
		t, err := c.Map(ctx, m, o.DefaultNamespace, o.EnforceNamespace)
		var oe *kube.ObjectError
		if err != nil && !errors.As(err, &oe) {
			// Discovery failed: every manifest would fail alike.
			if ctx.Err() != nil {
				return nil, stopped()
			}
			return nil, err
		}
		if err != nil {
			ref := m.Ref
			if crd := set.crds[groupKind(ref)]; crd != nil {
				// Its CRD comes with the same manifests: it would be created,
				// if it is valid by that CRD.
				add(set.customResource(ctx, c, crd, m, o, n))
				continue
			}
			add(Object{Ref: ref, Action: Failed, Error: objectMessage(err), Origin: m.Origin})
			continue
		}
		// Keyed without the version: one object written as autoscaling/v1
		// and as v2 is given twice, and the list for pruning reads it in
		// the version the server prefers.
		if prev, dup := seen[t.Ref.Object()]; dup {
			add(Object{Ref: t.Ref, Action: Failed, Error: fmt.Sprintf("given twice (%s and %s)", prev, m.Origin), Origin: m.Origin})
			continue
		}
		seen[t.Ref.Object()] = m.Origin
		targets = append(targets, t)
	}

	manifests = nil // the targets hold them now
	// An error that every object would meet ends the run: the requests in
	// flight stop, and what is left is not compared.
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var ending error
	var endOnce sync.Once
	end := func(err error) {
		endOnce.Do(func() { ending = err })
		cancel()
	}
	// What the apply would do is known without the server only where no
	// webhook or admission policy may act on it, and the user may patch.
	var pred *predictor
	var admission *kube.Admission
	var access kube.PatchAccess
	// The admission configuration and the schemas are read while the live
	// objects are: neither is needed before the first of those arrives.
	var ready sync.WaitGroup
	if !o.ServerOnly {
		if schema := c.OpenAPIV3(); schema != nil {
			pred = newPredictor(runCtx, schema, c.HasStatusSubresource)
		}
		for _, t := range targets {
			pred.want(t.Mapping.GroupVersionKind)
		}
		access = c.NewAccess()
		ready.Add(1)
		go func() {
			defer ready.Done()
			admission = c.ReadAdmission(runCtx)
		}()
		pred.prefetch()
	}
	// Dry runs share one limit across the groups being read.
	sem := make(chan struct{}, o.Concurrency)
	compare := func(t kube.Target, cur *unstructured.Unstructured, err error) {
		if runCtx.Err() != nil {
			return // the run is ending: not compared
		}
		if err != nil {
			if endsRun(err) {
				end(err)
				return
			}
			add(Object{Ref: t.Ref, Action: Failed, Error: "reading the live object: " + objectMessage(err), Origin: t.Origin})
			return
		}
		desired, err := t.Object()
		if err != nil {
			add(Object{Ref: t.Ref, Action: Failed, Error: err.Error(), Origin: t.Origin})
			return
		}
		salt := t.Ref.String()
		// Status is compared as any field where it is not a subresource's
		// (custom resources without one): the apply sets it.
		n := n
		n.showStatus = n.showStatus || !c.HasStatusSubresource(t.Mapping.Resource)
		if cur != nil {
			salt = string(cur.GetUID())
			ready.Wait()
			if !o.ServerOnly && admission.MayMatch("UPDATE", t.Mapping.Resource, t.Namespaced()) == "" &&
				(unchangedByApply(cur, desired, o.Manager, !c.HasStatusSubresource(t.Mapping.Resource)) || pred.unchanged(t.Mapping.Resource, cur, desired, o.Manager, o.Force)) {
				ok, why, err := access.CanPatch(runCtx, t.Mapping.Resource, t.Ref.Namespace, t.Ref.Name)
				switch {
				case err == nil && ok:
					add(Object{Ref: t.Ref, Action: Unchanged, Origin: t.Origin})
					return
				case err == nil:
					// The apply would be refused, as the dry run would say.
					add(Object{Ref: t.Ref, Action: Failed, Error: "forbidden: " + why, Origin: t.Origin})
					return
				}
				// Not known: the dry run answers.
			}
		}
		select {
		case sem <- struct{}{}:
		case <-runCtx.Done():
			return
		}
		if runCtx.Err() != nil {
			<-sem
			return
		}
		merged, err := c.Apply(runCtx, t, desired, o.Manager, o.Force, true)
		if err != nil && runCtx.Err() == nil && endsRun(err) {
			end(err) // before another dry run may start
		}
		<-sem
		if err != nil {
			switch {
			case runCtx.Err() != nil:
				return
			case cur == nil && apierrors.IsNotFound(err) && set.crds[groupKind(t.Ref)] != nil:
				// Its CRD comes with the same manifests, and the cluster's
				// discovery (cached) still knows a kind it no longer has.
				add(set.customResource(runCtx, c, set.crds[groupKind(t.Ref)], t.Manifest, o, n))
				return
			case cur == nil && apierrors.IsNotFound(err) && t.Namespaced() && set.namespaces[t.Ref.Namespace]:
				// Its Namespace comes with the same manifests: no dry run
				// can be made there yet; the schema is checked.
				add(set.inNewNamespace(t, desired, pred, n.normalize(desired, salt)))
				return
			}
			add(Object{Ref: t.Ref, Action: Failed, Error: objectMessage(err), Origin: t.Origin})
			return
		}
		if cur == nil {
			add(created(t.Ref, t.Manifest, n.normalize(merged, salt)))
			return
		}
		before, after := n.normalize(cur, salt), n.normalize(merged, salt)
		dropManaged(o.Ignore, cur, before, after)
		if reflect.DeepEqual(before, after) {
			add(Object{Ref: t.Ref, Action: Unchanged, Origin: t.Origin})
			return
		}
		ch := changes(before, after)
		paths := make([]string, len(ch))
		for i, c := range ch {
			paths[i] = c.Path
		}
		add(Object{Ref: t.Ref, Action: Changed, ChangedPaths: paths, Changes: ch,
			Before: toYAML(before), After: toYAML(after), Origin: t.Origin})
	}
	if len(targets) > 0 {
		// The first read goes alone: when the cluster refuses it (401,
		// 403), the run ends with that one refusal, as kubectl diff's
		// would, not one per object. Its comparison goes on beside the
		// other reads.
		var first sync.WaitGroup
		c.LiveEach(runCtx, targets[:1], 1, 1, func(t kube.Target, cur *unstructured.Unstructured, err error) {
			if err != nil && (apierrors.IsUnauthorized(err) || apierrors.IsForbidden(err)) {
				end(err)
				return
			}
			first.Go(func() { compare(t, cur, err) })
		})
		if runCtx.Err() == nil {
			c.LiveEach(runCtx, targets[1:], 4, o.Concurrency, compare)
		}
		first.Wait()
	}
	ready.Wait()
	if ending != nil {
		return nil, ending
	}
	if ctx.Err() != nil {
		return nil, stopped()
	}
	if err := admission.Unknown(); err != nil {
		res.Notes = append(res.Notes, "every object was dry-run on the server: "+err.Error()+" (webhooks and admission policies could act on any apply)")
	}
	if o.PruneSelector != "" {
		// Like kubectl apply --prune: namespaced objects only in the
		// namespaces the manifests use (none: cluster-scoped ones only).
		nsSet := map[string]bool{}
		for _, t := range targets {
			if t.Namespaced() {
				nsSet[t.Ref.Namespace] = true
			}
		}
		pruned, err := c.ListSelected(ctx, o.PruneSelector, slices.Sorted(maps.Keys(nsSet)), nil, o.Concurrency)
		if ctx.Err() != nil {
			return nil, stopped()
		}
		if err != nil {
			return nil, fmt.Errorf("listing objects to prune: %w", err)
		}
		// The Endpoints of a Service (made by the endpoints controller
		// with the Service's labels and no owner) come and go with it.
		services := map[kube.Ref]bool{}
		for ref := range seen {
			if ref.APIVersion == "" && ref.Kind == "Service" {
				services[ref] = true
			}
		}
		for _, p := range pruned {
			if ref := kube.RefOf(p).Object(); ref.APIVersion == "" && ref.Kind == "Service" {
				services[ref] = true
			}
		}
		for _, p := range pruned {
			ref := kube.RefOf(p)
			if _, kept := seen[ref.Object()]; kept {
				continue
			}
			if o.PruneOnly != nil && !o.PruneOnly(ref.Namespace, ref.Name) {
				continue
			}
			if svc := ref.Object(); svc.APIVersion == "" && svc.Kind == "Endpoints" {
				if svc.Kind = "Service"; services[svc] {
					continue
				}
			}
			before := n.normalize(p, string(p.GetUID()))
			add(Object{Ref: ref, Action: Pruned, Before: toYAML(before), ChangedPaths: []string{"."}})
		}
	}
	sort.SliceStable(res.Objects, func(i, j int) bool { return res.Objects[i].Ref.Less(res.Objects[j].Ref) })
	return res, nil
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
