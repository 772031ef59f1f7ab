package diff_test

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/diff"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube/fake"
)

// A diff as kustomize-controller would apply one Kustomization (flux-system/
// apps, spec.prune true): its field manager with forced ownership, its
// rules, and the inventory entries its build no longer holds.
func ExampleFluxPolicy() {
	cm := func(name string, annotations map[string]any, data string) map[string]any {
		return map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "data": map[string]any{"a": data},
			"metadata": map[string]any{"name": name, "namespace": "web", "annotations": annotations,
				"labels": map[string]any{"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}}}
	}
	cluster := fake.New()
	cluster.Put(&unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "web"}}})
	for _, o := range []map[string]any{cm("settings", nil, "1"), cm("manual", nil, "1"), cm("old", nil, "1")} {
		cluster.Put(&unstructured.Unstructured{Object: o})
	}

	built, _ := kube.FromObjects([]map[string]any{
		cm("settings", nil, "2"),
		cm("manual", map[string]any{"kustomize.toolkit.fluxcd.io/ssa": "Ignore"}, "2"),
	}, "apps")
	inventory := []kube.Ref{ // status.inventory's entries missing from the build
		{APIVersion: "v1", Kind: "ConfigMap", Namespace: "web", Name: "old"},
	}
	res, err := diff.Run(context.Background(), cluster, built, diff.Options{
		Manager:   diff.FluxFieldManager,
		Force:     true,
		Policy:    diff.FluxPolicy{Name: "apps", Namespace: "flux-system"},
		PruneRefs: inventory,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, o := range res.Objects {
		line := string(o.Action) + " " + o.Name
		if o.Note != "" {
			line += ": " + o.Note
		}
		fmt.Println(line)
	}
	fmt.Println("differs:", res.Differs())
	// Output:
	// skipped manual: annotation kustomize.toolkit.fluxcd.io/ssa: Ignore on the manifest
	// pruned old
	// changed settings
	// differs: true
}
