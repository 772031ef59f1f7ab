package cmd

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitops"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/install"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/safetext"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/ui"
)

// BootstrapOptions installs an agent that Flux manages from its GitLab
// project.
type BootstrapOptions struct {
	lifecycle
	ManifestPath  string
	Branch        string
	MergeRequest  bool
	FluxNamespace string
	Environment   string
	NoEnvironment bool

	path string // ManifestPath, validated
}

// NewCmdBootstrap builds `bootstrap NAME`.
func NewCmdBootstrap(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &BootstrapOptions{lifecycle: newLifecycle(f, g, streams)}
	cmd := o.command(o, lifecycleFlags{gitlab: true, wait: true, dryRun: true, yes: true}, &cobra.Command{
		Use:   "bootstrap NAME",
		Short: "Install the agent the GitOps way: its objects committed to its GitLab project, applied by Flux",
		Long: `Install the agent NAME so that Flux manages it from its GitLab project:
  1. check that Flux is in the cluster (its GitRepository and Kustomization
     CRDs); bootstrap does not install Flux: 'flux install' or
     'flux bootstrap gitlab' does;
  2. as install does: find KAS (agentk's version follows it unless
     --agent-version says otherwise), find or register the agent, reuse or
     create its token;
  3. put the token into Secret gitlab-agent-NAME/NAME-gitlab-agent-token,
     made in the cluster directly: the token never goes to git;
  4. commit, in one commit, the agent's other objects as readable YAML
     under <--manifest-path>/gitlab-agent/ (one file per object and a
     kustomization.yaml), and the project's access in the agent's config
     file; a run with nothing new makes no commit; --merge-request commits
     to branch gitlab-agent/NAME and opens (or updates) a merge request,
     then stops: run bootstrap again after the merge;
  5. reuse the GitRepository that fetches the project's branch (as
     'flux bootstrap gitlab' makes one), or make one with a deploy token
     that may only read the repository (it expires after a year; a run in
     the last 30 days replaces it); then use the Kustomization that already
     builds the manifest path (flux-system for clusters/NAME), or make
     Kustomization gitlab-agent-NAME (prune, wait);
  6. ask Flux to reconcile now, and wait until it applied the commit, the
     Deployment is available and agentk connected to KAS;
  7. create or update the environment agents/NAME (--environment) with the
     agent, its namespace and its Kustomization, so that GitLab's dashboard
     for Kubernetes shows the Flux sync, and print the .gitlab-ci.yml
     snippet for jobs that deploy through the agent.
Run it again with new values or --agent-version to upgrade: it commits the
new files and waits for Flux. --dry-run prints the commit (a diff per file),
the Flux objects and the environment, and changes nothing. If a step after
creating a token fails, or the command is interrupted, the tokens it made are
revoked and the error says what stays.`,
		Example: `  kubectl gitlab-agent bootstrap prod-eu --project infra/fleet --manifest-path clusters/prod-eu --dry-run
  kubectl gitlab-agent bootstrap prod-eu --project infra/fleet --manifest-path clusters/prod-eu
  kubectl gitlab-agent bootstrap prod-eu --project infra/fleet --merge-request --agent-version v19.6.0`,
	})
	fl := cmd.Flags()
	fl.StringVar(&o.ManifestPath, "manifest-path", "", "the repository directory whose gitlab-agent/ subdirectory holds the agent's files (default clusters/NAME)")
	fl.StringVar(&o.Branch, "branch", "", "the branch Flux follows and the files go to (default: the project's default branch)")
	fl.BoolVar(&o.MergeRequest, "merge-request", false, "commit to branch gitlab-agent/NAME and open a merge request, instead of committing to --branch")
	fl.StringVar(&o.FluxNamespace, "flux-namespace", "flux-system", "the namespace of the Flux objects bootstrap makes")
	fl.StringVar(&o.Environment, "environment", "", "the GitLab environment that shows the agent on GitLab's dashboard for Kubernetes (default agents/NAME)")
	fl.BoolVar(&o.NoEnvironment, "no-environment", false, "make no GitLab environment")
	if t := fl.Lookup("timeout"); t != nil {
		t.Usage = "how long to wait for Flux, the rollout and the agent's connection"
		t.DefValue = "10m0s"
		o.Timeout = 10 * time.Minute
	}
	return cmd
}

// Complete reads the inputs; the manifest path defaults to clusters/NAME.
func (o *BootstrapOptions) Complete(cmd *cobra.Command, args []string) error {
	if o.ManifestPath == "" {
		o.ManifestPath = "clusters/" + args[0]
	}
	if o.Environment == "" && !o.NoEnvironment {
		o.Environment = "agents/" + args[0]
	}
	// The path is the user's own input: refused before anything is
	// read or resolved.
	var err error
	if o.path, err = gitops.ValidatePath(o.ManifestPath); err != nil {
		return fmt.Errorf("--manifest-path: %w", err)
	}
	if err := o.lifecycle.Complete(cmd, args); err != nil {
		return err
	}
	return o.withFlux()
}

