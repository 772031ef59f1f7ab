package kube

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func admissionObject(kind, name string, body map[string]any) *unstructured.Unstructured {
	o := &unstructured.Unstructured{Object: body}
	o.SetAPIVersion("admissionregistration.k8s.io/v1")
	o.SetKind(kind)
	o.SetName(name)
	return o
}

// TestNewAdmission: webhooks' rules count, policies' only with a binding;
// scope, groups and resources are matched; an unreadable configuration
// matches everything.
func TestNewAdmission(t *testing.T) {
	rule := func(resource, scope string) map[string]any {
		return map[string]any{"operations": []any{"UPDATE"}, "apiGroups": []any{"apps"}, "apiVersions": []any{"*"}, "resources": []any{resource}, "scope": scope}
	}
	objs := []*unstructured.Unstructured{
		admissionObject("ValidatingWebhookConfiguration", "deploys", map[string]any{"webhooks": []any{map[string]any{"rules": []any{rule("deployments", "Namespaced")}}}}),
		admissionObject("ValidatingAdmissionPolicy", "unbound", map[string]any{"spec": map[string]any{"matchConstraints": map[string]any{"resourceRules": []any{rule("statefulsets", "*")}}}}),
		admissionObject("MutatingAdmissionPolicy", "bound", map[string]any{"spec": map[string]any{"matchConstraints": map[string]any{"resourceRules": []any{rule("daemonsets", "*")}}}}),
		admissionObject("MutatingAdmissionPolicyBinding", "b", map[string]any{"spec": map[string]any{"policyName": "bound"}}),
		// Not admission's: left out.
		{Object: map[string]any{"apiVersion": "v1", "kind": "ValidatingWebhookConfiguration", "metadata": map[string]any{"name": "impostor"},
			"webhooks": []any{map[string]any{"rules": []any{rule("replicasets", "*")}}}}},
	}
	a := NewAdmission(objs, nil)
	apps := func(r string) schema.GroupVersionResource {
		return schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: r}
	}
	for _, c := range []struct {
		op, resource string
		namespaced   bool
		want         string
	}{
		{"UPDATE", "deployments", true, "ValidatingWebhookConfiguration deploys"},
		{"UPDATE", "deployments", false, ""},
		{"CREATE", "deployments", true, ""},
		{"UPDATE", "statefulsets", true, ""},
		{"UPDATE", "daemonsets", true, "MutatingAdmissionPolicy bound"},
		{"UPDATE", "replicasets", true, ""},
	} {
		if got := a.MayMatch(c.op, apps(c.resource), c.namespaced); got != c.want {
			t.Errorf("%s %s (namespaced %v): %q, want %q", c.op, c.resource, c.namespaced, got, c.want)
		}
	}
	if a.Unknown() != nil {
		t.Errorf("unknown: %v", a.Unknown())
	}
	u := NewAdmission(objs, errors.New("listing validatingwebhookconfigurations: forbidden"))
	if got := u.MayMatch("UPDATE", apps("replicasets"), true); !strings.Contains(got, "could not be read (listing validatingwebhookconfigurations: forbidden)") || u.Unknown() == nil {
		t.Errorf("unreadable: %q, %v", got, u.Unknown())
	}
}
