package tunnel

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/secretfile"
)

// CachedPAT is a k8s_proxy personal access token kept between calls, so that
// kubectl does not make GitLab mint (and mail the user about) a token per
// request.
type CachedPAT struct {
	GitLabURL string    `json:"gitlabURL"`
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
	CreatedAt time.Time `json:"createdAt"`
	// HandedOutAt and CheckedAt drive the revocation check: a token asked
	// for again right after it was handed out may have been refused.
	HandedOutAt time.Time `json:"handedOutAt"`
	CheckedAt   time.Time `json:"checkedAt"`
	// RenewedAt is when this token replaced one GitLab refused; a second
	// renewal waits RenewInterval.
	RenewedAt time.Time `json:"renewedAt,omitempty"`

	key string // the file it was read from
}

// Cache is the per-user token cache: a directory (0700) of files (0600), one
// per GitLab URL and credential, each with a lock so that parallel kubectl
// calls mint one token.
type Cache struct {
	Dir string
}

// DefaultCache is under the user's cache directory.
func DefaultCache() (*Cache, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return nil, fmt.Errorf("finding the user cache directory: %w", err)
	}
	return &Cache{Dir: filepath.Join(base, "kubectl-gitlab-agent", "k8s-proxy-tokens")}, nil
}

// Key names a cache entry after the GitLab URL and the credential that mints
// its tokens (a hash: safe as a file name, and no secret on disk).
func Key(gitlabURL, credential string) string {
	h := sha256.Sum256([]byte(gitlabURL + "\x00" + credential))
	return hex.EncodeToString(h[:16])
}

func (c *Cache) path(key string) string { return filepath.Join(c.Dir, key+".json") }

func (c *Cache) ensureDir() error {
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return fmt.Errorf("creating the token cache: %w", err)
	}
	return os.Chmod(c.Dir, 0o700)
}

// Load reads an entry; nil when there is none (or it is unreadable).
func (c *Cache) Load(key string) *CachedPAT {
	b, err := os.ReadFile(c.path(key))
	if err != nil {
		return nil
	}
	var p CachedPAT
	if json.Unmarshal(b, &p) != nil || p.Token == "" {
		return nil
	}
	p.key = key
	return &p
}

// Newest is the usable entry for gitlabURL made last, whatever credential
// made it; nil when there is none.
func (c *Cache) Newest(gitlabURL string, now time.Time) *CachedPAT {
	entries, err := c.List()
	if err != nil {
		return nil
	}
	var best *CachedPAT
	for _, e := range entries {
		if e.PAT.GitLabURL == gitlabURL && usable(e.PAT, now) && (best == nil || e.PAT.CreatedAt.After(best.CreatedAt)) {
			best = e.PAT
		}
	}
	return best
}

// Store writes an entry atomically with mode 0600.
func (c *Cache) Store(key string, p *CachedPAT) error {
	if err := c.ensureDir(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return secretfile.Write(c.path(key), b)
}

// Lock takes the entry's lock, waiting (bounded) for other processes.
func (c *Cache) Lock(ctx context.Context, key string) (func(), error) {
	if err := c.ensureDir(); err != nil {
		return nil, err
	}
	unlock, err := lockFile(ctx, filepath.Join(c.Dir, key+".lock"))
	if err != nil {
		return nil, fmt.Errorf("locking the token cache: %w", err)
	}
	return unlock, nil
}

// CacheEntry is a cache file and what it holds.
type CacheEntry struct {
	Key string
	PAT *CachedPAT
}

// List returns every entry, oldest first.
func (c *Cache) List() ([]CacheEntry, error) {
	files, err := filepath.Glob(filepath.Join(c.Dir, "*.json"))
	if err != nil {
		return nil, err
	}
	var out []CacheEntry
	for _, f := range files {
		key := filepath.Base(f[:len(f)-len(".json")])
		if p := c.Load(key); p != nil {
			out = append(out, CacheEntry{Key: key, PAT: p})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PAT.CreatedAt.Before(out[j].PAT.CreatedAt) })
	return out, nil
}

// Remove deletes an entry.
func (c *Cache) Remove(key string) error {
	err := os.Remove(c.path(key))
	_ = os.Remove(filepath.Join(c.Dir, key+".lock"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
