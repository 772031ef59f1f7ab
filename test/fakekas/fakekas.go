// Package fakekas stands in for KAS's Kubernetes API proxy (/k8s-proxy/) in
// tests: it checks the one credential a request carries against the fake
// GitLab (a k8s_proxy personal access token allowed by the agent's
// user_access, or a CI job token allowed by its ci_access), answers KAS's
// refusals, strips the credential and the prefix, impersonates as the
// agent's config says, and forwards to a real kube-apiserver, connection
// upgrades (exec, attach, port-forward) included.
package fakekas

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

// Prefix is where KAS serves the Kubernetes API proxy.
const Prefix = "/k8s-proxy"

// Server is a fake KAS over TLS on loopback.
type Server struct {
	*httptest.Server
	gitlab *fakegitlab.Server

	mu       sync.Mutex
	requests []Request
	seen     []Seen
}

// Seen is every request that reached the fake KAS, refused or not: its path
// as sent, and whether it carried a credential.
type Seen struct {
	RawPath       string
	Authorization bool
}

// Request records a proxied request: who it was forwarded as.
type Request struct {
	Method, Path string
	Status       int
	// As is "agent", or the impersonated user.
	As string
	// Credential is the kind of credential it came with: "pat" or "ci".
	Credential string
}

// New starts a fake KAS that forwards to the apiserver of upstream (admin
// credentials stand in for agentk's ServiceAccount).
func New(g *fakegitlab.Server, upstream *rest.Config) (*Server, error) {
	target, err := url.Parse(upstream.Host)
	if err != nil {
		return nil, err
	}
	rt, err := rest.TransportFor(upstream)
	if err != nil {
		return nil, err
	}
	// Upgrades (SPDY especially) need HTTP/1.1 to the apiserver.
	h1 := rest.CopyConfig(upstream)
	h1.TLSClientConfig.NextProtos = []string{"http/1.1"}
	upgradeRT, err := rest.TransportFor(h1)
	if err != nil {
		return nil, err
	}
	s := &Server{gitlab: g}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.URL.Path = strings.TrimPrefix(pr.In.URL.Path, Prefix)
			pr.Out.URL.RawPath = ""
			pr.Out.Host = target.Host
		},
		Transport:     byUpgrade{normal: rt, upgrade: upgradeRT},
		FlushInterval: -1,
	}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.serve(w, r, proxy)
	}))
	s.EnableHTTP2 = true
	s.StartTLS()
	return s, nil
}

// ProxyURL is the Kubernetes API proxy URL GitLab's /metadata reports.
func (s *Server) ProxyURL() string { return s.URL + Prefix }

// Requests lists what was proxied.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// status answers as KAS does: a metav1.Status whose message starts
// "GitLab Agent Server: ".
func status(w http.ResponseWriter, code int, msg string, gitlabUnauthorized bool) {
	if gitlabUnauthorized {
		w.Header().Set("Gitlab-Unauthorized", "true")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	reason := strings.ReplaceAll(http.StatusText(code), " ", "")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{},
		"status": "Failure", "message": "GitLab Agent Server: " + msg, "reason": reason, "code": code,
	})
}

// agentConfig is the part of config.yaml KAS reads for the proxy.
type agentConfig struct {
	CIAccess struct {
		Projects []accessEntry `json:"projects"`
		Groups   []accessEntry `json:"groups"`
	} `json:"ci_access"`
	UserAccess struct {
		AccessAs map[string]any `json:"access_as"`
		Projects []accessEntry  `json:"projects"`
		Groups   []accessEntry  `json:"groups"`
	} `json:"user_access"`
}

type accessEntry struct {
	ID       string         `json:"id"`
	AccessAs map[string]any `json:"access_as"`
}

