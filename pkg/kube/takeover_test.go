package kube

import (
	"encoding/json"
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func entry(manager string, op metav1.ManagedFieldsOperationType, subresource, fields string) metav1.ManagedFieldsEntry {
	return metav1.ManagedFieldsEntry{Manager: manager, Operation: op, Subresource: subresource, APIVersion: "apps/v1",
		FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(fields)}}
}

// fieldsOf decodes an entry's fields, for comparing them as data.
func fieldsOf(t *testing.T, e metav1.ManagedFieldsEntry) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(e.FieldsV1.Raw, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestTakeOverFields: after an apply over Helm's objects, the fields both
// set are ours alone; Helm keeps what only it set (its chart label), and
// an entry of Helm's left with nothing is gone. Other managers and the
// status subresource's entries are untouched.
func TestTakeOverFields(t *testing.T) {
	const (
		ours       = `{"f:metadata":{"f:labels":{"f:app":{},"f:managed-by":{}}},"f:spec":{"f:replicas":{},"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"agentk\"}":{".":{},"f:image":{},"f:name":{}}}}}}}`
		helmApply  = `{"f:metadata":{"f:labels":{"f:app":{},"f:helm.sh/chart":{}}},"f:spec":{"f:replicas":{},"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"agentk\"}":{".":{},"f:image":{},"f:name":{}}}}}}}`
		helmLeft   = `{"f:metadata":{"f:labels":{"f:helm.sh/chart":{}}}}`
		helmUpdate = `{"f:spec":{"f:replicas":{}}}`
		status     = `{"f:status":{"f:replicas":{}}}`
		scaler     = `{"f:spec":{"f:replicas":{}}}`
	)
	apply, update := metav1.ManagedFieldsOperationApply, metav1.ManagedFieldsOperationUpdate
	for _, tc := range []struct {
		name    string
		in      []metav1.ManagedFieldsEntry
		want    []metav1.ManagedFieldsEntry
		changed bool
	}{
		{"Helm 4 applied", []metav1.ManagedFieldsEntry{entry("helm", apply, "", helmApply), entry(FieldManager, apply, "", ours), entry("helm", update, "status", status)},
			[]metav1.ManagedFieldsEntry{entry("helm", apply, "", helmLeft), entry(FieldManager, apply, "", ours), entry("helm", update, "status", status)}, true},
		{"Helm 3 updated", []metav1.ManagedFieldsEntry{entry("helm", update, "", helmUpdate), entry("hpa", update, "", scaler), entry(FieldManager, apply, "", ours)},
			[]metav1.ManagedFieldsEntry{entry("hpa", update, "", scaler), entry(FieldManager, apply, "", ours)}, true},
		{"nothing shared", []metav1.ManagedFieldsEntry{entry("helm", apply, "", helmLeft), entry(FieldManager, apply, "", ours)},
			[]metav1.ManagedFieldsEntry{entry("helm", apply, "", helmLeft), entry(FieldManager, apply, "", ours)}, false},
		{"not applied by us", []metav1.ManagedFieldsEntry{entry("helm", apply, "", helmApply)},
			[]metav1.ManagedFieldsEntry{entry("helm", apply, "", helmApply)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, changed, err := TakeOverFields(tc.in, "helm", FieldManager)
			if err != nil || changed != tc.changed {
				t.Fatalf("changed %v, err %v; want changed %v", changed, err, tc.changed)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d entries, want %d: %+v", len(got), len(tc.want), got)
			}
			for i := range got {
				g, w := got[i], tc.want[i]
				if g.Manager != w.Manager || g.Operation != w.Operation || g.Subresource != w.Subresource || !reflect.DeepEqual(fieldsOf(t, g), fieldsOf(t, w)) {
					t.Errorf("entry %d: %s %s %s %s, want %s %s %s %s", i, g.Manager, g.Operation, g.Subresource, g.FieldsV1.Raw, w.Manager, w.Operation, w.Subresource, w.FieldsV1.Raw)
				}
			}
		})
	}
}
