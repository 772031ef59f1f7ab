package kube

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
)

// The generic object calls below serve code that knows the resources it
// handles by name (Flux's objects, CRDs), without a manifest to map.

func (c *Client) at(gvr schema.GroupVersionResource, ns string) dynamic.ResourceInterface {
	r := c.Dynamic.Resource(gvr)
	if ns != "" {
		return r.Namespace(ns)
	}
	return r
}

// GetObject reads one object; nil, nil when it does not exist (or its
// resource is not served).
func (c *Client) GetObject(ctx context.Context, gvr schema.GroupVersionResource, ns, name string) (*unstructured.Unstructured, error) {
	o, err := c.at(gvr, ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if refused(err) {
		return nil, c.authError(err, "read "+gvr.Resource+" "+name)
	}
	return o, c.explain(err)
}

// ListObjects lists every object of gvr in ns ("" every namespace), in
// pages.
func (c *Client) ListObjects(ctx context.Context, gvr schema.GroupVersionResource, ns string) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	opts := metav1.ListOptions{Limit: 500}
	for {
		l, err := c.at(gvr, ns).List(ctx, opts)
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if refused(err) {
			return nil, c.authError(err, "list "+gvr.Resource)
		}
		if err != nil {
			return nil, c.explain(err)
		}
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
		if opts.Continue = l.GetContinue(); opts.Continue == "" {
			return out, nil
		}
	}
}

// MergePatch sends a JSON merge patch to one object as manager.
func (c *Client) MergePatch(ctx context.Context, gvr schema.GroupVersionResource, ns, name string, patch []byte, manager string) error {
	_, err := c.at(gvr, ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: manager})
	if refused(err) {
		return c.authError(err, "patch "+gvr.Resource+" "+name)
	}
	return c.explain(err)
}

// ApplyObject server-side applies o as manager, taking over conflicting
// fields; dryRun stores nothing.
func (c *Client) ApplyObject(ctx context.Context, gvr schema.GroupVersionResource, o *unstructured.Unstructured, manager string, dryRun bool) (*unstructured.Unstructured, error) {
	opts := metav1.ApplyOptions{FieldManager: manager, Force: true}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	res, err := c.at(gvr, o.GetNamespace()).Apply(ctx, o.GetName(), o, opts)
	if refused(err) {
		return nil, c.authError(err, "apply "+gvr.Resource+" "+o.GetName())
	}
	return res, c.explain(err)
}

// DeleteObject deletes one object (in the background); one that does not
// exist is no error.
func (c *Client) DeleteObject(ctx context.Context, gvr schema.GroupVersionResource, ns, name string) error {
	bg := metav1.DeletePropagationBackground
	err := c.at(gvr, ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &bg})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if refused(err) {
		return c.authError(err, "delete "+gvr.Resource+" "+name)
	}
	return c.explain(err)
}
