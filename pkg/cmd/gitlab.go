package cmd

import (
	"fmt"
	"io"
	neturl "net/url"
	"os"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/version"
)

// GitLabClient builds the GitLab client from --gitlab-url and the first
// credential of the chain (--gitlab-token-file, GITLAB_TOKEN, CI_JOB_TOKEN,
// glab's config), with retry notices on errOut.
func (g *GlobalOptions) GitLabClient(errOut io.Writer) (*gitlab.Client, error) {
	url := g.ResolvedGitLabURL()
	creds, err := gitlab.FindCredentials(url, g.GitLabTokenFile)
	if err != nil {
		return nil, err
	}
	g.WarnCleartext(errOut, url, "the GitLab token")
	return gitlab.New(gitlab.Options{
		URL:         url,
		Credentials: creds,
		Log:         errOut,
		UserAgent:   "kubectl-gitlab-agent/" + version.Get().Version,
	})
}

// WarnCleartext warns, once per command and host, that what is sent to
// rawURL crosses the network unencrypted.
func (g *GlobalOptions) WarnCleartext(errOut io.Writer, rawURL, what string) {
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
func (g *GlobalOptions) ProjectRef(errOut io.Writer) (gitlab.ProjectRef, error) {
	if p := g.ResolvedProject(); p != "" {
		ref, err := gitlab.ParseProject(p)
		if err != nil {
			return gitlab.ProjectRef{}, fmt.Errorf("--project: %w", err)
		}
		return ref, nil
	}
	if wd, err := os.Getwd(); err == nil {
		if ref, remote, ok := gitlab.ProjectFromGitRemote(wd, g.ResolvedGitLabURL()); ok {
			fmt.Fprintf(errOut, "using project %s (from the git remote %q)\n", ref, remote)
			return ref, nil
		}
	}
	return gitlab.ProjectRef{}, fmt.Errorf("no project: pass --project GROUP/PROJECT (the project that holds the agent), or run inside a clone of it")
}
