package cmd

import (
	"context"
	"fmt"
	"io"
	neturl "net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitremote"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/ui"
)

// Flags belong to the commands that honour them (as kubectl's PrintFlags and
// helm's bindOutputFlag): each group below is added only where it means
// something, so that anywhere else it is an "unknown flag" error.

// defaultGitLabURL is used when neither --gitlab-url nor GITLAB_URL nor
// CI_SERVER_URL nor a git remote says otherwise.
const defaultGitLabURL = "https://gitlab.com"

// GitLabFlags choose the GitLab instance, the credential and (for the
// commands that act on a project) the project.
type GitLabFlags struct {
	URL       string
	TokenFile string
	Project   string

	warned map[string]bool // hosts warned about cleartext
	// creds memoizes Credentials: a token file (a pipe, a one-shot secret
	// mount) is read once however many clients a command builds.
	creds    *gitlab.Credentials
	credsErr error
	credsFor string
	// cmd is the command the flags were added to: its context (Ctrl-C)
	// ends a token file read that blocks.
	cmd *cobra.Command
	// remote is the GitLab of the git checkout's remote, looked for once;
	// remoteNoted says stderr was told.
	remote                    *remoteURL
	remoteLooked, remoteNoted bool
}

// Credentials is the first credential of the chain (--gitlab-token-file,
// GITLAB_TOKEN, CI_JOB_TOKEN, glab's config) for the resolved URL, found
// once per command; for a GitLab taken from a git remote, only glab's token
// for that host (gitlab.HostCredentials).
func (g *GitLabFlags) Credentials() (gitlab.Credentials, error) {
	url := g.ResolvedURL()
	if g.creds == nil || g.credsFor != url {
		ctx := context.Background()
		if g.cmd != nil && g.cmd.Context() != nil {
			ctx = g.cmd.Context()
		}
		var c gitlab.Credentials
		var err error
		if g.fromRemote() {
			c, err = gitlab.HostCredentials(url)
		} else {
			c, err = gitlab.FindCredentials(ctx, url, g.TokenFile)
		}
		g.creds, g.credsErr, g.credsFor = &c, err, url
	}
	return *g.creds, g.credsErr
}

// AddFlags binds the GitLab flags to cmd; withProject adds --project.
func (g *GitLabFlags) AddFlags(cmd *cobra.Command, withProject bool) {
	g.cmd = cmd
	f := cmd.Flags()
	f.StringVar(&g.URL, "gitlab-url", "", "GitLab instance URL (default: $GITLAB_URL, in CI $CI_SERVER_URL, else the GitLab of the git remote, else "+defaultGitLabURL+")")
	f.StringVar(&g.TokenFile, "gitlab-token-file", "", "read the GitLab token from FILE (default: $GITLAB_TOKEN, in CI $CI_JOB_TOKEN, else glab's stored token)")
	if withProject {
		f.StringVar(&g.Project, "project", "", "GitLab project that holds the agent, as a path (group/project) or numeric ID (default: $CI_PROJECT_ID in CI, else the git remote's)")
	}
	if shared := f.Lookup(requestTimeoutFlag); shared != nil {
		shared.Usage = sharedRequestTimeoutUsage // kubectl's flags came first
	} else {
		f.String(requestTimeoutFlag, "0", "how long to wait for each answer from GitLab before giving up on that request, e.g. 10s or 1m (0: 30s)")
	}
}

// requestTimeoutFlag is kubectl's --request-timeout. The GitLab flags have
// it too, and it bounds each request to GitLab (gitlab.Options.RequestTimeout);
// a command with both groups has it once, for both.
const requestTimeoutFlag = "request-timeout"

const sharedRequestTimeoutUsage = "The length of time to wait before giving up on a single server request, the cluster's or GitLab's. Non-zero values should contain a corresponding time unit (e.g. 1s, 2m, 3h). A value of zero means don't timeout requests to the cluster, and 30s for GitLab."

