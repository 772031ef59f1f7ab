package cmd

import (
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/diff"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/doctor"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/install"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
)

// Factory makes the cluster clients commands use, from kubectl's flags, as
// kubectl's cmdutil.Factory does: commands ask it rather than building
// clients themselves, so a test can run a command in-process against an
// in-memory cluster (pkg/kube/fake).
type Factory interface {
	// DiffCluster is what diff needs of the cluster the flags select.
	DiffCluster(flags genericclioptions.RESTClientGetter) (diff.Cluster, error)
	// Cluster is what the lifecycle actions need of that cluster.
	Cluster(flags genericclioptions.RESTClientGetter) (install.Cluster, error)
	// Doctor is what doctor reads of it.
	Doctor(flags genericclioptions.RESTClientGetter) (doctor.Cluster, error)
}

// DefaultFactory connects to real clusters.
func DefaultFactory() Factory { return defaultFactory{} }

type defaultFactory struct{}

func (defaultFactory) DiffCluster(flags genericclioptions.RESTClientGetter) (diff.Cluster, error) {
	return kube.NewClient(flags)
}

func (defaultFactory) Cluster(flags genericclioptions.RESTClientGetter) (install.Cluster, error) {
	c, err := kube.NewClient(flags)
	if err != nil {
		return nil, err
	}
	return install.NewCluster(c), nil
}

func (defaultFactory) Doctor(flags genericclioptions.RESTClientGetter) (doctor.Cluster, error) {
	return kube.NewClient(flags)
}
