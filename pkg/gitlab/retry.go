package gitlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	gl "gitlab.com/gitlab-org/api/client-go"
)

// DefaultRequestTimeout bounds one try of one request when
// Options.RequestTimeout is not given.
const DefaultRequestTimeout = 30 * time.Second

// slowTries is how many tries a request gets when its tries run out of
// time: each took the whole RequestTimeout already, and a GitLab that
// accepts connections and never answers should fail in minutes, not ten.
const slowTries = 2

// repeat says whether a call may be sent again after it reached GitLab.
type repeat int

const (
	// repeatable calls read, or set a state that a second call leaves
	// as the first did (GET, and DELETE of a token).
	repeatable repeat = iota + 1
	// once calls create something (a token, an agent, a commit): sent
	// again after GitLab did the work, they would do it twice. They are
	// repeated only when GitLab surely did not start them: a 429 from
	// its rate limiter, or a request that never left this machine.
	once
)

// callInfo travels in a call's context to its requests: whether they may
// be repeated, and how many tries the last one took.
type callInfo struct {
	repeat repeat
	tries  atomic.Int32
	// maxBytes, when set, bounds the answer instead of MaxResponseBytes
	// (a repository archive).
	maxBytes int64
}

type callKey struct{}

// call prepares the context of one API call: whether repeating it is safe,
// and its time bound.
func (c *Client) call(ctx context.Context, r repeat) (context.Context, context.CancelFunc, gl.RequestOptionFunc) {
	return c.callBounded(ctx, r, 0)
}

// callBounded is call for an answer bounded by maxBytes rather than
// MaxResponseBytes (0: MaxResponseBytes).
func (c *Client) callBounded(ctx context.Context, r repeat, maxBytes int64) (context.Context, context.CancelFunc, gl.RequestOptionFunc) {
	ctx, cancel := context.WithTimeout(context.WithValue(ctx, callKey{}, &callInfo{repeat: r, maxBytes: maxBytes}), c.callTimeout)
	return ctx, cancel, gl.WithContext(ctx)
}

func callOf(ctx context.Context) *callInfo {
	ci, _ := ctx.Value(callKey{}).(*callInfo)
	return ci
}

func repeatableCall(ctx context.Context) bool {
	ci := callOf(ctx)
	return ci != nil && ci.repeat == repeatable
}

// triesOf is how many tries the request that ended ctx's call took; 0 when
// unknown.
func triesOf(ctx context.Context) int {
	if ci := callOf(ctx); ci != nil {
		return int(ci.tries.Load())
	}
	return 0
}

// The phases a try can run out of time in.
const (
	phaseConnect = "connect" // no connection was opened: GitLab not reached
	phaseAnswer  = "answer"  // connected, and no answer came
	phaseBody    = "body"    // the answer began and did not finish
)

// TimeoutError is a try that ran out of its time (Options.RequestTimeout).
type TimeoutError struct {
	Host  string // host[:port] of GitLab
	Phase string // phaseConnect, phaseAnswer or phaseBody
	After time.Duration
	// CallBound: the call's bound (Options.CallTimeout) ended the try.
	CallBound bool
}

func (e *TimeoutError) Error() string {
	switch e.Phase {
	case phaseConnect:
		return fmt.Sprintf("cannot reach GitLab at %s: no connection within %s", e.Host, e.After)
	case phaseBody:
		return fmt.Sprintf("GitLab at %s began to answer but did not finish within %s", e.Host, e.After)
	}
	return fmt.Sprintf("GitLab at %s accepted the connection but sent no answer within %s", e.Host, e.After)
}

// Timeout says this is a timeout, as net.Error does.
func (e *TimeoutError) Timeout() bool { return true }

