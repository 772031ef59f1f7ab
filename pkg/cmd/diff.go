package cmd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/diff"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/input"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/install"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/kube"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/manifest"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/safetext"
)

// DiffOptions compares manifests with the live cluster.
type DiffOptions struct {
	Global      *GlobalOptions
	Factory     Factory
	Kube        *genericclioptions.ConfigFlags
	Output      *OutputFlags
	Render      RenderFlags
	Filenames   []string
	Recursive   bool
	Kustomize   string
	Prune       bool
	Selector    string
	IgnoreField []string
	IgnoreFiles []string
	ShowSecrets bool
	ShowStatus  bool
	Unified     int
	Concurrency int
	Manager     string
	Force       bool

	name      string
	in        manifest.Input // the agent's render input, with NAME
	nsFlag    string         // -n as given, "" when not
	manifests []kube.Manifest
	cluster   diff.Cluster
	// running reads the agent as it runs, with NAME: the lifecycle
	// actions' cluster, which is then the one diffed.
	running install.Cluster
	opts    diff.Options
	genericiooptions.IOStreams
}

// diffError makes every failure of diff exit 2, as kubectl diff does; 1
// means "differences found".
func diffError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(*ExitError); ok {
		return err
	}
	return &ExitError{Code: 2, Err: err}
}

// NewCmdDiff builds `diff [NAME] [-f PATH]... [-k DIR]`.
func NewCmdDiff(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &DiffOptions{Global: g, Factory: f, Output: NewOutputFlags("unified", "summary", "markdown", "json", "yaml"), IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "diff [NAME] [-f PATH]... [-k DIR]",
		Short: "Show what applying the agent, or any manifests, would change in the cluster",
		Long: `Compare manifests with the live cluster: the verdict is what a server-side
apply with the field manager kubectl-gitlab-agent (taking over fields others own,
as install does) would do, the verdict kubectl diff --server-side gives.
Defaults, admission and other managers' fields never show as differences unless
the apply would change them.

An object the apply would leave as it is is known without a request: the apply
is run locally with the server's own merge code and schema (OpenAPI v3, cached
as kubectl caches discovery), provided no webhook or admission policy may act
on it and you may patch it (else it is an error, as the apply would be). Every
other object is dry-run applied on the server.

With NAME, the agent is rendered as 'render NAME' would (the same flags, values
with --values). With -f (files, directories, - for stdin; -R recurses) or -k
(a kustomization), any manifests are compared.

Secret values never print: each key shows as a short hash, keyed by a key of
the user's (0600 in the user's cache directory) so that the output lets no
one test a guess, and changed, added and removed keys are visible
(--show-secrets prints them). server-side
bookkeeping (managedFields, resourceVersion, uid, generation,
creationTimestamp) and status (unless --show-status, or where status is an
ordinary field: custom resources without a status subresource) are left out.
Objects created with their Namespace or CRD in the same manifests show as
created, checked against the schema as the apply would check them (a field
the CRD does not declare, a namespace that is nowhere, a namespace other
than -n's are errors; a note says what was not validated).

Fields others own on purpose are left out with --ignore-field KIND:JSONPATH or
--ignore-file FILE, a YAML list in the shape of Argo CD's ignoreDifferences:
  - group: apps              # "" is the core group; left out: any
    kind: Deployment
    name: web                # optional; namespace: too
    jsonPointers: [/spec/replicas]
  - kind: ConfigMap
    managedFieldsManagers: [kube-controller-manager]

With KUBECTL_EXTERNAL_DIFF set (and -o unified), that program runs instead, as
with kubectl diff: it gets a LIVE and a MERGED directory of YAML files named
group.version.Kind.namespace.name (Secrets masked) as its last two arguments;
the variable is split as a shell splits words, and its exit code is diff's.

-o json (or yaml) lists every object with its action and, for a changed
object, the changed paths with their old and new values (Secrets masked).

-o markdown is a note for a GitLab merge request: the plan, a table of the
objects that are not unchanged, and each one's diff in a fenced block
(folded in <details> past 50 lines), within GitLab's 1,000,000 characters
(the last line counts what did not fit). Names, notes, errors and values
are escaped: they cannot mention anyone, link, add HTML or close a block.

A cluster that refuses the credentials (401, or 403 to discovery or to the
first read) or does not answer ends the diff with one line; an error that
objects share (the same but for their names) is one line with a count.

Exit status: 0 no differences, 1 differences, 2 an error (also when only some
objects could not be compared); 130 after Ctrl-C, 143 after SIGTERM (what was
compared is counted, and nothing more is asked of the cluster).`,
		Example: `  # The agent as installed vs as it would be rendered now
  kubectl gitlab-agent diff prod-eu --agent-version v17.4.0

  # Any manifests, as a CI gate
  kubectl gitlab-agent diff -f deploy/ -R -o summary

  # A note for the merge request (docs/ci.md posts it)
  kubectl gitlab-agent diff -f deploy/ -R -o markdown > diff.md

  # Objects an autoscaler owns on purpose, and objects no longer in the set
  kubectl gitlab-agent diff -f app.yaml --ignore-field Deployment:.spec.replicas --prune -l app=web`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return diffError(fmt.Errorf("diff takes at most one agent NAME, got %d arguments", len(args)))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return diffError(runOptions(o)(cmd, args))
		},
	}
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return diffError(fmt.Errorf("%w (see '%s --help')", err, c.CommandPath()))
	})
	fl := cmd.Flags()
	fl.StringArrayVarP(&o.Filenames, "filename", "f", nil, "a manifest file or directory, or - for stdin (repeatable)")
	fl.BoolVarP(&o.Recursive, "recursive", "R", false, "read the directories given with -f recursively")
	fl.StringVarP(&o.Kustomize, "kustomize", "k", "", "a kustomization directory to build and compare")
	fl.BoolVar(&o.Prune, "prune", false, "also list live objects of the set that the manifests no longer contain (the agent's labels with NAME, -l with -f)")
	fl.StringVarP(&o.Selector, "selector", "l", "", "with --prune: the label selector of the set")
	fl.StringArrayVar(&o.IgnoreField, "ignore-field", nil, "KIND:JSONPATH of a field others own on purpose, e.g. Deployment:.spec.replicas (repeatable; * for every kind)")
	fl.StringArrayVar(&o.IgnoreFiles, "ignore-file", nil, "a YAML file of ignore rules, as Argo CD's ignoreDifferences (repeatable; see above)")
	fl.BoolVar(&o.ShowSecrets, "show-secrets", false, "print Secret values instead of their hashes")
	fl.BoolVar(&o.ShowStatus, "show-status", false, "compare status too")
	fl.IntVarP(&o.Unified, "unified", "U", 3, "lines of context in unified output (--context is kubectl's: the kubeconfig context)")
	fl.IntVar(&o.Concurrency, "concurrency", 16, "objects compared at once")
	fl.StringVar(&o.Manager, "field-manager", kube.FieldManager, "the server-side apply field manager to predict")
	fl.BoolVar(&o.Force, "force-conflicts", true, "take over fields other managers own, as install does; false reports a conflict instead")
	o.Render.AddFlags(cmd, "")
	o.Output.AddFlags(cmd)
	o.Kube = newKubeFlags(cmd)
	return cmd
}

