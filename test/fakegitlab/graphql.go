package fakegitlab

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// GraphQLRoute is POST /api/graphql, as faults and Calls name it.
const GraphQLRoute = "POST /api/graphql"

// GitLab's GraphQL limits for an authenticated caller
// (app/graphql/gitlab_schema.rb): see docs gitops-facts B.
const (
	MaxComplexity = 250
	MaxDepth      = 20
	MaxPageSize   = 100
)

// The fake answers a small part of GitLab's schema: group(fullPath) with
// projects(includeSubgroups, first, after), project(fullPath), a project's
// clusterAgents(first, after), an agent's tokens, connections and project,
// a project's ciAccessAuthorizedAgents and userAccessAuthorizedAgents
// (authorized.go). Queries
// are parsed (operation, variables, fields, arguments: no fragments,
// aliases or directives) and checked as GitLab checks them: every field must
// exist, the depth is at most MaxDepth and the complexity at most
// MaxComplexity.
//
// Complexity follows graphql-ruby's rule as GitLab uses it: every field
// costs 1 (`connections` costs 5, its `complexity:`); a connection costs
// 1 + pageSize × (its items' cost) + pageInfo (1 + its fields) + 1 for
// nodes, where pageSize is `first` capped at MaxPageSize (MaxPageSize when
// not given) (graphql-ruby Schema::Field#calculate_complexity).

// connectionFields are the fields that return connections, with their
// own cost.
var connectionFields = map[string]int{"projects": 1, "clusterAgents": 1, "tokens": 1, "connections": 5,
	"ciAccessAuthorizedAgents": 1, "userAccessAuthorizedAgents": 1}

// SetAgentConnection makes KAS report agent a connected, with agentk's
// version in its metadata; version "" disconnects it.
func (s *Server) SetAgentConnection(a *Agent, version string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.connections == nil {
		s.connections = map[int64]agentConnection{}
	}
	if version == "" {
		delete(s.connections, a.ID)
		return
	}
	s.connections[a.ID] = agentConnection{version: version, at: s.now(), id: s.id()}
}

// SetLatency delays every answer of the fake by d (0: none), as a distant
// GitLab would.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

type agentConnection struct {
	version string
	at      time.Time
	id      int64
}

// gqlField is one selected field.
type gqlField struct {
	name string
	args map[string]gqlValue
	sel  []*gqlField
}

// gqlValue is an argument: a variable reference or a literal.
type gqlValue struct {
	variable string
	literal  any
}

type gqlError struct{ msg string }

func (e *gqlError) Error() string { return e.msg }

func gqlErrorf(format string, a ...any) error { return &gqlError{fmt.Sprintf(format, a...)} }

// gqlParser reads a query document: one operation, as clients send.
type gqlParser struct {
	src string
	pos int
}

func (p *gqlParser) skip() {
	for p.pos < len(p.src) {
		switch c := p.src[p.pos]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',':
			p.pos++
		case c == '#':
			for p.pos < len(p.src) && p.src[p.pos] != '\n' {
				p.pos++
			}
		default:
			return
		}
	}
}

func (p *gqlParser) peek() byte {
	p.skip()
	if p.pos >= len(p.src) {
		return 0
	}
	return p.src[p.pos]
}

func (p *gqlParser) expect(c byte) error {
	if p.peek() != c {
		return gqlErrorf("Parse error: expected %q at %d", c, p.pos)
	}
	p.pos++
	return nil
}

func isNameByte(c byte, first bool) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (!first && c >= '0' && c <= '9')
}

func (p *gqlParser) name() (string, error) {
	p.skip()
	start := p.pos
	for p.pos < len(p.src) && isNameByte(p.src[p.pos], p.pos == start) {
		p.pos++
	}
	if start == p.pos {
		return "", gqlErrorf("Parse error: expected a name at %d", start)
	}
	return p.src[start:p.pos], nil
}

