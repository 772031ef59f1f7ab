package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
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
		Long: `get-token caches the k8s_proxy personal access tokens it creates, one per
GitLab URL and credential: each token's metadata in a file (0600) under the
user's cache directory, its secret in the OS keyring (--cache-mode keyring,
the default) or in that file (file, or when no keyring answered).
'list' shows them (never their values) and where each secret is; 'clear'
removes them, keyring items included, and with --revoke revokes them in
GitLab too. With --cache-mode file only the entries whose secret is in the
file are listed or cleared, and no keyring is asked. none is refused: it
caches nothing.`,
		Example: `  kubectl gitlab-agent token-cache list
  kubectl gitlab-agent token-cache clear --revoke`,
	}
	mode := &cacheModeFlag{}
	mode.add(cmd, true, cacheModeListUsage)
	cmd.AddCommand(newCmdTokenCacheList(g, mode, streams), newCmdTokenCacheClear(f, mode, streams))
	return cmd
}

// tokenCache is what both token-cache commands read: -o and --cache-mode.
type tokenCache struct {
	outputOnly
	Mode *cacheModeFlag
}

// Validate checks -o and --cache-mode.
func (o *tokenCache) Validate() error {
	if err := o.outputOnly.Validate(); err != nil {
		return err
	}
	if err := o.Mode.parse(); err != nil {
		return err
	}
	if o.Mode.mode == tunnel.CacheNone {
		return fmt.Errorf("--cache-mode none caches nothing (a 'proxy --cache-mode none' keeps its token in its own memory and revokes it when it stops): give keyring or file")
	}
	return nil
}

// cache is the token cache and what it holds.
func (o *tokenCache) cache(log io.Writer) (*tunnel.Cache, []tunnel.CacheEntry, error) {
	c, err := tunnel.NewCache(o.Mode.mode)
	if err != nil {
		return nil, nil, err
	}
	c.Log = log
	entries, err := c.List()
	return c, entries, err
}

// TokenCacheListOptions lists the cached tokens, never their values.
type TokenCacheListOptions struct {
	tokenCache
	Global *GlobalOptions
	genericiooptions.IOStreams
}

func newCmdTokenCacheList(g *GlobalOptions, mode *cacheModeFlag, streams genericiooptions.IOStreams) *cobra.Command {
	o := &TokenCacheListOptions{tokenCache: tokenCache{outputOnly{newListOutputFlags("table", "json", "yaml")}, mode}, Global: g, IOStreams: streams}
	return o.command(o, &cobra.Command{
		Use:   "list",
		Short: "List the cached tokens (never their values)",
		Example: `  kubectl gitlab-agent token-cache list
  kubectl gitlab-agent token-cache list -o json`,
	})
}

// cachedToken is one cache entry as listed.
type cachedToken struct {
	Key       string    `json:"key"`
	GitLabURL string    `json:"gitlabURL"`
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	ExpiresAt time.Time `json:"expiresAt"`
	// Store is where its secret is: keyring or file.
	Store string `json:"store"`
}

// storeOf names where an entry's secret is.
func storeOf(p *tunnel.CachedPAT) string {
	if p.Store == tunnel.StoreKeyring {
		return "keyring"
	}
	return "file"
}

// Run lists the cache.
func (o *TokenCacheListOptions) Run(context.Context) error {
	c, entries, err := o.cache(o.ErrOut)
	if err != nil {
		return err
	}
	rows := []cachedToken{}
	for _, e := range entries {
		rows = append(rows, cachedToken{e.Key, e.PAT.GitLabURL, e.PAT.ID, e.PAT.Name, e.PAT.ExpiresAt, storeOf(e.PAT)})
	}
	if len(rows) == 0 && o.Output.Text() {
		fmt.Fprintf(o.ErrOut, "no cached tokens in %s\n", c.Dir)
		return nil
	}
	return o.Output.Print(o.Out, o.Global.NoColor, cachedTokenList{rows})
}

// cachedTokenList is what token-cache list prints.
type cachedTokenList struct {
	Tokens []cachedToken `json:"tokens"`
}

