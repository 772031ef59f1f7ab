package diff

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/openapi/openapitest"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube/fake"
)

// Run's paths against the in-memory cluster: no control plane, so these run
// under -short too. The fake merges dry runs as a server-side apply would;
// what only the apiserver knows (defaults, validation, conversion) is the
// tests against the control plane's.

// fakeCluster is an in-memory cluster with the Namespace default; with
// schema, the server's OpenAPI v3 schema of core/v1 and apps/v1 (client-go's
// test copy), so that Run predicts.
func fakeCluster(t *testing.T, schema bool) *fake.Cluster {
	t.Helper()
	c := fake.New()
	if schema {
		c.Schema = openapitest.NewEmbeddedFileClient()
	}
	applyLive(t, c, "kubectl", "apiVersion: v1\nkind: Namespace\nmetadata: {name: default}\n")
	return c
}

// applyLive applies docs to c as manager (forcing conflicts), as what is
// live before a diff.
func applyLive(t *testing.T, c *fake.Cluster, manager string, docs ...string) {
	t.Helper()
	for _, m := range manifests(t, docs...) {
		tg, err := c.Map(context.Background(), m, "default", false)
		if err != nil {
			t.Fatal(err)
		}
		o, err := tg.Object()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Apply(context.Background(), tg, o, manager, true, false); err != nil {
			t.Fatal(err)
		}
	}
}

