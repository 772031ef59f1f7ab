package fakegitlab

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

const api = "/api/v4"

// Route names for faults and Calls that are not plain mux patterns, and the
// commits route that bootstrap's tests fail most.
const (
	// CommitsRoute creates a commit with several actions.
	CommitsRoute = "POST " + api + "/projects/{id}/repository/commits"
	// ArchiveRoute is GET /repository/archive with any format suffix.
	ArchiveRoute = "GET " + api + "/projects/{id}/repository/archive"
	// GitHTTPRoute is every request of git's smart HTTP protocol
	// (/<path_with_namespace>.git/...).
	GitHTTPRoute = "GIT /{path_with_namespace}.git/"
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	h := func(pattern string, fn http.HandlerFunc) { s.handle(mux, pattern, fn) }
	h("GET "+api+"/metadata", s.getMetadata)
	h("GET "+api+"/user", s.withUser(s.getUser))
	h("GET "+api+"/projects/{id}", s.withProject(Guest, s.getProject))
	h("GET "+api+"/projects/{id}/members/all/{user_id}", s.withProject(Guest, s.getInheritedMember))
	h("GET "+api+"/groups/{id}", s.withUser(s.getGroup))
	h("GET "+api+"/groups/{id}/projects", s.withUser(s.listGroupProjects))
	h("GET "+api+"/projects/{id}/cluster_agents", s.withProject(Developer, s.listAgents))
	h("POST "+api+"/projects/{id}/cluster_agents", s.withProject(Maintainer, s.registerAgent))
	h("GET "+api+"/projects/{id}/cluster_agents/{agent_id}", s.withProject(Developer, s.getAgent))
	h("DELETE "+api+"/projects/{id}/cluster_agents/{agent_id}", s.withAgent(Maintainer, s.deleteAgent))
	h("GET "+api+"/projects/{id}/cluster_agents/{agent_id}/tokens", s.withAgent(Developer, s.listTokens))
	h("POST "+api+"/projects/{id}/cluster_agents/{agent_id}/tokens", s.withAgent(Maintainer, s.createToken))
	h("GET "+api+"/projects/{id}/cluster_agents/{agent_id}/tokens/{token_id}", s.withAgent(Developer, s.getToken))
	h("DELETE "+api+"/projects/{id}/cluster_agents/{agent_id}/tokens/{token_id}", s.withAgent(Maintainer, s.revokeToken))
	h("GET "+api+"/projects/{id}/cluster_agents/{agent_id}/url_configurations", s.withReceptive(Developer, s.listURLConfigs))
	h("POST "+api+"/projects/{id}/cluster_agents/{agent_id}/url_configurations", s.withReceptive(Maintainer, s.createURLConfig))
	h("GET "+api+"/projects/{id}/cluster_agents/{agent_id}/url_configurations/{url_configuration_id}", s.withReceptive(Developer, s.getURLConfig))
	h("DELETE "+api+"/projects/{id}/cluster_agents/{agent_id}/url_configurations/{url_configuration_id}", s.withReceptive(Maintainer, s.deleteURLConfig))
	h("GET "+api+"/projects/{id}/repository/files/{path}", s.withProject(Reporter, s.getFile))
	h("HEAD "+api+"/projects/{id}/repository/files/{path}", s.withProject(Reporter, s.getFile))
	h("POST "+api+"/projects/{id}/repository/files/{path}", s.withProject(Developer, s.writeFile))
	h("PUT "+api+"/projects/{id}/repository/files/{path}", s.withProject(Developer, s.writeFile))
	h("POST "+api+"/projects/{id}/repository/commits", s.withProject(Developer, s.createCommit))
	h("GET "+api+"/projects/{id}/repository/commits", s.withProject(Reporter, s.listCommits))
	h("GET "+api+"/projects/{id}/repository/commits/{sha}", s.withProject(Reporter, s.getCommit))
	h("GET "+api+"/projects/{id}/repository/tree", s.withProject(Reporter, s.listTree))
	h("GET "+api+"/projects/{id}/repository/branches/{branch}", s.withProject(Reporter, s.getBranch))
	h("POST "+api+"/projects/{id}/repository/branches", s.withProject(Developer, s.createBranch))
	// archive, archive.tar.gz, archive.zip ...: one segment, so a wildcard;
	// faults and Calls name it ArchiveRoute.
	s.handleAs(mux, "GET "+api+"/projects/{id}/repository/{archive}", ArchiveRoute, s.withProject(Reporter, s.getArchive))
	h("GET "+api+"/projects/{id}/merge_requests", s.withProject(Reporter, s.listMergeRequests))
	h("POST "+api+"/projects/{id}/merge_requests", s.withProject(Developer, s.createMergeRequest))
	h("GET "+api+"/projects/{id}/merge_requests/{iid}", s.withProject(Reporter, s.getMergeRequest))
	h("PUT "+api+"/projects/{id}/merge_requests/{iid}", s.withProject(Developer, s.updateMergeRequest))
	h("GET "+api+"/projects/{id}/deploy_tokens", s.withProject(Maintainer, s.listDeployTokens))
	h("POST "+api+"/projects/{id}/deploy_tokens", s.withProject(Maintainer, s.createDeployToken))
	h("GET "+api+"/projects/{id}/deploy_tokens/{token_id}", s.withProject(Maintainer, s.getDeployToken))
	h("DELETE "+api+"/projects/{id}/deploy_tokens/{token_id}", s.withProject(Maintainer, s.deleteDeployToken))
	h("GET "+api+"/projects/{id}/environments", s.withProject(Reporter, s.listEnvironments))
	h("POST "+api+"/projects/{id}/environments", s.withProject(Developer, s.createEnvironment))
	h("GET "+api+"/projects/{id}/environments/{environment_id}", s.withProject(Reporter, s.getEnvironment))
	h("PUT "+api+"/projects/{id}/environments/{environment_id}", s.withProject(Developer, s.updateEnvironment))
	h("POST "+api+"/projects/{id}/environments/{environment_id}/stop", s.withProject(Developer, s.stopEnvironment))
	h("DELETE "+api+"/projects/{id}/environments/{environment_id}", s.withProject(Developer, s.deleteEnvironment))
	h(GraphQLRoute, s.withUser(s.graphql))
	h("POST "+api+"/user/personal_access_tokens", s.withUser(s.createPAT))
	h("GET "+api+"/personal_access_tokens", s.withUser(s.listPATs))
	h("GET "+api+"/personal_access_tokens/self", s.withUser(s.getSelfPAT))
	h("DELETE "+api+"/personal_access_tokens/self", s.withUser(s.revokeSelfPAT))
	h("DELETE "+api+"/personal_access_tokens/{id}", s.withUser(s.revokePAT))
	git := s.wrap(GitHTTPRoute, s.serveGit)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if isGitPath(r.URL.Path) {
			git(w, r)
			return
		}
		writeError(w, http.StatusNotFound, "404 Not Found")
	})
	return mux
}