// Table is the tokens as a table; wide adds each one's cache entry.
func (l cachedTokenList) Table(wide bool) *ui.Table {
	t := &ui.Table{Headers: []string{"gitlab", "token id", "name", "expires", "secret in"}}
	if wide {
		t.Headers = append(t.Headers, "key")
	}
	for _, r := range l.Tokens {
		row := []ui.Cell{ui.C(r.GitLabURL), ui.C(strconv.FormatInt(r.ID, 10)), ui.C(r.Name), ui.C(r.ExpiresAt.UTC().Format(time.RFC3339)), ui.C(r.Store)}
		if wide {
			row = append(row, ui.C(r.Key))
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// Names are the cached personal access tokens as personalaccesstoken/ID.
func (l cachedTokenList) Names() []string {
	names := make([]string, len(l.Tokens))
	for i, t := range l.Tokens {
		names[i] = "personalaccesstoken/" + strconv.FormatInt(t.ID, 10)
	}
	return names
}

// ItemsField is the document's list of tokens.
func (cachedTokenList) ItemsField() string { return "tokens" }

// TokenCacheClearOptions empties the cache, revoking the tokens if asked.
type TokenCacheClearOptions struct {
	tokenCache
	Revoke  bool
	Factory Factory
	genericiooptions.IOStreams
}

func newCmdTokenCacheClear(f Factory, mode *cacheModeFlag, streams genericiooptions.IOStreams) *cobra.Command {
	o := &TokenCacheClearOptions{tokenCache: tokenCache{outputOnly{NewOutputFlags("text", "json", "yaml")}, mode}, Factory: f, IOStreams: streams}
	cmd := o.command(o, &cobra.Command{
		Use:   "clear",
		Short: "Remove the cached tokens; --revoke also revokes them in GitLab",
		Example: `  # Forget the tokens here; they stay valid in GitLab until they expire
  kubectl gitlab-agent token-cache clear

  # Revoke them in GitLab too (a laptop left behind)
  kubectl gitlab-agent token-cache clear --revoke`,
	})
	cmd.Flags().BoolVar(&o.Revoke, "revoke", false, "revoke each token in GitLab too (with the token itself)")
	return cmd
}

// Run clears the cache.
func (o *TokenCacheClearOptions) Run(ctx context.Context) error {
	c, entries, err := o.cache(o.ErrOut)
	if err != nil {
		return err
	}
	removed := []int64{}
	for _, e := range entries {
		if o.Revoke {
			tok, err := c.Secret(e.PAT)
			switch {
			case errors.Is(err, tunnel.ErrKeyringItemGone):
				// Nobody can use it from here, and nothing can revoke it
				// without a credential for its ID.
				fmt.Fprintf(o.ErrOut, "token %d: the OS keyring no longer holds its secret, so it was not revoked (it expires at %s)\n",
					e.PAT.ID, e.PAT.ExpiresAt.UTC().Format(time.RFC3339))
			case err != nil:
				return fmt.Errorf("reading the secret of token %d to revoke it: %w (nothing more was removed)", e.PAT.ID, err)
			default:
				// The token revokes itself: no other credential needed.
				gc, err := o.Factory.GitLab(gitlab.Options{URL: e.PAT.GitLabURL, Log: o.ErrOut,
					Credentials: gitlab.Credentials{Token: tok, Source: "the cached k8s_proxy token"}})
				if err != nil {
					return err
				}
				if err := gc.RevokeOwnPAT(ctx); err != nil {
					return err
				}
			}
		}
		if err := c.Remove(e.Key); err != nil {
			return err
		}
		removed = append(removed, e.PAT.ID)
	}
	return o.Output.Print(o.Out, true, cacheCleared{Removed: removed, Revoked: o.Revoke}) // never coloured
}

// cacheCleared is what token-cache clear prints: the IDs of the tokens
// removed, and whether they were revoked too.
type cacheCleared struct {
	Removed []int64 `json:"removed"`
	Revoked bool    `json:"revoked"`
}

// WriteText says how many tokens went.
func (c cacheCleared) WriteText(w io.Writer, _ *ui.Painter) error {
	verb := "removed"
	if c.Revoked {
		verb = "revoked and removed"
	}
	_, err := fmt.Fprintf(w, "%s %d cached tokens\n", verb, len(c.Removed))
	return err
}