// RequestTimeout is --request-timeout, read as kubectl reads it (seconds,
// or a duration); 0 when not given: the client's default.
func (g *GitLabFlags) RequestTimeout() (time.Duration, error) {
	if g.cmd == nil {
		return 0, nil
	}
	fl := g.cmd.Flags().Lookup(requestTimeoutFlag)
	if fl == nil {
		return 0, nil
	}
	d, err := clientcmd.ParseTimeout(fl.Value.String())
	if err != nil || d < 0 {
		return 0, fmt.Errorf("--%s %q: want a duration such as 10s or 1m, or a number of seconds", requestTimeoutFlag, fl.Value.String())
	}
	return d, nil
}

// withRequestTimeout is f, its GitLab clients with --request-timeout when
// their options do not say otherwise: for the clients a package makes with
// the Factory's maker (pkg/tunnel's) and doctor's.
func (g *GitLabFlags) withRequestTimeout(f Factory) (Factory, error) {
	d, err := g.RequestTimeout()
	if err != nil || d == 0 {
		return f, err
	}
	return timedFactory{Factory: f, requestTimeout: d}, nil
}

// timedFactory is a Factory whose GitLab clients wait requestTimeout for
// each answer, unless their options say otherwise.
type timedFactory struct {
	Factory
	requestTimeout time.Duration
}

func (t timedFactory) GitLab(o gitlab.Options) (*gitlab.Client, error) {
	if o.RequestTimeout == 0 {
		o.RequestTimeout = t.requestTimeout
	}
	return t.Factory.GitLab(o)
}

// ResolvedURL is --gitlab-url, else GITLAB_URL, else CI_SERVER_URL (set in
// every GitLab CI job), else the GitLab of the git checkout around the
// working directory, taken from its remote as glab takes it (and said once
// on stderr), else https://gitlab.com.
func (g *GitLabFlags) ResolvedURL() string {
	url := g.resolveURL()
	if g.fromRemote() && g.cmd != nil {
		g.noteRemote(g.cmd.ErrOrStderr(), "")
	}
	return url
}

// resolveURL is ResolvedURL without the note.
func (g *GitLabFlags) resolveURL() string {
	if url, _ := g.givenURL(); url != "" {
		return url
	}
	if r := g.remoteGitLab(); r != nil {
		return r.url
	}
	return defaultGitLabURL
}

// fromRemote reports a GitLab URL taken from a git remote.
func (g *GitLabFlags) fromRemote() bool {
	url, _ := g.givenURL()
	return url == "" && g.remoteGitLab() != nil
}

// noteRemote says once, on w, that the GitLab URL was taken from a git
// remote (and project, when not "", too): unless it is GitLab.com, as if
// there were none.
func (g *GitLabFlags) noteRemote(w io.Writer, project string) {
	r := g.remote
	if g.remoteNoted || r == nil || (r.url == defaultGitLabURL && project == "") {
		return
	}
	g.remoteNoted = true
	if project != "" {
		fmt.Fprintf(w, "using project %s on GitLab %s (from the git remote %q, %s; --project and --gitlab-url to choose)\n", project, r.url, r.remote.Name, r.how)
		return
	}
	fmt.Fprintf(w, "using GitLab %s (from the git remote %q, %s; --gitlab-url to choose)\n", r.url, r.remote.Name, r.how)
}

// givenURL is the GitLab URL the flag or the environment gives, and which
// of them gave it; "" when none does.
func (g *GitLabFlags) givenURL() (url, source string) {
	for _, v := range [][2]string{{g.URL, "--gitlab-url"}, {os.Getenv("GITLAB_URL"), "GITLAB_URL"}, {os.Getenv("CI_SERVER_URL"), "CI_SERVER_URL"}} {
		if v[0] != "" {
			return strings.TrimRight(v[0], "/"), v[1]
		}
	}
	return "", ""
}

// remoteURL is a GitLab URL taken from a git remote, and how.
type remoteURL struct {
	remote gitremote.Remote
	url    string
	how    string
}