// Validate checks the arguments and flags Complete read.
func (o *DiffOptions) Validate() error {
	if err := o.Output.Validate(); err != nil {
		return err
	}
	if o.name == "" && len(o.Filenames) == 0 && o.Kustomize == "" {
		return fmt.Errorf("nothing to compare: give an agent NAME, -f PATH or -k DIR")
	}
	if o.Unified < 0 || o.Concurrency < 1 {
		return fmt.Errorf("--unified must be 0 or more and --concurrency 1 or more")
	}
	if o.Prune && o.name == "" && o.Selector == "" {
		return fmt.Errorf("--prune with -f needs -l SELECTOR to know which live objects form the set")
	}
	return nil
}

// Complete reads the arguments, flags and environment, and builds the
// cluster client. The files are read in Run, as kubectl diff reads -f
// there: a bad flag is refused (Validate) before any file is read, and
// nothing is asked of the cluster before Run.
func (o *DiffOptions) Complete(cmd *cobra.Command, args []string) error {
	if len(args) == 1 {
		o.name = args[0]
	}
	for _, s := range o.IgnoreField {
		r, err := diff.ParseIgnoreRule(s)
		if err != nil {
			return err
		}
		o.opts.Ignore = append(o.opts.Ignore, r)
	}
	o.nsFlag = namespaceFlag(cmd, o.Kube)
	o.opts.Manager, o.opts.Force, o.opts.Concurrency = o.Manager, o.Force, o.Concurrency
	o.opts.ShowSecrets, o.opts.ShowStatus = o.ShowSecrets, o.ShowStatus
	var err error
	if o.name != "" {
		// The agent is rendered as it runs: the lifecycle actions'
		// cluster reads it, and diffs.
		if o.running, err = o.Factory.Cluster(o.Kube); err != nil {
			return err
		}
		o.cluster = o.running
		return nil
	}
	o.cluster, err = o.Factory.DiffCluster(o.Kube)
	return err
}