// The handlers run under s's lock with what their route needs already
// resolved: withUser authenticates the caller, withProject also finds
// {id} and checks the role, withAgent also finds {agent_id} in it. Each
// answers the failure itself (401, then 404, then 403, as GitLab orders
// them) and the handler does not run.
func (s *Server) locked(fn http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		fn(w, r)
	}
}

func (s *Server) withUser(fn func(http.ResponseWriter, *http.Request, *User, *credential)) http.HandlerFunc {
	return s.locked(func(w http.ResponseWriter, r *http.Request) {
		if u, c := s.authenticate(w, r, false); u != nil {
			fn(w, r, u, c)
		}
	})
}

func (s *Server) withProject(role Role, fn func(http.ResponseWriter, *http.Request, *User, *Project)) http.HandlerFunc {
	return s.locked(func(w http.ResponseWriter, r *http.Request) {
		if u, p := s.projectFor(w, r, role); p != nil {
			fn(w, r, u, p)
		}
	})
}

func (s *Server) withAgent(role Role, fn func(http.ResponseWriter, *http.Request, *User, *Agent)) http.HandlerFunc {
	return s.locked(func(w http.ResponseWriter, r *http.Request) {
		if u, _, a := s.agentFor(w, r, role); a != nil {
			fn(w, r, u, a)
		}
	})
}

