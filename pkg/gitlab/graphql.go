package gitlab

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	gl "gitlab.com/gitlab-org/api/client-go"
)

// GroupAgent is one agent of a project under a group, as GitLab's GraphQL
// API tells it.
type GroupAgent struct {
	Project   string
	Name      string
	ID        int64
	CreatedAt time.Time
	// ActiveTokens counts the agent's active tokens (GitLab allows two).
	ActiveTokens int
	// OldestToken is when the oldest active token was made; nil: none.
	OldestToken *time.Time
	// LastUsed is the latest use of any active token; nil: never.
	LastUsed *time.Time
	// ConnectedNow: KAS reports a connection of the agent now.
	ConnectedNow bool
	// Connected: a connection now, or a token used within ConnectedWithin.
	Connected bool
	// Version is agentk's version from the connection's metadata; "" when
	// no connection tells it.
	Version string
	// Receptive is EE's isReceptive: KAS dials the agent; nil when this
	// GitLab does not say (CE has no receptive agents).
	Receptive *bool
}

// ConnectedWithin is how recent a token's use must be for its agent to
// count as connected when KAS reports no connection.
const ConnectedWithin = 5 * time.Minute

// The queries GroupAgents sends. Every value is a variable: no name from a
// user or from GitLab is ever written into query text.
//
// Complexity (graphql-ruby's rule, gitops-facts B): projectsQuery costs
// 1 + (1 + first + 3 + 1), 106 at first 100. agentsQuery costs
// 6 + 20 × first (per agent: 3 fields, tokens 1 + 1 + 2 × 3, connections
// 5 + 1 + 1 × 3), so 206 at first 10, under the 250 GitLab allows.
const (
	projectsQuery = `query($path: ID!, $sub: Boolean!, $first: Int!, $after: String) {
  group(fullPath: $path) {
    projects(includeSubgroups: $sub, first: $first, after: $after) {
      pageInfo { endCursor hasNextPage }
      nodes { fullPath }
    }
  }
}`
	agentsQuery = `query($path: ID!, $first: Int!, $after: String) {
  project(fullPath: $path) {
    clusterAgents(first: $first, after: $after) {
      pageInfo { endCursor hasNextPage }
      nodes {
        id name createdAt
        tokens(first: 2) { nodes { id createdAt lastUsedAt } }
        connections(first: 1) { nodes { connectedAt metadata { version } } }
      }
    }
  }
}`
	// agentsQueryEE adds EE's ClusterAgent.isReceptive (one more field an
	// agent: 216 at first 10). A GitLab without it (CE, or older) refuses
	// the field, and agentsQuery is asked instead.
	agentsQueryEE = `query($path: ID!, $first: Int!, $after: String) {
  project(fullPath: $path) {
    clusterAgents(first: $first, after: $after) {
      pageInfo { endCursor hasNextPage }
      nodes {
        id name createdAt isReceptive
        tokens(first: 2) { nodes { id createdAt lastUsedAt } }
        connections(first: 1) { nodes { connectedAt metadata { version } } }
      }
    }
  }
}`
	projectsPage = 100
	agentsPage   = 10
	// groupWorkers bounds the agent queries in flight.
	groupWorkers = 4
)

// ComplexityError is GitLab refusing a query as too complex.
type ComplexityError struct{ Message string }

func (e *ComplexityError) Error() string { return e.Message }

type gqlPageInfo struct {
	EndCursor   string `json:"endCursor"`
	HasNextPage bool   `json:"hasNextPage"`
}

// maxGraphQLPages bounds the pages of one connection a walk reads (100,000
// projects of a group, 10,000 agents of a project): GitLab, or something
// answering in its place, saying hasNextPage forever with new cursors is
// refused rather than read without end.
const maxGraphQLPages = 1000

// pageWalk follows a connection's cursors only forward: pageInfo is not
// trusted to end the walk, so a cursor seen before (the same page again,
// or a cycle) ends it, as allPages does for REST's X-Next-Page.
type pageWalk struct {
	op    string
	seen  map[string]bool
	pages int
}

// next is the cursor of the page after one whose pageInfo is pi, or
// false when the walk is done.
func (w *pageWalk) next(pi gqlPageInfo) (string, bool, error) {
	w.pages++
	if !pi.HasNextPage || pi.EndCursor == "" || w.seen[pi.EndCursor] {
		return "", false, nil
	}
	if w.pages >= maxGraphQLPages {
		return "", false, &Error{Class: ClassBadAnswer, Status: http.StatusOK, Op: w.op,
			Detail: fmt.Sprintf("GitLab's pages did not end after %d pages", w.pages),
			Hint:   "GitLab kept answering that there is a next page; check that --gitlab-url is GitLab itself"}
	}
	if w.seen == nil {
		w.seen = map[string]bool{}
	}
	w.seen[pi.EndCursor] = true
	return pi.EndCursor, true, nil
}

