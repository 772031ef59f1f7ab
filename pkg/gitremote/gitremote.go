// Package gitremote reads the remotes of the git checkout around a
// directory, to find the GitLab project a command run there is about.
package gitremote

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Remote is a git remote whose URL names a project.
type Remote struct {
	Name string
	// Scheme is the URL's: "https", "http", "ssh" (also for scp-like
	// user@host:path) or "git".
	Scheme string
	// Host is the host name, in lower case; Port the URL's port, "" when
	// it has none.
	Host, Port string
	// Path is the repository path: group/project, with the sub-path of a
	// GitLab under one.
	Path string
}

// WebURL is the GitLab a remote is on, as glab takes it: an http(s)
// remote's own scheme, host and port; https://host for an ssh or git
// remote, whose port is not the web server's.
func (r Remote) WebURL() string {
	if r.Web() {
		if r.Port != "" {
			return r.Scheme + "://" + net.JoinHostPort(r.Host, r.Port)
		}
		return r.Scheme + "://" + r.Host
	}
	return "https://" + r.Host
}

// Web reports an http(s) remote, whose URL is the web server's.
func (r Remote) Web() bool { return r.Scheme == "https" || r.Scheme == "http" }

// Remotes lists the remotes of the git checkout around dir whose URLs name
// a project (group/project at least), origin first, then by name.
func Remotes(dir string) []Remote {
	cfg, ok := findGitConfig(dir)
	if !ok {
		return nil
	}
	urls := readRemotes(cfg)
	names := slices.Sorted(maps.Keys(urls))
	if i := slices.Index(names, "origin"); i > 0 {
		names = append([]string{"origin"}, slices.Delete(names, i, i+1)...)
	}
	var out []Remote
	for _, name := range names {
		r, ok := parseRemote(urls[name])
		if !ok || !strings.Contains(r.Path, "/") || strings.Contains(r.Path, "..") {
			continue
		}
		r.Name = name
		out = append(out, r)
	}
	return out
}

// Project finds the project path of the git checkout around dir whose
// remote is on gitlabURL's host: origin first, else the only such remote.
// It returns the remote's name too, to tell the user what was used.
func Project(dir, gitlabURL string) (path, remote string, ok bool) {
	u, err := url.Parse(gitlabURL)
	if err != nil {
		return "", "", false
	}
	var matches []Remote
	for _, r := range Remotes(dir) {
		if !strings.EqualFold(r.Host, u.Hostname()) {
			continue
		}
		// A GitLab under a sub-path (https://host/gitlab) has it in clone
		// URLs too.
		r.Path = strings.TrimPrefix(r.Path, strings.Trim(u.Path, "/")+"/")
		if !strings.Contains(r.Path, "/") {
			continue // not a project path: group/project at least
		}
		if r.Name == "origin" {
			return r.Path, r.Name, true
		}
		matches = append(matches, r)
	}
	if len(matches) == 1 {
		return matches[0].Path, matches[0].Name, true
	}
	return "", "", false
}

// scpLikeRE is git's user@host:path form.
var scpLikeRE = regexp.MustCompile(`^(?:[^@/]+@)?([^:/]+):(.+)$`)

// ParseURL returns the host and repository path of a git remote URL
// (https, ssh, git, or scp-like user@host:path), without credentials.
func ParseURL(raw string) (host, path string, ok bool) {
	r, ok := parseRemote(raw)
	return r.Host, r.Path, ok
}

// ParseRemote reads a git remote URL (https, http, ssh, git, or scp-like
// user@host:path), without its credentials; ok is false for one that names
// no repository.
func ParseRemote(raw string) (Remote, bool) { return parseRemote(raw) }

// parseRemote reads a git remote URL (https, http, ssh, git, or scp-like
// user@host:path), without its credentials.
func parseRemote(raw string) (Remote, bool) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return Remote{}, false
	}
	var r Remote
	if strings.Contains(raw, "://") {
		u, err := url.Parse(raw)
		if err != nil || u.Hostname() == "" {
			return Remote{}, false
		}
		switch r.Scheme = strings.ToLower(u.Scheme); r.Scheme {
		case "https", "http", "ssh", "git":
		case "git+ssh", "ssh+git":
			r.Scheme = "ssh"
		default:
			return Remote{}, false
		}
		r.Host, r.Port, r.Path = u.Hostname(), u.Port(), u.Path
	} else if m := scpLikeRE.FindStringSubmatch(raw); m != nil && !strings.HasPrefix(raw, "/") {
		r.Scheme, r.Host, r.Path = "ssh", m[1], m[2]
	} else {
		return Remote{}, false
	}
	r.Host = strings.ToLower(r.Host)
	r.Path = strings.TrimSuffix(strings.Trim(r.Path, "/"), ".git")
	if r.Path == "" {
		return Remote{}, false
	}
	return r, true
}

// findGitConfig walks up from dir to the repository's config file. As git
// does since CVE-2022-24765 (safe.directory), a .git another user owns ends
// the walk: anyone may create /tmp/.git, and its remote would choose where
// the user's GitLab token goes.
func findGitConfig(dir string) (string, bool) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", false
	}
	for {
		gitPath := filepath.Join(dir, ".git")
		if li, err := os.Lstat(gitPath); err == nil {
			if !ownedBySelfOrRoot(li) {
				return "", false
			}
			fi, err := os.Stat(gitPath)
			switch {
			case err != nil:
				return "", false
			case fi.IsDir():
				return filepath.Join(gitPath, "config"), true
			}
			// A worktree or submodule: ".git" is a file "gitdir: <path>".
			b, err := readSmall(gitPath)
			if err != nil {
				return "", false
			}
			gd := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(b)), "gitdir:"))
			if !filepath.IsAbs(gd) {
				gd = filepath.Join(dir, gd)
			}
			if common, err := readSmall(filepath.Join(gd, "commondir")); err == nil {
				gd = filepath.Join(gd, strings.TrimSpace(string(common)))
			}
			return filepath.Join(gd, "config"), true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// maxGitFile bounds what is read of a git file (.git, commondir, config).
const maxGitFile = 1 << 20

// errNotOurs: a git file that is not a regular file the user (or root)
// owns is not read.
var errNotOurs = errors.New("not a regular file of the user's")

// readSmall reads a git file: a regular file the user or root owns, opened
// without waiting (a FIFO would block the open), at most maxGitFile bytes.
func readSmall(path string) ([]byte, error) {
	f, err := openNoWait(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || !ownedBySelfOrRoot(fi) {
		return nil, errNotOurs
	}
	return io.ReadAll(io.LimitReader(f, maxGitFile))
}

var remoteSectionRE = regexp.MustCompile(`^\[remote\s+"([^"]+)"\]$`)

// readRemotes reads the remote URLs of a git config file.
func readRemotes(path string) map[string]string {
	b, err := readSmall(path)
	if err != nil {
		return nil
	}
	remotes := map[string]string{}
	current := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
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
