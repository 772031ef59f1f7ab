package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/input"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/safetext"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/tunnel"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/ui"
)

// KubeconfigOptions writes a kubeconfig context that reaches an agent's
// cluster through KAS.
type KubeconfigOptions struct {
	agentTarget
	Kubeconfig string
	UseContext bool
	CI         bool
	CAFile     string
	Cache      cacheModeFlag

	// With --ci: the agent as the job names it, resolved with no API call
	// a job token cannot make.
	ciAgentID int64
	ciContext string // PROJECT_PATH:AGENT_NAME, when given so
}

// NewCmdKubeconfig builds `kubeconfig NAME|ID`.
func NewCmdKubeconfig(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &KubeconfigOptions{agentTarget: agentTarget{agentCommand: newAgentCommand(f, g, streams, nil, "text", "json", "yaml")}}
	cmd := &cobra.Command{
		Use:   "kubeconfig NAME|ID|PROJECT_PATH:AGENT_NAME",
		Short: "Add a kubeconfig context that reaches the agent's cluster through KAS",
		Long: `Add (or update) a cluster, a user and a context for the agent in the kubeconfig
kubectl uses (--kubeconfig to choose), named as the GitLab CLI names them. The
cluster is KAS's Kubernetes API proxy; the user runs 'kubectl-gitlab_agent
get-token' as an exec credential plugin, which mints and caches a k8s_proxy
personal access token (with GITLAB_TOKEN) or, with --ci, passes the job's
CI_JOB_TOKEN at call time, so that nothing secret is stored. Every other
entry of the kubeconfig stays as it was.

With --ci the job token alone is enough: give the agent's numeric ID, or
PROJECT_PATH:AGENT_NAME as GitLab names the contexts of the KUBECONFIG it
injects (the ID is read from there). No agents API call is made (a job token
cannot make one); a plain NAME needs a token that may use the agents API.
KAS's proxy URL is --kas-proxy-url, else what /metadata advertises when the
job token may read it, else derived from CI_SERVER_URL
(https://kas.gitlab.com/k8s-proxy for GitLab.com,
<CI_SERVER_URL>/-/kubernetes-agent/k8s-proxy otherwise); the command says
which.

--cache-mode is written into get-token's arguments (when it is not the
default, keyring): where get-token keeps the k8s_proxy token (see get-token).
none is refused: kubectl runs get-token for every request.`,
		Example: `  kubectl gitlab-agent kubeconfig prod-eu --project infra/agents --use-context
  kubectl get pods -A

  # In a CI job of a project the agent's ci_access names
  kubectl gitlab-agent kubeconfig 101 --ci --use-context
  kubectl gitlab-agent kubeconfig infra/agents:prod-eu --ci --use-context`,
		Args: exactArgs(1, "NAME|ID|PROJECT_PATH:AGENT_NAME"),
		RunE: runOptions(o),
	}
	o.addFlags(cmd, true)
	fl := cmd.Flags()
	fl.StringVar(&o.Kubeconfig, "kubeconfig", "", "the kubeconfig file to write (default: as kubectl chooses: $KUBECONFIG, else ~/.kube/config)")
	fl.BoolVar(&o.UseContext, "use-context", false, "make the new context the current one")
	fl.BoolVar(&o.CI, "ci", false, "for a CI job: the credential is the job's CI_JOB_TOKEN, read when kubectl runs")
	fl.StringVar(&o.CAFile, "ca-file", "", "a PEM file with the CA of a KAS behind a private CA")
	o.Cache.add(cmd, false, cacheModeUsage+`, for get-token's arguments (none is refused: kubectl runs get-token for every request; not used with --ci)`)
	return cmd
}

// Validate checks the flags before any request.
func (o *KubeconfigOptions) Validate() error {
	if err := o.agentTarget.Validate(); err != nil {
		return err
	}
	return o.Cache.forExecPlugin(o.CI)
}

// kubeconfigDocument is what kubeconfig wrote, for -o json|yaml.
type kubeconfigDocument struct {
	File     string   `json:"file"`
	Context  string   `json:"context"`
	Cluster  string   `json:"cluster"`
	User     string   `json:"user"`
	Server   string   `json:"server"`
	Repaired []string `json:"repaired,omitempty"`
	// agent names the agent in the text form: its ID with --ci, else its
	// name quoted.
	agent string
}

// WriteText says which context was written where.
func (d kubeconfigDocument) WriteText(w io.Writer, _ *ui.Painter) error {
	_, err := fmt.Fprintf(w, "context %q for agent %s written to %s\n", d.Context, d.agent, d.File)
	return err
}

// Complete reads the argument; with --ci it needs no GitLab client yet.
func (o *KubeconfigOptions) Complete(cmd *cobra.Command, args []string) error {
	if !o.CI {
		return o.agentTarget.Complete(cmd, args)
	}
	if err := o.Output.Validate(); err != nil {
		return err
	}
	arg := args[0]
	if id, err := strconv.ParseInt(arg, 10, 64); err == nil && id > 0 {
		o.ciAgentID = id
		return nil
	}
	path, name, ok := strings.Cut(arg, ":")
	if !ok {
		// A plain NAME needs the agents API: fine with a personal or
		// project token, not with the job token alone.
		if creds, err := o.GitLab.Credentials(); err == nil && creds.JobToken != "" {
			return fmt.Errorf("with --ci and only CI_JOB_TOKEN, give the agent's numeric ID or PROJECT_PATH:AGENT_NAME (GitLab's context name), not %q: a job token cannot look an agent up by name", arg)
		}
		return o.agentTarget.Complete(cmd, args)
	}
	if path == "" || name == "" {
		return fmt.Errorf("with --ci, give the agent's numeric ID or PROJECT_PATH:AGENT_NAME, not %q", arg)
	}
	cfg, err := tunnel.LoadKubeconfigs(cmd.Context())
	if err != nil {
		return fmt.Errorf("reading $KUBECONFIG for context %s: %w", arg, err)
	}
	if o.ciAgentID, err = tunnel.InjectedAgentID(cfg, arg); err != nil {
		return err
	}
	o.ciContext = arg
	return nil
}