// notGitLab are hosts of other forges: a remote there says nothing of the
// GitLab to use.
var notGitLab = map[string]bool{"github.com": true, "bitbucket.org": true, "codeberg.org": true}

// remoteGitLab is the GitLab of the git checkout around the working
// directory, looked for once: its origin remote's, else the host all its
// remotes share (other forges' aside); nil outside a checkout or when the
// remotes disagree. An http(s) remote gives its scheme, host and port; an
// ssh one https://host, the ssh port not being the web server's (what glab
// assumes too), unless glab's config gives that host an api_host.
func (g *GitLabFlags) remoteGitLab() *remoteURL {
	if g.remoteLooked {
		return g.remote
	}
	g.remoteLooked = true
	wd, err := os.Getwd()
	if err != nil {
		return nil
	}
	var candidates []gitremote.Remote
	for _, r := range gitremote.Remotes(wd) {
		// A plain http remote would have the token cross the network
		// in cleartext: only a GitLab the user names may be http.
		if !notGitLab[r.Host] && r.Scheme != "http" {
			candidates = append(candidates, r)
		}
	}
	if len(candidates) == 0 {
		return nil
	}
	r := candidates[0]
	for _, o := range candidates[1:] {
		if r.Name != "origin" && o.Host != r.Host {
			return nil // no origin, and remotes on several hosts
		}
	}
	g.remote = &remoteURL{remote: r, url: r.WebURL()}
	switch {
	case r.Web() && r.Port != "":
		g.remote.how = "an " + r.Scheme + " URL: its host and port"
	case r.Web():
		g.remote.how = "an " + r.Scheme + " URL"
	default:
		g.remote.how = "an " + r.Scheme + " URL: https on the default port, as glab assumes"
		if api, ok := gitlab.GlabAPIURL(r.Host); ok {
			g.remote.url = api
			g.remote.how = "an " + r.Scheme + " URL, and glab's api_host for " + r.Host
		}
	}
	return g.remote
}

// ResolvedProject is --project, else CI_PROJECT_ID inside a CI job.
func (g *GitLabFlags) ResolvedProject() string {
	if g.Project != "" {
		return g.Project
	}
	return os.Getenv("CI_PROJECT_ID")
}

// Options are the client options for the URL and the first credential of
// the chain (--gitlab-token-file, GITLAB_TOKEN, CI_JOB_TOKEN, glab's
// config), with retry notices on errOut.
func (g *GitLabFlags) Options(errOut io.Writer) (gitlab.Options, error) {
	url := g.ResolvedURL()
	creds, err := g.Credentials()
	if err != nil {
		return gitlab.Options{}, err
	}
	timeout, err := g.RequestTimeout()
	if err != nil {
		return gitlab.Options{}, err
	}
	g.WarnCleartext(errOut, url, "the GitLab token")
	return gitlab.Options{URL: url, Credentials: creds, Log: errOut, RequestTimeout: timeout}, nil
}

// Client is f's GitLab client for Options.
func (g *GitLabFlags) Client(f Factory, errOut io.Writer) (*gitlab.Client, error) {
	o, err := g.Options(errOut)
	if err != nil {
		return nil, err
	}
	return f.GitLab(o)
}

// WarnCleartext warns, once per command and host, that what is sent to
// rawURL crosses the network unencrypted.
func (g *GitLabFlags) WarnCleartext(errOut io.Writer, rawURL, what string) {
	if !gitlab.Cleartext(rawURL) {
		return
	}
	u, err := neturl.Parse(rawURL)
	if err != nil {
		return
	}
	if g.warned == nil {
		g.warned = map[string]bool{}
	}
	if g.warned[u.Host] {
		return
	}
	g.warned[u.Host] = true
	fmt.Fprintf(errOut, "warning: %s goes to %s over plain http, readable by anyone on the network path; use https\n", what, u.Host)
}

