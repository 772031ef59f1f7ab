package diff

import (
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Policy is a GitOps controller's rules that the differ applies on top of
// the server-side apply's: the objects it leaves alone and the live ones it
// keeps rather than prunes. Both answers are made from values alone (no
// request); "" means the controller acts as the apply would.
type Policy interface {
	// Skip says why the controller would leave desired alone (shown as
	// Skipped, never compared); live is the object in the cluster, nil when
	// there is none (or it cannot be read: its kind is not served yet).
	Skip(desired, live *unstructured.Unstructured) string
	// Keep says why the controller would not prune live, an object it
	// applied that the manifests no longer hold.
	Keep(live *unstructured.Unstructured) string
}

// FluxFieldManager is kustomize-controller's field manager: with Force, a
// diff predicts its apply (fluxcd/kustomize-controller main.go
// controllerName; ForceOwnership in its apply and in flux diff).
const FluxFieldManager = "kustomize-controller"

// The per-object keys of kustomize-controller, as annotations or labels
// (kustomize.toolkit.fluxcd.io/v1 docs, "Controlling the apply behavior").
const (
	fluxSSA       = "kustomize.toolkit.fluxcd.io/ssa"
	fluxReconcile = "kustomize.toolkit.fluxcd.io/reconcile"
	fluxPrune     = "kustomize.toolkit.fluxcd.io/prune"
	fluxName      = "kustomize.toolkit.fluxcd.io/name"
	fluxNamespace = "kustomize.toolkit.fluxcd.io/namespace"
)

// FluxPolicy is kustomize-controller's rules for one Kustomization, as its
// apply and prune options give them to fluxcd/pkg/ssa (ExclusionSelector,
// IfNotPresentSelector; DeleteOptions Inclusions and Exclusions):
//   - skipped: an object whose manifest or live object has ssa: Ignore or
//     reconcile: disabled; one whose manifest has ssa: IfNotPresent when it
//     exists (it is only created);
//   - kept, not pruned: a live object with prune: disabled or reconcile:
//     disabled, or without the Kustomization's owner labels (when Name is
//     set).
//
// Keys are matched in labels and annotations, values without regard to
// case, as ssa's AnyInMetadata does. The field manager and forced ownership
// are Options.Manager (FluxFieldManager) and Options.Force; the inventory
// entries the build no longer holds, when spec.prune is true, are
// Options.PruneRefs.
type FluxPolicy struct {
	// Name and Namespace are the Kustomization's. The controller prunes
	// only objects labelled kustomize.toolkit.fluxcd.io/name and /namespace
	// with them; "": that is not checked.
	Name, Namespace string
}

// Skip implements Policy.
func (p FluxPolicy) Skip(desired, live *unstructured.Unstructured) string {
	for _, side := range []struct {
		o     *unstructured.Unstructured
		where string
	}{{desired, "the manifest"}, {live, "the live object"}} {
		if side.o == nil {
			continue
		}
		if kind := inMetadata(side.o, fluxSSA, "Ignore"); kind != "" {
			return kind + " " + fluxSSA + ": Ignore on " + side.where
		}
		if kind := inMetadata(side.o, fluxReconcile, "disabled"); kind != "" {
			return kind + " " + fluxReconcile + ": disabled on " + side.where
		}
	}
	if live != nil && desired != nil {
		if kind := inMetadata(desired, fluxSSA, "IfNotPresent"); kind != "" {
			return kind + " " + fluxSSA + ": IfNotPresent on the manifest, and the object exists"
		}
	}
	return ""
}

// Keep implements Policy.
func (p FluxPolicy) Keep(live *unstructured.Unstructured) string {
	if p.Name != "" {
		l := live.GetLabels()
		if l[fluxName] != p.Name || l[fluxNamespace] != p.Namespace {
			return "not labelled " + fluxName + "=" + p.Name + ", " + fluxNamespace + "=" + p.Namespace
		}
	}
	for _, key := range []string{fluxPrune, fluxReconcile} {
		if kind := inMetadata(live, key, "disabled"); kind != "" {
			return kind + " " + key + ": disabled"
		}
	}
	return ""
}

// inMetadata says where o carries key with value (any case): "annotation",
// "label", or "" nowhere. An empty value matches nothing.
func inMetadata(o *unstructured.Unstructured, key, value string) string {
	if v := o.GetAnnotations()[key]; v != "" && strings.EqualFold(v, value) {
		return "annotation"
	}
	if v := o.GetLabels()[key]; v != "" && strings.EqualFold(v, value) {
		return "label"
	}
	return ""
}
