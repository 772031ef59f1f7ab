package flux

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestWaitReportsAFailureAsKustomizeControllerLeavesIt: kustomize-controller
// v1.9 (finalizeStatus) sets lastHandledReconcileAt at the end of the run it
// handled, keeps Reconciling=True (ProgressingWithRetry) after a failure,
// and moves observedGeneration only on success. A failed run of a new or
// changed Kustomization must be reported when it is handled, as
// 'flux reconcile' reports it, not after --timeout.
func TestWaitReportsAFailureAsKustomizeControllerLeavesIt(t *testing.T) {
	ctx := context.Background()
	c := fluxCluster()
	c.Put(&unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "flux-system"}}})
	c.Put(obj(KustomizeAPIVersion, "Kustomization", "flux-system", "app", map[string]any{"path": "./x"}))
	at, err := RequestReconcile(ctx, c, Kustomizations, "flux-system", "app", "m")
	if err != nil {
		t.Fatal(err)
	}
	o, _ := c.GetObject(ctx, Kustomizations, "flux-system", "app")
	o.Object["status"] = map[string]any{
		"lastHandledReconcileAt": at.At,
		// no observedGeneration: it never succeeded
		"conditions": []any{
			map[string]any{"type": "Reconciling", "status": "True", "reason": "ProgressingWithRetry", "message": "Detecting drift for revision main@sha1:abc"},
			map[string]any{"type": "Ready", "status": "False", "reason": "BuildFailed", "message": "kustomization path not found"},
		},
	}
	c.Put(o)
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = WaitReconciled(wctx, c, Kustomizations, "flux-system", "app", at, 5*time.Millisecond, nil)
	var fe *FailedError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "kustomization path not found") {
		t.Fatalf("a failed, handled reconcile is not reported as failed: %v", err)
	}
}
