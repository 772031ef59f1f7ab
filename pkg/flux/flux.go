// Package flux reads and drives Flux's objects in a cluster: whether Flux is
// installed, GitRepositories and Kustomizations (finding the ones that
// already serve a GitLab project, building new ones), and reconcile requests
// as `flux reconcile` makes them. It knows nothing of GitLab or of the
// plugin's commands.
package flux

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
)

// The resources this package handles.
var (
	GitRepositories = schema.GroupVersionResource{Group: "source.toolkit.fluxcd.io", Version: "v1", Resource: "gitrepositories"}
	Kustomizations  = schema.GroupVersionResource{Group: "kustomize.toolkit.fluxcd.io", Version: "v1", Resource: "kustomizations"}
	CRDs            = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	Secrets         = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	Namespaces      = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
)

// The kinds' API versions, as objects spell them.
const (
	SourceAPIVersion    = "source.toolkit.fluxcd.io/v1"
	KustomizeAPIVersion = "kustomize.toolkit.fluxcd.io/v1"
)

// Annotations and labels Flux reads or writes.
const (
	// RequestedAtAnnotation asks the controller to reconcile now; it copies
	// the value to status.lastHandledReconcileAt when it has.
	RequestedAtAnnotation = "reconcile.fluxcd.io/requestedAt"
	// NameLabel and NamespaceLabel name the Kustomization that applied an
	// object.
	NameLabel      = "kustomize.toolkit.fluxcd.io/name"
	NamespaceLabel = "kustomize.toolkit.fluxcd.io/namespace"
)

// Cluster is what this package asks of a cluster. *kube.Client is one.
type Cluster interface {
	// GetObject returns nil, nil when the object does not exist.
	GetObject(ctx context.Context, gvr schema.GroupVersionResource, ns, name string) (*unstructured.Unstructured, error)
	// ListObjects lists gvr in ns ("" all); none when it is not served.
	ListObjects(ctx context.Context, gvr schema.GroupVersionResource, ns string) ([]*unstructured.Unstructured, error)
	MergePatch(ctx context.Context, gvr schema.GroupVersionResource, ns, name string, patch []byte, manager string) error
	// ApplyObject server-side applies o as manager, forcing conflicts.
	ApplyObject(ctx context.Context, gvr schema.GroupVersionResource, o *unstructured.Unstructured, manager string, dryRun bool) (*unstructured.Unstructured, error)
	// DeleteObject deletes; a missing object is no error.
	DeleteObject(ctx context.Context, gvr schema.GroupVersionResource, ns, name string) error
}

// The real client is a Cluster.
var _ Cluster = (*kube.Client)(nil)

// requiredCRDs are the CustomResourceDefinitions bootstrap needs.
var requiredCRDs = []string{"gitrepositories.source.toolkit.fluxcd.io", "kustomizations.kustomize.toolkit.fluxcd.io"}

// NotInstalledError is a cluster without Flux's CRDs.
type NotInstalledError struct{ Missing []string }

func (e *NotInstalledError) Error() string {
	return fmt.Sprintf("Flux is not installed in this cluster (no CustomResourceDefinition %s): install it with 'flux install', or 'flux bootstrap gitlab' to manage Flux from GitLab too, then run this again", e.Missing[0])
}

// Installed checks that Flux's source and kustomize controllers' CRDs
// exist, serving v1.
func Installed(ctx context.Context, c Cluster) error {
	var missing []string
	for _, name := range requiredCRDs {
		crd, err := c.GetObject(ctx, CRDs, "", name)
		if err != nil {
			return fmt.Errorf("looking for Flux's CRD %s: %w", name, err)
		}
		if crd == nil {
			missing = append(missing, name)
			continue
		}
		if !servesV1(crd) {
			return fmt.Errorf("Flux's CRD %s does not serve v1: upgrade Flux to 2.0 or later ('flux install')", name)
		}
	}
	if len(missing) > 0 {
		return &NotInstalledError{Missing: missing}
	}
	return nil
}

func servesV1(crd *unstructured.Unstructured) bool {
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	for _, v := range versions {
		m, _ := v.(map[string]any)
		if m["name"] == "v1" && m["served"] == true {
			return true
		}
	}
	return false
}
