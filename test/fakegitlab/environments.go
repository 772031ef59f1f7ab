package fakegitlab

import (
	"encoding/json"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Environments, as lib/api/environments.rb and its spec answer: Developer
// may create, change, stop and delete them (only stopped ones), Reporter
// may read them without their agent fields; a cluster agent must be one of
// the project's, a namespace needs an agent and a Flux resource path a
// namespace. Lists leave cluster_agent out; the single GET has it.

// Environment is a project's environment.
type Environment struct {
	ID, ProjectID       int64
	Name, Slug          string
	Description         string
	ExternalURL         string
	Tier                string
	State               string // available, stopping, stopped
	ClusterAgentID      *int64
	KubernetesNamespace string
	FluxResourcePath    string
	AutoStopSetting     string
	CreatedAt           time.Time
	UpdatedAt           time.Time
}

// Environments lists the project's environments, oldest first.
func (s *Server) Environments(projectID int64) []Environment {
	return pick(s, s.envs, func(e *Environment) bool { return e.ProjectID == projectID })
}

// AddEnvironment creates an available environment directly, as a fixture.
func (s *Server) AddEnvironment(p *Project, name string) *Environment {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.newEnvironment(p, name)
	c := *e
	return &c
}

func (s *Server) newEnvironment(p *Project, name string) *Environment {
	e := &Environment{ID: s.id(), ProjectID: p.ID, Name: name, Slug: envSlug(name), State: "available", Tier: guessTier(name),
		AutoStopSetting: "always", CreatedAt: s.now(), UpdatedAt: s.now()}
	s.envs[e.ID] = e
	return e
}

var envNameRE = regexp.MustCompile(`^[a-zA-Z0-9 _./${}-]+$`)

var nonSlug = regexp.MustCompile(`[^a-z0-9]+`)

// envSlug is a short DNS-safe form of the name, as GitLab makes one.
func envSlug(name string) string {
	s := strings.Trim(nonSlug.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if len(s) > 24 {
		s = strings.TrimRight(s[:24], "-")
	}
	if s == "" || s[0] < 'a' {
		s = "env-" + s
	}
	return s
}

// guessTier is GitLab's tier from an environment's name.
func guessTier(name string) string {
	n := strings.ToLower(name)
	for _, t := range []struct {
		tier string
		re   *regexp.Regexp
	}{
		{"development", regexp.MustCompile(`dev|review|trunk`)},
		{"testing", regexp.MustCompile(`test|tst|int|ac(ce|)pt|qa|qc|control|quality`)},
		{"staging", regexp.MustCompile(`st(a|)g|mod(e|)l|pre|demo|non`)},
		{"production", regexp.MustCompile(`pr(o|)d|live`)},
	} {
		if t.re.MatchString(n) {
			return t.tier
		}
	}
	return "other"
}

var envTiers = map[string]bool{"production": true, "staging": true, "testing": true, "development": true, "other": true}

// envJSON is GitLab's environment; full adds what the single GET (and
// create, update, stop) answer: cluster_agent and last_deployment. A
// reader below Developer sees none of the agent fields.
func (s *Server) envJSON(e *Environment, full bool, role Role) map[string]any {
	m := map[string]any{
		"id": e.ID, "name": e.Name, "slug": e.Slug, "description": e.Description, "external_url": nil,
		"state": e.State, "tier": e.Tier, "created_at": e.CreatedAt.UTC(), "updated_at": e.UpdatedAt.UTC(),
		"enable_advanced_logs_querying": false, "logs_api_path": nil, "auto_stop_at": nil,
		"auto_stop_setting": e.AutoStopSetting,
	}
	if e.ExternalURL != "" {
		m["external_url"] = e.ExternalURL
	}
	if role >= Developer {
		m["kubernetes_namespace"], m["flux_resource_path"] = nil, nil
		if e.KubernetesNamespace != "" {
			m["kubernetes_namespace"] = e.KubernetesNamespace
		}
		if e.FluxResourcePath != "" {
			m["flux_resource_path"] = e.FluxResourcePath
		}
	}
	if full {
		m["last_deployment"] = nil
		if role >= Developer {
			m["cluster_agent"] = nil
			if e.ClusterAgentID != nil {
				if a := s.agents[*e.ClusterAgentID]; a != nil {
					m["cluster_agent"] = s.agentJSON(a)
				}
			}
		}
	}
	return m
}

func (s *Server) listEnvironments(w http.ResponseWriter, r *http.Request, u *User, p *Project) {
	q := r.URL.Query()
	name, search, states := q.Get("name"), q.Get("search"), q.Get("states")
	bad := func(msg string) { writeJSON(w, http.StatusBadRequest, map[string]any{"error": msg}) }
	switch {
	case q.Has("name") && q.Has("search"):
		bad("name, search are mutually exclusive")
		return
	case q.Has("search") && len(search) < 3:
		bad("search must be at least 3 characters")
		return
	case states != "" && states != "available" && states != "stopping" && states != "stopped":
		bad("states does not have a valid value")
		return
	}
	var list []*Environment
	for _, e := range s.envs {
		switch {
		case e.ProjectID != p.ID:
		case q.Has("name") && e.Name != name:
		case search != "" && !strings.Contains(e.Name, search):
		case states != "" && e.State != states:
		default:
			list = append(list, e)
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	start, end := paginate(w, r, len(list))
	out := []any{}
	for _, e := range list[start:end] {
		out = append(out, s.envJSON(e, false, p.Members[u.ID]))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) environment(w http.ResponseWriter, r *http.Request, p *Project) *Environment {
	e := s.envs[parseID(r.PathValue("environment_id"))]
	if e == nil || e.ProjectID != p.ID {
		writeError(w, http.StatusNotFound, "404 Not found")
		return nil
	}
	return e
}

func (s *Server) getEnvironment(w http.ResponseWriter, r *http.Request, u *User, p *Project) {
	if e := s.environment(w, r, p); e != nil {
		writeJSON(w, http.StatusOK, s.envJSON(e, true, p.Members[u.ID]))
	}
}

// envFields are the fields create and update take; a key present with JSON
// null clears the field (update only).
type envFields map[string]json.RawMessage

func readEnvFields(r *http.Request) (envFields, error) {
	f := envFields{}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		err := json.NewDecoder(r.Body).Decode(&f)
		return f, err
	}
	if err := r.ParseForm(); err != nil {
		return nil, err
	}
	for k, v := range r.Form {
		b, _ := json.Marshal(v[0])
		f[k] = b
	}
	return f, nil
}

// str is field k as a string; set is false when k is absent, null is true
// for JSON null.
func (f envFields) str(k string) (v string, set, null bool) {
	raw, ok := f[k]
	if !ok {
		return "", false, false
	}
	if string(raw) == "null" {
		return "", true, true
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		var n json.Number
		if json.Unmarshal(raw, &n) == nil {
			return n.String(), true, false
		}
	}
	return v, true, false
}

// applyEnv checks fields and applies them to e (a copy), answering a 400
// itself as GitLab does; false then.
func (s *Server) applyEnv(w http.ResponseWriter, p *Project, e *Environment, f envFields) bool {
	bad := func(msg string) bool {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": msg})
		return false
	}
	if _, ok := f["slug"]; ok {
		return bad("slug is automatically generated and cannot be changed")
	}
	if v, set, null := f.str("cluster_agent_id"); set {
		if null || v == "" {
			e.ClusterAgentID = nil
		} else {
			id, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return bad("cluster_agent_id is invalid")
			}
			if a := s.agents[id]; a == nil || a.ProjectID != p.ID {
				writeError(w, http.StatusBadRequest, "400 Bad request - cluster agent doesn't exist or cannot be associated with this environment")
				return false
			}
			e.ClusterAgentID = &id
		}
	}
	if v, set, _ := f.str("kubernetes_namespace"); set {
		e.KubernetesNamespace = v
	}
	if v, set, _ := f.str("flux_resource_path"); set {
		e.FluxResourcePath = v
	}
	if v, set, _ := f.str("description"); set {
		e.Description = v
	}
	if v, set, _ := f.str("external_url"); set {
		if v != "" && !strings.HasPrefix(v, "http://") && !strings.HasPrefix(v, "https://") {
			writeError(w, http.StatusBadRequest, map[string]any{"external_url": []string{"is blocked: Only allowed schemes are http, https"}})
			return false
		}
		e.ExternalURL = v
	}
	if v, set, _ := f.str("tier"); set {
		if !envTiers[v] {
			return bad("tier does not have a valid value")
		}
		e.Tier = v
	}
	if v, set, _ := f.str("auto_stop_setting"); set {
		if v != "always" && v != "with_action" {
			return bad("auto_stop_setting does not have a valid value")
		}
		e.AutoStopSetting = v
	}
	switch {
	case e.KubernetesNamespace != "" && e.ClusterAgentID == nil:
		writeError(w, http.StatusBadRequest, map[string]any{"kubernetes_namespace": []string{"cannot be set without a cluster agent"}})
		return false
	case e.FluxResourcePath != "" && e.KubernetesNamespace == "":
		writeError(w, http.StatusBadRequest, map[string]any{"flux_resource_path": []string{"cannot be set without a kubernetes namespace"}})
		return false
	}
	return true
}

func (s *Server) createEnvironment(w http.ResponseWriter, r *http.Request, u *User, p *Project) {
	f, err := readEnvFields(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid body"})
		return
	}
	name, _, _ := f.str("name")
	if name == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "name is missing"})
		return
	}
	if len(name) > 255 || !envNameRE.MatchString(name) || strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") {
		writeError(w, http.StatusBadRequest, map[string]any{"name": []string{"can contain only letters, digits, '-', '_', '/', '$', '{', '}', '.', and spaces, but it cannot start or end with '/'"}})
		return
	}
	for _, e := range s.envs {
		if e.ProjectID == p.ID && e.Name == name {
			writeError(w, http.StatusBadRequest, map[string]any{"name": []string{"has already been taken"}})
			return
		}
	}
	e := Environment{Name: name, Slug: envSlug(name), State: "available", Tier: guessTier(name), AutoStopSetting: "always"}
	if !s.applyEnv(w, p, &e, f) {
		return
	}
	created := s.newEnvironment(p, name)
	id, at := created.ID, created.CreatedAt
	*created = e
	created.ID, created.ProjectID, created.CreatedAt, created.UpdatedAt = id, p.ID, at, at
	writeJSON(w, http.StatusCreated, s.envJSON(created, true, p.Members[u.ID]))
}

