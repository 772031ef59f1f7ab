package cmd

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/input"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/safetext"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/tunnel"
)

// ProxyOptions serves the agent's cluster API on a local port.
type ProxyOptions struct {
	agentTarget
	Port           int
	Address        string
	AcceptHosts    string
	KubeconfigOut  string
	CAFile         string
	CI             bool
	Days           int
	MaxConnections int
	Cache          cacheModeFlag

	acceptHostsSet bool
	ca             []byte // --ca-file's PEM
}

// NewCmdProxy builds `proxy NAME|ID`.
func NewCmdProxy(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &ProxyOptions{agentTarget: agentTarget{agentCommand: newAgentCommand(f, g, streams, nil, "text")}}
	cmd := &cobra.Command{
		Use:   "proxy NAME|ID",
		Short: "Serve the agent's cluster API on localhost, through KAS, for tools without exec plugins",
		Long: `Serve a local Kubernetes API endpoint, like 'kubectl proxy', that forwards every
request through KAS's proxy with the agent credential attached (as get-token
makes it). Watches and 'logs -f' stream, and exec, attach, port-forward and
cp upgrades (SPDY and WebSocket) pass through. When GitLab refuses the
credential it is renewed once. --kubeconfig-out writes a kubeconfig pointing
at the proxy. Listens on 127.0.0.1 unless --address says otherwise, which
also needs --accept-hosts. It serves command-line tools: a request from a
browser (one with a Sec-Fetch-* header, or another site's Origin) is refused,
as a page the cluster serves through a Service proxy path would run as the
proxy's own.

The k8s_proxy token is kept as get-token keeps it (--cache-mode keyring or
file), shared with get-token and other proxies. With --cache-mode none it is
kept in the proxy's memory only: created at the first request, and revoked
when the proxy stops.`,
		Example: `  kubectl gitlab-agent proxy prod-eu --project infra/agents --kubeconfig-out proxy.kubeconfig &
  KUBECONFIG=proxy.kubeconfig helm list -A`,
		Args: exactArgs(1, "NAME|ID"),
		RunE: runOptions(o),
	}
	o.agentTarget.addFlags(cmd, false)
	fl := cmd.Flags()
	fl.IntVarP(&o.Port, "port", "p", 8001, "the port to listen on (0 picks a free one)")
	fl.StringVar(&o.Address, "address", "127.0.0.1", "the address to listen on")
	fl.StringVar(&o.AcceptHosts, "accept-hosts", tunnel.DefaultAcceptHosts, "regular expressions of the Host headers to answer, comma-separated")
	fl.StringVar(&o.KubeconfigOut, "kubeconfig-out", "", "write a kubeconfig that points at the proxy to FILE")
	fl.StringVar(&o.CAFile, "ca-file", "", "a PEM file with the CA of a KAS behind a private CA")
	fl.BoolVar(&o.CI, "ci", false, "use the job's CI_JOB_TOKEN as the credential")
	fl.IntVar(&o.Days, "token-expiry", 1, "lifetime of a new personal access token in whole days")
	fl.IntVar(&o.MaxConnections, "max-connections", tunnel.DefaultMaxConnections, "the most client connections served at once; more wait")
	o.Cache.add(cmd, false, cacheModeUsage+` (in this proxy's memory, revoked when it stops)`)
	return cmd
}

// Complete reads the arguments and which flags were given.
func (o *ProxyOptions) Complete(cmd *cobra.Command, args []string) error {
	o.acceptHostsSet = cmd.Flags().Changed("accept-hosts")
	if !o.acceptHostsSet {
		o.AcceptHosts = defaultAcceptHosts(o.Address)
	}
	if o.CAFile != "" {
		var err error
		if o.ca, err = input.ReadFile(cmd.Context(), o.CAFile, nil, input.MaxCA, "--ca-file"); err != nil {
			return err
		}
	}
	return o.agentCommand.Complete(cmd, args)
}

