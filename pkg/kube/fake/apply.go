package fake

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
)

// The operations managedFields names.
const (
	opApply  = "Apply"
	opUpdate = "Update"
)

// ApplyAll applies each target in order as manager, forcing conflicts,
// stopping at the first failure.
func (c *Cluster) ApplyAll(_ context.Context, targets []kube.Target, manager string) error {
	for _, t := range targets {
		o, err := t.Object()
		if err != nil {
			return err
		}
		if err := c.call(Apply, t.Ref); err != nil {
			return &kube.ObjectError{Ref: t.Ref, Err: err}
		}
		if _, err := c.write(t, o, manager, opApply, true, false); err != nil {
			return &kube.ObjectError{Ref: t.Ref, Err: err}
		}
	}
	return nil
}

// Apply server-side applies o as manager: its fields merged over the
// stored object's, as the apiserver merges (without a schema: maps field by
// field, lists whole). With dryRun it is a DryRun call that stores nothing
// and returns the result; otherwise an Apply call.
func (c *Cluster) Apply(_ context.Context, t kube.Target, o *unstructured.Unstructured, manager string, force, dryRun bool) (*unstructured.Unstructured, error) {
	method := Apply
	if dryRun {
		method = DryRun
	}
	if err := c.call(method, t.Ref); err != nil {
		return nil, err
	}
	return c.write(t, o, manager, opApply, force, dryRun)
}

// ClaimSecret stores the Secret only if it is as read: readRV "" means it
// must not exist (a create); otherwise its resourceVersion must still be
// readRV (an apply).
func (c *Cluster) ClaimSecret(_ context.Context, t kube.Target, o *unstructured.Unstructured, readRV, manager string) error {
	if err := c.call(ClaimSecret, t.Ref); err != nil {
		return err
	}
	c.mu.Lock()
	old := c.objects[t.Ref]
	c.mu.Unlock()
	switch {
	case readRV == "" && old != nil, readRV != "" && (old == nil || old.GetResourceVersion() != readRV):
		return kube.ErrSecretChanged
	}
	op := opApply
	if readRV == "" {
		op = opUpdate // a create's fields are an update's
	}
	_, err := c.write(t, o, manager, op, true, false)
	return err
}

// write applies o to the target as manager, and stores the result unless
// dryRun; a Deployment stored rolls out (Cluster.Rollout).
func (c *Cluster) write(t kube.Target, o *unstructured.Unstructured, manager, op string, force, dryRun bool) (*unstructured.Unstructured, error) {
	if c.MayPatch != nil {
		if ok, why := c.MayPatch(t.Mapping.Resource, t.Ref.Namespace, t.Ref.Name); !ok {
			return nil, fmt.Errorf("forbidden: %s", why)
		}
	}
	cfg := o.DeepCopy()
	cfg.SetNamespace(t.Ref.Namespace) // as the request's path says
	for _, f := range []string{"managedFields", "resourceVersion", "uid", "creationTimestamp", "generation"} {
		unstructured.RemoveNestedField(cfg.Object, "metadata", f)
	}
	if c.HasStatusSubresource(t.Mapping.Resource) {
		delete(cfg.Object, "status") // the status subresource's, not the apply's
	}
	c.mu.Lock()
	if t.Namespaced() && !c.namespaceExists(t.Ref.Namespace) {
		c.mu.Unlock()
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, t.Ref.Namespace)
	}
	out, err := merged(c.objects[t.Ref], cfg, manager, op, force)
	if err != nil {
		c.mu.Unlock()
		return nil, err
	}
	if dryRun {
		c.mu.Unlock()
		return out, nil
	}
	if out.GetUID() == "" {
		c.uids++
		out.SetUID(types.UID("fake-uid-" + strconv.Itoa(c.uids)))
	}
	if t.Ref.Kind == "Deployment" {
		c.rollOut(out)
	}
	c.store(out)
	stored := out.DeepCopy()
	c.mu.Unlock()
	if c.OnApply != nil {
		c.OnApply(stored)
	}
	return stored, nil
}

// namespaceExists reports whether the namespace is stored, or an object in
// it is (a fixture Put without its Namespace: a real cluster would have it).
func (c *Cluster) namespaceExists(ns string) bool {
	if c.objects[kube.Ref{APIVersion: "v1", Kind: "Namespace", Name: ns}] != nil {
		return true
	}
	for ref := range c.objects {
		if ref.Namespace == ns {
			return true
		}
	}
	return false
}

// merged is what applying cfg as manager (op Apply, or Update for a
// create) makes of live (nil: absent): cfg's fields set over live's; the
// fields manager applied before and no longer applies removed, unless
// another manager has them; managedFields updated. A field another
// manager has with another value is a conflict, unless force takes it
// over. The generation moves when the spec changes.
func merged(live, cfg *unstructured.Unstructured, manager, op string, force bool) (*unstructured.Unstructured, error) {
	set := configFields(cfg.Object)
	mine := map[string]any{
		"manager": manager, "operation": op, "apiVersion": cfg.GetAPIVersion(),
		"fieldsType": "FieldsV1", "fieldsV1": set,
	}
	if live == nil {
		out := cfg.DeepCopy()
		out.SetGeneration(1)
		out.Object["metadata"].(map[string]any)["managedFields"] = []any{deepCopy(mine)}
		return out, nil
	}
	out := live.DeepCopy()
	entries, _, _ := unstructured.NestedSlice(out.Object, "metadata", "managedFields")
	var prev map[string]any
	var others []map[string]any
	for _, e := range entries {
		m, ok := e.(map[string]any)
		if !ok {
			continue
		}
		if m["manager"] == manager && m["operation"] == op && m["subresource"] == nil {
			prev, _ = m["fieldsV1"].(map[string]any)
			continue
		}
		others = append(others, m)
	}
	// changed are the fields cfg sets to another value than live has.
	var changed [][]string
	leaves(set, func(p []string) {
		lv, _ := valueAt(live.Object, p)
		if cv, _ := valueAt(cfg.Object, p); !sameJSON(lv, cv) {
			changed = append(changed, p)
		}
	})
	ownedByOthers := func(p []string) []string {
		var who []string
		for _, e := range others {
			if f, _ := e["fieldsV1"].(map[string]any); covers(f, p) {
				who = append(who, fmt.Sprint(e["manager"]))
			}
		}
		return who
	}
	if !force {
		var conflicts []string
		for _, p := range changed {
			for _, who := range ownedByOthers(p) {
				conflicts = append(conflicts, fmt.Sprintf("conflict with %q: %s", who, fieldPath(p)))
			}
		}
		if len(conflicts) > 0 {
			slices.Sort(conflicts)
			return nil, fmt.Errorf("conflict: Apply failed with %d conflicts: %s", len(conflicts), strings.Join(conflicts, ", "))
		}
	}
	leaves(prev, func(p []string) {
		if !covers(set, p) && len(ownedByOthers(p)) == 0 {
			removeAt(out.Object, p)
		}
	})
	mergeInto(out.Object, cfg.Object)
	if !reflect.DeepEqual(live.Object["spec"], out.Object["spec"]) {
		out.SetGeneration(live.GetGeneration() + 1)
	}
	kept := []any{}
	for _, e := range others {
		if f, _ := e["fieldsV1"].(map[string]any); f != nil {
			// A field set to another value is taken over (force); one
			// set to the value it has is shared.
			without(f, changed)
			if len(f) == 0 {
				continue
			}
		}
		kept = append(kept, e)
	}
	kept = append(kept, deepCopy(mine))
	out.Object["metadata"].(map[string]any)["managedFields"] = kept
	return out, nil
}