type gqlAnswer[T any] struct {
	Data   T `json:"data"`
	Errors []struct {
		Message string `json:"message"`
	} `json:"errors"`
}

// graphql sends one query (a read: repeated on 429, 5xx and broken
// connections through the same transport as every call) and decodes data
// into v.
func graphql[T any](ctx context.Context, c *Client, op, query string, vars map[string]any, v *T) error {
	_, cancel, opt := c.call(ctx, repeatable)
	defer cancel()
	req, err := c.api.NewRequest(http.MethodPost, "", gl.GraphQLQuery{Query: query, Variables: vars}, []gl.RequestOptionFunc{opt})
	if err != nil {
		return err
	}
	// The official client's GraphQL.Do sets the path to /api/graphql,
	// which drops the path of a GitLab served under one.
	req.URL.Path = strings.TrimSuffix(c.api.BaseURL().Path, "api/v4/") + "api/graphql"
	var ans gqlAnswer[T]
	resp, err := c.api.Do(req, &ans)
	if err != nil {
		return c.classify(op, resp, err, hints{forbidden: "your token needs the read_api or api scope"})
	}
	if len(ans.Errors) > 0 {
		msg := ans.Errors[0].Message
		if strings.HasPrefix(msg, "Query has complexity of ") {
			return &ComplexityError{Message: c.remote(msg)}
		}
		return &Error{Class: ClassInvalid, Status: http.StatusOK, Op: op, Detail: c.remote(msg),
			Hint: "GitLab refused the query; it may be older than this plugin expects"}
	}
	*v = ans.Data
	return nil
}

