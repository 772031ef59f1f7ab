package cluster

import (
	"fmt"

	"k8s.io/client-go/discovery"
	appsv1client "k8s.io/client-go/kubernetes/typed/apps/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
)

// Clients are the typed clients the tests use: core, apps and discovery.
// They answer the same calls as client-go's Clientset (cs.CoreV1().Pods(ns)…),
// but the Clientset brings a typed client and an apply configuration package
// for every API group, about a hundred generated packages that a cold build
// cache spends half a minute of CPU compiling, for the two groups used here.
// test/layers keeps the Clientset out of the tree.
type Clients struct {
	core      *corev1client.CoreV1Client
	apps      *appsv1client.AppsV1Client
	discovery *discovery.DiscoveryClient
}

// NewClients builds the clients of rc.
func NewClients(rc *rest.Config) (*Clients, error) {
	core, err := corev1client.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("core client: %w", err)
	}
	apps, err := appsv1client.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("apps client: %w", err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("discovery client: %w", err)
	}
	return &Clients{core: core, apps: apps, discovery: disc}, nil
}

// CoreV1 is the core/v1 client.
func (c *Clients) CoreV1() corev1client.CoreV1Interface { return c.core }

// AppsV1 is the apps/v1 client.
func (c *Clients) AppsV1() appsv1client.AppsV1Interface { return c.apps }

// Discovery is the discovery client.
func (c *Clients) Discovery() discovery.DiscoveryInterface { return c.discovery }
