package e2e

import (
	"strings"
	"testing"
)

const seededConfig = `# prod cluster. Ask #platform before changing.
ci_access:
  projects:
  - id: apps/web   # the shop
    default_namespace: web
  groups:
    - id: platform
gitops:          # unknown to us, kept
  manifest_projects: [{id: infra/manifests}]
remote_development:
  enabled: true
`

func TestAgentConfigCommands(t *testing.T) {
	t.Parallel()
	g := newGitLab(t)
	g.fake.AddAgent(g.project, "prod", g.maintainer)
	const path = ".gitlab/agents/prod/config.yaml"
	p := []string{"--project", "infra/agents"}

	r := g.run(t, nil, append([]string{"agent", "config", "show", "prod"}, p...)...)
	if r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "runs with the defaults") {
		t.Fatalf("show without a file: %+v", r)
	}
	r = g.run(t, nil, append([]string{"agent", "config", "set", "prod", "--user-access-project", "infra/agents", "--access-as", "agent"}, p...)...)
	if r.code != 0 || len(g.fake.Commits()) != 1 || g.fake.Commits()[0].Action != "create" {
		t.Fatalf("set creating the file: %+v, %d commits", r, len(g.fake.Commits()))
	}
	created, _ := g.fake.File(g.project, "main", path)
	if string(created) != "user_access:\n  access_as:\n    agent: {}\n  projects:\n  - id: infra/agents\n" {
		t.Fatalf("created file: %q", created)
	}

	g.fake.SetFile(g.project, "main", path, []byte(seededConfig))
	r = g.run(t, nil, append([]string{"agent", "config", "set", "prod", "--ci-access-project", "apps/worker"}, p...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "committed "+path+" to main in infra/agents: add ci_access.projects apps/worker") {
		t.Fatalf("set: %+v", r)
	}
	got, _ := g.fake.File(g.project, "main", path)
	want := strings.Replace(seededConfig, "    default_namespace: web\n", "    default_namespace: web\n  - id: apps/worker\n", 1)
	if string(got) != want {
		t.Fatalf("edited file:\n%s\nwant:\n%s", got, want)
	}
	commits := len(g.fake.Commits())

	r = g.run(t, nil, append([]string{"agent", "config", "set", "prod", "--ci-access-project", "apps/worker"}, p...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "nothing to commit") || len(g.fake.Commits()) != commits {
		t.Fatalf("repeated set committed: %+v", r)
	}
	r = g.run(t, nil, append([]string{"agent", "config", "set", "prod", "--remove-ci-access-group", "platform", "--dry-run"}, p...)...)
	if r.code != 0 || strings.Contains(r.stdout, "- id: platform") || !strings.Contains(r.stdout, "apps/worker") || len(g.fake.Commits()) != commits {
		t.Fatalf("dry run: %+v", r)
	}
	r = g.run(t, nil, append([]string{"agent", "config", "show", "prod"}, p...)...)
	if r.code != 0 || r.stdout != want {
		t.Fatalf("show: %q", r.stdout)
	}

	r = g.run(t, []string{"GITLAB_TOKEN=" + g.dToken}, append([]string{"agent", "config", "set", "prod", "--ci-access-group", "sre"}, p...)...)
	wantError(t, r, "403", "Maintainer for a protected branch")

	g.fake.SetFile(g.project, "main", path, []byte("ci_access:\n  projects: [\n"))
	r = g.run(t, nil, append([]string{"agent", "config", "set", "prod", "--ci-access-group", "sre"}, p...)...)
	wantError(t, r, path+":2:13: invalid YAML")
	if len(g.fake.Commits()) != commits {
		t.Fatal("a broken file was committed over")
	}

	r = g.run(t, nil, append([]string{"agent", "config", "set", "prod"}, p...)...)
	wantError(t, r, "nothing to set")
	r = g.run(t, nil, append([]string{"agent", "config", "set", "prod", "--ci-access-project", "not a path"}, p...)...)
	wantError(t, r, `invalid projects entry "not a path"`)
}
