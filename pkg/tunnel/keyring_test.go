package tunnel

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/pkg/gitlab"
	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

func TestParseCacheMode(t *testing.T) {
	for _, m := range []string{"keyring", "file", "none"} {
		if got, err := ParseCacheMode(m); err != nil || string(got) != m {
			t.Errorf("%s: %q %v", m, got, err)
		}
	}
	for _, m := range []string{"", "bogus", "Keyring", "memory"} {
		if _, err := ParseCacheMode(m); err == nil || !strings.Contains(err.Error(), "keyring, file or none") {
			t.Errorf("%q: %v", m, err)
		}
	}
}

// deadKeyring is a keyring that never answers in time (hang) or refuses
// every call; it counts the calls.
type deadKeyring struct {
	hang  chan struct{} // nil: fail at once
	mu    sync.Mutex
	calls int
}

func (k *deadKeyring) call() error {
	k.mu.Lock()
	k.calls++
	k.mu.Unlock()
	if k.hang != nil {
		<-k.hang
	}
	return errors.New("org.freedesktop.DBus.Error.ServiceUnknown: The name org.freedesktop.secrets was not provided by any .service files")
}

func (k *deadKeyring) Get(string, string) (string, error) { return "", k.call() }
func (k *deadKeyring) Set(string, string, string) error   { return k.call() }
func (k *deadKeyring) Delete(string, string) error        { return k.call() }

func (k *deadKeyring) count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.calls
}

func keyringOptions(t *testing.T, f *fakegitlab.Server, tok string, cache *Cache, log *strings.Builder, now *time.Time) CredentialOptions {
	t.Helper()
	cache.Log = log
	return CredentialOptions{GitLab: gitlab.New, GitLabURL: f.URL, AgentID: 7, Credentials: gitlab.Credentials{Token: tok}, Cache: cache, Log: log,
		Now: func() time.Time { return *now }}
}

// No keyring answers (here: none at all, and one that hangs): the token
// goes in the 0600 file, which is said once, and later calls (later
// processes: new Caches) read it there without asking a keyring.
func TestKeyringFallbackToTheFileSaidOnce(t *testing.T) {
	for name, kr := range map[string]*deadKeyring{"refuses": {}, "hangs": {hang: make(chan struct{})}} {
		t.Run(name, func(t *testing.T) {
			if kr.hang != nil {
				t.Cleanup(func() { close(kr.hang) })
			}
			f, tok, c := fixture(t)
			dir := c.Dir
			now := time.Now()
			var log strings.Builder
			newCache := func() *Cache {
				return &Cache{Dir: dir, Mode: CacheKeyring, Keyring: kr, KeyringWait: 50 * time.Millisecond}
			}
			o := keyringOptions(t, f, tok, newCache(), &log, &now)
			first, err := GetCredential(context.Background(), o)
			if err != nil || !first.Minted {
				t.Fatalf("%+v %v", first, err)
			}
			if n := strings.Count(log.String(), "no OS keyring answered"); n != 1 || !strings.Contains(log.String(), "kept in "+dir+" (0600) instead (said once") {
				t.Errorf("said %d times: %q", n, log.String())
			}
			p := c.Load(Key(f.URL, tok))
			if p == nil || p.Store != "" || "pat:7:"+p.Token != first.Token {
				t.Fatalf("the file entry: %+v", p)
			}
			calls := kr.count()
			for i := range 3 {
				now = now.Add(time.Minute)
				o := keyringOptions(t, f, tok, newCache(), &log, &now)
				again, err := GetCredential(context.Background(), o)
				if err != nil || again.Token != first.Token || again.Minted {
					t.Fatalf("call %d: %+v %v", i, again, err)
				}
			}
			if kr.count() != calls {
				t.Errorf("the keyring was asked %d more times for a token in the file", kr.count()-calls)
			}
			// A token minted later (another credential) falls back again, unsaid.
			_, tok2 := f.AddUser("ana")
			o = keyringOptions(t, f, tok2, newCache(), &log, &now)
			if _, err := GetCredential(context.Background(), o); err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(log.String(), "no OS keyring answered"); n != 1 {
				t.Errorf("said %d times: %q", n, log.String())
			}
			if strings.Contains(log.String(), strings.TrimPrefix(first.Token, "pat:7:")) {
				t.Errorf("the log holds the token")
			}
		})
	}
}

