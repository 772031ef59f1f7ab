package diff

import (
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
)

func manifests(t *testing.T, docs ...string) []kube.Manifest {
	t.Helper()
	var ms []kube.Manifest
	for _, d := range docs {
		m, err := kube.FromObjects([]map[string]any{decodeYAML(t, d).Object}, "test")
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m...)
	}
	return ms
}

func byName(r *Result) map[string]Object {
	out := map[string]Object{}
	for _, o := range r.Objects {
		out[o.Name] = o
	}
	return out
}

// crdTemplate is a CRD of set.example.com whose spec.size is required.
var crdTemplate = readTestdata("set-crd.yaml.tmpl")

func crd(plural, kind, scope string) string {
	return fmt.Sprintf(crdTemplate, plural+".set.example.com", scope, plural, strings.ToLower(kind), kind)
}

// TestObjectsCreatedWithTheirCRDOrNamespace: they show as created, in the
// namespace their CRD's scope gives, and what can be checked without the
// server is: the CRD's versions and schema, the server's field types.
func TestObjectsCreatedWithTheirCRDOrNamespace(t *testing.T) {
	_, ctx, k, _ := onCluster(t, 2*time.Minute)
	ms := manifests(t,
		crd("clusterthings", "ClusterThing", "Cluster"),
		crd("things", "Thing", "Namespaced"),
		"apiVersion: set.example.com/v1\nkind: ClusterThing\nmetadata: {name: global}\nspec: {size: 1}\n",
		"apiVersion: set.example.com/v1\nkind: Thing\nmetadata: {name: ok}\nspec: {size: 1, mode: fast}\n",
		"apiVersion: set.example.com/v1\nkind: Thing\nmetadata: {name: wrong-type}\nspec: {size: two}\n",
		"apiVersion: set.example.com/v1\nkind: Thing\nmetadata: {name: not-allowed}\nspec: {size: -1, mode: slow}\n",
		"apiVersion: set.example.com/v1\nkind: Thing\nmetadata: {name: missing}\nspec: {mode: safe}\n",
		"apiVersion: set.example.com/v2\nkind: Thing\nmetadata: {name: unserved}\nspec: {size: 1}\n",
		"apiVersion: v1\nkind: Namespace\nmetadata: {name: brand-new}\n",
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: typed-wrong, namespace: brand-new}\nspec: {replicas: two, selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: x}]}}}\n",
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: negative, namespace: brand-new}\nspec: {replicas: -1, selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: x}]}}}\n",
	)
	res, err := Run(ctx, k, ms, Options{Force: true, DefaultNamespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	got := byName(res)
	want := map[string]struct {
		action          Action
		namespace, text string
	}{
		"global":      {Created, "", "checked against the CRD's schema"},
		"ok":          {Created, "default", "checked against the CRD's schema"},
		"wrong-type":  {Failed, "default", "spec.size"},
		"not-allowed": {Failed, "default", "spec.mode"},
		"missing":     {Failed, "default", "spec.size"},
		"unserved":    {Failed, "default", "version v2 is not served by CRD things.set.example.com"},
		"typed-wrong": {Failed, "brand-new", ".spec.replicas"},
		"negative":    {Created, "brand-new", "the rest not validated"},
	}
	for name, w := range want {
		o := got[name]
		if o.Action != w.action || o.Namespace != w.namespace || !strings.Contains(o.Error+o.Note, w.text) {
			t.Errorf("%s: %s in %q, %q %q; want %s in %q saying %q", name, o.Action, o.Namespace, o.Error, o.Note, w.action, w.namespace, w.text)
		}
	}
}

// TestPruneOnlyWhereTheManifestsAre: --prune looks in the namespaces the
// manifests use, not in the default namespace when none is there.
func TestPruneOnlyWhereTheManifestsAre(t *testing.T) {
	_, ctx, k, dyn := onCluster(t, 2*time.Minute)
	applyAll(t, ctx, dyn, k,
		"apiVersion: v1\nkind: Namespace\nmetadata: {name: prune-a}\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kept, namespace: prune-a, labels: {set: prune-test}}\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: gone, namespace: prune-a, labels: {set: prune-test}}\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: unrelated, namespace: default, labels: {set: prune-test}}\n",
	)
	ms := manifests(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kept, namespace: prune-a, labels: {set: prune-test}}\n")
	res, err := Run(ctx, k, ms, Options{Force: true, DefaultNamespace: "default", PruneSelector: "set=prune-test"})
	if err != nil {
		t.Fatal(err)
	}
	got := byName(res)
	if got["gone"].Action != Pruned || got["kept"].Action != Unchanged {
		t.Errorf("in the manifests' namespace: %+v", res.Objects)
	}
	if o, ok := got["unrelated"]; ok {
		t.Errorf("an object in a namespace no manifest uses is reported: %+v", o)
	}
}

// TestPruneKnowsAnObjectInAnyVersion: the list for pruning reads each object
// in the version the server prefers; an object the manifests hold in another
// version (autoscaling/v1, preferred v2) is theirs, not pruned, and the same
// object given in two versions is given twice.
func TestPruneKnowsAnObjectInAnyVersion(t *testing.T) {
	_, ctx, k, dyn := onCluster(t, 2*time.Minute)
	hpa := func(version string) string {
		return "apiVersion: autoscaling/" + version + "\nkind: HorizontalPodAutoscaler\nmetadata: {name: web, namespace: prune-v, labels: {set: prune-v}}\n" +
			"spec: {scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}, minReplicas: 1, maxReplicas: 3}\n"
	}
	applyAll(t, ctx, dyn, k, "apiVersion: v1\nkind: Namespace\nmetadata: {name: prune-v}\n", hpa("v2"))
	res, err := Run(ctx, k, manifests(t, hpa("v1")), Options{Force: true, DefaultNamespace: "default", PruneSelector: "set=prune-v"})
	if err != nil {
		t.Fatal(err)
	}
	// (Read as v1, an HPA carries v2's fields in annotations: it may
	// show as changed. It must not show as pruned too.)
	if len(res.Objects) != 1 || res.Objects[0].Action == Pruned || res.Objects[0].Action == Failed {
		t.Errorf("want the one object, not pruned: %+v", res.Objects)
	}
	res, err = Run(ctx, k, manifests(t, hpa("v1"), hpa("v2")), Options{Force: true, DefaultNamespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	var twice int
	for _, o := range res.Objects {
		if o.Action == Failed && strings.Contains(o.Error, "given twice") {
			twice++
		}
	}
	if twice != 1 {
		t.Errorf("written as v1 and v2: %+v", res.Objects)
	}
}

// TestPruneOnlyKeepsOneInstall: objects of another install carry the same
// labels (the same agent in two namespaces); PruneOnly leaves them out,
// cluster-scoped ones included.
func TestPruneOnlyKeepsOneInstall(t *testing.T) {
	_, ctx, k, dyn := onCluster(t, 2*time.Minute)
	role := func(name string) string {
		return "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: '" + name + "', labels: {set: prune-two}}\nrules: []\n"
	}
	applyAll(t, ctx, dyn, k,
		"apiVersion: v1\nkind: Namespace\nmetadata: {name: prune-one, labels: {set: prune-two}}\n",
		"apiVersion: v1\nkind: Namespace\nmetadata: {name: prune-other, labels: {set: prune-two}}\n",
		role("prune-one:kept"), role("prune-one:gone"), role("prune-other:theirs"),
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: theirs, namespace: prune-other, labels: {set: prune-two}}\n",
	)
	// A Service's Endpoints carry its labels and have no owner; they are
	// not the manifests' to prune either.
	svc := "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: prune-one, labels: {set: prune-two}}\nspec: {selector: {app: web}, ports: [{port: 80}]}\n"
	applyAll(t, ctx, dyn, k, svc)
	endpoints := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "endpoints"}).Namespace("prune-one")
	for {
		if _, err := endpoints.Get(ctx, "web", metav1.GetOptions{}); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the endpoints controller made no Endpoints for the Service")
		case <-time.After(100 * time.Millisecond):
		}
	}
	ms := manifests(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: prune-one, labels: {set: prune-two}}\n", role("prune-one:kept"), svc)
	ours := func(namespace, name string) bool {
		return namespace == "prune-one" || namespace == "" && (name == "prune-one" || strings.HasPrefix(name, "prune-one:"))
	}
	res, err := Run(ctx, k, ms, Options{Force: true, DefaultNamespace: "prune-one", PruneSelector: "set=prune-two", PruneOnly: ours})
	if err != nil {
		t.Fatal(err)
	}
	var pruned []string
	for _, o := range res.Objects {
		if o.Action == Pruned {
			pruned = append(pruned, o.Name)
		}
	}
	if strings.Join(pruned, ",") != "prune-one:gone" {
		t.Errorf("pruned %q, want only prune-one:gone", pruned)
	}
}
