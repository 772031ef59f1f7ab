package install

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/agentconfig"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

const seededAgentConfig = `# prod cluster. Ask #platform before changing.
ci_access:
  projects:
  - id: apps/web   # the shop
    default_namespace: web
  groups:
    - id: platform
gitops:          # unknown to us, kept
  manifest_projects: [{id: infra/manifests}]
`

func TestEditConfig(t *testing.T) {
	path := agentconfig.Path("prod")
	tests := []struct {
		name     string
		seed     string // the file on main before ("": none)
		opts     ConfigEditOptions
		changes  []string
		action   string // the commit's, "" for none
		want     string // the file on main after
		wantDry  string // a dry run's Content
		message  string // the commit message's start
		noChange bool
	}{{
		name:    "an absent file is created",
		opts:    ConfigEditOptions{Add: map[string][]string{"user_access.projects": {"infra/agents"}}, AccessAs: "agent"},
		changes: []string{"add user_access.projects infra/agents", "set user_access.access_as agent"},
		action:  "create",
		want:    "user_access:\n  access_as:\n    agent: {}\n  projects:\n  - id: infra/agents\n",
		message: "Configure agent prod: add user_access.projects infra/agents, set user_access.access_as agent\n\nCommitted by kubectl gitlab-agent.",
	}, {
		name:    "every other byte stays",
		seed:    seededAgentConfig,
		opts:    ConfigEditOptions{Add: map[string][]string{"ci_access.projects": {"apps/worker"}}, Message: "let the worker in"},
		changes: []string{"add ci_access.projects apps/worker"},
		action:  "update",
		want:    strings.Replace(seededAgentConfig, "    default_namespace: web\n", "    default_namespace: web\n  - id: apps/worker\n", 1),
		message: "let the worker in",
	}, {
		name: "removals before additions, keys in order, no-ops left out",
		seed: seededAgentConfig,
		opts: ConfigEditOptions{
			Add:    map[string][]string{"ci_access.projects": {"apps/web", "apps/api"}, "ci_access.groups": {"sre"}},
			Remove: map[string][]string{"ci_access.projects": {"apps/web"}, "user_access.groups": {"nobody"}},
		},
		changes: []string{"add ci_access.groups sre", "remove ci_access.projects apps/web", "add ci_access.projects apps/web", "add ci_access.projects apps/api"},
		action:  "update",
	}, {
		name:     "nothing to change, nothing committed",
		seed:     seededAgentConfig,
		opts:     ConfigEditOptions{Add: map[string][]string{"ci_access.projects": {"apps/web"}}, Remove: map[string][]string{"user_access.groups": {"platform"}}},
		want:     seededAgentConfig,
		noChange: true,
	}, {
		name:    "a dry run commits nothing and says what it would",
		seed:    seededAgentConfig,
		opts:    ConfigEditOptions{Remove: map[string][]string{"ci_access.groups": {"platform"}}, DryRun: true},
		changes: []string{"remove ci_access.groups platform"},
		want:    seededAgentConfig,
		wantDry: strings.Replace(seededAgentConfig, "  groups:\n    - id: platform\n", "", 1),
	}, {
		name:     "a dry run that changes nothing has no content",
		seed:     seededAgentConfig,
		opts:     ConfigEditOptions{Add: map[string][]string{"ci_access.groups": {"platform"}}, DryRun: true},
		want:     seededAgentConfig,
		noChange: true,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			w.gl.AddAgent(w.project, "prod", w.user)
			if tt.seed != "" {
				w.gl.SetFile(w.project, "main", path, []byte(tt.seed))
			}
			o := tt.opts
			o.Project, o.Agent = gitlab.ProjectRef{Path: w.project.PathWithNS}, gitlab.AgentRef{Name: "prod"}
			res, err := EditConfig(context.Background(), w.env(), o)
			if err != nil {
				t.Fatal(err)
			}
			if res.Agent != "prod" || res.Branch != "main" || res.Path != path {
				t.Errorf("file %+v", res.ConfigFile)
			}
			if !slices.Equal(res.Changes, tt.changes) {
				t.Errorf("changes %q, want %q", res.Changes, tt.changes)
			}
			commits := w.gl.Commits()
			wantCommits := 0
			if tt.action != "" {
				wantCommits = 1
			}
			if res.Committed != (tt.action != "") || len(commits) != wantCommits {
				t.Fatalf("committed %v in %d commits, want %q", res.Committed, len(commits), tt.action)
			}
			if tt.action != "" {
				c := commits[0]
				if c.Action != tt.action || c.Branch != "main" || c.Path != path || c.AuthorID != w.user.ID || !strings.HasPrefix(c.Message, tt.message) {
					t.Errorf("commit %s %s:%s by %d, %q", c.Action, c.Branch, c.Path, c.AuthorID, c.Message)
				}
			}
			got, _ := w.gl.File(w.project, "main", path)
			if tt.want != "" && string(got) != tt.want {
				t.Errorf("the file on main:\n%s\nwant:\n%s", got, tt.want)
			}
			if string(res.Content) != tt.wantDry {
				t.Errorf("dry run content:\n%s\nwant:\n%s", res.Content, tt.wantDry)
			}
			if tt.noChange && (len(res.Changes) != 0 || res.Committed) {
				t.Errorf("a no-op changed %q", res.Changes)
			}
		})
	}
}

