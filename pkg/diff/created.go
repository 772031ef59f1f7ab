package diff

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"k8s.io/kube-openapi/pkg/validation/strfmt"
	"k8s.io/kube-openapi/pkg/validation/validate"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/memo"
)

// createdBySet is what the manifests create themselves: Namespaces, and
// CRDs with their scope, versions and schemas. Objects that need them
// cannot be dry-run before they exist; they are checked here instead.
type createdBySet struct {
	namespaces map[string]bool
	crds       map[string]*setCRD // by "Kind.group"
	// live says whether a namespace is in the cluster (true when that
	// cannot be told), asked once per namespace.
	live memo.Map[string, bool]
}

// setCRD is a CRD of the set: its scope and its served versions' schemas
// (nil: none given).
type setCRD struct {
	name, group, kind string
	namespaced        bool
	served            map[string]*spec.Schema
	types             memo.Map[string, managedfields.TypeConverter] // by version
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
			crd := &setCRD{name: o.GetName(), group: group, kind: kind, namespaced: scope != "Cluster", served: map[string]*spec.Schema{}}
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
// would be created, in the namespace its CRD's scope gives, when the apply
// would take it as the apiserver does: its version served, no field its
// schema does not declare (the apply fails on one), its namespace in the
// cluster or in the set (and -n's, when given), and valid by the schema.
func (s *createdBySet) customResource(ctx context.Context, c Cluster, crd *setCRD, m kube.Manifest, o Options, n normalizer) Object {
	ref := m.Ref
	obj, err := m.Object()
	if err != nil {
		return Object{Ref: ref, Action: Failed, Error: objectMessage(err), Origin: m.Origin}
	}
	failed := func(msg string) Object { return Object{Ref: ref, Action: Failed, Origin: m.Origin, Error: msg} }
	if crd.namespaced {
		switch {
		case ref.Namespace == "":
			ref.Namespace = o.DefaultNamespace
		case o.EnforceNamespace && ref.Namespace != o.DefaultNamespace:
			// As kube.Client.Map says of a kind the cluster has.
			return failed(fmt.Sprintf("its namespace %q does not match -n %q", ref.Namespace, o.DefaultNamespace))
		}
		obj.SetNamespace(ref.Namespace)
	} else {
		ref.Namespace = ""
		obj.SetNamespace("")
	}
	version := obj.GroupVersionKind().Version
	sc, ok := crd.served[version]
	if !ok {
		return failed(fmt.Sprintf("version %s is not served by CRD %s in the same manifests (it serves %s)",
			version, crd.name, strings.Join(sortedNames(crd.served), ", ")))
	}
	// In the apiserver's order: the apply's typed object (a field the
	// schema does not declare fails it), the namespace (admission), then
	// the schema's validation.
	if sc != nil {
		if tc, err := crd.typeConverter(version); err == nil {
			if _, err := tc.ObjectToTyped(obj); err != nil {
				return failed("invalid by CRD " + crd.name + ": " + strings.Join(strings.Fields(err.Error()), " "))
			}
		}
	}
	if crd.namespaced && !s.namespaces[ref.Namespace] && !s.namespaceLive(ctx, c, ref.Namespace) {
		return failed(fmt.Sprintf("namespaces %q not found (neither in the cluster nor in the manifests)", ref.Namespace))
	}
	out := created(ref, m, n.normalize(obj, ref.String()))
	if sc == nil {
		out.Note = "created with its CRD, which gives no schema for " + version + ": not validated"
		return out
	}
	if msg := validateBySchema(sc, obj); msg != "" {
		return failed("invalid by CRD " + crd.name + ": " + msg)
	}
	out.Note = "created with its CRD: checked against the CRD's schema here, not by the server"
	return out
}

// namespaceLive reports whether the namespace is in the cluster; true when
// that cannot be told (the user may not read Namespaces).
func (s *createdBySet) namespaceLive(ctx context.Context, c Cluster, ns string) bool {
	live, _ := s.live.Get(ns, func() (bool, error) {
		ms, err := kube.FromObjects([]map[string]any{{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}}, "namespace "+ns)
		if err != nil {
			return true, nil
		}
		t, err := c.Map(ctx, ms[0], "", false)
		if err != nil {
			return true, nil
		}
		live := true
		c.LiveEach(ctx, []kube.Target{t}, 1, 1, func(_ kube.Target, o *unstructured.Unstructured, err error) {
			live = err != nil || o != nil
		})
		return live, nil
	})
	return live
}

// typeConverter is a served version's schema as the apiserver types a
// custom resource for an apply: apiVersion, kind and metadata added at the
// top and in embedded resources, where the schema leaves them out.
func (crd *setCRD) typeConverter(version string) (managedfields.TypeConverter, error) {
	return crd.types.Get(version, func() (managedfields.TypeConverter, error) {
		// A copy: the schema itself validates the object as written.
		b, err := json.Marshal(crd.served[version])
		if err != nil {
			return nil, err
		}
		var sc spec.Schema
		if err := json.Unmarshal(b, &sc); err != nil {
			return nil, err
		}
		withObjectFields(&sc)
		sc.AddExtension("x-kubernetes-group-version-kind", []any{map[string]any{"group": crd.group, "version": version, "kind": crd.kind}})
		return managedfields.NewTypeConverter(map[string]*spec.Schema{crd.kind + "." + crd.group + "/" + version: &sc}, false)
	})
}

// withObjectFields adds apiVersion, kind and metadata (any metadata: the
// apiserver, not the CRD, validates it) to sc and to the embedded
// resources under it, as the apiserver's structural schema does.
func withObjectFields(sc *spec.Schema) {
	if sc.Properties == nil {
		sc.Properties = map[string]spec.Schema{}
	}
	sc.Properties["apiVersion"] = *spec.StringProperty()
	sc.Properties["kind"] = *spec.StringProperty()
	meta := spec.Schema{}
	meta.Typed("object", "")
	meta.AddExtension("x-kubernetes-preserve-unknown-fields", true)
	sc.Properties["metadata"] = meta
	embedded(sc)
}

// embedded adds apiVersion, kind and metadata to the embedded resources
// (x-kubernetes-embedded-resource) under sc that declare their fields.
func embedded(sc *spec.Schema) {
	for name, p := range sc.Properties {
		if e, _ := p.Extensions["x-kubernetes-embedded-resource"].(bool); e && len(p.Properties) > 0 {
			withObjectFields(&p)
		} else {
			embedded(&p)
		}
		sc.Properties[name] = p
	}
	if sc.Items != nil && sc.Items.Schema != nil {
		embedded(sc.Items.Schema)
	}
	if sc.AdditionalProperties != nil && sc.AdditionalProperties.Schema != nil {
		embedded(sc.AdditionalProperties.Schema)
	}
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
