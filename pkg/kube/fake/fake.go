// Package fake is an in-memory cluster for unit tests of the code that drives
// one (pkg/install, pkg/diff): it merges what is applied as a server-side
// apply would (dry runs too), records every call, rolls Deployments out at
// once unless told otherwise, and fails the Nth call of a method when asked,
// as helm's pkg/kube/fake does for its actions. It needs nothing of the
// packages it serves: pkg/diff's Cluster speaks pkg/kube's types.
package fake

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/openapi"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
)

// The methods, as Calls records them and Fail names them.
const (
	Reachable       = "Reachable"
	GetSecret       = "GetSecret"
	GetDeployment   = "GetDeployment"
	FindDeployments = "FindDeployments"
	MapAll          = "MapAll"
	Map             = "Map"
	Apply           = "Apply"  // one call per object of ApplyAll
	DryRun          = "DryRun" // an Apply with dryRun
	ClaimSecret     = "ClaimSecret"
	WaitRollout     = "WaitRollout"
	SelectedObjects = "SelectedObjects"
	ListSelected    = "ListSelected"
	Read            = "Read" // one call per target of LiveEach
	ReadAdmission   = "ReadAdmission"
	CanPatch        = "CanPatch"
	DeleteAndWait   = "DeleteAndWait"
	DeleteDryRun    = "DeleteDryRun" // one call per object
	GetConfigMap    = "GetConfigMap"
	SecretMetadata  = "SecretMetadata"
	Pods            = "Pods"
	PodLogs         = "PodLogs"
	GetObject       = "GetObject"
	ListObjects     = "ListObjects"
	MergePatch      = "MergePatch"
	ApplyObject     = "ApplyObject"
	DeleteObject    = "DeleteObject"
)

// Call is one recorded call: the method and what it was about.
type Call struct {
	Method string
	// Ref names the object for Map, Apply, DryRun, Read, ClaimSecret,
	// DeleteDryRun, GetSecret and GetDeployment (CanPatch: its namespace and name).
	Ref kube.Ref
}

type hook struct {
	method string
	nth    int // 1-based, counted over every call of method
	fn     func() error
}

// Cluster is an in-memory cluster. The zero value is not usable: use New.
type Cluster struct {
	// Rollout, when set, decides what WaitRollout sees for a Deployment;
	// by default every rollout is done at once. A status that is neither
	// done nor failed makes WaitRollout wait until its context ends.
	Rollout func(d *appsv1.Deployment) kube.RolloutStatus
	// OnApply runs after each object is stored, outside the lock (a test
	// marks a token used there, as a connecting agentk would).
	OnApply func(o *unstructured.Unstructured)
	// Schema is the OpenAPI v3 schema OpenAPIV3 gives; nil: none, and a
	// diff sends every object to the dry run.
	Schema openapi.Client
	// MayPatch, when set, says whether the user may patch an object, and
	// why not; by default they may patch anything. A refused apply or dry
	// run is forbidden.
	MayPatch func(gvr schema.GroupVersionResource, namespace, name string) (bool, string)

	mu         sync.Mutex
	objects    map[kube.Ref]*unstructured.Unstructured
	logs       map[string]string // "namespace/pod/container" → log text
	logQueries []kube.LogQuery
	rv, uids   int
	calls      []Call
	count      map[string]int
	hooks      []hook
	mapper     *meta.DefaultRESTMapper
	// status are the resources whose status is a subresource's.
	status map[schema.GroupVersionResource]bool
}

// New is an empty cluster that knows the kinds the agent's chart renders,
// and CustomResourceDefinitions.
func New() *Cluster {
	c := &Cluster{
		objects: map[kube.Ref]*unstructured.Unstructured{}, logs: map[string]string{}, count: map[string]int{},
		mapper: meta.NewDefaultRESTMapper(nil), status: map[schema.GroupVersionResource]bool{},
	}
	c.AddKind("v1", "Namespace", "namespaces", false, true)
	for kind, res := range map[string]string{"ServiceAccount": "serviceaccounts", "Secret": "secrets", "ConfigMap": "configmaps"} {
		c.AddKind("v1", kind, res, true, false)
	}
	c.AddKind("v1", "Service", "services", true, true)
	c.AddKind("v1", "Pod", "pods", true, true)
	c.AddKind("apps/v1", "Deployment", "deployments", true, true)
	for kind, res := range map[string]string{"ClusterRole": "clusterroles", "ClusterRoleBinding": "clusterrolebindings"} {
		c.AddKind("rbac.authorization.k8s.io/v1", kind, res, false, false)
	}
	for kind, res := range map[string]string{"Role": "roles", "RoleBinding": "rolebindings"} {
		c.AddKind("rbac.authorization.k8s.io/v1", kind, res, true, false)
	}
	c.AddKind("networking.k8s.io/v1", "Ingress", "ingresses", true, true)
	c.AddKind("monitoring.coreos.com/v1", "ServiceMonitor", "servicemonitors", true, false)
	c.AddKind("apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", false, true)
	return c
}

