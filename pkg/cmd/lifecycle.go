package cmd

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/install"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/safetext"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/ui"
)

// lifecycle is what install, upgrade, uninstall and token rotate share: the
// agent's render input, the GitLab project, and the cluster.
type lifecycle struct {
	Global  *GlobalOptions
	Render  RenderFlags
	Timeout time.Duration
	NoWait  bool
	DryRun  bool
	Yes     bool

	opts install.Options
	env  install.Env
	genericiooptions.IOStreams
}

func (l *lifecycle) addFlags(cmd *cobra.Command, wait, dryRun, yes bool) {
	l.Render.AddFlags(cmd, "f")
	f := cmd.Flags()
	if wait {
		f.DurationVar(&l.Timeout, "timeout", 5*time.Minute, "how long to wait for the rollout and the agent's connection")
		f.BoolVar(&l.NoWait, "no-wait", false, "do not wait for the rollout and the connection")
	}
	if dryRun {
		f.BoolVar(&l.DryRun, "dry-run", false, "print the plan and the diff of the cluster's objects; change nothing")
	}
	if yes {
		f.BoolVarP(&l.Yes, "yes", "y", false, "do not ask; allow revoking a token at GitLab's two-token limit")
	}
}

// complete reads the inputs; needGitLab says whether GitLab is required
// (upgrade works from the cluster alone).
func (l *lifecycle) complete(cmd *cobra.Command, name string, needGitLab bool) error {
	if l.Render.TokenFile != "" {
		return fmt.Errorf("--token-file is for render: %s manages the agent's token itself", cmd.Name())
	}
	if l.Timeout <= 0 && !l.NoWait && cmd.Flags().Lookup("timeout") != nil {
		return fmt.Errorf("--timeout must be positive")
	}
	ns := ""
	if cmd.Flags().Changed("namespace") && l.Global.ConfigFlags.Namespace != nil {
		ns = *l.Global.ConfigFlags.Namespace
	}
	in, err := l.Render.Input(cmd.Context(), name, ns, l.In)
	if err != nil {
		return err
	}
	l.opts = install.Options{
		Name: name, Input: in,
		KasAddressSet:   l.Render.isSet("kas-address") || in.Values.Config.KasAddress != defaultKASAddress(),
		AgentVersionSet: l.Render.isSet("agent-version") || in.Values.Image.Tag != "",
		Yes:             l.Yes, DryRun: l.DryRun, NoWait: l.NoWait, Timeout: l.Timeout, Out: l.Out,
	}
	l.env = install.Env{Log: l.ErrOut, Verbose: l.Global.Verbose, NoColor: l.Global.NoColor}
	if needGitLab {
		if l.opts.Project, err = l.Global.ProjectRef(l.ErrOut); err != nil {
			return err
		}
		if l.env.GitLab, err = l.Global.GitLabClient(l.ErrOut); err != nil {
			return err
		}
	}
	l.env.Kube, err = kube.NewClient(l.Global.ConfigFlags)
	return err
}

// defaultKASAddress is the chart's default, which install replaces with the
// address GitLab reports unless the user chose one.
func defaultKASAddress() string { return "wss://kas.gitlab.com" }

// printTotal ends the -v phase timings with the whole command's time.
func printTotal(l *lifecycle, what string, start time.Time) {
	if l.Global.Verbose < 1 {
		return
	}
	fmt.Fprintf(l.ErrOut, "%s took %s in all\n", what, time.Since(start).Round(time.Millisecond))
}