func runFake(t *testing.T, c *fake.Cluster, o Options, docs ...string) *Result {
	t.Helper()
	if o.DefaultNamespace == "" {
		o.DefaultNamespace = "default"
	}
	res, err := Run(context.Background(), c, manifests(t, docs...), o)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// want checks each named object's action and that its error or note holds
// text.
func want(t *testing.T, res *Result, wants map[string]struct {
	action Action
	text   string
}) {
	t.Helper()
	got := byName(res)
	for name, w := range wants {
		o, ok := got[name]
		if !ok || o.Action != w.action || !strings.Contains(o.Error+o.Note, w.text) {
			t.Errorf("%s: %s %q %q; want %s saying %q", name, o.Action, o.Error, o.Note, w.action, w.text)
		}
	}
	if len(got) != len(wants) {
		t.Errorf("%d objects, want %d: %+v", len(got), len(wants), res.Objects)
	}
}

type verdict = struct {
	action Action
	text   string
}

func configMap(name, data string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + name + "}\ndata: {" + data + "}\n"
}

// TestRunVerdicts: unchanged (known from the plugin's own fields without a
// dry run, or from the dry run), changed with its paths, created, and
// failed for a kind the cluster lacks.
func TestRunVerdicts(t *testing.T) {
	c := fakeCluster(t, false)
	applyLive(t, c, kube.FieldManager, configMap("ours", "a: '1'"), configMap("changed", "a: '1', b: '2'"))
	applyLive(t, c, "helm", configMap("helms", "a: '1'"))
	before := c.Count(fake.DryRun)
	res := runFake(t, c, Options{Force: true},
		configMap("ours", "a: '1'"), configMap("helms", "a: '1'"), configMap("changed", "a: '2', b: '2'"), configMap("new", "a: '1'"),
		"apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: widget}\n")
	want(t, res, map[string]verdict{
		"ours": {Unchanged, ""}, "helms": {Unchanged, ""}, "changed": {Changed, ""}, "new": {Created, ""},
		"widget": {Failed, "the cluster has no kind Widget in example.com/v1"},
	})
	// ours needed no dry run: its fields are the plugin's, with the values.
	if n := c.Count(fake.DryRun) - before; n != 3 {
		t.Errorf("%d dry runs, want 3 (helms, changed, new)", n)
	}
	ch := byName(res)["changed"]
	if !slices.Equal(ch.ChangedPaths, []string{".data.a"}) || len(ch.Changes) != 1 || ch.Changes[0].Old != "1" || ch.Changes[0].New != "2" ||
		!strings.Contains(ch.Before, `a: "1"`) || !strings.Contains(ch.After, `a: "2"`) {
		t.Errorf("changed: %+v", ch)
	}
	if n := byName(res)["new"]; !slices.Equal(n.ChangedPaths, []string{"."}) || n.Before != "" || !strings.Contains(n.After, "name: new") {
		t.Errorf("created: %+v", n)
	}
	if !res.Differs() || !res.Failed() {
		t.Errorf("differs %v, failed %v", res.Differs(), res.Failed())
	}

	// Only the server: ours is dry-run too.
	before = c.Count(fake.DryRun)
	res = runFake(t, c, Options{Force: true, ServerOnly: true}, configMap("ours", "a: '1'"))
	if n := c.Count(fake.DryRun) - before; n != 1 || res.Objects[0].Action != Unchanged {
		t.Errorf("server only: %d dry runs, %+v", n, res.Objects)
	}
}

// TestRunFailures: what cannot be read, dry-run or patched is an error of
// its object, the others go on; an object given twice and one outside -n's
// namespace are errors; a context that ends ends the run.
func TestRunFailures(t *testing.T) {
	c := fakeCluster(t, false)
	applyLive(t, c, kube.FieldManager, configMap("locked", "a: '1'"), configMap("locked-changed", "a: '1'"), configMap("unsure", "a: '1'"))
	boom := errors.New("boom")
	c.Fail(fake.Read, c.Count(fake.Read)+1, boom)
	c.Fail(fake.DryRun, c.Count(fake.DryRun)+1, boom)
	// A question the access review cannot answer goes to the dry run.
	c.Hook(fake.CanPatch, c.Count(fake.CanPatch)+1, func() error {
		c.MayPatch = func(_ schema.GroupVersionResource, _, name string) (bool, string) {
			return !strings.HasPrefix(name, "locked"), "you cannot patch " + name
		}
		return boom
	})
	res := runFake(t, c, Options{Force: true},
		configMap("unreadable", "a: '1'"), configMap("refused", "a: '1'"), configMap("unsure", "a: '1'"),
		configMap("locked", "a: '1'"), configMap("locked-changed", "a: '2'"),
		configMap("twice", "a: '1'"), configMap("twice", "a: '2'"),
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: elsewhere, namespace: other}\n")
	var twice []Action
	for _, o := range res.Objects {
		if o.Name == "twice" {
			twice = append(twice, o.Action)
			if o.Action == Failed && o.Error != "given twice (test and test)" {
				t.Errorf("twice: %q", o.Error)
			}
		}
	}
	if slices.Sort(twice); !slices.Equal(twice, []Action{Created, Failed}) {
		t.Errorf("an object given twice: %v, want one created and one error", twice)
	}
	res.Objects = slices.DeleteFunc(res.Objects, func(o Object) bool { return o.Name == "twice" })
	want(t, res, map[string]verdict{
		"unreadable":     {Failed, "reading the live object: boom"},
		"refused":        {Failed, "boom"},
		"unsure":         {Unchanged, ""},
		"locked":         {Failed, "forbidden: you cannot patch locked"},
		"locked-changed": {Failed, "forbidden: you cannot patch locked-changed"},
		"elsewhere":      {Failed, `namespaces "other" not found`},
	})

	// The namespace is a NotFound on the server; with -n it is an error
	// before.
	res = runFake(t, c, Options{Force: true, EnforceNamespace: true}, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: elsewhere, namespace: other}\n")
	if o := res.Objects[0]; o.Action != Failed || !strings.Contains(o.Error, `its namespace "other" does not match -n "default"`) {
		t.Errorf("-n: %+v", o)
	}
	c.Put(decodeYAML(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: other}\n"))
	res = runFake(t, c, Options{Force: true}, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: elsewhere, namespace: other}\n")
	if o := res.Objects[0]; o.Action != Created || o.Namespace != "other" {
		t.Errorf("without -n: %+v", o)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, c, manifests(t, configMap("x", "")), Options{DefaultNamespace: "default"}); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled run: %v", err)
	}
}

// TestRunConflicts: without force, a field another manager holds with
// another value is the object's error.
func TestRunConflicts(t *testing.T) {
	c := fakeCluster(t, false)
	applyLive(t, c, "helm", configMap("web", "a: '1'"))
	res := runFake(t, c, Options{}, configMap("web", "a: '2'"))
	if o := res.Objects[0]; o.Action != Failed || !strings.Contains(o.Error, `conflict with "helm": .data.a`) {
		t.Errorf("without force: %+v", o)
	}
	if o := runFake(t, c, Options{Force: true}, configMap("web", "a: '2'")).Objects[0]; o.Action != Changed {
		t.Errorf("with force: %+v", o)
	}
}

// TestRunAdmission: an object a webhook or policy may act on goes to the
// dry run even when nothing would change; an admission configuration that
// cannot be read sends all and says so.
func TestRunAdmission(t *testing.T) {
	c := fakeCluster(t, false)
	applyLive(t, c, kube.FieldManager, configMap("web", "a: '1'"))
	c.Put(decodeYAML(t, `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: check-configmaps}
webhooks:
- name: check.example.com
  rules: [{operations: [UPDATE], apiGroups: [""], apiVersions: [v1], resources: [configmaps]}]
`))
	before := c.Count(fake.DryRun)
	res := runFake(t, c, Options{Force: true}, configMap("web", "a: '1'"))
	if n := c.Count(fake.DryRun) - before; n != 1 || res.Objects[0].Action != Unchanged || len(res.Notes) != 0 {
		t.Errorf("a webhook's: %d dry runs, %+v, notes %q", n, res.Objects, res.Notes)
	}

	c = fakeCluster(t, false)
	applyLive(t, c, kube.FieldManager, configMap("web", "a: '1'"))
	c.Fail(fake.ReadAdmission, 1, errors.New("listing validatingwebhookconfigurations: forbidden"))
	before = c.Count(fake.DryRun)
	res = runFake(t, c, Options{Force: true}, configMap("web", "a: '1'"))
	if n := c.Count(fake.DryRun) - before; n != 1 || len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "every object was dry-run on the server: listing validatingwebhookconfigurations: forbidden") {
		t.Errorf("unreadable: %d dry runs, notes %q", n, res.Notes)
	}
}

