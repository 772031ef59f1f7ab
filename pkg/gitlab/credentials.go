package gitlab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/input"
)

// Credentials is how the plugin authenticates to GitLab.
type Credentials struct {
	// Token is a personal, project or group access token, sent as
	// PRIVATE-TOKEN (or, with OAuth, an OAuth access token sent as
	// Authorization: Bearer).
	Token string
	OAuth bool
	// Source names where Token came from, for messages: "GITLAB_TOKEN",
	// "--gitlab-token-file FILE" or glab's config file. Never the token.
	Source string
	// JobToken is CI_JOB_TOKEN, sent as JOB-TOKEN; GitLab accepts it on
	// few endpoints.
	JobToken string
}

// secrets are the values to keep out of anything printed.
func (c Credentials) secrets() []string { return []string{c.Token, c.JobToken} }

// MaxTokenFileBytes bounds a token file: a token is well under 1 KiB.
const MaxTokenFileBytes = 64 << 10

// NoCredentialsError says which sources of a GitLab credential were tried and
// how to give one.
type NoCredentialsError struct {
	Host string
	// URL is the GitLab's, where a token is made.
	URL   string
	Tried []string
}

func (e *NoCredentialsError) Error() string {
	return fmt.Sprintf("no GitLab credentials for %s (tried %s): make a personal access token with the api scope at %s and set GITLAB_TOKEN to it, pass --gitlab-token-file FILE, or log in with 'glab auth login'",
		e.Host, strings.Join(e.Tried, ", "), TokenPage(e.URL))
}

// TokenPage is the page of the GitLab at baseURL where the user makes a
// personal access token, with its name and the api scope filled in.
func TokenPage(baseURL string) string {
	return strings.TrimRight(baseURL, "/") + "/-/user_settings/personal_access_tokens?name=kubectl-gitlab-agent&scopes=api"
}

// ErrNoCredentials matches every *NoCredentialsError with errors.Is.
var ErrNoCredentials = errors.New("no GitLab credentials")

func (e *NoCredentialsError) Is(target error) bool { return target == ErrNoCredentials }

// FindCredentials walks the credential chain for the GitLab at gitlabURL:
// the token file when given, else GITLAB_TOKEN, else CI_JOB_TOKEN inside a CI
// job, else the token `glab auth login` stored for that host. Secrets never
// come from flag values, which other users could read in the process list.
func FindCredentials(ctx context.Context, gitlabURL, tokenFile string) (Credentials, error) {
	if tokenFile != "" {
		tok, err := ReadTokenFile(ctx, tokenFile)
		if err != nil {
			return Credentials{}, fmt.Errorf("--gitlab-token-file: %w", err)
		}
		return Credentials{Token: tok, Source: "--gitlab-token-file " + tokenFile}, nil
	}
	if tok := strings.TrimSpace(os.Getenv("GITLAB_TOKEN")); tok != "" {
		return Credentials{Token: tok, Source: "GITLAB_TOKEN"}, nil
	}
	u, err := url.Parse(gitlabURL)
	if err != nil || u.Host == "" {
		return Credentials{}, fmt.Errorf("invalid GitLab URL %q", gitlabURL)
	}
	job := "CI_JOB_TOKEN (not set)"
	if tok := strings.TrimSpace(os.Getenv("CI_JOB_TOKEN")); tok != "" {
		why := notTheJobsGitLab(u)
		if why == "" {
			return Credentials{JobToken: tok, Source: "CI_JOB_TOKEN"}, nil
		}
		job = "CI_JOB_TOKEN (" + why + ")"
	}
	tried := []string{"--gitlab-token-file (not given)", "GITLAB_TOKEN (not set)", job}
	c, why := glabCredentials(u)
	if c.Token != "" {
		return c, nil
	}
	return Credentials{}, &NoCredentialsError{Host: u.Host, URL: (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: strings.TrimRight(u.Path, "/")}).String(), Tried: append(tried, why)}
}