// NewCmdInstall builds `install NAME`.
func NewCmdInstall(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	l := &lifecycle{Global: g, IOStreams: streams}
	var noConfig bool
	cmd := &cobra.Command{
		Use:   "install NAME",
		Short: "Register, configure, deploy and connect an agent, in one re-runnable command",
		Long: `Install the agent NAME:
  1. find KAS from GitLab's /metadata (agentk's version defaults to KAS's);
  2. find or register the agent in --project;
  3. merge ci_access and user_access (as the agent) for the project into
     .gitlab/agents/NAME/config.yaml, keeping the rest (--no-config skips);
  4. reuse the token the cluster's Secret holds while GitLab lists it as
     active, else create one (at GitLab's two-token limit, --yes revokes the
     least recently used);
  5. server-side apply the objects 'render NAME' prints (adopting a Helm chart
     install's objects rather than duplicating them);
  6. wait until the Deployment is available, and
  7. until agentk has connected to KAS with the token (--no-wait skips 6-7).
Re-running with the same inputs changes nothing and says "up to date".
--dry-run prints the plan and the diff. If a step after creating a token
fails, or the command is interrupted, that token is revoked and the error
says what stays.`,
		Example: `  kubectl gitlab-agent install prod-eu --project infra/agents
  kubectl gitlab-agent install prod-eu --project infra/agents --dry-run
  kubectl gitlab-agent install prod-eu -f values.yaml --set replicas=3 --v=1`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := l.complete(cmd, args[0], true); err != nil {
				return err
			}
			start := time.Now()
			res, err := install.Install(cmd.Context(), l.env, install.InstallOptions{Options: l.opts, NoConfig: noConfig})
			printTotal(l, "install", start)
			if err != nil || l.DryRun {
				return err
			}
			switch {
			case res.UpToDate:
				fmt.Fprintf(l.Out, "agent %q is up to date in namespace %s\n", args[0], l.opts.Input.Namespace)
			case res.Connected:
				fmt.Fprintf(l.Out, "agent %q is installed in namespace %s and connected\n", args[0], l.opts.Input.Namespace)
			default:
				fmt.Fprintf(l.Out, "agent %q is installed in namespace %s (not waited for)\n", args[0], l.opts.Input.Namespace)
			}
			return nil
		},
	}
	l.addFlags(cmd, true, true, true)
	cmd.Flags().BoolVar(&noConfig, "no-config", false, "leave the agent's config file alone")
	return cmd
}

// NewCmdUpgrade builds `upgrade NAME`.
func NewCmdUpgrade(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	l := &lifecycle{Global: g, IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "upgrade NAME",
		Short: "Re-render the installed agent with a new agentk version or values, apply and wait",
		Long: `Re-render the installed agent with the given --agent-version, values or flags;
what is not given stays as the agent runs now (its KAS address, agentk version
and token). Needs only the cluster, no GitLab access. --dry-run prints the diff.`,
		Example: `  kubectl gitlab-agent upgrade prod-eu --agent-version v17.4.0
  kubectl gitlab-agent upgrade prod-eu --set replicas=3 --dry-run`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := l.complete(cmd, args[0], false); err != nil {
				return err
			}
			start := time.Now()
			res, err := install.Upgrade(cmd.Context(), l.env, l.opts)
			printTotal(l, "upgrade", start)
			if err != nil || l.DryRun {
				return err
			}
			if res.UpToDate {
				fmt.Fprintf(l.Out, "agent %q is up to date\n", args[0])
				return nil
			}
			fmt.Fprintf(l.Out, "agent %q upgraded (%d objects changed)\n", args[0], res.ObjectsChanged)
			return nil
		},
	}
	l.addFlags(cmd, true, true, false)
	return cmd
}

// NewCmdUninstall builds `uninstall NAME`.
func NewCmdUninstall(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	l := &lifecycle{Global: g, IOStreams: streams}
	var revoke, deleteAgent bool
	cmd := &cobra.Command{
		Use:   "uninstall NAME",
		Short: "Delete the agent's objects from the cluster; optionally revoke its tokens or delete it in GitLab",
		Long: `Delete every object of the install (found by its labels; the Namespace last, if
the install created it) and wait until they are gone. --revoke-tokens revokes
the agent's tokens and --delete-agent deletes its registration in GitLab.
Asks for confirmation on a terminal; elsewhere it needs --yes.`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := l.complete(cmd, args[0], revoke || deleteAgent); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), l.Timeout)
			defer cancel()
			_, err := install.Uninstall(ctx, l.env, install.UninstallOptions{
				Options: l.opts, RevokeTokens: revoke, DeleteAgent: deleteAgent,
				Confirm: func(q string) (bool, error) { return ui.Confirm(ctx, l.In, l.ErrOut, q) },
			})
			return err
		},
	}
	l.addFlags(cmd, false, false, true)
	cmd.Flags().DurationVar(&l.Timeout, "timeout", 5*time.Minute, "how long to wait for the objects to be gone")
	cmd.Flags().BoolVar(&revoke, "revoke-tokens", false, "also revoke the agent's tokens in GitLab")
	cmd.Flags().BoolVar(&deleteAgent, "delete-agent", false, "also delete the agent's registration in GitLab")
	return cmd
}

