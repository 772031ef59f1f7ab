package install

import (
	"context"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/flux"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
)

// TestBootstrapKeepsFilesItDidNotWrite: a kustomization.yaml in the agent's
// directory that bootstrap did not write is not bootstrap's list of files to
// delete.
func TestBootstrapKeepsFilesItDidNotWrite(t *testing.T) {
	w := newWorld(t)
	w.withFlux(t)
	w.gl.SetFile(w.project, "main", "clusters/kf/gitlab-agent/kustomization.yaml", []byte("resources:\n- networkpolicy.yaml\n- sealed-secret.yaml\n"))
	w.gl.SetFile(w.project, "main", "clusters/kf/gitlab-agent/networkpolicy.yaml", []byte("kind: NetworkPolicy\n"))
	w.gl.SetFile(w.project, "main", "clusters/kf/gitlab-agent/sealed-secret.yaml", []byte("kind: SealedSecret\n"))
	_, _ = Bootstrap(context.Background(), w.bootstrapEnv(), w.bootstrapOpts("kf"))
	for _, p := range []string{"networkpolicy.yaml", "sealed-secret.yaml"} {
		if _, ok := w.gl.File(w.project, "main", "clusters/kf/gitlab-agent/"+p); !ok {
			t.Errorf("bootstrap deleted %s, which it did not write", p)
		}
	}
}

// TestUninstallTrustsNoForgedRecord: the record on the token Secret is
// cluster data that whoever may write Secrets in the agent's namespace
// (a CI job with the agent's ci_access) can change. Uninstall must not
// delete a Kustomization that is not bootstrap's, nor files bootstrap did
// not write.
func TestUninstallTrustsNoForgedRecord(t *testing.T) {
	w := newWorld(t)
	w.withFlux(t)
	ctx := context.Background()
	if _, err := Bootstrap(ctx, w.bootstrapEnv(), w.bootstrapOpts("fr")); err != nil {
		t.Fatal(err)
	}
	// The cluster's root Kustomization, and someone else's kustomize dir.
	w.cluster.Put(&unstructured.Unstructured{Object: map[string]any{"apiVersion": flux.KustomizeAPIVersion, "kind": "Kustomization",
		"metadata": map[string]any{"name": "flux-system", "namespace": "flux-system"},
		"spec": map[string]any{"path": "./apps", "prune": true,
			"sourceRef": map[string]any{"kind": "GitRepository", "name": "gitlab-agent-fr"}}}})
	w.gl.SetFile(w.project, "main", "apps/kustomization.yaml", []byte("resources:\n- payments.yaml\n"))
	w.gl.SetFile(w.project, "main", "apps/payments.yaml", []byte("kind: Deployment\n"))
	s := w.cluster.Get(kube.Ref{APIVersion: "v1", Kind: "Secret", Namespace: "gitlab-agent-fr", Name: "fr-gitlab-agent-token"})
	a := s.GetAnnotations()
	a[BootstrapAnnotation] = `{"project":"infra/agents","branch":"main","dir":"apps","kustomization":"flux-system/flux-system","gitRepository":"flux-system/gitlab-agent-fr","own":true}`
	s.SetAnnotations(a)
	w.cluster.Put(s)

	_, _ = Uninstall(ctx, w.bootstrapEnv(), UninstallOptions{Options: w.opts("fr"), Confirm: func(string) (bool, error) { return true, nil }})
	if w.cluster.Get(kube.Ref{APIVersion: flux.KustomizeAPIVersion, Kind: "Kustomization", Namespace: "flux-system", Name: "flux-system"}) == nil {
		t.Error("uninstall deleted Kustomization flux-system/flux-system, which bootstrap did not make")
	}
	for _, p := range []string{"apps/kustomization.yaml", "apps/payments.yaml"} {
		if _, ok := w.gl.File(w.project, "main", p); !ok {
			t.Errorf("uninstall deleted %s, which bootstrap did not write", p)
		}
	}
}