// document parses `query [Name][($v: Type, ...)] { ... }` or `{ ... }`.
func (p *gqlParser) document() ([]*gqlField, error) {
	if p.peek() != '{' {
		if kw, err := p.name(); err != nil || kw != "query" {
			return nil, gqlErrorf("Parse error: only queries are served here")
		}
		if isNameByte(p.peek(), true) {
			if _, err := p.name(); err != nil {
				return nil, err
			}
		}
		if p.peek() == '(' {
			p.pos++
			for p.peek() != ')' {
				if err := p.expect('$'); err != nil {
					return nil, err
				}
				if _, err := p.name(); err != nil {
					return nil, err
				}
				if err := p.expect(':'); err != nil {
					return nil, err
				}
				for p.peek() != 0 && p.peek() != '$' && p.peek() != ')' && p.peek() != '=' {
					p.pos++ // the type: ID!, [String!], ...
				}
				if p.peek() == '=' {
					return nil, gqlErrorf("Parse error: default values are not served by the fake")
				}
			}
			p.pos++
		}
	}
	sel, err := p.selections()
	if err != nil {
		return nil, err
	}
	if p.peek() != 0 {
		return nil, gqlErrorf("Parse error: one operation only")
	}
	return sel, nil
}

func (p *gqlParser) selections() ([]*gqlField, error) {
	if err := p.expect('{'); err != nil {
		return nil, err
	}
	var out []*gqlField
	for p.peek() != '}' {
		if p.peek() == 0 {
			return nil, gqlErrorf("Parse error: unclosed selection")
		}
		n, err := p.name()
		if err != nil {
			return nil, err
		}
		f := &gqlField{name: n, args: map[string]gqlValue{}}
		if p.peek() == ':' {
			return nil, gqlErrorf("Parse error: aliases are not served by the fake")
		}
		if p.peek() == '(' {
			p.pos++
			for p.peek() != ')' {
				an, err := p.name()
				if err != nil {
					return nil, err
				}
				if err := p.expect(':'); err != nil {
					return nil, err
				}
				v, err := p.value()
				if err != nil {
					return nil, err
				}
				f.args[an] = v
			}
			p.pos++
		}
		if p.peek() == '{' {
			if f.sel, err = p.selections(); err != nil {
				return nil, err
			}
		}
		out = append(out, f)
	}
	p.pos++
	return out, nil
}

func (p *gqlParser) value() (gqlValue, error) {
	switch c := p.peek(); {
	case c == '$':
		p.pos++
		n, err := p.name()
		return gqlValue{variable: n}, err
	case c == '"':
		end := p.pos + 1
		for end < len(p.src) && p.src[end] != '"' {
			if p.src[end] == '\\' {
				end++
			}
			end++
		}
		if end >= len(p.src) {
			return gqlValue{}, gqlErrorf("Parse error: unclosed string")
		}
		var s string
		if err := json.Unmarshal([]byte(p.src[p.pos:end+1]), &s); err != nil {
			return gqlValue{}, gqlErrorf("Parse error: bad string")
		}
		p.pos = end + 1
		return gqlValue{literal: s}, nil
	case c == '-' || (c >= '0' && c <= '9'):
		start := p.pos
		p.pos++
		for p.pos < len(p.src) && p.src[p.pos] >= '0' && p.src[p.pos] <= '9' {
			p.pos++
		}
		n, err := strconv.Atoi(p.src[start:p.pos])
		if err != nil {
			return gqlValue{}, gqlErrorf("Parse error: bad number")
		}
		return gqlValue{literal: float64(n)}, nil
	default:
		n, err := p.name()
		switch n {
		case "true", "false":
			return gqlValue{literal: n == "true"}, nil
		case "null":
			return gqlValue{}, nil
		}
		if err == nil {
			err = gqlErrorf("Parse error: unexpected %q", n)
		}
		return gqlValue{}, err
	}
}

// gqlRequest is one query with its variables.
type gqlRequest struct {
	vars map[string]any
}

func (q *gqlRequest) arg(f *gqlField, name string) any {
	v, ok := f.args[name]
	if !ok {
		return nil
	}
	if v.variable != "" {
		return q.vars[v.variable]
	}
	return v.literal
}

func (q *gqlRequest) str(f *gqlField, name string) string {
	s, _ := q.arg(f, name).(string)
	return s
}

func (q *gqlRequest) boolean(f *gqlField, name string, def bool) bool {
	if b, ok := q.arg(f, name).(bool); ok {
		return b
	}
	return def
}

