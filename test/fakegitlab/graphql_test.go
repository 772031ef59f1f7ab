package fakegitlab_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

func gql(t *testing.T, s *fakegitlab.Server, token, query string, vars map[string]any) (int, map[string]any) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/api/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("PRIVATE-TOKEN", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func gqlError(out map[string]any) string {
	errs, _ := out["errors"].([]any)
	if len(errs) == 0 {
		return ""
	}
	return errs[0].(map[string]any)["message"].(string)
}

func graphWorld(t *testing.T, projects int) (*fakegitlab.Server, string) {
	s := fakegitlab.New()
	t.Cleanup(s.Close)
	u, tok := s.AddUser("ops")
	for i := range projects {
		p := s.AddProject(fmt.Sprintf("g/sub/p%03d", i))
		if i%2 == 0 {
			p = s.AddProject(fmt.Sprintf("g/p%03d", i))
		}
		s.SetRole(p, u, fakegitlab.Developer)
		if i == 0 {
			a := s.AddAgent(p, "prod", u)
			s.AddAgentToken(a, "t", u)
			s.SetAgentConnection(a, "v17.2.0")
		}
	}
	return s, tok
}

const projectsQ = `query($path: ID!, $sub: Boolean!, $first: Int!, $after: String) {
  group(fullPath: $path) { projects(includeSubgroups: $sub, first: $first, after: $after) {
    pageInfo { endCursor hasNextPage } nodes { fullPath } } } }`

func TestGraphQLAuthentication(t *testing.T) {
	s, _ := graphWorld(t, 1)
	if code, _ := gql(t, s, "", projectsQ, nil); code != 401 {
		t.Errorf("no token: %d, want 401", code)
	}
	if code, _ := gql(t, s, "glpat-nope", projectsQ, nil); code != 401 {
		t.Errorf("bad token: %d, want 401", code)
	}
}

func TestGraphQLPagesWithCursorsAndCapsThePage(t *testing.T) {
	s, tok := graphWorld(t, 250)
	var all []string
	after := any(nil)
	pages := 0
	for {
		_, out := gql(t, s, tok, projectsQ, map[string]any{"path": "g", "sub": true, "first": 500, "after": after})
		if msg := gqlError(out); msg != "" {
			t.Fatal(msg)
		}
		conn := out["data"].(map[string]any)["group"].(map[string]any)["projects"].(map[string]any)
		nodes := conn["nodes"].([]any)
		if len(nodes) > fakegitlab.MaxPageSize {
			t.Fatalf("page of %d, above GitLab's %d", len(nodes), fakegitlab.MaxPageSize)
		}
		for _, n := range nodes {
			all = append(all, n.(map[string]any)["fullPath"].(string))
		}
		pages++
		pi := conn["pageInfo"].(map[string]any)
		if pi["hasNextPage"] != true {
			break
		}
		after = pi["endCursor"]
		if strings.Contains(after.(string), "id") {
			t.Errorf("cursor %q is not opaque", after)
		}
	}
	if len(all) != 250 || pages != 3 {
		t.Errorf("%d projects in %d pages, want 250 in 3", len(all), pages)
	}
	_, out := gql(t, s, tok, projectsQ, map[string]any{"path": "g", "sub": false, "first": 100})
	nodes := out["data"].(map[string]any)["group"].(map[string]any)["projects"].(map[string]any)["nodes"].([]any)
	if len(nodes) != 100 {
		t.Errorf("direct projects: %d, want 100 (only g/pNNN)", len(nodes))
	}
	for _, n := range nodes {
		if strings.Contains(n.(map[string]any)["fullPath"].(string), "/sub/") {
			t.Fatalf("includeSubgroups false returned %v", n)
		}
	}
	if _, out := gql(t, s, tok, projectsQ, map[string]any{"path": "g", "sub": true, "first": 5, "after": "bm9wZQ=="}); gqlError(out) == "" {
		t.Error("a bad cursor was accepted")
	}
	if _, out := gql(t, s, tok, projectsQ, map[string]any{"path": "nope", "sub": true, "first": 5}); out["data"].(map[string]any)["group"] != nil {
		t.Error("an unknown group is not null")
	}
}

func TestGraphQLComplexityAndDepth(t *testing.T) {
	s, tok := graphWorld(t, 2)
	agents := `query($path: ID!, $first: Int!) { project(fullPath: $path) { clusterAgents(first: $first) {
	  nodes { id name tokens(first: 2) { nodes { id lastUsedAt status } } connections(first: 1) { nodes { connectedAt metadata { version } } } } } } }`
	// per agent: 2 + tokens (1 + 1 + 2×3 = 8) + connections (5 + 1 + 3 = 9) = 19;
	// project 1 + clusterAgents (1 + 1 + 19n).
	_, out := gql(t, s, tok, agents, map[string]any{"path": "g/p000", "first": 12})
	if msg := gqlError(out); msg != "" {
		t.Fatalf("first 12 (cost 231): %s", msg)
	}
	a := out["data"].(map[string]any)["project"].(map[string]any)["clusterAgents"].(map[string]any)["nodes"].([]any)[0].(map[string]any)
	conn := a["connections"].(map[string]any)["nodes"].([]any)[0].(map[string]any)
	if conn["metadata"].(map[string]any)["version"] != "v17.2.0" || a["tokens"].(map[string]any)["nodes"].([]any)[0].(map[string]any)["status"] != "ACTIVE" {
		t.Errorf("agent %v", a)
	}
	if _, out = gql(t, s, tok, agents, map[string]any{"path": "g/p000", "first": 13}); gqlError(out) != "" {
		t.Errorf("first 13 (cost 250, the limit): %q", gqlError(out))
	}
	if _, out = gql(t, s, tok, agents, map[string]any{"path": "g/p000", "first": 14}); gqlError(out) != "Query has complexity of 269, which exceeds max complexity of 250" {
		t.Errorf("first 14: %q", gqlError(out))
	}
	_, out = gql(t, s, tok, agents, map[string]any{"path": "g/p000", "first": 20})
	if msg := gqlError(out); msg != "Query has complexity of 383, which exceeds max complexity of 250" {
		t.Errorf("first 20: %q", msg)
	}
	// connections without first: a page of 100 connections per agent
	// (1 + 1 + 3 × (5 + 1 + 100) + 1 = 321).
	_, out = gql(t, s, tok, `query($p: ID!) { project(fullPath: $p) { clusterAgents(first: 3) { nodes { connections { nodes { connectedAt } } } } } }`, map[string]any{"p": "g/p000"})
	if msg := gqlError(out); msg != "Query has complexity of 321, which exceeds max complexity of 250" {
		t.Errorf("connections without first: %q", msg)
	}
	deep := strings.Repeat("project(fullPath: $p) { ", 21) + "id" + strings.Repeat(" }", 21)
	if _, out := gql(t, s, tok, "query($p: ID!) { "+deep+" }", map[string]any{"p": "g/p000"}); !strings.HasPrefix(gqlError(out), "Query has depth of 22") {
		t.Errorf("depth: %q", gqlError(out))
	}
	if _, out := gql(t, s, tok, `{ project(fullPath: "g/p000") { secrets } }`, nil); gqlError(out) != "Field 'secrets' doesn't exist on type 'Project'" {
		t.Errorf("unknown field: %q", gqlError(out))
	}
	if _, out := gql(t, s, tok, `mutation { x }`, nil); gqlError(out) == "" {
		t.Error("a mutation was served")
	}
}