// authenticate finds the caller from PRIVATE-TOKEN, Authorization: Bearer or
// (where jobOK) JOB-TOKEN. It answers 401 itself and returns nil when the
// caller is not authenticated. GitLab ignores a job token on endpoints that do
// not accept one, so the caller is then unauthenticated.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, jobOK bool) (*User, *credential) {
	var tok string
	switch {
	case r.Header.Get("PRIVATE-TOKEN") != "":
		tok = r.Header.Get("PRIVATE-TOKEN")
	case strings.HasPrefix(r.Header.Get("Authorization"), "Bearer "):
		tok = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	case jobOK && r.Header.Get("JOB-TOKEN") != "":
		tok = r.Header.Get("JOB-TOKEN")
	}
	c := s.creds[tok]
	if c != nil && c.kind == "pat" {
		p := s.pats[c.patID]
		if p == nil || p.Revoked || (p.ExpiresAt != "" && p.ExpiresAt <= s.now().UTC().Format("2006-01-02")) {
			c = nil
		}
	}
	if c == nil || s.users[c.userID] == nil {
		writeError(w, http.StatusUnauthorized, "401 Unauthorized")
		return nil, nil
	}
	return s.users[c.userID], c
}

// project finds {id} (a numeric ID or a URL-encoded path) that u can see;
// private projects are invisible (404) to non-members.
func (s *Server) project(w http.ResponseWriter, r *http.Request, u *User) *Project {
	id := r.PathValue("id")
	for _, p := range s.projects {
		if itoa(p.ID) == id || p.PathWithNS == id {
			if p.Members[u.ID] >= Guest {
				return p
			}
			break
		}
	}
	errNotFound(w, "Project")
	return nil
}

// allowed answers 403 and returns false unless u has at least role in p.
func allowed(w http.ResponseWriter, p *Project, u *User, role Role) bool {
	if p.Members[u.ID] < role {
		writeError(w, http.StatusForbidden, "403 Forbidden")
		return false
	}
	return true
}

// projectFor authenticates, finds the project and checks the role, in the
// order GitLab does: 401, then 404, then 403.
func (s *Server) projectFor(w http.ResponseWriter, r *http.Request, role Role) (*User, *Project) {
	u, _ := s.authenticate(w, r, false)
	if u == nil {
		return nil, nil
	}
	p := s.project(w, r, u)
	if p == nil || !allowed(w, p, u, role) {
		return nil, nil
	}
	return u, p
}

func (s *Server) getMetadata(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, _ := s.authenticate(w, r, true); u == nil {
		return
	}
	kas := map[string]any{"enabled": s.Metadata.KAS.Enabled, "externalUrl": nil, "version": nil}
	if s.Metadata.KAS.Enabled {
		kas["externalUrl"] = s.Metadata.KAS.ExternalURL
		kas["version"] = s.Metadata.KAS.Version
		if s.Metadata.KAS.ExternalK8sProxyURL != "" {
			kas["externalK8sProxyUrl"] = s.Metadata.KAS.ExternalK8sProxyURL
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"version": s.Metadata.Version, "revision": s.Metadata.Revision, "kas": kas, "enterprise": true,
	})
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request, u *User, _ *credential) {
	writeJSON(w, http.StatusOK, userJSON(u))
}

func userJSON(u *User) map[string]any {
	return map[string]any{"id": u.ID, "username": u.Username, "name": u.Name, "state": "active"}
}