// Fail makes the nth call of method (1-based, counting every call of it
// since New) fail with err.
func (c *Cluster) Fail(method string, nth int, err error) {
	c.Hook(method, nth, func() error { return err })
}

// Hook runs fn at the nth call of method, before the call does anything
// (fn may change the cluster: another writer getting there first); an error
// from fn is the call's.
func (c *Cluster) Hook(method string, nth int, fn func() error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hooks = append(c.hooks, hook{method: method, nth: nth, fn: fn})
}

// Calls lists the calls made, oldest first.
func (c *Cluster) Calls() []Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Call(nil), c.calls...)
}

// Count is how many times method was called.
func (c *Cluster) Count(method string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count[method]
}

// Applied lists the objects stored by Apply and ClaimSecret, in order.
func (c *Cluster) Applied() []kube.Ref {
	var out []kube.Ref
	for _, call := range c.Calls() {
		if call.Method == Apply || call.Method == ClaimSecret {
			out = append(out, call.Ref)
		}
	}
	return out
}

// Put stores objects as they are, as a fixture (a Helm install, a Secret
// someone else wrote).
func (c *Cluster) Put(objs ...*unstructured.Unstructured) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, o := range objs {
		c.store(o.DeepCopy())
	}
}

// Remove takes the objects refs name away, as someone deleting them would
// (a fixture: no call is recorded).
func (c *Cluster) Remove(refs ...kube.Ref) {
	c.mu.Lock()
	for _, ref := range refs {
		delete(c.objects, ref)
	}
	c.mu.Unlock()
}

// Get returns a copy of the stored object ref names, or nil.
func (c *Cluster) Get(ref kube.Ref) *unstructured.Unstructured {
	c.mu.Lock()
	defer c.mu.Unlock()
	if o := c.objects[ref]; o != nil {
		return o.DeepCopy()
	}
	return nil
}

// Objects lists the stored objects' refs, sorted.
func (c *Cluster) Objects() []kube.Ref {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]kube.Ref, 0, len(c.objects))
	for r := range c.objects {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out
}

