package gitlab

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"

	gl "gitlab.com/gitlab-org/api/client-go"
)

// URLConfiguration is where KAS dials a receptive agent, which GitLab
// (Ultimate, self-managed, 17.4 and later) keeps one of per agent.
type URLConfiguration struct {
	ID      int64  `json:"id"`
	AgentID int64  `json:"agentID"`
	URL     string `json:"url"`
	// PublicKey is the key (base64) of the pair GitLab made, with which
	// agentk checks what KAS sends; "" when KAS authenticates with a
	// client certificate instead (ClientCert).
	PublicKey  string `json:"publicKey,omitempty"`
	ClientCert string `json:"clientCert,omitempty"`
	// CACert is the CA (PEM) KAS verifies the agent's certificate with.
	CACert  string `json:"caCert,omitempty"`
	TLSHost string `json:"tlsHost,omitempty"`
}

// NewURLConfiguration is what a URL configuration is made of: without a
// client certificate GitLab makes a key pair and answers with its public
// key.
type NewURLConfiguration struct {
	URL string
	// CACert is a CA bundle (PEM), "" none.
	CACert  string
	TLSHost string
}

// urlConfigurationJSON is GitLab's URL configuration entity.
type urlConfigurationJSON struct {
	ID         int64  `json:"id"`
	AgentID    int64  `json:"agent_id"`
	URL        string `json:"url"`
	PublicKey  string `json:"public_key"`
	ClientCert string `json:"client_cert"`
	CACert     string `json:"ca_cert"`
	TLSHost    string `json:"tls_host"`
}

func (u urlConfigurationJSON) config() *URLConfiguration {
	return &URLConfiguration{ID: u.ID, AgentID: u.AgentID, URL: u.URL, PublicKey: u.PublicKey,
		ClientCert: u.ClientCert, CACert: u.CACert, TLSHost: u.TLSHost}
}

// The official client has no calls for URL configurations: they are sent
// through its request builder, with the same time bounds, retries and
// checks as every other call.
func (c *Client) urlConfigurationsPath(p ProjectRef, a *Agent) string {
	id := p.Path
	if id == "" {
		id = strconv.FormatInt(p.ID, 10)
	}
	return fmt.Sprintf("projects/%s/cluster_agents/%d/url_configurations", gl.PathEscape(id), a.ID)
}

// send makes one request of a call whose repeating r says, and decodes the
// answer into v (nil: none).
func (c *Client) send(ctx context.Context, r repeat, method, path string, body, v any) (*gl.Response, error) {
	_, cancel, opt := c.call(ctx, r)
	defer cancel()
	req, err := c.api.NewRequest(method, path, body, []gl.RequestOptionFunc{opt})
	if err != nil {
		return nil, err
	}
	return c.api.Do(req, v)
}

// noReceptiveHint is what GitLab's 404 for URL configurations means: the
// endpoint is not there, or not for this instance. GitLab answers 404 when
// it is older than 17.4, not licensed for Ultimate, or an administrator has
// not turned receptive agents on (lib/api/clusters/agent_url_configurations.rb).
func (c *Client) noReceptiveHint() string {
	return "GitLab at " + c.baseURL + " has no receptive agents: they need GitLab Ultimate 17.4 or later, self-managed, with receptive agents turned on in the Admin area (Settings > General > GitLab agent for Kubernetes)"
}

// ListURLConfigurations lists the agent's URL configurations (GitLab keeps
// one at most). A GitLab without receptive agents answers 404: the error is
// of ClassNotFound and says so.
func (c *Client) ListURLConfigurations(ctx context.Context, p ProjectRef, a *Agent) ([]*URLConfiguration, error) {
	var list []urlConfigurationJSON
	resp, err := c.send(ctx, repeatable, http.MethodGet, c.urlConfigurationsPath(p, a), nil, &list)
	if err != nil {
		return nil, c.classify(fmt.Sprintf("listing the URL configurations of agent %q", a.Name), resp, err, hints{
			forbidden: fmt.Sprintf("you need at least the Developer role on %s to see an agent's URL configuration", p),
			notFound:  c.noReceptiveHint(),
		})
	}
	out := make([]*URLConfiguration, 0, len(list))
	for _, u := range list {
		out = append(out, u.config())
	}
	return out, nil
}

// CreateURLConfiguration makes the agent receptive: KAS dials it at
// o.URL. GitLab refuses a second one for the agent (ClassConflict).
//
// The request is sent once. When its answer is lost, GitLab may have made
// it anyway: the agent had none (GitLab keeps one), so one for o.URL found
// then is the one made.
func (c *Client) CreateURLConfiguration(ctx context.Context, p ProjectRef, a *Agent, o NewURLConfiguration) (*URLConfiguration, error) {
	body := map[string]string{"url": o.URL}
	if o.CACert != "" {
		// GitLab's API decodes ca_cert from base64, though its page says
		// PEM (lib/api/clusters/agent_url_configurations.rb).
		body["ca_cert"] = base64.StdEncoding.EncodeToString([]byte(o.CACert))
	}
	if o.TLSHost != "" {
		body["tls_host"] = o.TLSHost
	}
	op := fmt.Sprintf("creating a URL configuration for agent %q", a.Name)
	var u urlConfigurationJSON
	resp, err := c.send(ctx, once, http.MethodPost, c.urlConfigurationsPath(p, a), body, &u)
	if err == nil && (u.ID == 0 || u.URL == "") {
		err = &Error{Class: ClassBadAnswer, Status: resp.StatusCode, Op: op, Detail: "GitLab's answer holds no URL configuration"}
	}
	if err == nil {
		return u.config(), nil
	}
	err = c.classify(op, resp, err, hints{
		forbidden: fmt.Sprintf("you need the Maintainer role on %s to make an agent receptive", p),
		notFound:  c.noReceptiveHint(),
		conflict:  fmt.Sprintf("GitLab keeps one URL configuration per agent, and agent %q has one", a.Name),
	})
	if mayHaveHappened(err) {
		cctx, cancel := cleanupContext(ctx)
		defer cancel()
		if list, lerr := c.ListURLConfigurations(cctx, p, a); lerr == nil {
			for _, u := range list {
				if u.URL == o.URL {
					return u, nil
				}
			}
		}
	}
	return nil, err
}

// DeleteURLConfiguration deletes one of the agent's URL configurations;
// one gone already is no error.
func (c *Client) DeleteURLConfiguration(ctx context.Context, p ProjectRef, a *Agent, id int64) error {
	resp, err := c.send(ctx, repeatable, http.MethodDelete, c.urlConfigurationsPath(p, a)+"/"+strconv.FormatInt(id, 10), nil, nil)
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		return nil // gone already (a retry after a lost answer sees this)
	}
	return c.classify(fmt.Sprintf("deleting URL configuration %d of agent %q", id, a.Name), resp, err, hints{
		forbidden: fmt.Sprintf("you need the Maintainer role on %s to delete an agent's URL configuration", p),
	})
}
