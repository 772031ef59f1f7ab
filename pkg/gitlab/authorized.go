package gitlab

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// The access kinds of an agent's config file that share it with projects.
const (
	AccessCI   = "ci_access"
	AccessUser = "user_access"
)

// AuthorizedAgent is an agent a project may use, and how: one
// authorization of its ci_access or user_access (GitLab's
// Project.ciAccessAuthorizedAgents and userAccessAuthorizedAgents).
type AuthorizedAgent struct {
	// Project is the agent's config project; "" when GitLab does not tell
	// it to the caller.
	Project string
	Name    string
	ID      int64
	// Access is AccessCI or AccessUser.
	Access string
	// AccessAs is the access_as mode: agent, impersonate, ci_user or ci_job
	// for ci_access, agent or user for user_access. A ci_access entry
	// without one acts as the agent; a user_access section without one
	// grants nothing, so AccessAs is "".
	AccessAs string
	// Environments are the entry's environments (ci_access only): the jobs
	// of other environments do not get the agent.
	Environments []string
	// ResourceManagement is the entry's resource_management.enabled.
	ResourceManagement bool
	// Config is the entry as GitLab keeps it: the ci_access entry without
	// its id, or user_access's {"access_as": ...}.
	Config map[string]any
}

// The queries AuthorizedAgents sends, one per kind, every value a
// variable. Complexity (gitops-facts B): 5 + 6 × first, 185 at first 30.
const (
	ciAccessQuery = `query($path: ID!, $first: Int!, $after: String) {
  project(fullPath: $path) {
    ciAccessAuthorizedAgents(first: $first, after: $after) {
      pageInfo { endCursor hasNextPage }
      nodes { agent { id name project { fullPath } } config }
    }
  }
}`
	userAccessQuery = `query($path: ID!, $first: Int!, $after: String) {
  project(fullPath: $path) {
    userAccessAuthorizedAgents(first: $first, after: $after) {
      pageInfo { endCursor hasNextPage }
      nodes { agent { id name project { fullPath } } config }
    }
  }
}`
	authorizedPage = 30
)

type gqlAuthorization struct {
	Agent *struct {
		ID      string `json:"id"`
		Name    string `json:"name"`
		Project *struct {
			FullPath string `json:"fullPath"`
		} `json:"project"`
	} `json:"agent"`
	Config map[string]any `json:"config"`
}

// gqlAuthorizations is both kinds' connection; a query asks for one.
type gqlAuthorizations struct {
	PageInfo gqlPageInfo        `json:"pageInfo"`
	Nodes    []gqlAuthorization `json:"nodes"`
}

// AuthorizedAgents lists the agents whose ci_access or user_access names
// the project or a group above it, one per agent and kind, ordered by the
// agent's project, name and kind. The project's own agents are among them
// (GitLab authorizes a project's CI for its agents implicitly). GraphQL
// takes a path, so a project given by ID is looked up first.
func (c *Client) AuthorizedAgents(ctx context.Context, project ProjectRef) ([]AuthorizedAgent, error) {
	path := project.Path
	if path == "" {
		p, err := c.GetProject(ctx, project)
		if err != nil {
			return nil, err
		}
		path = p.PathWithNamespace
	}
	var out []AuthorizedAgent
	for _, kind := range []string{AccessCI, AccessUser} {
		list, err := c.authorizedAgents(ctx, path, kind)
		if err != nil {
			return nil, err
		}
		out = append(out, list...)
	}
	slices.SortStableFunc(out, func(a, b AuthorizedAgent) int {
		if c := strings.Compare(a.Project, b.Project); c != 0 {
			return c
		}
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Access, b.Access)
	})
	return out, nil
}

// authorizedAgents reads one kind's connection, every page, halving the
// page when GitLab finds a query too complex.
func (c *Client) authorizedAgents(ctx context.Context, path, kind string) ([]AuthorizedAgent, error) {
	op := fmt.Sprintf("listing the agents shared with project %q (%s)", path, kind)
	query := ciAccessQuery
	if kind == AccessUser {
		query = userAccessQuery
	}
	var out []AuthorizedAgent
	seen := map[int64]bool{}
	first, after := authorizedPage, any(nil)
	walk := pageWalk{op: op}
	for {
		var data struct {
			Project *struct {
				CI   *gqlAuthorizations `json:"ciAccessAuthorizedAgents"`
				User *gqlAuthorizations `json:"userAccessAuthorizedAgents"`
			} `json:"project"`
		}
		err := graphql(ctx, c, op, query, map[string]any{"path": path, "first": first, "after": after}, &data)
		var ce *ComplexityError
		if errors.As(err, &ce) && first > 1 {
			first /= 2
			continue
		}
		if err != nil {
			if ce != nil {
				err = &Error{Class: ClassInvalid, Status: http.StatusOK, Op: op, Detail: ce.Message, Err: ce}
			}
			return nil, err
		}
		if data.Project == nil {
			return nil, &Error{Class: ClassNotFound, Status: http.StatusOK, Op: op, Detail: "no such project",
				Hint: "it does not exist, or your token cannot see it (give the project's full path, e.g. my-org/app)"}
		}
		conn := data.Project.CI
		if kind == AccessUser {
			conn = data.Project.User
		}
		if conn == nil { // null: the caller may not read the project's agents
			return out, nil
		}
		for _, n := range conn.Nodes {
			if n.Agent == nil { // an agent the caller may not read
				continue
			}
			a := authorizedAgent(kind, n)
			// GitLab's user_access finder may answer an agent once per
			// matching entry; one row per agent and kind.
			if !seen[a.ID] {
				seen[a.ID] = true
				out = append(out, a)
			}
		}
		cursor, more, err := walk.next(conn.PageInfo)
		if err != nil {
			return nil, err
		}
		if !more {
			return out, nil
		}
		after = cursor
	}
}

func authorizedAgent(kind string, n gqlAuthorization) AuthorizedAgent {
	a := AuthorizedAgent{Name: n.Agent.Name, ID: globalID(n.Agent.ID), Access: kind, Config: n.Config,
		Environments: []string{}}
	if a.Config == nil {
		a.Config = map[string]any{}
	}
	if n.Agent.Project != nil {
		a.Project = n.Agent.Project.FullPath
	}
	if as, _ := a.Config["access_as"].(map[string]any); len(as) > 0 {
		modes := make([]string, 0, len(as))
		for m := range as {
			modes = append(modes, m)
		}
		slices.Sort(modes)
		a.AccessAs = strings.Join(modes, ",") // GitLab's schema allows one
	} else if kind == AccessCI {
		a.AccessAs = "agent"
	}
	if envs, ok := a.Config["environments"].([]any); ok {
		for _, e := range envs {
			if s, ok := e.(string); ok {
				a.Environments = append(a.Environments, s)
			}
		}
	}
	if rm, ok := a.Config["resource_management"].(map[string]any); ok {
		a.ResourceManagement, _ = rm["enabled"].(bool)
	}
	return a
}
