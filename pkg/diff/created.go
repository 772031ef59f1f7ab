package diff

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"k8s.io/kube-openapi/pkg/validation/strfmt"
	"k8s.io/kube-openapi/pkg/validation/validate"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
)

// createdBySet is what the manifests create themselves: Namespaces, and
// CRDs with their scope, versions and schemas. Objects that need them
// cannot be dry-run before they exist; they are checked here instead.
type createdBySet struct {
	namespaces map[string]bool
	crds       map[string]*setCRD // by "Kind.group"
}

// setCRD is a CRD of the set: its scope and its served versions' schemas
// (nil: none given).
type setCRD struct {
	name       string
	namespaced bool
	served     map[string]*spec.Schema
}

func newCreatedBySet(ms []kube.Manifest) *createdBySet {
	s := &createdBySet{namespaces: map[string]bool{}, crds: map[string]*setCRD{}}
	for _, m := range ms {
		switch groupKind(m.Ref) {
		case "Namespace":
			s.namespaces[m.Ref.Name] = true
		case "CustomResourceDefinition.apiextensions.k8s.io":
			o, err := m.Object()
			if err != nil {
				continue
			}
			group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
			kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
			scope, _, _ := unstructured.NestedString(o.Object, "spec", "scope")
			crd := &setCRD{name: o.GetName(), namespaced: scope != "Cluster", served: map[string]*spec.Schema{}}
			versions, _, _ := unstructured.NestedSlice(o.Object, "spec", "versions")
			for _, v := range versions {
				vm, _ := v.(map[string]any)
				name, _ := vm["name"].(string)
				if served, _ := vm["served"].(bool); !served || name == "" {
					continue
				}
				crd.served[name] = nil
				if raw, ok, _ := unstructured.NestedMap(vm, "schema", "openAPIV3Schema"); ok {
					var sc spec.Schema
					if b, err := json.Marshal(raw); err == nil && json.Unmarshal(b, &sc) == nil {
						crd.served[name] = &sc
					}
				}
			}
			s.crds[kind+"."+group] = crd
		}
	}
	return s
}

// customResource is the outcome for an object whose CRD is in the set: it
// would be created, in the namespace its CRD's scope gives, when its
// version is served and it is valid by that version's schema.
func (s *createdBySet) customResource(crd *setCRD, m kube.Manifest, o Options, n normalizer) Object {
	ref := m.Ref
	obj, err := m.Object()
	if err != nil {
		return Object{Ref: ref, Action: Failed, Error: objectMessage(err), Origin: m.Origin}
	}
	if crd.namespaced {
		if ref.Namespace == "" {
			ref.Namespace = o.DefaultNamespace
		}
		obj.SetNamespace(ref.Namespace)
	} else {
		ref.Namespace = ""
		obj.SetNamespace("")
	}
	version := obj.GroupVersionKind().Version
	sc, ok := crd.served[version]
	if !ok {
		return Object{Ref: ref, Action: Failed, Origin: m.Origin, Error: fmt.Sprintf("version %s is not served by CRD %s in the same manifests (it serves %s)",
			version, crd.name, strings.Join(sortedNames(crd.served), ", "))}
	}
	out := created(ref, m, n.normalize(obj, ref.String()))
	if sc == nil {
		out.Note = "created with its CRD, which gives no schema for " + version + ": not validated"
		return out
	}
	if msg := validateBySchema(sc, obj); msg != "" {
		return Object{Ref: ref, Action: Failed, Origin: m.Origin, Error: "invalid by CRD " + crd.name + ": " + msg}
	}
	out.Note = "created with its CRD: checked against the CRD's schema here, not by the server"
	return out
}

// inNewNamespace is the outcome for an object whose Namespace is in the
// set: it would be created; its fields are checked against the server's
// schema (types, unknown fields), and the rest of the server's validation
// cannot be run before the Namespace exists.
func (s *createdBySet) inNewNamespace(t kube.Target, desired *unstructured.Unstructured, pred *predictor, after map[string]any) Object {
	out := created(t.Ref, t.Manifest, after)
	if pred == nil {
		out.Note = "created with its Namespace: not validated by the server"
		return out
	}
	tc, err := pred.typeConverter(desired.GroupVersionKind().GroupVersion())
	if err != nil {
		out.Note = "created with its Namespace: not validated (" + err.Error() + ")"
		return out
	}
	if _, err := tc.ObjectToTyped(desired); err != nil {
		return Object{Ref: t.Ref, Action: Failed, Origin: t.Origin, Error: "invalid: " + strings.Join(strings.Fields(err.Error()), " ")}
	}
	out.Note = "created with its Namespace: field types checked against the server's schema, the rest not validated"
	return out
}

// validateBySchema checks obj against a CRD version's schema (types,
// required fields, enums, bounds), as far as the schema says; "" when valid.
func validateBySchema(sc *spec.Schema, obj *unstructured.Unstructured) string {
	// metadata is the apiserver's, not the CRD's, to validate.
	c := obj.DeepCopy().Object
	delete(c, "metadata")
	res := validate.NewSchemaValidator(sc, nil, "", strfmt.Default).Validate(c)
	if res == nil || res.IsValid() {
		return ""
	}
	var msgs []string
	for _, e := range res.Errors {
		msgs = append(msgs, e.Error())
	}
	slices.Sort(msgs)
	if len(msgs) > 3 {
		msgs = append(msgs[:3], fmt.Sprintf("and %d more", len(msgs)-3))
	}
	return strings.Join(msgs, "; ")
}

func sortedNames[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
