package diff

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sync"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/memo"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/openapi"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
	"sigs.k8s.io/structured-merge-diff/v6/merge"
	"sigs.k8s.io/structured-merge-diff/v6/typed"
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
	// ctx is the run's: the schemas are read with it, so that Ctrl-C
	// stops those reads too.
	ctx    context.Context
	client openapi.ClientWithContext
	// statusIsSubresource says whether a resource has a status subresource
	// (then the apiserver ignores status in an apply to the resource).
	statusIsSubresource func(schema.GroupVersionResource) bool

	once  sync.Once
	paths map[string]openapi.GroupVersionWithContext
	err   error

	managers memo.Map[managerKey, *managedfields.FieldManager]
	types    memo.Map[schema.GroupVersion, managedfields.TypeConverter]
	// shared, when set, keeps the documents read for other diffs.
	shared *SchemaCache
	mu     sync.Mutex
	kinds  map[schema.GroupVersion]map[string]bool // see want
}

type managerKey struct {
	gvk schema.GroupVersionKind
	gvr schema.GroupVersionResource
}

func newPredictor(ctx context.Context, client openapi.Client, statusIsSubresource func(schema.GroupVersionResource) bool, shared *SchemaCache) *predictor {
	return &predictor{
		ctx: ctx, client: openapi.ToClientWithContext(client), statusIsSubresource: statusIsSubresource, shared: shared,
	}
}

// unchanged reports whether applying desired to live as manager would leave
// live as it is (managedFields aside, which no diff shows). false means "ask
// the server", never "changed".
func (p *predictor) unchanged(gvr schema.GroupVersionResource, live, desired *unstructured.Unstructured, manager string, force bool) bool {
	if p == nil || p.client == nil {
		return false
	}
	gvk := desired.GroupVersionKind()
	applied := withoutMeta(desired, "managedFields", "resourceVersion", "uid", "creationTimestamp")
	if managed, ok := p.directMerge(gvk, live, manager); ok {
		// The merge the field manager runs, without the bookkeeping around
		// it that only touches managedFields.
		tc, err := p.typeConverter(gvk.GroupVersion())
		if err != nil {
			return false
		}
		liveTV, err := tc.ObjectToTyped(withoutMeta(live, "managedFields"), typed.AllowDuplicates)
		if err != nil {
			return false
		}
		cfgTV, err := tc.ObjectToTyped(applied)
		if err != nil {
			return false
		}
		u := (&merge.UpdaterBuilder{Converter: sameVersionTyped(gvk.GroupVersion().String()), IgnoreFilter: p.resetFields(gvk, gvr)}).BuildUpdater()
		newTV, _, err := u.Apply(liveTV, cfgTV, fieldpath.APIVersion(gvk.GroupVersion().String()), managed, applyKey(manager), force)
		if err != nil {
			return false // a conflict, a field it cannot read: the server says
		}
		if newTV == nil {
			return true // the merge's own no-op check
		}
		obj, err := tc.TypedToObject(newTV)
		if err != nil {
			return false
		}
		u2, ok := obj.(*unstructured.Unstructured)
		return ok && sameAfterKnownDefaults(u2.Object, withoutMeta(live, "managedFields").Object)
	}
	fm, err := p.manager(gvk, gvr)
	if err != nil {
		return false
	}
	merged, err := fm.Apply(live.DeepCopy(), applied, manager, force)
	if err != nil {
		return false
	}
	u, ok := merged.(*unstructured.Unstructured)
	return ok && sameAfterKnownDefaults(withoutManagedFields(u.Object), withoutManagedFields(live.Object))
}

// sameAfterKnownDefaults compares a merge with the live object, taking the
// live value where the merge left out a known default (see knownDefaults).
func sameAfterKnownDefaults(merged, live map[string]any) bool {
	fillKnownDefaults(merged, live)
	// As JSON: the merge gives numbers in other Go types than decoding does.
	return jsonEqual(merged, live)
}