// Is makes errors.Is(err, context.DeadlineExceeded) hold, as for every
// other timeout.
func (e *TimeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// triesError is the failure of the last of several tries.
type triesError struct {
	tries int
	err   error
}

func (e *triesError) Error() string { return e.err.Error() }
func (e *triesError) Unwrap() error { return e.err }

// triesIn is how many tries err took, when more than one.
func triesIn(err error) int {
	var te *triesError
	if errors.As(err, &te) {
		return te.tries
	}
	return 0
}

// retrying is the transport every GitLab request goes through. Each try has
// its own time bound (Options.RequestTimeout) for connecting, the answer and
// all of its body, which is read whole (at most MaxResponseBytes) within it;
// a failed try is repeated when that is safe, after one line on the log that
// says what happened and which try comes, of how many.
type retrying struct {
	rt  http.RoundTripper
	c   *Client
	max int64
}

func (t *retrying) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	slow, took := 0, time.Duration(0)
	for try := 1; ; try++ {
		r := req
		if try > 1 {
			r = req.Clone(ctx)
			if req.Body != nil && req.Body != http.NoBody {
				body, err := req.GetBody()
				if err != nil {
					return nil, err
				}
				r.Body = body
			}
		}
		start := time.Now()
		resp, err := t.try(r)
		took = max(took, time.Since(start))
		if ci := callOf(ctx); ci != nil {
			ci.tries.Store(int32(try))
		}
		f, again := t.c.failure(ctx, resp, err)
		if f.slow {
			slow++
		}
		var wait time.Duration
		n := try
		if again && (req.Body == nil || req.Body == http.NoBody || req.GetBody != nil) {
			wait = t.c.backoff(try, resp)
			n = t.c.plannedTries(ctx, try, slow, f.slow, wait, took)
		}
		if try >= n {
			if err != nil && try > 1 {
				err = &triesError{tries: try, err: err}
			}
			return resp, err
		}
		if resp != nil {
			resp.Body.Close()
		}
		fmt.Fprintf(t.c.log, "%s; retrying in %s (try %d of %d)\n", f.what, wait.Round(100*time.Millisecond), try+1, n)
		if !sleep(ctx, wait) {
			return nil, ctx.Err()
		}
	}
}

// try sends req once within the request timeout and reads the whole answer.
func (t *retrying) try(req *http.Request) (*http.Response, error) {
	var reached, answered atomic.Bool
	trace := &httptrace.ClientTrace{
		ConnectDone: func(_, _ string, err error) {
			if err == nil {
				reached.Store(true)
			}
		},
		GotConn:              func(httptrace.GotConnInfo) { reached.Store(true) },
		GotFirstResponseByte: func() { answered.Store(true) },
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(httptrace.WithClientTrace(req.Context(), trace), t.c.reqTimeout)
	defer cancel()
	// The try ran out of its own time, or of the call's (then it says how
	// long it ran); a cancelled call (Ctrl-C) is no timeout.
	timedOut := func(phase string) error {
		e := &TimeoutError{Host: t.c.host, Phase: phase, After: t.c.reqTimeout}
		if req.Context().Err() != nil {
			e.After, e.CallBound = max(time.Since(start).Round(100*time.Millisecond), 100*time.Millisecond), true
		}
		return e
	}
	resp, err := t.rt.RoundTrip(req.WithContext(ctx))
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			switch {
			case answered.Load():
				err = timedOut(phaseBody)
			case reached.Load():
				err = timedOut(phaseAnswer)
			default:
				err = timedOut(phaseConnect)
			}
		}
		return nil, err
	}
	limit := t.max
	if ci := callOf(req.Context()); ci != nil && ci.maxBytes > 0 {
		limit = ci.maxBytes
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	resp.Body.Close()
	switch {
	case err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return nil, timedOut(phaseBody)
	case err != nil:
		return nil, err
	case int64(len(body)) > limit:
		return nil, &ResponseTooLargeError{Limit: limit}
	}
	resp.Body = &answerBody{Reader: bytes.NewReader(body), raw: body}
	return resp, nil
}

// answerBody is an answer read whole: the official client drains it, and
// the error classes still read it (notFoundMessage).
type answerBody struct {
	*bytes.Reader
	raw []byte
}

