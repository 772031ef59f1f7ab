package kube

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// Ref names one object: group/version/kind, namespace and name.
type Ref struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
}

// RefOf is the Ref of an object.
func RefOf(o *unstructured.Unstructured) Ref {
	return Ref{APIVersion: o.GetAPIVersion(), Kind: o.GetKind(), Namespace: o.GetNamespace(), Name: o.GetName()}
}

// Object is r without its version: the same object whichever version of
// its API it is read or written in (autoscaling/v1 and v2, say).
func (r Ref) Object() Ref {
	if i := strings.LastIndex(r.APIVersion, "/"); i >= 0 {
		r.APIVersion = r.APIVersion[:i]
	} else {
		r.APIVersion = ""
	}
	return r
}

// String is "apps/v1/Deployment/ns/name" ("v1/Namespace/name" when
// cluster-scoped).
func (r Ref) String() string {
	if r.Namespace == "" {
		return r.APIVersion + "/" + r.Kind + "/" + r.Name
	}
	return r.APIVersion + "/" + r.Kind + "/" + r.Namespace + "/" + r.Name
}

// Less orders refs for stable output.
func (r Ref) Less(o Ref) bool {
	if r.Namespace != o.Namespace {
		return r.Namespace < o.Namespace
	}
	if r.APIVersion != o.APIVersion {
		return r.APIVersion < o.APIVersion
	}
	if r.Kind != o.Kind {
		return r.Kind < o.Kind
	}
	return r.Name < o.Name
}

// Target is a manifest mapped onto its API resource. Ref carries the
// namespace it will live in.
type Target struct {
	Manifest
	Mapping *meta.RESTMapping
	Ref     Ref
}

// Object decodes the manifest with its settled namespace.
func (t Target) Object() (*unstructured.Unstructured, error) {
	o, err := t.Manifest.Object()
	if err != nil {
		return nil, err
	}
	o.SetNamespace(t.Ref.Namespace)
	return o, nil
}

// Namespaced reports whether the object lives in a namespace.
func (t Target) Namespaced() bool { return t.Mapping.Scope.Name() == meta.RESTScopeNameNamespace }

// ObjectError is a failure that concerns one object.
type ObjectError struct {
	Ref Ref
	Err error
}

func (e *ObjectError) Error() string { return e.Ref.String() + ": " + e.Err.Error() }
func (e *ObjectError) Unwrap() error { return e.Err }

// Map finds the resource of a manifest and settles its namespace as
// `kubectl apply` does: namespaced objects without one take defaultNS; with
// -n given (enforce), an object naming another namespace is an error.
//
// An *ObjectError is the manifest's problem (a kind the cluster lacks, a
// namespace -n forbids). Any other error is the cluster's: its discovery
// failed (refused credentials, no answer), and every other manifest would
// fail alike.
func (c *Client) Map(ctx context.Context, m Manifest, defaultNS string, enforce bool) (Target, error) {
	ref := m.Ref
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return Target{}, &ObjectError{Ref: ref, Err: err}
	}
	gvk := gv.WithKind(ref.Kind)
	// With the context: discovery's requests (and their waits on the rate
	// limiter) stop on Ctrl-C.
	mapping, err := meta.ToRESTMapperWithContext(c.Mapper).RESTMappingWithContext(ctx, gvk.GroupKind(), gvk.Version)
	if err != nil {
		if meta.IsNoMatchError(err) {
			return Target{}, &ObjectError{Ref: ref, Err: fmt.Errorf("the cluster has no kind %s in %s (is its CRD installed?)", gvk.Kind, gvk.GroupVersion())}
		}
		switch {
		case refused(err):
			return Target{}, c.authError(err, "discover its API")
		case canceled(err):
			return Target{}, err
		case unreachable(err):
			return Target{}, c.unreachableError(err)
		}
		return Target{}, fmt.Errorf("discovering the cluster's API: %w", err)
	}
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		switch {
		case ref.Namespace == "":
			ref.Namespace = defaultNS
		case enforce && ref.Namespace != defaultNS:
			return Target{}, &ObjectError{Ref: ref, Err: fmt.Errorf("its namespace %q does not match -n %q", ref.Namespace, defaultNS)}
		}
	} else {
		ref.Namespace = ""
	}
	return Target{Manifest: m, Mapping: mapping, Ref: ref}, nil
}

