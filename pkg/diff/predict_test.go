package diff

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
)

// The objects users diff, as others applied them. Each is seeded by one of
// the ways clusters are written to, then diffed unchanged and changed.
var predictCases = []string{`
apiVersion: v1
kind: ConfigMap
metadata: {name: cm, labels: {app: p}, annotations: {note: x}}
data: {one: "1", config.yaml: "a: 1\n"}
`, `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: p}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: example.invalid/web:1
        ports: [{containerPort: 8080, name: http}]
        env:
        - {name: A, value: "1"}
        - name: POD
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {cpu: "1"}}
        readinessProbe: {httpGet: {path: /ready, port: 8080}}
      tolerations: [{key: k, operator: Exists}]
`, `
apiVersion: v1
kind: Service
metadata: {name: svc, labels: {app: p}}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
`, `
apiVersion: v1
kind: ServiceAccount
metadata: {name: sa, labels: {app: p}}
`, `
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: role, labels: {app: p}}
rules:
- {apiGroups: [""], resources: [pods], verbs: [get, list]}
`, `
apiVersion: batch/v1
kind: CronJob
metadata: {name: cron, labels: {app: p}}
spec:
  schedule: "*/5 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: c, image: example.invalid/c:1}]
`, `
apiVersion: example.com/v1
kind: Gadget
metadata: {name: with-status-subresource, labels: {app: p}}
spec: {size: 3, tags: [a, b]}
`, `
apiVersion: example.com/v1
kind: Widget
metadata: {name: status-is-a-field, labels: {app: p}}
spec: {size: 3}
status: {phase: Ready}
`}

// predictCRDs are the CRDs of the objects above.
var predictCRDs = strings.Split(readTestdata("predict-crds.yaml"), "\n---\n")

// seeders write an object the ways users' clusters are written: server-side
// apply by kubectl or by the plugin, client-side kubectl apply (a create with
// the last-applied annotation), and a plain create as Helm makes.
var seeders = []string{"ssa-kubectl", "ssa-ours", "csa", "create-helm"}

func decodeYAML(t testing.TB, src string) *unstructured.Unstructured {
	t.Helper()
	j, err := yaml.YAMLToJSON([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(j); err != nil {
		t.Fatal(err)
	}
	return u
}

func seedObject(ctx context.Context, ri dynamic.ResourceInterface, o *unstructured.Unstructured, how string) error {
	o = o.DeepCopy()
	switch how {
	case "ssa-kubectl", "ssa-ours":
		m := map[string]string{"ssa-kubectl": "kubectl", "ssa-ours": manager}[how]
		_, err := ri.Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: m, Force: true})
		return err
	case "csa":
		j, _ := json.Marshal(o.Object)
		ann := o.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[lastApplied] = string(j) + "\n"
		o.SetAnnotations(ann)
		_, err := ri.Create(ctx, o, metav1.CreateOptions{FieldManager: "kubectl-client-side-apply"})
		return err
	default:
		_, err := ri.Create(ctx, o, metav1.CreateOptions{FieldManager: "helm"})
		return err
	}
}

// changes are edits users make; each must show as a difference.
var edits = []struct {
	name string
	edit func(o *unstructured.Unstructured)
}{
	{"new label", func(o *unstructured.Unstructured) {
		l := o.GetLabels()
		l["tier"] = "new"
		o.SetLabels(l)
	}},
	{"a field set to another value", func(o *unstructured.Unstructured) {
		switch o.GetKind() {
		case "ConfigMap":
			_ = unstructured.SetNestedField(o.Object, "2", "data", "one")
		case "Deployment":
			_ = unstructured.SetNestedField(o.Object, int64(3), "spec", "replicas")
		case "Service":
			_ = unstructured.SetNestedSlice(o.Object, []any{map[string]any{"port": int64(81), "targetPort": int64(8080)}}, "spec", "ports")
		case "CronJob":
			_ = unstructured.SetNestedField(o.Object, "*/7 * * * *", "spec", "schedule")
		case "Role":
			_ = unstructured.SetNestedSlice(o.Object, []any{map[string]any{"apiGroups": []any{""}, "resources": []any{"pods"}, "verbs": []any{"get"}}}, "rules")
		case "Gadget", "Widget":
			_ = unstructured.SetNestedField(o.Object, int64(4), "spec", "size")
		case "ServiceAccount":
			_ = unstructured.SetNestedField(o.Object, false, "automountServiceAccountToken")
		}
	}},
	{"status of a custom resource without a status subresource", func(o *unstructured.Unstructured) {
		if o.GetKind() == "Widget" {
			_ = unstructured.SetNestedField(o.Object, "Failed", "status", "phase")
		} else {
			l := o.GetLabels()
			l["other"] = "x"
			o.SetLabels(l)
		}
	}},
}

