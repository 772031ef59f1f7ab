package gitlab

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	gl "gitlab.com/gitlab-org/api/client-go"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/safetext"
)

// Class says what kind of failure an API call had.
type Class int

// The failure classes, each with its own advice to the user.
const (
	ClassUnknown Class = iota
	ClassUnauthenticated
	ClassForbidden
	ClassNotFound
	ClassConflict // 409, and GitLab's 400s for taken names and limits
	ClassInvalid  // other 400s and 422s: the request was wrong
	ClassRateLimited
	ClassServer
	ClassNetwork
	ClassRedirect  // a redirect to another origin, not followed
	ClassBadAnswer // an answer that is not GitLab's API (HTML, too large)
)

// Error is a failed GitLab call with one sentence that says what to do.
type Error struct {
	Class  Class
	Status int    // HTTP status, 0 when no answer came
	Op     string // what was being done: "registering agent \"x\""
	Detail string // GitLab's message, or the network error
	Hint   string // what the user can do about it
	// RetryAfter is GitLab's Retry-After in seconds for 429s, when given.
	RetryAfter int
	Err        error

	// notFound is GitLab's message of a 404 ("404 Project Not Found"),
	// which the official client drops: it tells a missing branch from a
	// project the token cannot see.
	notFound string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	b.WriteString(": ")
	switch {
	case e.Status != 0 && e.Detail != "" && !strings.HasPrefix(e.Detail, strconv.Itoa(e.Status)):
		fmt.Fprintf(&b, "%d %s", e.Status, e.Detail)
	case e.Detail != "":
		b.WriteString(e.Detail)
	case e.Status != 0:
		fmt.Fprintf(&b, "%d %s", e.Status, http.StatusText(e.Status))
	default:
		b.WriteString("failed")
	}
	if e.Hint != "" {
		b.WriteString(": ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// IsClass reports whether err is a GitLab error of class c.
func IsClass(err error, c Class) bool {
	var e *Error
	return errors.As(err, &e) && e.Class == c
}

// hints are the per-call sentences for each class; empty ones get a
// generic sentence.
type hints struct {
	forbidden, notFound, conflict, invalid string
}

// maxDetail bounds how much of GitLab's own error text a message quotes.
const maxDetail = 300

// classify turns what the official client returned into an *Error. GitLab's
// text is clipped, escaped and stripped of the credential before any of it
// is quoted: a hostile or broken server must not write to the terminal, nor
// make the plugin print a token it echoed back.
func (c *Client) classify(op string, resp *gl.Response, err error, h hints) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", op, err)
	}
	e := &Error{Op: op, Err: err}
	var er *gl.ErrorResponse
	var re *RedirectError
	var tooLarge *ResponseTooLargeError
	switch {
	case errors.As(err, &re):
		e.Class = ClassRedirect
		e.Detail = c.remote(re.Error())
		e.Hint = "pass --gitlab-url with the address GitLab really answers on, if " + c.remote(re.To) + " is yours"
		return e
	case errors.As(err, &tooLarge):
		e.Class = ClassBadAnswer
		if resp != nil && resp.Response != nil {
			e.Status = resp.StatusCode
		}
		e.Detail = "GitLab's answer is larger than " + strconv.FormatInt(tooLarge.Limit>>20, 10) + " MiB"
		e.Hint = "check that --gitlab-url (" + c.baseURL + ") is the GitLab instance"
		return e
	case errors.As(err, &er) && er.Response != nil:
		e.Status = er.Response.StatusCode
		e.RetryAfter, _ = retryAfterSeconds(er.Response.Header.Get("Retry-After"))
		if isHTML(er.Response.Header, er.Body) {
			e.Class = ClassBadAnswer
			e.Detail = fmt.Sprintf("%d %s, with an HTML page instead of GitLab's API", e.Status, http.StatusText(e.Status))
			e.Hint = c.notTheAPIHint(e.Status)
			return e
		}
		e.Detail = c.remote(unwrapMessage(strings.TrimPrefix(er.Message, "failed to parse unknown error format: ")))
	case resp != nil && resp.Response != nil:
		e.Status = resp.StatusCode
		e.RetryAfter, _ = retryAfterSeconds(resp.Header.Get("Retry-After"))
		if e.Status < 300 {
			// The call succeeded but its answer is not GitLab's JSON.
			e.Class = ClassBadAnswer
			if isHTML(resp.Header, nil) {
				e.Detail = "GitLab answered with an HTML page instead of its API"
			} else {
				e.Detail = "GitLab's answer is not the JSON its API sends (" + c.remote(err.Error()) + ")"
			}
			e.Hint = c.notTheAPIHint(e.Status)
			return e
		}
		if e.Status == http.StatusNotFound {
			e.notFound = notFoundMessage(resp.Response)
		}
	case errors.Is(err, gl.ErrNotFound):
		e.Status = http.StatusNotFound
	}
	switch {
	case e.Status == http.StatusUnauthorized:
		e.Class = ClassUnauthenticated
		e.Hint = c.creds.unauthorizedHint(c.baseURL)
	case e.Status == http.StatusForbidden:
		e.Class = ClassForbidden
		e.Hint = orDefault(h.forbidden, "your token lacks the role or scope for this (it needs the api scope)")
	case e.Status == http.StatusNotFound:
		e.Class = ClassNotFound
		e.Hint = orDefault(h.notFound, "it does not exist, or your token cannot see it")
	case e.Status == http.StatusConflict || (e.Status == http.StatusBadRequest && isConflictMessage(e.Detail)):
		e.Class = ClassConflict
		e.Hint = h.conflict
	case e.Status == http.StatusBadRequest || e.Status == http.StatusUnprocessableEntity:
		e.Class = ClassInvalid
		e.Hint = h.invalid
	case e.Status == http.StatusTooManyRequests:
		e.Class = ClassRateLimited
		e.Hint = "GitLab is rate limiting this token; wait and run the command again"
		switch {
		case e.RetryAfter >= maxRetryAfterSeconds:
			e.Hint = "GitLab is rate limiting this token and asks for a day or more: run the command again later"
		case e.RetryAfter > 0:
			e.Hint = fmt.Sprintf("GitLab is rate limiting this token; run the command again in %ds", e.RetryAfter)
		}
	case e.Status >= 500:
		e.Class = ClassServer
		e.Hint = fmt.Sprintf("GitLab at %s is failing; try again later", c.baseURL)
		if req := requestOf(resp, er); req != nil && triesOf(req.Context()) > 1 {
			e.Hint = fmt.Sprintf("GitLab at %s is failing (gave up after %d tries); try again later", c.baseURL, triesOf(req.Context()))
		}
	case e.Status == 0:
		e.Class = ClassNetwork
		e.Detail, e.Hint = networkAdvice(err, c.baseURL)
		e.Detail = c.remote(e.Detail)
		if n := triesIn(err); n > 1 {
			e.Detail += fmt.Sprintf(" (%d tries)", n)
		}
	}
	return e
}

// requestOf is the request a failed call sent, when known.
func requestOf(resp *gl.Response, er *gl.ErrorResponse) *http.Request {
	switch {
	case er != nil && er.Response != nil:
		return er.Response.Request
	case resp != nil && resp.Response != nil:
		return resp.Request
	}
	return nil
}

// remote makes GitLab's text safe to quote.
func (c *Client) remote(s string) string {
	return safetext.Remote(s, maxDetail, c.secrets()...)
}

func (c *Client) notTheAPIHint(status int) string {
	if status >= 500 {
		return "a proxy or load balancer in front of GitLab at " + c.baseURL + " is failing; try again later"
	}
	return "check that --gitlab-url (" + c.baseURL + ") is the GitLab instance itself, not a sign-in page or a proxy"
}

// isHTML reports an HTML answer, by its type or its first bytes.
func isHTML(h http.Header, body []byte) bool {
	if ct := strings.ToLower(h.Get("Content-Type")); strings.HasPrefix(ct, "text/html") || strings.HasPrefix(ct, "application/xhtml") {
		return true
	}
	b := strings.ToLower(strings.TrimSpace(string(body[:min(len(body), 512)])))
	return strings.HasPrefix(b, "<!doctype html") || strings.HasPrefix(b, "<html")
}

// mayHaveHappened reports whether a failed call that creates something may
// have been done by GitLab anyway: the answer was lost (a 5xx from a proxy,
// a timeout, a dropped connection, Ctrl-C while it was in flight) or could
// not be read. A refusal (4xx, 429) or a connection never opened did nothing.
func mayHaveHappened(err error) bool {
	if notSent(err) {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var e *Error
	if !errors.As(err, &e) {
		return true
	}
	switch {
	case e.Class == ClassRedirect:
		return false
	case e.Status >= 500, e.Status >= 200 && e.Status < 300:
		return true
	case e.Status == 0:
		return !notSent(e.Err) && !tlsTrustFailure(e.Err)
	}
	return false
}

// unwrapMessage turns the official client's rendering of GitLab's error
// body ("{message: 403 Forbidden}", "{error: name is missing}") into the
// message itself.
func unwrapMessage(msg string) string {
	msg = strings.TrimSpace(msg)
	for _, key := range []string{"message", "error"} {
		if inner, ok := strings.CutPrefix(msg, "{"+key+": "); ok && strings.HasSuffix(inner, "}") {
			return strings.TrimSuffix(inner, "}")
		}
	}
	return msg
}

// isConflictMessage spots GitLab's 400s that mean "exists already" or "limit".
func isConflictMessage(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "already been taken") || strings.Contains(m, "already exists") ||
		strings.Contains(m, "only two active tokens") || strings.Contains(m, "has changed since")
}

// networkAdvice explains a failure to reach GitLab at all.
func networkAdvice(err error, baseURL string) (string, string) {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	var timeout *TimeoutError
	switch {
	case errors.As(err, &timeout) && timeout.Phase == phaseConnect:
		return timeout.Error(), "check --gitlab-url (" + baseURL + ") and that GitLab is reachable from here; a firewall may drop the connection"
	case errors.As(err, &timeout) && timeout.CallBound:
		return timeout.Error(), "check that GitLab is up and answering"
	case errors.As(err, &timeout) && timeout.Phase == phaseBody:
		return timeout.Error(), "the network or a proxy on the way stalls; try again, or allow longer with --request-timeout"
	case errors.As(err, &timeout):
		return timeout.Error(), "check that GitLab is up and answering, or allow longer with --request-timeout"
	case errors.As(err, &dnsErr):
		return "cannot resolve " + dnsErr.Name, "check --gitlab-url (" + baseURL + ") and your DNS"
	case errors.As(err, &hostErr):
		return "GitLab's TLS certificate does not match the host (" + hostErr.Error() + ")", "check --gitlab-url (" + baseURL + ")"
	case errors.As(err, &invalid):
		return "GitLab's TLS certificate is not valid (" + invalid.Error() + ")", "check the certificate of " + baseURL + " and this machine's clock"
	case tlsTrustFailure(err):
		return "GitLab's TLS certificate is signed by an unknown authority", "trust your GitLab's CA: add it to the system trust store, or point SSL_CERT_FILE at a PEM bundle that holds it"
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer in time", "check that " + baseURL + " is reachable from here"
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return "cannot connect to " + baseURL, "check --gitlab-url and that GitLab is reachable from here"
	}
	return "the connection to GitLab failed (" + lastPart(err) + ")", "check that " + baseURL + " is reachable from here and try again"
}

// tlsTrustFailure reports a certificate no trusted authority signed.
// UnknownAuthorityError is a value type: errors.As needs a value target.
func tlsTrustFailure(err error) bool {
	var unknown x509.UnknownAuthorityError
	return errors.As(err, &unknown)
}

func orDefault(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

// notFoundMessage is GitLab's message in a 404's body, which the official
// client leaves unread (the transport read it whole already); "" when there
// is none.
func notFoundMessage(resp *http.Response) string {
	ab, ok := resp.Body.(*answerBody)
	if !ok {
		return ""
	}
	var body struct {
		Message any `json:"message"`
	}
	if json.Unmarshal(ab.raw, &body) != nil {
		return ""
	}
	if m, ok := body.Message.(string); ok {
		return m
	}
	return ""
}
