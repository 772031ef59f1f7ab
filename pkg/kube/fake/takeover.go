package fake

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
)

// TakeOver is the method name of Cluster.TakeOver, for Calls and Fail.
const TakeOver = "TakeOver"

// TakeOver makes manager the only owner of the fields it applied that from
// shares, as kube.Client.TakeOver does (kube.TakeOverFields); the object is
// stored again, as the patch would.
func (c *Cluster) TakeOver(_ context.Context, t kube.Target, from, manager string) error {
	if err := c.call(TakeOver, t.Ref); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	o := c.objects[t.Ref]
	if o == nil {
		return apierrors.NewNotFound(schema.GroupResource{Resource: t.Mapping.Resource.Resource}, t.Ref.Name)
	}
	entries, changed, err := kube.TakeOverFields(o.GetManagedFields(), from, manager)
	if err != nil || !changed {
		return err
	}
	o = o.DeepCopy()
	o.SetManagedFields(entries)
	c.store(o)
	return nil
}