func (*answerBody) Close() error { return nil }

// failure says what went wrong with a try, as a retry line says it, and
// whether it may be tried again: 429s (unless GitLab asks for a longer
// wait than MaxRetryAfter), 5xx answers and broken connections of
// repeatable calls, and requests that never left this machine. A refused
// redirect, a TLS failure or an oversized answer is never tried again: the
// same would come back.
func (c *Client) failure(ctx context.Context, resp *http.Response, err error) (f failure, again bool) {
	if ctx.Err() != nil {
		return failure{}, false
	}
	if err != nil {
		var te *TimeoutError
		var dnsErr *net.DNSError
		switch {
		case permanent(err):
			return failure{}, false
		case errors.As(err, &te):
			return failure{what: te.Error(), slow: true}, te.Phase == phaseConnect || repeatableCall(ctx)
		case errors.As(err, &dnsErr):
			return failure{what: "cannot reach GitLab: cannot resolve " + dnsErr.Name}, !dnsErr.IsNotFound
		case notSent(err):
			return failure{what: "cannot reach GitLab at " + c.host + " (" + lastPart(err) + ")"}, true
		}
		return failure{what: "the connection to GitLab at " + c.host + " broke (" + lastPart(err) + ")"}, repeatableCall(ctx)
	}
	what := "GitLab answered " + strconv.Itoa(resp.StatusCode) + " " + http.StatusText(resp.StatusCode)
	switch s := resp.StatusCode; {
	case s == http.StatusTooManyRequests:
		return failure{what: what}, retryAfter(resp) <= c.maxRetryAfter
	case s >= 500 && s != http.StatusNotImplemented:
		// A 502 or 504 may come from a proxy after GitLab did the work.
		return failure{what: what}, repeatableCall(ctx)
	}
	return failure{}, false
}

// failure is a failed try as the retry line says it.
type failure struct {
	what string
	slow bool // the try ran out of its time
}

// plannedTries is how many tries the request gets, now that try failed
// (slow of them by running out of time, this one too when thisSlow; the
// longest took took) and the next would come after wait: MaxRetries+1, or
// slowTries once tries run out of time, and no more than fit before the
// call's deadline, each taking as long as the longest so far (a whole
// RequestTimeout when they run out of it) after its back-off.
func (c *Client) plannedTries(ctx context.Context, try, slow int, thisSlow bool, wait, took time.Duration) int {
	n := c.maxRetries + 1
	if thisSlow {
		n = min(n, try+slowTries-slow)
		took = c.reqTimeout
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		return max(n, try)
	}
	left := time.Until(deadline)
	planned := try
	for k := try + 1; k <= n; k++ {
		cost := wait + took
		if k > try+1 {
			cost = max(wait, c.backoff(k-1, nil)) + took
		}
		if cost > left {
			break
		}
		left -= cost
		planned = k
	}
	return planned
}

// backoff is the wait after try: as GitLab's Retry-After says, else
// exponential from RetryBase with a little jitter.
func (c *Client) backoff(try int, resp *http.Response) time.Duration {
	if resp != nil {
		if ra := retryAfter(resp); ra > 0 {
			return ra
		}
	}
	wait := c.retryBase << min(try-1, 5)
	return wait + time.Duration(rand.Int64N(int64(c.retryBase/5)+1))
}

// notSent reports a request that never left this machine: the connection
// could not be opened.
func notSent(err error) bool {
	var opErr *net.OpError
	var te *TimeoutError
	return (errors.As(err, &opErr) && opErr.Op == "dial") || (errors.As(err, &te) && te.Phase == phaseConnect)
}

// permanent reports failures that a retry would meet again.
func permanent(err error) bool {
	var re *RedirectError
	var tooLarge *ResponseTooLargeError
	return errors.As(err, &re) || errors.As(err, &tooLarge) || tlsTrustFailure(err)
}

// lastPart is the end of an error's chain of "doing: cause" texts.
func lastPart(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return msg
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
