package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestPluginDispatch: kubectl finds the binary kubectl-gitlab_agent for
// `kubectl gitlab-agent`.
func TestPluginDispatch(t *testing.T) {
	t.Parallel()
	r := runCmd(t, "", kubectl, "gitlab-agent", "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "kubectl-gitlab-agent v0.0.0-e2e ") {
		t.Fatalf("kubectl gitlab-agent version: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = runCmd(t, "", kubectl, "gitlab-agent", "version", "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"version": "v0.0.0-e2e"`) {
		t.Fatalf("version -o json: exit %d, stdout %q", r.code, r.stdout)
	}
	r = runCmd(t, "", kubectl, "gitlab-agent", "render", "Bad_Name")
	if r.code != 1 || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("a bad name through kubectl: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestRenderApplyRollsOut: the rendered agent applies server-side and its
// Deployment becomes available on the kwok nodes.
func TestRenderApplyRollsOut(t *testing.T) {
	needCluster(t)
	r := runCmd(t, "glagent-fake-e2e-token\n", kubectl, "gitlab-agent", "render", "e2e", "--token-file", "-")
	if r.code != 0 {
		t.Fatalf("render: exit %d: %s", r.code, r.stderr)
	}
	if strings.Contains(r.stdout, "glagent-fake-e2e-token") {
		t.Fatal("render printed the token in clear text")
	}
	a := runCmd(t, r.stdout, kubectl, "apply", "--server-side", "-f", "-")
	if a.code != 0 {
		t.Fatalf("kubectl apply: exit %d: %s", a.code, a.stderr)
	}
	waitAvailable(t, "gitlab-agent-e2e", "e2e-gitlab-agent-v2", 2)
}

// TestChartCasesApply: every chart comparison case of every chart version
// (except the ServiceMonitor, whose CRD the test cluster lacks) is accepted
// by a real apiserver.
func TestChartCasesApply(t *testing.T) {
	needCluster(t)
	files, err := filepath.Glob("../../pkg/manifest/testdata/chart/*/*/render.golden.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden renders: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var docs []string
		for _, doc := range strings.Split(string(data), "---\n") {
			if strings.TrimSpace(doc) != "" && !strings.Contains(doc, "kind: ServiceMonitor\n") {
				docs = append(docs, doc)
			}
		}
		r := runCmd(t, "---\n"+strings.Join(docs, "---\n"), kubectl, "apply", "--server-side", "-f", "-")
		if r.code != 0 {
			t.Errorf("%s: kubectl apply: exit %d: %s", strings.TrimPrefix(filepath.Dir(f), "../../pkg/manifest/testdata/chart/"), r.code, r.stderr)
		}
	}
}

func waitAvailable(t *testing.T, ns, name string, replicas int32) {
	t.Helper()
	cs := clientset(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil && d.Status.AvailableReplicas == replicas && d.Status.UpdatedReplicas == replicas {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("Deployment %s/%s not available with %d replicas: %v %+v", ns, name, replicas, err, d.Status)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
