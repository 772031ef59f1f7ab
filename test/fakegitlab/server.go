// Package fakegitlab is an in-process stand-in for GitLab's REST API (v4) for
// tests: the endpoints the plugin uses, with GitLab's paths, JSON fields,
// status codes, error bodies, pagination headers and authentication, plus
// knobs that inject faults. Tests read its state to check results.
package fakegitlab

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Role is a project member's access level, with GitLab's numbers.
type Role int

// The access levels GitLab uses: 0, 10, ... 50.
const (
	NoAccess Role = 10 * iota
	Guest
	Reporter
	Developer
	Maintainer
	Owner
)

// Server is a fake GitLab. Create it with New; it serves on loopback until
// Close.
type Server struct {
	*httptest.Server

	mu           sync.Mutex
	nextID       int64
	now          func() time.Time
	users        map[int64]*User
	creds        map[string]*credential
	projects     map[int64]*Project
	agents       map[int64]*Agent
	tokens       map[int64]*AgentToken
	pats         map[int64]*PersonalAccessToken
	urls         map[int64]*URLConfiguration
	commits      []Commit
	deployTokens map[int64]*DeployToken
	mrs          map[int64]*MergeRequest
	envs         map[int64]*Environment
	// gitRoot holds a bare repository per project (repoPath), made when
	// first needed; Close removes it.
	gitRoot  string
	repos    map[int64]*gitRepo
	faults   []*Fault
	calls    map[string]int
	requests []Request
	// Metadata is what GET /metadata answers; once the fake serves, change it
	// with SetMetadata.
	Metadata Metadata

	// noReceptive: the instance has no receptive agents (SetReceptive).
	noReceptive bool

	// connections are the agents KAS reports connected (SetAgentConnection).
	connections map[int64]agentConnection
	// latency delays every answer (SetLatency).
	latency        time.Duration
	graphqlQueries int
	// ciImpersonation offers ci_access's impersonate, ci_user and ci_job
	// modes, as GitLab Premium does (SetCIImpersonation).
	ciImpersonation bool
}

// User is a GitLab user.
type User struct {
	ID       int64
	Username string
	Name     string
}

// Project is a GitLab project with its members. Its repository is a real
// bare git repository (RepoDir), the truth for every repository API.
type Project struct {
	ID            int64
	PathWithNS    string
	DefaultBranch string
	// Members maps user IDs to their role in the project.
	Members map[int64]Role
	// Inherited marks the members whose role comes from an ancestor group:
	// GitLab shows them no project permissions, only members/all does.
	Inherited map[int64]bool
	// ProtectedBranches need Maintainer to commit to; the default branch is
	// protected unless told otherwise.
	ProtectedBranches map[string]bool
}

// Agent is a registered agent.
type Agent struct {
	ID              int64
	ProjectID       int64
	Name            string
	CreatedAt       time.Time
	CreatedByUserID int64
}

// AgentToken is an agent's token.
type AgentToken struct {
	ID              int64
	AgentID         int64
	Name            string
	Description     string
	Status          string // active or revoked
	CreatedAt       time.Time
	CreatedByUserID int64
	LastUsedAt      *time.Time
	Token           string
}

// PersonalAccessToken is a user's token.
type PersonalAccessToken struct {
	ID        int64
	UserID    int64
	Name      string
	Scopes    []string
	ExpiresAt string // a date, YYYY-MM-DD
	CreatedAt time.Time
	Revoked   bool
	Token     string
}

// Commit is one commit made through the repository files or commits API.
// Path, Action and Content are its first action's; Actions has them all.
type Commit struct {
	ID        string
	ProjectID int64
	Branch    string
	Path      string
	Action    string // create, update, delete, move or chmod
	Message   string
	Content   []byte
	AuthorID  int64
	Actions   []CommitFile
}

// CommitFile is one action of a commit.
type CommitFile struct {
	Action       string
	Path         string
	PreviousPath string // for move
	Content      []byte // what the file holds after the commit; nil for delete
}

// Request records a call the fake received, without credentials.
type Request struct {
	Method, Path, Pattern string
	Status                int
}

// Metadata is what GET /metadata answers.
type Metadata struct {
	Version  string
	Revision string
	KAS      KASMetadata
}

