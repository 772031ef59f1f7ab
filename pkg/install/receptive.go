package install

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/manifest"
)

// ReceptiveOptions make the agent receptive: KAS dials it at URL (GitLab
// Ultimate, self-managed, 17.4 and later), as the agent's URL configuration
// in GitLab says.
type ReceptiveOptions struct {
	URL string
	// CACert is the CA (PEM) KAS verifies the agent's certificate with.
	CACert  string
	TLSHost string
	// Replace deletes a URL configuration of the agent that says
	// otherwise, and makes the one asked for: GitLab keeps one per agent.
	Replace bool
}

// matches reports whether GitLab's u is the URL configuration o asks for:
// the same URL, TLS host and CA, and a key pair of GitLab's (not a client
// certificate).
func (o ReceptiveOptions) matches(u *gitlab.URLConfiguration) bool {
	return u.URL == o.URL && u.TLSHost == o.TLSHost && sameCA(u.CACert, o.CACert) && u.ClientCert == "" && u.PublicKey != ""
}

// sameCA compares GitLab's ca_cert with a PEM: GitLab has answered with the
// PEM and, in some versions, with its base64.
func sameCA(gitlabs, pem string) bool {
	have, want := strings.TrimSpace(gitlabs), strings.TrimSpace(pem)
	if have == want {
		return true
	}
	b, err := base64.StdEncoding.DecodeString(have)
	return err == nil && strings.TrimSpace(string(b)) == want
}

// describe says what a URL configuration makes KAS do.
func describe(url, tlsHost string, ca, clientCert bool) string {
	s := "KAS dialling " + url
	if tlsHost != "" {
		s += " with TLS host " + tlsHost
	}
	if ca {
		s += " with a CA certificate"
	}
	if clientCert {
		s += " with a client certificate (mTLS)"
	}
	return s
}

func (o ReceptiveOptions) describe() string { return describe(o.URL, o.TLSHost, o.CACert != "", false) }

func describeURLConfiguration(u *gitlab.URLConfiguration) string {
	return describe(u.URL, u.TLSHost, u.CACert != "", u.ClientCert != "")
}

// ReceptiveConflictError is an agent whose URL configuration says other
// than the install asks: ReceptiveOptions.Replace gets past it.
type ReceptiveConflictError struct {
	Agent *gitlab.Agent
	Have  *gitlab.URLConfiguration
	Want  ReceptiveOptions
}

func (e *ReceptiveConflictError) Error() string {
	return fmt.Sprintf("agent %q already has URL configuration %d (%s), not the one asked for (%s), and GitLab keeps one per agent: delete it in GitLab (DELETE /projects/:id/cluster_agents/%d/url_configurations/%d) and install again",
		e.Agent.Name, e.Have.ID, describeURLConfiguration(e.Have), e.Want.describe(), e.Agent.ID, e.Have.ID)
}

// publicKeyPlaceholder stands in a dry run for the key GitLab would make.
const publicKeyPlaceholder = "<GitLab's public key>"

// receptive reuses the agent's URL configuration for the URL asked for, or
// makes it, and gives agentk GitLab's public key (config.api.jwtPublicKey,
// which the chart puts in the Secret's api-jwt).
func (i *installer) receptive(ctx context.Context) error {
	want := *i.o.Receptive
	var have []*gitlab.URLConfiguration
	if i.res.Agent != nil { // else a dry run for a new agent
		var err error
		if have, err = i.env.GitLab.ListURLConfigurations(ctx, i.ref, i.res.Agent); err != nil {
			return err
		}
	}
	var uc *gitlab.URLConfiguration
	deleted := ""
	for _, u := range have {
		switch {
		case want.matches(u):
			uc = u
		case !want.Replace:
			return &ReceptiveConflictError{Agent: i.res.Agent, Have: u, Want: want}
		case i.planning():
			i.plan = append(i.plan, fmt.Sprintf("delete URL configuration %d of agent %q (%s)", u.ID, i.o.Name, describeURLConfiguration(u)))
		default:
			if err := i.env.GitLab.DeleteURLConfiguration(ctx, i.ref, i.res.Agent, u.ID); err != nil {
				return err
			}
			i.say(fmt.Sprintf("deleted URL configuration %d of agent %q (%s)", u.ID, i.o.Name, describeURLConfiguration(u)))
			deleted = fmt.Sprintf("; URL configuration %d was deleted, and KAS dials the agent nowhere until install makes one", u.ID)
		}
	}
	key := ""
	switch {
	case uc != nil:
		key = uc.PublicKey
	case i.planning():
		i.plan = append(i.plan, fmt.Sprintf("create a URL configuration for agent %q (%s), with a key pair GitLab makes", i.o.Name, want.describe()))
		key = publicKeyPlaceholder
	default:
		var err error
		if uc, err = i.env.GitLab.CreateURLConfiguration(ctx, i.ref, i.res.Agent, gitlab.NewURLConfiguration{URL: want.URL, CACert: want.CACert, TLSHost: want.TLSHost}); err != nil {
			return fmt.Errorf("%w%s", err, deleted)
		}
		if uc.PublicKey == "" {
			return fmt.Errorf("GitLab made URL configuration %d for agent %q without a public key for agentk", uc.ID, i.o.Name)
		}
		i.res.URLConfigurationCreated = true
		i.say(fmt.Sprintf("created URL configuration %d for agent %q (%s)", uc.ID, i.o.Name, want.describe()))
		key = uc.PublicKey
	}
	i.res.URLConfiguration = uc
	i.in.Values.Config.Receptive.Enabled = true
	i.in.Values.Config.API.JWTPublicKey = key
	return nil
}

// urlConfigurations lists the agent's URL configurations; a GitLab without
// receptive agents (404) has none.
func urlConfigurations(ctx context.Context, g *gitlab.Client, p gitlab.ProjectRef, a *gitlab.Agent) ([]*gitlab.URLConfiguration, error) {
	list, err := g.ListURLConfigurations(ctx, p, a)
	if gitlab.IsClass(err, gitlab.ClassNotFound) {
		return nil, nil
	}
	return list, err
}

// receptiveOf is the agent's URL configuration, nil when it has none or
// GitLab does not let this user see it.
func receptiveOf(ctx context.Context, g *gitlab.Client, p gitlab.ProjectRef, a *gitlab.Agent) (*gitlab.URLConfiguration, error) {
	list, err := urlConfigurations(ctx, g, p, a)
	switch {
	case gitlab.IsClass(err, gitlab.ClassForbidden):
		return nil, nil
	case err != nil || len(list) == 0:
		return nil, err
	}
	return list[0], nil
}

// apiJWTOf is the GitLab key a receptive agent's Secret s (nil: none)
// holds; "" none.
func apiJWTOf(s *corev1.Secret) string {
	if s == nil {
		return ""
	}
	return string(s.Data[manifest.APIJWTKey])
}

// keepReceptive keeps a receptive agent receptive, with the key GitLab gave
// it, unless the values say otherwise: what install took from GitLab is
// carried over, as the KAS address is.
func keepReceptive(in *manifest.Input, cur *installed) {
	if !cur.Receptive || in.Set.Has(manifest.KeyReceptiveEnabled) {
		return
	}
	in.Values.Config.Receptive.Enabled = true
	if cur.APIJWTFile != "" && cur.apiJWT != "" && !in.Set.Has(manifest.KeyJWTPublicKey) {
		in.Values.Config.API.JWTPublicKey = cur.apiJWT
	}
}