// TestRunCreatedWithNamespaceOrCRD: objects whose Namespace or CRD the same
// manifests create show as created, checked as far as can be here.
func TestRunCreatedWithNamespaceOrCRD(t *testing.T) {
	deployment := func(name, replicas string) string {
		return "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: " + name + ", namespace: brand-new}\n" +
			"spec: {replicas: " + replicas + ", selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: x}]}}}\n"
	}
	noSchema := strings.Replace(crd("plain", "Plain", "Namespaced"), "    schema:\n", "    x-schema:\n", 1)
	docs := []string{
		crd("clusterthings", "ClusterThing", "Cluster"),
		crd("things", "Thing", "Namespaced"),
		noSchema,
		"apiVersion: set.example.com/v1\nkind: ClusterThing\nmetadata: {name: global, namespace: ignored}\nspec: {size: 1}\n",
		"apiVersion: set.example.com/v1\nkind: Thing\nmetadata: {name: ok}\nspec: {size: 1, mode: fast}\n",
		"apiVersion: set.example.com/v1\nkind: Thing\nmetadata: {name: wrong-type}\nspec: {size: two}\n",
		"apiVersion: set.example.com/v1\nkind: Thing\nmetadata: {name: many, namespace: default}\nspec: {size: -1, mode: slow, extra: 1}\n",
		"apiVersion: set.example.com/v2\nkind: Thing\nmetadata: {name: unserved}\nspec: {size: 1}\n",
		"apiVersion: set.example.com/v1\nkind: Plain\nmetadata: {name: anything}\nspec: {size: two}\n",
		"apiVersion: v1\nkind: Namespace\nmetadata: {name: brand-new}\n",
		deployment("typed-wrong", "two"), deployment("negative", "-1"),
	}
	wants := map[string]verdict{
		"clusterthings.set.example.com": {Created, ""}, "things.set.example.com": {Created, ""}, "plain.set.example.com": {Created, ""},
		"global":     {Created, "checked against the CRD's schema"},
		"ok":         {Created, "checked against the CRD's schema"},
		"wrong-type": {Failed, "invalid by CRD things.set.example.com: .spec.size: expected numeric"},
		// The apply fails on a field the schema does not declare before
		// anything validates the others.
		"many":      {Failed, ".spec.extra: field not declared in schema"},
		"unserved":  {Failed, "version v2 is not served by CRD things.set.example.com in the same manifests (it serves v1)"},
		"anything":  {Created, "which gives no schema for v1: not validated"},
		"brand-new": {Created, ""},
	}
	// Without the server's schema nothing of the new namespace's objects
	// is checked.
	wants["typed-wrong"], wants["negative"] = verdict{Created, "not validated by the server"}, verdict{Created, "not validated by the server"}
	res := runFake(t, fakeCluster(t, false), Options{Force: true}, docs...)
	want(t, res, wants)
	got := byName(res)
	if got["global"].Namespace != "" || got["ok"].Namespace != "default" || got["typed-wrong"].Namespace != "brand-new" {
		t.Errorf("namespaces: global %q, ok %q, typed-wrong %q", got["global"].Namespace, got["ok"].Namespace, got["typed-wrong"].Namespace)
	}
	// With it, field types are.
	wants["typed-wrong"], wants["negative"] = verdict{Failed, "invalid: .spec.replicas"}, verdict{Created, "field types checked against the server's schema"}
	want(t, runFake(t, fakeCluster(t, true), Options{Force: true}, docs...), wants)
}

