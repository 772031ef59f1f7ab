package diff

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
)

// BenchmarkRunObjectsKubectlApplied diffs 500 objects that kubectl
// server-side applied (5 namespaces of 50 ConfigMaps and 50 Deployments),
// 10% of the ConfigMaps changed: the prediction's case. On the test control
// plane: go test -run x -bench RunObjects ./pkg/diff -cpuprofile cpu.out
func BenchmarkRunObjectsKubectlApplied(b *testing.B) {
	c := testCluster(b)
	ctx := context.Background()
	dyn := dynamic.NewForConfigOrDie(c.RESTConfig())
	var desired []kube.Manifest
	cms := schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	deploys := schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	for ns := 0; ns < 5; ns++ {
		name := fmt.Sprintf("bench-%d", ns)
		nsObj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name}}}
		_, _ = dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).Apply(ctx, name, nsObj, metav1.ApplyOptions{FieldManager: "kubectl"})
		for i := 0; i < 50; i++ {
			cm := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
				"metadata": map[string]any{"name": fmt.Sprintf("cm-%02d", i), "namespace": name, "labels": map[string]any{"app": "bench"}},
				"data":     map[string]any{"key": "v1", "config.yaml": "server:\n  port: 8080\n"}}}
			if _, err := dyn.Resource(cms).Namespace(name).Apply(ctx, cm.GetName(), cm, metav1.ApplyOptions{FieldManager: "kubectl"}); err != nil {
				b.Fatal(err)
			}
			if i%10 == 0 {
				cm = cm.DeepCopy()
				_ = unstructured.SetNestedField(cm.Object, "v2", "data", "key")
			}
			ms, _ := kube.FromObjects([]map[string]any{cm.Object}, "bench")
			desired = append(desired, ms...)
			d := decodeYAML(b, fmt.Sprintf(`
apiVersion: apps/v1
kind: Deployment
metadata: {name: app-%02d, namespace: %s, labels: {app: bench}}
spec:
  replicas: 1
  selector: {matchLabels: {app: bench, idx: "%02d"}}
  template:
    metadata: {labels: {app: bench, idx: "%02d"}}
    spec:
      containers:
      - {name: app, image: example.invalid/app:1.0, ports: [{containerPort: 8080}], resources: {requests: {cpu: 10m, memory: 16Mi}}}
`, i, name, i, i))
			if _, err := dyn.Resource(deploys).Namespace(name).Apply(ctx, d.GetName(), d, metav1.ApplyOptions{FieldManager: "kubectl"}); err != nil {
				b.Fatal(err)
			}
			ms, _ = kube.FromObjects([]map[string]any{d.Object}, "bench")
			desired = append(desired, ms...)
		}
	}
	k, dryRuns := countingClient(b, c)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start, sent := time.Now(), dryRuns.Load()
		r, err := Run(ctx, k, desired, Options{Force: true, DefaultNamespace: "default", Concurrency: 16})
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("%d objects, %d changed, %d dry runs, %s", len(r.Objects), r.Counts()[Changed], dryRuns.Load()-sent, time.Since(start))
	}
}
