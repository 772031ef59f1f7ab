package cmd

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/install"
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
the CA, the headers), agentk's version and its token; any other value not given
is the chart's default. Objects of ours that the new layout no longer has are
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
	if done, err := o.finish("upgrade", err, func() any { return res }); done {
		return err
	}
	switch {
	case res.Plan != nil:
		return o.printPlan(res.Plan)
	case res.UpToDate:
		_, err = fmt.Fprintf(o.Out, "agent %q is up to date\n", o.opts.Name)
	case res.ObjectsChanged == 0:
		_, err = fmt.Fprintf(o.Out, "agent %q upgraded (%d objects removed that the layout no longer has)\n", o.opts.Name, len(res.Removed))
	default:
		_, err = fmt.Fprintf(o.Out, "agent %q upgraded (%d objects changed)\n", o.opts.Name, res.ObjectsChanged)
	}
	return err
}
