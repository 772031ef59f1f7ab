package cmd

import (
	"context"
	"fmt"
	"io"
	neturl "net/url"
	"os"
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

// withRequestTimeout is f's GitLab clients with --request-timeout, for
// the clients a package makes with the Factory's maker (pkg/tunnel's).
func (g *GitLabFlags) withRequestTimeout(f Factory) (func(gitlab.Options) (*gitlab.Client, error), error) {
	d, err := g.RequestTimeout()
	if err != nil {
		return nil, err
	}
	return func(o gitlab.Options) (*gitlab.Client, error) {
		if o.RequestTimeout == 0 {
			o.RequestTimeout = d
		}
		return f.GitLab(o)
	}, nil
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
// takes, the first the default.
type OutputFlags struct {
	Format  string
	allowed []string
}

// NewOutputFlags accepts the formats allowed, the first the default.
func NewOutputFlags(allowed ...string) *OutputFlags { return &OutputFlags{allowed: allowed} }

// AddFlags binds -o to cmd.
func (o *OutputFlags) AddFlags(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&o.Format, "output", "o", "", "output format: "+strings.Join(o.allowed, ", ")+" (default "+o.allowed[0]+")")
}

// Validate settles the format, the default when none was given.
func (o *OutputFlags) Validate() error {
	if o.Format == "" {
		o.Format = o.allowed[0]
		return nil
	}
	for _, a := range o.allowed {
		if o.Format == a {
			return nil
		}
	}
	return fmt.Errorf("unknown output format %q: use one of %s", o.Format, strings.Join(o.allowed, ", "))
}

// PrintDocument prints v for -o json or yaml and reports whether it did;
// other formats are the command's own.
func (o *OutputFlags) PrintDocument(w io.Writer, v any) (bool, error) {
	switch o.Format {
	case "json":
		return true, ui.PrintJSON(w, v)
	case "yaml":
		return true, ui.PrintYAML(w, v)
	}
	return false, nil
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
