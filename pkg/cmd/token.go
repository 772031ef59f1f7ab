package cmd

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/install"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/secretfile"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/ui"
)

// NewCmdToken builds the `token` group.
func NewCmdToken(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "List, create and revoke agent tokens",
		Long: `The tokens agentk authenticates to KAS with. GitLab allows two active tokens per
agent, so that a new one can be rolled out before the old one is revoked.`,
		Example: `  kubectl gitlab-agent token list prod-eu --project infra/agents
  kubectl gitlab-agent token rotate prod-eu --project infra/agents`,
	}
	cmd.AddCommand(newCmdTokenList(f, g, streams), newCmdTokenCreate(f, g, streams), newCmdTokenRevoke(f, g, streams), newCmdTokenRotate(f, g, streams))
	return cmd
}

// tokenList is what token list prints.
type tokenList struct {
	Tokens []*gitlab.Token `json:"tokens"`
}

// Table is the tokens as a table; wide adds who made each, and when it
// was made and last used, to the second.
func (l tokenList) Table(wide bool) *ui.Table { return tokenTable(l.Tokens, wide) }

// Names are the tokens as token/ID.
func (l tokenList) Names() []string {
	names := make([]string, len(l.Tokens))
	for i, t := range l.Tokens {
		names[i] = "token/" + strconv.FormatInt(t.ID, 10)
	}
	return names
}

// ItemsField is the document's list of tokens.
func (tokenList) ItemsField() string { return "tokens" }

