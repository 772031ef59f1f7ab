// Package kube is what the plugin does to a cluster: read manifests, map
// them to resources, read live objects, and server-side apply (for real or as
// a dry run) with the plugin's field manager.
package kube

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes/scheme"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/openapi"
	"k8s.io/client-go/rest"
)

// FieldManager is the server-side apply field manager the plugin applies as.
const FieldManager = "kubectl-gitlab-agent"

// Client reaches one cluster.
type Client struct {
	Config    *rest.Config
	Dynamic   dynamic.Interface
	Discovery discovery.CachedDiscoveryInterface
	Mapper    meta.ResettableRESTMapper
	// Namespace is the kubeconfig context's namespace, or -n.
	Namespace string
	// NamespaceExplicit is true when -n was given.
	NamespaceExplicit bool
	// Context is the kubeconfig context in use, and User its user (or
	// --user), for messages.
	Context, User string

	statusSubresources sync.Map // GroupVersionResource → bool
}

// NewClient builds a client from kubectl's flags. client-go's default rate
// limit (5 requests per second, bursts of 10) would throttle any concurrency,
// so it is raised; the apiserver's own priority and fairness still applies.
func NewClient(getter genericclioptions.RESTClientGetter) (*Client, error) {
	cfg, err := getter.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("reading kubeconfig: %w", err)
	}
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS == 0 {
		cfg.QPS = 500
	}
	if cfg.Burst == 0 {
		cfg.Burst = 1000
	}
	dc, err := getter.ToDiscoveryClient()
	if err != nil {
		return nil, fmt.Errorf("reading kubeconfig: %w", err)
	}
	mapper, err := getter.ToRESTMapper()
	if err != nil {
		return nil, fmt.Errorf("reading kubeconfig: %w", err)
	}
	rm, ok := mapper.(meta.ResettableRESTMapper)
	if !ok {
		rm = resettable{mapper}
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	ns, explicit, err := getter.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, fmt.Errorf("reading kubeconfig: %w", err)
	}
	client := &Client{Config: cfg, Dynamic: dyn, Discovery: dc, Mapper: rm, Namespace: ns, NamespaceExplicit: explicit}
	if raw, err := getter.ToRawKubeConfigLoader().RawConfig(); err == nil {
		client.Context = raw.CurrentContext
		cf, _ := getter.(*genericclioptions.ConfigFlags)
		if cf != nil && cf.Context != nil && *cf.Context != "" {
			client.Context = *cf.Context
		}
		if kc := raw.Contexts[client.Context]; kc != nil {
			client.User = kc.AuthInfo
		}
		if cf != nil && cf.AuthInfoName != nil && *cf.AuthInfoName != "" {
			client.User = *cf.AuthInfoName
		}
	}
	return client, nil
}

// UnreachableError is a cluster that does not answer at all.
type UnreachableError struct {
	Server  string
	Context string
	Err     error
}

func (e *UnreachableError) Error() string {
	where := e.Server
	if e.Context != "" {
		where += " (context " + e.Context + ")"
	}
	return fmt.Sprintf("cannot reach the cluster at %s: %s: check that it is running and that your kubeconfig points at it ('kubectl cluster-info' shows what kubectl reaches)", where, reason(e.Err))
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// reason is the last part of a transport error ("connection refused").
func reason(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && i+2 < len(msg) {
		msg = msg[i+2:]
	}
	return msg
}

// Reachable asks the cluster for its version, once, within --request-timeout
// or 15 seconds: a cluster that does not answer is one error, said before
// anything else is done, not one error per object.
func (c *Client) Reachable(ctx context.Context) error {
	timeout := 15 * time.Second
	if c.Config.Timeout > 0 {
		timeout = c.Config.Timeout
	}
	shown := timeout
	if d, ok := ctx.Deadline(); ok && time.Until(d) < timeout {
		// The caller's bound ends it first: that is the one to name.
		shown = max(time.Until(d).Round(100*time.Millisecond), 100*time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	rc, err := rest.UnversionedRESTClientFor(withoutNegotiation(c.Config))
	if err != nil {
		return err
	}
	err = rc.Get().AbsPath("/version").Do(ctx).Error()
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) && !apierrors.IsTimeout(err) && !apierrors.IsServerTimeout(err) {
		// It answered (401, 403, ...): reachable; the real call will say.
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("no answer within %s", shown)
	}
	return &UnreachableError{Server: c.Config.Host, Context: c.Context, Err: err}
}

func withoutNegotiation(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.NegotiatedSerializer = scheme.Codecs.WithoutConversion()
	cfg.GroupVersion = nil
	return cfg
}

// OpenAPIV3 is the server's OpenAPI v3 documents, one per group version,
// kept in kubectl's HTTP cache on disk.
func (c *Client) OpenAPIV3() openapi.Client { return c.Discovery.OpenAPIV3() }

// HasStatusSubresource reports whether discovery lists a status subresource
// for the resource (then the apiserver ignores status in an apply to the
// resource itself, and status is not the user's to set). When discovery
// cannot say, it assumes there is one, as for most resources.
func (c *Client) HasStatusSubresource(gvr schema.GroupVersionResource) bool {
	if c.Discovery == nil {
		return true
	}
	// The disk cache reads and decodes its file on every call: once per
	// group version is enough for a run.
	if v, ok := c.statusSubresources.Load(gvr); ok {
		return v.(bool)
	}
	has := true
	if l, err := c.Discovery.ServerResourcesForGroupVersion(gvr.GroupVersion().String()); err == nil {
		has = slices.ContainsFunc(l.APIResources, func(r metav1.APIResource) bool { return r.Name == gvr.Resource+"/status" })
	}
	c.statusSubresources.Store(gvr, has)
	return has
}

type resettable struct{ meta.RESTMapper }

func (resettable) Reset() {}
