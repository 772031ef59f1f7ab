package cmd

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/install"
)

// dryRunFlag is kubectl's --dry-run: none, client or server, and a bare
// --dry-run is client (kubectl's flag has a NoOptDefVal too).
type dryRunFlag struct {
	value string
	// gitlabOnly: the command changes only GitLab, which has no dry run of
	// its own, so server is refused.
	gitlabOnly bool
	strategy   install.DryRun
}

// Usages of --dry-run, for the commands that change the cluster.
const (
	dryRunPlanUsage      = `"none", "client" or "server" (a bare --dry-run is client). client: print the plan and the diff of the cluster's objects, and change nothing; server: the same, with every object sent to the cluster as a server-side dry run (admission, webhooks and RBAC check it). GitLab is never changed: it has no dry run`
	dryRunUninstallUsage = `"none", "client" or "server" (a bare --dry-run is client). client: print what would be deleted or revoked, and change nothing; server: the same, with each deletion sent to the cluster as a server-side dry run (admission, webhooks and RBAC check it). GitLab is never changed: it has no dry run`
)

// add binds --dry-run to a command that changes the cluster (and maybe
// GitLab).
func (d *dryRunFlag) add(cmd *cobra.Command, usage string) {
	d.bind(cmd, usage, "none", "client", "server")
}

// addGitLab binds --dry-run to a command that changes only GitLab.
func (d *dryRunFlag) addGitLab(cmd *cobra.Command) {
	d.gitlabOnly = true
	d.bind(cmd, `"none" or "client" (a bare --dry-run is client): print what would be done in GitLab, and change nothing. "server" is refused: GitLab has no dry run of its own`, "none", "client")
}

func (d *dryRunFlag) bind(cmd *cobra.Command, usage string, values ...string) {
	fl := cmd.Flags()
	fl.StringVar(&d.value, "dry-run", "none", usage)
	fl.Lookup("dry-run").NoOptDefVal = string(install.DryRunClient)
	_ = cmd.RegisterFlagCompletionFunc("dry-run", cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
}

// parse settles the strategy, as kubectl's GetDryRunStrategy does: true and
// false, from when --dry-run was a boolean, still work, with a warning on
// errOut.
func (d *dryRunFlag) parse(errOut io.Writer) error {
	switch d.value {
	case "", "none":
		d.strategy = install.DryRunNone
	case "client":
		d.strategy = install.DryRunClient
	case "server":
		if d.gitlabOnly {
			return fmt.Errorf("--dry-run=server: GitLab has no server-side dry run; use --dry-run=client to see what would be done")
		}
		d.strategy = install.DryRunServer
	case "true":
		fmt.Fprintln(errOut, "warning: --dry-run=true is deprecated: use --dry-run=client")
		d.strategy = install.DryRunClient
	case "false":
		fmt.Fprintln(errOut, "warning: --dry-run=false is deprecated: use --dry-run=none")
		d.strategy = install.DryRunNone
	default:
		allowed := `"none", "client" or "server"`
		if d.gitlabOnly {
			allowed = `"none" or "client"`
		}
		return fmt.Errorf("invalid --dry-run value %q: use %s", d.value, allowed)
	}
	return nil
}

// on says whether this is a dry run.
func (d *dryRunFlag) on() bool { return d.strategy != install.DryRunNone }
