package cmd

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/install"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/ui"
)

// UpgradeOptions re-renders and applies an installed agent.
type UpgradeOptions struct{ lifecycle }

// NewCmdUpgrade builds `upgrade NAME`.
func NewCmdUpgrade(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &UpgradeOptions{newLifecycle(f, g, streams)}
	return o.command(o, lifecycleFlags{wait: true, dryRun: true}, &cobra.Command{
		Use:   "upgrade NAME",
		Short: "Re-render the installed agent with a new agentk version or values, apply and wait",
		Long: `Re-render the installed agent with the given --agent-version, values or flags;
what is not given stays as the agent runs now: how it reaches KAS (the address,
the CA, the headers), agentk's version and its token, and a receptive agent's
mode and GitLab's key; any other value not given is the chart's default. Objects of ours that the new layout no longer has are
removed once the new ones serve (with --no-wait, once they are applied); an
upgrade that stopped before that removes them when run again. Needs only the
cluster, no GitLab access. --dry-run prints the diff.`,
		Example: `  kubectl gitlab-agent upgrade prod-eu --agent-version v17.4.0
  kubectl gitlab-agent upgrade prod-eu --set replicas=3 --dry-run`,
	})
}

// Run upgrades and prints the outcome.
func (o *UpgradeOptions) Run(ctx context.Context) error {
	res, err := install.Upgrade(ctx, o.env, o.opts)
	return o.finish("upgrade", err, upgradeResult{res, o.opts.Name})
}

// upgradeResult is what upgrade prints.
type upgradeResult struct {
	*install.UpgradeResult
	name string
}

// WriteText writes the plan of a dry run, else what changed.
func (r upgradeResult) WriteText(w io.Writer, p *ui.Painter) error {
	var err error
	switch {
	case r.Plan != nil:
		return writePlan(w, p, r.Plan)
	case r.UpToDate:
		_, err = fmt.Fprintf(w, "agent %q is up to date\n", r.name)
	case r.ObjectsChanged == 0:
		_, err = fmt.Fprintf(w, "agent %q upgraded (%d objects removed that the layout no longer has)\n", r.name, len(r.Removed))
	default:
		_, err = fmt.Fprintf(w, "agent %q upgraded (%d objects changed)\n", r.name, r.ObjectsChanged)
	}
	return err
}
