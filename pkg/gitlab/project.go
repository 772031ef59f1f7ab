package gitlab

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// ProjectRef names a project by numeric ID or by full path.
type ProjectRef struct {
	ID   int64
	Path string
}

func (r ProjectRef) String() string {
	if r.Path != "" {
		return r.Path
	}
	return strconv.FormatInt(r.ID, 10)
}

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
	return &Project{ID: p.ID, PathWithNamespace: p.PathWithNamespace, DefaultBranch: p.DefaultBranch, WebURL: p.WebURL}, nil
}
