package diff

import (
	"encoding/json"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/openapi"
	"k8s.io/kube-openapi/pkg/spec3"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
)

// predictor runs a server-side apply locally, with the code the apiserver
// runs (structured-merge-diff through apimachinery's field manager) and the
// schema the server publishes (OpenAPI v3, one document per group version,
// cached on disk by client-go as kubectl's discovery is), so that an object
// the apply would leave as it is needs no request.
//
// It only ever answers "unchanged" when the merge leaves the live object as
// it is: defaulting is then a no-op (the live object is defaulted already),
// and everything else (a change, a field it cannot type, an error) goes to
// the server's dry run, which alone knows defaults, conversion, validation
// and admission.
type predictor struct {
	client openapi.Client
	// statusIsSubresource says whether a resource has a status subresource
	// (then the apiserver ignores status in an apply to the resource).
	statusIsSubresource func(schema.GroupVersionResource) bool

	once  sync.Once
	paths map[string]openapi.GroupVersion
	err   error

	mu       sync.Mutex
	managers map[managerKey]*managerOnce
	types    map[schema.GroupVersion]*typesOnce
}

type managerKey struct {
	gvk schema.GroupVersionKind
	gvr schema.GroupVersionResource
}

type managerOnce struct {
	once sync.Once
	fm   *managedfields.FieldManager
	err  error
}

type typesOnce struct {
	once sync.Once
	tc   managedfields.TypeConverter
	err  error
}

func newPredictor(client openapi.Client, statusIsSubresource func(schema.GroupVersionResource) bool) *predictor {
	return &predictor{
		client: client, statusIsSubresource: statusIsSubresource,
		managers: map[managerKey]*managerOnce{}, types: map[schema.GroupVersion]*typesOnce{},
	}
}

// unchanged reports whether applying desired to live as manager would leave
// live as it is (managedFields aside, which no diff shows). false means "ask
// the server", never "changed".
func (p *predictor) unchanged(gvr schema.GroupVersionResource, live, desired *unstructured.Unstructured, manager string, force bool) bool {
	if p == nil || p.client == nil {
		return false
	}
	fm, err := p.manager(desired.GroupVersionKind(), gvr)
	if err != nil {
		return false
	}
	applied := desired.DeepCopy()
	for _, f := range []string{"managedFields", "resourceVersion", "uid", "creationTimestamp"} {
		unstructured.RemoveNestedField(applied.Object, "metadata", f)
	}
	merged, err := fm.Apply(live.DeepCopy(), applied, manager, force)
	if err != nil {
		return false // a conflict, a type it cannot read: the server says
	}
	u, ok := merged.(*unstructured.Unstructured)
	if !ok {
		return false
	}
	// The apiserver defaults what the merge leaves out; where that is a
	// known default of an atomic struct (replaced whole by the apply), the
	// live value is taken when it is that default.
	fillKnownDefaults(u.Object, live.Object)
	// As JSON: the merge gives numbers in other Go types than decoding does.
	return jsonEqual(withoutManagedFields(u.Object), withoutManagedFields(live.Object))
}

// knownDefaults are defaults the apiserver's defaulting code sets inside
// atomic structs, which an apply replaces whole: an env var's
// valueFrom.fieldRef (ObjectFieldSelector) gets apiVersion v1
// (SetDefaults_ObjectFieldSelector), wherever it appears.
var knownDefaults = map[string]map[string]any{
	"fieldRef": {"apiVersion": "v1"},
}

// fillKnownDefaults sets, in merged, the known defaults that merged lacks
// and live has with exactly the default value, walking both alike.
func fillKnownDefaults(merged, live any) {
	switch m := merged.(type) {
	case map[string]any:
		l, ok := live.(map[string]any)
		if !ok {
			return
		}
		for k, v := range m {
			if defs, ok := knownDefaults[k]; ok {
				mv, mok := v.(map[string]any)
				lv, lok := l[k].(map[string]any)
				if mok && lok {
					for f, def := range defs {
						if _, has := mv[f]; !has && lv[f] == def {
							mv[f] = def
						}
					}
				}
			}
			fillKnownDefaults(v, l[k])
		}
	case []any:
		l, ok := live.([]any)
		if !ok || len(l) != len(m) {
			return
		}
		for i := range m {
			fillKnownDefaults(m[i], l[i])
		}
	}
}