func (s *Server) getProject(w http.ResponseWriter, r *http.Request, u *User, p *Project) {
	j := s.projectJSON(p)
	// What GitLab shows the caller of its own access (members only here).
	// Access through an ancestor group shows in neither.
	var access any = map[string]any{"access_level": int(p.Members[u.ID]), "notification_level": 3}
	if p.Inherited[u.ID] {
		access = nil
	}
	j["permissions"] = map[string]any{"project_access": access, "group_access": nil}
	writeJSON(w, http.StatusOK, j)
}

// getInheritedMember is a member of the project, direct or inherited.
func (s *Server) getInheritedMember(w http.ResponseWriter, r *http.Request, _ *User, p *Project) {
	id, err := strconv.ParseInt(r.PathValue("user_id"), 10, 64)
	if m := s.users[id]; err == nil && m != nil && p.Members[id] > 0 {
		j := userJSON(m)
		j["access_level"] = int(p.Members[id])
		writeJSON(w, http.StatusOK, j)
		return
	}
	errNotFound(w, "Member")
}

// getGroup answers for a group that holds a project the caller is a member
// of (groups exist here only as the paths of projects).
func (s *Server) getGroup(w http.ResponseWriter, r *http.Request, u *User, _ *credential) {
	path := r.PathValue("id")
	for _, p := range s.projects {
		if strings.HasPrefix(p.PathWithNS, path+"/") && p.Members[u.ID] >= Guest {
			parts := strings.Split(path, "/")
			writeJSON(w, http.StatusOK, map[string]any{"id": 9000 + len(path), "name": parts[len(parts)-1], "path": parts[len(parts)-1], "full_path": path})
			return
		}
	}
	errNotFound(w, "Group")
}

// listGroupProjects lists the group's projects the caller sees, its
// subgroups' too with include_subgroups=true (GitLab's default is false).
func (s *Server) listGroupProjects(w http.ResponseWriter, r *http.Request, u *User, _ *credential) {
	path := r.PathValue("id")
	if len(s.groupProjects(path, true, u)) == 0 {
		errNotFound(w, "Group")
		return
	}
	list := s.groupProjects(path, r.URL.Query().Get("include_subgroups") == "true", u)
	start, end := paginate(w, r, len(list))
	out := []any{}
	for _, p := range list[start:end] {
		out = append(out, s.projectJSON(p))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) projectJSON(p *Project) map[string]any {
	parts := strings.Split(p.PathWithNS, "/")
	return map[string]any{
		"id": p.ID, "name": parts[len(parts)-1], "path": parts[len(parts)-1],
		"path_with_namespace": p.PathWithNS, "name_with_namespace": strings.Join(parts, " / "),
		"default_branch": p.DefaultBranch, "web_url": s.URL + "/" + p.PathWithNS,
		"http_url_to_repo": s.URL + "/" + p.PathWithNS + ".git",
		"visibility":       "private",
	}
}

func (s *Server) agentJSON(a *Agent) map[string]any {
	return map[string]any{
		"id": a.ID, "name": a.Name, "created_at": a.CreatedAt.UTC(), "created_by_user_id": a.CreatedByUserID,
		"config_project": s.projectJSON(s.projects[a.ProjectID]),
	}
}

func tokenJSON(t *AgentToken, withLastUsed, withToken bool) map[string]any {
	m := map[string]any{
		"id": t.ID, "name": t.Name, "description": t.Description, "agent_id": t.AgentID,
		"status": t.Status, "created_at": t.CreatedAt.UTC(), "created_by_user_id": t.CreatedByUserID,
	}
	if withLastUsed {
		m["last_used_at"] = nil
		if t.LastUsedAt != nil {
			m["last_used_at"] = t.LastUsedAt.UTC()
		}
	}
	if withToken {
		m["token"] = t.Token
	}
	return m
}

// paginate cuts n items into the page asked for and sets GitLab's pagination
// headers. It returns the [start, end) range of the page.
func paginate(w http.ResponseWriter, r *http.Request, n int) (int, int) {
	perPage, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
	if perPage <= 0 {
		perPage = 20
	}
	if perPage > 100 {
		perPage = 100
	}
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	if page <= 0 {
		page = 1
	}
	pages := int(math.Max(1, math.Ceil(float64(n)/float64(perPage))))
	h := w.Header()
	h.Set("X-Page", strconv.Itoa(page))
	h.Set("X-Per-Page", strconv.Itoa(perPage))
	h.Set("X-Total", strconv.Itoa(n))
	h.Set("X-Total-Pages", strconv.Itoa(pages))
	h.Set("X-Prev-Page", "")
	h.Set("X-Next-Page", "")
	link := func(p int, rel string) string {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(p))
		q.Set("per_page", strconv.Itoa(perPage))
		u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawQuery: q.Encode()}
		return fmt.Sprintf("<%s>; rel=%q", u.String(), rel)
	}
	links := []string{link(1, "first"), link(pages, "last")}
	if page > 1 {
		h.Set("X-Prev-Page", strconv.Itoa(page-1))
		links = append(links, link(page-1, "prev"))
	}
	if page < pages {
		h.Set("X-Next-Page", strconv.Itoa(page+1))
		links = append(links, link(page+1, "next"))
	}
	h.Set("Link", strings.Join(links, ", "))
	start := (page - 1) * perPage
	if start > n {
		start = n
	}
	end := start + perPage
	if end > n {
		end = n
	}
	return start, end
}

