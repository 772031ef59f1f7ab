package gitlab

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	gl "gitlab.com/gitlab-org/api/client-go"
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

// classify turns what the official client returned into an *Error.
func (c *Client) classify(op string, resp *gl.Response, err error, h hints) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	e := &Error{Op: op, Err: err}
	var er *gl.ErrorResponse
	switch {
	case errors.As(err, &er) && er.Response != nil:
		e.Status = er.Response.StatusCode
		e.Detail = unwrapMessage(er.Message)
		e.RetryAfter, _ = strconv.Atoi(er.Response.Header.Get("Retry-After"))
	case resp != nil && resp.Response != nil:
		e.Status = resp.StatusCode
		e.RetryAfter, _ = strconv.Atoi(resp.Header.Get("Retry-After"))
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
		if e.RetryAfter > 0 {
			e.Hint = fmt.Sprintf("GitLab is rate limiting this token; run the command again in %ds", e.RetryAfter)
		}
	case e.Status >= 500:
		e.Class = ClassServer
		e.Hint = fmt.Sprintf("GitLab at %s is failing (gave up after %d attempts); try again later", c.baseURL, c.maxRetries+1)
	case e.Status == 0:
		e.Class = ClassNetwork
		e.Detail, e.Hint = networkAdvice(err, c.baseURL)
	}
	return e
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
	var certErr *x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var opErr *net.OpError
	switch {
	case errors.As(err, &dnsErr):
		return "cannot resolve " + dnsErr.Name, "check --gitlab-url (" + baseURL + ") and your DNS"
	case errors.As(err, &certErr):
		return "GitLab's TLS certificate is signed by an unknown authority", "add your CA to the system trust store or SSL_CERT_FILE"
	case errors.As(err, &hostErr):
		return "GitLab's TLS certificate does not match the host", "check --gitlab-url (" + baseURL + ")"
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer in time", "check that " + baseURL + " is reachable from here"
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return "cannot connect to " + baseURL, "check --gitlab-url and that GitLab is reachable from here"
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return "the connection to GitLab failed (" + msg + ")", "check that " + baseURL + " is reachable from here and try again"
}

func orDefault(s, def string) string {
	if s != "" {
		return s
	}
	return def
}
