package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/secretfile"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/tunnel"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/ui"
)

// agentTarget is an agent reached through KAS: its ID and KAS's proxy URL.
type agentTarget struct {
	gitlabCommand
	agent *gitlab.Agent
	kas   *gitlab.KAS
	proj  *gitlab.Project
	// kasProxyURL is --kas-proxy-url; proxyURL the URL credentials go to.
	kasProxyURL string
	proxyURL    string
}

func (t *agentTarget) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&t.kasProxyURL, "kas-proxy-url", "", "KAS's Kubernetes API proxy URL (default: what GitLab's /metadata advertises, on GitLab's own site)")
}

func (t *agentTarget) resolve(ctx context.Context, arg string) error {
	if t.kasProxyURL != "" {
		if err := tunnel.CheckProxyURL(t.Global.ResolvedGitLabURL(), t.kasProxyURL, true); err != nil {
			return fmt.Errorf("--kas-proxy-url: %w", err)
		}
	}
	var err error
	if t.agent, err = t.findAgent(ctx, arg, "table"); err != nil {
		return err
	}
	if t.proj, err = t.client.GetProject(ctx, t.project); err != nil {
		return err
	}
	if t.kas, err = t.client.DiscoverKAS(ctx); err != nil {
		return err
	}
	t.proxyURL = strings.TrimRight(t.kasProxyURL, "/")
	if t.proxyURL == "" {
		if err := tunnel.CheckProxyURL(t.Global.ResolvedGitLabURL(), t.kas.ProxyURL, false); err != nil {
			return err
		}
		t.proxyURL = t.kas.ProxyURL
	}
	t.Global.WarnCleartext(t.ErrOut, t.proxyURL, "the k8s_proxy token")
	return nil
}

// NewCmdKubeconfig builds `kubeconfig NAME|ID`.
func NewCmdKubeconfig(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	t := &agentTarget{gitlabCommand: gitlabCommand{Global: g, IOStreams: streams}}
	var useContext, ci bool
	var caFile string
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
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := t.resolve(cmd.Context(), args[0]); err != nil {
				return err
			}
			gitlabURL := g.ResolvedGitLabURL()
			names, err := tunnel.EntryNames(gitlabURL, t.proj.PathWithNamespace, t.agent.Name, t.agent.ID)
			if err != nil {
				return err
			}
			// A path that survives upgrades: krew's ~/.krew/bin link,
			// not the versioned file it points at.
			command, err := tunnel.PluginCommand(os.Args[0])
			if err != nil {
				return err
			}
			getToken := []string{"get-token", "--gitlab-url", gitlabURL, "--agent-id", strconv.FormatInt(t.agent.ID, 10)}
			if ci {
				getToken = append(getToken, "--ci")
			} else if g.GitLabTokenFile != "" {
				abs, err := filepath.Abs(g.GitLabTokenFile)
				if err != nil {
					return err
				}
				getToken = append(getToken, "--gitlab-token-file", abs)
			}
			kubeconfig := ""
			if g.ConfigFlags.KubeConfig != nil {
				kubeconfig = *g.ConfigFlags.KubeConfig
			}
			res, err := tunnel.WriteKubeconfig(cmd.Context(), kubeconfig, tunnel.Entry{
				Names: names, Server: t.proxyURL, CAFile: caFile, Command: command, Args: getToken, UseContext: useContext,
			})
			if err != nil {
				return err
			}
			file := res.File
			if len(res.Repaired) > 0 {
				fmt.Fprintf(t.ErrOut, "mended %d other kubeconfig users whose %s path was gone or tied to one version: %s\n",
					len(res.Repaired), tunnel.PluginName, strings.Join(res.Repaired, ", "))
			}
			fmt.Fprintf(t.Out, "context %q for agent %q written to %s\n", names.Context, t.agent.Name, file)
			if !useContext {
				fmt.Fprintf(t.ErrOut, "use it with: kubectl --context %s get pods\n", names.Context)
			}
			return nil
		},
	}
	t.addFlags(cmd)
	cmd.Flags().BoolVar(&useContext, "use-context", false, "make the new context the current one")
	cmd.Flags().BoolVar(&ci, "ci", false, "for a CI job: the credential is the job's CI_JOB_TOKEN, read when kubectl runs")
	cmd.Flags().StringVar(&caFile, "ca-file", "", "a PEM file with the CA of a KAS behind a private CA")
	return cmd
}

