package gitlab

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	gl "gitlab.com/gitlab-org/api/client-go"
)

// Environment is a project's environment, with what GitLab's Kubernetes
// dashboard reads: the agent, the namespace and the Flux resource.
type Environment struct {
	ID                  int64  `json:"id"`
	Name                string `json:"name"`
	State               string `json:"state"` // available, stopping, stopped
	ExternalURL         string `json:"externalURL,omitempty"`
	KubernetesNamespace string `json:"kubernetesNamespace,omitempty"`
	FluxResourcePath    string `json:"fluxResourcePath,omitempty"`
	// ClusterAgentID is the agent's ID, from the single GET's
	// cluster_agent (lists leave it out).
	ClusterAgentID *int64 `json:"clusterAgentID,omitempty"`
	Tier           string `json:"tier,omitempty"`
	Description    string `json:"description,omitempty"`
}

// EnvironmentOptions are the fields to set; nil leaves a field as it is.
// In UpdateEnvironment a pointer to the zero value (0, "") clears
// ClusterAgentID, KubernetesNamespace and FluxResourcePath (sent as JSON
// null); a namespace needs an agent and a Flux resource path a namespace,
// so clear them together.
type EnvironmentOptions struct {
	ClusterAgentID      *int64
	KubernetesNamespace *string
	FluxResourcePath    *string
	Description         *string
	ExternalURL         *string
	Tier                *string
}

func environmentFrom(e *gl.Environment) *Environment {
	out := &Environment{ID: e.ID, Name: e.Name, State: e.State, ExternalURL: e.ExternalURL,
		KubernetesNamespace: e.KubernetesNamespace, FluxResourcePath: e.FluxResourcePath, Tier: e.Tier, Description: e.Description}
	if e.ClusterAgent != nil && e.ClusterAgent.ID != 0 {
		id := e.ClusterAgent.ID
		out.ClusterAgentID = &id
	}
	return out
}

// environmentHints are what GitLab's refusals of an environment mean.
func environmentHints(p ProjectRef) hints {
	return hints{
		forbidden: fmt.Sprintf("you need at least the Developer role on %s to manage its environments", p),
		invalid:   fmt.Sprintf("the cluster agent must be registered in %s itself, a Kubernetes namespace needs an agent and a Flux resource path a namespace", p),
	}
}

// FindEnvironment finds the environment named name (exactly), with its
// agent; found is false when there is none.
func (c *Client) FindEnvironment(ctx context.Context, p ProjectRef, name string) (env *Environment, found bool, err error) {
	_, cancel, opt := c.call(ctx, repeatable)
	list, resp, err := c.api.Environments.ListEnvironments(p.pid(), &gl.ListEnvironmentsOptions{Name: gl.Ptr(name)}, opt)
	cancel()
	if err != nil {
		return nil, false, c.classify(fmt.Sprintf("looking for environment %q in %s", name, p), resp, err, hints{
			forbidden: fmt.Sprintf("you need at least the Reporter role on %s to see its environments", p),
		})
	}
	for _, e := range list {
		if e.Name != name {
			continue
		}
		// The list leaves cluster_agent out: the single GET has it.
		_, cancel, opt := c.call(ctx, repeatable)
		full, resp, err := c.api.Environments.GetEnvironment(p.pid(), e.ID, opt)
		cancel()
		if err != nil {
			err = c.classify(fmt.Sprintf("reading environment %q (%d) in %s", name, e.ID, p), resp, err, hints{})
			if missing(err) {
				return nil, false, nil // deleted in between
			}
			return nil, false, err
		}
		return environmentFrom(full), true, nil
	}
	return nil, false, nil
}

