// Package gitlab is everything the plugin says to GitLab: the client built
// from flags and environment, KAS discovery, agents, tokens and repository
// files, with failures turned into errors that say what to do.
package gitlab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	gl "gitlab.com/gitlab-org/api/client-go"
)

// Credentials is how the plugin authenticates to GitLab.
type Credentials struct {
	// Token is a personal, project, group or OAuth access token, sent as
	// PRIVATE-TOKEN.
	Token string
	// Source names where Token came from, for messages: "GITLAB_TOKEN" or
	// "--gitlab-token-file FILE". Never the token itself.
	Source string
	// JobToken is CI_JOB_TOKEN, sent as JOB-TOKEN; GitLab accepts it on
	// few endpoints.
	JobToken string
}

// CredentialsFromEnv reads the token from tokenFile when given, else
// GITLAB_TOKEN, else CI_JOB_TOKEN inside a CI job. Secrets are never taken
// from flag values, which other users could read in the process list.
func CredentialsFromEnv(tokenFile string) (Credentials, error) {
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return Credentials{}, fmt.Errorf("reading --gitlab-token-file: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
			return Credentials{}, fmt.Errorf("--gitlab-token-file %s must hold one token and nothing else", tokenFile)
		}
		return Credentials{Token: tok, Source: "--gitlab-token-file " + tokenFile}, nil
	}
	if tok := strings.TrimSpace(os.Getenv("GITLAB_TOKEN")); tok != "" {
		return Credentials{Token: tok, Source: "GITLAB_TOKEN"}, nil
	}
	if tok := strings.TrimSpace(os.Getenv("CI_JOB_TOKEN")); tok != "" {
		return Credentials{JobToken: tok, Source: "CI_JOB_TOKEN"}, nil
	}
	return Credentials{}, ErrNoCredentials
}

// ErrNoCredentials says how to give the plugin a GitLab token.
var ErrNoCredentials = errors.New("no GitLab credentials: set GITLAB_TOKEN to a personal access token with the api scope, or pass --gitlab-token-file FILE")

func (c Credentials) unauthorizedHint(baseURL string) string {
	if c.Token == "" && c.JobToken != "" {
		return "GitLab does not accept CI_JOB_TOKEN for this; set GITLAB_TOKEN in the job to a project or personal access token with the api scope"
	}
	return fmt.Sprintf("GitLab at %s refused the token from %s: it is wrong, expired or revoked, or belongs to another GitLab", baseURL, c.Source)
}

// Options configure a Client.
type Options struct {
	// URL is the GitLab instance, e.g. https://gitlab.com.
	URL         string
	Credentials Credentials
	// HTTPClient replaces the default transport (tests, custom CAs).
	HTTPClient *http.Client
	// MaxRetries bounds retries of 429s and 5xx answers (default 4).
	MaxRetries int
	// RetryBase is the first back-off (default 500ms), doubled each time.
	RetryBase time.Duration
	// MaxRetryAfter is the longest Retry-After the client waits for
	// (default 30s); a longer one fails at once and says when to retry.
	MaxRetryAfter time.Duration
	// CallTimeout bounds one call, retries included (default 2m).
	CallTimeout time.Duration
	// Log receives one line per retry; nil discards them.
	Log io.Writer
	// UserAgent is sent with every request.
	UserAgent string
}

// Client talks to one GitLab instance.
type Client struct {
	api           *gl.Client
	baseURL       string
	creds         Credentials
	maxRetries    int
	retryBase     time.Duration
	maxRetryAfter time.Duration
	callTimeout   time.Duration
	log           io.Writer
}

