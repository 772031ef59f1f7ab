package install

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/agentconfig"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
)

// ConfigFileError is an agent config file that cannot be parsed: install
// leaves it to the user (fix it, or skip the config step).
type ConfigFileError struct{ Err error }

func (e *ConfigFileError) Error() string { return e.Err.Error() }
func (e *ConfigFileError) Unwrap() error { return e.Err }

// LoadAgentConfig reads and parses the agent's config file on branch; an
// absent file is an empty config and a nil previous file (so that a commit
// creates it). A file that does not parse is a *ConfigFileError.
func LoadAgentConfig(ctx context.Context, gl *gitlab.Client, ref gitlab.ProjectRef, name, branch string) (*agentconfig.Config, *gitlab.File, error) {
	path := agentconfig.Path(name)
	prev, found, err := gl.GetFile(ctx, ref, path, branch)
	if err != nil {
		return nil, nil, err
	}
	var src []byte
	if !found {
		prev = nil
	} else {
		src = prev.Content
	}
	cfg, err := agentconfig.Parse(path, src)
	var pe *agentconfig.PositionError
	if errors.As(err, &pe) {
		return nil, nil, &ConfigFileError{Err: err}
	}
	return cfg, prev, err
}

// configChange is what mergeConfig did or, in a dry run, would do.
type configChange struct {
	committed bool
	// what names the file, branch and edits; "" when nothing changes.
	what string
}

// mergeConfig makes sure the agent's config file grants the config project
// CI access and user access (as the agent, unless it already names a mode),
// keeping everything else. When the file changed between the read and the
// commit (another install, a push), it is read and merged again.
func (a *action) mergeConfig(ctx context.Context, p *gitlab.Project, name string, dryRun bool) (configChange, error) {
	for attempt := 1; ; attempt++ {
		c, err := a.mergeConfigOnce(ctx, p, name, dryRun)
		if err == nil || attempt == 3 || !gitlab.IsClass(err, gitlab.ClassConflict) {
			return c, err
		}
	}
}

func (a *action) mergeConfigOnce(ctx context.Context, p *gitlab.Project, name string, dryRun bool) (configChange, error) {
	ref := gitlab.ProjectRef{Path: p.PathWithNamespace}
	cfg, prev, err := LoadAgentConfig(ctx, a.env.GitLab, ref, name, p.DefaultBranch)
	if err != nil {
		return configChange{}, err
	}
	var done []string
	for _, section := range []string{agentconfig.CIAccess, agentconfig.UserAccess} {
		ok, err := cfg.AddAccess(section, agentconfig.Projects, p.PathWithNamespace)
		if err != nil {
			return configChange{}, err
		}
		if ok {
			done = append(done, section+" for "+p.PathWithNamespace)
		}
	}
	if cfg.AccessAs(agentconfig.UserAccess) == "" {
		if _, err := cfg.SetAccessAs(agentconfig.UserAccess, "agent"); err != nil {
			return configChange{}, err
		}
		done = append(done, "user_access as the agent")
	}
	if len(done) == 0 {
		return configChange{}, nil
	}
	c := configChange{what: fmt.Sprintf("%s to %s in %s (%s)", agentconfig.Path(name), p.DefaultBranch, ref, strings.Join(done, ", "))}
	if dryRun {
		return c, nil
	}
	msg := fmt.Sprintf("Configure agent %s: %s\n\nCommitted by kubectl gitlab-agent install.", name, strings.Join(done, ", "))
	if err := a.env.GitLab.CommitFile(ctx, ref, p.DefaultBranch, agentconfig.Path(name), cfg.Bytes(), msg, prev); err != nil {
		return configChange{}, err
	}
	c.committed = true
	return c, nil
}
