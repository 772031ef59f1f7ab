package cmd

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/secretfile"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/ui"
)

// NewCmdToken builds the `token` group.
func NewCmdToken(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "List, create and revoke agent tokens",
		Long: `The tokens agentk authenticates to KAS with. GitLab allows two active tokens per
agent, so that a new one can be rolled out before the old one is revoked.`,
	}
	cmd.AddCommand(newCmdTokenList(g, streams), newCmdTokenCreate(g, streams), newCmdTokenRevoke(g, streams), newCmdTokenRotate(g, streams))
	return cmd
}

func (c *gitlabCommand) printTokens(tokens []*gitlab.Token) error {
	switch c.format {
	case "json":
		return ui.PrintJSON(c.Out, map[string]any{"tokens": tokens})
	case "yaml":
		return ui.PrintYAML(c.Out, map[string]any{"tokens": tokens})
	}
	t := &ui.Table{Headers: []string{"id", "name", "status", "age", "last used", "description"}, Color: c.color()}
	now := time.Now()
	for _, tok := range tokens {
		used := ui.C(ui.Ago(tok.LastUsedAt, now))
		if tok.LastUsedAt == nil {
			used.Style = ui.Faint
		}
		t.Rows = append(t.Rows, []ui.Cell{
			ui.C(strconv.FormatInt(tok.ID, 10)), ui.C(tok.Name), ui.S(tok.Status, ui.Good),
			ui.C(ui.Age(tok.CreatedAt, now)), used, ui.C(tok.Description),
		})
	}
	return t.Write(c.Out)
}

// TokenListOptions lists an agent's active tokens.
type TokenListOptions struct{ gitlabCommand }

func newCmdTokenList(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &TokenListOptions{gitlabCommand: gitlabCommand{Global: g, IOStreams: streams}}
	return &cobra.Command{
		Use:     "list AGENT",
		Aliases: []string{"ls"},
		Short:   "List an agent's active tokens with their last use",
		Args:    exactArgs(1, "AGENT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := o.findAgent(cmd.Context(), args[0], "table", "json", "yaml")
			if err != nil {
				return err
			}
			tokens, err := o.client.ListTokensWithLastUse(cmd.Context(), o.project, a)
			if err != nil {
				return err
			}
			if len(tokens) == 0 && o.format == "table" {
				fmt.Fprintf(o.ErrOut, "agent %q has no active tokens\n", a.Name)
				return nil
			}
			return o.printTokens(tokens)
		},
	}
}

// TokenCreateOptions creates a token and keeps its one-time value safe.
type TokenCreateOptions struct {
	gitlabCommand
	ref         gitlab.AgentRef
	Name        string
	Description string
	TokenFile   string
	Force       bool
	ShowToken   bool
}

