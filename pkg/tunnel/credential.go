package tunnel

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientauthv1 "k8s.io/client-go/pkg/apis/clientauthentication/v1"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/safetext"
)

// ExpiryMargin is how long before a PAT's expiry its credential is reported
// as expired, so that kubectl asks for a new one in time.
const ExpiryMargin = 5 * time.Minute

// recheckWindow: a token asked for again this soon after it was handed out
// may have been refused (kubectl calls the plugin again on a 401), so it is
// checked with GitLab, at most once per window.
const recheckWindow = 20 * time.Second

// checkTimeout bounds that check: kubectl waits for the plugin.
const checkTimeout = 5 * time.Second

// RenewInterval is the least time between two new tokens for one cache
// entry: a token GitLab refuses right after it was made is not the token's
// fault (KAS refuses users the agent's user_access does not name, too), and
// every new token mails the user.
const RenewInterval = time.Minute

// CredentialOptions say how to get a credential for KAS's proxy.
type CredentialOptions struct {
	GitLabURL string
	AgentID   int64
	// CI uses the job's CI_JOB_TOKEN, read now; nothing is stored.
	CI bool
	// Days is a new PAT's lifetime in whole days (default 1: it expires at
	// the end of the day, 00:00 UTC).
	Days int
	// Credentials mint PATs (a token from the credential chain). They may
	// be empty: a cached token is served without them.
	Credentials gitlab.Credentials
	// NoCredentials says why Credentials is empty (the sources tried).
	NoCredentials error
	Cache         *Cache
	// GitLab makes the GitLab clients that check, mint and revoke tokens
	// (the command's Factory); required unless CI.
	GitLab func(gitlab.Options) (*gitlab.Client, error)
	// Refresh distrusts the cached token: it is checked with GitLab and
	// replaced when GitLab refuses it.
	Refresh bool
	Log     io.Writer
	Now     func() time.Time
}

// Credential is a bearer token for /k8s-proxy/.
type Credential struct {
	Token string
	// Expires is when kubectl should ask again (zero: never).
	Expires time.Time
	// Minted is true when a new PAT was created for it.
	Minted bool
}

// RenewTooSoonError: GitLab refused a token that itself replaced a refused
// one less than RenewInterval ago; no other is made so soon.
type RenewTooSoonError struct {
	ID  int64
	Age time.Duration
}

func (e *RenewTooSoonError) Error() string {
	return fmt.Sprintf("GitLab refuses the k8s_proxy token %d too, made %s ago to replace a refused one; no other is made within %s: check that the agent's config.yaml user_access names a project or group where you are Developer or more",
		e.ID, e.Age.Round(time.Second), RenewInterval)
}

