package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/tunnel"
)

// agentTarget is an agent reached through KAS: its ID and KAS's proxy URL,
// for kubeconfig and proxy.
type agentTarget struct {
	agentCommand
	agent *gitlab.Agent
	kas   *gitlab.KAS
	proj  *gitlab.Project
	// KASProxyURL is --kas-proxy-url; proxyURL the URL credentials go to.
	KASProxyURL string
	proxyURL    string
}

// addFlags binds the GitLab flags, --kas-proxy-url and, withOutput, -o.
func (t *agentTarget) addFlags(cmd *cobra.Command, withOutput bool) {
	t.GitLab.AddFlags(cmd, true)
	cmd.ValidArgsFunction = agentNames(t.Factory, &t.GitLab)
	if withOutput {
		t.Output.AddFlags(cmd)
	}
	cmd.Flags().StringVar(&t.KASProxyURL, "kas-proxy-url", "", "KAS's Kubernetes API proxy URL (default: what GitLab's /metadata advertises, on GitLab's own site)")
}

// Validate checks --kas-proxy-url before any request.
func (t *agentTarget) Validate() error {
	if t.KASProxyURL != "" {
		if err := tunnel.CheckProxyURL(t.GitLab.ResolvedURL(), t.KASProxyURL, true); err != nil {
			return fmt.Errorf("--kas-proxy-url: %w", err)
		}
	}
	return nil
}

// resolve looks the agent, its project and KAS up, and settles the proxy URL:
// --kas-proxy-url or what GitLab advertises, on GitLab's own site unless
// the user chose otherwise.
func (t *agentTarget) resolve(ctx context.Context) error {
	var err error
	if t.agent, err = t.agentCommand.agent(ctx); err != nil {
		return err
	}
	if t.proj, err = t.client.GetProject(ctx, t.project); err != nil {
		return err
	}
	if t.kas, err = t.client.DiscoverKAS(ctx); err != nil {
		return err
	}
	t.proxyURL = strings.TrimRight(t.KASProxyURL, "/")
	if t.proxyURL == "" {
		if err := tunnel.CheckProxyURL(t.GitLab.ResolvedURL(), t.kas.ProxyURL, false); err != nil {
			return err
		}
		t.proxyURL = t.kas.ProxyURL
	}
	t.GitLab.WarnCleartext(t.ErrOut, t.proxyURL, "the k8s_proxy token")
	return nil
}

// cacheModeFlag is --cache-mode: where get-token, proxy and token-cache keep
// the k8s_proxy tokens (tunnel.CacheMode).
type cacheModeFlag struct {
	value string
	mode  tunnel.CacheMode
}

// Usages of --cache-mode.
const (
	cacheModeUsage = `where the k8s_proxy token is kept: "keyring" (the OS keyring, its metadata in a 0600 file; ` +
		`the file alone when no keyring answers), "file" (a 0600 file under the user's cache directory) or "none"`
	cacheModeListUsage = `which cache: "keyring" (every entry, secrets in the OS keyring or the file) or "file" (only the entries ` +
		`whose secret is in the file; the keyring is not asked)`
)

// add binds --cache-mode to cmd (persistent: for its subcommands too).
func (c *cacheModeFlag) add(cmd *cobra.Command, persistent bool, usage string) {
	fl := cmd.Flags()
	if persistent {
		fl = cmd.PersistentFlags()
	}
	fl.StringVar(&c.value, "cache-mode", string(tunnel.CacheKeyring), usage)
	_ = cmd.RegisterFlagCompletionFunc("cache-mode", cobra.FixedCompletions([]string{"keyring", "file", "none"}, cobra.ShellCompDirectiveNoFileComp))
}

// parse settles the mode.
func (c *cacheModeFlag) parse() (err error) {
	c.mode, err = tunnel.ParseCacheMode(c.value)
	return err
}

// forExecPlugin refuses none where get-token runs for every kubectl request
// (unless ci: the job token is never cached).
func (c *cacheModeFlag) forExecPlugin(ci bool) error {
	if err := c.parse(); err != nil || ci || c.mode != tunnel.CacheNone {
		return err
	}
	return fmt.Errorf("--cache-mode none: kubectl runs get-token for every request, and with nothing kept each run would create a k8s_proxy token " +
		"(GitLab mails you about every one): use keyring or file ('proxy --cache-mode none' keeps its token in memory and revokes it when it stops)")
}

// credentialOptions says how get-token and proxy get the agent credential:
// the job token in CI, else a cached k8s_proxy PAT minted with the user's
// GitLab credentials, with f's GitLab clients; the cache is mode's.
func credentialOptions(f Factory, g *GitLabFlags, agentID int64, ci bool, days int, mode tunnel.CacheMode, log io.Writer) (tunnel.CredentialOptions, error) {
	f, err := g.withRequestTimeout(f)
	if err != nil {
		return tunnel.CredentialOptions{}, err
	}
	o := tunnel.CredentialOptions{GitLabURL: g.ResolvedURL(), AgentID: agentID, CI: ci, Days: days, Log: log, GitLab: f.GitLab}
	if ci {
		return o, gitlab.JobTokenFor(o.GitLabURL)
	}
	creds, err := g.Credentials()
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
	if o.Cache, err = tunnel.NewCache(mode); err != nil {
		return o, err
	}
	o.Cache.Log = log
	return o, nil
}
