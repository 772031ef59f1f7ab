package tunnel

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/safetext"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/secretfile"
)

// CachedPAT is a k8s_proxy personal access token kept between calls, so that
// kubectl does not make GitLab mint (and mail the user about) a token per
// request.
type CachedPAT struct {
	GitLabURL string `json:"gitlabURL"`
	ID        int64  `json:"id"`
	Name      string `json:"name"`
	// Token is the secret; in the file only when Store is not "keyring".
	Token string `json:"token,omitempty"`
	// Store is where the secret is: StoreKeyring, or "" for this file.
	Store string `json:"store,omitempty"`
	// TokenSHA256 binds a secret in the keyring to this entry: only the
	// item holding the very token minted for it is served.
	TokenSHA256 string    `json:"tokenSHA256,omitempty"`
	ExpiresAt   time.Time `json:"expiresAt"`
	CreatedAt   time.Time `json:"createdAt"`
	// HandedOutAt and CheckedAt drive the revocation check: a token asked
	// for again right after it was handed out may have been refused.
	HandedOutAt time.Time `json:"handedOutAt"`
	CheckedAt   time.Time `json:"checkedAt"`
	// RenewedAt is when this token replaced one GitLab refused; a second
	// renewal waits RenewInterval.
	RenewedAt time.Time `json:"renewedAt,omitempty"`

	key string // the entry it was read from
}

// StoreKeyring is CachedPAT.Store for a token whose secret is in the OS
// keyring (the item KeyringService, the entry's key).
const StoreKeyring = "keyring"

// Cache is the per-user token cache: a directory (0700) of files (0600), one
// per GitLab URL and credential, each with a lock so that parallel kubectl
// calls mint one token. A file holds the token's metadata, and its secret
// unless that is in the OS keyring (Mode CacheKeyring). With CacheNone it
// is this process's memory.
type Cache struct {
	Dir string
	// Mode is where new secrets go ("": CacheFile).
	Mode CacheMode
	// Keyring is the OS keyring's stand-in in tests (nil: the OS keyring);
	// KeyringWait bounds each of its calls (0: keyringWait).
	Keyring     Keyring
	KeyringWait time.Duration
	// Log is told, once per cache directory, that no keyring answered.
	Log io.Writer

	mu         sync.Mutex
	keyringErr error             // a keyring failure: not asked again by this process
	secrets    map[string]string // secrets read from the keyring, by entry and token ID
	mem        map[string]*CachedPAT
	memLocks   map[string]chan struct{}
}

// DefaultCache is under the user's cache directory, in the default mode
// (CacheKeyring).
func DefaultCache() (*Cache, error) { return NewCache(CacheKeyring) }

// NewCache is the user's cache in mode m.
func NewCache(m CacheMode) (*Cache, error) {
	if m == CacheNone {
		return &Cache{Mode: m}, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return nil, fmt.Errorf("finding the user cache directory: %w", err)
	}
	return &Cache{Dir: filepath.Join(base, "kubectl-gitlab-agent", "k8s-proxy-tokens"), Mode: m}, nil
}

// Where says where the cache keeps tokens, for messages.
func (c *Cache) Where() string {
	switch c.mode() {
	case CacheNone:
		return "this process's memory"
	case CacheKeyring:
		return "the OS keyring, with their metadata in " + c.Dir
	}
	return c.Dir
}