// GetCredential returns "ci:<agent>:<job token>" in CI, else
// "pat:<agent>:<PAT>" with a cached k8s_proxy PAT, minting one under the
// cache's lock when there is none usable. A cached token is served with no
// GitLab credentials at hand; they are needed only to mint a new one. A token
// replaced by a new one is revoked.
func GetCredential(ctx context.Context, o CredentialOptions) (Credential, error) {
	agent := strconv.FormatInt(o.AgentID, 10)
	if o.CI {
		tok := os.Getenv("CI_JOB_TOKEN")
		if tok == "" {
			return Credential{}, fmt.Errorf("CI_JOB_TOKEN is not set: --ci credentials work only inside a GitLab CI job")
		}
		return Credential{Token: "ci:" + agent + ":" + tok}, nil
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Days <= 0 {
		o.Days = 1
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Cache == nil {
		return Credential{}, fmt.Errorf("no token cache")
	}
	now := o.Now()
	key := o.cacheKey(now)
	if key == "" {
		return Credential{}, o.cannotMint("there is no cached k8s_proxy token for " + o.GitLabURL)
	}
	// The fast path, for every kubectl call: no wait, no request (but the
	// keyring's, bounded).
	if p := o.load(key); !o.Refresh && usable(p, now) && !(now.Sub(p.HandedOutAt) < recheckWindow && now.Sub(p.CheckedAt) > recheckWindow) {
		if _, err := o.secret(p); err == nil {
			return credential(agent, o.handedOut(key, p, now), false), nil
		}
		// A keyring item not (yet) made for this entry, or no keyring:
		// settled under the lock.
	}
	unlock, err := o.Cache.Lock(ctx, key)
	if err != nil {
		return Credential{}, err
	}
	defer unlock()
	p := o.load(key) // another call may have minted meanwhile
	var replaced *CachedPAT
	renewal := false // the new token replaces one GitLab refused
	var lost error
	if usable(p, now) {
		_, lost = o.secret(p)
	}
	if lost != nil {
		// Its secret is out of reach: a new token replaces it (and the
		// old is revoked by its ID).
		why := fmt.Sprintf("the cached k8s_proxy token %d cannot be read (%s)", p.ID, safetext.Line(lost.Error()))
		if age := now.Sub(p.CreatedAt); !p.CreatedAt.IsZero() && age < RenewInterval {
			// Something that removes or rewrites keyring items would
			// otherwise have a token made (and a mail sent) per call.
			return Credential{}, fmt.Errorf("%s, made %s ago; no other is made within %s: check what removes or rewrites the OS keyring's kubectl-gitlab-agent items", why, age.Round(time.Second), RenewInterval)
		}
		if o.Credentials.Token == "" {
			return Credential{}, o.cannotMint(why)
		}
		fmt.Fprintf(o.Log, "%s; creating a new one\n", why)
		replaced = p
	} else if usable(p, now) {
		fresh := !p.CreatedAt.IsZero() && now.Sub(p.CreatedAt) < recheckWindow
		if fresh && !o.Refresh {
			p.HandedOutAt = now
			_ = o.Cache.Store(key, p)
			return credential(agent, p, false), nil
		}
		valid, err := o.patValid(ctx, p.Token)
		if err != nil && (o.Refresh || ctx.Err() != nil) {
			return Credential{}, err
		}
		if err != nil {
			// No verdict (GitLab's API is down or slow, while KAS may
			// work): the check only guards against a revoked token, and
			// KAS refuses one anyway. The next check waits a window.
			fmt.Fprintf(o.Log, "could not check the cached k8s_proxy token %d with GitLab (%s); using it\n", p.ID, safetext.Line(err.Error()))
			valid = true
		}
		if valid {
			p.HandedOutAt, p.CheckedAt = now, now
			_ = o.Cache.Store(key, p)
			return credential(agent, p, false), nil
		}
		if age := now.Sub(p.RenewedAt); !p.RenewedAt.IsZero() && age < RenewInterval {
			return Credential{}, &RenewTooSoonError{ID: p.ID, Age: age}
		}
		if o.Credentials.Token == "" {
			return Credential{}, o.cannotMint(fmt.Sprintf("GitLab refuses the cached k8s_proxy token %d", p.ID))
		}
		fmt.Fprintf(o.Log, "GitLab refuses the cached k8s_proxy token %d; creating a new one\n", p.ID)
		replaced, renewal = p, true
	} else if p != nil {
		if o.Credentials.Token == "" {
			return Credential{}, o.cannotMint(fmt.Sprintf("the cached k8s_proxy token %d expires at %s", p.ID, p.ExpiresAt.UTC().Format(time.RFC3339)))
		}
		replaced = p
	}
	if o.Credentials.Token == "" {
		return Credential{}, o.cannotMint("there is no cached k8s_proxy token for " + o.GitLabURL)
	}
	c, err := o.gitlab(gitlab.Options{URL: o.GitLabURL, Credentials: o.Credentials, Log: o.Log})
	if err != nil {
		return Credential{}, err
	}
	pat, err := c.CreateProxyPAT(ctx, "kubectl-gitlab-agent k8s_proxy "+now.UTC().Format("2006-01-02"), gitlab.PATExpiry(now, o.Days))
	if err != nil {
		return Credential{}, err
	}
	np := &CachedPAT{GitLabURL: o.GitLabURL, ID: pat.ID, Name: pat.Name, Token: pat.Secret, ExpiresAt: pat.ExpiresAt,
		CreatedAt: now, HandedOutAt: now, CheckedAt: now}
	if !usable(np, now) {
		// kubectl would ask again at once, and every call would mint (and
		// mail the user): GitLab shortened the lifetime asked for.
		_ = c.RevokePAT(context.WithoutCancel(ctx), pat.ID)
		return Credential{}, fmt.Errorf("GitLab made the new k8s_proxy token expire at %s, too soon to use (revoked): check the instance's limit on token lifetimes", pat.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if renewal {
		np.RenewedAt = now // it replaces a token GitLab refused
	}
	if err := o.Cache.Keep(key, np); err != nil {
		// Without a cache every call would mint a token: revoke this one.
		_ = c.RevokePAT(context.WithoutCancel(ctx), pat.ID)
		return Credential{}, fmt.Errorf("storing the new token in %s: %w", o.Cache.Where(), err)
	}
	if replaced != nil && replaced.ID != 0 {
		// Best effort: a refused token may be revoked already, and one
		// about to expire soon stops anyway.
		if err := c.RevokePAT(ctx, replaced.ID); err == nil {
			fmt.Fprintf(o.Log, "revoked the replaced k8s_proxy token %d\n", replaced.ID)
		}
	}
	return credential(agent, np, true), nil
}

// gitlab makes a GitLab client with the maker o was given.
func (o CredentialOptions) gitlab(g gitlab.Options) (*gitlab.Client, error) {
	if o.GitLab == nil {
		return nil, fmt.Errorf("no GitLab client maker for the k8s_proxy token")
	}
	return o.GitLab(g)
}

// patValid asks GitLab, within checkTimeout and with one retry, whether the
// cached token still works.
func (o CredentialOptions) patValid(ctx context.Context, token string) (bool, error) {
	c, err := o.gitlab(gitlab.Options{URL: o.GitLabURL, Credentials: gitlab.Credentials{Token: token, Source: "the cached k8s_proxy token"}, MaxRetries: 1})
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	return c.PATValid(ctx)
}

// handedOut records that p was handed out at now (what the recheck goes
// by), under the entry's lock when it is free at once: another call holding
// it may be storing a token that replaces p, which an unlocked write of p
// would overwrite (leaving the new token unheld and a revoked one cached).
// It returns the entry's token as it is then: p, or the one that replaced it.
func (o CredentialOptions) handedOut(key string, p *CachedPAT, now time.Time) *CachedPAT {
	once, cancel := context.WithCancel(context.Background())
	cancel() // one try, no wait
	unlock, err := o.Cache.Lock(once, key)
	if err != nil {
		return p
	}
	defer unlock()
	if q := o.load(key); q != nil && (q.ID != p.ID || q.Store != p.Store || (q.Store != StoreKeyring && q.Token != p.Token)) {
		if _, err := o.secret(q); err != nil || !usable(q, now) {
			return p // settled by a later call, under the lock
		}
		p = q
	}
	p.HandedOutAt = now
	_ = o.Cache.Store(key, p)
	return p
}

// load is the cache entry key if it was made for o's GitLab: an entry of
// another GitLab under this key (planted, or a hash collision) is neither
// served nor revoked here; a new token overwrites it.
func (o CredentialOptions) load(key string) *CachedPAT {
	p := o.Cache.Load(key)
	if p == nil || p.GitLabURL != o.GitLabURL {
		return nil
	}
	return p
}

// secret fills p.Token from wherever the cache keeps it.
func (o CredentialOptions) secret(p *CachedPAT) (string, error) {
	tok, err := o.Cache.Secret(p)
	if err == nil {
		p.Token = tok
	}
	return tok, err
}

// cannotMint says that a new token is needed and why none can be made.
func (o CredentialOptions) cannotMint(why string) error {
	if o.Credentials.JobToken != "" {
		return fmt.Errorf("%s, and CI_JOB_TOKEN cannot create one: in a CI job use 'kubeconfig --ci' (the job token itself is the credential)", why)
	}
	if o.NoCredentials != nil {
		return fmt.Errorf("%s, and creating one needs GitLab credentials: %w", why, o.NoCredentials)
	}
	return fmt.Errorf("%s, and creating one needs GitLab credentials: set GITLAB_TOKEN to a personal access token with the api scope", why)
}

// usable: present, and the expiry its credential reports (ExpiresAt less
// ExpiryMargin) more than a minute away, so that kubectl is not handed a
// credential it must replace at once.
func usable(p *CachedPAT, now time.Time) bool {
	return p != nil && now.Add(ExpiryMargin+time.Minute).Before(p.ExpiresAt)
}

func credential(agent string, p *CachedPAT, minted bool) Credential {
	return Credential{Token: "pat:" + agent + ":" + p.Token, Expires: p.ExpiresAt.Add(-ExpiryMargin), Minted: minted}
}

// ExecCredential is the credential as client-go's exec plugin protocol wants
// it on stdout.
func ExecCredential(c Credential) ([]byte, error) {
	ec := clientauthv1.ExecCredential{
		TypeMeta: metav1.TypeMeta{APIVersion: "client.authentication.k8s.io/v1", Kind: "ExecCredential"},
		Status:   &clientauthv1.ExecCredentialStatus{Token: c.Token},
	}
	if !c.Expires.IsZero() {
		t := metav1.NewTime(c.Expires)
		ec.Status.ExpirationTimestamp = &t
	}
	b, err := json.Marshal(ec)
	return append(b, '\n'), err
}

// CachedCredential is the credential GetCredential would give without a
// request and without minting: the job token with CI, else a cached
// k8s_proxy token that is not about to expire. false when there is none.
func CachedCredential(o CredentialOptions) (string, bool) {
	agent := strconv.FormatInt(o.AgentID, 10)
	if o.CI {
		tok := os.Getenv("CI_JOB_TOKEN")
		return "ci:" + agent + ":" + tok, tok != ""
	}
	if o.Cache == nil {
		return "", false
	}
	now := time.Now()
	if o.Now != nil {
		now = o.Now()
	}
	key := o.cacheKey(now)
	if key == "" {
		return "", false
	}
	p := o.load(key)
	if !usable(p, now) {
		return "", false
	}
	if _, err := o.secret(p); err != nil {
		return "", false
	}
	return credential(agent, p, false).Token, true
}

// cacheKey is the cache entry that serves o: the token minted with the
// user's credentials; with none at hand, the newest usable token made for
// this GitLab, until it must be replaced. "" when there is none.
func (o CredentialOptions) cacheKey(now time.Time) string {
	if o.Credentials.Token != "" {
		return Key(o.GitLabURL, o.Credentials.Token)
	}
	if p := o.Cache.Newest(o.GitLabURL, now); p != nil {
		return p.key
	}
	return ""
}
