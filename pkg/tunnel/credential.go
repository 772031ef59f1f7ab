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
)

// ExpiryMargin is how long before a PAT's expiry its credential is reported
// as expired, so that kubectl asks for a new one in time.
const ExpiryMargin = 5 * time.Minute

// recheckWindow: a token asked for again this soon after it was handed out
// may have been refused (kubectl calls the plugin again on a 401), so it is
// checked with GitLab, at most once per window.
const recheckWindow = 20 * time.Second

// CredentialOptions say how to get a credential for KAS's proxy.
type CredentialOptions struct {
	GitLabURL string
	AgentID   int64
	// CI uses the job's CI_JOB_TOKEN, read now; nothing is stored.
	CI bool
	// Days is a new PAT's lifetime in whole days (default 1: it expires at
	// the end of the day, 00:00 UTC).
	Days int
	// Credentials mint PATs (GITLAB_TOKEN or --gitlab-token-file).
	Credentials gitlab.Credentials
	Cache       *Cache
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

// GetCredential returns "ci:<agent>:<job token>" in CI, else
// "pat:<agent>:<PAT>" with a cached k8s_proxy PAT, minting one under the
// cache's lock when there is none usable.
func GetCredential(ctx context.Context, o CredentialOptions) (Credential, error) {
	agent := strconv.FormatInt(o.AgentID, 10)
	if o.CI {
		tok := os.Getenv("CI_JOB_TOKEN")
		if tok == "" {
			return Credential{}, fmt.Errorf("CI_JOB_TOKEN is not set: --ci credentials work only inside a GitLab CI job")
		}
		return Credential{Token: "ci:" + agent + ":" + tok}, nil
	}
	if o.Credentials.Token == "" {
		return Credential{}, fmt.Errorf("no GitLab credentials to create a k8s_proxy token with: set GITLAB_TOKEN to a personal access token with the api scope (or pass --gitlab-token-file)")
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
	key := Key(o.GitLabURL, o.Credentials.Token)
	now := o.Now()
	// The fast path, for every kubectl call: no lock, no request.
	if p := o.Cache.Load(key); !o.Refresh && usable(p, now) && !(now.Sub(p.HandedOutAt) < recheckWindow && now.Sub(p.CheckedAt) > recheckWindow) {
		p.HandedOutAt = now
		_ = o.Cache.Store(key, p)
		return credential(agent, p, false), nil
	}
	unlock, err := o.Cache.Lock(key)
	if err != nil {
		return Credential{}, err
	}
	defer unlock()
	p := o.Cache.Load(key) // another call may have minted meanwhile
	if usable(p, now) {
		fresh := !p.CreatedAt.IsZero() && now.Sub(p.CreatedAt) < recheckWindow
		if fresh && !o.Refresh {
			p.HandedOutAt = now
			_ = o.Cache.Store(key, p)
			return credential(agent, p, false), nil
		}
		valid, err := gitlab.PATValid(ctx, o.GitLabURL, p.Token, gitlab.Options{})
		if err != nil {
			return Credential{}, err
		}
		if valid {
			p.HandedOutAt, p.CheckedAt = now, now
			_ = o.Cache.Store(key, p)
			return credential(agent, p, false), nil
		}
		fmt.Fprintf(o.Log, "the cached k8s_proxy token %d was refused by GitLab; creating a new one\n", p.ID)
	}
	c, err := gitlab.New(gitlab.Options{URL: o.GitLabURL, Credentials: o.Credentials, Log: o.Log})
	if err != nil {
		return Credential{}, err
	}
	pat, err := c.CreateProxyPAT(ctx, "kubectl-gitlab-agent k8s_proxy "+now.UTC().Format("2006-01-02"), o.Days)
	if err != nil {
		return Credential{}, err
	}
	np := &CachedPAT{GitLabURL: o.GitLabURL, ID: pat.ID, Name: pat.Name, Token: pat.Secret, ExpiresAt: pat.ExpiresAt,
		CreatedAt: now, HandedOutAt: now, CheckedAt: now}
	if err := o.Cache.Store(key, np); err != nil {
		// Without a cache every call would mint a token: revoke this one.
		_ = c.RevokePAT(ctx, pat.ID)
		return Credential{}, fmt.Errorf("storing the new token in %s: %w", o.Cache.Dir, err)
	}
	return credential(agent, np, true), nil
}

// usable: present and not within the margin of its expiry.
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
