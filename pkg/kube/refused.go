package kube

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// AuthError is a cluster that refused the credentials (401) or the request
// (403). A 401 refuses every request alike, and so does a 403 of
// discovery: a command that meets one ends with this one line, rather than
// one refusal per object.
type AuthError struct {
	// Code is 401 or 403.
	Code int
	// Server, Context and User say which cluster, kubeconfig context and
	// kubeconfig user (User "" when the kubeconfig names none).
	Server, Context, User string
	// Doing is what was asked, as a verb ("read v1/ConfigMap/default/web").
	Doing string
	// Err is the refusal as one object's error ("forbidden: ...").
	Err error
}

func (e *AuthError) Error() string {
	where := e.Server
	if e.Context != "" {
		where += " (context " + e.Context + ")"
	}
	who := "the kubeconfig's user"
	if e.User != "" {
		who = fmt.Sprintf("kubeconfig user %q", e.User)
	}
	if e.Code == 401 {
		return fmt.Sprintf("the cluster at %s does not accept the credentials of %s (401 Unauthorized): check that its token or client certificate is current ('kubectl auth whoami' tries them)", where, who)
	}
	doing := e.Doing
	if doing == "" {
		doing = "go on"
	}
	msg := ""
	var status apierrors.APIStatus
	if errors.As(e.Err, &status) && status.Status().Message != "" && status.Status().Message != "unknown" {
		// The apiserver's words name the user it took you for. ("unknown":
		// an answer that was not a Status, from something in front of it.)
		msg = ": " + status.Status().Message
	}
	return fmt.Sprintf("the cluster at %s does not let %s %s (403 Forbidden%s): check what the cluster lets that user do ('kubectl auth can-i --list')", where, who, doing, msg)
}

func (e *AuthError) Unwrap() error { return e.Err }

// refused reports whether err is the cluster refusing the credentials or
// the request (401, 403).
func refused(err error) bool {
	return apierrors.IsUnauthorized(err) || apierrors.IsForbidden(err)
}

// authError is err, a 401 or 403, as an *AuthError of this client's
// cluster, context and user.
func (c *Client) authError(err error, doing string) error {
	code := 403
	if apierrors.IsUnauthorized(err) {
		code = 401
	}
	return &AuthError{Code: code, Server: c.host(), Context: c.Context, User: c.User, Doing: doing, Err: explain(err)}
}

func (c *Client) host() string {
	if c.Config == nil {
		return ""
	}
	return c.Config.Host
}

// explain is a request's failure said once for every command: credentials
// the cluster refuses (*AuthError), a cluster that does not answer
// (*UnreachableError, the message Reachable gives), else the API's refusal
// in one sentence.
func (c *Client) explain(err error) error {
	switch {
	case err == nil:
		return nil
	case canceled(err):
		return err
	case apierrors.IsUnauthorized(err):
		return c.authError(err, "")
	}
	if unreachable(err) {
		return c.unreachableError(err)
	}
	return explain(err)
}

func (c *Client) unreachableError(err error) error {
	return &UnreachableError{Server: c.host(), Context: c.Context, Err: err}
}

// canceled reports whether err is its context's end.
func canceled(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// unreachable reports whether err is a request that got no HTTP answer (the
// connection could not be made, or broke).
func unreachable(err error) bool {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return false
	}
	var ue *url.Error
	return errors.As(err, &ue)
}

// explain rewrites common API refusals into one sentence; the API error
// stays in the chain (apierrors.IsForbidden and the like still tell).
func explain(err error) error {
	if err == nil {
		return nil
	}
	var se *apierrors.StatusError
	if errors.As(err, &se) {
		switch {
		case apierrors.IsForbidden(err):
			return &explained{"forbidden: " + se.ErrStatus.Message, err}
		case apierrors.IsInvalid(err):
			return &explained{"invalid: " + se.ErrStatus.Message, err}
		case apierrors.IsConflict(err):
			return &explained{"conflict: " + se.ErrStatus.Message, err}
		}
	}
	return err
}

// explained is an API error with a message of its own.
type explained struct {
	msg string
	err error
}

func (e *explained) Error() string { return e.msg }
func (e *explained) Unwrap() error { return e.err }
