package cmd

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/install"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/safetext"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/ui"
)

// UninstallOptions removes an agent from the cluster, and from GitLab when
// asked.
type UninstallOptions struct {
	lifecycle
	RevokeTokens bool
	DeleteAgent  bool
}

// NewCmdUninstall builds `uninstall NAME`.
func NewCmdUninstall(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &UninstallOptions{lifecycle: newLifecycle(f, g, streams)}
	cmd := o.command(o, lifecycleFlags{gitlab: true, namingOnly: true}, &cobra.Command{
		Use:   "uninstall NAME",
		Short: "Delete the agent's objects from the cluster; optionally revoke its tokens or delete it in GitLab",
		Long: `Delete every object of the install (found by its labels; the Namespace last, if
the install created it) and wait until they are gone. --revoke-tokens revokes
the agent's tokens and --delete-agent deletes its registration in GitLab
(a receptive agent's URL configuration first).
Asks for confirmation on a terminal; elsewhere it needs --yes. --dry-run
lists what would go and asks nothing.

Of the values, only those that name the install's objects matter (-f and
--set, for nameOverride); -n is the namespace it was installed in.`,
		Example: `  # Remove the agent from the current cluster; its registration stays in GitLab
  kubectl gitlab-agent uninstall prod-eu

  # Remove it everywhere, without asking (a CI job)
  kubectl gitlab-agent uninstall prod-eu --project infra/agents --revoke-tokens --delete-agent --yes

  # What would go, each deletion checked by the cluster
  kubectl gitlab-agent uninstall prod-eu --project infra/agents --revoke-tokens --dry-run=server

  # An install in a namespace of its own choosing
  kubectl gitlab-agent uninstall prod-eu -n gitlab-agent`,
	})
	o.DryRun.add(cmd, dryRunUninstallUsage)
	cmd.Flags().BoolVarP(&o.Yes, "yes", "y", false, "delete without asking for confirmation (needed when stdin is not a terminal)")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 5*time.Minute, "how long to wait for the objects to be gone")
	cmd.Flags().BoolVar(&o.RevokeTokens, "revoke-tokens", false, "also revoke the agent's tokens in GitLab")
	cmd.Flags().BoolVar(&o.DeleteAgent, "delete-agent", false, "also delete the agent's registration in GitLab")
	return cmd
}

// Complete checks the flags, reads the input and connects; GitLab only for
// --revoke-tokens and --delete-agent.
func (o *UninstallOptions) Complete(cmd *cobra.Command, args []string) error {
	need := o.RevokeTokens || o.DeleteAgent
	if err := o.complete(cmd, args[0], need); err != nil {
		return err
	}
	// A bootstrapped agent is taken out of Flux first.
	if err := o.withFlux(); err != nil {
		return err
	}
	if !need {
		// A bootstrapped agent's files are removed by a commit: GitLab
		// is asked when a credential is at hand.
		var err error
		o.env.GitLab, err = o.optionalGitLab()
		return err
	}
	return nil
}

// Run uninstalls and prints what went.
func (o *UninstallOptions) Run(ctx context.Context) error {
	res, err := install.Uninstall(ctx, o.env, install.UninstallOptions{
		Options: o.opts, RevokeTokens: o.RevokeTokens, DeleteAgent: o.DeleteAgent,
		Confirm: func(q string) (bool, error) { return ui.Confirm(ctx, o.In, o.ErrOut, q) },
	})
	if res != nil {
		res.Deleted = orEmpty(res.Deleted) // nothing to delete: [], not null
	}
	return o.finish("uninstall", err, uninstallResult{res, o.opts.Name})
}

// uninstallResult is what uninstall prints.
type uninstallResult struct {
	*install.UninstallResult
	name string
}

// WriteText says what went; nothing when nothing did (the progress report
// said so). A dry run lists what would go.
func (r uninstallResult) WriteText(w io.Writer, _ *ui.Painter) error {
	if r.DryRun != install.DryRunNone {
		return r.writePlan(w)
	}
	if len(r.Deleted) == 0 && !r.AgentDeleted && len(r.RevokedTokens) == 0 && len(r.DeletedURLConfigurations) == 0 && r.Bootstrap == nil {
		return nil
	}
	var parts []string
	if b := r.Bootstrap; b != nil {
		if b.Commit != nil {
			parts = append(parts, fmt.Sprintf("its %d files removed from %s (%s)", len(b.Removed), safetext.Line(b.Project), safetext.Line(b.Commit.ShortID)))
		}
		if len(b.Flux) > 0 {
			parts = append(parts, "Flux's "+safetext.Line(strings.Join(b.Flux, ", ")))
		}
		if len(b.RevokedDeployTokens) > 0 {
			parts = append(parts, "its deploy token revoked")
		}
	}
	if len(r.Deleted) > 0 {
		parts = append(parts, fmt.Sprintf("%d objects deleted", len(r.Deleted)))
	}
	if len(r.RevokedTokens) > 0 {
		parts = append(parts, fmt.Sprintf("%d tokens revoked", len(r.RevokedTokens)))
	}
	if len(r.DeletedURLConfigurations) > 0 {
		parts = append(parts, "its URL configuration deleted")
	}
	if r.AgentDeleted {
		parts = append(parts, "its registration deleted")
	}
	_, err := fmt.Fprintf(w, "agent %q uninstalled: %s\n", r.name, strings.Join(parts, ", "))
	return err
}

// writePlan lists what a dry run would remove, as writePlan does for
// install's: kubectl delete --dry-run's "(dry run)" and "(server dry run)".
func (r uninstallResult) writePlan(w io.Writer) error {
	var b strings.Builder
	checked := ""
	if r.DryRun == install.DryRunServer {
		checked = " (server dry run)"
	}
	for _, p := range r.Plan {
		fmt.Fprintf(&b, "GitLab: would %s\n", safetext.Line(p))
	}
	if r.Bootstrap != nil {
		for _, f := range r.Bootstrap.Flux {
			fmt.Fprintf(&b, "Cluster: would delete %s (Flux prunes what it applied)\n", safetext.Line(f))
		}
	}
	for _, d := range r.Deleted {
		fmt.Fprintf(&b, "Cluster: would delete %s%s\n", safetext.Line(d), checked)
	}
	if len(r.Deleted) == 0 {
		b.WriteString("Cluster: nothing to delete\n")
	}
	for _, id := range r.RevokedTokens {
		fmt.Fprintf(&b, "GitLab: would revoke token %d of agent %q\n", id, r.name)
	}
	for _, id := range r.DeletedURLConfigurations {
		fmt.Fprintf(&b, "GitLab: would delete URL configuration %d of agent %q\n", id, r.name)
	}
	if r.AgentDeleted {
		fmt.Fprintf(&b, "GitLab: would delete agent %q\n", r.name)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
