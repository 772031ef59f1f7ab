package kube

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
)

// TakeOverFields is entries (an object's managedFields) with the fields
// that manager's apply sets taken away from manager from: a server-side
// apply takes over the fields it sets to another value, but shares those it
// sets to the value they have, so after an apply over another tool's
// objects (an install adopting a Helm release) that tool still co-owns most
// of them, and a field manager drops later stays. The fields only from has
// stay its own; an entry of from left with none is removed. changed says
// whether entries changed. Subresources' entries are left alone.
func TakeOverFields(entries []metav1.ManagedFieldsEntry, from, manager string) (out []metav1.ManagedFieldsEntry, changed bool, err error) {
	var ours *fieldpath.Set
	for _, e := range entries {
		if e.Manager == manager && e.Operation == metav1.ManagedFieldsOperationApply && e.Subresource == "" {
			if ours, err = fieldSet(e); err != nil {
				return nil, false, err
			}
		}
	}
	if ours == nil {
		return entries, false, nil
	}
	for _, e := range entries {
		if e.Manager != from || e.Subresource != "" {
			out = append(out, e)
			continue
		}
		theirs, err := fieldSet(e)
		if err != nil {
			return nil, false, err
		}
		left := theirs.Difference(ours)
		if left.Equals(theirs) {
			out = append(out, e)
			continue
		}
		changed = true
		if left.Empty() {
			continue
		}
		raw, err := left.ToJSON()
		if err != nil {
			return nil, false, err
		}
		e.FieldsV1 = &metav1.FieldsV1{Raw: raw}
		out = append(out, e)
	}
	return out, changed, nil
}

func fieldSet(e metav1.ManagedFieldsEntry) (*fieldpath.Set, error) {
	s := &fieldpath.Set{}
	if e.FieldsV1 == nil {
		return s, nil
	}
	if err := s.FromJSON(bytes.NewReader(e.FieldsV1.Raw)); err != nil {
		return nil, fmt.Errorf("reading the fields of manager %q: %w", e.Manager, err)
	}
	return s, nil
}

// TakeOver makes manager the only owner of the fields of t's object that it
// applied and that manager from shares (TakeOverFields), with a JSON patch of
// managedFields guarded by the resourceVersion read, as kubectl's migration
// from client-side apply sends (client-go's csaupgrade); the object's
// content is not changed. A write in between (a controller's status) is
// met by reading again, a few times.
func (c *Client) TakeOver(ctx context.Context, t Target, from, manager string) error {
	for attempt := 0; ; attempt++ {
		live, err := c.resource(t).Get(ctx, t.Ref.Name, metav1.GetOptions{})
		if err != nil {
			return explain(err)
		}
		// manager's own entry stays, so the list is never empty (which
		// the server would take as "keep them").
		entries, changed, err := TakeOverFields(live.GetManagedFields(), from, manager)
		if err != nil || !changed {
			return err
		}
		patch, err := json.Marshal([]map[string]any{
			{"op": "replace", "path": "/metadata/managedFields", "value": entries},
			// A replace, not a test, so that a write in between is a 409.
			{"op": "replace", "path": "/metadata/resourceVersion", "value": live.GetResourceVersion()},
		})
		if err != nil {
			return err
		}
		_, err = c.resource(t).Patch(ctx, t.Ref.Name, types.JSONPatchType, patch, metav1.PatchOptions{})
		if apierrors.IsConflict(err) && attempt < 4 {
			continue
		}
		return explain(err)
	}
}
