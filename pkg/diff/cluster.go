package diff

import (
	"context"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/openapi"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
)

// Cluster is what a diff needs of a cluster. The real *kube.Client is one;
// pkg/kube/fake is an in-memory one. Its methods speak only pkg/kube's and
// Kubernetes' types, so that a fake needs nothing of this package.
type Cluster interface {
	// Reachable fails when the cluster does not answer at all: callers ask
	// it first, so that such a cluster is one error, not one per object.
	Reachable(ctx context.Context) error
	// Map finds a manifest's resource and settles its namespace as kubectl
	// apply does (enforce: another namespace than defaultNS is an error).
	Map(ctx context.Context, m kube.Manifest, defaultNS string, enforce bool) (kube.Target, error)
	// LiveEach calls fn for each target with its live object (nil when
	// absent) or the error reading it; fn may run concurrently.
	LiveEach(ctx context.Context, targets []kube.Target, groups, perGroup int, fn func(t kube.Target, live *unstructured.Unstructured, err error))
	// Apply server-side applies o as manager; dryRun stores nothing and
	// returns what the apply would make. A namespaced object in a namespace
	// that does not exist is a NotFound error.
	Apply(ctx context.Context, t kube.Target, o *unstructured.Unstructured, manager string, force, dryRun bool) (*unstructured.Unstructured, error)
	// ListSelected lists the objects (of kinds; nil: any) that selector
	// matches: namespaced ones in namespaces only, cluster-scoped ones all;
	// none that a controller owns.
	ListSelected(ctx context.Context, selector string, namespaces, kinds []string, concurrency int) ([]*unstructured.Unstructured, error)
	// OpenAPIV3 is the server's schema; nil: none, and every object that
	// exists goes to the dry run.
	OpenAPIV3() openapi.Client
	// HasStatusSubresource reports whether status is the status
	// subresource's (then an apply ignores it) rather than an ordinary field.
	HasStatusSubresource(gvr schema.GroupVersionResource) bool
	// ReadAdmission is what the cluster's webhooks and admission policies
	// may act on (kube.NewAdmission builds one).
	ReadAdmission(ctx context.Context) *kube.Admission
	// NewAccess answers whether the user may patch objects.
	NewAccess() kube.PatchAccess
}

// The real client is a Cluster.
var _ Cluster = (*kube.Client)(nil)
