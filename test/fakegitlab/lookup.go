package fakegitlab

import (
	"time"
)

// Lookups for test/fakekas, which asks GitLab what KAS asks it.

// LookupPAT resolves a personal access token to its user and scopes; ok is
// false for an unknown, revoked or expired token.
func (s *Server) LookupPAT(token string) (u *User, scopes []string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.creds[token]
	if c == nil || c.kind != "pat" {
		return nil, nil, false
	}
	p := s.pats[c.patID]
	if p == nil || p.Revoked || (p.ExpiresAt != "" && p.ExpiresAt <= s.now().UTC().Format("2006-01-02")) {
		return nil, nil, false
	}
	return s.users[c.userID], append([]string(nil), p.Scopes...), true
}

// LookupJobToken resolves a CI job token to the job's user and project.
func (s *Server) LookupJobToken(token string) (*User, *Project, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.creds[token]
	if c == nil || c.kind != "job" {
		return nil, nil, false
	}
	return s.users[c.userID], s.projects[c.jobPID], true
}

// AgentByID finds an agent and its config project.
func (s *Server) AgentByID(id int64) (*Agent, *Project, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.agents[id]
	if a == nil {
		return nil, nil, false
	}
	return a, s.projects[a.ProjectID], true
}

// ProjectByPath finds a project by its full path.
func (s *Server) ProjectByPath(path string) *Project {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.projects {
		if p.PathWithNS == path {
			return p
		}
	}
	return nil
}

// RoleOf is u's role in p.
func (s *Server) RoleOf(p *Project, u *User) Role {
	s.mu.Lock()
	defer s.mu.Unlock()
	return p.Members[u.ID]
}

// RevokePAT revokes a personal access token by value, as a user would in
// GitLab's settings.
func (s *Server) RevokePAT(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.creds[token]; c != nil && c.kind == "pat" {
		if p := s.pats[c.patID]; p != nil {
			p.Revoked = true
		}
	}
}

// SetNow replaces the fake's clock (for expiry tests).
func (s *Server) SetNow(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// ProjectsUnder lists the projects in group (and its subgroups).
func (s *Server) ProjectsUnder(group string) []*Project {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Project
	for _, p := range s.projects {
		if len(p.PathWithNS) > len(group) && p.PathWithNS[:len(group)+1] == group+"/" {
			out = append(out, p)
		}
	}
	return out
}
