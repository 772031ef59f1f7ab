package cmd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/tunnel"
)

// KubeconfigOptions writes a kubeconfig context that reaches an agent's
// cluster through KAS.
type KubeconfigOptions struct {
	agentTarget
	Kubeconfig string
	UseContext bool
	CI         bool
	CAFile     string
}

// NewCmdKubeconfig builds `kubeconfig NAME|ID`.
func NewCmdKubeconfig(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &KubeconfigOptions{agentTarget: agentTarget{agentCommand: agentCommand{gitlabCommand: newGitLabCommand(g, streams, "text", "json", "yaml")}}}
	cmd := &cobra.Command{
		Use:   "kubeconfig NAME|ID",
		Short: "Add a kubeconfig context that reaches the agent's cluster through KAS",
		Long: `Add (or update) a cluster, a user and a context for the agent in the kubeconfig
kubectl uses (--kubeconfig to choose), named as the GitLab CLI names them. The
cluster is KAS's Kubernetes API proxy; the user runs 'kubectl-gitlab_agent
get-token' as an exec credential plugin, which mints and caches a k8s_proxy
personal access token (with GITLAB_TOKEN) or, with --ci, passes the job's
CI_JOB_TOKEN at call time, so that nothing secret is stored. Every other
entry of the kubeconfig stays as it was.`,
		Example: `  kubectl gitlab-agent kubeconfig prod-eu --project infra/agents --use-context
  kubectl get pods -A

  # In a CI job of a project the agent's ci_access names
  kubectl gitlab-agent kubeconfig prod-eu --project infra/agents --ci --use-context`,
		Args: exactArgs(1, "NAME|ID"),
		RunE: runOptions(o),
	}
	o.addFlags(cmd, true)
	f := cmd.Flags()
	f.StringVar(&o.Kubeconfig, "kubeconfig", "", "the kubeconfig file to write (default: as kubectl chooses: $KUBECONFIG, else ~/.kube/config)")
	f.BoolVar(&o.UseContext, "use-context", false, "make the new context the current one")
	f.BoolVar(&o.CI, "ci", false, "for a CI job: the credential is the job's CI_JOB_TOKEN, read when kubectl runs")
	f.StringVar(&o.CAFile, "ca-file", "", "a PEM file with the CA of a KAS behind a private CA")
	return cmd
}

// kubeconfigDocument is what kubeconfig wrote, for -o json|yaml.
type kubeconfigDocument struct {
	File     string   `json:"file"`
	Context  string   `json:"context"`
	Cluster  string   `json:"cluster"`
	User     string   `json:"user"`
	Server   string   `json:"server"`
	Repaired []string `json:"repaired,omitempty"`
}

// Run looks the agent and KAS up and writes the entries.
func (o *KubeconfigOptions) Run(ctx context.Context) error {
	if err := o.resolve(ctx); err != nil {
		return err
	}
	gitlabURL := o.GitLab.ResolvedURL()
	names, err := tunnel.EntryNames(gitlabURL, o.proj.PathWithNamespace, o.agent.Name, o.agent.ID)
	if err != nil {
		return err
	}
	// A path that survives upgrades: krew's ~/.krew/bin link, not the
	// versioned file it points at.
	command, err := tunnel.PluginCommand(os.Args[0])
	if err != nil {
		return err
	}
	getToken := []string{"get-token", "--gitlab-url", gitlabURL, "--agent-id", strconv.FormatInt(o.agent.ID, 10)}
	if o.CI {
		getToken = append(getToken, "--ci")
	} else if o.GitLab.TokenFile != "" {
		abs, err := filepath.Abs(o.GitLab.TokenFile)
		if err != nil {
			return err
		}
		getToken = append(getToken, "--gitlab-token-file", abs)
	}
	res, err := tunnel.WriteKubeconfig(ctx, o.Kubeconfig, tunnel.Entry{
		Names: names, Server: o.proxyURL, CAFile: o.CAFile, Command: command, Args: getToken, UseContext: o.UseContext,
	})
	if err != nil {
		return err
	}
	if len(res.Repaired) > 0 {
		fmt.Fprintf(o.ErrOut, "mended %d other kubeconfig users whose %s path was gone or tied to one version: %s\n",
			len(res.Repaired), tunnel.PluginName, strings.Join(res.Repaired, ", "))
	}
	doc := kubeconfigDocument{File: res.File, Context: names.Context, Cluster: names.Cluster, User: names.User, Server: o.proxyURL, Repaired: res.Repaired}
	if done, err := o.Output.PrintDocument(o.Out, doc); done {
		return err
	}
	fmt.Fprintf(o.Out, "context %q for agent %q written to %s\n", names.Context, o.agent.Name, res.File)
	if !o.UseContext {
		fmt.Fprintf(o.ErrOut, "use it with: kubectl --context %s get pods\n", names.Context)
	}
	return nil
}