func (s *Server) listAgents(w http.ResponseWriter, r *http.Request, _ *User, p *Project) {
	var list []*Agent
	for _, a := range s.agents {
		if a.ProjectID == p.ID {
			list = append(list, a)
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	start, end := paginate(w, r, len(list))
	out := []any{}
	for _, a := range list[start:end] {
		out = append(out, s.agentJSON(a))
	}
	writeJSON(w, http.StatusOK, out)
}

// agentNameRE is GitLab's rule for agent names.
var agentNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func (s *Server) registerAgent(w http.ResponseWriter, r *http.Request, u *User, p *Project) {
	var body struct {
		Name string `json:"name"`
	}
	if err := decodeBody(r, &body); err != nil || body.Name == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "name is missing"})
		return
	}
	if len(body.Name) > 63 || !agentNameRE.MatchString(body.Name) {
		writeError(w, http.StatusBadRequest, map[string]any{"name": []string{"can contain only lowercase letters, digits, and '-', but cannot start or end with '-'"}})
		return
	}
	for _, a := range s.agents {
		if a.ProjectID == p.ID && a.Name == body.Name {
			writeError(w, http.StatusBadRequest, map[string]any{"name": []string{"has already been taken"}})
			return
		}
	}
	a := &Agent{ID: s.id(), ProjectID: p.ID, Name: body.Name, CreatedAt: s.now(), CreatedByUserID: u.ID}
	s.agents[a.ID] = a
	writeJSON(w, http.StatusCreated, s.agentJSON(a))
}

// agentFor is projectFor and then {agent_id} in the project; it answers the
// failure itself and returns a nil agent then.
func (s *Server) agentFor(w http.ResponseWriter, r *http.Request, role Role) (*User, *Project, *Agent) {
	u, p := s.projectFor(w, r, role)
	if p == nil {
		return nil, nil, nil
	}
	return u, p, s.agent(w, r, p)
}

// agent finds {agent_id} in p.
func (s *Server) agent(w http.ResponseWriter, r *http.Request, p *Project) *Agent {
	return child(w, r, s.agents, "agent_id", "Agent", func(a *Agent) bool { return a.ProjectID == p.ID })
}

