package fake

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
)

func object(t *testing.T, src string) *unstructured.Unstructured {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(src), &m); err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: m}
}

func target(t *testing.T, c *Cluster, o *unstructured.Unstructured) kube.Target {
	t.Helper()
	ms, err := kube.FromObjects([]map[string]any{o.Object}, "test")
	if err != nil {
		t.Fatal(err)
	}
	tg, err := c.Map(context.Background(), ms[0], "default", false)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func apply(t *testing.T, c *Cluster, src, manager string, force, dryRun bool) (*unstructured.Unstructured, error) {
	t.Helper()
	o := object(t, src)
	return c.Apply(context.Background(), target(t, c, o), o, manager, force, dryRun)
}

func data(o *unstructured.Unstructured) map[string]string {
	d, _, _ := unstructured.NestedStringMap(o.Object, "data")
	return d
}

// TestApplyMergesAsServerSideApply: the fields given are set, those the
// manager gave before and no longer gives are removed unless another
// manager has them, and a dry run stores nothing.
func TestApplyMergesAsServerSideApply(t *testing.T) {
	c := New()
	c.Put(object(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: default}\n"))
	if _, err := apply(t, c, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {a: '1', b: '2'}\n", "me", true, false); err != nil {
		t.Fatal(err)
	}
	if _, err := apply(t, c, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {c: '3', b: '2'}\n", "other", true, false); err != nil {
		t.Fatal(err)
	}
	ref := kube.Ref{APIVersion: "v1", Kind: "ConfigMap", Namespace: "default", Name: "a"}
	before := c.Get(ref)

	// me stops giving a and b: a goes, b stays (other gave it too).
	got, err := apply(t, c, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: {l: v}}\ndata: {d: '4'}\n", "me", true, true)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"d": "4", "b": "2", "c": "3"}; !reflect.DeepEqual(data(got), want) || got.GetLabels()["l"] != "v" {
		t.Errorf("dry run: data %v, labels %v; want data %v", data(got), got.GetLabels(), want)
	}
	if !reflect.DeepEqual(c.Get(ref), before) || c.Count(DryRun) != 1 || c.Count(Apply) != 2 {
		t.Errorf("the dry run stored something, or was counted as %d dry runs and %d applies", c.Count(DryRun), c.Count(Apply))
	}

	// Without force, a field other set to another value is a conflict; to
	// the same value, it is not.
	_, err = apply(t, c, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {c: '9'}\n", "me", false, true)
	if err == nil || !strings.Contains(err.Error(), `conflict with "other": .data.c`) {
		t.Errorf("a conflicting dry run: %v", err)
	}
	if _, err := apply(t, c, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {c: '3'}\n", "me", false, true); err != nil {
		t.Errorf("the same value: %v", err)
	}

	// With force it is taken over: other, giving it up, no longer keeps it.
	if _, err := apply(t, c, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {c: '9'}\n", "me", true, false); err != nil {
		t.Fatal(err)
	}
	got, err = apply(t, c, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {b: '2'}\n", "other", false, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"b": "2", "c": "9"}; !reflect.DeepEqual(data(got), want) {
		t.Errorf("after the take-over: %v, want %v", data(got), want)
	}
}

// TestApplyRefuses: a namespace that does not exist is NotFound (the
// namespace of a stored object exists); MayPatch refuses; a failing call
// fails.
func TestApplyRefuses(t *testing.T) {
	c := New()
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: nowhere}\n"
	if _, err := apply(t, c, cm, "me", true, true); !apierrors.IsNotFound(err) {
		t.Errorf("in a namespace that does not exist: %v", err)
	}
	c.Put(object(t, "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: nowhere}\n"))
	if _, err := apply(t, c, cm, "me", true, true); err != nil {
		t.Errorf("beside a stored object: %v", err)
	}
	c.MayPatch = func(gvr schema.GroupVersionResource, ns, name string) (bool, string) {
		return gvr.Resource != "configmaps", "no configmaps for you"
	}
	if _, err := apply(t, c, cm, "me", true, true); err == nil || !strings.Contains(err.Error(), "forbidden: no configmaps for you") {
		t.Errorf("refused by MayPatch: %v", err)
	}
	ok, why, err := c.NewAccess().CanPatch(context.Background(), schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, "nowhere", "a")
	if ok || why != "no configmaps for you" || err != nil {
		t.Errorf("CanPatch: %v %q %v", ok, why, err)
	}
	boom := errors.New("boom")
	c.MayPatch = nil
	c.Fail(DryRun, c.Count(DryRun)+1, boom)
	if _, err := apply(t, c, cm, "me", true, true); !errors.Is(err, boom) {
		t.Errorf("a failed call: %v", err)
	}
}

// TestApplyKeepsStatusAndCountsGenerations: status is the subresource's
// where the kind has one; the generation moves with the spec.
func TestApplyKeepsStatusAndCountsGenerations(t *testing.T) {
	c := New()
	c.Put(object(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: default}\n"))
	svc := "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: %s}]}\nstatus: {loadBalancer: {ingress: [{ip: 1.2.3.4}]}}\n"
	got, err := apply(t, c, strings.Replace(svc, "%s", "80", 1), "me", true, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, has := got.Object["status"]; has || got.GetGeneration() != 1 || got.GetUID() == "" {
		t.Errorf("created: status %v, generation %d, uid %q", got.Object["status"], got.GetGeneration(), got.GetUID())
	}
	if got, _ = apply(t, c, strings.Replace(svc, "%s", "80", 1), "me", true, false); got.GetGeneration() != 1 {
		t.Errorf("the same spec: generation %d", got.GetGeneration())
	}
	if got, _ = apply(t, c, strings.Replace(svc, "%s", "81", 1), "me", true, false); got.GetGeneration() != 2 {
		t.Errorf("another spec: generation %d", got.GetGeneration())
	}
}