func (c *Client) resource(t Target) dynamic.ResourceInterface {
	r := c.Dynamic.Resource(t.Mapping.Resource)
	if t.Namespaced() {
		return r.Namespace(t.Ref.Namespace)
	}
	return r
}

// listThreshold is how many objects of one resource in one namespace make a
// LIST cheaper than a GET each.
const listThreshold = 4

type groupKey struct {
	gvr schema.GroupVersionResource
	ns  string
}

// LiveEach reads the live state of targets and calls fn for each target with
// its live object (nil when absent) or the error reading it. Targets are read
// in groups that share a resource and namespace: one LIST where several
// objects share them, a GET each otherwise. At most `groups` groups are in
// memory at once, so memory stays bounded however many objects there are;
// fn runs concurrently, at most perGroup calls per group.
func (c *Client) LiveEach(ctx context.Context, targets []Target, groups, perGroup int, fn func(t Target, live *unstructured.Unstructured, err error)) {
	byKey := map[groupKey][]Target{}
	for _, t := range targets {
		k := groupKey{t.Mapping.Resource, t.Ref.Namespace}
		byKey[k] = append(byKey[k], t)
	}
	keys := make([]groupKey, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })

	get := func(t Target) (*unstructured.Unstructured, error) {
		o, err := c.resource(t).Get(ctx, t.Ref.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if refused(err) {
			return o, c.authError(err, "read "+t.Ref.String())
		}
		return o, c.explain(err)
	}
	Parallel(ctx, len(keys), groups, func(i int) {
		ts := byKey[keys[i]]
		var byName map[string]*unstructured.Unstructured
		if len(ts) >= listThreshold {
			// LIST may be forbidden where GET is allowed: then GET each.
			if items, err := c.list(ctx, c.Dynamic, ts[0], ""); err == nil {
				byName = make(map[string]*unstructured.Unstructured, len(items))
				for _, o := range items {
					byName[o.GetName()] = o
				}
			}
		}
		Parallel(ctx, len(ts), perGroup, func(j int) {
			t := ts[j]
			if byName != nil {
				fn(t, byName[t.Ref.Name], nil)
				return
			}
			o, err := get(t)
			fn(t, o, err)
		})
	})
}

// list reads every object of t's resource in t's namespace (in every
// namespace when it is empty), matching selector, in pages.
func (c *Client) list(ctx context.Context, dyn dynamic.Interface, t Target, selector string) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	opts := metav1.ListOptions{Limit: 500, LabelSelector: selector}
	var ri dynamic.ResourceInterface = dyn.Resource(t.Mapping.Resource)
	if t.Namespaced() && t.Ref.Namespace != "" {
		ri = dyn.Resource(t.Mapping.Resource).Namespace(t.Ref.Namespace)
	}
	for {
		l, err := ri.List(ctx, opts)
		if err != nil {
			return nil, err
		}
		for i := range l.Items {
			item := &l.Items[i]
			item.SetAPIVersion(t.Ref.APIVersion)
			item.SetKind(t.Ref.Kind)
			out = append(out, item)
		}
		// A continue token that does not move ends the walk: what answers
		// may be KAS, or something in front of it. (An empty page with a
		// token does not: a server may filter a whole page away.)
		next := l.GetContinue()
		if next == "" || next == opts.Continue {
			return out, nil
		}
		if len(out) >= maxListedObjects {
			return nil, fmt.Errorf("listing %s: more than %d objects", t.Mapping.Resource.Resource, maxListedObjects)
		}
		opts.Continue = next
	}
}

// maxListedObjects bounds one list of one resource type: far over what an
// agent's install or a diff's set holds.
const maxListedObjects = 100000