// Seen lists every request received, in order.
func (s *Server) Seen() []Seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Seen(nil), s.seen...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, proxy *httputil.ReverseProxy) {
	s.mu.Lock()
	s.seen = append(s.seen, Seen{RawPath: r.URL.EscapedPath(), Authorization: r.Header.Get("Authorization") != ""})
	s.mu.Unlock()
	if !strings.HasPrefix(r.URL.Path, Prefix+"/") && r.URL.Path != Prefix {
		status(w, http.StatusNotFound, "Not Found", false)
		return
	}
	auth := r.Header.Values("Authorization")
	if len(auth) != 1 || r.Header.Get("Cookie") != "" {
		status(w, http.StatusUnauthorized, "Unauthorized: exactly one credential is needed", false)
		return
	}
	kind, rest, ok := strings.Cut(strings.TrimPrefix(auth[0], "Bearer "), ":")
	agentIDText, token, ok2 := strings.Cut(rest, ":")
	agentID, err := strconv.ParseInt(agentIDText, 10, 64)
	if !strings.HasPrefix(auth[0], "Bearer ") || !ok || !ok2 || err != nil || (kind != "pat" && kind != "ci") {
		status(w, http.StatusUnauthorized, "Unauthorized: invalid authorization header", false)
		return
	}
	agent, cfgProject, found := s.gitlab.AgentByID(agentID)
	if !found {
		status(w, http.StatusUnauthorized, "Unauthorized", true)
		return
	}
	cfg := s.config(agent, cfgProject)
	as := "agent"
	switch kind {
	case "pat":
		u, scopes, valid := s.gitlab.LookupPAT(token)
		if !valid || !slices.Contains(scopes, "k8s_proxy") || !s.userAllowed(u, cfg) {
			status(w, http.StatusUnauthorized, "Unauthorized", true)
			return
		}
		if _, impersonate := cfg.UserAccess.AccessAs["user"]; impersonate {
			as = u.Username
			for k := range r.Header {
				if strings.HasPrefix(k, "Impersonate-") {
					r.Header.Del(k)
				}
			}
			r.Header.Set("Impersonate-User", "gitlab:user:"+u.Username)
			r.Header.Add("Impersonate-Group", "gitlab:user")
		}
	case "ci":
		_, p, valid := s.gitlab.LookupJobToken(token)
		if !valid {
			status(w, http.StatusUnauthorized, "Unauthorized", true)
			return
		}
		if p.ID != cfgProject.ID && !hasEntry(cfg.CIAccess.Projects, p.PathWithNS) && !inGroup(cfg.CIAccess.Groups, p.PathWithNS) {
			status(w, http.StatusForbidden, "Forbidden: agentId is not allowed", false)
			return
		}
	}
	r.Header.Del("Authorization")
	r.Header.Del("Cookie")
	rec := &fakegitlab.StatusRecorder{ResponseWriter: w}
	proxy.ServeHTTP(rec, r)
	s.mu.Lock()
	s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Status: rec.Status, As: as, Credential: kind})
	s.mu.Unlock()
}

func (s *Server) config(a *fakegitlab.Agent, p *fakegitlab.Project) agentConfig {
	var cfg agentConfig
	if b, ok := s.gitlab.File(p, p.DefaultBranch, ".gitlab/agents/"+a.Name+"/config.yaml"); ok {
		_ = yaml.Unmarshal(b, &cfg)
	}
	return cfg
}

// userAllowed: the user must be at least Developer in a project (or a
// project under a group) that user_access names.
func (s *Server) userAllowed(u *fakegitlab.User, cfg agentConfig) bool {
	for _, e := range cfg.UserAccess.Projects {
		if p := s.gitlab.ProjectByPath(e.ID); p != nil && s.gitlab.RoleOf(p, u) >= fakegitlab.Developer {
			return true
		}
	}
	for _, e := range cfg.UserAccess.Groups {
		for _, p := range s.gitlab.ProjectsUnder(e.ID) {
			if s.gitlab.RoleOf(p, u) >= fakegitlab.Developer {
				return true
			}
		}
	}
	return false
}

func hasEntry(entries []accessEntry, path string) bool {
	for _, e := range entries {
		if e.ID == path {
			return true
		}
	}
	return false
}

func inGroup(groups []accessEntry, path string) bool {
	for _, g := range groups {
		if strings.HasPrefix(path, g.ID+"/") {
			return true
		}
	}
	return false
}

// byUpgrade sends connection upgrades over HTTP/1.1, the rest as usual.
type byUpgrade struct{ normal, upgrade http.RoundTripper }

func (b byUpgrade) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("Upgrade") != "" {
		return b.upgrade.RoundTrip(r)
	}
	return b.normal.RoundTrip(r)
}
