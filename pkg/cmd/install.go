package cmd

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/install"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/manifest"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/safetext"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/ui"
)

// InstallOptions installs an agent: the flags map onto install.Install's
// options, and its result is printed.
type InstallOptions struct {
	lifecycle
	NoConfig  bool
	Receptive receptiveFlags
}

// NewCmdInstall builds `install NAME`.
func NewCmdInstall(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &InstallOptions{lifecycle: newLifecycle(f, g, streams)}
	cmd := o.command(o, lifecycleFlags{gitlab: true, wait: true, dryRun: true, yes: true}, &cobra.Command{
		Use:   "install NAME",
		Short: "Register, configure, deploy and connect an agent, in one re-runnable command",
		Long: `Install the agent NAME:
  1. find KAS from GitLab's /metadata; agentk's version is KAS's release
     unless --agent-version says otherwise (a KAS version with +build or
     -ee is its release; a pre-release, -rcN or -pre, is not out yet, so the
     release before it certain to exist: the first of the minor version
     before, v19.6.0 for 19.7.0-rc42), said in one line ("agentk v19.6.0:
     the version of KAS at gitlab.example.com"); a KAS newer than chart
     ` + manifest.DefaultChartVersion + `'s agentk keeps that chart's layout, only the image moves; an
     agent config file KAS refuses (the removed gitops key, with KAS 18.0 or
     later) stops the install here, --no-config or not: move to Flux;
  2. find or register the agent in --project;
  3. merge ci_access and user_access (as the agent) for the project into
     .gitlab/agents/NAME/config.yaml, keeping the rest (--no-config skips);
  4. reuse the token the cluster's Secret holds while GitLab lists it as
     active, else create one (at GitLab's two-token limit, --yes revokes the
     least recently used);
  5. server-side apply the objects 'render NAME' prints: over the agent
     installed with the chart by Helm 3 or 4, this adopts the Helm release's
     objects rather than duplicating them (--dry-run says "adopting the Helm
     release NAME"), and takes over the fields Helm's field manager shares;
     Helm's record of the release stays;
  6. wait until the Deployment is available, and
  7. until agentk has connected to KAS with the token (--no-wait skips 6-7).
With --receptive-url the agent is receptive (GitLab Ultimate 17.4+,
self-managed): KAS dials it there. Install reuses the agent's URL
configuration for that URL or makes one (GitLab keeps one per agent: one
for another URL is refused unless --receptive-replace), and gives agentk
GitLab's public key (config.api.jwtPublicKey). Expose agentk's API (its
Service's port 8182, or the chart's ingress values) where KAS reaches it.
Re-running with the same inputs changes nothing and says "up to date".
--dry-run prints the version line, the plan and the diff. If a step after
creating a token fails, or the command is interrupted, that token is revoked
and the error says what stays.`,
		Example: `  kubectl gitlab-agent install prod-eu --project infra/agents
  kubectl gitlab-agent install prod-eu --project infra/agents --dry-run
  kubectl gitlab-agent install prod-eu -f values.yaml --set replicas=3 --v=1
  kubectl gitlab-agent install edge --project infra/agents --receptive-url grpcs://edge.example.com:8182 --receptive-ca-file ca.pem`,
	})
	cmd.Flags().BoolVar(&o.NoConfig, "no-config", false, "leave the agent's config file alone")
	o.Receptive.addFlags(cmd)
	return cmd
}

// Complete reads the inputs, the receptive agent's CA among them.
func (o *InstallOptions) Complete(cmd *cobra.Command, args []string) error {
	if err := o.lifecycle.Complete(cmd, args); err != nil {
		return err
	}
	return o.Receptive.complete(cmd.Context())
}

// Validate checks what Complete read.
func (o *InstallOptions) Validate() error {
	if err := o.lifecycle.Validate(); err != nil {
		return err
	}
	return o.Receptive.validate(o.opts.Input)
}

// Run installs and prints the outcome.
func (o *InstallOptions) Run(ctx context.Context) error {
	res, err := install.Install(ctx, o.env, install.InstallOptions{Options: o.opts, NoConfig: o.NoConfig, Receptive: o.Receptive.options()})
	return o.finish("install", err, installResult{res, o.opts.Name})
}

// installResult is what install prints.
type installResult struct {
	*install.InstallResult
	name string
}

// WriteText writes the plan of a dry run, else where the agent is and
// whether it is connected.
func (r installResult) WriteText(w io.Writer, p *ui.Painter) error {
	var err error
	switch {
	case r.Plan != nil:
		return writePlan(w, p, r.Plan)
	case r.UpToDate:
		_, err = fmt.Fprintf(w, "agent %q is up to date in namespace %s\n", r.name, r.Namespace)
	case r.Connected:
		_, err = fmt.Fprintf(w, "agent %q is installed in namespace %s and connected\n", r.name, r.Namespace)
	default:
		_, err = fmt.Fprintf(w, "agent %q is installed in namespace %s (not waited for)\n", r.name, r.Namespace)
	}
	if u := r.URLConfiguration; err == nil && u != nil {
		_, err = fmt.Fprintf(w, "it is receptive: KAS dials it at %s (URL configuration %d)\n", safetext.Line(u.URL), u.ID)
	}
	return err
}