// ProjectRef is --project, else CI_PROJECT_ID in a CI job, else the project
// of the git checkout around the working directory when its remote is on the
// same GitLab (which errOut then names).
func (g *GitLabFlags) ProjectRef(errOut io.Writer) (gitlab.ProjectRef, error) {
	if p := g.ResolvedProject(); p != "" {
		ref, err := gitlab.ParseProject(p)
		if err != nil {
			return gitlab.ProjectRef{}, fmt.Errorf("--project: %w", err)
		}
		return ref, nil
	}
	if wd, err := os.Getwd(); err == nil {
		if path, remote, ok := gitremote.Project(wd, g.resolveURL()); ok {
			if ref, err := gitlab.ParseProject(path); err == nil {
				if g.fromRemote() && !g.remoteNoted && g.remote.remote.Name == remote && errOut != io.Discard {
					g.noteRemote(errOut, ref.String()) // one line for both
				} else {
					g.ResolvedURL() // its own note, when due
					fmt.Fprintf(errOut, "using project %s (from the git remote %q)\n", ref, remote)
				}
				return ref, nil
			}
		}
	}
	if r, other := g.remoteElsewhere(); other != "" {
		return gitlab.ProjectRef{}, fmt.Errorf("no project: the git remote %q is on %s, and the GitLab is %s: pass --project GROUP/PROJECT (the project that holds the agent), or --gitlab-url %s for the remote's project",
			r.Name, r.Host, other, r.WebURL())
	}
	return gitlab.ProjectRef{}, fmt.Errorf("no project: pass --project GROUP/PROJECT (the project that holds the agent), or run inside a clone of it")
}

// remoteElsewhere is the git remote that ProjectRef could not take a
// project from because it is on another host than the GitLab in use, and
// that GitLab's host with where its URL came from; "" when there is none.
func (g *GitLabFlags) remoteElsewhere() (gitremote.Remote, string) {
	url, source := g.givenURL()
	switch {
	case url == "" && g.remoteGitLab() != nil:
		url, source = g.remote.url, "from the git remote "+strconv.Quote(g.remote.remote.Name)
	case url == "":
		url, source = defaultGitLabURL, "the default"
	}
	u, err := neturl.Parse(url)
	if err != nil {
		return gitremote.Remote{}, ""
	}
	wd, err := os.Getwd()
	if err != nil {
		return gitremote.Remote{}, ""
	}
	for _, r := range gitremote.Remotes(wd) {
		if !notGitLab[r.Host] && !strings.EqualFold(r.Host, u.Hostname()) {
			return r, u.Host + " (" + source + ")"
		}
	}
	return gitremote.Remote{}, ""
}

// outputOnly is the Complete and Validate of a command whose only input is
// -o.
type outputOnly struct{ Output *OutputFlags }

// Complete has nothing to read.
func (o *outputOnly) Complete(*cobra.Command, []string) error { return nil }

// Validate checks -o.
func (o *outputOnly) Validate() error { return o.Output.Validate() }

// command finishes cmd as a command that o runs with no arguments, taking
// -o.
func (oo *outputOnly) command(o options, cmd *cobra.Command) *cobra.Command {
	oo.Output.AddFlags(cmd)
	return leaf(o, cobra.NoArgs, cmd)
}

// OutputFlags is -o for a command that prints a result: the formats it
// takes, the first the default. A list takes kubectl's list formats too
// (name, wide, jsonpath=, custom-columns=) and --no-headers.
type OutputFlags struct {
	Format    string
	NoHeaders bool
	allowed   []string
	list      bool
}

// NewOutputFlags accepts the formats allowed, the first the default.
func NewOutputFlags(allowed ...string) *OutputFlags { return &OutputFlags{allowed: allowed} }

// newListOutputFlags is NewOutputFlags for a command that prints a list
// (a ui.List): kubectl's list formats and --no-headers come with it.
func newListOutputFlags(allowed ...string) *OutputFlags {
	return &OutputFlags{allowed: append(allowed, ui.Wide, ui.Name, ui.JSONPath+"=TEMPLATE", ui.CustomColumns+"=SPEC"), list: true}
}