// SetMetadata changes what GET /metadata answers, safely while the fake
// serves.
func (s *Server) SetMetadata(edit func(*Metadata)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	edit(&s.Metadata)
}

// KASMetadata is the kas part of /metadata.
type KASMetadata struct {
	Enabled             bool
	ExternalURL         string
	ExternalK8sProxyURL string
	Version             string
}

// credential is what a token authenticates as.
type credential struct {
	userID int64
	kind   string // pat, oauth, job
	patID  int64
	jobPID int64 // the job's project, for job tokens
}

// New starts a fake GitLab with no users or projects.
func New() *Server {
	s := newState()
	s.Server = httptest.NewServer(s.routes())
	return s
}

// Close stops the server and removes the projects' repositories.
func (s *Server) Close() {
	s.Server.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gitRoot != "" {
		_ = os.RemoveAll(s.gitRoot)
		s.gitRoot, s.repos = "", map[int64]*gitRepo{}
	}
}

// NewTLS starts a fake GitLab over HTTPS; its certificate is s.Certificate().
func NewTLS() *Server {
	s := newState()
	s.Server = httptest.NewTLSServer(s.routes())
	return s
}

func newState() *Server {
	return &Server{
		nextID:       100,
		now:          time.Now,
		users:        map[int64]*User{},
		creds:        map[string]*credential{},
		projects:     map[int64]*Project{},
		agents:       map[int64]*Agent{},
		tokens:       map[int64]*AgentToken{},
		pats:         map[int64]*PersonalAccessToken{},
		urls:         map[int64]*URLConfiguration{},
		calls:        map[string]int{},
		deployTokens: map[int64]*DeployToken{},
		mrs:          map[int64]*MergeRequest{},
		envs:         map[int64]*Environment{},
		repos:        map[int64]*gitRepo{},
		Metadata: Metadata{
			Version:  "17.3.1-ee",
			Revision: "0123abcd",
			KAS: KASMetadata{
				Enabled:     true,
				ExternalURL: "wss://kas.example.com",
				Version:     "17.3.1",
			},
		},
	}
}

// APIURL is the base URL clients use (the fake's URL; clients add /api/v4).
func (s *Server) APIURL() string { return s.URL }

func (s *Server) id() int64 {
	s.nextID++
	return s.nextID
}

// AddUser creates a user and returns it with a personal access token for it
// (scope api).
func (s *Server) AddUser(username string) (*User, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := &User{ID: s.id(), Username: username, Name: strings.ToUpper(username[:1]) + username[1:]}
	s.users[u.ID] = u
	tok := "glpat-" + randomString(20)
	pat := &PersonalAccessToken{ID: s.id(), UserID: u.ID, Name: "test", Scopes: []string{"api"}, CreatedAt: s.now(), Token: tok}
	s.pats[pat.ID] = pat
	s.creds[tok] = &credential{userID: u.ID, kind: "pat", patID: pat.ID}
	return u, tok
}

// AddOAuthToken returns an OAuth token (sent as Authorization: Bearer) for u.
func (s *Server) AddOAuthToken(u *User) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	tok := randomString(32)
	s.creds[tok] = &credential{userID: u.ID, kind: "oauth"}
	return tok
}

// AddJobToken returns a CI job token for a job of project run by u.
func (s *Server) AddJobToken(u *User, p *Project) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	tok := "glcbt-" + randomString(20)
	s.creds[tok] = &credential{userID: u.ID, kind: "job", jobPID: p.ID}
	return tok
}

// AddProject creates a project at path with default branch main and an
// empty repository (made on first use), as a new GitLab project without a
// README: the first commit to any branch creates it.
func (s *Server) AddProject(path string) *Project {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := &Project{
		ID: s.id(), PathWithNS: path, DefaultBranch: "main",
		Members:           map[int64]Role{},
		ProtectedBranches: map[string]bool{"main": true},
	}
	s.projects[p.ID] = p
	return p
}

// SetRole gives u role in p.
func (s *Server) SetRole(p *Project, u *User, r Role) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.Members[u.ID] = r
	delete(p.Inherited, u.ID)
}

// AddMember adds a user (AddUser) with role r on p, and returns the user and
// its personal access token.
func (s *Server) AddMember(p *Project, username string, r Role) (*User, string) {
	u, tok := s.AddUser(username)
	s.SetRole(p, u, r)
	return u, tok
}

