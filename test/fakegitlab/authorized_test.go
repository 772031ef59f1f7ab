package fakegitlab_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

const authorizedQ = `query($path: ID!, $first: Int!, $after: String) {
  project(fullPath: $path) {
    ciAccessAuthorizedAgents(first: $first, after: $after) {
      pageInfo { endCursor hasNextPage }
      nodes { agent { id name project { fullPath } } config }
    }
    userAccessAuthorizedAgents(first: $first, after: $after) {
      pageInfo { endCursor hasNextPage }
      nodes { agent { id name project { fullPath } } config }
    }
  }
}`

// sharingWorld: platform/infra holds agents shared with org/team/app
// (through the group org/team and directly), one that names another
// project, one in another top-level group; app has an agent of its own.
func sharingWorld(t *testing.T) (*fakegitlab.Server, string) {
	t.Helper()
	s := fakegitlab.New()
	t.Cleanup(s.Close)
	u, tok := s.AddUser("dev")
	infra := s.AddProject("org/platform/infra")
	app := s.AddProject("org/team/app")
	outside := s.AddProject("elsewhere/agents")
	s.SetRole(app, u, fakegitlab.Developer)

	prod := s.AddAgent(infra, "prod", u)
	s.SetAgentConfig(prod, `
ci_access:
  groups:
  - id: org
    access_as: {agent: {}}
  - id: ORG/Team
    environments: ["production", "prod/*"]
    resource_management: {enabled: true}
user_access:
  access_as: {user: {}}
  groups:
  - id: org/team
`)
	staging := s.AddAgent(infra, "staging", u)
	s.SetAgentConfig(staging, `
ci_access:
  projects:
  - id: org/team/app
    default_namespace: app
  groups:
  - id: org
`)
	s.SetAgentConfig(s.AddAgent(infra, "other", u), `
ci_access:
  projects: [{id: org/team/not-app}]
  groups: [{id: org/platform}]
user_access:
  projects: [{id: org/team/app-2}]
`)
	s.SetAgentConfig(s.AddAgent(infra, "impersonating", u), `
ci_access:
  projects: [{id: org/team/app, access_as: {impersonate: {username: deployer}}}]
`)
	s.SetAgentConfig(s.AddAgent(outside, "foreign", u), `
ci_access:
  projects: [{id: org/team/app}]
  groups: [{id: org}]
user_access:
  access_as: {agent: {}}
  projects: [{id: org/team/app}]
`)
	s.AddAgent(app, "own", u)
	return s, tok
}

type authNode struct {
	Agent struct {
		ID      string `json:"id"`
		Name    string `json:"name"`
		Project struct {
			FullPath string `json:"fullPath"`
		} `json:"project"`
	} `json:"agent"`
	Config map[string]any `json:"config"`
}

func authorized(t *testing.T, s *fakegitlab.Server, tok, path string, first int) (ci, user []authNode) {
	t.Helper()
	_, out := gql(t, s, tok, authorizedQ, map[string]any{"path": path, "first": first})
	if msg := gqlError(out); msg != "" {
		t.Fatal(msg)
	}
	var data struct {
		Data struct {
			Project *struct {
				CI struct {
					Nodes []authNode `json:"nodes"`
				} `json:"ciAccessAuthorizedAgents"`
				User struct {
					Nodes []authNode `json:"nodes"`
				} `json:"userAccessAuthorizedAgents"`
			} `json:"project"`
		} `json:"data"`
	}
	b, _ := json.Marshal(out)
	if err := json.Unmarshal(b, &data); err != nil {
		t.Fatal(err)
	}
	if data.Data.Project == nil {
		t.Fatalf("project %s: null", path)
	}
	return data.Data.Project.CI.Nodes, data.Data.Project.User.Nodes
}

func configs(nodes []authNode) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, n := range nodes {
		out[n.Agent.Project.FullPath+":"+n.Agent.Name] = n.Config
	}
	return out
}

