package diff

import (
	"context"
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube/fake"
)

// withMeta is a ConfigMap with labels and annotations given as YAML flow
// maps ("" none).
func withMeta(labels, annotations string) *unstructured.Unstructured {
	o := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "x"}}}
	set := func(flow string, fn func(map[string]string)) {
		if flow == "" {
			return
		}
		m := map[string]string{}
		for kv := range strings.SplitSeq(flow, ",") {
			k, v, _ := strings.Cut(kv, "=")
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
		fn(m)
	}
	set(labels, o.SetLabels)
	set(annotations, o.SetAnnotations)
	return o
}

const (
	ssaKey       = "kustomize.toolkit.fluxcd.io/ssa"
	reconcileKey = "kustomize.toolkit.fluxcd.io/reconcile"
	pruneKey     = "kustomize.toolkit.fluxcd.io/prune"
)

// TestFluxPolicySkip: kustomize-controller leaves alone an object whose
// manifest or live object says ssa: Ignore or reconcile: disabled (label or
// annotation, any case), and one whose manifest says ssa: IfNotPresent once
// it exists.
func TestFluxPolicySkip(t *testing.T) {
	none := withMeta("", "")
	for _, c := range []struct {
		name          string
		desired, live *unstructured.Unstructured // live nil: absent
		want          string                     // "" applied
	}{
		{"nothing said", none, none, ""},
		{"nothing said, absent", none, nil, ""},
		{"Ignore on the manifest", withMeta("", ssaKey+"=Ignore"), none, "annotation " + ssaKey + ": Ignore on the manifest"},
		{"Ignore on the manifest, absent", withMeta("", ssaKey+"=Ignore"), nil, "annotation " + ssaKey + ": Ignore on the manifest"},
		{"ignore in lower case", withMeta("", ssaKey+"=ignore"), none, "Ignore on the manifest"},
		{"IGNORE as a label of the live object", none, withMeta(ssaKey+"=IGNORE", ""), "label " + ssaKey + ": Ignore on the live object"},
		{"reconcile disabled on the live object", none, withMeta("", reconcileKey+"=Disabled"), "annotation " + reconcileKey + ": disabled on the live object"},
		{"reconcile disabled as a label", none, withMeta(reconcileKey+"=disabled", ""), "label " + reconcileKey + ": disabled on the live object"},
		// As ssa's exclusion selector, which checks both objects.
		{"reconcile disabled on the manifest", withMeta("", reconcileKey+"=disabled"), nil, reconcileKey + ": disabled on the manifest"},
		{"reconcile enabled", none, withMeta("", reconcileKey+"=enabled"), ""},
		{"IfNotPresent, present", withMeta("", ssaKey+"=IfNotPresent"), none, "annotation " + ssaKey + ": IfNotPresent on the manifest, and the object exists"},
		{"ifnotpresent as a label, present", withMeta(ssaKey+"=ifnotpresent", ""), none, "label " + ssaKey + ": IfNotPresent"},
		{"IfNotPresent, absent", withMeta("", ssaKey+"=IfNotPresent"), nil, ""},
		{"IfNotPresent on the live object only", none, withMeta("", ssaKey+"=IfNotPresent"), ""},
		{"Merge", withMeta("", ssaKey+"=Merge"), none, ""},
		{"Override", withMeta("", ssaKey+"=Override"), none, ""},
		{"empty value", withMeta("", ssaKey+"="), withMeta(reconcileKey+"=", ""), ""},
		{"another key", withMeta("", "example.com/ssa=Ignore"), none, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := FluxPolicy{}.Skip(c.desired, c.live)
			if (got == "") != (c.want == "") || !strings.Contains(got, c.want) {
				t.Errorf("%q, want %q", got, c.want)
			}
		})
	}
}

