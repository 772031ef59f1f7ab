package fakegitlab

import (
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"strings"
)

// git's smart HTTP protocol at /<path_with_namespace>.git/..., served by
// git http-backend, read only (a push is refused with 403, as for a deploy
// token without write_repository), with GitLab's basic authentication: a
// deploy token of the project with read_repository (username = the
// token's username, password = the token), or a personal access token with
// api, read_repository or write_repository of a member who may read code
// (Reporter or more; any username). Anything else is a 401 with
// WWW-Authenticate: Basic realm="GitLab".

// isGitPath reports a request for a repository over HTTP.
func isGitPath(path string) bool {
	return !strings.HasPrefix(path, api+"/") && strings.Contains(path, ".git/")
}

// gitProject finds the project of a smart HTTP path and the rest of it
// ("info/refs", "git-upload-pack", ...).
func (s *Server) gitProject(path string) (*Project, string) {
	repo, rest, ok := strings.Cut(strings.TrimPrefix(path, "/"), ".git/")
	if !ok {
		return nil, ""
	}
	for _, p := range s.projects {
		if p.PathWithNS == repo {
			return p, rest
		}
	}
	return nil, rest
}

// gitAuthorized reports whether basic credentials may read p's repository.
func (s *Server) gitAuthorized(p *Project, username, password string) bool {
	if password == "" {
		return false
	}
	if s.deployTokenFor(p, username, password, "read_repository") != nil {
		return true
	}
	c := s.creds[password]
	if c == nil || c.kind != "pat" {
		return false
	}
	pat := s.pats[c.patID]
	if pat == nil || pat.Revoked || (pat.ExpiresAt != "" && pat.ExpiresAt <= s.now().UTC().Format("2006-01-02")) {
		return false
	}
	scoped := false
	for _, sc := range pat.Scopes {
		scoped = scoped || sc == "api" || sc == "read_repository" || sc == "write_repository"
	}
	return scoped && s.users[c.userID] != nil && p.Members[c.userID] >= Reporter
}

func (s *Server) serveGit(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	p, rest := s.gitProject(r.URL.Path)
	user, pass, hasAuth := r.BasicAuth()
	ok := p != nil && hasAuth && s.gitAuthorized(p, user, pass)
	var g *gitRepo
	var err error
	if ok {
		g, err = s.repo(p)
	}
	root := s.gitRoot
	s.mu.Unlock()
	if !ok {
		// As GitLab: a project the caller may not read is not told
		// apart from one that does not exist.
		w.Header().Set("WWW-Authenticate", `Basic realm="GitLab"`)
		http.Error(w, "HTTP Basic: Access denied.", http.StatusUnauthorized)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	service := r.URL.Query().Get("service")
	switch {
	case rest == "git-receive-pack" || service == "git-receive-pack":
		http.Error(w, "You are not allowed to upload code.", http.StatusForbidden)
		return
	case rest == "info/refs" && r.Method == http.MethodGet && service == "git-upload-pack",
		rest == "git-upload-pack" && r.Method == http.MethodPost:
	default: // the dumb protocol and anything else: GitLab serves neither
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	bin, err := exec.LookPath("git")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	// The backend needs no credential: the request goes on without it.
	req := r.Clone(r.Context())
	req.Header.Del("Authorization")
	h := &cgi.Handler{
		Path: bin,
		Args: []string{"http-backend"},
		Dir:  g.dir,
		Env: append(gitEnv(g.dir)[1:], // not GIT_DIR: the backend finds the repository from the path
			"GIT_PROJECT_ROOT="+root,
			"GIT_HTTP_EXPORT_ALL=1",
			"REMOTE_USER="+user,
		),
		Stderr: os.Stderr,
	}
	h.ServeHTTP(w, req)
}
