package gitlab

import (
	"context"
	"fmt"
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

// CreateProxyPAT creates a k8s_proxy personal access token for the current
// user that expires after days whole days (at 00:00 UTC of the date).
func (c *Client) CreateProxyPAT(ctx context.Context, name string, days int) (*PAT, error) {
	_, cancel, opt := c.call(ctx, "POST")
	defer cancel()
	exp := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, days)
	iso := gl.ISOTime(exp)
	t, resp, err := c.api.Users.CreatePersonalAccessTokenForCurrentUser(&gl.CreatePersonalAccessTokenForCurrentUserOptions{
		Name: gl.Ptr(name), Scopes: &[]string{ProxyScope}, ExpiresAt: &iso,
	}, opt)
	if err != nil {
		return nil, c.classify("creating a k8s_proxy personal access token", resp, err, hints{
			notFound: "this GitLab cannot create personal access tokens through the API (it needs GitLab 16.5 or later)",
			invalid:  "this GitLab does not let users create k8s_proxy tokens themselves (it needs GitLab 16.5 or later)",
		})
	}
	out := &PAT{ID: t.ID, Name: t.Name, Secret: t.Token, ExpiresAt: exp, UserID: t.UserID}
	if t.ExpiresAt != nil {
		out.ExpiresAt = time.Time(*t.ExpiresAt).UTC()
	}
	return out, nil
}

// RevokePAT revokes one of the current user's personal access tokens.
func (c *Client) RevokePAT(ctx context.Context, id int64) error {
	_, cancel, opt := c.call(ctx, "DELETE")
	defer cancel()
	resp, err := c.api.PersonalAccessTokens.RevokePersonalAccessToken(id, opt)
	if err != nil {
		return c.classify(fmt.Sprintf("revoking personal access token %d", id), resp, err, hints{})
	}
	return nil
}

// PATValid asks GitLab whether a personal access token still works, using
// the token itself (GET /personal_access_tokens/self).
func PATValid(ctx context.Context, baseURL, token string, o Options) (bool, error) {
	o.URL, o.Credentials = baseURL, Credentials{Token: token, Source: "the cached k8s_proxy token"}
	o.MaxRetries = 1
	c, err := New(o)
	if err != nil {
		return false, err
	}
	_, cancel, opt := c.call(ctx, "GET")
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
