package diff

import (
	"encoding/json"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// keyedLive is a Deployment as the apiserver keeps it after an apply of
// ours and an injector's update: FieldsV1 with keyed list elements (k:),
// set elements (v:) and a list owned whole.
const keyedLive = `{
  "apiVersion": "apps/v1", "kind": "Deployment",
  "metadata": {
    "name": "web", "namespace": "default", "finalizers": ["example.com/keep", "example.com/other"],
    "managedFields": [
      {"manager": "kubectl-gitlab-agent", "operation": "Apply", "apiVersion": "apps/v1", "fieldsType": "FieldsV1", "fieldsV1": {
        "f:metadata": {"f:finalizers": {"v:\"example.com/keep\"": {}}},
        "f:spec": {"f:template": {"f:spec": {
          "f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:name": {}, "f:image": {},
            "f:ports": {"k:{\"containerPort\":8080,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}}}}},
          "f:tolerations": {}}}}}},
      {"manager": "injector", "operation": "Update", "apiVersion": "apps/v1", "fieldsType": "FieldsV1", "fieldsV1": {
        "f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"sidecar\"}": {".": {}, "f:name": {}, "f:image": {}}}}}}}}
    ]
  },
  "spec": {"replicas": 3, "template": {"spec": {
    "containers": [
      {"name": "web", "image": "web:1", "ports": [{"containerPort": 8080, "protocol": "TCP"}, {"containerPort": 9090, "protocol": "TCP"}]},
      {"name": "sidecar", "image": "side:1"}
    ],
    "tolerations": [{"key": "k", "operator": "Exists"}]
  }}}
}`

func fromJSON(t *testing.T, s string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON([]byte(s)); err != nil {
		t.Fatal(err)
	}
	return u
}

// TestExtractOwnedKeyedLists: the manager's part of the object, list
// elements found by their keys and values; an owned field that is gone
// makes it unreadable.
func TestExtractOwnedKeyedLists(t *testing.T) {
	live := fromJSON(t, keyedLive)
	owned, ok := extractOwned(live, manager)
	if !ok {
		t.Fatal("not extracted")
	}
	wantOwned := fromJSON(t, `{"apiVersion": "apps/v1", "kind": "Deployment",
	  "metadata": {"name": "web", "namespace": "default", "finalizers": ["example.com/keep"]},
	  "spec": {"template": {"spec": {
	    "containers": [{"name": "web", "image": "web:1", "ports": [{"containerPort": 8080, "protocol": "TCP"}]}],
	    "tolerations": [{"key": "k", "operator": "Exists"}]}}}}`)
	if !jsonEqual(owned, wantOwned.Object) {
		got, _ := json.Marshal(owned)
		t.Errorf("owned:\n%s", got)
	}
	if !unchangedByApply(live, wantOwned, manager, false) {
		t.Error("applying what the manager owns would change the object")
	}
	other := wantOwned.DeepCopy()
	unstructured.SetNestedField(other.Object, int64(2), "spec", "replicas")
	if unchangedByApply(live, other, manager, false) {
		t.Error("applying another field would change nothing")
	}

	gone := live.DeepCopy()
	unstructured.SetNestedSlice(gone.Object, []any{map[string]any{"name": "sidecar"}}, "spec", "template", "spec", "containers")
	if _, ok := extractOwned(gone, manager); ok {
		t.Error("extracted with an owned list element gone")
	}
	for _, bad := range []string{`{"f:items": {"i:x": {}}}`, `{"f:items": {"v:not json": {}}}`, `{"f:items": {"k:not json": {}}}`, `{"x:y": {}}`} {
		var fields map[string]any
		if err := json.Unmarshal([]byte(bad), &fields); err != nil {
			t.Fatal(err)
		}
		o := map[string]any{"spec": map[string]any{}, "items": []any{"a", map[string]any{"k": "v"}}}
		if _, ok := extractNode(o, fields); ok {
			t.Errorf("%s: extracted", bad)
		}
	}
	// i:N names a list element by its index.
	var byIndex map[string]any
	if err := json.Unmarshal([]byte(`{"f:items": {"i:1": {}}}`), &byIndex); err != nil {
		t.Fatal(err)
	}
	if got, ok := extractNode(map[string]any{"items": []any{"a", "b"}}, byIndex); !ok || !reflect.DeepEqual(got, map[string]any{"items": []any{"b"}}) {
		t.Errorf("by index: %v %v", got, ok)
	}
}

// TestIgnoreManagersInLists: an ignore rule's manager's list elements are
// left out of both sides, found by their keys.
func TestIgnoreManagersInLists(t *testing.T) {
	live := fromJSON(t, keyedLive)
	rules := []IgnoreRule{{Group: "apps", Kind: "Deployment", Managers: []string{"injector"}}}
	before := live.DeepCopy().Object
	after := live.DeepCopy().Object
	containers, _, _ := unstructured.NestedSlice(after, "spec", "template", "spec", "containers")
	containers[1].(map[string]any)["image"] = "side:2"
	unstructured.SetNestedSlice(after, containers, "spec", "template", "spec", "containers")
	dropManaged(rules, live, before, after)
	for _, side := range []map[string]any{before, after} {
		got, _, _ := unstructured.NestedSlice(side, "spec", "template", "spec", "containers")
		if len(got) != 2 || got[0].(map[string]any)["image"] != "web:1" || len(got[1].(map[string]any)) != 0 {
			t.Errorf("containers left: %v; want web's, and nothing of the injector's sidecar", got)
		}
	}
	if p := changedPaths(before, after); len(p) != 0 {
		t.Errorf("changes left: %v", p)
	}
}
