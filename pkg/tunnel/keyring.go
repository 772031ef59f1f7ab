package tunnel

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/zalando/go-keyring"
)

// CacheMode says where the k8s_proxy tokens' secrets are kept between calls.
type CacheMode string

const (
	// CacheKeyring keeps each secret in the OS keyring (the Secret Service
	// on Linux, the Keychain on macOS, the Credential Manager on Windows)
	// and its metadata in the cache file; when no keyring answers, the
	// secret goes in the file, as with CacheFile.
	CacheKeyring CacheMode = "keyring"
	// CacheFile keeps the secret in the cache file (0600) with its
	// metadata, and never asks a keyring.
	CacheFile CacheMode = "file"
	// CacheNone keeps tokens in the process's memory only: for a proxy,
	// which mints one when it needs one and revokes it when it stops.
	CacheNone CacheMode = "none"
)

// CacheModes are the --cache-mode values, the default first.
var CacheModes = []CacheMode{CacheKeyring, CacheFile, CacheNone}

// ParseCacheMode reads a --cache-mode value.
func ParseCacheMode(s string) (CacheMode, error) {
	for _, m := range CacheModes {
		if string(m) == s {
			return m, nil
		}
	}
	return "", fmt.Errorf("--cache-mode %q: give keyring, file or none", s)
}

// Keyring is the OS keyring as CacheKeyring uses it (go-keyring's calls).
// Tests give one that hangs or fails; the real one is the OS keyring.
type Keyring interface {
	Get(service, user string) (string, error)
	Set(service, user, secret string) error
	Delete(service, user string) error
}

// KeyringService names the cache's items in the OS keyring; each item's
// user is its cache entry's key.
const KeyringService = "kubectl-gitlab-agent:k8s_proxy"

// keyringWait bounds each keyring call: get-token runs for every kubectl
// request, and a keyring may never answer (a locked collection waits for a
// password prompt nobody sees; a Secret Service that hangs). GitHub's gh
// bounds its keyring calls the same way.
const keyringWait = 3 * time.Second

// ErrKeyringItemGone: the keyring holds no usable item for a cache entry
// (deleted, or one that was not made for the entry: another GitLab's,
// another token's). Its token cannot be served, and no one else can serve
// it from this cache.
var ErrKeyringItemGone = errors.New("the OS keyring holds no item made for it")

// KeyringError: no keyring answered (none installed, no D-Bus session, a
// call that took longer than keyringWait, a locked keyring).
type KeyringError struct{ Err error }

func (e *KeyringError) Error() string { return "no OS keyring answered: " + e.Err.Error() }
func (e *KeyringError) Unwrap() error { return e.Err }

// keyringItem is what a cache entry's keyring item holds: the secret with
// the GitLab, the entry and the token ID it was made for. The entry's file
// keeps the secret's SHA-256 (CachedPAT.TokenSHA256): an item is served only
// when all four match, so an item planted or left under another entry's key,
// even one relabelled with this entry's GitLab, key and ID, is not (a
// program that may write the keyring but not read the file, a sandboxed app
// on the session bus, cannot forge one).
type keyringItem struct {
	GitLabURL string `json:"gitlabURL"`
	Key       string `json:"key"`
	ID        int64  `json:"id"`
	Token     string `json:"token"`
}

func encodeItem(key string, p *CachedPAT) (string, error) {
	b, err := json.Marshal(keyringItem{GitLabURL: p.GitLabURL, Key: key, ID: p.ID, Token: p.Token})
	return string(b), err
}

// tokenDigest is what the entry's file keeps of a secret in the keyring.
func tokenDigest(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// decodeItem is the secret of item when it was made for p (entry key):
// the same GitLab URL, entry, token ID and secret.
func decodeItem(item, key string, p *CachedPAT) (string, error) {
	var it keyringItem
	if json.Unmarshal([]byte(item), &it) != nil || it.Token == "" || it.GitLabURL != p.GitLabURL || it.Key != key || it.ID != p.ID ||
		subtle.ConstantTimeCompare([]byte(tokenDigest(it.Token)), []byte(p.TokenSHA256)) != 1 {
		return "", ErrKeyringItemGone
	}
	return it.Token, nil
}

// osKeyring is go-keyring's: the OS keyring of this user.
type osKeyring struct{}

func (osKeyring) Get(service, user string) (string, error) {
	if err := sessionBus(); err != nil {
		return "", err
	}
	return keyring.Get(service, user)
}

func (osKeyring) Set(service, user, secret string) error {
	if err := sessionBus(); err != nil {
		return err
	}
	return keyring.Set(service, user, secret)
}

func (osKeyring) Delete(service, user string) error {
	if err := sessionBus(); err != nil {
		return err
	}
	return keyring.Delete(service, user)
}

// boundedKeyring runs kr's calls within wait each; a call still running
// then is left behind (a process that called it ends soon; a proxy asks
// that keyring no more: Cache remembers the failure).
func boundedKeyring(wait time.Duration, call func() error) error {
	done := make(chan error, 1)
	go func() { done <- call() }()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case err := <-done:
		if errors.Is(err, keyring.ErrNotFound) || errors.Is(err, ErrKeyringItemGone) {
			return ErrKeyringItemGone
		}
		if err != nil {
			return &KeyringError{Err: err}
		}
		return nil
	case <-t.C:
		return &KeyringError{Err: fmt.Errorf("no answer within %s", wait)}
	}
}