// New builds a client. It makes no request.
func New(o Options) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(o.URL, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("invalid GitLab URL %q: want https://host[/path]", o.URL)
	}
	if o.Credentials.Token == "" && o.Credentials.JobToken == "" {
		return nil, ErrNoCredentials
	}
	c := &Client{
		baseURL: u.String(), creds: o.Credentials,
		maxRetries: o.MaxRetries, retryBase: o.RetryBase, maxRetryAfter: o.MaxRetryAfter,
		callTimeout: o.CallTimeout, log: o.Log,
	}
	if c.maxRetries == 0 {
		c.maxRetries = 4
	}
	if c.retryBase == 0 {
		c.retryBase = 500 * time.Millisecond
	}
	if c.maxRetryAfter == 0 {
		c.maxRetryAfter = 30 * time.Second
	}
	if c.callTimeout == 0 {
		c.callTimeout = 2 * time.Minute
	}
	if c.log == nil {
		c.log = io.Discard
	}
	opts := []gl.ClientOptionFunc{
		gl.WithBaseURL(c.baseURL),
		gl.WithCustomRetryMax(c.maxRetries),
		gl.WithCustomRetry(c.checkRetry),
		gl.WithCustomBackoff(c.backoff),
	}
	if o.HTTPClient != nil {
		opts = append(opts, gl.WithHTTPClient(o.HTTPClient))
	}
	if o.UserAgent != "" {
		opts = append(opts, gl.WithUserAgent(o.UserAgent))
	}
	if o.Credentials.Token != "" {
		c.api, err = gl.NewClient(o.Credentials.Token, opts...)
	} else {
		c.api, err = gl.NewJobClient(o.Credentials.JobToken, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("creating the GitLab client: %w", err)
	}
	return c, nil
}

// BaseURL is the GitLab instance this client talks to.
func (c *Client) BaseURL() string { return c.baseURL }

type methodKey struct{}

// call prepares the context of one API call: its method (so that retries
// know whether repeating it is safe) and its time bound.
func (c *Client) call(ctx context.Context, method string) (context.Context, context.CancelFunc, gl.RequestOptionFunc) {
	ctx, cancel := context.WithTimeout(context.WithValue(ctx, methodKey{}, method), c.callTimeout)
	return ctx, cancel, gl.WithContext(ctx)
}

func idempotent(ctx context.Context) bool {
	switch m, _ := ctx.Value(methodKey{}).(string); m {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// checkRetry retries what is safe to retry: 429s (unless GitLab asks for a
// longer wait than MaxRetryAfter), 5xx answers to idempotent calls (a POST
// only on 502/503/504, which mean it never reached GitLab's application), and
// connection failures before anything was sent, or of idempotent calls.
func (c *Client) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil {
		var opErr *net.OpError
		if errors.As(err, &opErr) && opErr.Op == "dial" {
			var dnsErr *net.DNSError
			if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
				return false, nil
			}
			return true, nil
		}
		return idempotent(ctx), nil
	}
	switch s := resp.StatusCode; {
	case s == http.StatusTooManyRequests:
		return retryAfter(resp) <= c.maxRetryAfter, nil
	case s == http.StatusBadGateway || s == http.StatusServiceUnavailable || s == http.StatusGatewayTimeout:
		return true, nil
	case s >= 500 && s != http.StatusNotImplemented:
		return idempotent(ctx), nil
	}
	return false, nil
}

// retryAfter reads Retry-After (seconds or an HTTP date); 0 when absent.
func retryAfter(resp *http.Response) time.Duration {
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, time.Until(t))
	}
	return 0
}

// backoff waits as GitLab's Retry-After says, else exponentially with a
// little jitter, and says so on the log.
func (c *Client) backoff(_, _ time.Duration, attempt int, resp *http.Response) time.Duration {
	wait := c.retryBase << min(attempt, 5)
	wait += time.Duration(rand.Int64N(int64(c.retryBase/5) + 1))
	why := "cannot reach GitLab"
	if resp != nil {
		why = "GitLab answered " + resp.Status
		if ra := retryAfter(resp); ra > 0 {
			wait = ra
		}
	}
	fmt.Fprintf(c.log, "%s; retrying in %s (%d/%d)\n", why, wait.Round(100*time.Millisecond), attempt+1, c.maxRetries)
	return wait
}