func newCmdTokenCreate(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &TokenCreateOptions{gitlabCommand: gitlabCommand{Global: g, IOStreams: streams}}
	cmd := &cobra.Command{
		Use:   "create AGENT --name NAME (--token-file FILE | --show-token)",
		Short: "Create an agent token, written to a 0600 file or shown once",
		Long: `Create a token for the agent. GitLab shows a token's value only once: it goes
to --token-file (created with mode 0600; an existing file is kept unless
--force) or, with --show-token, to stdout. At GitLab's limit of two active
tokens the command names both, with their last use, and how to revoke one.`,
		Example: `  kubectl gitlab-agent token create prod-eu --name ci --token-file agent-token
  TOKEN=$(kubectl gitlab-agent token create prod-eu --name ci --show-token)`,
		Args: exactArgs(1, "AGENT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(args); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Name, "name", "", "the token's name (required)")
	f.StringVar(&o.Description, "description", "", "the token's description")
	f.StringVar(&o.TokenFile, "token-file", "", "write the token to FILE, created with mode 0600")
	f.BoolVar(&o.Force, "force", false, "overwrite --token-file if it exists")
	f.BoolVar(&o.ShowToken, "show-token", false, "print the token on stdout")
	return cmd
}

// Complete checks the input before anything is created.
func (o *TokenCreateOptions) Complete(args []string) error {
	var err error
	if o.ref, err = gitlab.ParseAgentRef(args[0]); err != nil {
		return err
	}
	if o.Name == "" {
		return fmt.Errorf("--name is required: name the token after where it is used (e.g. the cluster)")
	}
	if o.TokenFile == "" && !o.ShowToken {
		return fmt.Errorf("GitLab shows a token only once: pass --token-file FILE to save it, or --show-token to print it")
	}
	if o.TokenFile != "" && !o.Force {
		if _, err := os.Lstat(o.TokenFile); err == nil {
			return fmt.Errorf("%s exists: pass --force to overwrite it", o.TokenFile)
		}
	}
	return o.complete("table", "json", "yaml")
}

// Run creates the token and stores it; if storing fails the token is revoked
// again so that no unknown token stays active.
func (o *TokenCreateOptions) Run(ctx context.Context) error {
	a, err := o.client.FindAgent(ctx, o.project, o.ref)
	if err != nil {
		return err
	}
	tok, err := o.client.CreateToken(ctx, o.project, a, o.Name, o.Description)
	if err != nil {
		return err
	}
	if o.TokenFile != "" {
		if err := secretfile.Write(o.TokenFile, []byte(tok.Secret+"\n")); err != nil {
			return o.undo(a, tok, fmt.Errorf("writing the token to %s: %w", o.TokenFile, err))
		}
		fmt.Fprintf(o.ErrOut, "created token %d %q for agent %q; written to %s (mode 0600)\n", tok.ID, tok.Name, a.Name, o.TokenFile)
	} else {
		fmt.Fprintf(o.ErrOut, "created token %d %q for agent %q\n", tok.ID, tok.Name, a.Name)
	}
	doc := map[string]any{"token": tok.Token}
	if o.ShowToken {
		doc["value"] = tok.Secret
	}
	switch {
	case o.format == "json":
		return ui.PrintJSON(o.Out, doc)
	case o.format == "yaml":
		return ui.PrintYAML(o.Out, doc)
	case o.ShowToken:
		_, err := fmt.Fprintln(o.Out, tok.Secret)
		return err
	}
	return o.printTokens([]*gitlab.Token{&tok.Token})
}

// undo revokes a token created by a command that then failed, even when the
// command was interrupted.
func (o *TokenCreateOptions) undo(a *gitlab.Agent, tok *gitlab.NewToken, cause error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := o.client.RevokeToken(ctx, o.project, a, tok.ID); err != nil {
		return fmt.Errorf("%w; revoking the new token %d failed too (%v): revoke it with 'kubectl gitlab-agent token revoke %s %d'", cause, tok.ID, err, a.Name, tok.ID)
	}
	return fmt.Errorf("%w; the new token %d was revoked again", cause, tok.ID)
}

// TokenRevokeOptions revokes a token.
type TokenRevokeOptions struct {
	gitlabCommand
	id int64
}

func newCmdTokenRevoke(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &TokenRevokeOptions{gitlabCommand: gitlabCommand{Global: g, IOStreams: streams}}
	return &cobra.Command{
		Use:   "revoke AGENT TOKEN_ID",
		Short: "Revoke an agent token (an agentk using it disconnects)",
		Args:  exactArgs(2, "AGENT and TOKEN_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if o.id, err = strconv.ParseInt(args[1], 10, 64); err != nil || o.id <= 0 {
				return fmt.Errorf("invalid TOKEN_ID %q: 'kubectl gitlab-agent token list %s' shows the IDs", args[1], args[0])
			}
			a, err := o.findAgent(cmd.Context(), args[0], "table")
			if err != nil {
				return err
			}
			if err := o.client.RevokeToken(cmd.Context(), o.project, a, o.id); err != nil {
				return err
			}
			_, err = fmt.Fprintf(o.Out, "revoked token %d of agent %q\n", o.id, a.Name)
			return err
		},
	}
}