// pageSize is `first` capped at MaxPageSize; MaxPageSize when not given.
func (q *gqlRequest) pageSize(f *gqlField) int {
	n, ok := q.arg(f, "first").(float64)
	if !ok || n > MaxPageSize {
		return MaxPageSize
	}
	return max(0, int(n))
}

func depth(sel []*gqlField) int {
	d := 0
	for _, f := range sel {
		d = max(d, 1+depth(f.sel))
	}
	return d
}

// complexity is the query's cost under graphql-ruby's rule (see above).
func (q *gqlRequest) complexity(sel []*gqlField) int {
	total := 0
	for _, f := range sel {
		base, isConn := connectionFields[f.name]
		if !isConn {
			total += 1 + q.complexity(f.sel)
			continue
		}
		cost := base
		for _, c := range f.sel {
			switch c.name {
			case "pageInfo":
				cost += 1 + len(c.sel)
			case "count":
				cost++
			case "nodes", "edges":
				cost += 1 + q.pageSize(f)*q.complexity(c.sel)
			default:
				cost += q.complexity([]*gqlField{c})
			}
		}
		total += cost
	}
	return total
}

type gqlErrors struct {
	Errors []map[string]string `json:"errors"`
}

func gqlFail(w http.ResponseWriter, msg string) {
	writeJSON(w, http.StatusOK, gqlErrors{Errors: []map[string]string{{"message": msg}}})
}