// ciTarget settles, for --ci, the proxy URL and the entry names with no
// call a job token cannot make.
func (o *KubeconfigOptions) ciTarget(ctx context.Context, gitlabURL string) (tunnel.Names, error) {
	switch {
	case o.KASProxyURL != "":
		o.proxyURL = strings.TrimRight(o.KASProxyURL, "/")
		fmt.Fprintf(o.ErrOut, "KAS proxy %s (from --kas-proxy-url)\n", o.proxyURL)
	default:
		if u, err := o.metadataProxyURL(ctx, gitlabURL); err == nil {
			o.proxyURL = u
			fmt.Fprintf(o.ErrOut, "KAS proxy %s (from GitLab's /metadata)\n", safetext.Line(o.proxyURL))
			break
		} else if !errors.Is(err, gitlab.ErrNoCredentials) {
			fmt.Fprintf(o.ErrOut, "GitLab's /metadata is not readable here (%s)\n", safetext.Line(err.Error()))
		}
		u, err := tunnel.DerivedProxyURL(gitlabURL)
		if err != nil {
			return tunnel.Names{}, err
		}
		o.proxyURL = u
		fmt.Fprintf(o.ErrOut, "KAS proxy %s (derived from %s; --kas-proxy-url to choose)\n", o.proxyURL, gitlabURL)
	}
	o.GitLab.WarnCleartext(o.ErrOut, o.proxyURL, "the job token")
	path, name := "agent", strconv.FormatInt(o.ciAgentID, 10)
	if o.ciContext != "" {
		path, name, _ = strings.Cut(o.ciContext, ":")
	}
	return tunnel.EntryNames(gitlabURL, path, name, o.ciAgentID)
}

// metadataProxyURL is the proxy URL /metadata advertises, when the
// credential at hand (the job token) may read it.
func (o *KubeconfigOptions) metadataProxyURL(ctx context.Context, gitlabURL string) (string, error) {
	c, err := o.GitLab.Client(o.Factory, io.Discard)
	if err != nil {
		return "", err
	}
	kas, err := c.DiscoverKAS(ctx)
	if err != nil {
		return "", err
	}
	if err := tunnel.CheckProxyURL(gitlabURL, kas.ProxyURL, false); err != nil {
		return "", err
	}
	return kas.ProxyURL, nil
}

// Run looks the agent and KAS up and writes the entries.
func (o *KubeconfigOptions) Run(ctx context.Context) error {
	var ca []byte
	if o.CAFile != "" {
		var err error
		if ca, err = input.ReadFile(ctx, o.CAFile, nil, input.MaxCA, "--ca-file"); err != nil {
			return err
		}
	}
	gitlabURL := o.GitLab.ResolvedURL()
	if o.CI {
		// get-token would refuse at every kubectl call.
		if err := gitlab.JobTokenFor(gitlabURL); err != nil {
			return err
		}
	}
	var names tunnel.Names
	var err error
	if o.ciAgentID != 0 {
		if names, err = o.ciTarget(ctx, gitlabURL); err != nil {
			return err
		}
		o.agent = &gitlab.Agent{ID: o.ciAgentID, Name: names.Context}
	} else {
		if err := o.resolve(ctx); err != nil {
			return err
		}
		if names, err = tunnel.EntryNames(gitlabURL, o.proj.PathWithNamespace, o.agent.Name, o.agent.ID); err != nil {
			return err
		}
	}
	entry, err := tunnel.KubeconfigFor(tunnel.AgentAccess{Names: names, GitLabURL: gitlabURL, AgentID: o.agent.ID, Server: o.proxyURL, CA: ca,
		CI: o.CI, TokenFile: o.GitLab.TokenFile, CacheMode: o.Cache.mode, Argv0: os.Args[0], UseContext: o.UseContext})
	if err != nil {
		return err
	}
	res, err := tunnel.WriteKubeconfig(ctx, o.Kubeconfig, entry)
	if err != nil {
		return err
	}
	if len(res.Repaired) > 0 {
		fmt.Fprintf(o.ErrOut, "mended %d other kubeconfig users whose %s path was gone or tied to one version: %s\n",
			len(res.Repaired), tunnel.PluginName, strings.Join(res.Repaired, ", "))
	}
	doc := kubeconfigDocument{File: res.File, Context: names.Context, Cluster: names.Cluster, User: names.User, Server: o.proxyURL, Repaired: res.Repaired,
		agent: fmt.Sprintf("%q", o.agent.Name)}
	if o.ciAgentID != 0 {
		doc.agent = strconv.FormatInt(o.agent.ID, 10)
	}
	if err := o.print(doc); err != nil || !o.Output.Text() {
		return err
	}
	if !o.UseContext {
		fmt.Fprintf(o.ErrOut, "use it with: kubectl --context %s get pods\n", shellWord(names.Context))
	}
	return nil
}

// shellWord is s as one word for a POSIX shell: as it is when it holds only
// characters no shell treats specially, else single-quoted.
func shellWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:/@%+=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(safetext.Line(s), "'", `'\''`) + "'"
}