// newCmdTokenRotate builds `token rotate NAME`.
func newCmdTokenRotate(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	l := &lifecycle{Global: g, IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "rotate NAME",
		Short: "Replace the installed agent's token with no downtime",
		Long: `Create a token, put it in the agent's Secret, roll the Deployment (its pods
carry the token's checksum; the rolling update never drops below the desired
replicas), wait until agentk is connected with the new token, then revoke the
old one. If the rollout or the connection fails, the Secret is put back, the
old token stays active and the new one is revoked. At GitLab's two-token limit
--yes revokes the token that is not in use first.`,
		Example: `  kubectl gitlab-agent token rotate prod-eu --project infra/agents`,
		Args:    exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := l.complete(cmd, args[0], true); err != nil {
				return err
			}
			start := time.Now()
			res, err := install.Rotate(cmd.Context(), l.env, l.opts)
			printTotal(l, "rotation", start)
			if err != nil {
				return err
			}
			fmt.Fprintf(l.Out, "agent %q now runs with token %d; token %d is revoked\n", args[0], res.NewTokenID, res.OldTokenID)
			return nil
		},
	}
	l.addFlags(cmd, true, false, true)
	return cmd
}

// NewCmdStatus builds `status [NAME]`.
func NewCmdStatus(g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	c := &gitlabCommand{Global: g, IOStreams: streams}
	return &cobra.Command{
		Use:   "status [NAME]",
		Short: "Show an agent's registration, tokens, KAS, in-cluster state and whether it is connected",
		Long: `One screen per agent (every agent of the project without NAME): its
registration, its tokens and their last use, KAS's address and version, the
agent's Deployment in the current cluster with agentk's version and its skew
from KAS, and a verdict: connected, installed-but-not-connected or not
installed.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, a := range args {
				if err := gitlab.ValidateAgentName(a); err != nil {
					return err
				}
			}
			if err := c.complete("table", "json", "yaml"); err != nil {
				return err
			}
			env := install.Env{GitLab: c.client, Log: c.ErrOut}
			k, err := kube.NewClient(g.ConfigFlags)
			if err == nil {
				env.Kube = k
			} else {
				fmt.Fprintf(c.ErrOut, "warning: no cluster to look at (%v)\n", err)
			}
			st, err := install.Status(cmd.Context(), env, c.project, args)
			if err != nil {
				return err
			}
			switch c.format {
			case "json":
				return ui.PrintJSON(c.Out, map[string]any{"agents": st})
			case "yaml":
				return ui.PrintYAML(c.Out, map[string]any{"agents": st})
			}
			return printStatus(c, st)
		},
	}
}

func printStatus(c *gitlabCommand, st []*install.AgentStatus) error {
	color := c.color()
	now := time.Now()
	verdictStyle := map[string]ui.Style{install.Connected: ui.Good, install.NotConnected: ui.Warn, install.NotInstalled: ui.Faint}
	var b strings.Builder
	for i, s := range st {
		if i > 0 {
			b.WriteString("\n")
		}
		// Values come from GitLab and the cluster: printed inert.
		row := func(k, v string) { fmt.Fprintf(&b, "%-10s %s\n", k, safetext.Line(v)) }
		row("Agent", fmt.Sprintf("%s (id %d) in %s", s.Agent.Name, s.Agent.ID, s.Agent.ConfigProject))
		row("KAS", fmt.Sprintf("%s, version %s (Kubernetes API proxy %s)", s.KAS.AgentURL, s.KAS.Version, s.KAS.ProxyURL))
		if len(s.Tokens) == 0 {
			row("Tokens", "none active")
		}
		for j, t := range s.Tokens {
			k := ""
			if j == 0 {
				k = "Tokens"
			}
			row(k, fmt.Sprintf("%s %q, created %s ago, last used %s", strconv.FormatInt(t.ID, 10), t.Name, ui.Age(t.CreatedAt, now), ui.Ago(t.LastUsedAt, now)))
		}
		if cs := s.Cluster; cs != nil {
			row("Cluster", fmt.Sprintf("Deployment %s/%s: %d/%d ready, agentk %s", cs.Namespace, cs.Deployment, cs.Ready, cs.Desired, cs.Version))
		} else {
			row("Cluster", "not found in the current cluster")
		}
		verdict := s.Verdict
		if color {
			verdict = (&ui.Table{}).Paint(verdict, verdictStyle[s.Verdict])
		}
		fmt.Fprintf(&b, "%-10s %s\n", "Verdict", verdict) // our own word, maybe coloured
		for _, w := range s.Warnings {
			row("Warning", w)
		}
	}
	_, err := fmt.Fprint(c.Out, b.String())
	return err
}
