package cmd

import (
	"context"
	"fmt"
	"io"
	neturl "net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitremote"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/ui"
)

// Flags belong to the commands that honour them (as kubectl's PrintFlags and
// helm's bindOutputFlag): each group below is added only where it means
// something, so that anywhere else it is an "unknown flag" error.

// defaultGitLabURL is used when neither --gitlab-url nor GITLAB_URL nor
// CI_SERVER_URL says otherwise.
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
}

// Credentials is the first credential of the chain (--gitlab-token-file,
// GITLAB_TOKEN, CI_JOB_TOKEN, glab's config) for the resolved URL, found
// once per command.
func (g *GitLabFlags) Credentials() (gitlab.Credentials, error) {
	url := g.ResolvedURL()
	if g.creds == nil || g.credsFor != url {
		ctx := context.Background()
		if g.cmd != nil && g.cmd.Context() != nil {
			ctx = g.cmd.Context()
		}
		c, err := gitlab.FindCredentials(ctx, url, g.TokenFile)
		g.creds, g.credsErr, g.credsFor = &c, err, url
	}
	return *g.creds, g.credsErr
}

// AddFlags binds the GitLab flags to cmd; withProject adds --project.
func (g *GitLabFlags) AddFlags(cmd *cobra.Command, withProject bool) {
	g.cmd = cmd
	f := cmd.Flags()
	f.StringVar(&g.URL, "gitlab-url", "", "GitLab instance URL (default: $GITLAB_URL, in CI $CI_SERVER_URL, else "+defaultGitLabURL+")")
	f.StringVar(&g.TokenFile, "gitlab-token-file", "", "read the GitLab token from FILE (default: $GITLAB_TOKEN, in CI $CI_JOB_TOKEN, else glab's stored token)")
	if withProject {
		f.StringVar(&g.Project, "project", "", "GitLab project that holds the agent, as a path (group/project) or numeric ID (default: $CI_PROJECT_ID in CI, else the git remote's)")
	}
}

// ResolvedURL is --gitlab-url, else GITLAB_URL, else CI_SERVER_URL (set in
// every GitLab CI job), else https://gitlab.com.
func (g *GitLabFlags) ResolvedURL() string {
	for _, v := range []string{g.URL, os.Getenv("GITLAB_URL"), os.Getenv("CI_SERVER_URL")} {
		if v != "" {
			return strings.TrimRight(v, "/")
		}
	}
	return defaultGitLabURL
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
	g.WarnCleartext(errOut, url, "the GitLab token")
	return gitlab.Options{URL: url, Credentials: creds, Log: errOut}, nil
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
		if path, remote, ok := gitremote.Project(wd, g.ResolvedURL()); ok {
			if ref, err := gitlab.ParseProject(path); err == nil {
				fmt.Fprintf(errOut, "using project %s (from the git remote %q)\n", ref, remote)
				return ref, nil
			}
		}
	}
	return gitlab.ProjectRef{}, fmt.Errorf("no project: pass --project GROUP/PROJECT (the project that holds the agent), or run inside a clone of it")
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
	f.AddFlags(cmd.Flags())
	return f
}

// namespaceFlag is -n as given, "" when not given (so that a default of the
// agent's own wins over the kubeconfig context's).
func namespaceFlag(cmd *cobra.Command, f *genericclioptions.ConfigFlags) string {
	if cmd.Flags().Changed("namespace") && f.Namespace != nil {
		return *f.Namespace
	}
	return ""
}
