package apps

import (
	"context"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Two GitRepositories of the same project, one with spec.ignore leaving a
// file out: the comparer's shared tree must not carry one's ignore rules
// into the other's build.
func TestCompareTreeSharedOnlyUnderTheSameIgnoreRules(t *testing.T) {
	ctx := context.Background()
	gl, p, cl := gitlabWorld(t)
	gl.SetFile(p, "main", "apps/web/a.yaml", []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {v: one}\n"))
	gl.SetFile(p, "main", "apps/web/b.yaml", []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndata: {v: one}\n"))
	sha := tip(t, gl, p)
	c := cluster()
	c.Put(&unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "apps"}}})
	narrow := gitRepo("apps", "narrow", gl.URL+"/infra/fleet.git", "main", "main@sha1:"+sha)
	unstructured.SetNestedField(narrow.Object, "/apps/web/b.yaml\n", "spec", "ignore")
	c.Put(narrow, gitRepo("apps", "full", gl.URL+"/infra/fleet.git", "main", "main@sha1:"+sha),
		kustomization("apps", "one", "narrow", "./apps/web", "main@sha1:"+sha, "True", nil),
		kustomization("apps", "two", "full", "./apps/web", "main@sha1:"+sha, "True", nil))
	e := Env{Flux: c, GitLabURL: gl.URL}
	cmp := &Comparer{Env: e, GitLab: cl, Cluster: c}
	defer cmp.Close()
	for _, want := range []struct {
		name string
		n    int
	}{{"one", 1}, {"two", 2}} {
		a, err := Get(ctx, e, "apps", want.name)
		if err != nil {
			t.Fatal(err)
		}
		res, err := cmp.Compare(ctx, a, "")
		if err != nil {
			t.Fatal(err)
		}
		if got := len(res.Result.Objects); got != want.n {
			t.Errorf("%s: %d objects built, want %d: %v", want.name, got, want.n, res.DriftedNames())
		}
	}
}