// NewCmdGetToken builds `get-token`, the exec credential plugin.
func NewCmdGetToken(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	var agentID int64
	var ci bool
	var days int
	cmd := &cobra.Command{
		Use:   "get-token --agent-id ID",
		Short: "Print an ExecCredential for KAS's Kubernetes proxy (kubectl runs this)",
		Long: `The exec credential plugin that 'kubeconfig' configures. It prints a
client.authentication.k8s.io/v1 ExecCredential whose token is
pat:<agent ID>:<k8s_proxy personal access token>, or with --ci
ci:<agent ID>:<CI_JOB_TOKEN>.

The personal access token is created once (it expires after --token-expiry
days, at 00:00 UTC) and cached per GitLab URL and credential in a file (0600)
under the user's cache directory; parallel calls create one token. kubectl is
told it expires five minutes early. A cached token GitLab refuses is replaced.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if agentID <= 0 {
				return fmt.Errorf("--agent-id is required (the numeric ID 'kubectl gitlab-agent agent list' shows)")
			}
			o, err := credentialOptions(g, agentID, ci, days, streams.ErrOut)
			if err != nil {
				return err
			}
			c, err := tunnel.GetCredential(cmd.Context(), o)
			if err != nil {
				return err
			}
			b, err := tunnel.ExecCredential(c)
			if err != nil {
				return err
			}
			_, err = streams.Out.Write(b)
			return err
		},
	}
	cmd.Flags().Int64Var(&agentID, "agent-id", 0, "the agent's numeric ID")
	cmd.Flags().BoolVar(&ci, "ci", false, "use the job's CI_JOB_TOKEN")
	cmd.Flags().IntVar(&days, "token-expiry", 1, "lifetime of a new personal access token in whole days")
	return cmd
}

// NewCmdTokenCache builds `token-cache list|clear`.
func NewCmdTokenCache(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token-cache",
		Short: "List or clear the cached k8s_proxy personal access tokens",
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the cached tokens (never their values)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := outputFormat(g, "table", "json")
			if err != nil {
				return err
			}
			c, err := tunnel.DefaultCache()
			if err != nil {
				return err
			}
			entries, err := c.List()
			if err != nil {
				return err
			}
			type row struct {
				Key       string    `json:"key"`
				GitLabURL string    `json:"gitlabURL"`
				ID        int64     `json:"id"`
				Name      string    `json:"name"`
				ExpiresAt time.Time `json:"expiresAt"`
			}
			var rows []row
			for _, e := range entries {
				rows = append(rows, row{e.Key, e.PAT.GitLabURL, e.PAT.ID, e.PAT.Name, e.PAT.ExpiresAt})
			}
			if format == "json" {
				return ui.PrintJSON(streams.Out, map[string]any{"tokens": rows})
			}
			if len(rows) == 0 {
				fmt.Fprintf(streams.ErrOut, "no cached tokens in %s\n", c.Dir)
				return nil
			}
			t := &ui.Table{Headers: []string{"gitlab", "token id", "name", "expires"}, Color: ui.ColorEnabled(streams.Out, g.NoColor)}
			for _, r := range rows {
				t.Rows = append(t.Rows, []ui.Cell{ui.C(r.GitLabURL), ui.C(strconv.FormatInt(r.ID, 10)), ui.C(r.Name), ui.C(r.ExpiresAt.UTC().Format(time.RFC3339))})
			}
			return t.Write(streams.Out)
		},
	}
	var revoke bool
	clear := &cobra.Command{
		Use:   "clear",
		Short: "Remove the cached tokens; --revoke also revokes them in GitLab",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := tunnel.DefaultCache()
			if err != nil {
				return err
			}
			entries, err := c.List()
			if err != nil {
				return err
			}
			for _, e := range entries {
				if revoke {
					// The token revokes itself: no other credential needed.
					if err := gitlab.RevokeOwnPAT(cmd.Context(), e.PAT.GitLabURL, e.PAT.Token, gitlab.Options{Log: streams.ErrOut}); err != nil {
						return err
					}
				}
				if err := c.Remove(e.Key); err != nil {
					return err
				}
			}
			verb := "removed"
			if revoke {
				verb = "revoked and removed"
			}
			fmt.Fprintf(streams.Out, "%s %d cached tokens\n", verb, len(entries))
			return nil
		},
	}
	clear.Flags().BoolVar(&revoke, "revoke", false, "revoke each token in GitLab too (with the token itself)")
	cmd.AddCommand(list, clear)
	return cmd
}

// NewCmdProxy builds `proxy NAME|ID`.
func NewCmdProxy(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	t := &agentTarget{gitlabCommand: gitlabCommand{Global: g, IOStreams: streams}}
	var port, days, maxConns int
	var address, acceptHosts, kubeconfigOut, caFile string
	var ci bool
	cmd := &cobra.Command{
		Use:   "proxy NAME|ID",
		Short: "Serve the agent's cluster API on localhost, through KAS, for tools without exec plugins",
		Long: `Serve a local Kubernetes API endpoint, like 'kubectl proxy', that forwards every
request through KAS's proxy with the agent credential attached (as get-token
makes it). Watches and 'logs -f' stream, and exec, attach, port-forward and
cp upgrades (SPDY and WebSocket) pass through. When GitLab refuses the
credential it is renewed once. --kubeconfig-out writes a kubeconfig pointing
at the proxy. Listens on 127.0.0.1 unless --address says otherwise, which
also needs --accept-hosts.`,
		Example: `  kubectl gitlab-agent proxy prod-eu --project infra/agents --kubeconfig-out proxy.kubeconfig &
  KUBECONFIG=proxy.kubeconfig helm list -A`,
		Args: exactArgs(1, "NAME|ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !tunnel.IsLoopback(address) && !cmd.Flags().Changed("accept-hosts") {
				return fmt.Errorf("--address %s is not loopback: pass --accept-hosts with the host names clients use (anyone who reaches it acts as you on the cluster)", address)
			}
			if err := t.resolve(cmd.Context(), args[0]); err != nil {
				return err
			}
			o, err := credentialOptions(g, t.agent.ID, ci, days, streams.ErrOut)
			if err != nil {
				return err
			}
			if maxConns < 1 {
				return fmt.Errorf("--max-connections must be 1 or more")
			}
			p, err := tunnel.NewProxy(tunnel.ProxyOptions{
				Target: t.proxyURL, CAFile: caFile, AcceptHosts: acceptHosts, Log: streams.ErrOut, MaxConnections: maxConns,
				Credential: func(ctx context.Context, refresh bool) (string, error) {
					oo := o
					oo.Refresh = refresh
					c, err := tunnel.GetCredential(ctx, oo)
					return c.Token, err
				},
			})
			if err != nil {
				return err
			}
			l, err := net.Listen("tcp", net.JoinHostPort(address, strconv.Itoa(port)))
			if err != nil {
				return fmt.Errorf("listening on %s:%d: %w (choose another with --port)", address, port, err)
			}
			if !tunnel.IsLoopback(address) {
				fmt.Fprintf(streams.ErrOut, "warning: serving on %s: anyone who reaches it acts on the cluster as you\n", l.Addr())
			}
			if kubeconfigOut != "" {
				if err := writeProxyKubeconfig(kubeconfigOut, "http://"+l.Addr().String(), t.agent.Name); err != nil {
					l.Close()
					return err
				}
			}
			fmt.Fprintf(streams.Out, "Starting to serve on %s\n", l.Addr())
			return p.Serve(cmd.Context(), l)
		},
	}
	f := cmd.Flags()
	f.IntVarP(&port, "port", "p", 8001, "the port to listen on (0 picks a free one)")
	f.StringVar(&address, "address", "127.0.0.1", "the address to listen on")
	f.StringVar(&acceptHosts, "accept-hosts", tunnel.DefaultAcceptHosts, "regular expressions of the Host headers to answer, comma-separated")
	f.StringVar(&kubeconfigOut, "kubeconfig-out", "", "write a kubeconfig that points at the proxy to FILE")
	f.StringVar(&caFile, "ca-file", "", "a PEM file with the CA of a KAS behind a private CA")
	f.BoolVar(&ci, "ci", false, "use the job's CI_JOB_TOKEN as the credential")
	f.IntVar(&days, "token-expiry", 1, "lifetime of a new personal access token in whole days")
	f.IntVar(&maxConns, "max-connections", tunnel.DefaultMaxConnections, "the most client connections served at once; more wait")
	t.addFlags(cmd)
	return cmd
}

// credentialOptions says how get-token and proxy get the agent credential:
// the job token in CI, else a cached k8s_proxy PAT minted with the user's
// GitLab credentials.
func credentialOptions(g *GlobalOptions, agentID int64, ci bool, days int, log io.Writer) (tunnel.CredentialOptions, error) {
	o := tunnel.CredentialOptions{GitLabURL: g.ResolvedGitLabURL(), AgentID: agentID, CI: ci, Days: days, Log: log}
	if ci {
		return o, nil
	}
	creds, err := gitlab.FindCredentials(o.GitLabURL, g.GitLabTokenFile)
	switch {
	case errors.Is(err, gitlab.ErrNoCredentials):
		// A cached token serves without them; they are needed to mint.
		o.NoCredentials = err
	case err != nil:
		return o, err
	default:
		o.Credentials = creds
	}
	g.WarnCleartext(log, o.GitLabURL, "the GitLab token")
	o.Cache, err = tunnel.DefaultCache()
	return o, err
}

func writeProxyKubeconfig(path, server, agent string) error {
	cfg := clientcmdapi.NewConfig()
	name := "gitlab-agent-proxy-" + agent
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: server}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	cfg.CurrentContext = name
	b, err := clientcmd.Write(*cfg)
	if err == nil {
		err = secretfile.Replace(path, b)
	}
	if err != nil {
		return fmt.Errorf("writing --kubeconfig-out: %w", err)
	}
	return nil
}
