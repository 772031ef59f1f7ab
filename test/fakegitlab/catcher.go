package fakegitlab

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
)

// Catcher is a server that must never see a credential: the other host of
// a redirect, a look-alike GitLab. It answers every request with Body (as
// JSON) and records the request headers.
type Catcher struct {
	*httptest.Server
	mu   sync.Mutex
	seen []http.Header
}

// NewCatcher starts a Catcher that answers body; Close stops it.
func NewCatcher(body string) *Catcher {
	c := &Catcher{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.seen = append(c.seen, r.Header.Clone())
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}))
	return c
}

// Credentials names the credential headers the catcher received, one entry
// per header per request.
func (c *Catcher) Credentials() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, h := range c.seen {
		for _, k := range []string{"Private-Token", "Job-Token", "Authorization", "Cookie"} {
			if h.Get(k) != "" {
				out = append(out, k)
			}
		}
	}
	return out
}

// Requests counts the requests the catcher received.
func (c *Catcher) Requests() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}
