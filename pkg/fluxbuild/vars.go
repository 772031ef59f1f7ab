package fluxbuild

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// varClient is the client fluxcd/pkg/kustomize's SubstituteVariables takes,
// over a VarSource. That function only ever calls Get, for a ConfigMap or a
// Secret (kustomize_varsub.go, LoadVariables); any other call would reach
// the nil embedded interface and panic, which a test would show at once.
// Each object is read once per Build, although SubstituteVariables loads
// the variables again for every object it substitutes.
type varClient struct {
	client.Client
	src VarSource

	mu    sync.Mutex
	cache map[varKey]varEntry
}

type varKey struct{ kind, namespace, name string }

type varEntry struct {
	strings map[string]string
	bytes   map[string][]byte
	found   bool
	err     error
}

func (c *varClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	var kind, resource string
	switch obj.(type) {
	case *corev1.ConfigMap:
		kind, resource = "ConfigMap", "configmaps"
	case *corev1.Secret:
		kind, resource = "Secret", "secrets"
	default:
		return fmt.Errorf("postBuild reads ConfigMaps and Secrets only, not %T", obj)
	}
	if c.src == nil {
		return errors.New("postBuild.substituteFrom needs the cluster, and none was given")
	}
	k := varKey{kind, key.Namespace, key.Name}
	c.mu.Lock()
	e, ok := c.cache[k]
	if !ok {
		if kind == "ConfigMap" {
			e.strings, e.found, e.err = c.src.ConfigMap(ctx, key.Namespace, key.Name)
		} else {
			e.bytes, e.found, e.err = c.src.Secret(ctx, key.Namespace, key.Name)
		}
		c.cache[k] = e
	}
	c.mu.Unlock()
	switch {
	case e.err != nil:
		return e.err
	case !e.found:
		// What the API server answers, so that optional: true is honoured.
		return apierrors.NewNotFound(schema.GroupResource{Resource: resource}, key.Name)
	}
	obj.SetNamespace(key.Namespace)
	obj.SetName(key.Name)
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		o.Data = maps.Clone(e.strings)
	case *corev1.Secret:
		o.Data = maps.Clone(e.bytes)
	}
	return nil
}
