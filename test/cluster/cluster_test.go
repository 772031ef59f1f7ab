package cluster

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// TestControlPlane starts a cluster and checks the parts the other tests rely
// on: the apiserver reports the pinned version, and a Deployment rolls out on
// kwok's nodes (scheduler, controllers and kwok all at work).
func TestControlPlane(t *testing.T) {
	ctx, cs := startForTest(t)
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != KubeVersion {
		t.Errorf("/version says %q, want %q", v.GitVersion, KubeVersion)
	}

	labels := map[string]string{"app": "probe"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.invalid/probe:1"}}},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the Deployment to be available", cs.AppsV1().Deployments("default").Get, "probe", func(d *appsv1.Deployment) (string, bool) {
		return fmt.Sprintf("%+v", d.Status), d.Status.AvailableReplicas == 2
	})
}

// waitFor reads the object name with get until cond holds, failing the test
// after two minutes or when ctx ends; cond says what it saw, for the failure.
func waitFor[T any](t *testing.T, ctx context.Context, what string, get func(context.Context, string, metav1.GetOptions) (T, error), name string, cond func(T) (string, bool)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		var seen string
		o, err := get(ctx, name, metav1.GetOptions{})
		if err != nil {
			seen = err.Error()
		} else if s, ok := cond(o); ok {
			return
		} else {
			seen = s
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v; last seen: %s", what, ctx.Err(), seen)
		case <-tick.C:
		}
	}
}

// TestKubeletFeatures: kwok's fake kubelet answers logs, exec and
// port-forward through the apiserver.
func TestKubeletFeatures(t *testing.T) {
	ctx, cs := startForTest(t)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.invalid/p:1"}}},
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the pod to run", cs.CoreV1().Pods("default").Get, "p", func(p *corev1.Pod) (string, bool) {
		return string(p.Status.Phase), p.Status.Phase == corev1.PodRunning
	})
	logs, err := cs.CoreV1().Pods("default").GetLogs("p", &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil || !strings.Contains(string(logs), "hello from kwok") {
		t.Fatalf("logs: %q %v", logs, err)
	}
}

// startForTest starts a cluster that stops with the test, keeping its logs
// when the test fails, and returns a client of it and a context that ends
// after five minutes. -short skips the test.
func startForTest(t *testing.T) (context.Context, *Clients) {
	t.Helper()
	ctx, c := startClusterForTest(t)
	cs, err := NewClients(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	return ctx, cs
}

// startClusterForTest is startForTest returning the Cluster itself.
func startClusterForTest(t *testing.T) (context.Context, *Cluster) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a control plane")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	c, err := Start(ctx, Options{Log: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("cluster logs kept in %s", c.StopKeepLogs())
			return
		}
		c.Stop()
	})
	return ctx, c
}