// Apply server-side applies t (decoded as o) as manager; with dryRun nothing
// is stored and the result is what the apply would make. force takes over
// fields that other managers own (as an install adopting a Helm release
// must). Server bookkeeping in o is dropped first, and status where it is a
// subresource's (for a custom resource without one, status is an ordinary
// field that the apply sets).
func (c *Client) Apply(ctx context.Context, t Target, o *unstructured.Unstructured, manager string, force, dryRun bool) (*unstructured.Unstructured, error) {
	o = o.DeepCopy()
	unstructured.RemoveNestedField(o.Object, "metadata", "managedFields")
	unstructured.RemoveNestedField(o.Object, "metadata", "resourceVersion")
	unstructured.RemoveNestedField(o.Object, "metadata", "uid")
	unstructured.RemoveNestedField(o.Object, "metadata", "creationTimestamp")
	if c.HasStatusSubresource(t.Mapping.Resource) {
		unstructured.RemoveNestedField(o.Object, "status")
	}
	opts := metav1.ApplyOptions{FieldManager: manager, Force: force}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	res, err := c.resource(t).Apply(ctx, t.Ref.Name, o, opts)
	return res, c.explain(err)
}

// Parallel runs fn(0..n-1) on at most limit goroutines.
func Parallel(ctx context.Context, n, limit int, fn func(i int)) {
	if limit < 1 {
		limit = 1
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, limit)
	for i := 0; i < n; i++ {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			fn(i)
		})
	}
	wg.Wait()
}

// ListSelected lists the objects of every listable resource type (of kinds;
// nil: of any kind) that match selector: namespaced ones in namespaces only,
// cluster-scoped ones all; except those a controller owns (ReplicaSets and
// Pods carry their Deployment's labels) and events.
func (c *Client) ListSelected(ctx context.Context, selector string, namespaces, kinds []string, concurrency int) ([]*unstructured.Unstructured, error) {
	// Listing every type trips deprecation warnings (Endpoints,
	// ComponentStatus) that say nothing about the user's objects.
	quiet := rest.CopyConfig(c.Config)
	quiet.WarningHandler = rest.NoWarnings{}
	dyn, err := dynamic.NewForConfig(quiet)
	if err != nil {
		return nil, err
	}
	lists, err := discovery.ToDiscoveryInterfaceWithContext(c.Discovery).ServerPreferredResourcesWithContext(ctx)
	if err != nil && len(lists) == 0 {
		return nil, err
	}
	var types []Target
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || !slices.Contains(r.Verbs, "list") || r.Name == "events" ||
				(kinds != nil && !slices.Contains(kinds, r.Kind)) {
				continue
			}
			mapping := &meta.RESTMapping{Resource: gv.WithResource(r.Name), GroupVersionKind: gv.WithKind(r.Kind), Scope: meta.RESTScopeRoot}
			if !r.Namespaced {
				types = append(types, Target{Mapping: mapping, Ref: Ref{APIVersion: gv.String(), Kind: r.Kind}})
				continue
			}
			mapping.Scope = meta.RESTScopeNamespace
			for _, ns := range namespaces {
				types = append(types, Target{Mapping: mapping, Ref: Ref{APIVersion: gv.String(), Kind: r.Kind, Namespace: ns}})
			}
		}
	}
	var mu sync.Mutex
	var out []*unstructured.Unstructured
	var firstErr error
	Parallel(ctx, len(types), concurrency, func(i int) {
		t := types[i]
		found, err := c.list(ctx, dyn, t, selector)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if !apierrors.IsForbidden(err) && !apierrors.IsNotFound(err) && !apierrors.IsMethodNotSupported(err) && firstErr == nil {
				firstErr = fmt.Errorf("listing %s: %w", t.Mapping.Resource, err)
			}
			return
		}
		for _, o := range found {
			if metav1.GetControllerOf(o) == nil {
				out = append(out, o)
			}
		}
	})
	return out, firstErr
}
