package cmd

import (
	"context"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/install"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/manifest"
)

// TestInstallDryRunOverAHelmRelease: over the agent installed with the chart
// by Helm 4 (applied server-side by field manager helm, labelled and
// annotated as Helm does, its record in a helm.sh/release.v1 Secret),
// install's dry run says, in one line of the text plan and in the JSON
// plan, that it adopts the release (testdata/json/install-dry-run-helm.json).
func TestInstallDryRunOverAHelmRelease(t *testing.T) {
	w := newInProcess(t)
	v, err := manifest.Load()
	if err != nil {
		t.Fatal(err)
	}
	v.Config.Token, v.Config.KasAddress = "glagent-from-the-helm-values", "wss://kas.example.com"
	out, err := manifest.Render(manifest.Input{Name: "prod", Namespace: "gitlab-agent-prod", Values: v})
	if err != nil {
		t.Fatal(err)
	}
	for _, obj := range out.Objects {
		u := &unstructured.Unstructured{Object: obj}
		l := u.GetLabels()
		l["app.kubernetes.io/managed-by"], l["helm.sh/chart"] = "Helm", "gitlab-agent-2.15.0"
		u.SetLabels(l)
		u.SetAnnotations(map[string]string{"meta.helm.sh/release-name": "prod", "meta.helm.sh/release-namespace": "gitlab-agent-prod"})
	}
	ms, err := kube.FromObjects(out.Objects, "helm")
	if err != nil {
		t.Fatal(err)
	}
	targets, err := w.cluster.MapAll(ms, "gitlab-agent-prod")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.cluster.ApplyAll(context.Background(), targets, install.HelmFieldManager); err != nil {
		t.Fatal(err)
	}
	w.cluster.Put(&unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
		"metadata": map[string]any{"name": "sh.helm.release.v1.prod.v1", "namespace": "gitlab-agent-prod",
			"labels": map[string]any{"owner": "helm", "name": "prod", "version": "1", "status": "deployed"}},
	}})

	code, text, errOut := w.run(t, "install", "prod", "--dry-run", "--no-config")
	want := "Cluster: adopting the Helm release prod (applied server-side by Helm 4): its objects become kubectl-gitlab-agent's; " +
		"Helm's record sh.helm.release.v1.prod.v1 stays, so 'helm uninstall prod -n gitlab-agent-prod' would delete the agent " +
		"('kubectl delete secret -n gitlab-agent-prod -l owner=helm,name=prod' forgets the release)\n"
	if code != 0 || strings.Count(text, "adopting") != 1 || !strings.Contains(text, "\n"+want+"Cluster: Plan: ") {
		t.Errorf("install --dry-run: exit %d\n%s%s\nwant the line\n%s", code, text, errOut, want)
	}
	masked := regexp.MustCompile(`sha256:[0-9a-f]{10}`) // a Secret's value, masked as the diff does
	jsonCommand{"install-dry-run-helm", []string{"install", "prod", "--dry-run", "--no-config"}, false, reflect.TypeFor[installResult]()}.
		runJSON(t, w, func(s string) string { return masked.ReplaceAllString(s, "sha256:<hash>") })
	if len(w.cluster.Applied()) != len(targets) {
		t.Error("the dry run applied")
	}
}
