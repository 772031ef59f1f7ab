package cmd

import (
	"context"
	"net"
	"net/http"
	"time"

	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/diff"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/doctor"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/flux"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/install"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/version"
)

// Factory makes every client a command uses to reach outside: the cluster
// clients from kubectl's flags (as kubectl's cmdutil.Factory does), GitLab
// clients, and the dialer that reaches KAS. Commands ask it rather than
// building clients themselves, so that a test can run any command
// in-process against fakes, and check that bad input makes no request.
// Making a client makes no request.
type Factory interface {
	// DiffCluster is what diff needs of the cluster the flags select.
	DiffCluster(flags genericclioptions.RESTClientGetter) (diff.Cluster, error)
	// Cluster is what the lifecycle actions need of that cluster.
	Cluster(flags genericclioptions.RESTClientGetter) (install.Cluster, error)
	// Flux reaches Flux's objects in that cluster (bootstrap).
	Flux(flags genericclioptions.RESTClientGetter) (flux.Cluster, error)
	// Doctor is what doctor reads of it.
	Doctor(flags genericclioptions.RESTClientGetter) (doctor.Cluster, error)
	// GitLab is a client of the GitLab o names, with o's credential (the
	// credential chain's, GitLabFlags.Options).
	GitLab(o gitlab.Options) (*gitlab.Client, error)
	// KASDialer opens the connections to KAS: its Kubernetes API proxy
	// and its agent endpoint (or the HTTPS proxy on the way).
	KASDialer() func(ctx context.Context, network, addr string) (net.Conn, error)
	// HTTPClient reads the files given by URL (values files, -f https://…).
	HTTPClient() *http.Client
}

// DefaultFactory connects to real clusters, GitLabs and KAS.
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

func (defaultFactory) Flux(flags genericclioptions.RESTClientGetter) (flux.Cluster, error) {
	return kube.NewClient(flags)
}

func (defaultFactory) Doctor(flags genericclioptions.RESTClientGetter) (doctor.Cluster, error) {
	// Without a kubeconfig doctor's cluster checks skip (docs/doctor.md),
	// rather than fail on the localhost:8080 client-go falls back to.
	if err := kube.NoKubeconfig(flags); err != nil {
		return nil, err
	}
	return kube.NewClient(flags)
}

func (defaultFactory) GitLab(o gitlab.Options) (*gitlab.Client, error) { return newGitLab(o) }

// newGitLab is gitlab.New with the plugin's User-Agent.
func newGitLab(o gitlab.Options) (*gitlab.Client, error) {
	if o.UserAgent == "" {
		o.UserAgent = "kubectl-gitlab-agent/" + version.Get().Version
	}
	return gitlab.New(o)
}

func (defaultFactory) HTTPClient() *http.Client {
	return &http.Client{Transport: http.DefaultTransport}
}

func (defaultFactory) KASDialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	return (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
}
