package tunnel

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/publicsuffix"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// CheckProxyURL decides whether k8s_proxy credentials may go to proxyURL,
// KAS's Kubernetes API proxy for the GitLab at gitlabURL. A URL the user
// named (fromUser) is taken as given. One that GitLab's /metadata advertised
// must be https when GitLab is (no downgrade to cleartext), and on GitLab's
// own site (kas.gitlab.com for gitlab.com; the same registrable domain, or
// both on this machine): a credential goes only where it was made for.
func CheckProxyURL(gitlabURL, proxyURL string, fromUser bool) error {
	p, err := url.Parse(proxyURL)
	if err != nil || p.Host == "" || (p.Scheme != "https" && p.Scheme != "http") || p.User != nil {
		return fmt.Errorf("invalid KAS proxy URL %q: want https://host/path", proxyURL)
	}
	if fromUser {
		return nil
	}
	g, err := url.Parse(gitlabURL)
	if err != nil || g.Host == "" {
		return fmt.Errorf("invalid GitLab URL %q", gitlabURL)
	}
	if g.Scheme == "https" && p.Scheme != "https" {
		return fmt.Errorf("GitLab at %s advertises its Kubernetes API proxy at %s, over plain http: the k8s_proxy token would cross the network unencrypted; pass --kas-proxy-url with KAS's https address", g.Host, p.Redacted())
	}
	if !SameSite(g.Hostname(), p.Hostname()) {
		return fmt.Errorf("GitLab at %s advertises its Kubernetes API proxy on another site (%s): credentials go only to GitLab's own site; if %s is your KAS, pass --kas-proxy-url %s", g.Host, p.Host, p.Host, p.Redacted())
	}
	return nil
}

// SameSite reports whether two hosts belong to one site: the same host, the
// same registrable domain (kas.gitlab.com and gitlab.com), or both this
// machine.
func SameSite(a, b string) bool {
	a, b = strings.ToLower(strings.TrimSuffix(a, ".")), strings.ToLower(strings.TrimSuffix(b, "."))
	if a == b {
		return true
	}
	if loopback(a) && loopback(b) {
		return true
	}
	if net.ParseIP(a) != nil || net.ParseIP(b) != nil {
		return false
	}
	ea, err1 := publicsuffix.EffectiveTLDPlusOne(a)
	eb, err2 := publicsuffix.EffectiveTLDPlusOne(b)
	return err1 == nil && err2 == nil && ea == eb
}

func loopback(h string) bool {
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// DerivedProxyURL is where KAS's Kubernetes API proxy is on a GitLab whose
// /metadata cannot be read (a CI job token may not read it): on GitLab.com
// https://kas.gitlab.com/k8s-proxy, on a self-managed instance
// <GitLab URL>/-/kubernetes-agent/k8s-proxy, where Omnibus and the GitLab
// chart serve it by default.
func DerivedProxyURL(gitlabURL string) (string, error) {
	g, err := url.Parse(strings.TrimRight(gitlabURL, "/"))
	if err != nil || g.Host == "" || (g.Scheme != "https" && g.Scheme != "http") {
		return "", fmt.Errorf("invalid GitLab URL %q", gitlabURL)
	}
	if strings.EqualFold(g.Hostname(), "gitlab.com") {
		return "https://kas.gitlab.com/k8s-proxy", nil
	}
	return g.Scheme + "://" + g.Host + g.Path + "/-/kubernetes-agent/k8s-proxy", nil
}

// InjectedAgentID finds the agent ID of context (PROJECT_PATH:AGENT_NAME)
// in the kubeconfig GitLab injects into a CI job, whose user token is
// "ci:<agent-id>:<job token>". The token itself is not returned.
func InjectedAgentID(cfg *clientcmdapi.Config, context string) (int64, error) {
	c, ok := cfg.Contexts[context]
	if !ok {
		return 0, fmt.Errorf("no context %q in $KUBECONFIG: GitLab injects one per agent whose ci_access names this project; else give the agent's numeric ID", context)
	}
	u, ok := cfg.AuthInfos[c.AuthInfo]
	if !ok {
		return 0, fmt.Errorf("context %q names no user in $KUBECONFIG", context)
	}
	parts := strings.SplitN(u.Token, ":", 3)
	if len(parts) != 3 || parts[0] != "ci" {
		return 0, fmt.Errorf("context %q is not one GitLab injected (its user has no ci:<agent-id>: token): give the agent's numeric ID", context)
	}
	id, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("context %q: its token names no agent ID: give the agent's numeric ID", context)
	}
	return id, nil
}