// TestFluxPolicyKeep: kustomize-controller does not prune an object with
// prune: disabled or reconcile: disabled (label or annotation, any case),
// nor one without its Kustomization's owner labels.
func TestFluxPolicyKeep(t *testing.T) {
	owned := "kustomize.toolkit.fluxcd.io/name=apps, kustomize.toolkit.fluxcd.io/namespace=flux-system"
	for _, c := range []struct {
		name   string
		policy FluxPolicy
		live   *unstructured.Unstructured
		want   string // "" pruned
	}{
		{"owned", FluxPolicy{Name: "apps", Namespace: "flux-system"}, withMeta(owned, ""), ""},
		{"owner not checked", FluxPolicy{}, withMeta("", ""), ""},
		{"not owned", FluxPolicy{Name: "apps", Namespace: "flux-system"}, withMeta("", ""), "not labelled kustomize.toolkit.fluxcd.io/name=apps, kustomize.toolkit.fluxcd.io/namespace=flux-system"},
		{"another Kustomization's", FluxPolicy{Name: "apps", Namespace: "flux-system"}, withMeta(strings.Replace(owned, "=apps", "=infra", 1), ""), "not labelled"},
		{"prune disabled", FluxPolicy{}, withMeta("", pruneKey+"=disabled"), "annotation " + pruneKey + ": disabled"},
		{"prune Disabled as a label", FluxPolicy{Name: "apps", Namespace: "flux-system"}, withMeta(owned+", "+pruneKey+"=Disabled", ""), "label " + pruneKey + ": disabled"},
		{"reconcile disabled", FluxPolicy{}, withMeta("", reconcileKey+"=DISABLED"), "annotation " + reconcileKey + ": disabled"},
		{"prune enabled", FluxPolicy{}, withMeta("", pruneKey+"=enabled"), ""},
		{"ssa Ignore is no reason to keep", FluxPolicy{}, withMeta("", ssaKey+"=Ignore"), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := c.policy.Keep(c.live)
			if (got == "") != (c.want == "") || !strings.Contains(got, c.want) {
				t.Errorf("%q, want %q", got, c.want)
			}
		})
	}
}

// TestDecideWithPolicy: a skipped object is decided before the cluster is
// asked anything; IfNotPresent asks only when absent; an object that cannot
// be read is an error, not skipped (its live labels are not known).
func TestDecideWithPolicy(t *testing.T) {
	d := decider{n: normalizer{key: []byte("k")}, policy: FluxPolicy{}}
	once := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web, annotations: {" + ssaKey + ": IfNotPresent}}\ndata: {a: '2'}\n"
	ignored := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web, annotations: {" + ssaKey + ": Ignore}}\ndata: {a: '2'}\n"
	disabledLive := strings.Replace(liveOf(configMap("web", "a: '1'")), "name: web", "name: web, labels: {"+reconcileKey+": disabled}", 1)

	for _, c := range []struct {
		name, desired, live string
		readErr             error
		want                Action
		text                string
	}{
		{"ignored, present", ignored, liveOf(configMap("web", "a: '1'")), nil, Skipped, "Ignore on the manifest"},
		{"ignored, absent", ignored, "", nil, Skipped, "Ignore on the manifest"},
		{"reconcile disabled live", configMap("web", "a: '2'"), disabledLive, nil, Skipped, "disabled on the live object"},
		{"IfNotPresent, present", once, liveOf(configMap("web", "a: '1'")), nil, Skipped, "IfNotPresent"},
		{"unreadable", ignored, "", errors.New("boom"), Failed, "reading the live object: boom"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := stateOf(t, c.desired, c.live)
			s.ReadErr = c.readErr
			o, decided := d.decide(s, nil)
			if !decided || o.Action != c.want || !strings.Contains(o.Note+o.Error, c.text) || o.Before+o.After != "" || o.ChangedPaths != nil {
				t.Errorf("%v %+v; want %s saying %q", decided, o, c.want, c.text)
			}
		})
	}

	s := stateOf(t, once, "")
	if _, decided := d.decide(s, nil); decided {
		t.Fatal("IfNotPresent, absent: decided before the dry run")
	}
	merged := decodeYAML(t, liveOf(once))
	if o, _ := d.decide(s, &answer{Merged: merged}); o.Action != Created {
		t.Errorf("IfNotPresent, absent: %+v", o)
	}
}