// CreateEnvironment creates the environment name with o's fields (zero
// values are not sent).
//
// The request is sent once; when its answer is lost, an environment of that
// name found then is the one made (names are unique in a project).
func (c *Client) CreateEnvironment(ctx context.Context, p ProjectRef, name string, o EnvironmentOptions) (*Environment, error) {
	op := fmt.Sprintf("creating environment %q in %s", name, p)
	co := &gl.CreateEnvironmentOptions{Name: gl.Ptr(name), Description: nonEmpty(o.Description), ExternalURL: nonEmpty(o.ExternalURL),
		Tier: nonEmpty(o.Tier), KubernetesNamespace: nonEmpty(o.KubernetesNamespace), FluxResourcePath: nonEmpty(o.FluxResourcePath)}
	if o.ClusterAgentID != nil && *o.ClusterAgentID != 0 {
		co.ClusterAgentID = o.ClusterAgentID
	}
	_, cancel, opt := c.call(ctx, once)
	e, resp, err := c.api.Environments.CreateEnvironment(p.pid(), co, opt)
	cancel()
	switch {
	case err == nil && e != nil && e.ID != 0:
		return environmentFrom(e), nil
	case err == nil:
		err = &Error{Class: ClassBadAnswer, Status: resp.StatusCode, Op: op, Detail: "GitLab's answer holds no environment"}
	default:
		h := environmentHints(p)
		h.conflict = fmt.Sprintf("%s has an environment named %q already: update it instead", p, name)
		err = c.classify(op, resp, err, h)
	}
	if mayHaveHappened(err) {
		rctx, rcancel := cleanupContext(ctx)
		defer rcancel()
		if env, found, ferr := c.FindEnvironment(rctx, p, name); ferr == nil && found {
			return env, nil
		}
	}
	return nil, err
}

func nonEmpty(s *string) *string {
	if s == nil || *s == "" {
		return nil
	}
	return s
}

// UpdateEnvironment changes o's fields of environment id. The official
// client cannot send JSON null (its fields are omitempty), which GitLab
// needs to clear the agent, namespace and Flux resource path: the request
// is built here.
func (c *Client) UpdateEnvironment(ctx context.Context, p ProjectRef, id int64, o EnvironmentOptions) (*Environment, error) {
	body := map[string]any{}
	if o.ClusterAgentID != nil {
		if *o.ClusterAgentID == 0 {
			body["cluster_agent_id"] = nil
		} else {
			body["cluster_agent_id"] = *o.ClusterAgentID
		}
	}
	for key, v := range map[string]*string{"kubernetes_namespace": o.KubernetesNamespace, "flux_resource_path": o.FluxResourcePath} {
		if v != nil {
			if *v == "" {
				body[key] = nil
			} else {
				body[key] = *v
			}
		}
	}
	for key, v := range map[string]*string{"description": o.Description, "external_url": o.ExternalURL, "tier": o.Tier} {
		if v != nil {
			body[key] = *v
		}
	}
	op := fmt.Sprintf("updating environment %d in %s", id, p)
	var e gl.Environment
	resp, err := c.send(ctx, repeatable, http.MethodPut, c.environmentPath(p, id), body, &e)
	if err == nil && e.ID == 0 {
		return nil, &Error{Class: ClassBadAnswer, Status: resp.StatusCode, Op: op, Detail: "GitLab's answer holds no environment"}
	}
	if err != nil {
		h := environmentHints(p)
		h.notFound = fmt.Sprintf("%s has no environment %d", p, id)
		return nil, c.classify(op, resp, err, h)
	}
	return environmentFrom(&e), nil
}

func (c *Client) environmentPath(p ProjectRef, id int64) string {
	pid := p.Path
	if pid == "" {
		pid = strconv.FormatInt(p.ID, 10)
	}
	return fmt.Sprintf("projects/%s/environments/%d", gl.PathEscape(pid), id)
}

// StopAndDeleteEnvironment stops environment id (GitLab deletes only
// stopped ones) and deletes it; one gone already is no error.
func (c *Client) StopAndDeleteEnvironment(ctx context.Context, p ProjectRef, id int64) error {
	h := environmentHints(p)
	_, cancel, opt := c.call(ctx, repeatable)
	_, resp, err := c.api.Environments.StopEnvironment(p.pid(), id, nil, opt)
	cancel()
	err = c.classify(fmt.Sprintf("stopping environment %d in %s", id, p), resp, err, h)
	if missing(err) {
		return nil
	}
	if err != nil {
		return err
	}
	_, cancel, opt = c.call(ctx, repeatable)
	defer cancel()
	resp, err = c.api.Environments.DeleteEnvironment(p.pid(), id, opt)
	h.forbidden = fmt.Sprintf("you need at least the Developer role on %s to delete environments, and GitLab deletes only stopped ones (a stop job may still be running)", p)
	err = c.classify(fmt.Sprintf("deleting environment %d in %s", id, p), resp, err, h)
	if missing(err) {
		return nil
	}
	return err
}
