package gitlab

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	gl "gitlab.com/gitlab-org/api/client-go"
)

// MaxActiveTokens is GitLab's limit of active tokens per agent.
const MaxActiveTokens = 2

// Token is an agent token. Its secret value is kept apart, in NewToken.
type Token struct {
	ID              int64      `json:"id"`
	AgentID         int64      `json:"agentID"`
	Name            string     `json:"name"`
	Description     string     `json:"description,omitempty"`
	Status          string     `json:"status"`
	CreatedAt       *time.Time `json:"createdAt,omitempty"`
	CreatedByUserID int64      `json:"createdByUserID,omitempty"`
	// LastUsedAt is when agentk last connected with it; GitLab gives it
	// only when a single token is asked for.
	LastUsedAt *time.Time `json:"lastUsedAt"`
}

// NewToken is a token just created, with its secret, which GitLab returns
// only once.
type NewToken struct {
	Token
	Secret string `json:"-"`
}

func tokenFrom(t *gl.AgentToken) *Token {
	return &Token{
		ID: t.ID, AgentID: t.AgentID, Name: t.Name, Description: t.Description, Status: t.Status,
		CreatedAt: t.CreatedAt, CreatedByUserID: t.CreatedByUserID, LastUsedAt: t.LastUsedAt,
	}
}

// ListTokens returns the agent's active tokens (without last use).
func (c *Client) ListTokens(ctx context.Context, p ProjectRef, a *Agent) ([]*Token, error) {
	_, cancel, opt := c.call(ctx, repeatable)
	defer cancel()
	lo := &gl.ListAgentTokensOptions{}
	all, resp, err := allPages(&lo.ListOptions, maxListed, func(t *gl.AgentToken) int64 { return t.ID }, func() ([]*gl.AgentToken, *gl.Response, error) {
		return c.api.ClusterAgents.ListAgentTokens(p.pid(), a.ID, lo, opt)
	})
	if err != nil {
		return nil, c.classify(fmt.Sprintf("listing the tokens of agent %q", a.Name), resp, err, hints{
			forbidden: fmt.Sprintf("you need at least the Developer role on %s to see agent tokens", p),
		})
	}
	out := make([]*Token, 0, len(all))
	for _, t := range all {
		out = append(out, tokenFrom(t))
	}
	return out, nil
}

// GetToken returns one token with its last use.
func (c *Client) GetToken(ctx context.Context, p ProjectRef, a *Agent, id int64) (*Token, error) {
	_, cancel, opt := c.call(ctx, repeatable)
	defer cancel()
	t, resp, err := c.api.ClusterAgents.GetAgentToken(p.pid(), a.ID, id, opt)
	if err != nil {
		return nil, c.classify(fmt.Sprintf("reading token %d of agent %q", id, a.Name), resp, err, hints{
			notFound: fmt.Sprintf("agent %q has no active token %d (revoked tokens are not shown)", a.Name, id),
		})
	}
	return tokenFrom(t), nil
}

// ListTokensWithLastUse lists the active tokens with their last use, reading
// the tokens concurrently (the list does not carry last_used_at), most
// recently used first.
func (c *Client) ListTokensWithLastUse(ctx context.Context, p ProjectRef, a *Agent) ([]*Token, error) {
	list, err := c.ListTokens(ctx, p, a)
	if err != nil {
		return nil, err
	}
	out := make([]*Token, len(list))
	errs := make([]error, len(list))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, t := range list {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i], errs[i] = c.GetToken(ctx, p, a, t.ID)
		})
	}
	wg.Wait()
	kept := make([]*Token, 0, len(list)) // [] in JSON when there is none
	for i, err := range errs {
		switch {
		case err == nil:
			kept = append(kept, out[i])
		case IsClass(err, ClassNotFound):
			// revoked between the list and the read
		default:
			return nil, err
		}
	}
	SortByLastUse(kept)
	return kept, nil
}

// SortByLastUse orders tokens most recently used first, never used last.
func SortByLastUse(ts []*Token) {
	sort.SliceStable(ts, func(i, j int) bool {
		a, b := ts[i].LastUsedAt, ts[j].LastUsedAt
		switch {
		case a != nil && b != nil:
			return a.After(*b)
		case a != nil:
			return true
		}
		return false
	})
}

// TokenLimitError is the two-active-token limit, with the tokens in the way.
type TokenLimitError struct {
	Agent  string
	Tokens []*Token // most recently used first
	Err    error
}

func (e *TokenLimitError) Error() string {
	var b []byte
	b = fmt.Appendf(b, "agent %q already has %d active tokens, GitLab's limit:", e.Agent, len(e.Tokens))
	for i, t := range e.Tokens {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, " %d %q (%s)", t.ID, t.Name, describeLastUse(t.LastUsedAt))
	}
	if n := len(e.Tokens); n > 0 {
		lru := e.Tokens[n-1]
		b = fmt.Appendf(b, "; revoke one first, e.g. the least recently used: kubectl gitlab-agent token revoke %s %d", e.Agent, lru.ID)
	}
	return string(b)
}

func (e *TokenLimitError) Unwrap() error { return e.Err }

func describeLastUse(t *time.Time) string {
	if t == nil {
		return "never used"
	}
	return "last used " + t.UTC().Format(time.RFC3339)
}

