package diff

import (
	"reflect"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestIgnoreFile(t *testing.T) {
	rules, err := ParseIgnoreFile("ignore.yaml", []byte(`
- group: apps
  kind: Deployment
  jsonPointers: [/spec/replicas, /spec/template/spec/containers/0/image, /metadata/annotations/example.com~1note]
- kind: ConfigMap
  name: generated
  namespace: prod
  managedFieldsManagers: [generator]
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 4 {
		t.Fatalf("%d rules: %+v", len(rules), rules)
	}
	d := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web", "annotations": map[string]any{"example.com/note": "x", "keep": "y"}},
		"spec": map[string]any{"replicas": int64(3), "template": map[string]any{"spec": map[string]any{
			"containers": []any{map[string]any{"name": "a", "image": "a:1"}, map[string]any{"name": "b", "image": "b:1"}}}}},
	}}
	got := normalizer{ignore: rules}.normalize(d, "s")
	want := map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web", "annotations": map[string]any{"keep": "y"}},
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
			"containers": []any{map[string]any{"name": "a"}, map[string]any{"name": "b", "image": "b:1"}}}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("normalised:\n%v\nwant\n%v", got, want)
	}
	// The same rules do not touch another kind or another group.
	other := d.DeepCopy()
	other.SetAPIVersion("example.com/v1")
	if got := (normalizer{ignore: rules}).normalize(other, "s"); got["spec"].(map[string]any)["replicas"] != int64(3) {
		t.Error("a rule for group apps applied to example.com")
	}

	for _, bad := range []string{"- kind: X\n", "- kind: X\n  jsonPointers: [spec/replicas]\n", "kind: X\n", "- kind: X\n  jsonPointer: [/a]\n"} {
		if _, err := ParseIgnoreFile("f", []byte(bad)); err == nil || !strings.HasPrefix(err.Error(), "f") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestIgnoreManagedFields(t *testing.T) {
	rules, err := ParseIgnoreFile("f", []byte("- kind: Deployment\n  managedFieldsManagers: [hpa]\n"))
	if err != nil {
		t.Fatal(err)
	}
	live := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": "web"}}}
	live.SetManagedFields([]metav1.ManagedFieldsEntry{
		{Manager: "hpa", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "apps/v1", FieldsType: "FieldsV1",
			FieldsV1: metav1.NewFieldsV1(`{"f:spec":{"f:replicas":{}},"f:metadata":{"f:labels":{"f:scaled":{}}}}`)},
		{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply, APIVersion: "apps/v1", FieldsType: "FieldsV1",
			FieldsV1: metav1.NewFieldsV1(`{"f:spec":{"f:paused":{}}}`)},
	})
	before := map[string]any{"metadata": map[string]any{"labels": map[string]any{"scaled": "yes", "app": "web"}}, "spec": map[string]any{"replicas": int64(5), "paused": false}}
	after := map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": "web"}}, "spec": map[string]any{"replicas": int64(2), "paused": true}}
	dropManaged(rules, live, before, after)
	if !reflect.DeepEqual(changedPaths(before, after), []string{".spec.paused"}) {
		t.Errorf("changes left: %v (before %v, after %v)", changedPaths(before, after), before, after)
	}
}

func TestChangesCarryMaskedValues(t *testing.T) {
	s := func(v string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "s"},
			"data": map[string]any{"token": v}}}
	}
	n := normalizer{}
	ch := changes(n.normalize(s("YQ=="), "salt"), n.normalize(s("Yg=="), "salt"))
	if len(ch) != 1 || ch[0].Path != ".data.token" {
		t.Fatalf("%+v", ch)
	}
	if o, nv := ch[0].Old.(string), ch[0].New.(string); !strings.HasPrefix(o, "<secret sha256:") || !strings.HasPrefix(nv, "<secret sha256:") || o == nv {
		t.Errorf("secret values not masked, or not told apart: %q %q", o, nv)
	}
}
