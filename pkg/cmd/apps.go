package cmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/apps"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/diff"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/flux"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/safetext"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/ui"
)

// NewCmdApps builds the `apps` group.
func NewCmdApps(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apps",
		Short: "What Flux deploys, Argo CD's way: sync state, drift, sync, history, rollback",
		Long: `The applications Flux deploys in the cluster: each Kustomization (and
HelmRelease), with its source (and GitLab project), the revision applied,
whether it is in sync with its source (the revision and the live objects) and
its health; and the actions on one: reconcile (sync), suspend, resume,
history and rollback by a commit. Through any kubeconfig context, the ones
that go through KAS included (kubeconfig, --ci, a CI job's KUBECONFIG).
GitLab credentials (GITLAB_TOKEN or --gitlab-token-file) are used to read
the sources from GitLab and to commit a rollback.`,
		Example: `  kubectl gitlab-agent apps list -A
  kubectl gitlab-agent apps get web -n apps
  kubectl gitlab-agent apps reconcile web -n apps --with-source
  kubectl gitlab-agent apps history web -n apps
  kubectl gitlab-agent apps rollback web -n apps --to 1a2b3c4d`,
	}
	cmd.AddCommand(
		newCmdAppsList(f, g, streams),
		newCmdAppsGet(f, g, streams),
		newCmdAppsDiff(f, g, streams),
		newCmdAppsReconcile(f, g, streams),
		newCmdAppsSuspend(f, g, streams, true),
		newCmdAppsSuspend(f, g, streams, false),
		newCmdAppsHistory(f, g, streams),
		newCmdAppsRollback(f, g, streams),
	)
	return cmd
}

// appsCommand is what the apps commands share: the cluster's Flux objects,
// the namespace, GitLab when a credential is at hand, -o.
type appsCommand struct {
	Factory Factory
	Global  *GlobalOptions
	GitLab  GitLabFlags
	Kube    *genericclioptions.ConfigFlags
	Output  *OutputFlags

	env       apps.Env
	gl        *gitlab.Client
	namespace string
	genericiooptions.IOStreams
}

func newAppsCommand(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams, out *OutputFlags) appsCommand {
	return appsCommand{Factory: f, Global: g, Output: out, IOStreams: streams}
}

func (c *appsCommand) addFlags(cmd *cobra.Command) {
	c.GitLab.AddFlags(cmd, false)
	c.Output.AddFlags(cmd)
	c.Kube = newKubeFlags(cmd)
}

// complete checks -o, connects to the cluster and, when a credential is at
// hand (needGitLab: it must be), to GitLab.
func (c *appsCommand) complete(needGitLab bool) error {
	if err := c.Output.Validate(); err != nil {
		return err
	}
	var err error
	if needGitLab {
		c.gl, err = c.GitLab.Client(c.Factory, c.ErrOut)
	} else {
		c.gl, err = c.optionalGitLab()
	}
	if err != nil {
		return err
	}
	c.env.GitLabURL = c.GitLab.ResolvedURL()
	if c.env.Flux, err = c.Factory.Flux(c.Kube); err != nil {
		return err
	}
	ns, _, err := c.Kube.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return fmt.Errorf("reading kubeconfig: %w", err)
	}
	c.namespace = ns
	return nil
}

// comparer compares apps with their sources read from GitLab, on the
// cluster the flags select.
func (c *appsCommand) comparer() (*apps.Comparer, error) {
	dc, err := c.Factory.DiffCluster(c.Kube)
	if err != nil {
		return nil, err
	}
	return &apps.Comparer{Env: c.env, GitLab: c.gl, Cluster: dc}, nil
}

func (c *appsCommand) optionalGitLab() (*gitlab.Client, error) {
	cl, err := c.GitLab.Client(c.Factory, c.ErrOut)
	var none *gitlab.NoCredentialsError
	if errors.As(err, &none) {
		return nil, nil
	}
	return cl, err
}