// CreateToken creates a token. At the two-token limit the error is a
// *TokenLimitError naming the tokens in the way.
//
// The request is sent once: when its answer is lost (a 5xx from a proxy, a
// timeout, a dropped connection, ctx cancelled while it was in flight)
// GitLab may have created the token anyway, and nobody would hold its value.
// Then the tokens of that name that were not there before are revoked, and
// the error says so. Callers should make name unique to the attempt.
func (c *Client) CreateToken(ctx context.Context, p ProjectRef, a *Agent, name, description string) (*NewToken, error) {
	before, err := c.ListTokens(ctx, p, a)
	if err != nil {
		return nil, err
	}
	op := fmt.Sprintf("creating a token for agent %q", a.Name)
	ctx2, cancel, opt := c.call(ctx, once)
	defer cancel()
	o := &gl.CreateAgentTokenOptions{Name: gl.Ptr(name)}
	if description != "" {
		o.Description = gl.Ptr(description)
	}
	t, resp, err := c.api.ClusterAgents.CreateAgentToken(p.pid(), a.ID, o, opt)
	if err == nil && (t == nil || t.Token == "" || t.ID == 0) {
		err = &Error{Class: ClassBadAnswer, Status: resp.StatusCode, Op: op, Detail: "GitLab's answer holds no token value"}
	}
	if err != nil {
		err = c.classify(op, resp, err, hints{
			forbidden: fmt.Sprintf("you need the Maintainer role on %s to create agent tokens", p),
		})
		if mayHaveHappened(err) {
			return nil, c.revokeStrayTokens(ctx, p, a, name, before, err)
		}
		if IsClass(err, ClassConflict) && ctx2.Err() == nil {
			// GitLab says which limit; the tokens in the way are listed
			// again, and may be fewer by now (a racing install revoked
			// its own): the answer is the limit all the same.
			tokens, lerr := c.ListTokensWithLastUse(ctx, p, a)
			if lerr == nil && (len(tokens) >= MaxActiveTokens || strings.Contains(strings.ToLower(err.Error()), "only two active tokens")) {
				return nil, &TokenLimitError{Agent: a.Name, Tokens: tokens, Err: err}
			}
		}
		return nil, err
	}
	return &NewToken{Token: *tokenFrom(t), Secret: t.Token}, nil
}

// revokeStrayTokens revokes the active tokens named name that were not in
// before: what a create whose answer was lost may have made.
func (c *Client) revokeStrayTokens(ctx context.Context, p ProjectRef, a *Agent, name string, before []*Token, cause error) error {
	known := map[int64]bool{}
	for _, t := range before {
		known[t.ID] = true
	}
	cctx, cancel := cleanupContext(ctx)
	defer cancel()
	var revoked []string
	for attempt := 0; attempt < 2 && len(revoked) == 0; attempt++ {
		if attempt > 0 && !sleep(cctx, 700*time.Millisecond) {
			break // out of time: the last list stands
		}
		list, err := c.ListTokens(cctx, p, a)
		if err != nil {
			return fmt.Errorf("%w; GitLab may have created the token anyway, and looking for it failed (%v): find token %q with 'kubectl gitlab-agent token list %s' and revoke it", cause, err, name, a.Name)
		}
		for _, t := range list {
			if t.Name != name || known[t.ID] {
				continue
			}
			if err := c.RevokeToken(cctx, p, a, t.ID); err != nil {
				return fmt.Errorf("%w; GitLab had created token %d anyway, and revoking it failed (%v): revoke it with 'kubectl gitlab-agent token revoke %s %d'", cause, t.ID, err, a.Name, t.ID)
			}
			revoked = append(revoked, strconv.FormatInt(t.ID, 10))
		}
	}
	if len(revoked) > 0 {
		return fmt.Errorf("%w; GitLab had created token %s anyway, and it was revoked", cause, strings.Join(revoked, ", "))
	}
	return fmt.Errorf("%w; GitLab did not create a token (none named %q is listed)", cause, name)
}

// RevokeToken revokes a token; revoking a revoked token succeeds.
func (c *Client) RevokeToken(ctx context.Context, p ProjectRef, a *Agent, id int64) error {
	_, cancel, opt := c.call(ctx, repeatable)
	defer cancel()
	resp, err := c.api.ClusterAgents.RevokeAgentToken(p.pid(), a.ID, id, opt)
	return c.classify(fmt.Sprintf("revoking token %d of agent %q", id, a.Name), resp, err, hints{
		forbidden: fmt.Sprintf("you need the Maintainer role on %s to revoke agent tokens", p),
		notFound:  fmt.Sprintf("agent %q has no token %d", a.Name, id),
	})
}

// CreatedTokenError is a token this command created and then could not use:
// Err says why; the token was revoked unless RevokeErr says otherwise.
type CreatedTokenError struct {
	Err       error
	Agent     string
	TokenID   int64
	RevokeErr error
}

func (e *CreatedTokenError) Error() string {
	if e.RevokeErr != nil {
		return fmt.Sprintf("%v; revoking the new token %d failed too (%v): revoke it with 'kubectl gitlab-agent token revoke %s %d'", e.Err, e.TokenID, e.RevokeErr, e.Agent, e.TokenID)
	}
	return fmt.Sprintf("%v; the new token %d was revoked", e.Err, e.TokenID)
}

func (e *CreatedTokenError) Unwrap() error { return e.Err }

// Revoked reports whether the token is revoked.
func (e *CreatedTokenError) Revoked() bool { return e.RevokeErr == nil }

// RevokeCreated revokes t, which this command created and cannot use
// because of cause, even when ctx has ended (an interrupted command still
// cleans up, briefly), and returns a *CreatedTokenError saying how it went.
func (c *Client) RevokeCreated(ctx context.Context, p ProjectRef, a *Agent, t *NewToken, cause error) error {
	cctx, cancel := cleanupContext(ctx)
	defer cancel()
	return &CreatedTokenError{Err: cause, Agent: a.Name, TokenID: t.ID, RevokeErr: c.RevokeToken(cctx, p, a, t.ID)}
}