// directMerge decides whether the plain structured merge gives what the
// apiserver's field manager chain gives for this apply, and decodes the
// managed fields for it. It does not when the chain does more to the
// object: an object with no managed fields yet (its fields then belong to
// "before-first-apply"), managed fields in other versions (converted
// first), the manager "kubectl" (which keeps the last-applied annotation
// in step).
func (p *predictor) directMerge(gvk schema.GroupVersionKind, live *unstructured.Unstructured, manager string) (fieldpath.ManagedFields, bool) {
	entries := managedEntries(live)
	if len(entries) == 0 || manager == "kubectl" {
		return nil, false
	}
	gv := gvk.GroupVersion().String()
	managed := fieldpath.ManagedFields{}
	for i, e := range entries {
		if e.apiVersion != gv || e.fields == nil {
			return nil, false
		}
		raw, err := json.Marshal(e.fields)
		if err != nil {
			return nil, false
		}
		set := &fieldpath.Set{}
		if err := set.FromJSON(bytes.NewReader(raw)); err != nil {
			return nil, false
		}
		key := fmt.Sprintf("%d\x00%s\x00%s\x00%s", i, e.manager, e.operation, e.subresource)
		applied := e.operation == string(metav1.ManagedFieldsOperationApply)
		if applied && e.manager == manager && e.subresource == "" {
			key = applyKey(manager)
		}
		managed[key] = fieldpath.NewVersionedSet(set, fieldpath.APIVersion(e.apiVersion), applied)
	}
	return managed, true
}

func applyKey(manager string) string { return "apply\x00" + manager }

// resetFields is what the apiserver leaves out of an apply to the resource:
// status, where it is a subresource's.
func (p *predictor) resetFields(gvk schema.GroupVersionKind, gvr schema.GroupVersionResource) map[fieldpath.APIVersion]fieldpath.Filter {
	if p.statusIsSubresource == nil || !p.statusIsSubresource(gvr) {
		return nil
	}
	return map[fieldpath.APIVersion]fieldpath.Filter{
		fieldpath.APIVersion(gvk.GroupVersion().String()): fieldpath.NewExcludeSetFilter(fieldpath.NewSet(fieldpath.MakePathOrDie("status"))),
	}
}

// withoutMeta is o without the named metadata fields, sharing the rest.
func withoutMeta(o *unstructured.Unstructured, fields ...string) *unstructured.Unstructured {
	c := make(map[string]any, len(o.Object))
	for k, v := range o.Object {
		c[k] = v
	}
	if meta, ok := o.Object["metadata"].(map[string]any); ok {
		m := make(map[string]any, len(meta))
		for k, v := range meta {
			if !slices.Contains(fields, k) {
				m[k] = v
			}
		}
		c["metadata"] = m
	}
	return &unstructured.Unstructured{Object: c}
}

// sameVersionTyped converts typed values to their own version only: the
// direct merge runs only where every managed set is in the applied version.
type sameVersionTyped string

func (v sameVersionTyped) Convert(object *typed.TypedValue, version fieldpath.APIVersion) (*typed.TypedValue, error) {
	if string(version) != string(v) {
		return nil, errMissingVersion
	}
	return object, nil
}

func (sameVersionTyped) IsMissingVersionError(err error) bool { return err == errMissingVersion }

var errMissingVersion = fmt.Errorf("no conversion between versions here")

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
	return p.managers.Get(managerKey{gvk, gvr}, func() (*managedfields.FieldManager, error) {
		tc, err := p.typeConverter(gvk.GroupVersion())
		if err != nil {
			return nil, err
		}
		// As the apiserver's strategies do: an apply to the resource
		// leaves status to the status subresource.
		reset := p.resetFields(gvk, gvr)
		newFM := managedfields.NewDefaultFieldManager
		if !scheme.Scheme.Recognizes(gvk) {
			newFM = managedfields.NewDefaultCRDFieldManager // custom resources: fields the schema does not name
		}
		return newFM(tc, sameVersion{}, noDefaults{}, unstructuredCreater{}, gvk, gvk.GroupVersion(), "", reset)
	})
}

// typeConverter reads a group version's schema from the server, once.
func (p *predictor) typeConverter(gv schema.GroupVersion) (managedfields.TypeConverter, error) {
	p.once.Do(func() { p.paths, p.err = p.client.PathsWithContext(p.ctx) })
	if p.err != nil {
		return nil, p.err
	}
	return p.types.Get(gv, func() (managedfields.TypeConverter, error) {
		components, err := p.components(gv)
		if err != nil {
			return nil, err
		}
		p.mu.Lock()
		kinds := p.kinds[gv]
		p.mu.Unlock()
		schemas, err := schemasFrom(components, gv, kinds)
		if err != nil {
			return nil, fmt.Errorf("reading the OpenAPI schema of %s: %w", gv, err)
		}
		return managedfields.NewTypeConverter(schemas, false)
	})
}