// AddFlags binds -o (and, for a list, --no-headers) to cmd; -o completes to
// the formats allowed.
func (o *OutputFlags) AddFlags(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&o.Format, "output", "o", "", "output format: "+strings.Join(o.allowed, ", ")+" (default "+o.allowed[0]+")")
	if o.list {
		cmd.Flags().BoolVar(&o.NoHeaders, "no-headers", false, "print tables (the default, -o wide, -o custom-columns) without their header row")
	}
	_ = cmd.RegisterFlagCompletionFunc("output", o.complete)
}

// complete offers the formats, jsonpath= and custom-columns= without their
// templates.
func (o *OutputFlags) complete(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	out := make([]cobra.Completion, len(o.allowed))
	for i, a := range o.allowed {
		out[i], _, _ = strings.Cut(a, "TEMPLATE")
		out[i], _, _ = strings.Cut(out[i], "SPEC")
	}
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
}

// Validate settles the format, the default when none was given; a
// template of jsonpath= or custom-columns= is checked here.
func (o *OutputFlags) Validate() error {
	if o.Format == "" {
		o.Format = o.allowed[0]
		return nil
	}
	name, _, withArg := strings.Cut(o.Format, "=")
	for _, a := range o.allowed {
		if allowed, _, takesArg := strings.Cut(a, "="); allowed == name && takesArg == withArg {
			_, err := ui.ParseFormat(o.Format)
			return err
		}
	}
	return fmt.Errorf("unknown output format %q: use one of %s", o.Format, strings.Join(o.allowed, ", "))
}

// Print writes result to w in the format chosen (ui.Format.Print): its
// document for json and yaml, what a template takes from it for jsonpath
// and custom-columns, a list's names or wide table, else its text form,
// coloured on a terminal unless noColor (--no-color).
func (o *OutputFlags) Print(w io.Writer, noColor bool, result any) error {
	f, err := ui.ParseFormat(o.Format)
	if err != nil {
		return err
	}
	f.NoHeaders = o.NoHeaders
	return f.Print(w, ui.ColorEnabled(w, noColor), result)
}

// Text reports whether the format is a text form for people rather than
// for scripts: what a command says on stderr about an empty result is for
// people only.
func (o *OutputFlags) Text() bool {
	f, _ := ui.ParseFormat(o.Format)
	return !f.Document()
}

// orEmpty is s, or an empty list for nil: a result's lists print as [],
// never null (a script's jq '.tokens[]' fails on null).
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// newKubeFlags are kubectl's flags (--kubeconfig, --context, -n, ...) for a
// command that talks to a cluster.
func newKubeFlags(cmd *cobra.Command) *genericclioptions.ConfigFlags {
	f := genericclioptions.NewConfigFlags(true)
	shared := cmd.Flags().Lookup(requestTimeoutFlag) // the GitLab flags came first
	if shared != nil {
		f.Timeout = nil
	}
	f.AddFlags(cmd.Flags())
	if shared != nil {
		v := shared.Value.String()
		f.Timeout = &v
		shared.Value = &stringFlag{&v}
		shared.Usage = sharedRequestTimeoutUsage
	}
	return f
}

// stringFlag is a string flag's value kept where another reads it.
type stringFlag struct{ p *string }

func (s *stringFlag) String() string     { return *s.p }
func (s *stringFlag) Set(v string) error { *s.p = v; return nil }
func (s *stringFlag) Type() string       { return "string" }

// namespaceFlag is -n as given, "" when not given (so that a default of the
// agent's own wins over the kubeconfig context's).
func namespaceFlag(cmd *cobra.Command, f *genericclioptions.ConfigFlags) string {
	if cmd.Flags().Changed("namespace") && f.Namespace != nil {
		return *f.Namespace
	}
	return ""
}