// TestRunFluxPolicy: Run with kustomize-controller's field manager, forced
// ownership and FluxPolicy over the in-memory cluster: skipped objects make
// no dry run and count as no difference; inventory entries the build no
// longer holds are pruned when they exist, unless the policy keeps them.
func TestRunFluxPolicy(t *testing.T) {
	c := fakeCluster(t, false)
	owner := "kustomize.toolkit.fluxcd.io/name: apps, kustomize.toolkit.fluxcd.io/namespace: flux-system"
	cm := func(name, meta, data string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + name + ", labels: {" + owner + "}" + meta + "}\ndata: {" + data + "}\n"
	}
	ann := func(k, v string) string { return ", annotations: {" + k + ": " + v + "}" }
	applyLive(t, c, FluxFieldManager,
		cm("same", "", "a: '1'"), cm("changed", "", "a: '1'"), cm("ignored", "", "a: '1'"),
		cm("disabled", ann(reconcileKey, "Disabled"), "a: '1'"), cm("once", "", "a: '1'"),
		cm("gone", "", "a: '1'"), cm("kept", ann(pruneKey, "disabled"), "a: '1'"))
	// Someone edits a field kustomize-controller owns: forced, it takes it
	// back.
	applyLive(t, c, "kubectl-edit", configMap("changed", "a: '9'"))
	c.Put(decodeYAML(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: foreign, namespace: default}\n"))

	before := c.Count(fake.DryRun)
	res := runFake(t, c, Options{
		Manager: FluxFieldManager, Force: true, Policy: FluxPolicy{Name: "apps", Namespace: "flux-system"},
		PruneRefs: []kube.Ref{
			{APIVersion: "v1", Kind: "ConfigMap", Namespace: "default", Name: "gone"},
			{APIVersion: "v1", Kind: "ConfigMap", Namespace: "default", Name: "kept"},
			{APIVersion: "v1", Kind: "ConfigMap", Namespace: "default", Name: "foreign"},
			{APIVersion: "v1", Kind: "ConfigMap", Namespace: "default", Name: "absent"},
			{APIVersion: "v1", Kind: "ConfigMap", Namespace: "default", Name: "same"}, // in the build
			{APIVersion: "example.com/v1", Kind: "Widget", Namespace: "default", Name: "w"},
		},
	},
		cm("same", "", "a: '1'"), cm("changed", "", "a: '1'"),
		cm("ignored", ann(ssaKey, "Ignore"), "a: '2'"),
		cm("disabled", "", "a: '2'"),
		cm("once", ann(ssaKey, "IfNotPresent"), "a: '2'"),
		cm("new-once", ann(ssaKey, "IfNotPresent"), "a: '2'"),
		cm("new-ignored", ann(ssaKey, "ignore"), "a: '2'"),
		"apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: widget, annotations: {"+ssaKey+": Ignore}}\n")
	want(t, res, map[string]verdict{
		"same": {Unchanged, ""}, "changed": {Changed, ""},
		"ignored":     {Skipped, "annotation " + ssaKey + ": Ignore on the manifest"},
		"disabled":    {Skipped, "annotation " + reconcileKey + ": disabled on the live object"},
		"once":        {Skipped, ssaKey + ": IfNotPresent on the manifest, and the object exists"},
		"new-once":    {Created, ""},
		"new-ignored": {Skipped, "Ignore on the manifest"},
		"widget":      {Skipped, "Ignore on the manifest"},
		"gone":        {Pruned, ""},
		"kept":        {Skipped, "not pruned: annotation " + pruneKey + ": disabled"},
		"foreign":     {Skipped, "not pruned: not labelled kustomize.toolkit.fluxcd.io/name=apps"},
	})
	// changed and new-once; same is known from kustomize-controller's own
	// fields.
	if n := c.Count(fake.DryRun) - before; n != 2 {
		t.Errorf("%d dry runs, want 2", n)
	}
	if ch := byName(res)["changed"]; len(ch.Changes) != 1 || ch.Changes[0].Old != "9" || ch.Changes[0].New != "1" {
		t.Errorf("changed: %+v", ch.Changes)
	}
	if g := byName(res)["gone"]; !strings.Contains(g.Before, "name: gone") {
		t.Errorf("pruned: %+v", g)
	}
	if cnt := res.Counts(); cnt[Skipped] != 7 || !res.Differs() || res.Failed() {
		t.Errorf("counts %v, differs %v, failed %v", cnt, res.Differs(), res.Failed())
	}

	// Only skipped objects: no difference.
	res = runFake(t, c, Options{Manager: FluxFieldManager, Force: true, Policy: FluxPolicy{}}, cm("ignored", ann(ssaKey, "Ignore"), "a: '2'"))
	if res.Differs() || res.Objects[0].Action != Skipped {
		t.Errorf("skipped only: %+v", res.Objects)
	}
}

// TestRunPruneRefsFailures: an entry that cannot be read is its object's
// error; a cluster that stops answering ends the run; so does ctx.
func TestRunPruneRefsFailures(t *testing.T) {
	c := fakeCluster(t, false)
	applyLive(t, c, FluxFieldManager, configMap("a", ""), configMap("b", ""))
	refs := []kube.Ref{{APIVersion: "v1", Kind: "ConfigMap", Namespace: "default", Name: "a"}, {APIVersion: "v1", Kind: "ConfigMap", Namespace: "default", Name: "b"}}
	// Reads: the one manifest, then a, then b.
	c.Fail(fake.Read, c.Count(fake.Read)+2, errors.New("boom"))
	res := runFake(t, c, Options{PruneRefs: refs}, configMap("kept", ""))
	want(t, res, map[string]verdict{"kept": {Created, ""}, "a": {Failed, "reading the live object: boom"}, "b": {Pruned, ""}})

	c.Fail(fake.Read, c.Count(fake.Read)+2, &kube.UnreachableError{Server: "https://127.0.0.1:1", Err: errors.New("connection refused")})
	_, err := Run(context.Background(), c, manifests(t, configMap("kept", "")), Options{DefaultNamespace: "default", PruneRefs: refs})
	var ue *kube.UnreachableError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "reading objects to prune") {
		t.Errorf("unreachable: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	c.Hook(fake.Read, c.Count(fake.Read)+2, func() error { cancel(); return nil })
	if _, err := Run(ctx, c, manifests(t, configMap("kept", "")), Options{DefaultNamespace: "default", PruneRefs: refs}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// TestRunPruneSelectorWithPolicy: what the selector lists is kept when the
// policy says so, and an inventory entry the selector listed too is one
// outcome, not two.
func TestRunPruneSelectorWithPolicy(t *testing.T) {
	c := fakeCluster(t, false)
	labelled := func(name, meta string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + name + ", labels: {set: s}" + meta + "}\n"
	}
	applyLive(t, c, kube.FieldManager, labelled("gone", ""), labelled("kept", ", annotations: {"+pruneKey+": Disabled}"))
	res := runFake(t, c, Options{PruneSelector: "set=s", Policy: FluxPolicy{},
		PruneRefs: []kube.Ref{{APIVersion: "v1", Kind: "ConfigMap", Namespace: "default", Name: "gone"}}},
		labelled("new", ""))
	want(t, res, map[string]verdict{"new": {Created, ""}, "gone": {Pruned, ""}, "kept": {Skipped, "not pruned: annotation " + pruneKey + ": disabled"}})
}
