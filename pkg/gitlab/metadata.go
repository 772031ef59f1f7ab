package gitlab

import (
	"context"
	"fmt"
	"net/url"
	"strings"
)

// KAS is where GitLab's Kubernetes Agent Server is, from GET /metadata.
type KAS struct {
	// AgentURL is what agentk dials (--kas-address).
	AgentURL string `json:"agentURL"`
	// ProxyURL is the Kubernetes API proxy (…/k8s-proxy).
	ProxyURL string `json:"proxyURL"`
	// Version is KAS's version, e.g. 17.3.1.
	Version string `json:"version"`
	// GitLabVersion is the instance's version.
	GitLabVersion string `json:"gitlabVersion"`
}

// ErrKASDisabled means the instance has no KAS.
type ErrKASDisabled struct{ URL string }

func (e *ErrKASDisabled) Error() string {
	return fmt.Sprintf("GitLab at %s has the agent server (KAS) disabled: an administrator must enable it before agents can connect", e.URL)
}

// DiscoverKAS reads KAS's addresses and version from GET /metadata.
func (c *Client) DiscoverKAS(ctx context.Context) (*KAS, error) {
	_, cancel, opt := c.call(ctx, repeatable)
	defer cancel()
	md, resp, err := c.api.Metadata.GetMetadata(opt)
	if err != nil {
		return nil, c.classify("reading GitLab's metadata", resp, err, hints{
			notFound: "this GitLab has no /api/v4/metadata (it needs GitLab 15.2 or later)",
		})
	}
	if !md.KAS.Enabled || md.KAS.ExternalURL == "" {
		return nil, &ErrKASDisabled{URL: c.baseURL}
	}
	proxy := md.KAS.ExternalK8SProxyURL
	if proxy == "" {
		if proxy, err = ProxyURLFromAgentURL(md.KAS.ExternalURL); err != nil {
			return nil, err
		}
	}
	return &KAS{AgentURL: md.KAS.ExternalURL, ProxyURL: strings.TrimRight(proxy, "/"), Version: md.KAS.Version, GitLabVersion: md.Version}, nil
}

// ProxyURLFromAgentURL derives the Kubernetes API proxy URL from agentk's KAS
// address, as GitLab does before 17.6: the scheme becomes https and
// "k8s-proxy" is appended to the path (wss://kas.gitlab.com →
// https://kas.gitlab.com/k8s-proxy).
func ProxyURLFromAgentURL(agentURL string) (string, error) {
	u, err := url.Parse(agentURL)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("GitLab reports an unusable KAS address %q", agentURL)
	}
	u.Scheme = "https"
	u.Path = strings.TrimRight(u.Path, "/") + "/k8s-proxy"
	u.RawPath = ""
	return u.String(), nil
}