func (c *Cache) mode() CacheMode {
	if c.Mode == "" {
		return CacheFile
	}
	return c.Mode
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

// Load reads an entry's metadata, and its secret when that is in the file;
// nil when there is none (or it is unreadable). Secret gives the token.
func (c *Cache) Load(key string) *CachedPAT {
	if c.mode() == CacheNone {
		c.mu.Lock()
		defer c.mu.Unlock()
		if p := c.mem[key]; p != nil {
			q := *p
			return &q
		}
		return nil
	}
	b, err := os.ReadFile(c.path(key))
	if err != nil {
		return nil
	}
	var p CachedPAT
	if json.Unmarshal(b, &p) != nil || (p.Token == "" && p.Store != StoreKeyring) {
		return nil
	}
	if p.Store == StoreKeyring {
		p.Token = "" // only the keyring's is trusted
	}
	p.key = key
	return &p
}

// Secret is p's token: from its file, or from the OS keyring, where only an
// item made for p's GitLab, entry, token ID and secret (its SHA-256 in the
// file) is taken (ErrKeyringItemGone otherwise). A keyring that does not answer within KeyringWait gives a
// *KeyringError; so does any keyring call of this Cache after one failed.
func (c *Cache) Secret(p *CachedPAT) (string, error) {
	if p.Store != StoreKeyring {
		if p.Token == "" {
			return "", ErrKeyringItemGone
		}
		return p.Token, nil
	}
	if c.mode() != CacheKeyring {
		return "", &KeyringError{Err: fmt.Errorf("its secret is in the OS keyring, which --cache-mode %s does not use", c.mode())}
	}
	memo := fmt.Sprintf("%s/%d/%s", p.key, p.ID, p.TokenSHA256)
	c.mu.Lock()
	tok, ok := c.secrets[memo]
	c.mu.Unlock()
	if ok {
		return tok, nil
	}
	var item string
	if err := c.keyringCall(func(kr Keyring) (err error) { item, err = kr.Get(KeyringService, p.key); return err }); err != nil {
		return "", err
	}
	tok, err := decodeItem(item, p.key, p)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	if c.secrets == nil {
		c.secrets = map[string]string{}
	}
	c.secrets[memo] = tok
	c.mu.Unlock()
	return tok, nil
}

// keyringCall runs call on the keyring within KeyringWait; after a failure
// (not a missing item) this Cache asks the keyring no more.
func (c *Cache) keyringCall(call func(Keyring) error) error {
	c.mu.Lock()
	err := c.keyringErr
	c.mu.Unlock()
	if err != nil {
		return err
	}
	kr, wait := c.Keyring, c.KeyringWait
	if kr == nil {
		kr = osKeyring{}
	}
	if wait <= 0 {
		wait = keyringWait
	}
	err = boundedKeyring(wait, func() error { return call(kr) })
	var ke *KeyringError
	if errors.As(err, &ke) {
		c.mu.Lock()
		c.keyringErr = err
		c.mu.Unlock()
	}
	return err
}

// Keep stores a new token: its secret in the OS keyring (CacheKeyring, when
// one answers) and its metadata in its file; with CacheFile, or when no
// keyring answers, both in the file (said once per cache directory, in
// Log). The keyring item is written before the file, so that a reader that
// sees the new metadata finds the new secret.
func (c *Cache) Keep(key string, p *CachedPAT) error {
	p.Store, p.TokenSHA256 = "", ""
	if c.mode() == CacheKeyring {
		item, err := encodeItem(key, p)
		if err == nil {
			err = c.keyringCall(func(kr Keyring) error { return kr.Set(KeyringService, key, item) })
		}
		if err == nil {
			p.Store, p.TokenSHA256 = StoreKeyring, tokenDigest(p.Token)
			c.answered()
		} else {
			c.fellBack(err)
		}
	}
	return c.Store(key, p)
}

// fallbackNote marks, in the cache directory, that no keyring answered and
// the user was told so.
const fallbackNote = "keyring-fallback"

// fellBack says, once per cache directory until a keyring answers again,
// that secrets go in the file.
func (c *Cache) fellBack(err error) {
	note := filepath.Join(c.Dir, fallbackNote)
	if _, statErr := os.Stat(note); statErr == nil || c.ensureDir() != nil {
		return
	}
	if secretfile.Write(note, []byte(time.Now().UTC().Format(time.RFC3339)+" "+err.Error()+"\n")) != nil {
		return
	}
	if c.Log != nil {
		fmt.Fprintf(c.Log, "%s: k8s_proxy tokens are kept in %s (0600) instead (said once; --cache-mode file chooses the file)\n",
			safetext.Line(err.Error()), c.Dir)
	}
}

// answered forgets a fallback: the next one is said again.
func (c *Cache) answered() { _ = os.Remove(filepath.Join(c.Dir, fallbackNote)) }

// Store writes an entry's metadata atomically with mode 0600, and its
// secret unless that is in the keyring.
func (c *Cache) Store(key string, p *CachedPAT) error {
	q := *p
	if q.Store == StoreKeyring {
		q.Token = ""
	}
	if c.mode() == CacheNone {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.mem == nil {
			c.mem = map[string]*CachedPAT{}
		}
		q.key = key
		c.mem[key] = &q
		return nil
	}
	if err := c.ensureDir(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(&q, "", "  ")
	if err != nil {
		return err
	}
	return secretfile.Write(c.path(key), b)
}

// Lock takes the entry's lock, waiting (bounded) for other processes. It
// is a file's, wherever the secret is.
func (c *Cache) Lock(ctx context.Context, key string) (func(), error) {
	if c.mode() == CacheNone {
		return c.memLock(ctx, key)
	}
	if err := c.ensureDir(); err != nil {
		return nil, err
	}
	unlock, err := lockFile(ctx, filepath.Join(c.Dir, key+".lock"))
	if err != nil {
		return nil, fmt.Errorf("locking the token cache: %w", err)
	}
	return unlock, nil
}

// memLock is Lock within one process, for CacheNone.
func (c *Cache) memLock(ctx context.Context, key string) (func(), error) {
	c.mu.Lock()
	if c.memLocks == nil {
		c.memLocks = map[string]chan struct{}{}
	}
	l := c.memLocks[key]
	if l == nil {
		l = make(chan struct{}, 1)
		c.memLocks[key] = l
	}
	c.mu.Unlock()
	select {
	case l <- struct{}{}:
		return func() { <-l }, nil
	default:
	}
	select {
	case l <- struct{}{}:
		return func() { <-l }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("locking the token cache: %w", ctx.Err())
	}
}

// CacheEntry is a cache file and what it holds.
type CacheEntry struct {
	Key string
	PAT *CachedPAT
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

// List returns every entry this mode serves, oldest first: with CacheFile
// not those whose secret is in the keyring.
func (c *Cache) List() ([]CacheEntry, error) {
	var keys []string
	if c.mode() == CacheNone {
		c.mu.Lock()
		for k := range c.mem {
			keys = append(keys, k)
		}
		c.mu.Unlock()
	} else {
		files, err := filepath.Glob(filepath.Join(c.Dir, "*.json"))
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			keys = append(keys, filepath.Base(f[:len(f)-len(".json")]))
		}
	}
	var out []CacheEntry
	for _, key := range keys {
		if p := c.Load(key); p != nil && (p.Store != StoreKeyring || c.mode() == CacheKeyring) {
			out = append(out, CacheEntry{Key: key, PAT: p})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PAT.CreatedAt.Before(out[j].PAT.CreatedAt) })
	return out, nil
}

// Remove deletes an entry: its keyring item first (a keyring that does not
// answer leaves the entry, to be removed again), then its file.
func (c *Cache) Remove(key string) error {
	if c.mode() == CacheNone {
		c.mu.Lock()
		delete(c.mem, key)
		c.mu.Unlock()
		return nil
	}
	if p := c.Load(key); p != nil && p.Store == StoreKeyring && c.mode() == CacheKeyring {
		err := c.keyringCall(func(kr Keyring) error { return kr.Delete(KeyringService, key) })
		if err != nil && !errors.Is(err, ErrKeyringItemGone) {
			return fmt.Errorf("deleting the keyring item of token %d: %w", p.ID, err)
		}
	}
	err := os.Remove(c.path(key))
	_ = os.Remove(filepath.Join(c.Dir, key+".lock"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