func (s *Server) updateEnvironment(w http.ResponseWriter, r *http.Request, u *User, p *Project) {
	e := s.environment(w, r, p)
	if e == nil {
		return
	}
	f, err := readEnvFields(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid body"})
		return
	}
	delete(f, "name") // not updatable since 16.0: GitLab ignores it
	changed := *e
	if !s.applyEnv(w, p, &changed, f) {
		return
	}
	changed.UpdatedAt = s.now()
	*e = changed
	writeJSON(w, http.StatusOK, s.envJSON(e, true, p.Members[u.ID]))
}

func (s *Server) stopEnvironment(w http.ResponseWriter, r *http.Request, u *User, p *Project) {
	if e := s.environment(w, r, p); e != nil {
		// No stop action runs here: it stops at once.
		e.State, e.UpdatedAt = "stopped", s.now()
		writeJSON(w, http.StatusOK, s.envJSON(e, true, p.Members[u.ID]))
	}
}

func (s *Server) deleteEnvironment(w http.ResponseWriter, r *http.Request, _ *User, p *Project) {
	e := s.environment(w, r, p)
	if e == nil {
		return
	}
	if e.State != "stopped" {
		writeError(w, http.StatusForbidden, "403 Forbidden")
		return
	}
	delete(s.envs, e.ID)
	w.WriteHeader(http.StatusNoContent)
}
