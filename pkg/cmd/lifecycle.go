package cmd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/diff"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/install"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/manifest"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/safetext"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/ui"
)

// lifecycle is what install, upgrade, uninstall and token rotate share: the
// agent's render input, the cluster, GitLab where the command uses it, and
// how to wait and confirm. Each command binds the flags it honours.
type lifecycle struct {
	Factory Factory
	Global  *GlobalOptions
	Render  RenderFlags
	Kube    *genericclioptions.ConfigFlags
	GitLab  GitLabFlags
	Output  *OutputFlags
	Timeout time.Duration
	NoWait  bool
	DryRun  dryRunFlag
	Yes     bool
	Verbose int

	opts   install.Options
	env    install.Env
	report *progressReport
	which  lifecycleFlags
	start  time.Time // when Complete was done: the -v total's start
	genericiooptions.IOStreams
}

// lifecycleFlags says which of the shared flags a command takes.
type lifecycleFlags struct {
	gitlab, wait, dryRun, yes bool
	// askGitLab takes the GitLab flags but --project: GitLab is asked when
	// a credential is at hand, and the command goes on without it when
	// none is (upgrade asks for KAS's version).
	askGitLab bool
	// namingOnly takes, of the render flags, only those that change which
	// objects are the install's (uninstall).
	namingOnly bool
}

func newLifecycle(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams) lifecycle {
	return lifecycle{Factory: f, Global: g, Output: NewOutputFlags("text", "json", "yaml"), IOStreams: streams}
}

func (l *lifecycle) addFlags(cmd *cobra.Command, which lifecycleFlags) {
	if which.namingOnly {
		l.Render.addNamingFlags(cmd)
	} else {
		l.Render.AddFlags(cmd, "f")
	}
	l.Output.AddFlags(cmd)
	l.Kube = newKubeFlags(cmd)
	if which.gitlab || which.askGitLab {
		l.GitLab.AddFlags(cmd, which.gitlab)
	}
	f := cmd.Flags()
	if which.wait {
		f.DurationVar(&l.Timeout, "timeout", 5*time.Minute, "how long to wait for the rollout and the agent's connection")
		f.BoolVar(&l.NoWait, "no-wait", false, "do not wait for the rollout and the connection")
	}
	if which.dryRun {
		l.DryRun.add(cmd, dryRunPlanUsage)
	}
	if which.yes {
		f.BoolVarP(&l.Yes, "yes", "y", false, "do not ask; allow revoking a token at GitLab's two-token limit")
	}
	f.IntVarP(&l.Verbose, "v", "v", 0, "log verbosity: 1 prints how long each step took")
}

// addNamingFlags binds, of the render flags, those that can change which
// objects are the install's: values files and --set (nameOverride names
// them in its labels). The chart version and the plain flags keep their
// defaults.
func (f *RenderFlags) addNamingFlags(cmd *cobra.Command) {
	fl := cmd.Flags()
	f.changed = fl.Changed
	f.ChartVersion, f.CreateNamespace = manifest.DefaultChartVersion, true // as AddFlags leaves them
	fl.StringArrayVarP(&f.ValuesFiles, "values", "f", nil, "a values file the agent was installed with; its nameOverride names the objects (repeatable)")
	fl.StringArrayVar(&f.Sets, "set", nil, "a chart value the agent was installed with, key=value; nameOverride names the objects (repeatable)")
}

// command finishes cmd as the lifecycle command of the agent NAME that o
// runs, taking the shared flags which names.
func (l *lifecycle) command(o options, which lifecycleFlags, cmd *cobra.Command) *cobra.Command {
	l.which = which
	l.addFlags(cmd, which)
	if which.gitlab {
		cmd.ValidArgsFunction = agentNames(l.Factory, &l.GitLab)
	}
	return leaf(o, exactArgs(1, "NAME"), cmd)
}

// Complete reads the input and connects, to GitLab too when the command
// takes its flags.
func (l *lifecycle) Complete(cmd *cobra.Command, args []string) error {
	return l.complete(cmd, args[0], l.which.gitlab)
}

// Validate checks the inputs Complete read.
func (l *lifecycle) Validate() error {
	if l.Timeout <= 0 && !l.NoWait {
		return fmt.Errorf("--timeout must be positive")
	}
	return nil
}

