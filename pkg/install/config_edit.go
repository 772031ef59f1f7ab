package install

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/agentconfig"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
)

// ConfigFile is where an agent's config file is: its agent's name (the
// file's folder), the branch and the path.
type ConfigFile struct {
	Agent  string
	Branch string
	Path   string
}

// FindConfigFile says where the config file of agent ref is on branch ("":
// the project's default branch). A name is taken as it is; an ID is looked
// up.
func FindConfigFile(ctx context.Context, gl *gitlab.Client, project gitlab.ProjectRef, ref gitlab.AgentRef, branch string) (ConfigFile, error) {
	name := ref.Name
	if name == "" {
		a, err := gl.FindAgent(ctx, project, ref)
		if err != nil {
			return ConfigFile{}, err
		}
		name = a.Name
	}
	if branch == "" {
		p, err := gl.GetProject(ctx, project)
		if err != nil {
			return ConfigFile{}, err
		}
		if p.DefaultBranch == "" {
			return ConfigFile{}, fmt.Errorf("project %s has no default branch (an empty repository?): pass --branch", project)
		}
		branch = p.DefaultBranch
	}
	return ConfigFile{Agent: name, Branch: branch, Path: agentconfig.Path(name)}, nil
}

// ConfigEditOptions is an edit of an agent's config file.
type ConfigEditOptions struct {
	Project gitlab.ProjectRef
	Agent   gitlab.AgentRef
	// Branch is the branch to read and commit ("": the default branch).
	Branch string
	// Add and Remove list, by "section.kind" (agentconfig's names, e.g.
	// "ci_access.projects"), the entries to add and remove; within a key
	// the removals come first, and the keys go in sorted order.
	Add, Remove map[string][]string
	// AccessAs sets user_access.access_as (agent or user) unless "".
	AccessAs string
	// DryRun edits and commits nothing: the result holds the new file.
	DryRun bool
	// Message is the commit message ("": a summary of the edits).
	Message string
}

// ConfigEditResult is what EditConfig did, or with DryRun would do.
type ConfigEditResult struct {
	ConfigFile
	// Changes are the edits that changed the file, "add ci_access.projects
	// apps/web"; none when the file already said what was asked.
	Changes []string
	// Committed is true when a commit was made.
	Committed bool
	// Content is, in a dry run that changes the file, the file that
	// would be committed.
	Content []byte
}

// EditConfig reads the agent's config file, applies the edits at the YAML
// node level (comments, order and unknown keys stay) and commits the file
// when it changed, unless o.DryRun. An absent file is created; a file that
// does not parse is a *ConfigFileError and nothing is committed.
func EditConfig(ctx context.Context, env Env, o ConfigEditOptions) (*ConfigEditResult, error) {
	gl := env.GitLab
	f, err := FindConfigFile(ctx, gl, o.Project, o.Agent, o.Branch)
	if err != nil {
		return nil, err
	}
	cfg, prev, err := LoadAgentConfig(ctx, gl, o.Project, f.Agent, f.Branch)
	if err != nil {
		return nil, err
	}
	res := &ConfigEditResult{ConfigFile: f}
	keys := map[string][]string{} // the keys of both
	maps.Copy(keys, o.Add)
	maps.Copy(keys, o.Remove)
	for _, key := range slices.Sorted(maps.Keys(keys)) {
		section, kind, _ := strings.Cut(key, ".")
		for _, edit := range []struct {
			verb string
			ids  []string
			do   func(section, kind, id string) (bool, error)
		}{{"remove", o.Remove[key], cfg.RemoveAccess}, {"add", o.Add[key], cfg.AddAccess}} {
			for _, id := range edit.ids {
				changed, err := edit.do(section, kind, id)
				if err != nil {
					return nil, err
				}
				if changed {
					res.Changes = append(res.Changes, fmt.Sprintf("%s %s %s", edit.verb, key, id))
				}
			}
		}
	}
	if o.AccessAs != "" {
		changed, err := cfg.SetAccessAs(agentconfig.UserAccess, o.AccessAs)
		if err != nil {
			return nil, err
		}
		if changed {
			res.Changes = append(res.Changes, "set user_access.access_as "+o.AccessAs)
		}
	}
	switch {
	case len(res.Changes) == 0:
	case o.DryRun:
		res.Content = cfg.Bytes()
	default:
		msg := o.Message
		if msg == "" {
			msg = fmt.Sprintf("Configure agent %s: %s\n\nCommitted by kubectl gitlab-agent.", f.Agent, strings.Join(res.Changes, ", "))
		}
		if err := gl.CommitFile(ctx, o.Project, f.Branch, f.Path, cfg.Bytes(), msg, prev); err != nil {
			return nil, err
		}
		res.Committed = true
	}
	return res, nil
}