// explain adds what to do to a Flux failure.
func explainApps(err error) error {
	var se *flux.SuspendedError
	if errors.As(err, &se) && se.Kind == "GitRepository" {
		return fmt.Errorf("its source GitRepository %s/%s is suspended: resume it first ('flux resume source git %s -n %s')", se.Namespace, se.Name, se.Name, se.Namespace)
	}
	if errors.As(err, &se) {
		return fmt.Errorf("%s %s/%s is suspended: resume it first ('kubectl gitlab-agent apps resume %s -n %s')", se.Kind, se.Namespace, se.Name, se.Name, se.Namespace)
	}
	return err
}

// appList is what apps list prints.
type appList struct {
	Apps []*apps.App `json:"apps"`
}

// Table is the apps as a table; wide adds the GitLab project, both
// revisions in full, and Flux's message.
func (l appList) Table(wide bool) *ui.Table {
	t := &ui.Table{Headers: []string{"namespace", "name", "kind", "source", "revision", "sync", "health", "drifted", "last reconcile"}}
	if wide {
		t.Headers = append(t.Headers, "project", "source revision", "message")
	}
	now := time.Now()
	for _, a := range l.Apps {
		drifted := "-"
		if a.Drifted != nil {
			drifted = strconv.Itoa(*a.Drifted)
		}
		rev := a.Revision
		if !wide {
			rev = shortRevision(rev)
		}
		row := []ui.Cell{ui.C(a.Namespace), ui.C(a.Name), ui.C(a.Kind), ui.C(orNone(a.Source)), ui.C(orNone(rev)),
			{Text: a.Sync, Style: syncStyle(a.Sync)}, {Text: a.Health, Style: healthStyle(a.Health)}, ui.C(drifted), ui.C(ui.Age(a.LastReconcile, now))}
		if wide {
			row = append(row, ui.C(orNone(a.Project)), ui.C(orNone(a.SourceRevision)), ui.C(a.Message))
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// Names are the apps as kind/namespace/name.
func (l appList) Names() []string {
	out := make([]string, len(l.Apps))
	for i, a := range l.Apps {
		out[i] = a.Kind + "/" + a.Namespace + "/" + a.Name
	}
	return out
}

// ItemsField is the document's list of apps.
func (appList) ItemsField() string { return "apps" }

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// shortRevision is a revision with its commit cut to 8 digits.
func shortRevision(rev string) string {
	sha := flux.RevisionSHA(rev)
	if len(sha) <= 8 {
		return rev
	}
	return rev[:len(rev)-len(sha)] + sha[:8]
}

func syncStyle(s string) ui.Style {
	switch s {
	case apps.Synced:
		return ui.Good
	case apps.OutOfSync:
		return ui.Warn
	}
	return ui.Faint
}

func healthStyle(s string) ui.Style {
	switch s {
	case apps.Healthy:
		return ui.Good
	case apps.Degraded:
		return ui.Bad
	}
	return ui.Warn
}

// AppsListOptions lists the apps.
type AppsListOptions struct {
	appsCommand
	AllNamespaces bool
	NoDiff        bool
}

func newCmdAppsList(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &AppsListOptions{appsCommand: newAppsCommand(f, g, streams, newListOutputFlags("table", "json", "yaml"))}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the Kustomizations and HelmReleases with their source, revision, sync and health",
		Long: `One row per Kustomization and HelmRelease in the namespace (-n, else the
context's) or in all (-A): namespace, name, kind, source, the revision
applied, sync (Synced, OutOfSync, Unknown), health (Healthy, Progressing,
Degraded, Suspended) and when Flux last reconciled it. Sync here is Flux's
view: the revision applied is the source's current one (--no-diff); a
HelmRelease's is Flux's only. -o wide adds the GitLab project, the source's
revision and Flux's message.`,
		Example: `  kubectl gitlab-agent apps list -A
  kubectl gitlab-agent apps list -n apps -o json`,
	}
	o.addFlags(cmd)
	cmd.Flags().BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "list the apps of every namespace")
	cmd.Flags().BoolVar(&o.NoDiff, "no-diff", false, "show Flux's own view only: do not compare the live objects with the source")
	return leaf(o, exactArgs(0, "no arguments"), cmd)
}

// Complete connects.
func (o *AppsListOptions) Complete(*cobra.Command, []string) error { return o.complete(false) }

// Validate has nothing to check.
func (o *AppsListOptions) Validate() error { return nil }

// Run lists.
func (o *AppsListOptions) Run(ctx context.Context) error {
	ns := o.namespace
	if o.AllNamespaces {
		ns = ""
	}
	list, err := apps.List(ctx, o.env, ns)
	if err != nil {
		return err
	}
	if list == nil {
		list = []*apps.App{}
	}
	if !o.NoDiff && len(list) > 0 {
		cmp, err := o.comparer()
		if err != nil {
			return err
		}
		defer cmp.Close()
		if err := cmp.CompareAll(ctx, list, 4); err != nil {
			return err
		}
	}
	return o.Output.Print(o.Out, o.Global.NoColor, appList{Apps: list})
}

// appOne is what the commands on one app share: NAME and -n.
type appOne struct {
	appsCommand
	name string
}

func (o *appOne) completeOne(args []string, needGitLab bool) error {
	o.name = args[0]
	return o.complete(needGitLab)
}

// Validate checks NAME.
func (o *appOne) Validate() error {
	if o.name == "" || len(o.name) > 253 {
		return fmt.Errorf("invalid app name %q", o.name)
	}
	return nil
}

// AppsGetOptions shows one app.
type AppsGetOptions struct{ appOne }

func newCmdAppsGet(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &AppsGetOptions{appOne{appsCommand: newAppsCommand(f, g, streams, NewOutputFlags("text", "json", "yaml"))}}
	cmd := &cobra.Command{
		Use:   "get NAME",
		Short: "Show one app: its source, revisions, conditions, inventory and last events",
		Example: `  kubectl gitlab-agent apps get web -n apps
  kubectl gitlab-agent apps get flux-system -n flux-system -o yaml`,
	}
	o.addFlags(cmd)
	return leaf(o, exactArgs(1, "NAME"), cmd)
}

// Complete connects.
func (o *AppsGetOptions) Complete(_ *cobra.Command, args []string) error {
	return o.completeOne(args, false)
}

// Run shows the app.
func (o *AppsGetOptions) Run(ctx context.Context) error {
	d, err := apps.Describe(ctx, o.env, o.namespace, o.name)
	if err != nil {
		return err
	}
	if o.gl != nil && d.App.Kind == apps.KindKustomization {
		cmp, err := o.comparer()
		if err != nil {
			return err
		}
		defer cmp.Close()
		if c, err := cmp.Compare(ctx, d.App, ""); err == nil {
			d.Drifted = c.DriftedNames()
			n := len(d.Drifted)
			d.App.Drifted = &n
		} else {
			d.App.Message = firstLine(err.Error())
		}
	}
	return o.Output.Print(o.Out, o.Global.NoColor, appDetails{d})
}

// appDetails is what apps get prints.
type appDetails struct{ *apps.Details }

// WriteText writes the app as kubectl describe would.
func (d appDetails) WriteText(w io.Writer, p *ui.Painter) error {
	var b bytes.Buffer
	kv := func(k, v string) { fmt.Fprintf(&b, "%-16s %s\n", k+":", safetext.Line(v)) }
	a := d.App
	kv("Name", a.Namespace+"/"+a.Name)
	kv("Kind", a.Kind)
	kv("Source", orNone(a.Source))
	if d.URL != "" {
		kv("URL", d.URL)
	}
	if d.Ref != "" {
		kv("Ref", d.Ref)
	}
	if a.Project != "" {
		kv("GitLab project", a.Project)
	}
	if d.Path != "" {
		kv("Path", d.Path)
	}
	kv("Source revision", orNone(a.SourceRevision))
	kv("Applied", orNone(a.Revision))
	kv("Attempted", orNone(d.Attempted))
	kv("Sync", p.Paint(a.Sync, syncStyle(a.Sync)))
	kv("Health", p.Paint(a.Health, healthStyle(a.Health)))
	if len(d.Conditions) > 0 {
		b.WriteString("Conditions:\n")
		for _, c := range d.Conditions {
			fmt.Fprintf(&b, "  %s\n", safetext.Line(c.String()))
		}
	}
	if len(d.Inventory) > 0 {
		b.WriteString("Inventory:\n")
		for _, k := range d.Inventory {
			fmt.Fprintf(&b, "  %-30s %d\n", safetext.Line(k.Kind), k.Count)
		}
	}
	if d.Drifted != nil {
		if len(d.Drifted) == 0 {
			b.WriteString("Drifted:         none: the live objects are what the source builds\n")
		} else {
			b.WriteString("Drifted:\n")
			for _, n := range d.Drifted {
				fmt.Fprintf(&b, "  %s\n", safetext.Line(n))
			}
		}
	} else if a.Message != "" {
		kv("Message", a.Message)
	}
	if len(d.Events) > 0 {
		b.WriteString("Events:\n")
		now := time.Now()
		for _, e := range d.Events {
			fmt.Fprintf(&b, "  %-8s %-7s %-24s %s\n", ui.Age(e.Time, now), safetext.Line(e.Type), safetext.Line(e.Reason), safetext.Line(e.Message))
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// appWait is what the commands that wait for Flux share: --timeout and the
// progress line.
type appWait struct {
	Timeout time.Duration
	report  *progressReport
}

func (w *appWait) addWaitFlags(cmd *cobra.Command) {
	cmd.Flags().DurationVar(&w.Timeout, "timeout", 5*time.Minute, "how long to wait for Flux")
}

func (w *appWait) validateWait() error {
	if w.Timeout <= 0 {
		return fmt.Errorf("--timeout must be positive")
	}
	return nil
}

// AppsReconcileOptions syncs one app.
type AppsReconcileOptions struct {
	appOne
	WithSource bool
	appWait
}

func newCmdAppsReconcile(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &AppsReconcileOptions{appOne: appOne{appsCommand: newAppsCommand(f, g, streams, NewOutputFlags("text", "json", "yaml"))}}
	cmd := &cobra.Command{
		Use:     "reconcile NAME",
		Aliases: []string{"sync"},
		Short:   "Ask Flux to reconcile the app now, as flux reconcile does, and wait",
		Long: `Ask Flux to reconcile the app now (reconcile.fluxcd.io/requestedAt; with
--with-source its source first), and wait until Flux has handled the request
and the app is Ready; progress on stderr. A suspended app is refused. Says
the revision applied; when Flux reports a failure, its message, and exit 1.`,
		Example: `  kubectl gitlab-agent apps reconcile web -n apps --with-source`,
	}
	o.addFlags(cmd)
	cmd.Flags().BoolVar(&o.WithSource, "with-source", false, "reconcile the app's source first (fetch the newest commit)")
	o.addWaitFlags(cmd)
	return leaf(o, exactArgs(1, "NAME"), cmd)
}

// Complete connects.
func (o *AppsReconcileOptions) Complete(_ *cobra.Command, args []string) error {
	o.report = &progressReport{w: o.ErrOut, noColor: o.Global.NoColor}
	return o.completeOne(args, false)
}

// Validate checks the timeout.
func (o *AppsReconcileOptions) Validate() error {
	if err := o.validateWait(); err != nil {
		return err
	}
	return o.appOne.Validate()
}

// Run reconciles and waits.
func (o *AppsReconcileOptions) Run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	a, err := apps.Reconcile(ctx, o.env, o.namespace, o.name, o.WithSource, o.report.Waiting)
	o.report.End()
	if err != nil {
		return explainApps(err)
	}
	return o.Output.Print(o.Out, o.Global.NoColor, appReconciled{a})
}

// appReconciled is what reconcile prints.
type appReconciled struct{ *apps.App }

// WriteText says what Flux applied.
func (r appReconciled) WriteText(w io.Writer, _ *ui.Painter) error {
	_, err := fmt.Fprintf(w, "%s %s/%s reconciled: applied %s\n", r.Kind, r.Namespace, r.Name, safetext.Line(orNone(r.Revision)))
	return err
}

// AppsSuspendOptions suspends or resumes one app.
type AppsSuspendOptions struct {
	appOne
	suspend bool
}

func newCmdAppsSuspend(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams, suspend bool) *cobra.Command {
	o := &AppsSuspendOptions{appOne: appOne{appsCommand: newAppsCommand(f, g, streams, NewOutputFlags("text", "json", "yaml"))}, suspend: suspend}
	cmd := &cobra.Command{
		Use:     "suspend NAME",
		Short:   "Stop Flux reconciling the app (spec.suspend: true)",
		Example: `  kubectl gitlab-agent apps suspend web -n apps`,
	}
	if !suspend {
		cmd.Use, cmd.Short, cmd.Example = "resume NAME", "Let Flux reconcile the app again (spec.suspend: false)", `  kubectl gitlab-agent apps resume web -n apps`
	}
	o.addFlags(cmd)
	return leaf(o, exactArgs(1, "NAME"), cmd)
}

// Complete connects.
func (o *AppsSuspendOptions) Complete(_ *cobra.Command, args []string) error {
	return o.completeOne(args, false)
}

// Run sets spec.suspend.
func (o *AppsSuspendOptions) Run(ctx context.Context) error {
	a, err := apps.SetSuspended(ctx, o.env, o.namespace, o.name, o.suspend)
	if err != nil {
		return err
	}
	return o.Output.Print(o.Out, o.Global.NoColor, appSuspended{a})
}

// appSuspended is what suspend and resume print.
type appSuspended struct{ *apps.App }

// WriteText says what the app is now.
func (r appSuspended) WriteText(w io.Writer, _ *ui.Painter) error {
	what := "resumed"
	if r.Suspended {
		what = "suspended"
	}
	_, err := fmt.Fprintf(w, "%s %s/%s %s\n", r.Kind, r.Namespace, r.Name, what)
	return err
}

// AppsHistoryOptions lists what an app applied.
type AppsHistoryOptions struct{ appOne }

func newCmdAppsHistory(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &AppsHistoryOptions{appOne{appsCommand: newAppsCommand(f, g, streams, newListOutputFlags("table", "json", "yaml"))}}
	cmd := &cobra.Command{
		Use:   "history NAME",
		Short: "The revisions Flux applied, newest first, with GitLab's commits (who changed what)",
		Long: `The revisions Flux applied to the app (its status.history, 5 at most,
newest first), each with the commit's author, title and time from GitLab when
its source is a GitLab project and a credential is at hand.`,
		Example: `  kubectl gitlab-agent apps history web -n apps`,
	}
	o.addFlags(cmd)
	return leaf(o, exactArgs(1, "NAME"), cmd)
}

// Complete connects.
func (o *AppsHistoryOptions) Complete(_ *cobra.Command, args []string) error {
	return o.completeOne(args, false)
}

// Run lists the revisions.
func (o *AppsHistoryOptions) Run(ctx context.Context) error {
	a, err := apps.Get(ctx, o.env, o.namespace, o.name)
	if err != nil {
		return err
	}
	revs, err := apps.History(ctx, o.gl, a)
	if err != nil {
		return err
	}
	if revs == nil {
		revs = []apps.Revision{}
	}
	return o.Output.Print(o.Out, o.Global.NoColor, appHistory{Revisions: revs})
}

// appHistory is what history prints.
type appHistory struct {
	Revisions []apps.Revision `json:"revisions"`
}

// Table is the revisions, newest first.
func (h appHistory) Table(wide bool) *ui.Table {
	t := &ui.Table{Headers: []string{"revision", "status", "applied", "author", "title"}}
	if wide {
		t.Headers = append(t.Headers, "reconciliations", "committed", "commit url")
	}
	now := time.Now()
	for _, r := range h.Revisions {
		rev := r.Revision
		if r.Current {
			rev += " (current)"
		}
		row := []ui.Cell{ui.C(rev), ui.C(orNone(r.Status)), ui.C(ui.Age(r.LastReconciled, now)), ui.C(orNone(r.Author)), ui.C(orNone(r.Title))}
		if wide {
			row = append(row, ui.C(strconv.FormatInt(r.Reconciliations, 10)), ui.C(ui.Age(r.Committed, now)), ui.C(orNone(r.WebURL)))
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// Names are the revisions.
func (h appHistory) Names() []string {
	out := make([]string, len(h.Revisions))
	for i, r := range h.Revisions {
		out[i] = r.Revision
	}
	return out
}

// ItemsField is the document's list.
func (appHistory) ItemsField() string { return "revisions" }

// AppsRollbackOptions rolls an app back by a commit.
type AppsRollbackOptions struct {
	appOne
	To           string
	MergeRequest bool
	appWait
}

func newCmdAppsRollback(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &AppsRollbackOptions{appOne: appOne{appsCommand: newAppsCommand(f, g, streams, NewOutputFlags("text", "json", "yaml"))}}
	cmd := &cobra.Command{
		Use:   "rollback NAME --to SHA",
		Short: "Roll the app back by a commit that restores its path as it was at SHA, then sync",
		Long: `GitOps rollback: a new commit on the branch the app's GitRepository follows
restores the app's path (its Kustomization's spec.path) to its content at
--to (files created, updated and deleted inside that path only); then Flux is
asked to fetch and apply it (reconcile --with-source), and the command waits.
With --merge-request the commit goes to a branch rollback/NS-NAME-SHA with
a merge request instead. Nothing is applied behind Flux's back. Needs GitLab
credentials that may push to the branch.`,
		Example: `  kubectl gitlab-agent apps history web -n apps
  kubectl gitlab-agent apps rollback web -n apps --to 1a2b3c4d`,
	}
	o.addFlags(cmd)
	cmd.Flags().StringVar(&o.To, "to", "", "the commit SHA whose content of the app's path to restore")
	cmd.Flags().BoolVar(&o.MergeRequest, "merge-request", false, "open a merge request instead of committing to the branch")
	o.addWaitFlags(cmd)
	return leaf(o, exactArgs(1, "NAME"), cmd)
}

// Complete connects to the cluster and GitLab.
func (o *AppsRollbackOptions) Complete(_ *cobra.Command, args []string) error {
	o.report = &progressReport{w: o.ErrOut, noColor: o.Global.NoColor}
	if o.To == "" {
		return fmt.Errorf("--to is required: the commit to roll back to ('apps history %s' lists them)", args[0])
	}
	if !apps.IsSHA(o.To) {
		return fmt.Errorf("--to %q is not a commit SHA (7 to 40 hexadecimal digits; 'apps history %s' lists them)", o.To, args[0])
	}
	return o.completeOne(args, true)
}

// Validate checks the timeout.
func (o *AppsRollbackOptions) Validate() error {
	if err := o.validateWait(); err != nil {
		return err
	}
	return o.appOne.Validate()
}

// Run rolls back.
func (o *AppsRollbackOptions) Run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	res, err := apps.Rollback(ctx, o.env, o.gl, o.namespace, o.name, apps.RollbackOptions{To: o.To, MergeRequest: o.MergeRequest, Progress: o.report.Waiting})
	o.report.End()
	if err != nil {
		return explainApps(err)
	}
	return o.Output.Print(o.Out, o.Global.NoColor, rolledBack{res})
}

// rolledBack is what rollback prints.
type rolledBack struct{ *apps.RollbackResult }

// WriteText says what was committed and applied.
func (r rolledBack) WriteText(w io.Writer, _ *ui.Painter) error {
	var b bytes.Buffer
	switch {
	case r.MergeRequest != nil:
		fmt.Fprintf(&b, "merge request to roll %s back to %s: %s\n", r.App.Key(), safetext.Line(r.To), safetext.Line(r.MergeRequest.WebURL))
	case r.Commit == nil:
		fmt.Fprintf(&b, "%s in %s already holds its content at %s: nothing committed; Flux applied %s\n", safetext.Line(orNone(r.Path)), safetext.Line(r.App.Project), safetext.Line(r.To), safetext.Line(orNone(r.Revision)))
	default:
		fmt.Fprintf(&b, "rolled %s back to %s: commit %s on %s (%d files), Flux applied %s\n", r.App.Key(), safetext.Line(r.To), safetext.Line(r.Commit.ShortID), safetext.Line(r.Branch), len(r.Files), safetext.Line(orNone(r.Revision)))
	}
	_, err := w.Write(b.Bytes())
	return err
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// AppsDiffOptions diffs one app with its source.
type AppsDiffOptions struct {
	appOne
	Revision string
	Unified  int
}

func newCmdAppsDiff(f Factory, g *GlobalOptions, streams genericiooptions.IOStreams) *cobra.Command {
	o := &AppsDiffOptions{appOne: appOne{appsCommand: newAppsCommand(f, g, streams, NewOutputFlags("unified", "summary", "markdown", "json", "yaml"))}}
	cmd := &cobra.Command{
		Use:   "diff NAME",
		Short: "Diff the app's live objects with its source, fetched from GitLab and built as Flux builds it",
		Long: `Compare the live objects of the Kustomization NAME with what its source
builds: the GitLab project its GitRepository fetches, read through GitLab's
repository archive API at the source's current revision (or --revision),
built as kustomize-controller v1.9 builds it (Flux's own kustomize packages:
a generated kustomization.yaml when the path has none, targetNamespace,
namePrefix/nameSuffix, patches, images, commonMetadata, components,
postBuild substitutions from the cluster's ConfigMaps and Secrets; no remote
bases), and diffed under Flux's rules: field manager kustomize-controller
with forced ownership, objects marked ssa: Ignore or reconcile: disabled
skipped, IfNotPresent compared only when absent, inventory objects the build
no longer has shown as pruned when spec.prune is true. Secrets are masked.
-o markdown is a note for a merge request, as diff's.
Exit 0: the same; 1: different; 2: an error.`,
		Example: `  kubectl gitlab-agent apps diff web -n apps
  kubectl gitlab-agent apps diff web -n apps --revision 1a2b3c4d -o summary`,
	}
	o.addFlags(cmd)
	cmd.Flags().StringVar(&o.Revision, "revision", "", "build the source at this commit SHA instead of its current revision")
	cmd.Flags().IntVarP(&o.Unified, "unified", "U", 3, "lines of context in the unified diff")
	return leaf(o, exactArgs(1, "NAME"), cmd)
}

// Complete connects to the cluster and GitLab.
// The flags are checked first: nothing is asked of a cluster or GitLab for
// a bad one.
func (o *AppsDiffOptions) Complete(_ *cobra.Command, args []string) error {
	if err := o.Output.Validate(); err != nil {
		return diffError(err)
	}
	if o.Unified < 0 {
		return diffError(fmt.Errorf("--unified must be 0 or more"))
	}
	if o.Revision != "" && !apps.IsSHA(o.Revision) {
		return diffError(fmt.Errorf("--revision %q is not a commit SHA (7 to 40 hexadecimal digits)", o.Revision))
	}
	return diffError(o.completeOne(args, true))
}

// Validate checks NAME.
func (o *AppsDiffOptions) Validate() error { return diffError(o.appOne.Validate()) }

// Run diffs; the exit code says whether anything differs.
func (o *AppsDiffOptions) Run(ctx context.Context) error {
	a, err := apps.Get(ctx, o.env, o.namespace, o.name)
	if err != nil {
		return diffError(err)
	}
	cmp, err := o.comparer()
	if err != nil {
		return diffError(err)
	}
	defer cmp.Close()
	c, err := cmp.Compare(ctx, a, o.Revision)
	if err != nil {
		return diffError(err)
	}
	for _, n := range c.Result.Notes {
		fmt.Fprintf(o.ErrOut, "note: %s\n", safetext.Line(n))
	}
	doc := newDiffResult(diff.JSON(c.Result), o.Output.Format, o.Unified, "kubectl gitlab-agent apps diff", o.ErrOut)
	if err := o.Output.Print(o.Out, o.Global.NoColor, doc); err != nil {
		return diffError(err)
	}
	switch {
	case c.Result.Failed():
		return &ExitError{Code: 2, Err: fmt.Errorf("%d of %d objects could not be compared", c.Result.Counts()[diff.Failed], len(c.Result.Objects))}
	case c.Result.Differs():
		return &ExitError{Code: 1}
	}
	return nil
}
