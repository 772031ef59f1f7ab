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
	return o.command(o, lifecycleFlags{wait: true, dryRun: true, askGitLab: true}, &cobra.Command{
		Use:   "upgrade NAME",
		Short: "Re-render the installed agent with a new agentk version or values, apply and wait",
		Long: `Re-render the installed agent with the given --agent-version, values or flags.
Without --agent-version (or image.tag), agentk moves to KAS's version: when a
GitLab credential is at hand (--gitlab-token-file, GITLAB_TOKEN, glab's), GitLab's
/metadata gives it, as install takes it (a pre-release of KAS gets the release
before it); when there is none, GitLab does not answer, or its KAS is not the
one the agent dials, the version the agent runs stays. The first line says
which and why ("agentk v19.6.0 (from v19.5.0): the version of KAS at
gitlab.example.com").
What else is not given stays as the agent runs now: how it reaches KAS (the
address, the CA, the headers), agentk's image, the replicas, the pods'
resources, security contexts and placement (nodeSelector, tolerations,
affinity, priority and runtime class), imagePullSecrets, hostAliases, its
token, and a receptive agent's mode and GitLab's key; any other value not given is the chart's default. Objects of ours that the new layout no
longer has are removed once the new ones serve (with --no-wait, once they are
applied); an upgrade that stopped before that removes them when run again.
Needs only the cluster; asks GitLab for KAS's version when a credential is at hand.
--dry-run prints the version line and the diff.`,
		Example: `  # agentk at KAS's version
  kubectl gitlab-agent upgrade prod-eu --dry-run
  kubectl gitlab-agent upgrade prod-eu --agent-version v17.4.0
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