func withoutManagedFields(o map[string]any) map[string]any {
	c := make(map[string]any, len(o))
	for k, v := range o {
		c[k] = v
	}
	if meta, ok := o["metadata"].(map[string]any); ok {
		m := make(map[string]any, len(meta))
		for k, v := range meta {
			if k != "managedFields" {
				m[k] = v
			}
		}
		c["metadata"] = m
	}
	return c
}

// manager is the field manager for a kind, built once.
func (p *predictor) manager(gvk schema.GroupVersionKind, gvr schema.GroupVersionResource) (*managedfields.FieldManager, error) {
	key := managerKey{gvk, gvr}
	p.mu.Lock()
	m := p.managers[key]
	if m == nil {
		m = &managerOnce{}
		p.managers[key] = m
	}
	p.mu.Unlock()
	m.once.Do(func() {
		tc, err := p.typeConverter(gvk.GroupVersion())
		if err != nil {
			m.err = err
			return
		}
		var reset map[fieldpath.APIVersion]fieldpath.Filter
		if p.statusIsSubresource != nil && p.statusIsSubresource(gvr) {
			// As the apiserver's strategies do: an apply to the resource
			// leaves status to the status subresource.
			reset = map[fieldpath.APIVersion]fieldpath.Filter{
				fieldpath.APIVersion(gvk.GroupVersion().String()): fieldpath.NewExcludeSetFilter(fieldpath.NewSet(fieldpath.MakePathOrDie("status"))),
			}
		}
		newFM := managedfields.NewDefaultFieldManager
		if !scheme.Scheme.Recognizes(gvk) {
			newFM = managedfields.NewDefaultCRDFieldManager // custom resources: fields the schema does not name
		}
		m.fm, m.err = newFM(tc, sameVersion{}, noDefaults{}, unstructuredCreater{}, gvk, gvk.GroupVersion(), "", reset)
	})
	return m.fm, m.err
}

// typeConverter reads a group version's schema from the server, once.
func (p *predictor) typeConverter(gv schema.GroupVersion) (managedfields.TypeConverter, error) {
	p.once.Do(func() { p.paths, p.err = p.client.Paths() })
	if p.err != nil {
		return nil, p.err
	}
	p.mu.Lock()
	t := p.types[gv]
	if t == nil {
		t = &typesOnce{}
		p.types[gv] = t
	}
	p.mu.Unlock()
	t.once.Do(func() {
		path := "apis/" + gv.String()
		if gv.Group == "" {
			path = "api/" + gv.Version
		}
		doc, ok := p.paths[path]
		if !ok {
			t.err = fmt.Errorf("the server publishes no OpenAPI v3 schema for %s", gv)
			return
		}
		b, err := doc.Schema("application/json")
		if err != nil {
			t.err = err
			return
		}
		var spec spec3.OpenAPI
		if err := json.Unmarshal(b, &spec); err != nil {
			t.err = fmt.Errorf("reading the OpenAPI schema of %s: %w", gv, err)
			return
		}
		if spec.Components == nil {
			t.err = fmt.Errorf("the OpenAPI schema of %s has no components", gv)
			return
		}
		t.tc, t.err = managedfields.NewTypeConverter(spec.Components.Schemas, false)
	})
	return t.tc, t.err
}

// sameVersion converts nothing: live and applied objects are read in the
// version applied, and that version is the field manager's hub.
type sameVersion struct{}

func (sameVersion) Convert(in, out, _ any) error {
	return fmt.Errorf("conversion is not supported")
}

func (sameVersion) ConvertToVersion(in runtime.Object, gv runtime.GroupVersioner) (runtime.Object, error) {
	gvk, ok := gv.KindForGroupVersionKinds([]schema.GroupVersionKind{in.GetObjectKind().GroupVersionKind()})
	if !ok || gvk != in.GetObjectKind().GroupVersionKind() {
		return nil, fmt.Errorf("cannot convert %s to %v", in.GetObjectKind().GroupVersionKind(), gv)
	}
	return in, nil
}

func (sameVersion) ConvertFieldLabel(_ schema.GroupVersionKind, label, value string) (string, string, error) {
	return label, value, nil
}

// noDefaults applies no defaults: the merge of an unchanged object is the
// live object, which the server has defaulted already.
type noDefaults struct{}

func (noDefaults) Default(runtime.Object) {}

type unstructuredCreater struct{}

func (unstructuredCreater) New(gvk schema.GroupVersionKind) (runtime.Object, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	return u, nil
}
