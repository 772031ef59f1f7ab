package cmd

import (
	"fmt"
	"io"
	"os"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/version"
)

// GitLabClient builds the GitLab client from --gitlab-url, the credentials in
// the environment (or --gitlab-token-file), with retry notices on errOut.
func (g *GlobalOptions) GitLabClient(errOut io.Writer) (*gitlab.Client, error) {
	creds, err := gitlab.CredentialsFromEnv(g.GitLabTokenFile)
	if err != nil {
		return nil, err
	}
	return gitlab.New(gitlab.Options{
		URL:         g.ResolvedGitLabURL(),
		Credentials: creds,
		Log:         errOut,
		UserAgent:   "kubectl-gitlab-agent/" + version.Get().Version,
	})
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
