package fakegitlab

import (
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// The agents a project may use, as GitLab computes them from the agents'
// config files (GraphQL Project.ciAccessAuthorizedAgents and
// userAccessAuthorizedAgents). GitLab stores authorizations when a config
// file is pushed; the fake reads the files on each query, on the agent
// project's default branch, which is what the stored rows reflect.
//
// Rules, from gitlab-org/gitlab:
//   - an entry counts only when the project or group it names is under the
//     agent project's top-level namespace (RefreshService#allowed_projects,
//     #allowed_groups), at most 500 entries a list (AUTHORIZED_ENTITY_LIMIT);
//     paths match case-insensitively;
//   - ci_access: the entry without its id is the config; the agents of the
//     project itself are authorized implicitly with config {}; a project
//     entry wins over the implicit one, which wins over the closest group
//     (CiAccess::Finder#execute, ImplicitAuthorization#config);
//   - an entry whose access_as names a mode the instance does not offer is
//     not an authorization: CE offers only agent
//     (CiAccess::ConfigScopes.with_available_ci_access_fields); EE with
//     Premium adds impersonate, ci_user, ci_job (SetCIImpersonation);
//   - user_access: the config is the section's access_as, {"access_as": ...},
//     or {} (UserAccess::RefreshService#user_access_as).

// SetCIImpersonation offers ci_access's impersonate, ci_user and ci_job
// access_as modes (GitLab Premium); off, as in CE, entries that use them
// authorize nothing.
func (s *Server) SetCIImpersonation(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ciImpersonation = on
}

// authorizedEntityLimit is how many entries of a list GitLab reads.
const authorizedEntityLimit = 500

// authorization is one agent's authorization of a project.
type authorization struct {
	agent  *Agent
	config map[string]any
}

// agentConfig is agent a's config file on its project's default branch,
// parsed; nil when there is none or it is not a map.
func (s *Server) agentConfig(a *Agent) map[string]any {
	p := s.projectByID(a.ProjectID)
	if p == nil {
		return nil
	}
	b, ok := s.fileAt(p, p.DefaultBranch, ".gitlab/agents/"+a.Name+"/config.yaml")
	if !ok {
		return nil
	}
	var m map[string]any
	if yaml.Unmarshal(b, &m) != nil {
		return nil
	}
	return m
}

func (s *Server) projectByID(id int64) *Project { return s.projects[id] }

// topLevel is the top-level namespace of path.
func topLevel(path string) string {
	top, _, _ := strings.Cut(strings.ToLower(path), "/")
	return top
}

// entries are the maps of section[list] (projects or groups), the first
// authorizedEntityLimit, keyed by their lowercased id.
func entries(section map[string]any, list string) []map[string]any {
	items, _ := section[list].([]any)
	var out []map[string]any
	for _, it := range items[:min(len(items), authorizedEntityLimit)] {
		if m, ok := it.(map[string]any); ok {
			if id, ok := m["id"].(string); ok && id != "" {
				out = append(out, m)
			}
		}
	}
	return out
}

func entryID(e map[string]any) string { return strings.ToLower(e["id"].(string)) }

// withoutID is entry e less its id: the config GitLab stores.
func withoutID(e map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range e {
		if k != "id" {
			out[k] = v
		}
	}
	return out
}

// matchEntries finds, in section's projects and groups, the entry that
// names project (its path lowercased) and the entry of the closest group
// above it; both only under the agent project's top-level namespace root.
func matchEntries(section map[string]any, project, root string) (proj, group map[string]any) {
	if topLevel(project) != root {
		return nil, nil
	}
	for _, e := range entries(section, "projects") {
		if entryID(e) == project {
			proj = e
			break
		}
	}
	best := -1
	for _, e := range entries(section, "groups") {
		g := entryID(e)
		if topLevel(g) == root && strings.HasPrefix(project, g+"/") && len(g) > best {
			group, best = e, len(g)
		}
	}
	return proj, group
}

// ciAccessAvailable is with_available_ci_access_fields: an access_as that
// is absent, empty, or names a mode the instance offers.
func (s *Server) ciAccessAvailable(config map[string]any) bool {
	v := config["access_as"]
	if v == nil {
		return true
	}
	as, ok := v.(map[string]any)
	if len(as) == 0 {
		return ok // {} counts; a value that is not a map does not
	}
	offered := []string{"agent"}
	if s.ciImpersonation {
		offered = append(offered, "impersonate", "ci_user", "ci_job")
	}
	for k := range as {
		if slices.Contains(offered, k) {
			return true
		}
	}
	return false
}

// authorizedAgents are the agents with kind (ci_access or user_access)
// to p, ordered by agent ID. Call with s.mu held.
func (s *Server) authorizedAgents(p *Project, kind string) []authorization {
	path := strings.ToLower(p.PathWithNS)
	var agents []*Agent
	for _, a := range s.agents {
		agents = append(agents, a)
	}
	slices.SortFunc(agents, func(a, b *Agent) int { return int(a.ID - b.ID) })
	var out []authorization
	for _, a := range agents {
		ap := s.projectByID(a.ProjectID)
		if ap == nil {
			continue
		}
		section, _ := s.agentConfig(a)[kind].(map[string]any)
		proj, group := matchEntries(section, path, topLevel(ap.PathWithNS))
		var config map[string]any
		if kind == "user_access" {
			if proj != nil || group != nil {
				config = map[string]any{}
				if as, ok := section["access_as"]; ok {
					config["access_as"] = as
				}
			}
		} else {
			switch {
			case proj != nil && s.ciAccessAvailable(withoutID(proj)):
				config = withoutID(proj)
			case a.ProjectID == p.ID:
				config = map[string]any{}
			case group != nil && s.ciAccessAvailable(withoutID(group)):
				config = withoutID(group)
			}
		}
		if config != nil {
			out = append(out, authorization{agent: a, config: config})
		}
	}
	return out
}

// SetAgentConfig commits content as agent a's config file on its project's
// default branch (a fixture, as SetFile).
func (s *Server) SetAgentConfig(a *Agent, content string) {
	s.mu.Lock()
	p := s.projects[a.ProjectID]
	s.mu.Unlock()
	s.SetFile(p, p.DefaultBranch, ".gitlab/agents/"+a.Name+"/config.yaml", []byte(content))
}