// child is the object the path's param names, when in belongs; else it
// answers 404 "<what> Not Found", as GitLab does for an ID of another parent.
func child[T any](w http.ResponseWriter, r *http.Request, objects map[int64]*T, param, what string, in func(*T) bool) *T {
	o := objects[parseID(r.PathValue(param))]
	if o == nil || !in(o) {
		errNotFound(w, what)
		return nil
	}
	return o
}

func parseID(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

func (s *Server) getAgent(w http.ResponseWriter, r *http.Request, _ *User, p *Project) {
	if a := s.agent(w, r, p); a != nil {
		writeJSON(w, http.StatusOK, s.agentJSON(a))
	}
}

func (s *Server) deleteAgent(w http.ResponseWriter, r *http.Request, _ *User, a *Agent) {
	delete(s.agents, a.ID)
	for id, u := range s.urls {
		if u.AgentID == a.ID {
			delete(s.urls, id) // the database's cascade
		}
	}
	for _, t := range s.tokens {
		if t.AgentID == a.ID {
			t.Status = "revoked"
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, _ *User, a *Agent) {
	var list []*AgentToken
	for _, t := range s.tokens {
		if t.AgentID == a.ID && t.Status == "active" {
			list = append(list, t)
		}
	}
	// Ordered by last use, newest first; never-used tokens last.
	sort.Slice(list, func(i, j int) bool {
		li, lj := list[i].LastUsedAt, list[j].LastUsedAt
		switch {
		case li != nil && lj != nil && !li.Equal(*lj):
			return li.After(*lj)
		case li != nil && lj == nil:
			return true
		case li == nil && lj != nil:
			return false
		}
		return list[i].ID > list[j].ID
	})
	start, end := paginate(w, r, len(list))
	out := []any{}
	for _, t := range list[start:end] {
		out = append(out, tokenJSON(t, false, false))
	}
	writeJSON(w, http.StatusOK, out)
}

// MaxActiveTokens is GitLab's limit of active tokens per agent.
const MaxActiveTokens = 2

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, u *User, a *Agent) {
	var body struct {
		Name        string `json:"name"`
		Description string `json:"description"`
	}
	if err := decodeBody(r, &body); err != nil || body.Name == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "name is missing"})
		return
	}
	active := 0
	for _, t := range s.tokens {
		if t.AgentID == a.ID && t.Status == "active" {
			active++
		}
	}
	if active >= MaxActiveTokens {
		writeError(w, http.StatusBadRequest, "An agent can have only two active tokens at a time")
		return
	}
	t := s.newAgentToken(a.ID, body.Name, body.Description, u.ID)
	writeJSON(w, http.StatusCreated, tokenJSON(t, true, true))
}

func (s *Server) token(w http.ResponseWriter, r *http.Request, a *Agent) *AgentToken {
	return child(w, r, s.tokens, "token_id", "AgentToken", func(t *AgentToken) bool { return t.AgentID == a.ID })
}

func (s *Server) getToken(w http.ResponseWriter, r *http.Request, _ *User, a *Agent) {
	t := s.token(w, r, a)
	if t == nil {
		return
	}
	if t.Status != "active" {
		errNotFound(w, "AgentToken")
		return
	}
	writeJSON(w, http.StatusOK, tokenJSON(t, true, false))
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, _ *User, a *Agent) {
	t := s.token(w, r, a)
	if t == nil {
		return
	}
	t.Status = "revoked" // also 204 when it was revoked already
	w.WriteHeader(http.StatusNoContent)
}

func patJSON(p *PersonalAccessToken, withToken bool) map[string]any {
	m := map[string]any{
		"id": p.ID, "name": p.Name, "revoked": p.Revoked, "created_at": p.CreatedAt.UTC(), "scopes": p.Scopes,
		"user_id": p.UserID, "active": !p.Revoked, "expires_at": nil,
	}
	if p.ExpiresAt != "" {
		m["expires_at"] = p.ExpiresAt
	}
	if withToken {
		m["token"] = p.Token
	}
	return m
}