// SetInheritedRole gives u role r on p through an ancestor group.
func (s *Server) SetInheritedRole(p *Project, u *User, r Role) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.Members[u.ID] = r
	if p.Inherited == nil {
		p.Inherited = map[int64]bool{}
	}
	p.Inherited[u.ID] = true
}

// SetFile commits content at path on branch as a fixture, by the fake's own
// "fixture" author and not counted in Commits. A missing branch is made
// from the default branch (an empty one first, when the repository is).
// It panics when git fails: a fixture that cannot be made is a broken test.
func (s *Server) SetFile(p *Project, branch, path string, content []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.setFile(p, branch, path, content); err != nil {
		panic(fmt.Sprintf("fakegitlab: SetFile %s on %s: %v", path, branch, err))
	}
}

// SetSymlink commits a symbolic link at path to target on branch, as a
// fixture (as SetFile): a repository a hostile user prepared.
func (s *Server) SetSymlink(p *Project, branch, path, target string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.setFileAs(p, branch, path, []byte(target), true)
}

// File returns the content at path on branch, and whether it exists.
func (s *Server) File(p *Project, branch, path string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fileAt(p, branch, path)
}

// Agents lists p's agents, oldest first.
func (s *Server) Agents(p *Project) []Agent {
	return pick(s, s.agents, func(a *Agent) bool { return a.ProjectID == p.ID })
}

// pick copies the records of m (keyed by ID) that keep selects, oldest
// (lowest ID) first, under s's lock.
func pick[T any](s *Server, m map[int64]*T, keep func(*T) bool) []T {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []T
	for _, id := range slices.Sorted(maps.Keys(m)) {
		if keep(m[id]) {
			out = append(out, *m[id])
		}
	}
	return out
}

// AddAgent registers an agent directly, as a fixture.
func (s *Server) AddAgent(p *Project, name string, by *User) *Agent {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := &Agent{ID: s.id(), ProjectID: p.ID, Name: name, CreatedAt: s.now(), CreatedByUserID: by.ID}
	s.agents[a.ID] = a
	return a
}

// AddAgentToken creates an active token for a directly, as a fixture.
func (s *Server) AddAgentToken(a *Agent, name string, by *User) *AgentToken {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newAgentToken(a.ID, name, "", by.ID)
}

func (s *Server) newAgentToken(agentID int64, name, desc string, by int64) *AgentToken {
	t := &AgentToken{
		ID: s.id(), AgentID: agentID, Name: name, Description: desc, Status: "active",
		CreatedAt: s.now(), CreatedByUserID: by, Token: "glagent-" + randomString(50),
	}
	s.tokens[t.ID] = t
	return t
}

// AgentTokens lists every token of agent a (active and revoked).
func (s *Server) AgentTokens(a *Agent) []AgentToken {
	return pick(s, s.tokens, func(t *AgentToken) bool { return t.AgentID == a.ID })
}

// MarkTokenUsed records that agentk connected with the token value at t.
func (s *Server) MarkTokenUsed(token string, at time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		if t.Token == token && t.Status == "active" {
			at := at
			t.LastUsedAt = &at
			return true
		}
	}
	return false
}

// PersonalAccessTokens lists the user's tokens.
func (s *Server) PersonalAccessTokens(u *User) []PersonalAccessToken {
	return pick(s, s.pats, func(p *PersonalAccessToken) bool { return p.UserID == u.ID })
}

// Commits lists the commits made through the API, oldest first.
func (s *Server) Commits() []Commit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Commit(nil), s.commits...)
}

// Requests lists the calls received, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Calls counts the calls received for a route pattern such as
// "POST /api/v4/projects/{id}/cluster_agents".
func (s *Server) Calls(pattern string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[pattern]
}

func randomString(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// writeJSON answers with status and v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers with GitLab's error body {"message": ...}.
func writeError(w http.ResponseWriter, status int, msg any) {
	writeJSON(w, status, map[string]any{"message": msg})
}

func statusMessage(status int) string {
	return strconv.Itoa(status) + " " + http.StatusText(status)
}

func errNotFound(w http.ResponseWriter, what string) {
	writeError(w, http.StatusNotFound, fmt.Sprintf("404 %s Not Found", what))
}
