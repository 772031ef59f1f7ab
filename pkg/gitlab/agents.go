package gitlab

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	gl "gitlab.com/gitlab-org/api/client-go"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/agentname"
)

// Agent is a registered agent.
type Agent struct {
	ID              int64      `json:"id"`
	Name            string     `json:"name"`
	CreatedAt       *time.Time `json:"createdAt,omitempty"`
	CreatedByUserID int64      `json:"createdByUserID,omitempty"`
	// ConfigProject is the path of the project holding its config file.
	ConfigProject   string `json:"configProject"`
	ConfigProjectID int64  `json:"configProjectID"`
}

func agentFrom(a *gl.Agent) *Agent {
	return &Agent{
		ID: a.ID, Name: a.Name, CreatedAt: a.CreatedAt, CreatedByUserID: a.CreatedByUserID,
		ConfigProject: a.ConfigProject.PathWithNamespace, ConfigProjectID: a.ConfigProject.ID,
	}
}

// AgentRef names an agent by name or by numeric ID. A number is tried as an
// ID first, then as a name (an agent may be called "42").
type AgentRef struct {
	Name string
	ID   int64
}

func (r AgentRef) String() string { return nameOrID(r.Name, r.ID) }

// nameOrID is how a reference reads: its name, else its ID.
func nameOrID(name string, id int64) string {
	if name != "" {
		return name
	}
	return strconv.FormatInt(id, 10)
}

// ParseAgentRef reads a NAME|ID argument.
func ParseAgentRef(s string) (AgentRef, error) {
	var ref AgentRef
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 {
		ref.ID = n
	}
	if agentname.Validate(s) == nil {
		ref.Name = s
	}
	if ref.ID == 0 && ref.Name == "" {
		return AgentRef{}, agentname.Validate(s)
	}
	return ref, nil
}

// ListAgents returns every agent of the project, all pages.
func (c *Client) ListAgents(ctx context.Context, p ProjectRef) ([]*Agent, error) {
	_, cancel, opt := c.call(ctx, repeatable)
	defer cancel()
	lo := &gl.ListAgentsOptions{}
	all, resp, err := allPages(&lo.ListOptions, maxListed, func(a *gl.Agent) int64 { return a.ID }, func() ([]*gl.Agent, *gl.Response, error) {
		return c.api.ClusterAgents.ListAgents(p.pid(), lo, opt)
	})
	if err != nil {
		return nil, c.classify(fmt.Sprintf("listing the agents of %s", p), resp, err, hints{
			forbidden: fmt.Sprintf("you need at least the Developer role on %s to see its agents", p),
			notFound:  fmt.Sprintf("no project %s, or your token cannot see it", p),
		})
	}
	out := make([]*Agent, 0, len(all))
	for _, a := range all {
		out = append(out, agentFrom(a))
	}
	return out, nil
}

// maxListed bounds what a list reads, however many pages GitLab (or
// something that answers in its place) says there are.
const maxListed = 10000

// allPages calls fetch for page 1, 2, ... of lo until there is no next page
// or max items are read. The pages' headers are not trusted to end the walk
// (a page with nothing new, or a next page that does not move forward, ends
// it) and an item listed twice (by ID) counts once.
func allPages[T any, K comparable](lo *gl.ListOptions, max int, id func(T) K, fetch func() ([]T, *gl.Response, error)) ([]T, *gl.Response, error) {
	lo.PerPage, lo.Page = int64(min(100, max)), 1
	var out []T
	seen := map[K]bool{}
	for {
		page, resp, err := fetch()
		if err != nil {
			return nil, resp, err
		}
		added := 0
		for _, item := range page {
			if k := id(item); !seen[k] {
				seen[k] = true
				out = append(out, item)
				added++
			}
		}
		next := resp.NextPage
		if added == 0 || next <= lo.Page || (resp.TotalPages > 0 && next > resp.TotalPages) || len(out) >= max {
			return out, resp, nil
		}
		lo.Page = next
	}
}