func TestAuthorizedAgentsFromConfigFiles(t *testing.T) {
	s, tok := sharingWorld(t)
	ci, user := authorized(t, s, tok, "org/team/app", 10)
	want := map[string]map[string]any{
		// The closest group wins: org/team over org (case does not matter).
		"org/platform/infra:prod": {"environments": []any{"production", "prod/*"}, "resource_management": map[string]any{"enabled": true}},
		// A project entry wins over a group's; its id is dropped.
		"org/platform/infra:staging": {"default_namespace": "app"},
		// The project's own agent, implicitly.
		"org/team/app:own": {},
	}
	if got := configs(ci); !reflect.DeepEqual(got, want) {
		t.Errorf("ci_access:\n got %v\nwant %v", got, want)
	}
	// user_access: the section's access_as, whatever entry matched.
	wantUser := map[string]map[string]any{"org/platform/infra:prod": {"access_as": map[string]any{"user": map[string]any{}}}}
	if got := configs(user); !reflect.DeepEqual(got, wantUser) {
		t.Errorf("user_access:\n got %v\nwant %v", got, wantUser)
	}
	for _, n := range ci {
		if !strings.HasPrefix(n.Agent.ID, "gid://gitlab/Clusters::Agent/") {
			t.Errorf("agent id %q", n.Agent.ID)
		}
	}
}

func TestAuthorizedAgentsImpersonationNeedsPremium(t *testing.T) {
	s, tok := sharingWorld(t)
	s.SetCIImpersonation(true)
	ci, _ := authorized(t, s, tok, "org/team/app", 10)
	got := configs(ci)["org/platform/infra:impersonating"]
	if want := map[string]any{"access_as": map[string]any{"impersonate": map[string]any{"username": "deployer"}}}; !reflect.DeepEqual(got, want) {
		t.Errorf("with Premium: %v, want %v", got, want)
	}
}

func TestAuthorizedAgentsNamingOtherProjectsAreAbsent(t *testing.T) {
	s, tok := sharingWorld(t)
	ci, user := authorized(t, s, tok, "org/team/app", 10)
	for _, n := range append(ci, user...) {
		switch n.Agent.Name {
		case "other": // names org/team/not-app, org/platform, org/team/app-2
			t.Errorf("agent other is listed: %v", n)
		case "foreign": // another top-level group: GitLab ignores its entries
			t.Errorf("agent foreign is listed: %v", n)
		case "impersonating": // impersonate is Premium: CE ignores the entry
			t.Errorf("agent impersonating is listed without Premium: %v", n)
		}
	}
}

func TestAuthorizedAgentsPagesAndCountsComplexity(t *testing.T) {
	s, tok := sharingWorld(t)
	var names []string
	after := any(nil)
	for range 10 {
		_, out := gql(t, s, tok, authorizedQ, map[string]any{"path": "org/team/app", "first": 1, "after": after})
		if msg := gqlError(out); msg != "" {
			t.Fatal(msg)
		}
		conn := out["data"].(map[string]any)["project"].(map[string]any)["ciAccessAuthorizedAgents"].(map[string]any)
		for _, n := range conn["nodes"].([]any) {
			names = append(names, n.(map[string]any)["agent"].(map[string]any)["name"].(string))
		}
		pi := conn["pageInfo"].(map[string]any)
		if !pi["hasNextPage"].(bool) {
			break
		}
		after = pi["endCursor"]
	}
	if want := []string{"prod", "staging", "own"}; !reflect.DeepEqual(names, want) {
		t.Errorf("pages: %v, want %v", names, want)
	}
	// Two connections of 100 (6 a node) exceed 250.
	_, out := gql(t, s, tok, authorizedQ, map[string]any{"path": "org/team/app", "first": 100})
	if msg := gqlError(out); !strings.HasPrefix(msg, "Query has complexity of ") {
		t.Errorf("first 100: %q, want a complexity error", msg)
	}
}

func TestAuthorizedAgentsNeedDeveloperAndAToken(t *testing.T) {
	s, _ := sharingWorld(t)
	if code, _ := gql(t, s, "", authorizedQ, map[string]any{"path": "org/team/app", "first": 10}); code != 401 {
		t.Errorf("no token: %d, want 401", code)
	}
	// A Reporter of a project that is shared with sees no agents.
	_, rtok := s.AddMember(s.AddProject("org/team/app-2"), "reporter", fakegitlab.Reporter)
	if ci, user := authorized(t, s, rtok, "org/team/app-2", 10); len(ci)+len(user) != 0 {
		t.Errorf("reporter sees %v %v", ci, user)
	}
}