// TestPredictionAgreesWithTheServer: for objects others applied, the local
// prediction sends no dry run for what is unchanged, and the verdicts are
// the server's dry run's, object by object, changed or not.
func TestPredictionAgreesWithTheServer(t *testing.T) {
	c, ctx, _, dyn := onCluster(t, 5*time.Minute)
	crds := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	for _, src := range predictCRDs {
		crd := decodeYAML(t, src)
		if _, err := dyn.Resource(crds).Apply(ctx, crd.GetName(), crd, metav1.ApplyOptions{FieldManager: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	// The CRDs' schemas are published a moment after they are served.
	waitFor(t, ctx, func() bool {
		k, _ := countingClient(t, c)
		paths, err := k.OpenAPIV3().Paths()
		_, ok := paths["apis/example.com/v1"]
		return err == nil && ok
	})
	k, dryRuns := countingClient(t, c)

	for _, how := range seeders {
		ns := "predict-" + how
		if _, err := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).Create(ctx,
			&unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}},
			metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		var objs []*unstructured.Unstructured
		for _, src := range predictCases {
			o := decodeYAML(t, src)
			o.SetNamespace(ns)
			m, err := k.Mapper.RESTMapping(o.GroupVersionKind().GroupKind(), o.GroupVersionKind().Version)
			if err != nil {
				t.Fatal(err)
			}
			if err := seedObject(ctx, dyn.Resource(m.Resource).Namespace(ns), o, how); err != nil {
				t.Fatalf("%s %s: %v", how, o.GetKind(), err)
			}
			objs = append(objs, o)
		}

		// Unchanged: no dry run at all, and the server agrees; also as the
		// manager kubectl, whose applies the apiserver treats apart (the
		// last-applied annotation is kept in step).
		verdicts(t, ctx, k, dryRuns, how+", unchanged", objs, true)
		verdictsAs(t, ctx, k, dryRuns, "kubectl", how+", unchanged, as kubectl", objs, how == "ssa-kubectl")
		for _, ch := range edits {
			var edited []*unstructured.Unstructured
			for _, o := range objs {
				e := o.DeepCopy()
				ch.edit(e)
				edited = append(edited, e)
			}
			verdicts(t, ctx, k, dryRuns, how+", "+ch.name, edited, false)
		}
	}
}

// verdicts diffs objs with the prediction and with the server alone and
// wants the same action for every object; unchanged says all are.
func verdicts(t *testing.T, ctx context.Context, k *kube.Client, dryRuns interface{ Load() int64 }, what string, objs []*unstructured.Unstructured, unchanged bool) {
	t.Helper()
	verdictsAs(t, ctx, k, dryRuns, manager, what, objs, unchanged)
}

func verdictsAs(t *testing.T, ctx context.Context, k *kube.Client, dryRuns interface{ Load() int64 }, fieldManager, what string, objs []*unstructured.Unstructured, unchanged bool) {
	t.Helper()
	var ms []kube.Manifest
	for _, o := range objs {
		m, err := kube.FromObjects([]map[string]any{o.Object}, what)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m...)
	}
	o := Options{Force: true, DefaultNamespace: objs[0].GetNamespace(), Manager: fieldManager}
	before := dryRuns.Load()
	predicted, err := Run(ctx, k, ms, o)
	if err != nil {
		t.Fatal(err)
	}
	sent := dryRuns.Load() - before
	o.ServerOnly = true
	server, err := Run(ctx, k, ms, o)
	if err != nil {
		t.Fatal(err)
	}
	for i := range server.Objects {
		p, s := predicted.Objects[i], server.Objects[i]
		if p.Ref != s.Ref || p.Action != s.Action || strings.Join(p.ChangedPaths, ",") != strings.Join(s.ChangedPaths, ",") {
			t.Errorf("%s: %s: predicted %s %v, the server says %s %v %s", what, s.Ref, p.Action, p.ChangedPaths, s.Action, s.ChangedPaths, s.Error)
		}
		if unchanged && s.Action != Unchanged {
			t.Errorf("%s: %s is %s on the server: %v\n%s", what, s.Ref, s.Action, s.ChangedPaths, s.Error)
		}
	}
	if unchanged && sent != 0 {
		t.Errorf("%s: %d dry runs for unchanged objects, want none", what, sent)
	}
	t.Logf("%s: %d dry runs for %d objects", what, sent, len(objs))
}

func waitFor(t *testing.T, ctx context.Context, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatal(fmt.Errorf("waiting: %w", ctx.Err()))
		case <-time.After(100 * time.Millisecond):
		}
	}
}