// HostCredentials is the credential for a GitLab no one named but a git
// remote: only the token glab stored for exactly that host. --gitlab-token-file
// and GITLAB_TOKEN are bound to no host, and a cloned repository (or another
// user's) chooses its remote: they go only to a GitLab the user named.
func HostCredentials(gitlabURL string) (Credentials, error) {
	u, err := url.Parse(gitlabURL)
	if err != nil || u.Host == "" {
		return Credentials{}, fmt.Errorf("invalid GitLab URL %q", gitlabURL)
	}
	c, why := glabCredentials(u)
	if c.Token != "" {
		return c, nil
	}
	return Credentials{}, &NoCredentialsError{Host: u.Host, URL: (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: strings.TrimRight(u.Path, "/")}).String(),
		Tried: []string{"--gitlab-token-file and GITLAB_TOKEN (sent only to the GitLab --gitlab-url or GITLAB_URL names, not to one a git remote names: pass --gitlab-url " + Origin(u) + ")", why}}
}

// JobTokenFor says whether the job's CI_JOB_TOKEN may go to gitlabURL (and
// its KAS): only when it is the job's own GitLab, CI_SERVER_URL (or that is
// not set).
func JobTokenFor(gitlabURL string) error {
	u, err := url.Parse(gitlabURL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("invalid GitLab URL %q", gitlabURL)
	}
	if why := notTheJobsGitLab(u); why != "" {
		return fmt.Errorf("CI_JOB_TOKEN goes only to the job's own GitLab (%s): drop --gitlab-url and GITLAB_URL, or use a token made for %s", why, Origin(u))
	}
	return nil
}

// notTheJobsGitLab says why the job's token may not go to u ("" when it
// may): the token is for the GitLab that runs the job, CI_SERVER_URL, and
// goes nowhere else (anywhere when CI_SERVER_URL is not set).
func notTheJobsGitLab(u *url.URL) string {
	v := os.Getenv("CI_SERVER_URL")
	if v == "" {
		return ""
	}
	server, err := url.Parse(v)
	if err != nil || server.Host == "" {
		return "CI_SERVER_URL, the job's GitLab, is not a URL"
	}
	if Origin(server) != Origin(u) {
		return fmt.Sprintf("for %s, the job's GitLab, not %s", Origin(server), Origin(u))
	}
	return ""
}

// ReadTokenFile reads a file that holds one token and nothing else, giving
// up when ctx ends (a pipe or a FIFO may never deliver).
func ReadTokenFile(ctx context.Context, path string) (string, error) {
	b, err := input.ReadFile(ctx, path, nil, MaxTokenFileBytes, "the token file")
	var tooLarge *input.TooLargeError
	if errors.As(err, &tooLarge) {
		return "", fmt.Errorf("%s is larger than %d KiB: it must hold one token and nothing else", path, MaxTokenFileBytes>>10)
	}
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("%s must hold one token and nothing else", path)
	}
	return tok, nil
}

// glabConfigPath finds the GitLab CLI's config.yml as glab 1.76 does:
// $GLAB_CONFIG_DIR; else ~/.config/glab-cli when a config.yml is there (the
// place of older versions, on every OS); else $XDG_CONFIG_HOME/glab-cli, or
// the OS's config home (~/Library/Application Support on macOS,
// %LOCALAPPDATA% on Windows).
func glabConfigPath() string {
	if d := os.Getenv("GLAB_CONFIG_DIR"); d != "" {
		return filepath.Join(d, "config.yml")
	}
	home, _ := os.UserHomeDir()
	if home != "" {
		legacy := filepath.Join(home, ".config", "glab-cli", "config.yml")
		if _, err := os.Stat(legacy); err == nil {
			return legacy
		}
	}
	base := os.Getenv("XDG_CONFIG_HOME")
	switch {
	case base != "":
	case runtime.GOOS == "windows":
		base = os.Getenv("LOCALAPPDATA")
	case runtime.GOOS == "darwin" && home != "":
		base = filepath.Join(home, "Library", "Application Support")
	case home != "":
		base = filepath.Join(home, ".config")
	}
	if base == "" {
		return ""
	}
	return filepath.Join(base, "glab-cli", "config.yml")
}

// glabHost is one entry of glab's config.yml hosts map, keyed by what
// `glab auth login --hostname` was given: a host name, or host:port;
// api_host carries the API's host (and port) when it differs.
type glabHost struct {
	Token        string `json:"token"`
	APIHost      string `json:"api_host"`
	APIProtocol  string `json:"api_protocol"`
	IsOAuth2     string `json:"is_oauth2"`
	OAuth2Expiry string `json:"oauth2_expiry_date"`
}