// components reads a group version's OpenAPI v3 document from the server
// and splits it into its schemas, once per SchemaCache when the diff is
// given one.
func (p *predictor) components(gv schema.GroupVersion) (map[string]json.RawMessage, error) {
	read := func() (map[string]json.RawMessage, error) {
		path := "apis/" + gv.String()
		if gv.Group == "" {
			path = "api/" + gv.Version
		}
		doc, ok := p.paths[path]
		if !ok {
			return nil, fmt.Errorf("the server publishes no OpenAPI v3 schema for %s", gv)
		}
		b, err := doc.SchemaWithContext(p.ctx, "application/json")
		if err != nil {
			return nil, err
		}
		var raw struct {
			Components struct {
				Schemas map[string]json.RawMessage `json:"schemas"`
			} `json:"components"`
		}
		if err := json.Unmarshal(b, &raw); err != nil {
			return nil, fmt.Errorf("reading the OpenAPI schema of %s: %w", gv, err)
		}
		return raw.Components.Schemas, nil
	}
	if p.shared == nil {
		return read()
	}
	return p.shared.docs.Get(gv, read)
}

// SchemaCache keeps the OpenAPI schemas a diff read from one cluster, for
// the next diffs of that cluster in the same process (apps list diffs every
// app: each would read and decode core/v1's 1.6 MB document again).
type SchemaCache struct {
	docs memo.Map[schema.GroupVersion, map[string]json.RawMessage]
}

// prefetch reads the schemas of the group versions wanted, in the
// background.
func (p *predictor) prefetch() {
	if p == nil {
		return
	}
	p.mu.Lock()
	gvs := make([]schema.GroupVersion, 0, len(p.kinds))
	for gv := range p.kinds {
		gvs = append(gvs, gv)
	}
	p.mu.Unlock()
	for _, gv := range gvs {
		go func() { _, _ = p.typeConverter(gv) }()
	}
}

// want notes the kinds the manifests have, before the first prediction, so
// that only their schemas are read (a group version's document holds every
// kind of it: core/v1's is 1.6 MB).
func (p *predictor) want(gvk schema.GroupVersionKind) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.kinds == nil {
		p.kinds = map[schema.GroupVersion]map[string]bool{}
	}
	if p.kinds[gvk.GroupVersion()] == nil {
		p.kinds[gvk.GroupVersion()] = map[string]bool{}
	}
	p.kinds[gvk.GroupVersion()][gvk.Kind] = true
}

var schemaRefRE = regexp.MustCompile(`"\$ref"\s*:\s*"#/components/schemas/([^"]+)"`)

// schemasFor decodes, from a group version's OpenAPI v3 document, the
// schemas of kinds (every kind when nil) and of all they refer to.
func schemasFor(doc []byte, gv schema.GroupVersion, kinds map[string]bool) (map[string]*spec.Schema, error) {
	var raw struct {
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(doc, &raw); err != nil {
		return nil, err
	}
	return schemasFrom(raw.Components.Schemas, gv, kinds)
}

// schemasFrom decodes, from a group version's schemas, those of kinds
// (every kind when nil) and of all they refer to.
func schemasFrom(components map[string]json.RawMessage, gv schema.GroupVersion, kinds map[string]bool) (map[string]*spec.Schema, error) {
	var raw struct {
		Components struct{ Schemas map[string]json.RawMessage }
	}
	raw.Components.Schemas = components
	var todo []string
	for name, s := range raw.Components.Schemas {
		if kinds == nil || !bytes.Contains(s, []byte("x-kubernetes-group-version-kind")) {
			if kinds == nil {
				todo = append(todo, name)
			}
			continue
		}
		var ext struct {
			GVKs []schema.GroupVersionKind `json:"x-kubernetes-group-version-kind"`
		}
		if json.Unmarshal(s, &ext) != nil {
			continue
		}
		for _, k := range ext.GVKs {
			if k.Group == gv.Group && k.Version == gv.Version && kinds[k.Kind] {
				todo = append(todo, name)
				break
			}
		}
	}
	out := map[string]*spec.Schema{}
	for len(todo) > 0 {
		name := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if _, done := out[name]; done {
			continue
		}
		r, ok := raw.Components.Schemas[name]
		if !ok {
			continue // a dangling reference: the converter says so
		}
		var sc spec.Schema
		if err := json.Unmarshal(r, &sc); err != nil {
			return nil, fmt.Errorf("schema %s: %w", name, err)
		}
		out[name] = &sc
		for _, m := range schemaRefRE.FindAllSubmatch(r, -1) {
			todo = append(todo, string(m[1]))
		}
	}
	return out, nil
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