// TestRunPrune: live objects of the set that the manifests no longer hold
// are pruned: namespaced ones in the manifests' namespaces, cluster-scoped
// ones all; not those PruneOnly refuses, a controller owns, nor a kept
// Service's Endpoints.
func TestRunPrune(t *testing.T) {
	c := fakeCluster(t, false)
	labelled := func(kind, name, ns string) string {
		return "apiVersion: v1\nkind: " + kind + "\nmetadata: {name: " + name + ", namespace: " + ns + ", labels: {set: s}}\n"
	}
	applyLive(t, c, kube.FieldManager, labelled("ConfigMap", "kept", "default"), labelled("ConfigMap", "gone", "default"))
	c.Put(decodeYAML(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: elsewhere}\n"))
	c.Put(decodeYAML(t, labelled("ConfigMap", "elsewhere", "elsewhere")),
		decodeYAML(t, "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: ours:role, labels: {set: s}}\n"),
		decodeYAML(t, "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: theirs:role, labels: {set: s}}\n"),
		decodeYAML(t, labelled("Endpoints", "web", "default")),
		decodeYAML(t, labelled("Endpoints", "old-service", "default")),
		decodeYAML(t, "apiVersion: v1\nkind: Pod\nmetadata: {name: owned, namespace: default, labels: {set: s}, ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: r, uid: u, controller: true}]}\n"),
	)
	ours := func(namespace, name string) bool { return namespace != "" || strings.HasPrefix(name, "ours:") }
	res := runFake(t, c, Options{Force: true, PruneSelector: "set=s", PruneOnly: ours},
		labelled("ConfigMap", "kept", "default"),
		"apiVersion: v1\nkind: Service\nmetadata: {name: web, labels: {set: s}}\nspec: {ports: [{port: 80}]}\n")
	want(t, res, map[string]verdict{
		"kept": {Unchanged, ""}, "web": {Created, ""}, "gone": {Pruned, ""}, "ours:role": {Pruned, ""}, "old-service": {Pruned, ""},
	})
	if g := byName(res)["gone"]; !strings.Contains(g.Before, "name: gone") || g.After != "" {
		t.Errorf("pruned: %+v", g)
	}

	c.Fail(fake.ListSelected, c.Count(fake.ListSelected)+1, errors.New("boom"))
	if _, err := Run(context.Background(), c, manifests(t, labelled("ConfigMap", "kept", "default")), Options{DefaultNamespace: "default", PruneSelector: "set=s"}); err == nil || !strings.Contains(err.Error(), "listing objects to prune: boom") {
		t.Errorf("a failed list: %v", err)
	}
}

// TestRunIgnoresAndMasks: ignore rules leave fields others own out, by path
// or by manager; Secret values are masked unless shown.
func TestRunIgnoresAndMasks(t *testing.T) {
	c := fakeCluster(t, false)
	deployment := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n" +
		"spec: {replicas: 1, selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: x}]}}}\n"
	applyLive(t, c, kube.FieldManager, deployment)
	applyLive(t, c, "autoscaler", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 3}\n")
	if o := runFake(t, c, Options{Force: true}, deployment).Objects[0]; o.Action != Changed || !slices.Equal(o.ChangedPaths, []string{".spec.replicas"}) {
		t.Errorf("no rule: %+v", o)
	}
	byPath, err := ParseIgnoreRule("Deployment:.spec.replicas")
	if err != nil {
		t.Fatal(err)
	}
	byManager := IgnoreRule{Group: "apps", Kind: "Deployment", Managers: []string{"autoscaler"}}
	for _, r := range []IgnoreRule{byPath, byManager} {
		if o := runFake(t, c, Options{Force: true, Ignore: []IgnoreRule{r}}, deployment).Objects[0]; o.Action != Unchanged {
			t.Errorf("rule %+v: %+v", r, o)
		}
	}

	secret := "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\ndata: {password: %s}\n"
	applyLive(t, c, kube.FieldManager, strings.Replace(secret, "%s", "b2xkLXZhbHVl", 1)) // old-value
	desired := strings.Replace(secret, "%s", "bmV3LXZhbHVl", 1)                          // new-value
	for _, show := range []bool{false, true} {
		o := runFake(t, c, Options{Force: true, ShowSecrets: show, MaskKey: []byte("k")}, desired).Objects[0]
		text := o.Before + o.After + strings.Join(o.ChangedPaths, " ")
		shown := strings.Contains(text, "b2xkLXZhbHVl") && strings.Contains(text, "bmV3LXZhbHVl")
		if o.Action != Changed || shown != show || show == strings.Contains(text, "<secret sha256:") || !slices.Equal(o.ChangedPaths, []string{".data.password"}) {
			t.Errorf("show-secrets %v: %+v", show, o)
		}
	}
}

// TestRunPredicts: with the server's schema, an apply that would leave the
// object as it is needs no dry run, whoever wrote it; one that would change
// it, or that a conflict stops, goes to the server.
func TestRunPredicts(t *testing.T) {
	c := fakeCluster(t, true)
	// Shared: the plugin gave a and b, another manager b too. Giving a
	// alone leaves b (the other's), so nothing changes.
	applyLive(t, c, kube.FieldManager, configMap("shared", "a: '1', b: '2'"))
	applyLive(t, c, "other", configMap("shared", "b: '2'"))
	// Written by someone else, with the values given: the whole field
	// manager runs.
	c.Put(decodeYAML(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: helms, namespace: default}\ndata: {a: '1'}\n"))
	c.Put(decodeYAML(t, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: default}\n"+
		"spec: {replicas: 1, selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: x, "+
		"env: [{name: POD, valueFrom: {fieldRef: {apiVersion: v1, fieldPath: metadata.name}}}]}]}}}\n"+
		"status: {replicas: 1}\n"))
	applyLive(t, c, kube.FieldManager, configMap("changed", "a: '1'"))
	before := c.Count(fake.DryRun)
	res := runFake(t, c, Options{Force: true},
		configMap("shared", "a: '1'"), configMap("helms", "a: '1'"), configMap("changed", "a: '2'"),
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n"+
			"spec: {replicas: 1, selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: x, "+
			"env: [{name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]}]}}}\n")
	want(t, res, map[string]verdict{"shared": {Unchanged, ""}, "helms": {Unchanged, ""}, "changed": {Changed, ""}, "web": {Unchanged, ""}})
	if n := c.Count(fake.DryRun) - before; n != 1 {
		t.Errorf("%d dry runs, want 1 (changed)", n)
	}
	// A conflict is the server's to report.
	before = c.Count(fake.DryRun)
	if o := runFake(t, c, Options{}, configMap("shared", "b: '3'")).Objects[0]; o.Action != Failed || c.Count(fake.DryRun)-before != 1 {
		t.Errorf("a conflict: %+v after %d dry runs", o, c.Count(fake.DryRun)-before)
	}
}

// TestRunCustomResourcesAsTheApplyTakesThem: an object whose CRD comes with
// the manifests is created only where the apply would take it: not in a
// namespace that is nowhere, not in another than -n's; and so when the
// cluster's discovery (cached) still knows its kind but serves it no more.
func TestRunCustomResourcesAsTheApplyTakesThem(t *testing.T) {
	thing := func(name, ns string) string {
		return "apiVersion: set.example.com/v1\nkind: Thing\nmetadata: {name: " + name + ns + "}\nspec: {size: 1}\n"
	}
	crd := crd("things", "Thing", "Namespaced")
	res := runFake(t, fakeCluster(t, false), Options{Force: true}, crd,
		thing("here", ""), thing("in-default", ", namespace: default"), thing("nowhere", ", namespace: nowhere"),
		thing("in-a-new-one", ", namespace: brand-new"), "apiVersion: v1\nkind: Namespace\nmetadata: {name: brand-new}\n")
	want(t, res, map[string]verdict{
		"things.set.example.com": {Created, ""}, "brand-new": {Created, ""},
		"here": {Created, "checked against the CRD's schema"}, "in-default": {Created, ""}, "in-a-new-one": {Created, ""},
		"nowhere": {Failed, `namespaces "nowhere" not found (neither in the cluster nor in the manifests)`},
	})
	res = runFake(t, fakeCluster(t, false), Options{Force: true, DefaultNamespace: "default", EnforceNamespace: true}, crd, thing("elsewhere", ", namespace: other"))
	want(t, res, map[string]verdict{"things.set.example.com": {Created, ""}, "elsewhere": {Failed, `its namespace "other" does not match -n "default"`}})

	// The kind is known (a discovery cache from before the CRD was
	// deleted), the server says NotFound: it is the CRD's in the set.
	c := fakeCluster(t, false)
	c.AddKind("set.example.com/v1", "Thing", "things", true, false)
	for n := 1; n <= 2; n++ { // the dry runs go one at a time (Concurrency 1)
		c.Hook(fake.DryRun, c.Count(fake.DryRun)+n, func() error {
			calls := c.Calls()
			for i := len(calls) - 1; i >= 0; i-- {
				if calls[i].Method == fake.DryRun { // this one
					if calls[i].Ref.Kind == "Thing" {
						return apierrors.NewNotFound(schema.GroupResource{Group: "set.example.com", Resource: "things"}, "stale")
					}
					break
				}
			}
			return nil
		})
	}
	res = runFake(t, c, Options{Force: true, Concurrency: 1}, crd, "apiVersion: set.example.com/v1\nkind: Thing\nmetadata: {name: stale}\nspec: {size: 1, extra: 2}\n")
	want(t, res, map[string]verdict{"things.set.example.com": {Created, ""}, "stale": {Failed, ".spec.extra: field not declared in schema"}})
}
