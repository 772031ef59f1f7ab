// Package tunnel reaches clusters through KAS's Kubernetes API proxy:
// kubeconfig entries that use the plugin as an exec credential plugin, the
// credentials themselves (k8s_proxy personal access tokens, cached per user,
// or CI job tokens), and a local proxy for tools without exec plugins.
package tunnel

import (
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Names are the kubeconfig entry names, as the GitLab CLI writes them.
type Names struct {
	Cluster, User, Context string
}

// EntryNames names the entries for an agent: cluster after GitLab's host
// ("gitlab_example_com"), user "<cluster>-<agent ID>", context
// "<cluster>-<project path with / as _>-<agent name>".
func EntryNames(gitlabURL, projectPath, agentName string, agentID int64) (Names, error) {
	u, err := url.Parse(gitlabURL)
	if err != nil || u.Host == "" {
		return Names{}, fmt.Errorf("invalid GitLab URL %q", gitlabURL)
	}
	cluster := strings.NewReplacer(".", "_", "/", "_", ":", "_").Replace(strings.Trim(u.Host+u.Path, "/"))
	return Names{
		Cluster: cluster,
		User:    cluster + "-" + strconv.FormatInt(agentID, 10),
		Context: cluster + "-" + strings.ReplaceAll(projectPath, "/", "_") + "-" + agentName,
	}, nil
}

// Entry is what kubeconfig writes for one agent.
type Entry struct {
	Names
	// Server is KAS's Kubernetes API proxy URL.
	Server string
	// CAFile is a PEM bundle for a KAS behind a private CA ("" for the
	// system roots).
	CAFile string
	// Command is the absolute path of the plugin binary; Args its get-token
	// arguments.
	Command string
	Args    []string
	// UseContext makes the new context the current one.
	UseContext bool
}

// installHint tells a user without the plugin how to get it.
const installHint = `kubectl-gitlab_agent is needed to reach this cluster through GitLab's agent.
Install it with 'kubectl krew install gitlab-agent', or from
https://github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/releases`

// WriteKubeconfig adds or updates the entry's cluster, user and context in
// the kubeconfig kubectl would use (explicit when given), through client-go's
// ModifyConfig, which locks the file and writes it whole; every other entry
// and preference stays as it was.
func WriteKubeconfig(explicitPath string, e Entry) (string, error) {
	po := clientcmd.NewDefaultPathOptions()
	po.LoadingRules.ExplicitPath = explicitPath
	cfg, err := po.GetStartingConfig()
	if err != nil {
		return "", fmt.Errorf("reading kubeconfig: %w", err)
	}
	cluster := clientcmdapi.NewCluster()
	if old, ok := cfg.Clusters[e.Cluster]; ok {
		cluster = old.DeepCopy()
	}
	cluster.Server = e.Server
	cluster.CertificateAuthority = ""
	cluster.CertificateAuthorityData = nil
	if e.CAFile != "" {
		data, err := os.ReadFile(e.CAFile)
		if err != nil {
			return "", fmt.Errorf("reading --ca-file: %w", err)
		}
		cluster.CertificateAuthorityData = data
	}
	user := clientcmdapi.NewAuthInfo()
	user.Exec = &clientcmdapi.ExecConfig{
		APIVersion:      "client.authentication.k8s.io/v1",
		Command:         e.Command,
		Args:            e.Args,
		InstallHint:     installHint,
		InteractiveMode: clientcmdapi.NeverExecInteractiveMode,
	}
	ctx := clientcmdapi.NewContext()
	if old, ok := cfg.Contexts[e.Context]; ok {
		ctx = old.DeepCopy()
	}
	ctx.Cluster, ctx.AuthInfo = e.Cluster, e.User
	cfg.Clusters[e.Cluster] = cluster
	cfg.AuthInfos[e.User] = user
	cfg.Contexts[e.Context] = ctx
	if e.UseContext {
		cfg.CurrentContext = e.Context
	}
	if err := clientcmd.ModifyConfig(po, *cfg, true); err != nil {
		return "", fmt.Errorf("writing kubeconfig: %w", err)
	}
	return po.GetDefaultFilename(), nil
}
