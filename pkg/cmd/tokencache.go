package cmd

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/tunnel"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/ui"
)

// NewCmdTokenCache builds `token-cache list|clear`.
func NewCmdTokenCache(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token-cache",
		Short: "List or clear the cached k8s_proxy personal access tokens",
	}
	cmd.AddCommand(newCmdTokenCacheList(g, streams), newCmdTokenCacheClear(f, streams))
	return cmd
}

// TokenCacheListOptions lists the cached tokens, never their values.
type TokenCacheListOptions struct {
	outputOnly
	Global *GlobalOptions
	genericiooptions.IOStreams
}

func newCmdTokenCacheList(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &TokenCacheListOptions{outputOnly: outputOnly{NewOutputFlags("table", "json", "yaml")}, Global: g, IOStreams: streams}
	return o.command(o, &cobra.Command{Use: "list", Short: "List the cached tokens (never their values)"})
}

// cachedToken is one cache entry as listed.
type cachedToken struct {
	Key       string    `json:"key"`
	GitLabURL string    `json:"gitlabURL"`
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// Run lists the cache.
func (o *TokenCacheListOptions) Run(context.Context) error {
	c, entries, err := cachedTokens()
	if err != nil {
		return err
	}
	rows := []cachedToken{}
	for _, e := range entries {
		rows = append(rows, cachedToken{e.Key, e.PAT.GitLabURL, e.PAT.ID, e.PAT.Name, e.PAT.ExpiresAt})
	}
	if done, err := o.Output.PrintDocument(o.Out, map[string]any{"tokens": rows}); done {
		return err
	}
	if len(rows) == 0 {
		fmt.Fprintf(o.ErrOut, "no cached tokens in %s\n", c.Dir)
		return nil
	}
	t := &ui.Table{Headers: []string{"gitlab", "token id", "name", "expires"}, Color: ui.ColorEnabled(o.Out, o.Global.NoColor)}
	for _, r := range rows {
		t.Rows = append(t.Rows, []ui.Cell{ui.C(r.GitLabURL), ui.C(strconv.FormatInt(r.ID, 10)), ui.C(r.Name), ui.C(r.ExpiresAt.UTC().Format(time.RFC3339))})
	}
	return t.Write(o.Out)
}

// TokenCacheClearOptions empties the cache, revoking the tokens if asked.
type TokenCacheClearOptions struct {
	outputOnly
	Revoke  bool
	Factory Factory
	genericiooptions.IOStreams
}

func newCmdTokenCacheClear(f Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &TokenCacheClearOptions{outputOnly: outputOnly{NewOutputFlags("text", "json", "yaml")}, Factory: f, IOStreams: streams}
	cmd := o.command(o, &cobra.Command{Use: "clear", Short: "Remove the cached tokens; --revoke also revokes them in GitLab"})
	cmd.Flags().BoolVar(&o.Revoke, "revoke", false, "revoke each token in GitLab too (with the token itself)")
	return cmd
}

// Run clears the cache.
func (o *TokenCacheClearOptions) Run(ctx context.Context) error {
	c, entries, err := cachedTokens()
	if err != nil {
		return err
	}
	removed := []int64{}
	for _, e := range entries {
		if o.Revoke {
			// The token revokes itself: no other credential needed.
			gc, err := o.Factory.GitLab(gitlab.Options{URL: e.PAT.GitLabURL, Log: o.ErrOut,
				Credentials: gitlab.Credentials{Token: e.PAT.Token, Source: "the cached k8s_proxy token"}})
			if err != nil {
				return err
			}
			if err := gc.RevokeOwnPAT(ctx); err != nil {
				return err
			}
		}
		if err := c.Remove(e.Key); err != nil {
			return err
		}
		removed = append(removed, e.PAT.ID)
	}
	if done, err := o.Output.PrintDocument(o.Out, map[string]any{"removed": removed, "revoked": o.Revoke}); done {
		return err
	}
	verb := "removed"
	if o.Revoke {
		verb = "revoked and removed"
	}
	_, err = fmt.Fprintf(o.Out, "%s %d cached tokens\n", verb, len(entries))
	return err
}

// cachedTokens is the token cache and what it holds.
func cachedTokens() (*tunnel.Cache, []tunnel.CacheEntry, error) {
	c, err := tunnel.DefaultCache()
	if err != nil {
		return nil, nil, err
	}
	entries, err := c.List()
	return c, entries, err
}
