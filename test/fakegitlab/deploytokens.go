package fakegitlab

import (
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Project deploy tokens, as doc/api/deploy_tokens.md describes them: every
// endpoint needs the Maintainer role, the token's value is only in the
// create answer, and DELETE removes the token. A token with
// read_repository clones the project over smart HTTP (smarthttp.go).

// DeployToken is a project deploy token.
type DeployToken struct {
	ID        int64
	ProjectID int64
	Name      string
	Username  string
	Token     string
	Scopes    []string
	ExpiresAt *time.Time
	Revoked   bool
	CreatedAt time.Time
}

// deployTokenScopes are the scopes GitLab accepts for a deploy token.
var deployTokenScopes = map[string]bool{
	"read_repository": true, "read_registry": true, "write_registry": true,
	"read_package_registry": true, "write_package_registry": true,
	"read_virtual_registry": true, "write_virtual_registry": true,
}

var deployTokenUsernameRE = regexp.MustCompile(`^[a-zA-Z0-9._+-]+$`)

// expired reports a token past its expiry at now.
func (t *DeployToken) expired(now time.Time) bool {
	return t.ExpiresAt != nil && !t.ExpiresAt.After(now)
}

// active reports a token that authenticates: neither revoked nor expired.
func (t *DeployToken) active(now time.Time) bool { return !t.Revoked && !t.expired(now) }

func (s *Server) deployTokenJSON(t *DeployToken, withToken bool) map[string]any {
	m := map[string]any{
		"id": t.ID, "name": t.Name, "username": t.Username, "expires_at": nil, "scopes": t.Scopes,
		"revoked": t.Revoked, "expired": t.expired(s.now()),
	}
	if t.ExpiresAt != nil {
		m["expires_at"] = t.ExpiresAt.UTC()
	}
	if withToken {
		m["token"] = t.Token
	}
	return m
}

func (s *Server) newDeployToken(p *Project, name, username string, scopes []string, expires *time.Time) *DeployToken {
	t := &DeployToken{ID: s.id(), ProjectID: p.ID, Name: name, Username: username, Scopes: append([]string(nil), scopes...),
		ExpiresAt: expires, CreatedAt: s.now(), Token: "gldt-" + randomString(20)}
	if t.Username == "" {
		t.Username = "gitlab+deploy-token-" + itoa(t.ID)
	}
	s.deployTokens[t.ID] = t
	return t
}

// AddDeployToken creates a deploy token for p directly, as a fixture
// (expires nil: never). Its Token is the secret.
func (s *Server) AddDeployToken(p *Project, name string, scopes []string, expires *time.Time) *DeployToken {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.newDeployToken(p, name, "", scopes, expires)
	c := *t
	return &c
}

// RevokeDeployToken revokes a deploy token by ID, as a maintainer does in
// the project's settings (the API's DELETE removes it instead).
func (s *Server) RevokeDeployToken(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.deployTokens[id]; t != nil {
		t.Revoked = true
	}
}

// DeployTokens lists the project's deploy tokens (revoked and expired ones
// too), oldest first.
func (s *Server) DeployTokens(projectID int64) []DeployToken {
	return pick(s, s.deployTokens, func(t *DeployToken) bool { return t.ProjectID == projectID })
}

func (s *Server) listDeployTokens(w http.ResponseWriter, r *http.Request, _ *User, p *Project) {
	active := r.URL.Query().Get("active")
	var list []*DeployToken
	for _, t := range s.deployTokens {
		if t.ProjectID != p.ID || (active == "true" && !t.active(s.now())) || (active == "false" && t.active(s.now())) {
			continue
		}
		list = append(list, t)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	start, end := paginate(w, r, len(list))
	out := []any{}
	for _, t := range list[start:end] {
		out = append(out, s.deployTokenJSON(t, false))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) createDeployToken(w http.ResponseWriter, r *http.Request, _ *User, p *Project) {
	var body struct {
		Name      string   `json:"name"`
		Scopes    []string `json:"scopes"`
		ExpiresAt string   `json:"expires_at"`
		Username  string   `json:"username"`
	}
	bad := func(msg string) { writeJSON(w, http.StatusBadRequest, map[string]any{"error": msg}) }
	if err := decodeBody(r, &body); err != nil {
		bad("invalid body")
		return
	}
	switch {
	case body.Name == "":
		bad("name is missing")
		return
	case len(body.Scopes) == 0:
		bad("scopes is missing")
		return
	}
	for _, sc := range body.Scopes {
		if !deployTokenScopes[sc] {
			bad("scopes does not have a valid value")
			return
		}
	}
	var expires *time.Time
	if body.ExpiresAt != "" {
		t, err := time.Parse(time.RFC3339, body.ExpiresAt)
		if err != nil {
			t, err = time.Parse("2006-01-02", body.ExpiresAt)
		}
		if err != nil {
			bad("expires_at is invalid")
			return
		}
		expires = &t
	}
	if body.Username != "" && !deployTokenUsernameRE.MatchString(body.Username) {
		writeError(w, http.StatusBadRequest, map[string]any{"username": []string{"can contain only letters, digits, '_', '-', '+', and '.'"}})
		return
	}
	t := s.newDeployToken(p, body.Name, body.Username, body.Scopes, expires)
	writeJSON(w, http.StatusCreated, s.deployTokenJSON(t, true))
}

func (s *Server) deployToken(w http.ResponseWriter, r *http.Request, p *Project) *DeployToken {
	t := s.deployTokens[parseID(r.PathValue("token_id"))]
	if t == nil || t.ProjectID != p.ID {
		writeError(w, http.StatusNotFound, "404 Not found")
		return nil
	}
	return t
}

func (s *Server) getDeployToken(w http.ResponseWriter, r *http.Request, _ *User, p *Project) {
	if t := s.deployToken(w, r, p); t != nil {
		writeJSON(w, http.StatusOK, s.deployTokenJSON(t, false))
	}
}

func (s *Server) deleteDeployToken(w http.ResponseWriter, r *http.Request, _ *User, p *Project) {
	if t := s.deployToken(w, r, p); t != nil {
		delete(s.deployTokens, t.ID)
		w.WriteHeader(http.StatusNoContent)
	}
}

// deployTokenFor finds the active deploy token of p that username and
// password name, with scope.
func (s *Server) deployTokenFor(p *Project, username, password, scope string) *DeployToken {
	for _, t := range s.deployTokens {
		if t.ProjectID == p.ID && t.Token == password && strings.EqualFold(t.Username, username) && t.active(s.now()) {
			for _, sc := range t.Scopes {
				if sc == scope {
					return t
				}
			}
		}
	}
	return nil
}
