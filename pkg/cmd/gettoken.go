package cmd

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/tunnel"
)

// GetTokenOptions is the exec credential plugin kubeconfig configures.
type GetTokenOptions struct {
	Factory Factory
	GitLab  GitLabFlags
	AgentID int64
	CI      bool
	Days    int
	Cache   cacheModeFlag

	creds tunnel.CredentialOptions
	genericiooptions.IOStreams
}

// NewCmdGetToken builds `get-token`, the exec credential plugin.
func NewCmdGetToken(f Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &GetTokenOptions{Factory: f, IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "get-token --agent-id ID",
		Short: "Print an ExecCredential for KAS's Kubernetes proxy (kubectl runs this)",
		Long: `The exec credential plugin that 'kubeconfig' configures. It prints a
client.authentication.k8s.io/v1 ExecCredential whose token is
pat:<agent ID>:<k8s_proxy personal access token>, or with --ci
ci:<agent ID>:<CI_JOB_TOKEN>.

The personal access token is created once (it expires after --token-expiry
days, at 00:00 UTC) and cached per GitLab URL and credential; parallel calls
create one token. kubectl is told it expires five minutes early. A cached
token GitLab refuses is replaced.

--cache-mode says where the token is kept. keyring (the default): in the OS
keyring (the Secret Service on Linux, the Keychain on macOS, the Credential
Manager on Windows), with its metadata (ID, expiry, GitLab URL, no secret) and
the lock in a 0600 file under the user's cache directory. Each keyring call
waits at most 3 s; when no keyring answers, the token goes in that file
instead, which is said once, and later calls read it there without asking a
keyring. file: the token in that file, no keyring asked. none is refused:
kubectl runs get-token for every request, and each run would create a token
(and a mail from GitLab). With --ci nothing is cached.`,
		Example: `  # What kubectl runs for a context that 'kubeconfig' wrote (agent ID 42)
  kubectl gitlab-agent get-token --agent-id 42 --gitlab-url https://gitlab.example.com

  # In a CI job, with the job's token
  kubectl gitlab-agent get-token --agent-id 42 --ci`,
		Args: cobra.NoArgs,
		RunE: runOptions(o),
	}
	o.GitLab.AddFlags(cmd, false)
	fl := cmd.Flags()
	fl.Int64Var(&o.AgentID, "agent-id", 0, "the agent's numeric ID")
	fl.BoolVar(&o.CI, "ci", false, "use the job's CI_JOB_TOKEN")
	fl.IntVar(&o.Days, "token-expiry", 1, "lifetime of a new personal access token in whole days")
	o.Cache.add(cmd, false, cacheModeUsage+` (refused here: kubectl runs get-token for every request)`)
	return cmd
}

// Complete finds the credentials and the cache.
func (o *GetTokenOptions) Complete(*cobra.Command, []string) (err error) {
	if err := o.Cache.forExecPlugin(o.CI); err != nil {
		return err
	}
	o.creds, err = credentialOptions(o.Factory, &o.GitLab, o.AgentID, o.CI, o.Days, o.Cache.mode, o.ErrOut)
	return err
}

// Validate checks the agent ID.
func (o *GetTokenOptions) Validate() error {
	if o.AgentID <= 0 {
		return fmt.Errorf("--agent-id is required (the numeric ID 'kubectl gitlab-agent agent list' shows)")
	}
	return validDays(o.Days)
}

// validDays checks --token-expiry: whole days, at most GitLab's default
// limit on a token's lifetime.
func validDays(days int) error {
	if days < 1 || days > 365 {
		return fmt.Errorf("--token-expiry %d: give 1 to 365 days", days)
	}
	return nil
}

// Run prints the ExecCredential.
func (o *GetTokenOptions) Run(ctx context.Context) error {
	c, err := tunnel.GetCredential(ctx, o.creds)
	if err != nil {
		return err
	}
	b, err := tunnel.ExecCredential(c)
	if err != nil {
		return err
	}
	_, err = o.Out.Write(b)
	return err
}
