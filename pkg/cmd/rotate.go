package cmd

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/install"
)

// TokenRotateOptions replaces an installed agent's token.
type TokenRotateOptions struct{ lifecycle }

// newCmdTokenRotate builds `token rotate NAME`.
func newCmdTokenRotate(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &TokenRotateOptions{newLifecycle(f, g, streams)}
	return o.command(o, lifecycleFlags{gitlab: true, wait: true, yes: true}, &cobra.Command{
		Use:   "rotate NAME",
		Short: "Replace the installed agent's token with no downtime",
		Long: `Create a token, put it in the agent's Secret, roll the Deployment (its pods
carry the token's checksum; the rolling update never drops below the desired
replicas), wait until agentk is connected with the new token, then revoke the
old one. If the rollout or the connection fails, the Secret is put back, the
old token stays active and the new one is revoked. At GitLab's two-token limit
--yes revokes the token that is not in use first.`,
		Example: `  kubectl gitlab-agent token rotate prod-eu --project infra/agents`,
	})
}

// Complete checks the flags, reads the input and connects to GitLab and the
// cluster.
func (o *TokenRotateOptions) Complete(cmd *cobra.Command, args []string) error {
	return o.complete(cmd, args[0], true)
}

// Run rotates and prints the outcome.
func (o *TokenRotateOptions) Run(ctx context.Context) error {
	start := time.Now()
	res, err := install.Rotate(ctx, o.env, o.opts)
	if done, err := o.finish("rotation", start, err, func() any { return res }); done {
		return err
	}
	_, err = fmt.Fprintf(o.Out, "agent %q now runs with token %d; token %d is revoked\n", o.opts.Name, res.NewTokenID, res.OldTokenID)
	return err
}
