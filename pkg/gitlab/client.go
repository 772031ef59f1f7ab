// Package gitlab is everything the plugin says to GitLab: the client built
// from flags and environment, KAS discovery, agents, tokens and repository
// files, with failures turned into errors that say what to do.
package gitlab

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gl "gitlab.com/gitlab-org/api/client-go"
	"golang.org/x/oauth2"
)

// Options configure a Client.
type Options struct {
	// URL is the GitLab instance, e.g. https://gitlab.com.
	URL         string
	Credentials Credentials
	// HTTPClient replaces the default transport (tests, custom CAs).
	HTTPClient *http.Client
	// MaxRetries bounds retries of 429s, 5xx answers and failed
	// connections (default 4: five tries). A try that ran out of its time
	// is repeated once at most: it was slow already.
	MaxRetries int
	// RetryBase is the first back-off (default 500ms), doubled each time.
	RetryBase time.Duration
	// MaxRetryAfter is the longest Retry-After the client waits for
	// (default 30s); a longer one fails at once and says when to retry.
	MaxRetryAfter time.Duration
	// RequestTimeout bounds one try of one request: connecting, waiting
	// for the answer and reading all of it (default 30s).
	RequestTimeout time.Duration
	// CallTimeout bounds one call, all its requests and retries included
	// (default 4 × RequestTimeout, at least 2m).
	CallTimeout time.Duration
	// Log receives one line per retry; nil discards them.
	Log io.Writer
	// UserAgent is sent with every request.
	UserAgent string
	// Anonymous allows a client without credentials, for what GitLab
	// answers to anyone (and to tell a reachable GitLab from none).
	Anonymous bool
}

// Client talks to one GitLab instance.
type Client struct {
	api           *gl.Client
	baseURL       string
	creds         Credentials
	maxRetries    int
	retryBase     time.Duration
	maxRetryAfter time.Duration
	reqTimeout    time.Duration
	callTimeout   time.Duration
	log           io.Writer
	host          string // host[:port] of baseURL, as the retry lines name it

	// learned are secrets GitLab gave this client (deploy tokens), kept
	// out of every message as the credential is.
	learnedMu sync.Mutex
	learned   []string
	// noReceptiveField: this GitLab's GraphQL has no ClusterAgent.isReceptive
	// (CE), learned from its refusal.
	noReceptiveField atomic.Bool
}

// learnSecret adds a secret GitLab answered with to what messages redact.
func (c *Client) learnSecret(s string) {
	if s == "" {
		return
	}
	c.learnedMu.Lock()
	defer c.learnedMu.Unlock()
	c.learned = append(c.learned, s)
}

// secrets are the values no message may show: the credential and what
// GitLab gave this client.
func (c *Client) secrets() []string {
	c.learnedMu.Lock()
	defer c.learnedMu.Unlock()
	return append(c.creds.secrets(), c.learned...)
}

// New builds a client. It makes no request.
func New(o Options) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(o.URL, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("invalid GitLab URL %q: want https://host[/path]", o.URL)
	}
	if o.Credentials.Token == "" && o.Credentials.JobToken == "" && !o.Anonymous {
		return nil, &NoCredentialsError{Host: u.Host, URL: u.String(), Tried: []string{"none given"}}
	}
	c := &Client{
		baseURL: u.String(), creds: o.Credentials,
		maxRetries: o.MaxRetries, retryBase: o.RetryBase, maxRetryAfter: o.MaxRetryAfter,
		reqTimeout: o.RequestTimeout, callTimeout: o.CallTimeout, log: o.Log, host: u.Host,
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
	if c.reqTimeout <= 0 {
		c.reqTimeout = DefaultRequestTimeout
	}
	if c.callTimeout == 0 {
		c.callTimeout = max(2*time.Minute, 4*c.reqTimeout)
	}
	if c.log == nil {
		c.log = io.Discard
	}
	opts := []gl.ClientOptionFunc{
		gl.WithBaseURL(c.baseURL),
		// The retries are the transport's (retry.go), where each try has
		// its own time bound and the answer is read whole within it.
		gl.WithCustomRetryMax(0),
		gl.WithCustomRetry(func(context.Context, *http.Response, error) (bool, error) { return false, nil }),
		gl.WithHTTPClient(newHTTPClient(o.HTTPClient, u, c)),
	}
	if o.UserAgent != "" {
		opts = append(opts, gl.WithUserAgent(o.UserAgent))
	}
	switch {
	case o.Credentials.Token != "" && o.Credentials.OAuth:
		c.api, err = gl.NewAuthSourceClient(gl.OAuthTokenSource{
			TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: o.Credentials.Token}),
		}, opts...)
	case o.Credentials.Token != "":
		c.api, err = gl.NewClient(o.Credentials.Token, opts...)
	case o.Credentials.JobToken != "":
		c.api, err = gl.NewJobClient(o.Credentials.JobToken, opts...)
	default: // anonymous: an empty token is no credential to GitLab
		c.api, err = gl.NewClient("", opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("creating the GitLab client: %w", err)
	}
	return c, nil
}

// cleanupContext is for undoing work after a failure: it outlives ctx, so that
// an interrupted command still cleans up, but only briefly after an interrupt.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	d := 20 * time.Second
	if ctx.Err() != nil {
		d = 3 * time.Second
	}
	return context.WithTimeout(context.WithoutCancel(ctx), d)
}

// sleep waits d unless ctx ends first; it reports whether it waited.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Credentials says which credential the client sends, without its value.
func (c *Client) Credentials() Credentials {
	cr := c.creds
	cr.Token, cr.JobToken = redact(cr.Token), redact(cr.JobToken)
	return cr
}

func redact(s string) string {
	if s == "" {
		return ""
	}
	return "<set>"
}