// complete reads the inputs and connects; needGitLab says whether GitLab is
// used (upgrade works from the cluster alone). Flags that make no sense
// fail before any file is read.
func (l *lifecycle) complete(cmd *cobra.Command, name string, needGitLab bool) error {
	if l.Render.TokenFile != "" {
		return fmt.Errorf("--token-file is for render: %s manages the agent's token itself", cmd.Name())
	}
	if err := l.Output.Validate(); err != nil {
		return err
	}
	if err := l.DryRun.parse(l.ErrOut); err != nil {
		return err
	}
	in, err := l.Render.Input(cmd.Context(), l.Factory, name, namespaceFlag(cmd, l.Kube), l.In)
	if err != nil {
		return err
	}
	l.opts = install.Options{Name: name, Input: in, Yes: l.Yes, DryRun: l.DryRun.strategy, NoWait: l.NoWait, Timeout: l.Timeout}
	l.report = &progressReport{w: l.ErrOut, noColor: l.Global.NoColor, verbose: l.Verbose}
	l.env = install.Env{Report: l.report}
	if needGitLab {
		if l.opts.Project, err = l.GitLab.ProjectRef(l.ErrOut); err != nil {
			return err
		}
		if l.env.GitLab, err = l.GitLab.Client(l.Factory, l.ErrOut); err != nil {
			return err
		}
	}
	if l.which.askGitLab {
		if l.env.GitLab, err = l.optionalGitLab(); err != nil {
			return err
		}
	}
	l.env.Cluster, err = l.Factory.Cluster(l.Kube)
	l.start = time.Now()
	return err
}

// withFlux gives the action a client of the cluster's Flux objects (the
// actions that drive Flux: bootstrap, and uninstall of a bootstrapped
// agent); the others need none.
func (l *lifecycle) withFlux() error {
	var err error
	l.env.Flux, err = l.Factory.Flux(l.Kube)
	return err
}

// optionalGitLab is the GitLab client when a credential is at hand; nil
// when there is none (a credential that cannot be read is an error).
func (l *lifecycle) optionalGitLab() (*gitlab.Client, error) {
	c, err := l.GitLab.Client(l.Factory, l.ErrOut)
	var none *gitlab.NoCredentialsError
	if errors.As(err, &none) {
		return nil, nil
	}
	return c, err
}

// explain adds the flags that would get past an action's refusal.
func (l *lifecycle) explain(err error) error {
	l.report.End()
	var ce *install.ConfirmationError
	if errors.As(err, &ce) {
		return fmt.Errorf("%w; or pass --yes to %s", ce.Err, ce.Would)
	}
	var cfe *install.ConfigFileError
	if errors.As(err, &cfe) {
		return fmt.Errorf("%w (fix the file, or pass --no-config)", err)
	}
	var rce *install.ReceptiveConflictError
	if errors.As(err, &rce) {
		return fmt.Errorf("%w; or pass --receptive-replace to replace it (GitLab makes a new key pair; agentk's pods roll)", err)
	}
	return explainValue(err)
}

// explainValue names the flag that gives a value an action could not carry
// over from the running agent (install.ValueNeededError); diff NAME meets
// it too.
func explainValue(err error) error {
	var vne *install.ValueNeededError
	if errors.As(err, &vne) {
		return fmt.Errorf("%w: give agentk %s with --set-file %s=FILE", vne.Err, vne.What, vne.Key)
	}
	return err
}

// finish ends Run's action: the -v total (since Complete), then the refusal
// explained, or the result printed in the -o format.
func (l *lifecycle) finish(what string, err error, result any) error {
	if l.Verbose >= 1 {
		fmt.Fprintf(l.ErrOut, "%s took %s in all\n", what, time.Since(l.start).Round(time.Millisecond))
	}
	if err != nil {
		return l.explain(err)
	}
	return l.Output.Print(l.Out, l.Global.NoColor, result)
}

// writePlan writes a dry run's plan: agentk's version and why, the GitLab
// changes, then the diff.
func writePlan(w io.Writer, p *ui.Painter, plan *install.Plan) error {
	var b bytes.Buffer
	if plan.Agentk != nil {
		b.WriteString(safetext.Line(plan.Agentk.Line()) + "\n")
	}
	if len(plan.GitLab) == 0 {
		b.WriteString("GitLab: nothing to do\n")
	}
	for _, s := range plan.GitLab {
		b.WriteString("GitLab: would " + safetext.Line(s) + "\n")
	}
	if plan.HelmRelease != nil {
		b.WriteString("Cluster: " + safetext.Line(plan.HelmRelease.String()) + "\n")
	}
	cluster := diff.JSON(plan.Cluster)
	label := "Cluster: "
	if plan.Server {
		label = "Cluster (server dry run): "
	}
	fmt.Fprintln(&b, label+planLine(cluster))
	for _, r := range plan.Remove {
		fmt.Fprintln(&b, "Cluster: would remove "+safetext.Line(r)+" after the rollout (the new layout no longer has it)")
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return err
	}
	return writeUnified(w, io.Discard, p, cluster, 3)
}
