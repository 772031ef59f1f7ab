package fake

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
)

// The generic object calls, as kube.Client's (GetObject and the rest): the
// fake answers them for the kinds it knows (AddKind).

func (c *Cluster) refFor(gvr schema.GroupVersionResource, ns, name string) (kube.Ref, bool) {
	gvk, err := c.mapper.KindFor(gvr)
	if err != nil {
		return kube.Ref{}, false
	}
	return kube.Ref{APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind, Namespace: ns, Name: name}, true
}

// GetObject returns a copy of the stored object; nil, nil when there is
// none or the kind is unknown.
func (c *Cluster) GetObject(_ context.Context, gvr schema.GroupVersionResource, ns, name string) (*unstructured.Unstructured, error) {
	ref, ok := c.refFor(gvr, ns, name)
	if err := c.call(GetObject, ref); err != nil || !ok {
		return nil, err
	}
	return c.Get(ref), nil
}

// ListObjects lists the stored objects of gvr in ns ("" all), sorted.
func (c *Cluster) ListObjects(_ context.Context, gvr schema.GroupVersionResource, ns string) ([]*unstructured.Unstructured, error) {
	ref, ok := c.refFor(gvr, ns, "")
	if err := c.call(ListObjects, ref); err != nil || !ok {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*unstructured.Unstructured
	for r, o := range c.objects {
		if r.APIVersion == ref.APIVersion && r.Kind == ref.Kind && (ns == "" || r.Namespace == ns) {
			out = append(out, o.DeepCopy())
		}
	}
	sort.Slice(out, func(i, j int) bool { return kube.RefOf(out[i]).Less(kube.RefOf(out[j])) })
	return out, nil
}

// MergePatch applies a JSON merge patch to the stored object.
func (c *Cluster) MergePatch(_ context.Context, gvr schema.GroupVersionResource, ns, name string, patch []byte, _ string) error {
	ref, ok := c.refFor(gvr, ns, name)
	if err := c.call(MergePatch, ref); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	o := c.objects[ref]
	if !ok || o == nil {
		return apierrors.NewNotFound(gvr.GroupResource(), name)
	}
	cur, err := json.Marshal(o.Object)
	if err != nil {
		return err
	}
	next, err := jsonpatch.MergePatch(cur, patch)
	if err != nil {
		return fmt.Errorf("merge patch: %w", err)
	}
	n := &unstructured.Unstructured{}
	if err := json.Unmarshal(next, &n.Object); err != nil {
		return err
	}
	c.store(n)
	return nil
}

// ApplyObject server-side applies o as manager, forcing conflicts.
func (c *Cluster) ApplyObject(ctx context.Context, gvr schema.GroupVersionResource, o *unstructured.Unstructured, manager string, dryRun bool) (*unstructured.Unstructured, error) {
	ref, ok := c.refFor(gvr, o.GetNamespace(), o.GetName())
	if err := c.call(ApplyObject, ref); err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("the server could not find the requested resource %s", gvr)
	}
	m, err := kube.FromObjects([]map[string]any{o.Object}, "apply")
	if err != nil {
		return nil, err
	}
	t, err := c.client().Map(ctx, m[0], o.GetNamespace(), false)
	if err != nil {
		return nil, err
	}
	return c.write(t, o, manager, opApply, true, dryRun)
}

// DeleteObject removes the stored object; a missing one is no error.
func (c *Cluster) DeleteObject(_ context.Context, gvr schema.GroupVersionResource, ns, name string) error {
	ref, _ := c.refFor(gvr, ns, name)
	if err := c.call(DeleteObject, ref); err != nil {
		return err
	}
	c.Remove(ref)
	return nil
}