// GroupAgents lists the agents of every project under group (its
// subgroups' too when subgroups), ordered by project and name. progress,
// when not nil, is told how many projects are done of those found so far.
//
// How: the group's projects are listed first, 100 a page (cheap: their
// paths only); each project's agents are then read by up to four queries
// at once as the list arrives, ten agents a page with their tokens and
// connection, which stays under GitLab's complexity limit; a page GitLab
// finds too complex anyway is asked again at half the size. Listing
// projects first lets the agent queries run side by side: pages of
// projects with their agents nested would be sequential (each needs the
// cursor of the last) and hold few projects each.
func (c *Client) GroupAgents(ctx context.Context, group string, subgroups bool, progress func(done, total int)) ([]GroupAgent, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	paths := make(chan string)
	var (
		mu          sync.Mutex
		out         []GroupAgent
		firstErr    error
		done, total int
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
			cancel()
		}
	}
	report := func() {
		if progress != nil {
			progress(done, total)
		}
	}
	var wg sync.WaitGroup
	for range groupWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range paths {
				agents, err := c.projectAgents(ctx, p)
				if err != nil {
					fail(err)
					continue
				}
				mu.Lock()
				out = append(out, agents...)
				done++
				report()
				mu.Unlock()
			}
		}()
	}
	err := c.groupProjects(ctx, group, subgroups, func(page []string) bool {
		mu.Lock()
		total += len(page)
		report()
		mu.Unlock()
		for _, p := range page {
			select {
			case paths <- p:
			case <-ctx.Done():
				return false
			}
		}
		return true
	})
	close(paths)
	wg.Wait()
	if err != nil {
		fail(err)
	}
	if firstErr != nil {
		return nil, firstErr
	}
	slices.SortFunc(out, func(a, b GroupAgent) int {
		if c := strings.Compare(a.Project, b.Project); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out, nil
}

// groupProjects hands the paths of the group's projects to each, a page at
// a time, until each returns false.
func (c *Client) groupProjects(ctx context.Context, group string, subgroups bool, each func([]string) bool) error {
	op := fmt.Sprintf("listing the projects of group %q", group)
	after := any(nil)
	walk := pageWalk{op: op}
	listed := map[string]bool{}
	for {
		var data struct {
			Group *struct {
				Projects struct {
					PageInfo gqlPageInfo `json:"pageInfo"`
					Nodes    []struct {
						FullPath string `json:"fullPath"`
					} `json:"nodes"`
				} `json:"projects"`
			} `json:"group"`
		}
		err := graphql(ctx, c, op, projectsQuery, map[string]any{"path": group, "sub": subgroups, "first": projectsPage, "after": after}, &data)
		if err != nil {
			return err
		}
		if data.Group == nil {
			return &Error{Class: ClassNotFound, Status: http.StatusOK, Op: op, Detail: "no such group",
				Hint: "it does not exist, or your token cannot see it (give the group's full path, e.g. my-org/platform)"}
		}
		page := make([]string, 0, len(data.Group.Projects.Nodes))
		for _, n := range data.Group.Projects.Nodes {
			if !listed[n.FullPath] { // a project listed twice is read once
				listed[n.FullPath] = true
				page = append(page, n.FullPath)
			}
		}
		if !each(page) {
			return ctx.Err()
		}
		cursor, more, err := walk.next(data.Group.Projects.PageInfo)
		if !more {
			return err
		}
		after = cursor
	}
}

type gqlAgent struct {
	// IsReceptive is EE's; nil when not asked.
	IsReceptive *bool     `json:"isReceptive"`
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	CreatedAt   time.Time `json:"createdAt"`
	Tokens      struct {
		Nodes []struct {
			CreatedAt  time.Time  `json:"createdAt"`
			LastUsedAt *time.Time `json:"lastUsedAt"`
		} `json:"nodes"`
	} `json:"tokens"`
	Connections struct {
		Nodes []struct {
			Metadata *struct {
				Version string `json:"version"`
			} `json:"metadata"`
		} `json:"nodes"`
	} `json:"connections"`
}

// projectAgents reads every agent of the project at path, halving the page
// when GitLab finds a query too complex.
func (c *Client) projectAgents(ctx context.Context, path string) ([]GroupAgent, error) {
	op := fmt.Sprintf("listing the agents of project %q", path)
	var out []GroupAgent
	first, after := agentsPage, any(nil)
	walk := pageWalk{op: op}
	now := time.Now()
	for {
		var data struct {
			Project *struct {
				ClusterAgents struct {
					PageInfo gqlPageInfo `json:"pageInfo"`
					Nodes    []gqlAgent  `json:"nodes"`
				} `json:"clusterAgents"`
			} `json:"project"`
		}
		query := agentsQueryEE
		if c.noReceptiveField.Load() {
			query = agentsQuery
		}
		err := graphql(ctx, c, op, query, map[string]any{"path": path, "first": first, "after": after}, &data)
		if query == agentsQueryEE && err != nil && strings.Contains(err.Error(), "isReceptive") && strings.Contains(err.Error(), "doesn't exist") {
			c.noReceptiveField.Store(true) // CE: ask without it
			continue
		}
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
		if data.Project == nil { // gone since it was listed
			return out, nil
		}
		for _, a := range data.Project.ClusterAgents.Nodes {
			out = append(out, groupAgent(path, a, now))
		}
		cursor, more, err := walk.next(data.Project.ClusterAgents.PageInfo)
		if err != nil {
			return nil, err
		}
		if !more {
			return out, nil
		}
		after = cursor
	}
}

func groupAgent(project string, a gqlAgent, now time.Time) GroupAgent {
	g := GroupAgent{Project: project, Name: a.Name, ID: globalID(a.ID), CreatedAt: a.CreatedAt,
		ActiveTokens: len(a.Tokens.Nodes), ConnectedNow: len(a.Connections.Nodes) > 0}
	for _, t := range a.Tokens.Nodes {
		if g.OldestToken == nil || t.CreatedAt.Before(*g.OldestToken) {
			g.OldestToken = &t.CreatedAt
		}
		if t.LastUsedAt != nil && (g.LastUsed == nil || t.LastUsedAt.After(*g.LastUsed)) {
			g.LastUsed = t.LastUsedAt
		}
	}
	for _, cn := range a.Connections.Nodes {
		if cn.Metadata != nil && cn.Metadata.Version != "" {
			g.Version = cn.Metadata.Version
			break
		}
	}
	g.Connected = g.ConnectedNow || (g.LastUsed != nil && now.Sub(*g.LastUsed) <= ConnectedWithin)
	g.Receptive = a.IsReceptive
	return g
}

// globalID is the number at the end of a GlobalID such as
// gid://gitlab/Clusters::Agent/7 (or a bare number); 0 when there is none.
func globalID(s string) int64 {
	n, _ := strconv.ParseInt(s[strings.LastIndex(s, "/")+1:], 10, 64)
	return n
}