// A cached token whose secret is in a keyring that stops answering is
// replaced by one in the file (the old one revoked by its ID: its secret is
// out of reach), within the bound; without GitLab credentials the error says
// why no token can be made.
func TestKeyringThatStopsAnswering(t *testing.T) {
	f, u, tok, c := userFixture(t)
	now := time.Now()
	var log strings.Builder
	kr := &memKeyring{}
	o := keyringOptions(t, f, tok, &Cache{Dir: c.Dir, Mode: CacheKeyring, Keyring: kr}, &log, &now)
	first, err := GetCredential(context.Background(), o)
	if err != nil || !first.Minted {
		t.Fatalf("%+v %v", first, err)
	}
	key := Key(f.URL, tok)
	if p := c.Load(key); p == nil || p.Store != StoreKeyring || p.Token != "" {
		t.Fatalf("want metadata only in the file: %+v", p)
	}
	b, _ := os.ReadFile(filepath.Join(c.Dir, key+".json"))
	if strings.Contains(string(b), strings.TrimPrefix(first.Token, "pat:7:")) {
		t.Fatalf("the secret is in the file: %s", b)
	}
	hang := &deadKeyring{hang: make(chan struct{})}
	t.Cleanup(func() { close(hang.hang) })
	now = now.Add(time.Minute)
	noCreds := keyringOptions(t, f, "", &Cache{Dir: c.Dir, Mode: CacheKeyring, Keyring: hang, KeyringWait: 50 * time.Millisecond}, &log, &now)
	noCreds.Credentials = gitlab.Credentials{}
	if _, err := GetCredential(context.Background(), noCreds); err == nil || !strings.Contains(err.Error(), "cannot be read (no OS keyring answered: no answer within 50ms), and creating one needs GitLab credentials") {
		t.Fatalf("no keyring, no credentials: %v", err)
	}
	o = keyringOptions(t, f, tok, &Cache{Dir: c.Dir, Mode: CacheKeyring, Keyring: hang, KeyringWait: 50 * time.Millisecond}, &log, &now)
	next, err := GetCredential(context.Background(), o)
	if err != nil || !next.Minted || next.Token == first.Token {
		t.Fatalf("%+v %v", next, err)
	}
	if active := activePATs(f, u); len(active) != 1 || "pat:7:"+active[0].Token != next.Token {
		t.Errorf("active tokens %+v: want only the new one", active)
	}
	if p := c.Load(key); p == nil || p.Store != "" || "pat:7:"+p.Token != next.Token {
		t.Errorf("want the new token in the file: %+v", p)
	}
}

// --cache-mode file never asks a keyring: a keyring entry is replaced by a
// file one (and revoked), and token-cache lists only file entries.
func TestFileModeNeverAsksTheKeyring(t *testing.T) {
	f, u, tok, c := userFixture(t)
	now := time.Now()
	var log strings.Builder
	kr := &memKeyring{}
	o := keyringOptions(t, f, tok, &Cache{Dir: c.Dir, Mode: CacheKeyring, Keyring: kr}, &log, &now)
	first, err := GetCredential(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	kr.mu.Lock()
	kr.off = true // any call now is a test failure
	kr.mu.Unlock()
	file := &Cache{Dir: c.Dir, Mode: CacheFile, Keyring: kr}
	if entries, _ := file.List(); len(entries) != 0 {
		t.Errorf("file mode lists keyring entries: %+v", entries)
	}
	now = now.Add(time.Minute)
	o = keyringOptions(t, f, tok, file, &log, &now)
	next, err := GetCredential(context.Background(), o)
	if err != nil || !next.Minted || next.Token == first.Token {
		t.Fatalf("%+v %v", next, err)
	}
	if kr.asked() {
		t.Errorf("--cache-mode file asked the keyring")
	}
	if active := activePATs(f, u); len(active) != 1 || "pat:7:"+active[0].Token != next.Token {
		t.Errorf("active tokens %+v: want only the file's", active)
	}
}

// --cache-mode none keeps tokens in memory only: nothing on disk, and
// parallel calls (a proxy's requests) create one token.
func TestNoneModeKeepsTokensInMemory(t *testing.T) {
	f, tok, _ := fixture(t)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	cache, err := NewCache(CacheNone)
	if err != nil || cache.Dir != "" {
		t.Fatalf("%+v %v", cache, err)
	}
	now := time.Now()
	var log strings.Builder
	o := keyringOptions(t, f, tok, cache, &log, &now)
	var wg sync.WaitGroup
	toks := make([]string, 8)
	for i := range toks {
		wg.Go(func() {
			c, err := GetCredential(context.Background(), o)
			if err != nil {
				t.Error(err)
			}
			toks[i] = c.Token
		})
	}
	wg.Wait()
	for _, tk := range toks[1:] {
		if tk != toks[0] {
			t.Fatalf("parallel calls got different tokens")
		}
	}
	if n := f.Calls("POST /api/v4/user/personal_access_tokens"); n != 1 {
		t.Errorf("%d tokens minted, want 1", n)
	}
	if entries, _ := cache.List(); len(entries) != 1 || "pat:7:"+entries[0].PAT.Token != toks[0] {
		t.Errorf("in memory: %+v", entries)
	}
	if files, _ := filepath.Glob(filepath.Join(os.Getenv("XDG_CACHE_HOME"), "*")); len(files) != 0 {
		t.Errorf("--cache-mode none wrote %v", files)
	}
}

// A cache entry under this GitLab's key that names another GitLab (planted,
// or copied from elsewhere) is never served, and its token ID (another
// GitLab's) is not revoked here.
func TestCacheEntryOfAnotherGitLabIsNotServed(t *testing.T) {
	f, u, tok, c := userFixture(t)
	other, _, otherTok, _ := userFixture(t)
	now := time.Now()
	var log strings.Builder
	theirs, err := GetCredential(context.Background(), keyringOptions(t, other, otherTok, c, &log, &now))
	if err != nil {
		t.Fatal(err)
	}
	p := c.Load(Key(other.URL, otherTok))
	mine := f.PersonalAccessTokens(u)[0] // the user's own api token on f
	p.ID = mine.ID                       // an ID a revocation on f would hit
	if err := c.Store(Key(f.URL, tok), p); err != nil {
		t.Fatal(err)
	}
	ours, err := GetCredential(context.Background(), keyringOptions(t, f, tok, c, &log, &now))
	if err != nil || !ours.Minted || ours.Token == theirs.Token {
		t.Fatalf("served %+v %v", ours, err)
	}
	if n := f.Calls("DELETE /api/v4/personal_access_tokens/{id}"); n != 0 {
		t.Errorf("revoked a token of this GitLab by another GitLab's entry's ID")
	}
	for _, p := range f.PersonalAccessTokens(u) {
		if p.ID == mine.ID && p.Revoked {
			t.Errorf("the user's own token %d was revoked", p.ID)
		}
	}
}

// memKeyring is an in-memory keyring for the tests that need one that
// works and fails on cue; the real one is in keyring_secretservice_test.go.
type memKeyring struct {
	mu    sync.Mutex
	items map[string]string
	off   bool
	used  bool
}

func (k *memKeyring) op() error {
	if k.off {
		k.used = true
		return errors.New("asked while off")
	}
	return nil
}

func (k *memKeyring) Get(service, user string) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op(); err != nil {
		return "", err
	}
	v, ok := k.items[service+"/"+user]
	if !ok {
		return "", ErrKeyringItemGone
	}
	return v, nil
}

