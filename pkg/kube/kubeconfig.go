package kube

import (
	"fmt"
	"os"
	"strings"

	"k8s.io/cli-runtime/pkg/genericclioptions"
)

// NoKubeconfigError: nothing names a cluster. kubectl would then dial
// http://localhost:8080, and say "connection refused" of a cluster the user
// never meant.
type NoKubeconfigError struct {
	// Files are the kubeconfig files looked at (KUBECONFIG's, or
	// ~/.kube/config).
	Files []string
}

func (e *NoKubeconfigError) Error() string {
	return fmt.Sprintf("no kubeconfig names a cluster (looked at %s): pass --kubeconfig FILE, or set KUBECONFIG", strings.Join(e.Files, ", "))
}

// NoKubeconfig reports, without a request, that the flags name no cluster:
// no --server, not inside a Pod, and no kubeconfig file with a cluster in
// it. A kubeconfig that cannot be read is not this error: the client says
// what is wrong with it.
func NoKubeconfig(getter genericclioptions.RESTClientGetter) error {
	if f, ok := getter.(*genericclioptions.ConfigFlags); ok && f.APIServer != nil && *f.APIServer != "" {
		return nil
	}
	if os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		return nil // in a Pod: client-go uses the service account
	}
	loader := getter.ToRawKubeConfigLoader()
	raw, err := loader.RawConfig()
	if err != nil || len(raw.Clusters) > 0 {
		return nil
	}
	return &NoKubeconfigError{Files: loader.ConfigAccess().GetLoadingPrecedence()}
}