func TestEditConfigFindsTheFile(t *testing.T) {
	w := newWorld(t)
	a := w.gl.AddAgent(w.project, "prod", w.user)
	path := agentconfig.Path("prod")
	w.gl.SetFile(w.project, "dev", path, []byte("# dev\n"))
	project := gitlab.ProjectRef{Path: w.project.PathWithNS}

	// By ID, on another branch.
	res, err := EditConfig(context.Background(), w.env(), ConfigEditOptions{Project: project, Agent: gitlab.AgentRef{ID: a.ID}, Branch: "dev",
		Add: map[string][]string{"ci_access.projects": {"apps/web"}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Agent != "prod" || res.Branch != "dev" || !res.Committed {
		t.Errorf("by ID on dev: %+v", res)
	}
	if got, _ := w.gl.File(w.project, "dev", path); string(got) != "# dev\nci_access:\n  projects:\n  - id: apps/web\n" {
		t.Errorf("dev's file: %q", got)
	}
	if _, onMain := w.gl.File(w.project, "main", path); onMain {
		t.Error("main was written")
	}

	// An ID that is no agent: nothing read, nothing committed.
	_, err = EditConfig(context.Background(), w.env(), ConfigEditOptions{Project: project, Agent: gitlab.AgentRef{ID: a.ID + 1000}, AccessAs: "user"})
	if err == nil || len(w.gl.Commits()) != 1 {
		t.Errorf("an unknown agent: %v, %d commits", err, len(w.gl.Commits()))
	}

	f, err := FindConfigFile(context.Background(), w.client, project, gitlab.AgentRef{Name: "staging"}, "")
	if err != nil || f != (ConfigFile{Agent: "staging", Branch: "main", Path: agentconfig.Path("staging")}) {
		t.Errorf("a name is taken as it is: %+v, %v", f, err)
	}
}

func TestEditConfigRefusals(t *testing.T) {
	w := newWorld(t)
	w.gl.AddAgent(w.project, "prod", w.user)
	path := agentconfig.Path("prod")
	project := gitlab.ProjectRef{Path: w.project.PathWithNS}
	edit := ConfigEditOptions{Project: project, Agent: gitlab.AgentRef{Name: "prod"}, Add: map[string][]string{"ci_access.groups": {"sre"}}}

	// A file that does not parse is the user's to fix.
	w.gl.SetFile(w.project, "main", path, []byte("ci_access:\n  projects: [\n"))
	_, err := EditConfig(context.Background(), w.env(), edit)
	var cfe *ConfigFileError
	if !errors.As(err, &cfe) || !strings.Contains(err.Error(), path+":2:13: invalid YAML") {
		t.Errorf("a broken file: %v", err)
	}

	// GitLab refuses the commit: the error says so.
	w.gl.SetFile(w.project, "main", path, []byte("ci_access: {}\n"))
	w.gl.SetRole(w.project, w.user, fakegitlab.Developer) // main is protected
	_, err = EditConfig(context.Background(), w.env(), edit)
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("a refused commit: %v", err)
	}
	if n := len(w.gl.Commits()); n != 0 {
		t.Errorf("%d commits", n)
	}
}
