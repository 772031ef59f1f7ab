package gitlab

import (
	"context"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

// sharing is org/team/app with an agent of its own, and platform agents
// shared with it through a group above it (ci_access and user_access) and
// by name; one agent names another project.
func sharing(t *testing.T) (*fakegitlab.Server, string, *fakegitlab.Project) {
	t.Helper()
	fake := fakegitlab.New()
	t.Cleanup(fake.Close)
	u, tok := fake.AddUser("dev")
	infra := fake.AddProject("org/platform/infra")
	app := fake.AddProject("org/team/app")
	fake.SetRole(app, u, fakegitlab.Developer)
	fake.SetAgentConfig(fake.AddAgent(infra, "prod", u), `
ci_access:
  groups:
  - id: org
    environments: [production]
    resource_management: {enabled: true}
user_access:
  access_as: {user: {}}
  groups: [{id: org/team}]
`)
	fake.SetAgentConfig(fake.AddAgent(infra, "staging", u), `
ci_access:
  projects: [{id: org/team/app, access_as: {agent: {}}, default_namespace: app}]
`)
	fake.SetAgentConfig(fake.AddAgent(infra, "other", u), `
ci_access:
  projects: [{id: org/team/other}]
`)
	fake.AddAgent(app, "own", u)
	return fake, tok, app
}

type row struct {
	Project, Name, Access, AccessAs string
	Envs                            []string
	RM                              bool
}

func rows(list []AuthorizedAgent) []row {
	var out []row
	for _, a := range list {
		out = append(out, row{a.Project, a.Name, a.Access, a.AccessAs, a.Environments, a.ResourceManagement})
	}
	return out
}

func TestAuthorizedAgents(t *testing.T) {
	fake, tok, app := sharing(t)
	c := gqlClient(t, fake, tok, nil)
	want := []row{
		{"org/platform/infra", "prod", AccessCI, "agent", []string{"production"}, true},
		{"org/platform/infra", "prod", AccessUser, "user", []string{}, false},
		{"org/platform/infra", "staging", AccessCI, "agent", []string{}, false},
		{"org/team/app", "own", AccessCI, "agent", []string{}, false},
	}
	for _, ref := range []ProjectRef{{Path: "org/team/app"}, {ID: app.ID}} {
		got, err := c.AuthorizedAgents(context.Background(), ref)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(rows(got), want) {
			t.Errorf("%v:\n got %+v\nwant %+v", ref, rows(got), want)
		}
		if len(got) == 4 && (got[2].Config["default_namespace"] != "app" || got[0].ID == 0) {
			t.Errorf("config or id lost: %+v", got)
		}
	}
}

func TestAuthorizedAgentsErrors(t *testing.T) {
	fake, _, _ := sharing(t)
	_, err := gqlClient(t, fake, "glpat-wrong", nil).AuthorizedAgents(context.Background(), ProjectRef{Path: "org/team/app"})
	if !IsClass(err, ClassUnauthenticated) {
		t.Errorf("bad token: %v (%T), want unauthenticated", err, err)
	}
	_, tok := fake.AddUser("stranger")
	_, err = gqlClient(t, fake, tok, nil).AuthorizedAgents(context.Background(), ProjectRef{Path: "org/team/app"})
	if !IsClass(err, ClassNotFound) {
		t.Errorf("unseen project: %v, want not found", err)
	}
}

// TestAuthorizedAgentsNamesOnlyInVariables attacks the queries with a
// project path and an agent name that would change them if written into
// the query text.
func TestAuthorizedAgentsNamesOnlyInVariables(t *testing.T) {
	fake := fakegitlab.New()
	t.Cleanup(fake.Close)
	u, tok := fake.AddUser("dev")
	path := `ev"il/pro"j){ __schema { types { name } } } #`
	p := fake.AddProject(path)
	fake.SetRole(p, u, fakegitlab.Developer)
	name := `a"}) { id } project(fullPath:"x`
	fake.SetAgentConfig(fake.AddAgent(p, name, u), "user_access:\n  access_as: {agent: {}}\n  projects: [{id: "+strconv.Quote(path)+"}]\n")
	rec := &recorder{}
	got, err := gqlClient(t, fake, tok, rec).AuthorizedAgents(context.Background(), ProjectRef{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != name || got[0].Project != path || got[1].AccessAs != "agent" {
		t.Fatalf("got %+v", got)
	}
	for _, b := range rec.bodies {
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(b, &q); err != nil {
			t.Fatal(err)
		}
		if q.Query != ciAccessQuery && q.Query != userAccessQuery {
			t.Errorf("query text is not one of the constants:\n%s", q.Query)
		}
		for _, bad := range []string{`ev"il`, `a"}`, "__schema"} {
			if strings.Contains(q.Query, bad) {
				t.Errorf("query text holds %q", bad)
			}
		}
	}
}

// TestAuthorizedAgentsPages reads more agents than a page holds.
func TestAuthorizedAgentsPages(t *testing.T) {
	fake, tok, app := sharing(t)
	u, _ := fake.AddUser("maker")
	for i := range 70 {
		fake.AddAgent(app, "a"+strconv.Itoa(i), u)
	}
	got, err := gqlClient(t, fake, tok, nil).AuthorizedAgents(context.Background(), ProjectRef{Path: "org/team/app"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 74 {
		t.Errorf("got %d authorizations, want 74", len(got))
	}
}
