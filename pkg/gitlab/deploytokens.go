package gitlab

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	gl "gitlab.com/gitlab-org/api/client-go"
)

// DeployToken is a project deploy token: what Flux clones the repository
// with (username and token over HTTPS basic authentication).
type DeployToken struct {
	ID        int64      `json:"id"`
	Name      string     `json:"name"`
	Username  string     `json:"username"`
	ExpiresAt *time.Time `json:"expiresAt"`
	Scopes    []string   `json:"scopes"`
	Revoked   bool       `json:"revoked"`
	Expired   bool       `json:"expired"`
	// Token is the secret, only from CreateDeployToken (GitLab shows it
	// once); never logged, never printed.
	Token string `json:"-"`
}

// String describes the token without its secret, so that printing it with
// %v or %+v shows no secret.
func (t DeployToken) String() string {
	secret := ""
	if t.Token != "" {
		secret = " token=<redacted>"
	}
	return fmt.Sprintf("{ID:%d Name:%q Username:%q Scopes:%v Revoked:%t Expired:%t%s}", t.ID, t.Name, t.Username, t.Scopes, t.Revoked, t.Expired, secret)
}

// GoString is String for %#v.
func (t DeployToken) GoString() string { return "gitlab.DeployToken" + t.String() }

func deployTokenFrom(t *gl.DeployToken) *DeployToken {
	return &DeployToken{ID: t.ID, Name: t.Name, Username: t.Username, ExpiresAt: t.ExpiresAt, Scopes: t.Scopes,
		Revoked: t.Revoked, Expired: t.Expired}
}

// deployTokenRoleHint is why GitLab refuses deploy tokens to most members.
func deployTokenRoleHint(p ProjectRef) string {
	return fmt.Sprintf("project deploy tokens need the Maintainer role on %s", p)
}

// ListDeployTokens lists the project's active deploy tokens (not revoked,
// not expired).
func (c *Client) ListDeployTokens(ctx context.Context, p ProjectRef) ([]DeployToken, error) {
	_, cancel, opt := c.call(ctx, repeatable)
	defer cancel()
	lo := &gl.ListProjectDeployTokensOptions{}
	all, resp, err := allPages(&lo.ListOptions, maxListed, func(t *gl.DeployToken) int64 { return t.ID }, func() ([]*gl.DeployToken, *gl.Response, error) {
		return c.api.DeployTokens.ListProjectDeployTokens(p.pid(), lo, opt)
	})
	if err != nil {
		return nil, c.classify(fmt.Sprintf("listing the deploy tokens of %s", p), resp, err, hints{forbidden: deployTokenRoleHint(p)})
	}
	out := []DeployToken{}
	now := time.Now()
	for _, t := range all {
		if t.Revoked || t.Expired || (t.ExpiresAt != nil && !t.ExpiresAt.After(now)) {
			continue
		}
		out = append(out, *deployTokenFrom(t))
	}
	return out, nil
}

// CreateDeployToken creates a deploy token with scopes (e.g.
// read_repository) that expires at expires (zero: never). Its Token is the
// secret; it is kept out of every message this client makes from then on.
//
// The request is sent once. When its answer is lost GitLab may have made
// the token, and nobody would hold its value: then the tokens of that name
// that were not there before are revoked, and the error says so. Callers
// should make name unique to the attempt.
func (c *Client) CreateDeployToken(ctx context.Context, p ProjectRef, name string, scopes []string, expires time.Time) (*DeployToken, error) {
	before, err := c.ListDeployTokens(ctx, p)
	if err != nil {
		return nil, err
	}
	op := fmt.Sprintf("creating deploy token %q in %s", name, p)
	o := &gl.CreateProjectDeployTokenOptions{Name: gl.Ptr(name), Scopes: &scopes}
	if !expires.IsZero() {
		e := expires.UTC()
		o.ExpiresAt = &e
	}
	_, cancel, opt := c.call(ctx, once)
	t, resp, err := c.api.DeployTokens.CreateProjectDeployToken(p.pid(), o, opt)
	cancel()
	if t != nil {
		c.learnSecret(t.Token)
	}
	switch {
	case err == nil && t != nil && t.ID != 0 && t.Token != "":
		out := deployTokenFrom(t)
		out.Token = t.Token
		return out, nil
	case err == nil:
		err = &Error{Class: ClassBadAnswer, Status: resp.StatusCode, Op: op, Detail: "GitLab's answer holds no deploy token value"}
	default:
		err = c.classify(op, resp, err, hints{
			forbidden: deployTokenRoleHint(p),
			invalid:   "scopes must be among read_repository, read_registry, write_registry, read_package_registry, write_package_registry, read_virtual_registry and write_virtual_registry, and the expiry a date to come",
		})
	}
	if !mayHaveHappened(err) {
		return nil, err
	}
	return nil, c.revokeStrayDeployTokens(ctx, p, name, before, err)
}

// revokeStrayDeployTokens revokes the active deploy tokens named name that
// were not in before: what a create whose answer was lost may have made.
func (c *Client) revokeStrayDeployTokens(ctx context.Context, p ProjectRef, name string, before []DeployToken, cause error) error {
	known := map[int64]bool{}
	for _, t := range before {
		known[t.ID] = true
	}
	cctx, cancel := cleanupContext(ctx)
	defer cancel()
	list, err := c.ListDeployTokens(cctx, p)
	if err != nil {
		return fmt.Errorf("%w; GitLab may have created the deploy token anyway, and looking for it failed (%v): revoke deploy token %q of %s in its Settings > Repository > Deploy tokens", cause, err, name, p)
	}
	var revoked []string
	for _, t := range list {
		if t.Name != name || known[t.ID] {
			continue
		}
		if err := c.RevokeDeployToken(cctx, p, t.ID); err != nil {
			return fmt.Errorf("%w; GitLab had created deploy token %d anyway, and revoking it failed (%v): revoke it in %s's Settings > Repository > Deploy tokens", cause, t.ID, err, p)
		}
		revoked = append(revoked, strconv.FormatInt(t.ID, 10))
	}
	if len(revoked) > 0 {
		return fmt.Errorf("%w; GitLab had created deploy token %s anyway, and it was revoked", cause, strings.Join(revoked, ", "))
	}
	return fmt.Errorf("%w; GitLab did not create a deploy token (none named %q is listed)", cause, name)
}

// RevokeDeployToken deletes a deploy token; one gone already is no error.
func (c *Client) RevokeDeployToken(ctx context.Context, p ProjectRef, id int64) error {
	_, cancel, opt := c.call(ctx, repeatable)
	defer cancel()
	resp, err := c.api.DeployTokens.DeleteProjectDeployToken(p.pid(), id, opt)
	err = c.classify(fmt.Sprintf("revoking deploy token %d of %s", id, p), resp, err, hints{forbidden: deployTokenRoleHint(p)})
	if missing(err) {
		return nil // gone already (a retry after a lost answer sees this)
	}
	return err
}