// tokenTable is tokens as a table, "never" used faint; wide adds who made
// each, and when it was made and last used, to the second.
func tokenTable(tokens []*gitlab.Token, wide bool) *ui.Table {
	t := &ui.Table{Headers: []string{"id", "name", "status", "age", "last used", "description"}}
	if wide {
		t.Headers = append(t.Headers, "created by", "created at", "last used at")
	}
	now := time.Now()
	for _, tok := range tokens {
		used := ui.C(ui.Ago(tok.LastUsedAt, now))
		if tok.LastUsedAt == nil {
			used.Style = ui.Faint
		}
		row := []ui.Cell{
			ui.C(strconv.FormatInt(tok.ID, 10)), ui.C(tok.Name), ui.S(tok.Status, ui.Good),
			ui.C(ui.Age(tok.CreatedAt, now)), used, ui.C(tok.Description),
		}
		if wide {
			row = append(row, ui.C(userID(tok.CreatedByUserID)), ui.C(timestamp(tok.CreatedAt)), ui.C(timestamp(tok.LastUsedAt)))
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// timestamp is t in RFC 3339, UTC, "<none>" for nil.
func timestamp(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "<none>"
	}
	return t.UTC().Format(time.RFC3339)
}

// tokenCreated is what token create prints; Value, the token itself, only
// with --show-token. A dry run prints the token it would create (ID 0)
// and the strategy.
type tokenCreated struct {
	Token  gitlab.Token   `json:"token"`
	Value  string         `json:"value,omitempty"`
	DryRun install.DryRun `json:"dryRun,omitempty"`
	agent  string
}

// WriteText writes the token's value alone (--show-token, for
// TOKEN=$(...)), else the token as a table of one row; a dry run says what
// it would create.
func (c tokenCreated) WriteText(w io.Writer, p *ui.Painter) error {
	if c.DryRun != install.DryRunNone {
		_, err := fmt.Fprintf(w, "token %q created for agent %q (dry run)\n", c.Token.Name, c.agent)
		return err
	}
	if c.Value != "" {
		_, err := fmt.Fprintln(w, c.Value)
		return err
	}
	t := tokenTable([]*gitlab.Token{&c.Token}, false)
	t.Color = p.Colors()
	return t.Write(w)
}

// tokenRevoked is what token revoke prints.
type tokenRevoked struct {
	Revoked revokedToken `json:"revoked"`
}

// revokedToken names a revoked token.
type revokedToken struct {
	Agent   string `json:"agent"`
	TokenID int64  `json:"tokenID"`
}

// WriteText says what was revoked.
func (r tokenRevoked) WriteText(w io.Writer, _ *ui.Painter) error {
	_, err := fmt.Fprintf(w, "revoked token %d of agent %q\n", r.Revoked.TokenID, r.Revoked.Agent)
	return err
}

// rotateResult is what token rotate prints.
type rotateResult struct {
	*install.RotateResult
	name string
}

// WriteText writes the plan of a dry run, else which token the agent runs
// with now.
func (r rotateResult) WriteText(w io.Writer, p *ui.Painter) error {
	if r.Plan != nil {
		return writePlan(w, p, r.Plan)
	}
	_, err := fmt.Fprintf(w, "agent %q now runs with token %d; token %d is revoked\n", r.name, r.NewTokenID, r.OldTokenID)
	return err
}

// TokenListOptions lists an agent's active tokens.
type TokenListOptions struct{ agentCommand }

func newCmdTokenList(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &TokenListOptions{}
	o.agentCommand = newAgentCommand(f, g, streams, o.list)
	o.Output = newListOutputFlags("table", "json", "yaml")
	return o.command(o, exactArgs(1, "AGENT"), &cobra.Command{
		Use:     "list AGENT",
		Aliases: []string{"ls"},
		Short:   "List an agent's active tokens with their last use",
		Example: `  kubectl gitlab-agent token list prod-eu --project infra/agents

  # The IDs of tokens never used
  kubectl gitlab-agent token list prod-eu -o json | jq '.tokens[] | select(.lastUsedAt == null) | .id'

  # Chosen columns, or every column there is
  kubectl gitlab-agent token list prod-eu -o custom-columns=ID:.id,NAME:.name,LAST:.lastUsedAt
  kubectl gitlab-agent token list prod-eu -o wide`,
	})
}

// list lists the tokens.
func (o *TokenListOptions) list(ctx context.Context, a *gitlab.Agent) error {
	tokens, err := o.client.ListTokensWithLastUse(ctx, o.project, a)
	if err != nil {
		return err
	}
	if len(tokens) == 0 && o.Output.Text() {
		fmt.Fprintf(o.ErrOut, "agent %q has no active tokens\n", a.Name)
		return nil
	}
	return o.print(tokenList{orEmpty(tokens)})
}

// TokenCreateOptions creates a token and keeps its one-time value safe.
type TokenCreateOptions struct {
	agentCommand
	Name        string
	Description string
	TokenFile   string
	Force       bool
	ShowToken   bool
	DryRun      dryRunFlag
}

func newCmdTokenCreate(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &TokenCreateOptions{}
	o.agentCommand = newAgentCommand(f, g, streams, o.create, "table", "json", "yaml")
	cmd := o.command(o, exactArgs(1, "AGENT"), &cobra.Command{
		Use:   "create AGENT --name NAME (--token-file FILE | --show-token)",
		Short: "Create an agent token, written to a 0600 file or shown once",
		Long: `Create a token for the agent. GitLab shows a token's value only once: it goes
to --token-file (created with mode 0600; an existing file is kept unless
--force) or, with --show-token, to stdout. At GitLab's limit of two active
tokens the command names both, with their last use, and how to revoke one.
--dry-run checks all this and creates nothing.`,
		Example: `  kubectl gitlab-agent token create prod-eu --name ci --token-file agent-token
  TOKEN=$(kubectl gitlab-agent token create prod-eu --name ci --show-token)
  kubectl gitlab-agent token create prod-eu --name ci --token-file agent-token --dry-run`,
	})
	fl := cmd.Flags()
	fl.StringVar(&o.Name, "name", "", "the token's name (required)")
	fl.StringVar(&o.Description, "description", "", "the token's description")
	fl.StringVar(&o.TokenFile, "token-file", "", "write the token to FILE, created with mode 0600")
	fl.BoolVar(&o.Force, "force", false, "overwrite --token-file if it exists")
	fl.BoolVar(&o.ShowToken, "show-token", false, "print the token on stdout")
	o.DryRun.addGitLab(cmd)
	return cmd
}

// Validate checks the input before anything is created.
func (o *TokenCreateOptions) Validate() error {
	if err := o.DryRun.parse(o.ErrOut); err != nil {
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
	return nil
}

// Run creates the token and stores it; if storing fails the token is revoked
// again so that no unknown token stays active.
func (o *TokenCreateOptions) create(ctx context.Context, a *gitlab.Agent) error {
	if o.DryRun.on() {
		return o.planned(ctx, a)
	}
	tok, err := o.client.CreateToken(ctx, o.project, a, o.Name, o.Description)
	if err != nil {
		return err
	}
	if o.TokenFile != "" {
		if err := secretfile.Write(o.TokenFile, []byte(tok.Secret+"\n")); err != nil {
			return o.client.RevokeCreated(ctx, o.project, a, tok, fmt.Errorf("writing the token to %s: %w", o.TokenFile, err))
		}
		fmt.Fprintf(o.ErrOut, "created token %d %q for agent %q; written to %s (mode 0600)\n", tok.ID, tok.Name, a.Name, o.TokenFile)
	} else {
		fmt.Fprintf(o.ErrOut, "created token %d %q for agent %q\n", tok.ID, tok.Name, a.Name)
	}
	res := tokenCreated{Token: tok.Token}
	if o.ShowToken {
		res.Value = tok.Secret
	}
	return o.print(res)
}

// planned prints the token create would make, after the check GitLab
// would make: the two-token limit.
func (o *TokenCreateOptions) planned(ctx context.Context, a *gitlab.Agent) error {
	tokens, err := o.client.ListTokensWithLastUse(ctx, o.project, a)
	if err != nil {
		return err
	}
	if len(tokens) >= gitlab.MaxActiveTokens {
		return &gitlab.TokenLimitError{Agent: a.Name, Tokens: tokens}
	}
	tok := gitlab.Token{AgentID: a.ID, Name: o.Name, Description: o.Description, Status: "active"}
	return o.print(tokenCreated{Token: tok, DryRun: o.DryRun.strategy, agent: a.Name})
}

// TokenRevokeOptions revokes a token.
type TokenRevokeOptions struct {
	agentCommand
	id int64
}

func newCmdTokenRevoke(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &TokenRevokeOptions{}
	o.agentCommand = newAgentCommand(f, g, streams, o.revoke, "text", "json", "yaml")
	return o.command(o, exactArgs(2, "AGENT and TOKEN_ID"), &cobra.Command{
		Use:   "revoke AGENT TOKEN_ID",
		Short: "Revoke an agent token (an agentk using it disconnects)",
		Example: `  # 'token list' shows the IDs
  kubectl gitlab-agent token list prod-eu --project infra/agents
  kubectl gitlab-agent token revoke prod-eu 1234 --project infra/agents`,
	})
}

// Complete reads the ID before anything else.
func (o *TokenRevokeOptions) Complete(cmd *cobra.Command, args []string) error {
	var err error
	if o.id, err = strconv.ParseInt(args[1], 10, 64); err != nil || o.id <= 0 {
		return fmt.Errorf("invalid TOKEN_ID %q: 'kubectl gitlab-agent token list %s' shows the IDs", args[1], args[0])
	}
	return o.agentCommand.Complete(cmd, args)
}

// revoke revokes the token.
func (o *TokenRevokeOptions) revoke(ctx context.Context, a *gitlab.Agent) error {
	if err := o.client.RevokeToken(ctx, o.project, a, o.id); err != nil {
		return err
	}
	return o.print(tokenRevoked{revokedToken{Agent: a.Name, TokenID: o.id}})
}

// TokenRotateOptions replaces an installed agent's token, or with --all
// the tokens of every agent of the project installed in the cluster
// (token_rotate_all.go).
type TokenRotateOptions struct {
	lifecycle
	All       bool
	OlderThan string
	olderThan time.Duration
	// namespace is -n when given: where --all looks for the agents.
	namespace string
}

// newCmdTokenRotate builds `token rotate NAME`.
func newCmdTokenRotate(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &TokenRotateOptions{lifecycle: newLifecycle(f, g, streams)}
	cmd := o.command(o, lifecycleFlags{gitlab: true, wait: true, dryRun: true, yes: true}, &cobra.Command{
		Use:   "rotate (NAME | --all [--older-than AGE])",
		Short: "Replace the installed agent's token with no downtime",
		Long: `Create a token, put it in the agent's Secret, roll the Deployment (its pods
carry the token's checksum; the rolling update never drops below the desired
replicas), wait until agentk is connected with the new token, then revoke the
old one. If the rollout or the connection fails, the Secret is put back, the
old token stays active and the new one is revoked; if the Secret cannot be put
back either, both tokens stay active (agentk may hold either) and the error
says so. At GitLab's two-token limit --yes revokes the token that is not in use
first. --dry-run prints the plan: the token it would create, the diff of the
Secret and Deployment, the token it would revoke.

A rotation changes the token only: agentk's version and the chart layout stay
as the agent runs unless --agent-version or --chart-version is given (it never
upgrades as a side effect; that is 'upgrade'), and so do how it reaches KAS and
the values upgrade keeps (the replicas, agentk's image, the pods' resources and
placement). Other values are rendered from the flags given, else the chart's
defaults, as upgrade renders them: give the -f and --set the agent was
installed with, or check with --dry-run.

--all rotates, one after the other, every agent of --project installed in
the current cluster (in -n's namespace when given) whose token is older than
--older-than (days as 90d, or a duration as 36h; without it, every token):
one line per agent and a summary; the exit code is 1 if any rotation failed.
An agent not installed in this cluster is listed as skipped: its token can
be rotated only where the agent runs. --dry-run lists what it would rotate
and why (the token's age). The values flags apply to every agent.`,
		Example: `  kubectl gitlab-agent token rotate prod-eu --project infra/agents

  # What it would do, the cluster checking the new Secret and Deployment
  kubectl gitlab-agent token rotate prod-eu --project infra/agents --dry-run=server

  # Every agent of the project running here with a token over 90 days old
  kubectl gitlab-agent token rotate --all --older-than 90d --project infra/agents --dry-run
  kubectl gitlab-agent token rotate --all --older-than 90d --project infra/agents`,
	})
	cmd.Args = rotateArgs
	cmd.Flags().BoolVar(&o.All, "all", false, "rotate every agent of the project installed in this cluster (not with NAME)")
	cmd.Flags().StringVar(&o.OlderThan, "older-than", "", "with --all, only the agents whose token is older: days (90d) or a duration (36h)")
	return cmd
}

// Run rotates and prints the outcome.
func (o *TokenRotateOptions) Run(ctx context.Context) error {
	if o.All {
		return o.rotateAll(ctx)
	}
	res, err := install.Rotate(ctx, o.env, o.opts)
	return o.finish("rotation", err, rotateResult{res, o.opts.Name})
}