// Validate checks the flags before any request.
func (o *ProxyOptions) Validate() error {
	if err := o.agentTarget.Validate(); err != nil {
		return err
	}
	if !tunnel.IsLoopback(o.Address) && !o.acceptHostsSet {
		return fmt.Errorf("--address %s is not loopback: pass --accept-hosts with the host names clients use (anyone who reaches it acts as you on the cluster)", o.Address)
	}
	if o.MaxConnections < 1 {
		return fmt.Errorf("--max-connections must be 1 or more")
	}
	if o.Port < 0 || o.Port > 65535 {
		return fmt.Errorf("--port %d is not a port (0 to 65535; 0 picks a free one)", o.Port)
	}
	if err := o.Cache.parse(); err != nil {
		return err
	}
	return validDays(o.Days)
}

// Run looks the agent and KAS up, then listens and serves until ctx ends.
func (o *ProxyOptions) Run(ctx context.Context) error {
	if err := o.resolve(ctx); err != nil {
		return err
	}
	creds, err := credentialOptions(o.Factory, &o.GitLab, o.agent.ID, o.CI, o.Days, o.Cache.mode, o.ErrOut)
	if err != nil {
		return err
	}
	if o.Cache.mode == tunnel.CacheNone && !o.CI {
		defer o.revokeKept(ctx, creds.Cache)
	}
	proxy, err := tunnel.NewProxy(tunnel.ProxyOptions{
		Target: o.proxyURL, CA: o.ca, Dial: o.Factory.KASDialer(), AcceptHosts: o.AcceptHosts, Log: o.ErrOut, MaxConnections: o.MaxConnections,
		Credential: func(ctx context.Context, refresh bool) (string, error) {
			c := creds
			c.Refresh = refresh
			cred, err := tunnel.GetCredential(ctx, c)
			return cred.Token, err
		},
	})
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", net.JoinHostPort(o.Address, strconv.Itoa(o.Port)))
	if err != nil {
		return fmt.Errorf("listening on %s:%d: %w (choose another with --port)", o.Address, o.Port, err)
	}
	if !tunnel.IsLoopback(o.Address) {
		fmt.Fprintf(o.ErrOut, "warning: serving on %s: anyone who reaches it acts on the cluster as you\n", l.Addr())
	}
	if o.KubeconfigOut != "" {
		if err := tunnel.WriteProxyKubeconfig(o.KubeconfigOut, "http://"+l.Addr().String(), o.agent.Name); err != nil {
			l.Close()
			return fmt.Errorf("writing --kubeconfig-out: %w", err)
		}
	}
	fmt.Fprintf(o.Out, "Starting to serve on %s\n", l.Addr())
	return proxy.Serve(ctx, l)
}

// revokeKept revokes the tokens of --cache-mode none when the proxy stops:
// nobody else holds them. Each revokes itself, so no other credential is
// needed; a Ctrl-C that stopped the proxy does not stop this.
func (o *ProxyOptions) revokeKept(ctx context.Context, cache *tunnel.Cache) {
	entries, _ := cache.List()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	for _, e := range entries {
		c, err := o.Factory.GitLab(gitlab.Options{URL: e.PAT.GitLabURL, Log: o.ErrOut, MaxRetries: 1,
			Credentials: gitlab.Credentials{Token: e.PAT.Token, Source: "the proxy's k8s_proxy token"}})
		if err == nil {
			err = c.RevokeOwnPAT(ctx)
		}
		if err != nil {
			fmt.Fprintf(o.ErrOut, "could not revoke the k8s_proxy token %d (it expires at %s): %s\n", e.PAT.ID,
				e.PAT.ExpiresAt.UTC().Format(time.RFC3339), safetext.Line(err.Error()))
			continue
		}
		_ = cache.Remove(e.Key)
		fmt.Fprintf(o.ErrOut, "revoked the k8s_proxy token %d (--cache-mode none)\n", e.PAT.ID)
	}
}

// defaultAcceptHosts are the Host headers answered when --accept-hosts is
// not given: loopback's names, and a loopback --address of another number
// (127.0.0.2): its clients send it, and would all be refused.
func defaultAcceptHosts(address string) string {
	hosts := tunnel.DefaultAcceptHosts
	if tunnel.IsLoopback(address) && address != "localhost" && address != "127.0.0.1" && address != "::1" {
		host := address
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		hosts += ",^" + regexp.QuoteMeta(host) + "$"
	}
	return hosts
}
