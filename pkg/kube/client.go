// Package kube is what the plugin does to a cluster: read manifests, map
// them to resources, read live objects, and server-side apply (for real or as
// a dry run) with the plugin's field manager.
package kube

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
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
	return &Client{Config: cfg, Dynamic: dyn, Discovery: dc, Mapper: rm, Namespace: ns, NamespaceExplicit: explicit}, nil
}

type resettable struct{ meta.RESTMapper }

func (resettable) Reset() {}
