package gitlab

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	gl "gitlab.com/gitlab-org/api/client-go"
)

// ProjectRef names a project by numeric ID or by full path.
type ProjectRef struct {
	ID   int64
	Path string
}

func (r ProjectRef) String() string { return nameOrID(r.Path, r.ID) }

// pid is what the official client takes as a project ID.
func (r ProjectRef) pid() any {
	if r.Path != "" {
		return r.Path
	}
	return r.ID
}

// projectPathRE is a GitLab project path: namespaces and project, each of
// letters, digits, '_', '-', '.' (not starting with '-' or '.').
var projectPathRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)+$`)

// ParseProject reads --project: a numeric ID or a path such as group/sub/proj.
func ParseProject(s string) (ProjectRef, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return ProjectRef{}, fmt.Errorf("empty project")
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n <= 0 {
			return ProjectRef{}, fmt.Errorf("invalid project ID %q: IDs are positive", s)
		}
		return ProjectRef{ID: n}, nil
	}
	p := strings.TrimSuffix(strings.Trim(s, "/"), ".git")
	if !projectPathRE.MatchString(p) || strings.Contains(p, "..") {
		return ProjectRef{}, fmt.Errorf("invalid project %q: give its full path (group/project) or its numeric ID", s)
	}
	return ProjectRef{Path: p}, nil
}

// Project is a GitLab project.
type Project struct {
	ID                int64  `json:"id"`
	PathWithNamespace string `json:"path_with_namespace"`
	DefaultBranch     string `json:"default_branch"`
	WebURL            string `json:"web_url"`
	// HTTPURLToRepo is the repository's clone URL over HTTPS.
	HTTPURLToRepo string `json:"http_url_to_repo"`
}

// GetProject looks the project up.
func (c *Client) GetProject(ctx context.Context, ref ProjectRef) (*Project, error) {
	_, cancel, opt := c.call(ctx, repeatable)
	defer cancel()
	p, resp, err := c.api.Projects.GetProject(ref.pid(), nil, opt)
	if err != nil {
		return nil, c.classify(fmt.Sprintf("looking up project %s", ref), resp, err, hints{
			notFound: fmt.Sprintf("no project %s, or your token cannot see it", ref),
		})
	}
	return &Project{ID: p.ID, PathWithNamespace: p.PathWithNamespace, DefaultBranch: p.DefaultBranch, WebURL: p.WebURL, HTTPURLToRepo: p.HTTPURLToRepo}, nil
}

// Role is a project member's access level, with GitLab's numbers.
type Role int

// The access levels GitLab uses, with the numbers of its API as the official
// client names them; a user's role on a project is the higher of the
// project's and its group's.
const (
	RoleNone       = Role(gl.NoPermissions)
	RoleGuest      = Role(gl.GuestPermissions)
	RoleReporter   = Role(gl.ReporterPermissions)
	RoleDeveloper  = Role(gl.DeveloperPermissions)
	RoleMaintainer = Role(gl.MaintainerPermissions)
	RoleOwner      = Role(gl.OwnerPermissions)
	// RoleAdmin is an instance administrator, who may do anything.
	RoleAdmin = Role(gl.AdminPermissions)
)

func (r Role) String() string {
	switch r {
	case RoleGuest:
		return "Guest"
	case RoleReporter:
		return "Reporter"
	case RoleDeveloper:
		return "Developer"
	case RoleMaintainer:
		return "Maintainer"
	case RoleOwner:
		return "Owner"
	case RoleAdmin:
		return "administrator"
	}
	return "no role"
}

// Role is the calling user's role on the project: from the project's
// permissions as GitLab reports them to that user, else (GitLab leaves them
// null for access inherited from ancestor groups, through a group the
// project is shared with, and for administrators) from the user and the
// project's members including inherited and invited ones.
func (c *Client) Role(ctx context.Context, ref ProjectRef) (Role, error) {
	_, cancel, opt := c.call(ctx, repeatable)
	defer cancel()
	p, resp, err := c.api.Projects.GetProject(ref.pid(), nil, opt)
	if err != nil {
		return 0, c.classify(fmt.Sprintf("looking up project %s", ref), resp, err, hints{
			notFound: fmt.Sprintf("no project %s, or your token cannot see it", ref),
		})
	}
	role := RoleNone
	if p.Permissions != nil {
		if a := p.Permissions.ProjectAccess; a != nil && Role(a.AccessLevel) > role {
			role = Role(a.AccessLevel)
		}
		if a := p.Permissions.GroupAccess; a != nil && Role(a.AccessLevel) > role {
			role = Role(a.AccessLevel)
		}
	}
	if role != RoleNone {
		return role, nil
	}
	u, resp, err := c.api.Users.CurrentUser(opt)
	if err != nil {
		return 0, c.classify("reading the user of the GitLab token", resp, err, hints{})
	}
	if u.IsAdmin {
		return RoleAdmin, nil
	}
	m, resp, err := c.api.ProjectMembers.GetInheritedProjectMember(p.ID, u.ID, opt)
	if err != nil {
		err = c.classify(fmt.Sprintf("looking up your membership of %s", ref), resp, err, hints{})
		if IsClass(err, ClassNotFound) {
			return RoleNone, nil
		}
		return 0, err
	}
	return Role(m.AccessLevel), nil
}

// CurrentUser is the username the credential authenticates as.
func (c *Client) CurrentUser(ctx context.Context) (string, error) {
	_, cancel, opt := c.call(ctx, repeatable)
	defer cancel()
	u, resp, err := c.api.Users.CurrentUser(opt)
	if err != nil {
		return "", c.classify("reading the user of the GitLab token", resp, err, hints{})
	}
	return u.Username, nil
}

// GroupExists reports whether GitLab shows the group (by full path) to the
// caller.
func (c *Client) GroupExists(ctx context.Context, path string) (bool, error) {
	_, cancel, opt := c.call(ctx, repeatable)
	defer cancel()
	// with_projects=false: GitLab would otherwise send up to 100 of the
	// group's projects. The option is deprecated for API v5, where the
	// default becomes false; v4 still defaults to true.
	//lint:ignore SA1019 see above
	_, resp, err := c.api.Groups.GetGroup(path, &gl.GetGroupOptions{WithProjects: gl.Ptr(false)}, opt)
	if err == nil {
		return true, nil
	}
	err = c.classify(fmt.Sprintf("looking up group %s", path), resp, err, hints{})
	if IsClass(err, ClassNotFound) {
		return false, nil
	}
	return false, err
}
