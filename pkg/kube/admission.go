package kube

import (
	"context"
	"fmt"
	"slices"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/memo"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// Admission is what the cluster's admission configuration may do to a
// write: the rules of its mutating and validating webhooks, and of its
// mutating and validating admission policies that have a binding. A write
// that no rule matches is admitted as it is; any other may be changed or
// refused, and only the server can say.
type Admission struct {
	rules []admissionRule
	// unknown: the configuration could not be read (not allowed to list
	// it): every write may be matched.
	unknown error
}

// admissionRule is one rule of a webhook or policy: the operations, groups,
// versions and resources it matches, and its scope.
type admissionRule struct {
	source                                  string
	operations, groups, versions, resources []string
	scope                                   string
}

// admissionKinds are the admission objects read, in the group
// admissionregistration.k8s.io; the policies count only with a binding.
var admissionKinds = []struct {
	kind, binding string
	webhook       bool
}{
	{kind: "MutatingWebhookConfiguration", webhook: true},
	{kind: "ValidatingWebhookConfiguration", webhook: true},
	{kind: "MutatingAdmissionPolicy", binding: "MutatingAdmissionPolicyBinding"},
	{kind: "ValidatingAdmissionPolicy", binding: "ValidatingAdmissionPolicyBinding"},
}

// ReadAdmission lists the cluster's webhooks and admission policies once.
// Kinds the server does not serve are skipped; a list it refuses makes the
// answer "unknown", so that every write is sent to the server.
func (c *Client) ReadAdmission(ctx context.Context) *Admission {
	var objs []*unstructured.Unstructured
	for _, kind := range admissionListed() {
		m, err := meta.ToRESTMapperWithContext(c.Mapper).RESTMappingWithContext(ctx, schema.GroupKind{Group: admissionGroup, Kind: kind})
		if meta.IsNoMatchError(err) {
			continue
		}
		if err != nil {
			return NewAdmission(nil, fmt.Errorf("finding %s: %w", kind, err))
		}
		l, err := c.Dynamic.Resource(m.Resource).List(ctx, metav1.ListOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return NewAdmission(nil, fmt.Errorf("listing %s: %w", m.Resource.Resource, c.explain(err)))
		}
		for i := range l.Items {
			item := &l.Items[i]
			item.SetGroupVersionKind(m.GroupVersionKind) // a list's items may leave it out
			objs = append(objs, item)
		}
	}
	return NewAdmission(objs, nil)
}

const admissionGroup = "admissionregistration.k8s.io"

// admissionListed are the kinds ReadAdmission lists: admissionKinds and
// the policies' bindings.
func admissionListed() []string {
	var kinds []string
	for _, k := range admissionKinds {
		kinds = append(kinds, k.kind)
		if k.binding != "" {
			kinds = append(kinds, k.binding)
		}
	}
	return kinds
}

// NewAdmission is the admission configuration that objs hold: webhook
// configurations, admission policies and their bindings (objects of other
// kinds are left out). unknown, when not nil, is why the configuration
// could not be read: then every write may be matched.
func NewAdmission(objs []*unstructured.Unstructured, unknown error) *Admission {
	a := &Admission{unknown: unknown}
	if unknown != nil {
		return a
	}
	ofKind := func(kind string) []*unstructured.Unstructured {
		var out []*unstructured.Unstructured
		for _, o := range objs {
			if o.GetKind() == kind && o.GroupVersionKind().Group == admissionGroup {
				out = append(out, o)
			}
		}
		return out
	}
	for _, k := range admissionKinds {
		bound := map[string]bool{}
		for _, b := range ofKind(k.binding) {
			name, _, _ := unstructured.NestedString(b.Object, "spec", "policyName")
			bound[name] = true
		}
		for _, item := range ofKind(k.kind) {
			source := k.kind + " " + item.GetName()
			if k.webhook {
				hooks, _, _ := unstructured.NestedSlice(item.Object, "webhooks")
				for _, h := range hooks {
					hm, _ := h.(map[string]any)
					a.addRules(source, hm["rules"])
				}
				continue
			}
			if !bound[item.GetName()] {
				continue // a policy without a binding is not enforced
			}
			rules, _, _ := unstructured.NestedSlice(item.Object, "spec", "matchConstraints", "resourceRules")
			a.addRules(source, rules)
		}
	}
	return a
}

func (a *Admission) addRules(source string, rules any) {
	list, _ := rules.([]any)
	for _, r := range list {
		m, _ := r.(map[string]any)
		strs := func(k string) []string {
			v, _, _ := unstructured.NestedStringSlice(m, k)
			return v
		}
		scope, _, _ := unstructured.NestedString(m, "scope")
		a.rules = append(a.rules, admissionRule{
			source: source, operations: strs("operations"), groups: strs("apiGroups"),
			versions: strs("apiVersions"), resources: strs("resources"), scope: scope,
		})
	}
}

// Unknown is why the configuration could not be read, nil when it was.
func (a *Admission) Unknown() error {
	if a == nil {
		return nil
	}
	return a.unknown
}

// MayMatch says which webhook or policy may act on an operation (CREATE,
// UPDATE) on the resource, "" when none may. Namespace and object selectors
// and match conditions are not evaluated: a rule that names the resource is
// enough to ask the server.
func (a *Admission) MayMatch(op string, gvr schema.GroupVersionResource, namespaced bool) string {
	if a == nil {
		return ""
	}
	if a.unknown != nil {
		return "the admission configuration, which could not be read (" + a.unknown.Error() + ")"
	}
	for _, r := range a.rules {
		if matchAny(r.operations, op) && matchAny(r.groups, gvr.Group) && matchAny(r.versions, gvr.Version) &&
			matchResource(r.resources, gvr.Resource) && matchScope(r.scope, namespaced) {
			return r.source
		}
	}
	return ""
}

func matchAny(list []string, v string) bool {
	return slices.Contains(list, "*") || slices.Contains(list, v)
}

// matchResource: "*" is every resource, "*/*" every resource and
// subresource; "name/..." forms name subresources only.
func matchResource(list []string, resource string) bool {
	return slices.Contains(list, "*") || slices.Contains(list, "*/*") || slices.Contains(list, resource)
}

func matchScope(scope string, namespaced bool) bool {
	switch scope {
	case "Namespaced":
		return namespaced
	case "Cluster":
		return !namespaced
	}
	return true
}

// PatchAccess says whether the user may patch (server-side apply) an
// object; when not, why, in the words the apiserver would use. An error
// means it could not be told.
type PatchAccess interface {
	CanPatch(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string) (bool, string, error)
}

// Access answers whether the user may patch (server-side apply) objects,
// with one SelfSubjectAccessReview per resource and namespace, and one per
// object only where the resource and namespace as a whole are refused
// (RBAC rules can name objects).
type Access struct {
	client dynamic.Interface
	seen   memo.Map[accessKey, accessAnswer]
}

type accessKey struct {
	gvr       schema.GroupVersionResource
	namespace string
	name      string
}

type accessAnswer struct {
	allowed bool
	reason  string
}

// NewAccess asks the cluster behind c (an Access), each question once.
func (c *Client) NewAccess() PatchAccess {
	return &Access{client: c.Dynamic}
}

var selfSubjectAccessReviews = schema.GroupVersionResource{Group: "authorization.k8s.io", Version: "v1", Resource: "selfsubjectaccessreviews"}

// CanPatch says whether the user may patch the object; when not, why, in
// the words the apiserver would use.
func (a *Access) CanPatch(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string) (bool, string, error) {
	ok, _, err := a.ask(ctx, accessKey{gvr, namespace, ""})
	if err != nil || ok {
		return ok, "", err
	}
	ok, reason, err := a.ask(ctx, accessKey{gvr, namespace, name})
	if err != nil || ok {
		return ok, "", err
	}
	what := gvr.Resource
	if gvr.Group != "" {
		what += "." + gvr.Group
	}
	msg := fmt.Sprintf("%s %q is forbidden: you cannot patch resource %q in API group %q", what, name, gvr.Resource, gvr.Group)
	if namespace != "" {
		msg += fmt.Sprintf(" in the namespace %q", namespace)
	}
	if reason != "" {
		msg += ": " + reason
	}
	return false, msg, nil
}

func (a *Access) ask(ctx context.Context, k accessKey) (bool, string, error) {
	ans, err := a.seen.Get(k, func() (accessAnswer, error) {
		review := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
			"spec": map[string]any{"resourceAttributes": map[string]any{
				"verb": "patch", "group": k.gvr.Group, "version": k.gvr.Version, "resource": k.gvr.Resource,
				"namespace": k.namespace, "name": k.name,
			}},
		}}
		r, err := a.client.Resource(selfSubjectAccessReviews).Create(ctx, review, metav1.CreateOptions{})
		if err != nil {
			return accessAnswer{}, fmt.Errorf("asking whether you may patch %s: %w", k.gvr.Resource, explain(err))
		}
		var ans accessAnswer
		ans.allowed, _, _ = unstructured.NestedBool(r.Object, "status", "allowed")
		ans.reason, _, _ = unstructured.NestedString(r.Object, "status", "reason")
		return ans, nil
	})
	return ans.allowed, ans.reason, err
}