// GetAgent looks an agent up by ID.
func (c *Client) GetAgent(ctx context.Context, p ProjectRef, id int64) (*Agent, error) {
	_, cancel, opt := c.call(ctx, repeatable)
	defer cancel()
	a, resp, err := c.api.ClusterAgents.GetAgent(p.pid(), id, opt)
	if err != nil {
		return nil, c.classify(fmt.Sprintf("looking up agent %d in %s", id, p), resp, err, hints{
			forbidden: fmt.Sprintf("you need at least the Developer role on %s to see its agents", p),
			notFound:  fmt.Sprintf("no agent with ID %d in %s", id, p),
		})
	}
	return agentFrom(a), nil
}

// FindAgent resolves a NAME|ID reference. When nothing matches, the error
// is of ClassNotFound and names the command that lists the agents.
func (c *Client) FindAgent(ctx context.Context, p ProjectRef, ref AgentRef) (*Agent, error) {
	if ref.ID != 0 {
		a, err := c.GetAgent(ctx, p, ref.ID)
		if err == nil || ref.Name == "" || !IsClass(err, ClassNotFound) {
			return a, err
		}
	}
	agents, err := c.ListAgents(ctx, p)
	if err != nil {
		return nil, err
	}
	for _, a := range agents {
		if a.Name == ref.Name {
			return a, nil
		}
	}
	return nil, &Error{
		Class: ClassNotFound, Op: fmt.Sprintf("finding agent %s", ref),
		Detail: fmt.Sprintf("no agent %q is registered in %s", ref.String(), p),
		Hint:   fmt.Sprintf("'kubectl gitlab-agent agent list --project %s' lists them", p),
	}
}

// RegisterAgent registers name in p unless an agent of that name exists; it
// reports whether it created one.
func (c *Client) RegisterAgent(ctx context.Context, p ProjectRef, name string) (*Agent, bool, error) {
	if err := agentname.Validate(name); err != nil {
		return nil, false, err
	}
	agents, err := c.ListAgents(ctx, p)
	if err != nil {
		return nil, false, err
	}
	for _, a := range agents {
		if a.Name == name {
			return a, false, nil
		}
	}
	_, cancel, opt := c.call(ctx, once)
	defer cancel()
	a, resp, err := c.api.ClusterAgents.RegisterAgent(p.pid(), &gl.RegisterAgentOptions{Name: gl.Ptr(name)}, opt)
	if err != nil {
		err = c.classify(fmt.Sprintf("registering agent %q in %s", name, p), resp, err, hints{
			forbidden: fmt.Sprintf("you need the Maintainer role on %s to register agents", p),
			notFound:  fmt.Sprintf("no project %s, or your token cannot see it", p),
		})
		switch {
		case IsClass(err, ClassConflict):
			// Registered by someone else meanwhile: report that one.
			if found, ferr := c.FindAgent(ctx, p, AgentRef{Name: name}); ferr == nil {
				return found, false, nil
			}
		case mayHaveHappened(err):
			// The answer was lost, not the work: the name was free
			// before, so an agent of that name now is the one made.
			cctx, cancel := cleanupContext(ctx)
			defer cancel()
			if found, ferr := c.FindAgent(cctx, p, AgentRef{Name: name}); ferr == nil {
				return found, true, nil
			}
		}
		return nil, false, err
	}
	return agentFrom(a), true, nil
}

// DeleteAgent deletes an agent registration (its tokens stop working).
func (c *Client) DeleteAgent(ctx context.Context, p ProjectRef, a *Agent) error {
	_, cancel, opt := c.call(ctx, repeatable)
	defer cancel()
	resp, err := c.api.ClusterAgents.DeleteAgent(p.pid(), a.ID, opt)
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		return nil // gone already (a retry after a lost answer sees this)
	}
	return c.classify(fmt.Sprintf("deleting agent %q from %s", a.Name, p), resp, err, hints{
		forbidden: fmt.Sprintf("you need the Maintainer role on %s to delete agents", p),
	})
}
