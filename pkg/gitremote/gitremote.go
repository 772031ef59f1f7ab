// Package gitremote reads the remotes of the git checkout around a
// directory, to find the GitLab project a command run there is about.
package gitremote

import (
	"bufio"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Project finds the project path of the git checkout around dir whose
// remote is on gitlabURL's host: origin first, else the only such remote.
// It returns the remote's name too, to tell the user what was used.
func Project(dir, gitlabURL string) (path, remote string, ok bool) {
	u, err := url.Parse(gitlabURL)
	if err != nil {
		return "", "", false
	}
	cfg, ok := findGitConfig(dir)
	if !ok {
		return "", "", false
	}
	remotes := readRemotes(cfg)
	var matches []string
	paths := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(remotes)) {
		host, p, ok := ParseURL(remotes[name])
		if !ok || !strings.EqualFold(host, u.Hostname()) {
			continue
		}
		// A GitLab under a sub-path (https://host/gitlab) has it in clone
		// URLs too.
		p = strings.TrimPrefix(p, strings.Trim(u.Path, "/")+"/")
		if !strings.Contains(p, "/") || strings.Contains(p, "..") {
			continue // not a project path: group/project at least
		}
		if name == "origin" {
			return p, name, true
		}
		matches = append(matches, name)
		paths[name] = p
	}
	if len(matches) == 1 {
		return paths[matches[0]], matches[0], true
	}
	return "", "", false
}

// scpLikeRE is git's user@host:path form.
var scpLikeRE = regexp.MustCompile(`^(?:[^@/]+@)?([^:/]+):(.+)$`)

// ParseURL returns the host and repository path of a git remote URL
// (https, ssh, git, or scp-like user@host:path), without credentials.
func ParseURL(raw string) (host, path string, ok bool) {
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