// call records a call and runs the hooks planned for it.
func (c *Cluster) call(method string, ref kube.Ref) error {
	c.mu.Lock()
	c.calls = append(c.calls, Call{Method: method, Ref: ref})
	c.count[method]++
	var fns []func() error
	for _, h := range c.hooks {
		if h.method == method && h.nth == c.count[method] {
			fns = append(fns, h.fn)
		}
	}
	c.mu.Unlock()
	for _, fn := range fns {
		if err := fn(); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) store(o *unstructured.Unstructured) {
	c.rv++
	o.SetResourceVersion(strconv.Itoa(c.rv))
	if o.GetGeneration() == 0 {
		o.SetGeneration(1)
	}
	c.objects[kube.RefOf(o)] = o
}

// Reachable answers unless a fault says otherwise.
func (c *Cluster) Reachable(context.Context) error { return c.call(Reachable, kube.Ref{}) }

func secretRef(ns, name string) kube.Ref {
	return kube.Ref{APIVersion: "v1", Kind: "Secret", Namespace: ns, Name: name}
}

func deploymentRef(ns, name string) kube.Ref {
	return kube.Ref{APIVersion: "apps/v1", Kind: "Deployment", Namespace: ns, Name: name}
}

// GetSecret returns the stored Secret, nil when there is none.
func (c *Cluster) GetSecret(_ context.Context, ns, name string) (*corev1.Secret, error) {
	return typed[corev1.Secret](c, GetSecret, secretRef(ns, name))
}

// SecretMetadata returns the stored Secret's metadata, nil when there is
// none.
func (c *Cluster) SecretMetadata(_ context.Context, ns, name string) (*metav1.ObjectMeta, error) {
	s, err := typed[corev1.Secret](c, SecretMetadata, secretRef(ns, name))
	if s == nil {
		return nil, err
	}
	return &s.ObjectMeta, nil
}

// GetDeployment returns the stored Deployment, nil when there is none.
func (c *Cluster) GetDeployment(_ context.Context, ns, name string) (*appsv1.Deployment, error) {
	return typed[appsv1.Deployment](c, GetDeployment, deploymentRef(ns, name))
}

// typed is the stored object ref as a T, for a call to method; nil when it
// is absent or the call fails.
func typed[T any](c *Cluster, method string, ref kube.Ref) (*T, error) {
	if err := c.call(method, ref); err != nil {
		return nil, err
	}
	c.mu.Lock()
	o := c.objects[ref]
	c.mu.Unlock()
	if o == nil {
		return nil, nil
	}
	return converted[T](o)
}

func converted[T any](o *unstructured.Unstructured) (*T, error) {
	var v T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.DeepCopy().Object, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// FindDeployments lists the stored Deployments with the selector.
func (c *Cluster) FindDeployments(_ context.Context, selector string) ([]*appsv1.Deployment, error) {
	objs, err := c.selected(FindDeployments, selector, everyNamespace, []string{"Deployment"})
	if err != nil {
		return nil, err
	}
	var out []*appsv1.Deployment
	for _, o := range objs {
		d, err := converted[appsv1.Deployment](o)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// rollOut sets a Deployment's status to what Cluster.Rollout says (by
// default: every replica updated and available).
func (c *Cluster) rollOut(o *unstructured.Unstructured) {
	d, err := converted[appsv1.Deployment](o)
	if err != nil {
		return
	}
	s := c.rollout(d)
	o.Object["status"] = map[string]any{
		"observedGeneration": o.GetGeneration(), "replicas": int64(s.Desired), "updatedReplicas": int64(s.Updated),
		"readyReplicas": int64(s.Ready), "availableReplicas": int64(s.Available),
	}
}

// rollout is Cluster.Rollout, or a rollout that is done at once.
func (c *Cluster) rollout(d *appsv1.Deployment) kube.RolloutStatus {
	if c.Rollout != nil {
		return c.Rollout(d)
	}
	n := int32(1)
	if d.Spec.Replicas != nil {
		n = *d.Spec.Replicas
	}
	return kube.RolloutStatus{Desired: n, Updated: n, Ready: n, Available: n, Done: true}
}

// WaitRollout reports the Deployment's rollout (see Cluster.Rollout) and
// returns when it is done or failed, or when ctx ends.
func (c *Cluster) WaitRollout(ctx context.Context, ns, name string, progress func(kube.RolloutStatus)) error {
	d, err := typed[appsv1.Deployment](c, WaitRollout, deploymentRef(ns, name))
	if err != nil {
		return err
	}
	if d == nil {
		return fmt.Errorf("the Deployment %s/%s does not exist", ns, name)
	}
	s := c.rollout(d)
	progress(s)
	switch {
	case s.Done:
		return nil
	case s.Problem != "":
		return fmt.Errorf("the Deployment %s/%s cannot roll out: %s", ns, name, s.Problem)
	}
	<-ctx.Done()
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("waiting for Deployment %s/%s (%s): %w", ns, name, s, ctx.Err())
	}
	return fmt.Errorf("the Deployment %s/%s is not available in time (%s): %w", ns, name, s, ctx.Err())
}

// SelectedObjects lists the stored objects with the selector, of kinds
// (nil: any kind): namespaced ones in namespaces only, cluster-scoped ones
// all.
func (c *Cluster) SelectedObjects(_ context.Context, selector string, namespaces, kinds []string) ([]*unstructured.Unstructured, error) {
	return c.selected(SelectedObjects, selector, namespaces, kinds)
}

// ListSelected is SelectedObjects without the objects a controller owns
// (ReplicaSets, Pods) and Events, as kube.Client.ListSelected lists.
func (c *Cluster) ListSelected(_ context.Context, selector string, namespaces, kinds []string, _ int) ([]*unstructured.Unstructured, error) {
	objs, err := c.selected(ListSelected, selector, namespaces, kinds)
	if err != nil {
		return nil, err
	}
	out := objs[:0]
	for _, o := range objs {
		if metav1.GetControllerOf(o) == nil && o.GetKind() != "Event" {
			out = append(out, o)
		}
	}
	return out, nil
}

// everyNamespace, as selected's namespaces, is all of them.
var everyNamespace = []string{"*"}

// selected lists the stored objects of kinds (nil: any) that selector
// matches: namespaced ones in namespaces only (everyNamespace: in any),
// cluster-scoped ones all.
func (c *Cluster) selected(method, selector string, namespaces, kinds []string) ([]*unstructured.Unstructured, error) {
	sel, err := labels.Parse(selector)
	if err != nil {
		return nil, err
	}
	if err := c.call(method, kube.Ref{}); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*unstructured.Unstructured
	for ref, o := range c.objects {
		if kinds != nil && !slices.Contains(kinds, ref.Kind) || !sel.Matches(labels.Set(o.GetLabels())) {
			continue
		}
		if ref.Namespace != "" && !slices.Equal(namespaces, everyNamespace) && !slices.Contains(namespaces, ref.Namespace) {
			continue
		}
		out = append(out, o.DeepCopy())
	}
	sort.Slice(out, func(i, j int) bool { return kube.RefOf(out[i]).Less(kube.RefOf(out[j])) })
	return out, nil
}

// DeleteAndWait removes the objects.
func (c *Cluster) DeleteAndWait(_ context.Context, objs []*unstructured.Unstructured) error {
	if err := c.call(DeleteAndWait, kube.Ref{}); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, o := range objs {
		delete(c.objects, kube.RefOf(o))
	}
	return nil
}

// DeleteDryRun records a dry-run deletion of each object, in kube's
// DeleteOrder, and deletes nothing.
func (c *Cluster) DeleteDryRun(_ context.Context, objs []*unstructured.Unstructured) error {
	kube.DeleteOrder(objs)
	for _, o := range objs {
		if err := c.call(DeleteDryRun, kube.RefOf(o)); err != nil {
			return fmt.Errorf("deleting %s (server dry run): %w", kube.RefOf(o), err)
		}
	}
	return nil
}

// GetConfigMap returns the stored ConfigMap, nil when there is none.
func (c *Cluster) GetConfigMap(_ context.Context, ns, name string) (*corev1.ConfigMap, error) {
	return typed[corev1.ConfigMap](c, GetConfigMap, kube.Ref{APIVersion: "v1", Kind: "ConfigMap", Namespace: ns, Name: name})
}

// Pods lists the stored pods in ns with the selector (the fake runs no
// pods itself: tests Put them).
func (c *Cluster) Pods(_ context.Context, ns, selector string) ([]corev1.Pod, error) {
	objs, err := c.selected(Pods, selector, []string{ns}, []string{"Pod"})
	if err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, o := range objs {
		if o.GetNamespace() != ns {
			continue
		}
		p, err := converted[corev1.Pod](o)
		if err != nil {
			return nil, err
		}
		out = append(out, *p)
	}
	return out, nil
}

// LogQueries are the bounds of every PodLogs call so far.
func (c *Cluster) LogQueries() []kube.LogQuery {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]kube.LogQuery(nil), c.logQueries...)
}

// SetLogs makes text the log of a pod's container.
func (c *Cluster) SetLogs(ns, pod, container, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.logs[ns+"/"+pod+"/"+container] = text
}

// PodLogs returns the last lines of what SetLogs gave. The fake keeps no
// times: LogQueries records each query, for a test to check its bounds.
func (c *Cluster) PodLogs(_ context.Context, ns, pod, container string, q kube.LogQuery) (string, error) {
	if err := c.call(PodLogs, kube.Ref{APIVersion: "v1", Kind: "Pod", Namespace: ns, Name: pod}); err != nil {
		return "", err
	}
	c.mu.Lock()
	text := c.logs[ns+"/"+pod+"/"+container]
	c.logQueries = append(c.logQueries, q)
	c.mu.Unlock()
	lines, limit := q.Lines, q.Limit
	all := strings.SplitAfter(text, "\n")
	if n := int(lines); n > 0 && len(all) > n {
		all = all[len(all)-n:]
	}
	text = strings.Join(all, "")
	if limit > 0 && int64(len(text)) > limit {
		text = text[int64(len(text))-limit:]
	}
	return text, nil
}
