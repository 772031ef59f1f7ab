package fake

import (
	"context"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/openapi"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
)

// AddKind teaches the cluster a kind (apiVersion "group/version", or
// "version" for the core group) and its resource; statusSubresource: its
// status is the status subresource's, which an apply leaves alone. Call
// it before the cluster is used.
func (c *Cluster) AddKind(apiVersion, kind, resource string, namespaced, statusSubresource bool) {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		panic(err) // a test's typo
	}
	scope := meta.RESTScopeRoot
	if namespaced {
		scope = meta.RESTScopeNamespace
	}
	c.mapper.AddSpecific(gv.WithKind(kind), gv.WithResource(resource), gv.WithResource(strings.ToLower(kind)), scope)
	c.status[gv.WithResource(resource)] = statusSubresource
}

// Map maps a manifest with the fake's kinds, as kube.Client.Map does. A
// fault is the manifest's (an *kube.ObjectError) when it is one, else the
// cluster's: its discovery failed.
func (c *Cluster) Map(ctx context.Context, m kube.Manifest, defaultNS string, enforce bool) (kube.Target, error) {
	if err := c.call(Map, m.Ref); err != nil {
		return kube.Target{}, err
	}
	return c.client().Map(ctx, m, defaultNS, enforce)
}

// MapAll maps manifests with the fake's kinds, as kube.Client.MapAll does.
func (c *Cluster) MapAll(ms []kube.Manifest, defaultNS string) ([]kube.Target, error) {
	if err := c.call(MapAll, kube.Ref{}); err != nil {
		return nil, err
	}
	return c.client().MapAll(ms, defaultNS)
}

// client is a kube.Client that maps with the fake's kinds and reaches
// nothing.
func (c *Cluster) client() *kube.Client { return &kube.Client{Mapper: resettable{c.mapper}} }

type resettable struct{ meta.RESTMapper }

func (resettable) Reset() {}

// HasStatusSubresource says what AddKind was told; false for a resource
// it was not told of.
func (c *Cluster) HasStatusSubresource(gvr schema.GroupVersionResource) bool { return c.status[gvr] }

// OpenAPIV3 is Cluster.Schema.
func (c *Cluster) OpenAPIV3() openapi.Client { return c.Schema }

// LiveEach calls fn with each target's stored object (nil: none), one Read
// call per target, in order and one at a time.
func (c *Cluster) LiveEach(ctx context.Context, targets []kube.Target, _, _ int, fn func(t kube.Target, live *unstructured.Unstructured, err error)) {
	for _, t := range targets {
		if ctx.Err() != nil {
			return
		}
		if err := c.call(Read, t.Ref); err != nil {
			fn(t, nil, err)
			continue
		}
		fn(t, c.Get(t.Ref), nil)
	}
}

// ReadAdmission is the admission configuration of the stored webhook
// configurations, admission policies and bindings; a failed call is an
// admission configuration that could not be read.
func (c *Cluster) ReadAdmission(context.Context) *kube.Admission {
	if err := c.call(ReadAdmission, kube.Ref{}); err != nil {
		return kube.NewAdmission(nil, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var objs []*unstructured.Unstructured
	for _, o := range c.objects {
		if o.GroupVersionKind().Group == "admissionregistration.k8s.io" {
			objs = append(objs, o.DeepCopy())
		}
	}
	return kube.NewAdmission(objs, nil)
}

// NewAccess answers with Cluster.MayPatch, one CanPatch call per question.
func (c *Cluster) NewAccess() kube.PatchAccess { return access{c} }

type access struct{ c *Cluster }

func (a access) CanPatch(_ context.Context, gvr schema.GroupVersionResource, namespace, name string) (bool, string, error) {
	if err := a.c.call(CanPatch, kube.Ref{Namespace: namespace, Name: name}); err != nil {
		return false, "", err
	}
	if a.c.MayPatch == nil {
		return true, "", nil
	}
	ok, why := a.c.MayPatch(gvr, namespace, name)
	return ok, why, nil
}