// graphql answers POST /api/graphql (caller authenticated by withUser).
func (s *Server) graphql(w http.ResponseWriter, r *http.Request, u *User, _ *credential) {
	var body struct {
		Query     string         `json:"query"`
		Variables map[string]any `json:"variables"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "400 Bad request - invalid JSON")
		return
	}
	p := &gqlParser{src: body.Query}
	sel, err := p.document()
	if err != nil {
		gqlFail(w, err.Error())
		return
	}
	if d := depth(sel); d > MaxDepth {
		gqlFail(w, fmt.Sprintf("Query has depth of %d, which exceeds max depth of %d", d, MaxDepth))
		return
	}
	q := &gqlRequest{vars: body.Variables}
	if c := q.complexity(sel); c > MaxComplexity {
		gqlFail(w, fmt.Sprintf("Query has complexity of %d, which exceeds max complexity of %d", c, MaxComplexity))
		return
	}
	data := map[string]any{}
	for _, f := range sel {
		var v any
		switch f.name {
		case "group":
			v, err = s.gqlGroup(q, f, u)
		case "project":
			v, err = s.gqlProject(q, f, u, s.visibleProject(q.str(f, "fullPath"), u))
		default:
			err = gqlErrorf("Field '%s' doesn't exist on type 'Query'", f.name)
		}
		if err != nil {
			gqlFail(w, err.Error())
			return
		}
		data[f.name] = v
	}
	s.graphqlQueries++
	writeJSON(w, http.StatusOK, map[string]any{"data": data})
}

// GraphQLQueries counts the queries the fake answered with data.
func (s *Server) GraphQLQueries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.graphqlQueries
}

func (s *Server) visibleProject(path string, u *User) *Project {
	for _, p := range s.projects {
		if p.PathWithNS == path && p.Members[u.ID] >= Guest {
			return p
		}
	}
	return nil
}

// groupProjects are the projects u sees in group (its subgroups' too
// when sub), oldest first.
func (s *Server) groupProjects(group string, sub bool, u *User) []*Project {
	var out []*Project
	for _, p := range s.projects {
		rest, ok := strings.CutPrefix(p.PathWithNS, group+"/")
		if ok && p.Members[u.ID] >= Guest && (sub || !strings.Contains(rest, "/")) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b *Project) int { return int(a.ID - b.ID) })
	return out
}

// object answers the scalar fields of f's selections from values and the
// others with resolve; an unknown field is GitLab's error.
func object(typ string, sel []*gqlField, values map[string]any, resolve map[string]func(*gqlField) (any, error)) (map[string]any, error) {
	out := map[string]any{}
	for _, f := range sel {
		if fn, ok := resolve[f.name]; ok {
			v, err := fn(f)
			if err != nil {
				return nil, err
			}
			out[f.name] = v
			continue
		}
		v, ok := values[f.name]
		if !ok || f.sel != nil {
			return nil, gqlErrorf("Field '%s' doesn't exist on type '%s'", f.name, typ)
		}
		out[f.name] = v
	}
	return out, nil
}

func (s *Server) gqlGroup(q *gqlRequest, f *gqlField, u *User) (any, error) {
	path := q.str(f, "fullPath")
	if path == "" || len(s.groupProjects(path, true, u)) == 0 {
		return nil, nil // GitLab answers null for a group the caller cannot see
	}
	parts := strings.Split(path, "/")
	return object("Group", f.sel, map[string]any{"fullPath": path, "name": parts[len(parts)-1]},
		map[string]func(*gqlField) (any, error){
			"projects": func(pf *gqlField) (any, error) {
				list := s.groupProjects(path, q.boolean(pf, "includeSubgroups", false), u)
				return connection(q, pf, "ProjectConnection", list, func(p *Project) int64 { return p.ID },
					func(sel []*gqlField, p *Project) (any, error) { return s.gqlProject(q, &gqlField{sel: sel}, u, p) })
			},
		})
}

func (s *Server) gqlProject(q *gqlRequest, f *gqlField, u *User, p *Project) (any, error) {
	if p == nil {
		return nil, nil
	}
	return object("Project", f.sel, map[string]any{"fullPath": p.PathWithNS, "id": fmt.Sprintf("gid://gitlab/Project/%d", p.ID), "name": p.PathWithNS[strings.LastIndex(p.PathWithNS, "/")+1:]},
		map[string]func(*gqlField) (any, error){
			"clusterAgents": func(af *gqlField) (any, error) {
				var list []*Agent
				if p.Members[u.ID] >= Developer { // read_cluster_agent
					for _, a := range s.agents {
						if a.ProjectID == p.ID {
							list = append(list, a)
						}
					}
				}
				slices.SortFunc(list, func(a, b *Agent) int { return int(a.ID - b.ID) })
				return connection(q, af, "ClusterAgentConnection", list, func(a *Agent) int64 { return a.ID },
					func(sel []*gqlField, a *Agent) (any, error) { return s.gqlAgent(q, sel, u, a) })
			},
			"ciAccessAuthorizedAgents": func(af *gqlField) (any, error) {
				return s.gqlAuthorized(q, af, u, p, "ci_access", "ClusterAgentAuthorizationCiAccessConnection")
			},
			"userAccessAuthorizedAgents": func(af *gqlField) (any, error) {
				return s.gqlAuthorized(q, af, u, p, "user_access", "ClusterAgentAuthorizationUserAccessConnection")
			},
		})
}

// gqlAuthorized is a project's authorized agents of kind, a connection of
// {agent, config}; empty for a caller below Developer (read_cluster_agent).
func (s *Server) gqlAuthorized(q *gqlRequest, f *gqlField, u *User, p *Project, kind, typ string) (any, error) {
	var list []authorization
	if p.Members[u.ID] >= Developer {
		list = s.authorizedAgents(p, kind)
	}
	return connection(q, f, typ, list, func(a authorization) int64 { return a.agent.ID },
		func(sel []*gqlField, a authorization) (any, error) {
			return object(strings.TrimSuffix(typ, "Connection"), sel, map[string]any{"config": a.config},
				map[string]func(*gqlField) (any, error){
					"agent": func(af *gqlField) (any, error) { return s.gqlAgent(q, af.sel, u, a.agent) },
				})
		})
}

func timeOrNil(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC().Format(time.RFC3339)
}

func (s *Server) gqlAgent(q *gqlRequest, sel []*gqlField, u *User, a *Agent) (any, error) {
	values := map[string]any{
		"id": fmt.Sprintf("gid://gitlab/Clusters::Agent/%d", a.ID), "name": a.Name,
		"createdAt": a.CreatedAt.UTC().Format(time.RFC3339), "updatedAt": a.CreatedAt.UTC().Format(time.RFC3339),
	}
	if !s.noReceptive {
		// EE's field (ee/app/graphql/ee/types/clusters/agent_type.rb):
		// an instance without receptive agents (SetReceptive(false),
		// as CE) does not have it.
		receptive := false
		for _, uc := range s.urls {
			if uc.AgentID == a.ID {
				receptive = true
			}
		}
		values["isReceptive"] = receptive
	}
	return object("ClusterAgent", sel, values, map[string]func(*gqlField) (any, error){
		"project": func(pf *gqlField) (any, error) {
			return s.gqlProject(q, pf, u, s.projects[a.ProjectID])
		},
		"tokens": func(tf *gqlField) (any, error) {
			// Only active tokens (resolvers/clusters/agent_tokens_resolver.rb).
			var list []*AgentToken
			for _, t := range s.tokens {
				if t.AgentID == a.ID && t.Status == "active" {
					list = append(list, t)
				}
			}
			slices.SortFunc(list, func(a, b *AgentToken) int { return int(a.ID - b.ID) })
			return connection(q, tf, "ClusterAgentTokenConnection", list, func(t *AgentToken) int64 { return t.ID },
				func(sel []*gqlField, t *AgentToken) (any, error) {
					return object("ClusterAgentToken", sel, map[string]any{
						"id": fmt.Sprintf("gid://gitlab/Clusters::AgentToken/%d", t.ID), "name": t.Name,
						"description": t.Description, "createdAt": t.CreatedAt.UTC().Format(time.RFC3339),
						"lastUsedAt": timeOrNil(t.LastUsedAt), "status": strings.ToUpper(t.Status),
					}, nil)
				})
		},
		"connections": func(cf *gqlField) (any, error) {
			var list []agentConnection
			if c, ok := s.connections[a.ID]; ok {
				list = append(list, c)
			}
			return connection(q, cf, "ConnectedAgentConnection", list, func(c agentConnection) int64 { return c.id },
				func(sel []*gqlField, c agentConnection) (any, error) {
					return object("ConnectedAgent", sel, map[string]any{
						// BigInt is a JSON string (graphql-ruby).
						"connectionId": strconv.FormatInt(c.id, 10), "connectedAt": c.at.UTC().Format(time.RFC3339),
					}, map[string]func(*gqlField) (any, error){
						"metadata": func(mf *gqlField) (any, error) {
							return object("AgentMetadata", mf.sel, map[string]any{
								"version": c.version, "commit": "0123abcd", "podNamespace": "gitlab-agent", "podName": "agentk-0",
							}, nil)
						},
					})
				})
		},
	})
}

// cursor is an opaque cursor for the item with id, as GitLab's are
// base64 of JSON.
func cursor(id int64) string {
	return base64.StdEncoding.EncodeToString([]byte(`{"id":"` + strconv.FormatInt(id, 10) + `"}`))
}

func parseCursor(c string) (int64, error) {
	b, err := base64.StdEncoding.DecodeString(c)
	var v struct {
		ID string `json:"id"`
	}
	if err == nil {
		err = json.Unmarshal(b, &v)
	}
	id, err2 := strconv.ParseInt(v.ID, 10, 64)
	if err != nil || err2 != nil {
		return 0, gqlErrorf("Please provide a valid cursor")
	}
	return id, nil
}

// connection pages list (ordered by id) as f asks: first (capped at
// MaxPageSize) after the cursor.
func connection[T any](q *gqlRequest, f *gqlField, typ string, list []T, id func(T) int64, node func([]*gqlField, T) (any, error)) (any, error) {
	start := 0
	if after, _ := q.arg(f, "after").(string); after != "" {
		last, err := parseCursor(after)
		if err != nil {
			return nil, err
		}
		start = len(list)
		for i, it := range list {
			if id(it) > last {
				start = i
				break
			}
		}
	}
	end := min(len(list), start+q.pageSize(f))
	page := list[start:end]
	pageInfo := map[string]any{"hasNextPage": end < len(list), "hasPreviousPage": start > 0, "endCursor": nil, "startCursor": nil}
	if len(page) > 0 {
		pageInfo["endCursor"], pageInfo["startCursor"] = cursor(id(page[len(page)-1])), cursor(id(page[0]))
	}
	return object(typ, f.sel, map[string]any{"count": len(list)}, map[string]func(*gqlField) (any, error){
		"pageInfo": func(pf *gqlField) (any, error) { return object("PageInfo", pf.sel, pageInfo, nil) },
		"nodes": func(nf *gqlField) (any, error) {
			out := []any{}
			for _, it := range page {
				v, err := node(nf.sel, it)
				if err != nil {
					return nil, err
				}
				out = append(out, v)
			}
			return out, nil
		},
	})
}
