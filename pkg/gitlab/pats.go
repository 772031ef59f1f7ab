package gitlab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	gl "gitlab.com/gitlab-org/api/client-go"
)

// ProxyScope is the only scope a user may give a personal access token
// through the self-service API, and the one KAS's Kubernetes proxy needs.
const ProxyScope = "k8s_proxy"

// PAT is a personal access token just created, with its secret.
type PAT struct {
	ID     int64
	Name   string
	Secret string
	// ExpiresAt is the date GitLab stops accepting it (at 00:00 UTC).
	ExpiresAt time.Time
	UserID    int64
}

// MinPATLife is the least a new k8s_proxy token lives: one made in the
// day's last hour gets a day more, so that it is not about to expire (and
// replaced at every kubectl call) the moment it is made.
const MinPATLife = time.Hour

// PATExpiry is the date a k8s_proxy token made at now for days whole days
// expires (GitLab's expires_at; it stops working at 00:00 UTC of that date),
// at least MinPATLife after now.
func PATExpiry(now time.Time, days int) time.Time {
	exp := now.UTC().Truncate(24*time.Hour).AddDate(0, 0, days)
	if exp.Sub(now) < MinPATLife {
		exp = exp.AddDate(0, 0, 1)
	}
	return exp
}

// CreateProxyPAT creates a k8s_proxy personal access token for the current
// user that expires at 00:00 UTC of the date expires (PATExpiry). Its name
// is namePrefix and a random suffix unique to the attempt: when the answer
// is lost, the token GitLab may have made anyway is found by that name and
// revoked, and the error says so.
func (c *Client) CreateProxyPAT(ctx context.Context, namePrefix string, expires time.Time) (*PAT, error) {
	name := namePrefix + " " + attemptID()
	_, cancel, opt := c.call(ctx, once)
	defer cancel()
	exp := expires.UTC().Truncate(24 * time.Hour)
	iso := gl.ISOTime(exp)
	t, resp, err := c.api.Users.CreatePersonalAccessTokenForCurrentUser(&gl.CreatePersonalAccessTokenForCurrentUserOptions{
		Name: gl.Ptr(name), Scopes: &[]string{ProxyScope}, ExpiresAt: &iso,
	}, opt)
	const op = "creating a k8s_proxy personal access token"
	if err == nil && (t == nil || t.Token == "" || t.ID == 0) {
		err = &Error{Class: ClassBadAnswer, Status: resp.StatusCode, Op: op, Detail: "GitLab's answer holds no token value"}
	}
	if err != nil {
		err = c.classify(op, resp, err, hints{
			notFound: "this GitLab cannot create personal access tokens through the API (it needs GitLab 16.5 or later)",
			invalid:  "this GitLab does not let users create k8s_proxy tokens themselves (it needs GitLab 16.5 or later)",
		})
		if mayHaveHappened(err) {
			return nil, c.revokeStrayPATs(ctx, name, err)
		}
		return nil, err
	}
	out := &PAT{ID: t.ID, Name: t.Name, Secret: t.Token, ExpiresAt: exp, UserID: t.UserID}
	if t.ExpiresAt != nil {
		out.ExpiresAt = time.Time(*t.ExpiresAt).UTC()
	}
	return out, nil
}

// revokeStrayPATs revokes the current user's active tokens named name.
func (c *Client) revokeStrayPATs(ctx context.Context, name string, cause error) error {
	cctx, cancel := cleanupContext(ctx)
	defer cancel()
	var revoked []string
	for attempt := 0; attempt < 2 && len(revoked) == 0; attempt++ {
		if attempt > 0 && !sleep(cctx, 700*time.Millisecond) {
			break
		}
		list, err := c.listPATs(cctx, name)
		if err != nil {
			return fmt.Errorf("%w; GitLab may have created the token anyway, and looking for it failed (%v): revoke the personal access token %q in GitLab's settings", cause, err, name)
		}
		for _, t := range list {
			if t.Name != name || t.Revoked {
				continue
			}
			if err := c.RevokePAT(cctx, t.ID); err != nil {
				return fmt.Errorf("%w; GitLab had created personal access token %d anyway, and revoking it failed (%v): revoke %q in GitLab's settings", cause, t.ID, err, name)
			}
			revoked = append(revoked, strconv.FormatInt(t.ID, 10))
		}
	}
	if len(revoked) > 0 {
		return fmt.Errorf("%w; GitLab had created personal access token %s anyway, and it was revoked", cause, strings.Join(revoked, ", "))
	}
	return fmt.Errorf("%w; GitLab did not create a token (none named %q is listed)", cause, name)
}

// listPATs lists the current user's active personal access tokens whose
// name contains search (GitLab shows a user only their own).
func (c *Client) listPATs(ctx context.Context, search string) ([]*gl.PersonalAccessToken, error) {
	_, cancel, opt := c.call(ctx, repeatable)
	defer cancel()
	lo := &gl.ListPersonalAccessTokensOptions{Search: gl.Ptr(search), State: gl.Ptr("active")}
	out, resp, err := allPages(&lo.ListOptions, 1000, func(t *gl.PersonalAccessToken) int64 { return t.ID }, func() ([]*gl.PersonalAccessToken, *gl.Response, error) {
		return c.api.PersonalAccessTokens.ListPersonalAccessTokens(lo, opt)
	})
	if err != nil {
		return nil, c.classify("listing personal access tokens", resp, err, hints{})
	}
	return out, nil
}

// attemptID is a short random word that makes a name unique to one attempt.
func attemptID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// RevokePAT revokes one of the current user's personal access tokens.
func (c *Client) RevokePAT(ctx context.Context, id int64) error {
	_, cancel, opt := c.call(ctx, repeatable)
	defer cancel()
	resp, err := c.api.PersonalAccessTokens.RevokePersonalAccessTokenByID(id, opt)
	if err != nil {
		return c.classify(fmt.Sprintf("revoking personal access token %d", id), resp, err, hints{})
	}
	return nil
}

// RevokeOwnPAT revokes the client's personal access token with the token
// itself (DELETE /personal_access_tokens/self, allowed with any scope), so
// that no other credential is needed. A token GitLab refuses already counts
// as revoked.
func (c *Client) RevokeOwnPAT(ctx context.Context) error {
	_, cancel, opt := c.call(ctx, repeatable)
	defer cancel()
	resp, err := c.api.PersonalAccessTokens.RevokePersonalAccessTokenSelf(opt)
	if err != nil {
		err = c.classify("revoking the cached k8s_proxy token", resp, err, hints{})
		if IsClass(err, ClassUnauthenticated) {
			return nil
		}
		return err
	}
	return nil
}

// PATValid asks GitLab whether the client's personal access token still
// works, using the token itself (GET /personal_access_tokens/self).
func (c *Client) PATValid(ctx context.Context) (bool, error) {
	_, cancel, opt := c.call(ctx, repeatable)
	defer cancel()
	_, resp, err := c.api.PersonalAccessTokens.GetSinglePersonalAccessToken(opt)
	if err != nil {
		err = c.classify("checking the cached token", resp, err, hints{})
		switch {
		case IsClass(err, ClassUnauthenticated):
			return false, nil
		case IsClass(err, ClassForbidden):
			// Authenticated, only not allowed this call with its one
			// scope: the token itself works.
			return true, nil
		}
		return false, err
	}
	return true, nil
}