// glabHosts reads the hosts of glab's config; without them it says why.
func glabHosts() (hosts map[string]glabHost, where, why string) {
	path := glabConfigPath()
	if path == "" {
		return nil, "", "glab's config (no home directory)"
	}
	where = "glab's config " + path
	f, err := os.Open(path)
	if err != nil {
		return nil, where, where + " (not found)"
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		// glab itself refuses such a file.
		return nil, where, fmt.Sprintf("%s (mode %04o lets others read it; glab requires 0600)", where, fi.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, where, where + " (unreadable)"
	}
	var cfg struct {
		Hosts map[string]glabHost `json:"hosts"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		return nil, where, where + " (not valid YAML)"
	}
	return cfg.Hosts, where, ""
}

// glabEntry is the entry of hosts keyed by the first of keys it has (host
// names compare without case), and its key.
func glabEntry(hosts map[string]glabHost, keys ...string) (glabHost, string, bool) {
	for _, k := range keys {
		for name, entry := range hosts {
			if strings.EqualFold(name, k) {
				return entry, name, true
			}
		}
	}
	return glabHost{}, "", false
}

// apiOrigin is the scheme://host[:port] glab sends an entry's API calls
// to: api_protocol (default https) and api_host (default the key).
func (h glabHost) apiOrigin(key string) *url.URL {
	host, proto := h.APIHost, h.APIProtocol
	if host == "" {
		host = key
	}
	if proto == "" {
		proto = "https"
	}
	return &url.URL{Scheme: proto, Host: host}
}

// GlabAPIURL is where glab sends the API calls for host when its config
// says otherwise than https://host (an api_host with a port, an
// api_protocol); false when it says nothing of the kind.
func GlabAPIURL(host string) (string, bool) {
	hosts, _, _ := glabHosts()
	h, key, ok := glabEntry(hosts, host)
	if !ok || (h.APIHost == "" && h.APIProtocol == "") {
		return "", false
	}
	u := h.apiOrigin(key)
	if u.Host == "" || strings.ContainsAny(u.Host, "/?#@") || (u.Scheme != "https" && u.Scheme != "http") {
		return "", false
	}
	if Origin(u) == Origin(&url.URL{Scheme: "https", Host: host}) {
		return "", false
	}
	return u.String(), true
}

// glabCredentials reads the token glab stored for u: under the key
// host:port when u has a port (`glab auth login --hostname
// gitlab.example.com:8443`), else under its host name. It is used only for
// exactly the host, port and scheme glab stored it for: a credential goes
// only where it was made for. Without one it says why.
func glabCredentials(u *url.URL) (Credentials, string) {
	hosts, where, why := glabHosts()
	if why != "" {
		return Credentials{}, why
	}
	h, key, found := glabEntry(hosts, u.Host, u.Hostname())
	switch {
	case !found:
		return Credentials{}, fmt.Sprintf("%s (no entry for %s)", where, u.Host)
	case Origin(h.apiOrigin(key)) != Origin(u):
		return Credentials{}, fmt.Sprintf("%s (its token is for %s)", where, h.apiOrigin(key))
	case strings.TrimSpace(h.Token) == "":
		return Credentials{}, fmt.Sprintf("%s (no token for %s; one kept in the system keyring cannot be read)", where, key)
	case h.IsOAuth2 == "true" && oauthExpired(h.OAuth2Expiry):
		return Credentials{}, fmt.Sprintf("%s (its OAuth token for %s expired; any glab command renews it)", where, key)
	}
	return Credentials{Token: strings.TrimSpace(h.Token), OAuth: h.IsOAuth2 == "true", Source: where}, ""
}

// oauthExpired reads glab's oauth2_expiry_date (RFC 822, "13 Mar 23 15:47 GMT").
func oauthExpired(s string) bool {
	t, err := time.Parse(time.RFC822, strings.TrimSpace(s))
	return err == nil && time.Now().After(t)
}

func (c Credentials) unauthorizedHint(baseURL string) string {
	if c.Token == "" && c.JobToken != "" {
		return "GitLab does not accept CI_JOB_TOKEN for this; set GITLAB_TOKEN in the job to a project or personal access token with the api scope (" + TokenPage(baseURL) + ")"
	}
	return fmt.Sprintf("GitLab at %s refused the token from %s: it is wrong, expired or revoked, or belongs to another GitLab; make one with the api scope at %s", baseURL, c.Source, TokenPage(baseURL))
}