func (k *memKeyring) Set(service, user, secret string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op(); err != nil {
		return err
	}
	if k.items == nil {
		k.items = map[string]string{}
	}
	k.items[service+"/"+user] = secret
	return nil
}

func (k *memKeyring) Delete(service, user string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op(); err != nil {
		return err
	}
	delete(k.items, service+"/"+user)
	return nil
}

func (k *memKeyring) asked() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.used
}

// userFixture is fixture with the user whose token tok is.
func userFixture(t *testing.T) (*fakegitlab.Server, *fakegitlab.User, string, *Cache) {
	t.Helper()
	f := fakegitlab.New()
	t.Cleanup(f.Close)
	u, tok := f.AddUser("maria")
	return f, u, tok, &Cache{Dir: filepath.Join(t.TempDir(), "tokens")}
}

// activePATs are u's k8s_proxy tokens on f not revoked.
func activePATs(f *fakegitlab.Server, u *fakegitlab.User) []fakegitlab.PersonalAccessToken {
	var out []fakegitlab.PersonalAccessToken
	for _, p := range f.PersonalAccessTokens(u) {
		if len(p.Scopes) == 1 && p.Scopes[0] == "k8s_proxy" && !p.Revoked {
			out = append(out, p)
		}
	}
	return out
}

// TestALostSecretIsReplacedAtMostOncePerRenewInterval: something that
// deletes the keyring item at every call (a program on the session bus)
// gets no new token, and no mail to the user, per kubectl call: within
// RenewInterval of the last one made, the call fails with one line.
func TestALostSecretIsReplacedAtMostOncePerRenewInterval(t *testing.T) {
	f, u, tok, c := userFixture(t)
	now := time.Now()
	var log strings.Builder
	kr := &memKeyring{}
	o := keyringOptions(t, f, tok, &Cache{Dir: c.Dir, Mode: CacheKeyring, Keyring: kr}, &log, &now)
	if first, err := GetCredential(context.Background(), o); err != nil || !first.Minted {
		t.Fatalf("%+v %v", first, err)
	}
	key := Key(f.URL, tok)
	for i := range 5 {
		if err := kr.Delete(KeyringService, key); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Second)
		_, err := GetCredential(context.Background(), o)
		if err == nil || !strings.Contains(err.Error(), "no other is made within") || strings.Contains(err.Error(), "\n") {
			t.Fatalf("call %d after the item was deleted: %v", i, err)
		}
	}
	if n := len(activePATs(f, u)) + len(revokedPATs(f, u)); n != 1 {
		t.Errorf("%d tokens made; want 1", n)
	}
	now = now.Add(RenewInterval)
	if again, err := GetCredential(context.Background(), o); err != nil || !again.Minted {
		t.Errorf("after RenewInterval: %+v %v; want a new token", again, err)
	}
}

// revokedPATs are u's k8s_proxy tokens on f that were revoked.
func revokedPATs(f *fakegitlab.Server, u *fakegitlab.User) []fakegitlab.PersonalAccessToken {
	var out []fakegitlab.PersonalAccessToken
	for _, p := range f.PersonalAccessTokens(u) {
		if len(p.Scopes) == 1 && p.Scopes[0] == "k8s_proxy" && p.Revoked {
			out = append(out, p)
		}
	}
	return out
}
