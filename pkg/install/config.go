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
	e, err := a.editConfig(ctx, p, name, p.DefaultBranch)
	if err != nil || len(e.done) == 0 {
		return configChange{}, err
	}
	c := configChange{what: fmt.Sprintf("%s to %s in %s (%s)", agentconfig.Path(name), p.DefaultBranch, ref, strings.Join(e.done, ", "))}
	if dryRun {
		return c, nil
	}
	msg := fmt.Sprintf("Configure agent %s: %s\n\nCommitted by kubectl gitlab-agent install.", name, strings.Join(e.done, ", "))
	if err := a.env.GitLab.CommitFile(ctx, ref, p.DefaultBranch, agentconfig.Path(name), e.content, msg, e.prev); err != nil {
		return configChange{}, err
	}
	c.committed = true
	return c, nil
}

// configEdit is the agent's config file on a branch with the project's
// access merged in: its new content, the file as read (nil: absent), and
// the edits made (none: the file stays as it is).
type configEdit struct {
	content []byte
	prev    *gitlab.File
	done    []string
}

// editConfig grants the config project CI access and user access (as the
// agent, unless the file already names a mode) in the agent's config file
// on branch, keeping everything else; nothing is committed.
func (a *action) editConfig(ctx context.Context, p *gitlab.Project, name, branch string) (configEdit, error) {
	ref := gitlab.ProjectRef{Path: p.PathWithNamespace}
	cfg, prev, err := LoadAgentConfig(ctx, a.env.GitLab, ref, name, branch)
	if err != nil {
		return configEdit{}, err
	}
	e := configEdit{prev: prev}
	for _, section := range []string{agentconfig.CIAccess, agentconfig.UserAccess} {
		ok, err := cfg.AddAccess(section, agentconfig.Projects, p.PathWithNamespace)
		if err != nil {
			return configEdit{}, err
		}
		if ok {
			e.done = append(e.done, section+" for "+p.PathWithNamespace)
		}
	}
	if cfg.AccessAs(agentconfig.UserAccess) == "" {
		if _, err := cfg.SetAccessAs(agentconfig.UserAccess, "agent"); err != nil {
			return configEdit{}, err
		}
		e.done = append(e.done, "user_access as the agent")
	}
	e.content = cfg.Bytes()
	return e, nil
}

// gitOpsRefusedSince is the first KAS major version that refuses an agent
// config with the removed gitops key (pull-based GitOps; the agent never
// connects): Flux replaces it.
const gitOpsRefusedSince = 18

// KASRefusesGitOps says whether KAS at version kasVersion refuses an agent
// config with gitops (18.0 and later, pre-releases of 18.0 included);
// false when the version is not known.
func KASRefusesGitOps(kasVersion string) bool {
	v, _, ok := splitVersion(kasVersion)
	return ok && v[0] >= gitOpsRefusedSince
}

// HasGitOps says whether cfg sets the gitops key, and names it as the file
// has it (gitops.manifest_projects when it lists those).
func HasGitOps(cfg *agentconfig.Config) (string, bool) {
	switch {
	case cfg == nil || !cfg.Has("gitops"):
		return "", false
	case cfg.Has("gitops", "manifest_projects"):
		return "gitops.manifest_projects", true
	}
	return "gitops", true
}

// MoveToFlux is the fix for agent name's config that sets gitops.
func MoveToFlux(name string) string {
	return fmt.Sprintf("move its deployments to Flux (kubectl gitlab-agent bootstrap, to come; until then Flux (flux bootstrap gitlab)) and remove gitops from %s", agentconfig.Path(name))
}

// StaleConfigError is an agent config file that KAS refuses (gitops with
// KAS 18.0 or later): install stops before it registers the agent,
// creates a token or applies anything, since the agent would never
// connect.
type StaleConfigError struct {
	Name, Key, KAS, KASVersion string
}

func (e *StaleConfigError) Error() string {
	return fmt.Sprintf("%s sets %s, which KAS %s at %s refuses (18.0 and later do): agent %q would never connect; %s",
		agentconfig.Path(e.Name), e.Key, e.KASVersion, e.KAS, e.Name, MoveToFlux(e.Name))
}

// refuseStaleConfig stops an install whose agent config file KAS refuses;
// the file is read for it only when KAS's version refuses gitops. With
// NoConfig a file that does not parse is left to the user, as the config
// step leaves it.
func (i *installer) refuseStaleConfig(ctx context.Context) error {
	if !KASRefusesGitOps(i.kas.Version) {
		return nil
	}
	cfg, _, err := LoadAgentConfig(ctx, i.env.GitLab, i.ref, i.o.Name, i.project.DefaultBranch)
	var cfe *ConfigFileError
	if errors.As(err, &cfe) && i.o.NoConfig {
		return nil
	}
	if err != nil {
		return err
	}
	if key, ok := HasGitOps(cfg); ok {
		return &StaleConfigError{Name: i.o.Name, Key: key, KAS: kasHost(i.kas), KASVersion: i.kas.Version}
	}
	return nil
}
