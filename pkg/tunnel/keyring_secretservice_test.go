//go:build linux

package tunnel

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zalando/go-keyring"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/secretservice"
)

var (
	secretServiceOnce sync.Once
	secretServiceErr  error
)

// withSecretService points this process's OS keyring at a Secret Service
// of its own (gnome-keyring on a private session bus), started once for
// the package's tests; it ends with the process. Skipped where none can
// start.
func withSecretService(t *testing.T) {
	t.Helper()
	if m := secretservice.Missing(); m != "" {
		t.Skipf("no Secret Service to test the OS keyring with: %s", m)
	}
	secretServiceOnce.Do(func() {
		var s *secretservice.Service
		if s, secretServiceErr = secretservice.Start(); secretServiceErr == nil {
			secretServiceErr = os.Setenv("DBUS_SESSION_BUS_ADDRESS", s.Address)
		}
	})
	if secretServiceErr != nil {
		t.Fatalf("starting a Secret Service: %v", secretServiceErr)
	}
}

// The k8s_proxy token's secret lives in a real Secret Service, its metadata
// in the 0600 file; parallel calls (each a process of its own: a Cache of
// its own) create one token, and later ones read it from the keyring.
func TestKeyringWithASecretService(t *testing.T) {
	withSecretService(t)
	f, u, tok, c := userFixture(t)
	now := time.Now()
	var log strings.Builder
	var mu sync.Mutex
	var wg sync.WaitGroup
	toks := make([]string, 6)
	for i := range toks {
		wg.Go(func() {
			var l strings.Builder
			o := keyringOptions(t, f, tok, &Cache{Dir: c.Dir, Mode: CacheKeyring}, &l, &now)
			cred, err := GetCredential(context.Background(), o)
			if err != nil {
				t.Error(err)
			}
			toks[i] = cred.Token
			mu.Lock()
			log.WriteString(l.String())
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, tk := range toks[1:] {
		if tk != toks[0] {
			t.Fatalf("parallel calls got different tokens")
		}
	}
	if active := activePATs(f, u); len(active) != 1 || "pat:7:"+active[0].Token != toks[0] {
		t.Fatalf("tokens %+v: want one", active)
	}
	secret := strings.TrimPrefix(toks[0], "pat:7:")
	key := Key(f.URL, tok)
	b, err := os.ReadFile(filepath.Join(c.Dir, key+".json"))
	if err != nil || strings.Contains(string(b), secret) || !strings.Contains(string(b), `"store": "keyring"`) {
		t.Fatalf("the file holds the secret, or does not say where it is: %s %v", b, err)
	}
	item, err := keyring.Get(KeyringService, key)
	if err != nil || !strings.Contains(item, secret) || !strings.Contains(item, f.URL) {
		t.Fatalf("the keyring item: %q %v", item, err)
	}
	if log.Len() != 0 {
		t.Errorf("said %q", log.String())
	}
	now = now.Add(time.Minute)
	again, err := GetCredential(context.Background(), keyringOptions(t, f, tok, &Cache{Dir: c.Dir, Mode: CacheKeyring}, &log, &now))
	if err != nil || again.Minted || again.Token != toks[0] {
		t.Fatalf("a later call: %+v %v", again, err)
	}
	// The user deletes the item (Seahorse, secret-tool): a new token, in
	// the keyring again (a missing item is not a keyring that fails), and
	// the lost one revoked.
	if err := keyring.Delete(KeyringService, key); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	renewed, err := GetCredential(context.Background(), keyringOptions(t, f, tok, &Cache{Dir: c.Dir, Mode: CacheKeyring}, &log, &now))
	if err != nil || !renewed.Minted || renewed.Token == toks[0] {
		t.Fatalf("after the item was deleted: %+v %v", renewed, err)
	}
	if p := c.Load(key); p == nil || p.Store != StoreKeyring || strings.Contains(log.String(), "no OS keyring answered") {
		t.Errorf("the new token is not in the keyring: %+v, %q", p, log.String())
	}
	if active := activePATs(f, u); len(active) != 1 || "pat:7:"+active[0].Token != renewed.Token {
		t.Errorf("tokens %+v: want only the new one", active)
	}
	// Removing the entry removes the keyring item.
	if err := (&Cache{Dir: c.Dir, Mode: CacheKeyring}).Remove(key); err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.Get(KeyringService, key); err != keyring.ErrNotFound {
		t.Errorf("the item outlived its entry: %v", err)
	}
}

// The keyring is a trust boundary: any program of the user's may write
// items. An item under this GitLab's entry that was made for another GitLab
// (copied from that GitLab's entry, a bare token, or that GitLab's secret
// relabelled with this entry's GitLab, key and token ID) is never served;
// the token it displaced is replaced and revoked, the other GitLab's is not
// touched, and with no GitLab credentials at hand the call fails rather than
// send another GitLab's token. The relabelled item runs first: the two fake
// GitLabs number their tokens alike, so before A's token is replaced its ID
// is B's too, and only the secret's digest tells them apart.
func TestKeyringItemOfAnotherGitLabIsNeverServed(t *testing.T) {
	withSecretService(t)
	a, ua, tokA, c := userFixture(t)
	b, ub, tokB, _ := userFixture(t)
	now := time.Now()
	var log strings.Builder
	cache := func() *Cache { return &Cache{Dir: c.Dir, Mode: CacheKeyring} }
	theirs, err := GetCredential(context.Background(), keyringOptions(t, b, tokB, cache(), &log, &now))
	if err != nil {
		t.Fatal(err)
	}
	ours, err := GetCredential(context.Background(), keyringOptions(t, a, tokA, cache(), &log, &now))
	if err != nil {
		t.Fatal(err)
	}
	keyA, keyB := Key(a.URL, tokA), Key(b.URL, tokB)
	itemB, err := keyring.Get(KeyringService, keyB)
	if err != nil {
		t.Fatal(err)
	}
	// relabelled is B's secret in an item that names A's GitLab, entry and
	// current token ID: what a program that may write the keyring (and list
	// its items) but not read the cache files can make.
	relabelled := func() string {
		item, err := encodeItem(keyA, &CachedPAT{GitLabURL: a.URL, ID: c.Load(keyA).ID, Token: strings.TrimPrefix(theirs.Token, "pat:7:")})
		if err != nil {
			t.Fatal(err)
		}
		return item
	}
	for _, plant := range []struct {
		name string
		item func() string
	}{
		{"B's secret relabelled as A's", relabelled},
		{"B's item", func() string { return itemB }},
		{"B's bare token", func() string { return strings.TrimPrefix(theirs.Token, "pat:7:") }},
	} {
		t.Run(plant.name, func(t *testing.T) {
			if err := keyring.Set(KeyringService, keyA, plant.item()); err != nil {
				t.Fatal(err)
			}
			now = now.Add(time.Minute)
			noCreds := keyringOptions(t, a, "", cache(), &log, &now)
			if cred, err := GetCredential(context.Background(), noCreds); err == nil || strings.Contains(cred.Token, theirs.Token) || !strings.Contains(err.Error(), "cannot be read") {
				t.Fatalf("without credentials: %+v %v", cred, err)
			}
			next, err := GetCredential(context.Background(), keyringOptions(t, a, tokA, cache(), &log, &now))
			if err != nil || !next.Minted || next.Token == theirs.Token || next.Token == ours.Token {
				t.Fatalf("served %+v %v", next, err)
			}
			if active := activePATs(a, ua); len(active) != 1 || "pat:7:"+active[0].Token != next.Token {
				t.Errorf("A's tokens %+v: want only the new one (the displaced one revoked)", active)
			}
			ours = next
		})
	}
	if active := activePATs(b, ub); len(active) != 1 || "pat:7:"+active[0].Token != theirs.Token {
		t.Errorf("B's tokens %+v: want B's untouched", active)
	}
	if n := b.Calls("DELETE /api/v4/personal_access_tokens/{id}") + b.Calls("DELETE /api/v4/personal_access_tokens/self"); n != 0 {
		t.Errorf("%d revocations on B", n)
	}
	if still, err := GetCredential(context.Background(), keyringOptions(t, b, tokB, cache(), &log, &now)); err != nil || still.Token != theirs.Token || still.Minted {
		t.Errorf("B's own entry: %+v %v", still, err)
	}
	if strings.Contains(log.String(), strings.TrimPrefix(theirs.Token, "pat:7:")) {
		t.Errorf("the log holds B's token")
	}
}