// Validate checks the paths and names.
func (o *BootstrapOptions) Validate() error {
	if err := o.lifecycle.Validate(); err != nil {
		return err
	}
	if o.NoEnvironment && o.Environment != "" && o.Environment != "agents/"+o.opts.Name {
		return fmt.Errorf("--environment and --no-environment: give one")
	}
	if o.Branch != "" && !validBranch(o.Branch) {
		return fmt.Errorf("--branch %q is not a branch name git accepts", o.Branch)
	}
	if o.FluxNamespace == "" || len(o.FluxNamespace) > 63 || strings.Trim(o.FluxNamespace, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" ||
		strings.HasPrefix(o.FluxNamespace, "-") || strings.HasSuffix(o.FluxNamespace, "-") {
		return fmt.Errorf("--flux-namespace %q is not a namespace name (lowercase letters, digits, '-')", o.FluxNamespace)
	}
	if o.NoWait {
		return fmt.Errorf("bootstrap waits for Flux to apply the agent: --no-wait is not for bootstrap (--timeout bounds the wait)")
	}
	return nil
}

// validBranch is git's check-ref-format for a branch, in short.
func validBranch(b string) bool {
	if b == "" || strings.HasPrefix(b, "-") || strings.HasPrefix(b, "/") || strings.HasSuffix(b, "/") ||
		strings.HasSuffix(b, ".lock") || strings.HasSuffix(b, ".") || strings.Contains(b, "..") ||
		strings.Contains(b, "//") || strings.Contains(b, "@{") || b == "@" {
		return false
	}
	for _, r := range b {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(" ~^:?*[\\", r) {
			return false
		}
	}
	return true
}

// Run bootstraps and prints the outcome.
func (o *BootstrapOptions) Run(ctx context.Context) error {
	env := ""
	if !o.NoEnvironment {
		env = o.Environment
	}
	res, err := install.Bootstrap(ctx, o.env, install.BootstrapOptions{
		Options: o.opts, ManifestPath: o.path, Branch: o.Branch, MergeRequest: o.MergeRequest,
		FluxNamespace: o.FluxNamespace, Environment: env,
	})
	return o.finish("bootstrap", err, bootstrapResult{res, o.opts.Name})
}

// bootstrapResult is what bootstrap prints.
type bootstrapResult struct {
	*install.BootstrapResult
	name string
}

// WriteText writes a dry run's plan and file diffs, else what was done,
// then the CI snippet.
func (r bootstrapResult) WriteText(w io.Writer, p *ui.Painter) error {
	var b bytes.Buffer
	line := func(format string, a ...any) { b.WriteString(safetext.Line(fmt.Sprintf(format, a...)) + "\n") }
	if r.DryRun != install.DryRunNone {
		if r.Agentk != nil {
			line("%s", r.Agentk.Line())
		}
		if len(r.Plan) == 0 {
			line("nothing to do")
		}
		for _, s := range r.Plan {
			line("would %s", s)
		}
		for _, f := range r.Files {
			line("%s %s", f.Action, f.Path)
		}
		if _, err := w.Write(b.Bytes()); err != nil {
			return err
		}
		return writeFileHunks(w, p, r.Files)
	}
	switch {
	case r.StoppedForMerge && r.MergeRequest == nil:
		line("nothing to commit for agent %q: %s already holds its files as they would be; no merge request opened", r.name, r.Project)
	case r.MergeRequest != nil:
		line("merge request for agent %q: %s", r.name, r.MergeRequest.WebURL)
		line("after the merge, run 'kubectl gitlab-agent bootstrap %s' (without --merge-request) to create the Flux objects and wait for the agent", r.name)
	case r.UpToDate:
		line("agent %q is up to date: Flux applies %s with Kustomization %s, and the agent is connected", r.name, r.Revision, r.Kustomization)
	default:
		line("agent %q is managed by Flux (Kustomization %s, %s), running in namespace %s and connected", r.name, r.Kustomization, r.Revision, r.Namespace)
	}
	for _, wn := range r.Warnings {
		line("warning: %s", wn)
	}
	if r.CI != "" && !r.StoppedForMerge {
		b.WriteString("\nFor jobs that deploy through the agent, in .gitlab-ci.yml:\n\n")
		b.WriteString(safetext.Text(r.CI))
	}
	_, err := w.Write(b.Bytes())
	return err
}

// writeFileHunks writes each changed file's unified diff.
func writeFileHunks(w io.Writer, p *ui.Painter, files []install.FileChange) error {
	var b bytes.Buffer
	for _, f := range files {
		if len(f.Hunks) == 0 {
			continue
		}
		from, to := "a/"+f.Path, "b/"+f.Path
		switch f.Action {
		case "create":
			from = "/dev/null"
		case "delete":
			to = "/dev/null"
		}
		b.WriteString(p.Paint("--- "+safetext.Line(from), ui.Bold) + "\n" + p.Paint("+++ "+safetext.Line(to), ui.Bold) + "\n")
		for _, h := range f.Hunks {
			b.WriteString(p.Paint(fmt.Sprintf("@@ -%d,%d +%d,%d @@", h.OldStart, h.OldLines, h.NewStart, h.NewLines), ui.Accent) + "\n")
			for _, l := range h.Lines {
				text := safetext.Line(l.Text)
				switch l.Op {
				case '-':
					b.WriteString(p.Paint("-"+text, ui.Bad) + "\n")
				case '+':
					b.WriteString(p.Paint("+"+text, ui.Good) + "\n")
				default:
					b.WriteString(" " + text + "\n")
				}
			}
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}
