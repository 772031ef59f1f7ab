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
	"strconv"
	"strings"
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
	callTimeout   time.Duration
	log           io.Writer
}

// New builds a client. It makes no request.
func New(o Options) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(o.URL, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("invalid GitLab URL %q: want https://host[/path]", o.URL)
	}
	if o.Credentials.Token == "" && o.Credentials.JobToken == "" && !o.Anonymous {
		return nil, &NoCredentialsError{Host: u.Host, Tried: []string{"none given"}}
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
		gl.WithHTTPClient(newHTTPClient(o.HTTPClient, u)),
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

// BaseURL is the GitLab instance this client talks to.

// repeat says whether a call may be sent again after it reached GitLab.
type repeat int

const (
	// repeatable calls read, or set a state that a second call leaves
	// as the first did (GET, and DELETE of a token).
	repeatable repeat = iota + 1
	// once calls create something (a token, an agent, a commit): sent
	// again after GitLab did the work, they would do it twice. They are
	// repeated only when GitLab surely did not start them: a 429 from
	// its rate limiter, or a connection that could not be opened.
	once
)

type repeatKey struct{}

// call prepares the context of one API call: whether repeating it is safe,
// and its time bound.
func (c *Client) call(ctx context.Context, r repeat) (context.Context, context.CancelFunc, gl.RequestOptionFunc) {
	ctx, cancel := context.WithTimeout(context.WithValue(ctx, repeatKey{}, r), c.callTimeout)
	return ctx, cancel, gl.WithContext(ctx)
}

func repeatableCall(ctx context.Context) bool {
	r, _ := ctx.Value(repeatKey{}).(repeat)
	return r == repeatable
}

// checkRetry retries what is safe to retry: 429s (unless GitLab asks for a
// longer wait than MaxRetryAfter), 5xx answers and broken connections of
// repeatable calls, and connections that could not be opened at all. It
// never retries a refused redirect, a TLS failure or an oversized answer:
// the same would come back.
func (c *Client) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil {
		if permanent(err) {
			return false, nil
		}
		if notSent(err) {
			var dnsErr *net.DNSError
			if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
				return false, nil
			}
			return true, nil
		}
		return repeatableCall(ctx), nil
	}
	switch s := resp.StatusCode; {
	case s == http.StatusTooManyRequests:
		return retryAfter(resp) <= c.maxRetryAfter, nil
	case s >= 500 && s != http.StatusNotImplemented:
		// A 502 or 504 may come from a proxy after GitLab did the work.
		return repeatableCall(ctx), nil
	}
	return false, nil
}

// notSent reports a failure to open the connection: nothing reached GitLab.
func notSent(err error) bool {
	var opErr *net.OpError
	return errors.As(err, &opErr) && opErr.Op == "dial"
}

// permanent reports failures that a retry would meet again.
func permanent(err error) bool {
	var re *RedirectError
	var tooLarge *ResponseTooLargeError
	return errors.As(err, &re) || errors.As(err, &tooLarge) || tlsTrustFailure(err)
}

// retryAfter reads Retry-After (seconds or an HTTP date); 0 when absent.
func retryAfter(resp *http.Response) time.Duration {
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0
	}
	if n, ok := retryAfterSeconds(v); ok {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, time.Until(t))
	}
	return 0
}

// maxRetryAfterSeconds caps a Retry-After in seconds: more is "a day or
// more" (and a number that large would overflow a Duration).
const maxRetryAfterSeconds = 86400

// retryAfterSeconds reads a Retry-After given in seconds, capped at
// maxRetryAfterSeconds; false when it is not a number of seconds.
func retryAfterSeconds(v string) (int, bool) {
	if v == "" || strings.Trim(v, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n > maxRetryAfterSeconds { // ErrRange: all digits, too many
		return maxRetryAfterSeconds, true
	}
	return int(n), true
}

// backoff waits as GitLab's Retry-After says, else exponentially with a
// little jitter, and says so on the log.
func (c *Client) backoff(_, _ time.Duration, attempt int, resp *http.Response) time.Duration {
	wait := c.retryBase << min(attempt, 5)
	wait += time.Duration(rand.Int64N(int64(c.retryBase/5) + 1))
	why := "cannot reach GitLab"
	if resp != nil {
		why = "GitLab answered " + strconv.Itoa(resp.StatusCode) + " " + http.StatusText(resp.StatusCode)
		if ra := retryAfter(resp); ra > 0 {
			wait = ra
		}
	}
	fmt.Fprintf(c.log, "%s; retrying in %s (%d/%d)\n", why, wait.Round(100*time.Millisecond), attempt+1, c.maxRetries)
	return wait
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
