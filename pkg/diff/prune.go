package diff

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
)

// prune is the last phase: the live objects that the manifests (seen) no
// longer hold and that applying would delete, from Options.PruneSelector.
func (r *run) prune(ctx context.Context, targets []kube.Target, seen map[kube.Ref]string) error {
	if r.o.PruneSelector == "" {
		return nil
	}
	return r.pruneSelected(ctx, targets, seen)
}

// pruneSelected prunes what PruneSelector lists, like kubectl apply
// --prune: namespaced objects only in the namespaces the manifests use
// (none: cluster-scoped ones only).
func (r *run) pruneSelected(ctx context.Context, targets []kube.Target, seen map[kube.Ref]string) error {
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

// pruned is the outcome for a live object applying would delete.
func (d decider) pruned(ref kube.Ref, live *unstructured.Unstructured) Object {
	before := d.n.normalize(live, string(live.GetUID()))
	return Object{Ref: ref, Action: Pruned, Before: toYAML(before), ChangedPaths: []string{"."}}
}