func (s *Server) createPAT(w http.ResponseWriter, r *http.Request, u *User, _ *credential) {
	var body struct {
		Name      string   `json:"name"`
		Scopes    []string `json:"scopes"`
		ExpiresAt string   `json:"expires_at"`
	}
	if err := decodeBody(r, &body); err != nil || body.Name == "" || len(body.Scopes) == 0 {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "name, scopes are missing"})
		return
	}
	for _, sc := range body.Scopes {
		if sc != "k8s_proxy" && sc != "self_rotate" {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "scopes does not have a valid value"})
			return
		}
	}
	if body.ExpiresAt != "" {
		if _, err := time.Parse("2006-01-02", body.ExpiresAt); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "expires_at is invalid"})
			return
		}
	}
	p := &PersonalAccessToken{ID: s.id(), UserID: u.ID, Name: body.Name, Scopes: body.Scopes,
		ExpiresAt: body.ExpiresAt, CreatedAt: s.now(), Token: "glpat-" + randomString(20)}
	s.pats[p.ID] = p
	s.creds[p.Token] = &credential{userID: u.ID, kind: "pat", patID: p.ID}
	writeJSON(w, http.StatusCreated, patJSON(p, true))
}

// listPATs lists the caller's own personal access tokens (what GitLab shows a
// user who is not an administrator), filtered by search, state and revoked.
func (s *Server) listPATs(w http.ResponseWriter, r *http.Request, u *User, _ *credential) {
	q := r.URL.Query()
	if uid := q.Get("user_id"); uid != "" && parseID(uid) != u.ID {
		writeError(w, http.StatusUnauthorized, "401 Unauthorized")
		return
	}
	var list []*PersonalAccessToken
	for _, p := range s.pats {
		switch {
		case p.UserID != u.ID:
		case q.Get("search") != "" && !strings.Contains(strings.ToLower(p.Name), strings.ToLower(q.Get("search"))):
		case q.Get("state") == "active" && p.Revoked, q.Get("state") == "inactive" && !p.Revoked:
		case q.Get("revoked") == "true" && !p.Revoked, q.Get("revoked") == "false" && p.Revoked:
		default:
			list = append(list, p)
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	start, end := paginate(w, r, len(list))
	out := []map[string]any{}
	for _, p := range list[start:end] {
		out = append(out, patJSON(p, false))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getSelfPAT(w http.ResponseWriter, r *http.Request, _ *User, c *credential) {
	if c.kind != "pat" {
		writeError(w, http.StatusNotFound, "404 Not Found")
		return
	}
	writeJSON(w, http.StatusOK, patJSON(s.pats[c.patID], false))
}

func (s *Server) revokePAT(w http.ResponseWriter, r *http.Request, u *User, _ *credential) {
	p := s.pats[parseID(r.PathValue("id"))]
	if p == nil || p.UserID != u.ID {
		errNotFound(w, "PersonalAccessToken")
		return
	}
	p.Revoked = true
	w.WriteHeader(http.StatusNoContent)
}

// revokeSelfPAT revokes the token the request authenticates with (any scope).
func (s *Server) revokeSelfPAT(w http.ResponseWriter, r *http.Request, _ *User, c *credential) {
	if c.kind != "pat" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "400 Bad request - requires token type to be a personal access token"})
		return
	}
	s.pats[c.patID].Revoked = true
	w.WriteHeader(http.StatusNoContent)
}

func decodeBody(r *http.Request, v any) error {
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		return json.NewDecoder(r.Body).Decode(v)
	}
	// The client may send form values; accept them for the string fields.
	if err := r.ParseForm(); err != nil {
		return err
	}
	m := map[string]any{}
	for k, vals := range r.Form {
		if len(vals) == 1 && !strings.HasSuffix(k, "[]") {
			m[k] = vals[0]
		} else {
			m[strings.TrimSuffix(k, "[]")] = vals
		}
	}
	b, _ := json.Marshal(m)
	return json.Unmarshal(b, v)
}