// read reads the files: ignore rules, the agent's render input (values,
// token) with NAME, the manifests of -f and -k, and the Secret mask key.
func (o *DiffOptions) read(ctx context.Context) error {
	for _, f := range o.IgnoreFiles {
		data, err := input.ReadFile(ctx, f, o.In, input.MaxValues, "--ignore-file")
		if err != nil {
			return err
		}
		rules, err := diff.ParseIgnoreFile(f, data)
		if err != nil {
			return err
		}
		o.opts.Ignore = append(o.opts.Ignore, rules...)
	}
	if o.name != "" {
		var err error
		if o.in, err = o.Render.Input(ctx, o.Factory, o.name, o.nsFlag, o.In); err != nil {
			return err
		}
		if o.Prune && o.Selector == "" {
			// The install's labels are also another namespace's install of
			// the same agent: only this one's objects are pruned.
			o.Selector = manifest.Selector(o.in)
			o.opts.PruneOnly = o.in.Owns
		}
	}
	if len(o.Filenames) > 0 || o.Kustomize != "" {
		ms, err := kube.Sources{Filenames: o.Filenames, Recursive: o.Recursive, Kustomize: o.Kustomize, Stdin: o.In}.Read(ctx)
		if err != nil {
			return err
		}
		o.manifests = append(o.manifests, ms...)
	}
	if o.Prune {
		o.opts.PruneSelector = o.Selector
	}
	if base, err := os.UserCacheDir(); err == nil && !o.ShowSecrets {
		o.opts.MaskKey = diff.MaskKey(filepath.Join(base, "kubectl-gitlab-agent"))
	}
	return nil
}

// settle reads the kubeconfig's namespace (-n's when given, which makes
// other namespaces an error) and, with NAME, renders the agent as it runs,
// the manifests given with -f going to its namespace unless -n says.
func (o *DiffOptions) settle(ctx context.Context) error {
	ns, explicit, err := o.Kube.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return fmt.Errorf("reading kubeconfig: %w", err)
	}
	o.opts.DefaultNamespace, o.opts.EnforceNamespace = ns, explicit
	nsFlag := o.nsFlag
	if o.name != "" {
		out, err := install.RenderAsRunning(ctx, o.running, o.in)
		if err != nil {
			return explainValue(err)
		}
		ms, err := kube.FromObjects(out.Objects, "render "+o.name)
		if err != nil {
			return err
		}
		o.manifests = append(ms, o.manifests...)
		if nsFlag == "" {
			nsFlag = o.in.Namespace
		}
	}
	if nsFlag != "" {
		o.opts.DefaultNamespace = nsFlag
	}
	if o.opts.DefaultNamespace == "" {
		o.opts.DefaultNamespace = "default"
	}
	return nil
}

// Run reads the files, then asks the cluster (does it answer, how does the
// agent run), diffs and prints; the exit code says what was found.
func (o *DiffOptions) Run(ctx context.Context) error {
	// Collecting garbage at half the default growth keeps the peak heap
	// near what is live; lower costs more time than it saves memory (1,010
	// objects others applied, test/bench/diffbench: GOGC 20 0.11 of kubectl
	// diff's time, 50 0.07, 100 0.07 with 15 MB more).
	if os.Getenv("GOGC") == "" { // the user's choice stands
		defer debug.SetGCPercent(debug.SetGCPercent(50))
	}
	if err := o.read(ctx); err != nil {
		return diffError(err)
	}
	if err := o.cluster.Reachable(ctx); err != nil {
		return diffError(err)
	}
	if err := o.settle(ctx); err != nil {
		return diffError(err)
	}
	ms := o.manifests
	o.manifests = nil // only diff.Run holds them from here
	res, err := diff.Run(ctx, o.cluster, ms, o.opts)
	if err != nil {
		return diffError(err)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(o.ErrOut, "note: %s\n", safetext.Line(n))
	}
	if ext := os.Getenv(diff.ExternalDiffEnv); ext != "" && o.Output.Format == "unified" {
		return o.external(ctx, ext, res)
	}
	doc := newDiffResult(diff.JSON(res), o.Output.Format, o.Unified, "kubectl gitlab-agent diff", o.ErrOut)
	if err := o.Output.Print(o.Out, o.Global.NoColor, doc); err != nil {
		return diffError(err)
	}
	switch {
	case res.Failed():
		return &ExitError{Code: 2, Err: fmt.Errorf("%d of %d objects could not be compared", res.Counts()[diff.Failed], len(res.Objects))}
	case res.Differs():
		return &ExitError{Code: 1}
	}
	return nil
}

// external runs KUBECTL_EXTERNAL_DIFF on the result; its exit code is the
// command's (1: differences), unless objects could not be compared (2).
func (o *DiffOptions) external(ctx context.Context, command string, res *diff.Result) error {
	writeFolded(o.ErrOut, "error", res.Objects, func(obj diff.Object) string { return obj.Error })
	code, err := diff.RunExternal(ctx, command, res, o.Out, o.ErrOut)
	switch {
	case err != nil:
		return diffError(err)
	case res.Failed():
		return &ExitError{Code: 2, Err: fmt.Errorf("%d of %d objects could not be compared", res.Counts()[diff.Failed], len(res.Objects))}
	case code != 0:
		return &ExitError{Code: code}
	}
	return nil
}
