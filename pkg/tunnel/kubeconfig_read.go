package tunnel

import (
	"context"
	"errors"
	"fmt"
	"os"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/input"
)

// kubeconfigBytes reads the kubeconfig at path as every other input is
// read: at most input.MaxKubeconfig, given up on when ctx ends, and only
// from a regular file (KUBECONFIG=/dev/zero, a FIFO or a directory is
// refused at once, not read without end or waited on). A missing file is
// an error that matches os.ErrNotExist.
func kubeconfigBytes(ctx context.Context, path string) ([]byte, error) {
	return input.ReadRegularFile(ctx, path, input.MaxKubeconfig, "kubeconfig")
}

// ReadKubeconfig reads and parses the kubeconfig at path (see
// kubeconfigBytes).
func ReadKubeconfig(ctx context.Context, path string) (*clientcmdapi.Config, error) {
	b, err := kubeconfigBytes(ctx, path)
	if err != nil {
		return nil, err
	}
	cfg, err := clientcmd.Load(b)
	if err != nil {
		return nil, fmt.Errorf("reading kubeconfig %s: %w", path, err)
	}
	return cfg, nil
}

// LoadKubeconfigs is the configuration kubectl reads ($KUBECONFIG's files,
// else ~/.kube/config; missing ones skipped), each file read with
// ReadKubeconfig and merged as client-go merges them: for each name, and
// for the current context, the first file that has one wins.
func LoadKubeconfigs(ctx context.Context) (*clientcmdapi.Config, error) {
	merged := clientcmdapi.NewConfig()
	for _, f := range clientcmd.NewDefaultClientConfigLoadingRules().GetLoadingPrecedence() {
		cfg, err := ReadKubeconfig(ctx, f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for k, v := range cfg.Clusters {
			if _, ok := merged.Clusters[k]; !ok {
				merged.Clusters[k] = v
			}
		}
		for k, v := range cfg.AuthInfos {
			if _, ok := merged.AuthInfos[k]; !ok {
				merged.AuthInfos[k] = v
			}
		}
		for k, v := range cfg.Contexts {
			if _, ok := merged.Contexts[k]; !ok {
				merged.Contexts[k] = v
			}
		}
		if merged.CurrentContext == "" {
			merged.CurrentContext = cfg.CurrentContext
		}
	}
	return merged, nil
}
