package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
)

var (
	deploymentsGVR = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	secretsGVR     = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
)

// ApplyAll server-side applies the targets for real as manager, forcing
// conflicts, in order. It stops at the first refusal.
func (c *Client) ApplyAll(ctx context.Context, targets []Target, manager string) error {
	for _, t := range targets {
		o, err := t.Object()
		if err != nil {
			return err
		}
		if _, err := c.Apply(ctx, t, o, manager, true, false); err != nil {
			return &ObjectError{Ref: t.Ref, Err: err}
		}
	}
	return nil
}

// MapAll maps manifests, failing on the first that cannot be mapped.
func (c *Client) MapAll(ms []Manifest, defaultNS string) ([]Target, error) {
	var out []Target
	for _, m := range ms {
		t, err := c.Map(context.TODO(), m, defaultNS, false)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// getTyped reads the object ns/name of gvr as a T; nil when it does not
// exist.
func getTyped[T any](ctx context.Context, c *Client, gvr schema.GroupVersionResource, ns, name string) (*T, error) {
	u, err := c.Dynamic.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, c.explain(err)
	}
	return fromUnstructured[T](u)
}

func fromUnstructured[T any](u *unstructured.Unstructured) (*T, error) {
	var v T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// GetSecret reads a Secret; nil when it does not exist.
func (c *Client) GetSecret(ctx context.Context, ns, name string) (*corev1.Secret, error) {
	return getTyped[corev1.Secret](ctx, c, secretsGVR, ns, name)
}

// SecretMetadata reads only a Secret's metadata (nil when there is none):
// its data, the token, never leaves the apiserver.
func (c *Client) SecretMetadata(ctx context.Context, ns, name string) (*metav1.ObjectMeta, error) {
	mc, err := metadata.NewForConfig(c.Config)
	if err != nil {
		return nil, err
	}
	m, err := mc.Resource(secretsGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, c.explain(err)
	}
	return &m.ObjectMeta, nil
}

// ErrSecretChanged: the Secret was written by someone else since it was read.
var ErrSecretChanged = errors.New("the Secret changed since it was read")

// ClaimSecret writes the Secret o only if it is still as it was read:
// readRV "" means it did not exist, and it is created (another writer that
// got there first makes this fail); otherwise it is applied with
// metadata.resourceVersion readRV, which the apiserver checks. Either way a
// lost race is ErrSecretChanged, and nothing was written.
func (c *Client) ClaimSecret(ctx context.Context, t Target, o *unstructured.Unstructured, readRV, manager string) error {
	o = o.DeepCopy()
	for _, f := range []string{"managedFields", "uid", "creationTimestamp", "resourceVersion"} {
		unstructured.RemoveNestedField(o.Object, "metadata", f)
	}
	var err error
	if readRV == "" {
		_, err = c.resource(t).Create(ctx, o, metav1.CreateOptions{FieldManager: manager})
	} else {
		o.SetResourceVersion(readRV)
		_, err = c.resource(t).Apply(ctx, t.Ref.Name, o, metav1.ApplyOptions{FieldManager: manager, Force: true})
	}
	if apierrors.IsAlreadyExists(err) || apierrors.IsConflict(err) {
		return ErrSecretChanged
	}
	return c.explain(err)
}

// GetDeployment reads a Deployment; nil when it does not exist.
func (c *Client) GetDeployment(ctx context.Context, ns, name string) (*appsv1.Deployment, error) {
	return getTyped[appsv1.Deployment](ctx, c, deploymentsGVR, ns, name)
}

// FindDeployments lists Deployments with the selector in every namespace.
func (c *Client) FindDeployments(ctx context.Context, selector string) ([]*appsv1.Deployment, error) {
	l, err := c.Dynamic.Resource(deploymentsGVR).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, c.explain(err)
	}
	var out []*appsv1.Deployment
	for i := range l.Items {
		d, err := fromUnstructured[appsv1.Deployment](&l.Items[i])
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// RolloutStatus says how far a Deployment's rollout is.
type RolloutStatus struct {
	Desired, Updated, Ready, Available int32
	// Done: the newest spec is observed and every replica is updated and
	// available.
	Done bool
	// Problem is set when the rollout cannot finish on its own (the
	// Deployment's progress deadline passed, or a pod cannot start).
	Problem string
	// Retrying is the transient failure the wait is riding out, if any.
	Retrying string
}

func (s RolloutStatus) String() string {
	out := fmt.Sprintf("%d/%d updated, %d/%d available", s.Updated, s.Desired, s.Available, s.Desired)
	if s.Retrying != "" {
		out += " (retrying: " + s.Retrying + ")"
	}
	return out
}

// Rollout reads a Deployment's rollout state.
func Rollout(d *appsv1.Deployment) RolloutStatus {
	desired := int32(1)
	if d.Spec.Replicas != nil {
		desired = *d.Spec.Replicas
	}
	s := RolloutStatus{Desired: desired, Updated: d.Status.UpdatedReplicas, Ready: d.Status.ReadyReplicas, Available: d.Status.AvailableReplicas}
	s.Done = d.Status.ObservedGeneration >= d.Generation && s.Updated == desired &&
		d.Status.Replicas == desired && s.Available == desired
	// As kubectl rollout status: the conditions speak of the spec the
	// controller has seen; until it has seen the one just applied, an old
	// rollout's ProgressDeadlineExceeded is not this one's.
	if d.Status.ObservedGeneration < d.Generation {
		return s
	}
	for _, cond := range d.Status.Conditions {
		if cond.Type == appsv1.DeploymentProgressing && cond.Status == corev1.ConditionFalse {
			s.Problem = cond.Message
		}
	}
	return s
}

// WaitRollout polls a Deployment until its rollout is done, reporting each
// change of state to progress, until ctx ends. A transient failure (a
// gateway's 502/503/504, a timeout, a dropped connection) is retried until
// ctx ends: through KAS, an agent that upgrades itself replaces the pods
// that carry the request, and for a moment none may hold the tunnel.
func (c *Client) WaitRollout(ctx context.Context, ns, name string, progress func(RolloutStatus)) error {
	var last RolloutStatus
	first := true
	var transient error
	for {
		d, err := c.GetDeployment(ctx, ns, name)
		if err != nil && ctx.Err() == nil && Transient(err) {
			if transient == nil {
				said := last
				said.Retrying = err.Error()
				progress(said)
			}
			transient = err
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
			continue
		}
		if err != nil && ctx.Err() != nil && transient != nil {
			return fmt.Errorf("waiting for Deployment %s/%s: %w (the last answer: %v)", ns, name, ctx.Err(), transient)
		}
		if err != nil {
			return err
		}
		if d == nil {
			return fmt.Errorf("the Deployment %s/%s does not exist", ns, name)
		}
		s := Rollout(d)
		recovered := transient != nil
		transient = nil
		if first || s != last || recovered {
			progress(s)
			last, first = s, false
		}
		if s.Done {
			return nil
		}
		if s.Problem != "" {
			return fmt.Errorf("the Deployment %s/%s cannot roll out: %s", ns, name, s.Problem)
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return fmt.Errorf("waiting for Deployment %s/%s (%s): %w", ns, name, s, ctx.Err())
			}
			return fmt.Errorf("the Deployment %s/%s is not available in time (%s): %w", ns, name, s, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// DeleteOrder sorts objects for deletion so that what keeps an agent
// running, authenticated and allowed goes last. Through KAS the agent being
// removed may carry the requests; what each delete takes from it comes
// later the later it goes: a Namespace's contents go in a while, pods stop
// after their grace period, but a ClusterRoleBinding's rights and a
// ServiceAccount's token end at once. So: other objects, ClusterRoles,
// Namespaces, workloads, ClusterRoleBindings, and ServiceAccounts last (one
// in a Namespace deleted too is left to it: see DeleteAndWait). A binding
// left behind would grant a future account of that name its rights; an
// account left behind grants nothing.
func DeleteOrder(objs []*unstructured.Unstructured) {
	rank := func(o *unstructured.Unstructured) int {
		group, _, _ := strings.Cut(o.GetAPIVersion(), "/")
		switch {
		case o.GetKind() == "ServiceAccount" && o.GetAPIVersion() == "v1":
			return 5
		case group == "rbac.authorization.k8s.io" && o.GetKind() == "ClusterRoleBinding":
			return 4
		case group == "apps" && (o.GetKind() == "Deployment" || o.GetKind() == "StatefulSet" || o.GetKind() == "DaemonSet"):
			return 3
		case o.GetKind() == "Namespace" && o.GetAPIVersion() == "v1":
			return 2
		case group == "rbac.authorization.k8s.io" && o.GetKind() == "ClusterRole":
			return 1
		}
		return 0
	}
	sort.SliceStable(objs, func(i, j int) bool { return rank(objs[i]) < rank(objs[j]) })
}

// takenByNamespace reports a ServiceAccount whose Namespace is among objs:
// that deletion removes it, a moment later; deleting it first would end the
// token of an agent that carries the requests before the bindings go.
func takenByNamespace(o *unstructured.Unstructured, objs []*unstructured.Unstructured) bool {
	if o.GetKind() != "ServiceAccount" || o.GetAPIVersion() != "v1" {
		return false
	}
	for _, n := range objs {
		if n.GetKind() == "Namespace" && n.GetAPIVersion() == "v1" && n.GetName() == o.GetNamespace() {
			return true
		}
	}
	return false
}

// SelectedObjects lists the live objects with selector: namespaced ones in
// namespaces, cluster-scoped ones everywhere; controller-owned ones excepted.
func (c *Client) SelectedObjects(ctx context.Context, selector string, namespaces, kinds []string) ([]*unstructured.Unstructured, error) {
	return c.ListSelected(ctx, selector, namespaces, kinds, 8)
}

// DeleteDryRun asks the server to delete each object (in DeleteOrder) as a
// dry run, as kubectl delete --dry-run=server does: admission and RBAC
// answer for each, and nothing is deleted.
func (c *Client) DeleteDryRun(ctx context.Context, objs []*unstructured.Unstructured) error {
	DeleteOrder(objs)
	background := metav1.DeletePropagationBackground
	for _, o := range objs {
		mapping, err := c.Mapper.RESTMapping(o.GroupVersionKind().GroupKind(), o.GroupVersionKind().Version)
		if err != nil {
			return fmt.Errorf("%s: %w", RefOf(o), err)
		}
		var ri dynamic.ResourceInterface = c.Dynamic.Resource(mapping.Resource)
		if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
			ri = c.Dynamic.Resource(mapping.Resource).Namespace(o.GetNamespace())
		}
		opts := metav1.DeleteOptions{PropagationPolicy: &background, DryRun: []string{metav1.DryRunAll}}
		if err := ri.Delete(ctx, o.GetName(), opts); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting %s (server dry run): %w", RefOf(o), explain(err))
		}
	}
	return nil
}

// DeleteAndWait deletes objects (in DeleteOrder) and waits until they are
// gone or ctx ends.
func (c *Client) DeleteAndWait(ctx context.Context, objs []*unstructured.Unstructured) error {
	DeleteOrder(objs)
	background := metav1.DeletePropagationBackground
	type gone struct {
		ri   func() error
		name string
	}
	var pending []gone
	for _, o := range objs {
		mapping, err := c.Mapper.RESTMapping(o.GroupVersionKind().GroupKind(), o.GroupVersionKind().Version)
		if err != nil {
			return fmt.Errorf("%s: %w", RefOf(o), err)
		}
		r := c.Dynamic.Resource(mapping.Resource)
		var ri interface {
			Delete(context.Context, string, metav1.DeleteOptions, ...string) error
			Get(context.Context, string, metav1.GetOptions, ...string) (*unstructured.Unstructured, error)
		} = r
		if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
			ri = r.Namespace(o.GetNamespace())
		}
		name := o.GetName()
		if takenByNamespace(o, objs) {
			// waited for below, with the rest
		} else if err := ri.Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &background}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting %s: %w", RefOf(o), c.explain(err))
		}
		pending = append(pending, gone{name: RefOf(o).String(), ri: func() error {
			_, err := ri.Get(ctx, name, metav1.GetOptions{})
			return err
		}})
	}
	// An object still there, or a transient failure (through KAS, the
	// agent being removed may be the one carrying the request), is waited
	// for; a refusal ends the wait at once.
	for _, p := range pending {
		var last error
		for {
			err := p.ri()
			if apierrors.IsNotFound(err) {
				break
			}
			if wouldPassDeadline(err) { // as good as the deadline: wait for it
				err = nil
			}
			if err != nil && ctx.Err() == nil && !Transient(err) {
				return fmt.Errorf("checking that %s is gone: %w", p.name, c.explain(err))
			}
			if err != nil && ctx.Err() == nil {
				last = err
			}
			select {
			case <-ctx.Done():
				if last != nil {
					return fmt.Errorf("%s is not known to be gone: %w (the last answer: %v)", p.name, ctx.Err(), last)
				}
				return fmt.Errorf("%s is not gone yet: %w", p.name, ctx.Err())
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}

// wouldPassDeadline is client-go's rate limiter refusing to wait past the
// context's deadline ("rate: Wait(n=1) would exceed context deadline"): the
// deadline, a moment early, not an answer of the cluster.
func wouldPassDeadline(err error) bool {
	return err != nil && strings.Contains(err.Error(), "would exceed context deadline")
}

var configMapsGVR = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}

// GetConfigMap reads a ConfigMap; nil when it does not exist.
func (c *Client) GetConfigMap(ctx context.Context, ns, name string) (*corev1.ConfigMap, error) {
	return getTyped[corev1.ConfigMap](ctx, c, configMapsGVR, ns, name)
}

var podsGVR = schema.GroupVersionResource{Version: "v1", Resource: "pods"}

// Pods lists the pods in ns with the label selector.
func (c *Client) Pods(ctx context.Context, ns, selector string) ([]corev1.Pod, error) {
	l, err := c.Dynamic.Resource(podsGVR).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, c.explain(err)
	}
	out := make([]corev1.Pod, 0, len(l.Items))
	for i := range l.Items {
		p, err := fromUnstructured[corev1.Pod](&l.Items[i])
		if err != nil {
			return nil, err
		}
		out = append(out, *p)
	}
	return out, nil
}

// LogQuery bounds a log read: the last Lines lines written within Since,
// at most Limit bytes. A zero field sets no bound of its own.
type LogQuery struct {
	Lines int64
	Since time.Duration
	Limit int64
}

// PodLogs reads a container's log within q's bounds. The answer is read
// through a limit whatever the server does with limitBytes.
func (c *Client) PodLogs(ctx context.Context, ns, pod, container string, q LogQuery) (string, error) {
	cfg := rest.CopyConfig(c.Config)
	cfg.APIPath, cfg.GroupVersion = "/api", &corev1.SchemeGroupVersion
	cfg.NegotiatedSerializer = scheme.Codecs.WithoutConversion()
	rc, err := rest.RESTClientFor(cfg)
	if err != nil {
		return "", err
	}
	r := rc.Get().Namespace(ns).Resource("pods").Name(pod).SubResource("log").Param("container", container)
	if q.Lines > 0 {
		r = r.Param("tailLines", strconv.FormatInt(q.Lines, 10))
	}
	if s := int64(q.Since / time.Second); s > 0 {
		r = r.Param("sinceSeconds", strconv.FormatInt(s, 10))
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 1 << 20
	}
	r = r.Param("limitBytes", strconv.FormatInt(limit, 10))
	rd, err := r.Stream(ctx)
	if err != nil {
		return "", c.explain(err)
	}
	defer rd.Close()
	b, err := io.ReadAll(io.LimitReader(rd, limit))
	if err != nil {
		return "", fmt.Errorf("reading the log of %s/%s: %w", ns, pod, err)
	}
	return string(b), nil
}

// Transient says whether err is a failure that may pass on its own: a
// gateway's or an overloaded server's answer (429, 502, 503, 504) or a
// connection that was refused, reset or ended early.
func Transient(err error) bool {
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		switch st.Status().Code {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	var ne net.Error
	return utilnet.IsConnectionReset(err) || utilnet.IsConnectionRefused(err) || utilnet.IsProbableEOF(err) ||
		(errors.As(err, &ne) && ne.Timeout())
}
