package install

import (
	"context"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/flux"
)

// TestBootstrapNeverUsesATenantsFluxObjects: a GitRepository or a
// Kustomization in another namespace than --flux-namespace is whoever
// controls that namespace's: the agent (cluster-wide rights, its token) must
// not be applied from it, nor by it.
func TestBootstrapNeverUsesATenantsFluxObjects(t *testing.T) {
	w := newWorld(t)
	w.withFlux(t)
	w.cluster.Put(&unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "tenant"}}})
	proj := w.gl.URL + "/infra/agents.git"
	w.cluster.Put(&unstructured.Unstructured{Object: map[string]any{"apiVersion": flux.SourceAPIVersion, "kind": "GitRepository",
		"metadata": map[string]any{"name": "mine", "namespace": "tenant"},
		"spec":     map[string]any{"url": proj, "ref": map[string]any{"branch": "main"}}}})
	res, err := Bootstrap(context.Background(), w.bootstrapEnv(), w.bootstrapOpts("tn"))
	if err != nil {
		t.Fatal(err)
	}
	if res.GitRepository.Namespace != "flux-system" {
		t.Fatalf("the agent is applied from a tenant's GitRepository %s", res.GitRepository)
	}

	w2 := newWorld(t)
	w2.withFlux(t)
	w2.cluster.Put(&unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "tenant"}}})
	proj = w2.gl.URL + "/infra/agents.git"
	w2.cluster.Put(
		&unstructured.Unstructured{Object: map[string]any{"apiVersion": flux.SourceAPIVersion, "kind": "GitRepository",
			"metadata": map[string]any{"name": "flux-system", "namespace": "flux-system"},
			"spec":     map[string]any{"url": proj, "ref": map[string]any{"branch": "main"}}}},
		&unstructured.Unstructured{Object: map[string]any{"apiVersion": flux.KustomizeAPIVersion, "kind": "Kustomization",
			"metadata": map[string]any{"name": "steal", "namespace": "tenant"},
			"spec": map[string]any{"path": "./clusters", "prune": true,
				"sourceRef": map[string]any{"kind": "GitRepository", "name": "flux-system", "namespace": "flux-system"}}}},
	)
	res, err = Bootstrap(context.Background(), w2.bootstrapEnv(), w2.bootstrapOpts("tn"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Kustomization.Namespace != "flux-system" {
		t.Fatalf("the agent is applied by a tenant's Kustomization %s", res.Kustomization)
	}
}
