package gitlab

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
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

// ProjectFromGitRemote finds the project of the git checkout around dir whose
// remote is on gitlabURL's host: origin first, else the only such remote.
// It returns the remote's name too, to tell the user what was used.
func ProjectFromGitRemote(dir, gitlabURL string) (ProjectRef, string, bool) {
	u, err := url.Parse(gitlabURL)
	if err != nil {
		return ProjectRef{}, "", false
	}
	cfg, ok := findGitConfig(dir)
	if !ok {
		return ProjectRef{}, "", false
	}
	remotes := readRemotes(cfg)
	var matches []string
	for _, name := range slices.Sorted(maps.Keys(remotes)) {
		host, path, ok := ParseRemoteURL(remotes[name])
		if ok && strings.EqualFold(host, u.Hostname()) {
			// A GitLab under a sub-path (https://host/gitlab) has it in
			// clone URLs too.
			path = strings.TrimPrefix(path, strings.Trim(u.Path, "/")+"/")
			if ref, err := ParseProject(path); err == nil && ref.Path != "" {
				if name == "origin" {
					return ref, name, true
				}
				matches = append(matches, name)
			}
		}
	}
	if len(matches) == 1 {
		_, path, _ := ParseRemoteURL(remotes[matches[0]])
		path = strings.TrimPrefix(path, strings.Trim(u.Path, "/")+"/")
		ref, _ := ParseProject(path)
		return ref, matches[0], true
	}
	return ProjectRef{}, "", false
}

// scpLikeRE is git's user@host:path form.
var scpLikeRE = regexp.MustCompile(`^(?:[^@/]+@)?([^:/]+):(.+)$`)

// ParseRemoteURL returns the host and repository path of a git remote URL
// (https, ssh, git, or scp-like user@host:path), without credentials.
func ParseRemoteURL(raw string) (host, path string, ok bool) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", "", false
	}
	if strings.Contains(raw, "://") {
		u, err := url.Parse(raw)
		if err != nil || u.Hostname() == "" {
			return "", "", false
		}
		path = u.Path
		host = u.Hostname()
	} else if m := scpLikeRE.FindStringSubmatch(raw); m != nil && !strings.HasPrefix(raw, "/") {
		host, path = m[1], m[2]
	} else {
		return "", "", false
	}
	path = strings.TrimSuffix(strings.Trim(path, "/"), ".git")
	if path == "" {
		return "", "", false
	}
	return host, path, true
}

// findGitConfig walks up from dir to the repository's config file.
func findGitConfig(dir string) (string, bool) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", false
	}
	for {
		gitPath := filepath.Join(dir, ".git")
		if fi, err := os.Stat(gitPath); err == nil {
			if fi.IsDir() {
				return filepath.Join(gitPath, "config"), true
			}
			// A worktree or submodule: ".git" is a file "gitdir: <path>".
			if b, err := os.ReadFile(gitPath); err == nil {
				gd := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(b)), "gitdir:"))
				if !filepath.IsAbs(gd) {
					gd = filepath.Join(dir, gd)
				}
				if common, err := os.ReadFile(filepath.Join(gd, "commondir")); err == nil {
					gd = filepath.Join(gd, strings.TrimSpace(string(common)))
				}
				return filepath.Join(gd, "config"), true
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

var remoteSectionRE = regexp.MustCompile(`^\[remote\s+"([^"]+)"\]$`)

// readRemotes reads the remote URLs of a git config file.
func readRemotes(path string) map[string]string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	remotes := map[string]string{}
	current := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			current = ""
			if m := remoteSectionRE.FindStringSubmatch(line); m != nil {
				current = m[1]
			}
			continue
		}
		if current == "" {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == "url" {
			if _, seen := remotes[current]; !seen {
				remotes[current] = strings.TrimSpace(v)
			}
		}
	}
	return remotes
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
