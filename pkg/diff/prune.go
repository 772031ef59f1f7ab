package diff

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
)

// prune is the last phase: the live objects that the manifests (seen) no
// longer hold and that applying would delete, from Options.PruneSelector
// and Options.PruneRefs.
func (r *run) prune(ctx context.Context, targets []kube.Target, seen map[kube.Ref]string) error {
	var listed map[kube.Ref]bool // what the selector listed, for PruneRefs
	if len(r.o.PruneRefs) > 0 {
		listed = map[kube.Ref]bool{}
	}
	if r.o.PruneSelector != "" {
		if err := r.pruneSelected(ctx, targets, seen, listed); err != nil {
			return err
		}
	}
	if len(r.o.PruneRefs) > 0 {
		return r.pruneRefs(ctx, seen, listed)
	}
	return nil
}

// pruneSelected prunes what PruneSelector lists, like kubectl apply
// --prune: namespaced objects only in the namespaces the manifests use
// (none: cluster-scoped ones only). listed (when not nil) gets each one.
func (r *run) pruneSelected(ctx context.Context, targets []kube.Target, seen map[kube.Ref]string, listed map[kube.Ref]bool) error {
	nsSet := map[string]bool{}
	for _, t := range targets {
		if t.Namespaced() {
			nsSet[t.Ref.Namespace] = true
		}
	}
	pruned, err := r.c.ListSelected(ctx, r.o.PruneSelector, slices.Sorted(maps.Keys(nsSet)), nil, r.o.Concurrency)
	if ctx.Err() != nil {
		return r.stopped(ctx)
	}
	if err != nil {
		return fmt.Errorf("listing objects to prune: %w", err)
	}
	// The Endpoints of a Service (made by the endpoints controller with
	// the Service's labels and no owner) come and go with it.
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
		if listed != nil {
			listed[ref.Object()] = true
		}
		if _, kept := seen[ref.Object()]; kept {
			continue
		}
		if r.o.PruneOnly != nil && !r.o.PruneOnly(ref.Namespace, ref.Name) {
			continue
		}
		if svc := ref.Object(); svc.APIVersion == "" && svc.Kind == "Endpoints" {
			if svc.Kind = "Service"; services[svc] {
				continue
			}
		}
		r.add(r.d.pruned(ref, p))
	}
	return nil
}

// pruneRefs reads the objects PruneRefs names that the manifests do not
// hold and PruneSelector did not list, and prunes those that exist. A kind
// the cluster has not is no object to prune; an object that cannot be read
// is that object's error.
func (r *run) pruneRefs(ctx context.Context, seen map[kube.Ref]string, listed map[kube.Ref]bool) error {
	var targets []kube.Target
	for _, ref := range r.o.PruneRefs {
		if _, kept := seen[ref.Object()]; kept || listed[ref.Object()] {
			continue
		}
		listed[ref.Object()] = true
		meta := map[string]any{"name": ref.Name}
		if ref.Namespace != "" {
			meta["namespace"] = ref.Namespace
		}
		ms, err := kube.FromObjects([]map[string]any{{"apiVersion": ref.APIVersion, "kind": ref.Kind, "metadata": meta}}, "prune "+ref.String())
		if err != nil {
			return err
		}
		t, err := r.c.Map(ctx, ms[0], "", false)
		var oe *kube.ObjectError
		switch {
		case ctx.Err() != nil:
			return r.stopped(ctx)
		case errors.As(err, &oe):
			continue
		case err != nil:
			return fmt.Errorf("reading objects to prune: %w", err)
		case t.Namespaced() && t.Ref.Namespace == "":
			continue // a namespaced object needs its namespace to be read
		}
		targets = append(targets, t)
	}
	// What every read would meet ends the reads, as in fetchLive.
	readCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var ending error
	var once sync.Once
	r.c.LiveEach(readCtx, targets, 4, r.o.Concurrency, func(t kube.Target, live *unstructured.Unstructured, err error) {
		switch {
		case readCtx.Err() != nil:
		case err != nil && endsRun(err):
			once.Do(func() { ending = err })
			cancel()
		case err != nil:
			r.add(Object{Ref: t.Ref, Action: Failed, Error: "reading the live object: " + objectMessage(err)})
		case live != nil:
			r.add(r.d.pruned(t.Ref, live))
		}
	})
	if ctx.Err() != nil {
		return r.stopped(ctx)
	}
	if ending != nil {
		return fmt.Errorf("reading objects to prune: %w", ending)
	}
	return nil
}

// pruned is the outcome for a live object applying would delete, unless
// the policy keeps it.
func (d decider) pruned(ref kube.Ref, live *unstructured.Unstructured) Object {
	if d.policy != nil {
		if why := d.policy.Keep(live); why != "" {
			return skipped(ref, "", "not pruned: "+why)
		}
	}
	before := d.n.normalize(live, string(live.GetUID()))
	return Object{Ref: ref, Action: Pruned, Before: toYAML(before), ChangedPaths: []string{"."}}
}
