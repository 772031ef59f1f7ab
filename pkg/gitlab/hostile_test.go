package gitlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

// redirector sends every request to target with status.
func redirector(t *testing.T, target string, status int) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target+r.URL.RequestURI(), status)
	}))
	t.Cleanup(s.Close)
	return s
}

func TestCredentialNeverFollowsARedirectToAnotherOrigin(t *testing.T) {
	evil := fakegitlab.NewCatcher(`{"version":"17.3.1","kas":{"enabled":true,"externalUrl":"wss://evil"}}`)
	t.Cleanup(evil.Close)
	// "localhost" and 127.0.0.1 are different hosts to Go's redirect rules;
	// another port on the same host is another origin to ours.
	targets := map[string]string{
		"other host": strings.Replace(evil.URL, "127.0.0.1", "localhost", 1),
		"other port": evil.URL,
	}
	for name, target := range targets {
		for _, status := range []int{301, 302, 307, 308} {
			for _, creds := range []Credentials{{Token: "glpat-secret-value-1", Source: "GITLAB_TOKEN"}, {JobToken: "glcbt-secret-value-2", Source: "CI_JOB_TOKEN"}, {Token: "oauth-secret-value-3", OAuth: true, Source: "glab"}} {
				front := redirector(t, target, status)
				c, err := New(Options{URL: front.URL, Credentials: creds, RetryBase: time.Millisecond})
				if err != nil {
					t.Fatal(err)
				}
				_, err = c.DiscoverKAS(context.Background())
				if !IsClass(err, ClassRedirect) || !strings.Contains(err.Error(), "redirected to") {
					t.Errorf("%s %d: %v", name, status, err)
				}
				if strings.Contains(err.Error(), "secret-value") {
					t.Errorf("the error shows the credential: %v", err)
				}
			}
		}
	}
	if n := len(evil.Credentials()); n != 0 {
		t.Fatalf("a credential reached another origin %d times", n)
	}
	if n := evil.Requests(); n != 0 {
		t.Fatalf("the redirect was followed %d times (without the credential, but the error should stop it)", n)
	}
}

func TestRedirectWithinTheOriginIsFollowed(t *testing.T) {
	f := newFixture(t)
	mux := http.NewServeMux()
	var front *httptest.Server
	mux.HandleFunc("/old/", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, front.URL+strings.TrimPrefix(r.URL.RequestURI(), "/old"), http.StatusMovedPermanently)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// Same origin: forward to the fake GitLab as a reverse proxy would.
		req, _ := http.NewRequest(r.Method, f.fake.URL+r.URL.RequestURI(), r.Body)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})
	front = httptest.NewServer(mux)
	t.Cleanup(front.Close)
	c, err := New(Options{URL: front.URL + "/old", Credentials: Credentials{Token: f.mToken, Source: "GITLAB_TOKEN"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DiscoverKAS(context.Background()); err != nil {
		t.Fatalf("same-origin redirect: %v", err)
	}
}

const tokensRoute = "POST /api/v4/projects/{id}/cluster_agents/{agent_id}/tokens"

func TestLostAnswerOfTokenCreateIsNotRepeatedAndTheTokenIsRevoked(t *testing.T) {
	for name, fault := range map[string]fakegitlab.Fault{
		"504 after the work":            {Route: tokensRoute, Nth: 1, AfterWork: true, Status: 504},
		"502 after the work":            {Route: tokensRoute, Nth: 1, AfterWork: true, Status: 502},
		"dropped after the work":        {Route: tokensRoute, Nth: 1, AfterWork: true, Drop: true},
		"HTML 200 after the work":       {Route: tokensRoute, Nth: 1, AfterWork: true, Status: 201, Body: []byte("<html>hi</html>"), ContentType: "text/html"},
		"500 before the work (nothing)": {Route: tokensRoute, Nth: 1, Status: 500},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			a := f.fake.AddAgent(f.project, "prod", f.maintainer)
			keep := f.fake.AddAgentToken(a, "ci", f.maintainer) // same name as ours: must survive
			f.fake.Inject(fault)
			c := f.client(t, f.mToken)
			_, err := c.CreateToken(context.Background(), proj, &Agent{ID: a.ID, Name: a.Name}, "ci", "")
			if err == nil {
				t.Fatal("no error")
			}
			if n := f.fake.Calls(tokensRoute); n != 1 {
				t.Errorf("POST sent %d times, want once", n)
			}
			var active []string
			for _, tok := range f.fake.AgentTokens(a) {
				if tok.Status == "active" {
					active = append(active, fmt.Sprint(tok.ID))
				}
			}
			if len(active) != 1 || active[0] != fmt.Sprint(keep.ID) {
				t.Errorf("active tokens %v, want only the earlier %d", active, keep.ID)
			}
			if fault.AfterWork && !strings.Contains(err.Error(), "had created token") {
				t.Errorf("the error does not say what was cleaned up: %v", err)
			}
			if !fault.AfterWork && !strings.Contains(err.Error(), "did not create") {
				t.Errorf("the error does not say nothing was made: %v", err)
			}
		})
	}
}

func TestInterruptedTokenCreateRevokesWhatGitLabMade(t *testing.T) {
	f := newFixture(t)
	a := f.fake.AddAgent(f.project, "prod", f.maintainer)
	f.fake.Inject(fakegitlab.Fault{Route: tokensRoute, Nth: 1, AfterWork: true, Latency: 10 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel) // Ctrl-C while the POST is in flight
	_, err := f.client(t, f.mToken).CreateToken(ctx, proj, &Agent{ID: a.ID, Name: a.Name}, "kga-unique", "")
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("%v", err)
	}
	for _, tok := range f.fake.AgentTokens(a) {
		if tok.Status == "active" {
			t.Errorf("token %d %q stays active", tok.ID, tok.Name)
		}
	}
}

func TestLostAnswerOfPATCreateRevokesIt(t *testing.T) {
	f := newFixture(t)
	f.fake.Inject(fakegitlab.Fault{Route: "POST /api/v4/user/personal_access_tokens", Nth: 1, AfterWork: true, Status: 504})
	_, err := f.client(t, f.mToken).CreateProxyPAT(context.Background(), "kubectl-gitlab-agent k8s_proxy", PATExpiry(time.Now(), 1))
	if err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("%v", err)
	}
	if n := f.fake.Calls("POST /api/v4/user/personal_access_tokens"); n != 1 {
		t.Errorf("POST sent %d times", n)
	}
	for _, p := range f.fake.PersonalAccessTokens(f.maintainer) {
		if p.Scopes[0] == ProxyScope && !p.Revoked {
			t.Errorf("PAT %d %q stays active", p.ID, p.Name)
		}
	}
	// Two attempts get two names.
	p1, err1 := f.client(t, f.mToken).CreateProxyPAT(context.Background(), "x", PATExpiry(time.Now(), 1))
	p2, err2 := f.client(t, f.mToken).CreateProxyPAT(context.Background(), "x", PATExpiry(time.Now(), 1))
	if err1 != nil || err2 != nil || p1.Name == p2.Name {
		t.Fatalf("%v %v %q %q", err1, err2, p1.Name, p2.Name)
	}
}

func TestLostAnswerOfRegisterFindsTheAgent(t *testing.T) {
	f := newFixture(t)
	f.fake.Inject(fakegitlab.Fault{Route: "POST /api/v4/projects/{id}/cluster_agents", Nth: 1, AfterWork: true, Status: 504})
	a, created, err := f.client(t, f.mToken).RegisterAgent(context.Background(), proj, "prod")
	if err != nil || !created || a.Name != "prod" || len(f.fake.Agents(f.project)) != 1 {
		t.Fatalf("%+v %v %v", a, created, err)
	}
}

// hostile answers every request with handler.
func hostile(t *testing.T, h http.HandlerFunc) *Client {
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	c, err := New(Options{URL: s.URL, Credentials: Credentials{Token: "glpat-the-secret-0123", Source: "GITLAB_TOKEN"}, RetryBase: time.Millisecond, MaxRetries: 2})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestHostileAnswers(t *testing.T) {
	ctx := context.Background()
	t.Run("HTML sign-in page with 200", func(t *testing.T) {
		c := hostile(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = io.WriteString(w, "<!DOCTYPE html><html><body>Sign in</body></html>")
		})
		_, err := c.DiscoverKAS(ctx)
		if !IsClass(err, ClassBadAnswer) || !strings.Contains(err.Error(), "HTML page") || !strings.Contains(err.Error(), "--gitlab-url") || strings.Contains(err.Error(), "200 OK") {
			t.Fatalf("%v", err)
		}
	})
	t.Run("HTML error page from a proxy", func(t *testing.T) {
		c := hostile(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(502)
			_, _ = io.WriteString(w, "<html><body><h1>502 Bad Gateway</h1>"+strings.Repeat("x", 5000)+"</body></html>")
		})
		_, err := c.DiscoverKAS(ctx)
		if !IsClass(err, ClassBadAnswer) || !strings.Contains(err.Error(), "HTML page") || len(err.Error()) > 400 {
			t.Fatalf("%v", err)
		}
	})
	t.Run("endless body", func(t *testing.T) {
		var sent atomic.Int64 // written by the handler, read by the test
		c := hostile(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"version":"`)
			chunk := []byte(strings.Repeat("a", 64<<10))
			for i := 0; i < 800<<20/len(chunk); i++ { // 800 MB
				n, err := w.Write(chunk)
				sent.Add(int64(n))
				if err != nil {
					return
				}
			}
		})
		_, err := c.DiscoverKAS(ctx)
		if !IsClass(err, ClassBadAnswer) || !strings.Contains(err.Error(), "larger than") {
			t.Fatalf("%v", err)
		}
		if n := sent.Load(); n > 200<<20 {
			t.Errorf("the client read on: %d MiB sent", n>>20)
		}
	})
	t.Run("error text that echoes the token, escapes and goes on", func(t *testing.T) {
		c := hostile(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(400)
			msg := "bad token " + r.Header.Get("PRIVATE-TOKEN") + " \x1b]0;pwned\x07\x1b[2J\r" + strings.Repeat("y", 100000)
			_, _ = fmt.Fprintf(w, `{"message":%q}`, msg)
		})
		_, err := c.DiscoverKAS(ctx)
		msg := err.Error()
		if strings.Contains(msg, "glpat-the-secret-0123") || strings.ContainsAny(msg, "\x1b\x07\r") || utf8.RuneCountInString(msg) > 600 {
			t.Fatalf("%q", msg)
		}
	})
	t.Run("unknown TLS authority is not retried and says how to trust the CA", func(t *testing.T) {
		var mu sync.Mutex
		conns := 0
		s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				mu.Lock()
				conns++
				mu.Unlock()
			}
		}
		s.Config.ErrorLog = log.New(io.Discard, "", 0)
		s.StartTLS()
		t.Cleanup(s.Close)
		var logBuf bytes.Buffer
		c, err := New(Options{URL: s.URL, Credentials: Credentials{Token: "x", Source: "GITLAB_TOKEN"}, RetryBase: time.Millisecond, Log: &logBuf})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.DiscoverKAS(ctx)
		if !IsClass(err, ClassNetwork) || !strings.Contains(err.Error(), "unknown authority") || !strings.Contains(err.Error(), "SSL_CERT_FILE") {
			t.Fatalf("%v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		if conns != 1 || logBuf.Len() != 0 {
			t.Errorf("%d connections, log %q: retried", conns, logBuf.String())
		}
	})
}

func TestCleartext(t *testing.T) {
	for u, want := range map[string]bool{
		"http://gitlab.example.com":  true,
		"https://gitlab.example.com": false,
		"http://127.0.0.1:8080":      false,
		"http://localhost":           false,
		"http://[::1]:80":            false,
		"ws://kas.example.com":       true,
	} {
		if Cleartext(u) != want {
			t.Errorf("Cleartext(%s) != %v", u, want)
		}
	}
}

func TestGlabCredentials(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("GITLAB_TOKEN", "")
	t.Setenv("CI_JOB_TOKEN", "")
	t.Setenv("GLAB_CONFIG_DIR", dir)
	cfg := filepath.Join(dir, "config.yml")
	write := func(s string, mode os.FileMode) {
		if err := os.WriteFile(cfg, []byte(s), mode); err != nil {
			t.Fatal(err)
		}
		_ = os.Chmod(cfg, mode)
	}
	write(`git_protocol: ssh
hosts:
  gitlab.com:
    token: glpat-from-glab
    api_host: gitlab.com
    api_protocol: https
  gitlab.example.com:
    token: oauth-from-glab
    is_oauth2: "true"
    api_host: gitlab.example.com:8443
  keyring.example.com:
    api_host: keyring.example.com
  gitlab.port.example:8443:
    token: glpat-host-and-port
    api_host: gitlab.port.example:8443
  bare.port.example:9443:
    token: glpat-key-only
`, 0o600)
	// glab auth login --hostname host:port keys the entry by host:port.
	for url, want := range map[string]string{
		"https://gitlab.port.example:8443": "glpat-host-and-port",
		"https://GitLab.Port.Example:8443": "glpat-host-and-port",
		"https://bare.port.example:9443":   "glpat-key-only",
	} {
		if c, err := FindCredentials(context.Background(), url, ""); err != nil || c.Token != want {
			t.Errorf("%s: %+v %v, want %s", url, c, err, want)
		}
	}
	for host, want := range map[string]string{"gitlab.example.com": "https://gitlab.example.com:8443", "gitlab.com": "", "other.example.com": ""} {
		if got, _ := GlabAPIURL(host); got != want {
			t.Errorf("GlabAPIURL(%s) = %q, want %q", host, got, want)
		}
	}
	c, err := FindCredentials(context.Background(), "https://gitlab.com", "")
	if err != nil || c.Token != "glpat-from-glab" || c.OAuth || !strings.Contains(c.Source, "glab") {
		t.Fatalf("%+v %v", c, err)
	}
	c, err = FindCredentials(context.Background(), "https://gitlab.example.com:8443", "")
	if err != nil || c.Token != "oauth-from-glab" || !c.OAuth {
		t.Fatalf("port in api_host: %+v %v", c, err)
	}
	for url, why := range map[string]string{
		"https://gitlab.example.com":      "its token is for https://gitlab.example.com:8443",
		"http://gitlab.com":               "its token is for https://gitlab.com",
		"https://gitlab.com:444":          "its token is for https://gitlab.com",
		"https://other.example.com":       "no entry for other.example.com",
		"https://keyring.example.com":     "keyring",
		"https://gitlab.com.evil.example": "no entry",
		"https://gitlab.port.example":     "no entry for gitlab.port.example",
		"https://bare.port.example:9444":  "no entry for bare.port.example:9444",
	} {
		_, err := FindCredentials(context.Background(), url, "")
		if !errors.Is(err, ErrNoCredentials) || !strings.Contains(err.Error(), why) {
			t.Errorf("%s: %v, want %q", url, err, why)
		}
	}
	write("hosts:\n  gitlab.com:\n    token: glpat-x\n", 0o644)
	if _, err := FindCredentials(context.Background(), "https://gitlab.com", ""); !errors.Is(err, ErrNoCredentials) || !strings.Contains(err.Error(), "0644") {
		t.Errorf("a world-readable config was used: %v", err)
	}
}

// TestPagesThatDoNotEnd: a list walks pages only forward, stops at an empty
// page or past X-Total-Pages, and counts an item listed twice once (an
// echoed X-Next-Page once made install see one token 10,000 times, take the
// two-token limit as reached and revoke it).
func TestPagesThatDoNotEnd(t *testing.T) {
	agent := func(id int) string { return fmt.Sprintf(`{"id":%d,"name":"a%d","config_project":{"id":1}}`, id, id) }
	for _, c := range []struct {
		name      string
		next      func(page int) string
		total     string
		items     func(page int) string
		wantCalls int32
		wantIDs   int
	}{
		{"the same page again", func(p int) string { return strconv.Itoa(p) }, "", func(int) string { return agent(1) }, 1, 1},
		{"a page back", func(p int) string { return strconv.Itoa(p - 1) }, "", func(p int) string { return agent(p) }, 1, 1},
		{"a negative page", func(int) string { return "-3" }, "", func(int) string { return agent(1) }, 1, 1},
		{"an empty page with a next", func(p int) string { return strconv.Itoa(p + 1) }, "", func(int) string { return "" }, 1, 0},
		{"past the total", func(p int) string { return strconv.Itoa(p + 1) }, "2", func(p int) string { return agent(p) }, 2, 2},
		{"the same items on every page", func(p int) string { return strconv.Itoa(p + 1) }, "", func(int) string { return agent(1) + "," + agent(2) }, 2, 2},
		{"some items again", func(p int) string { return strconv.Itoa(p + 1) }, "3", func(p int) string { return agent(p) + "," + agent(p+1) }, 3, 4},
		{"three good pages", func(p int) string {
			if p == 3 {
				return ""
			}
			return strconv.Itoa(p + 1)
		}, "3", func(p int) string { return agent(p) }, 3, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			var calls atomic.Int32
			cl := hostile(t, func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				page, _ := strconv.Atoi(r.URL.Query().Get("page"))
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("X-Next-Page", c.next(page))
				w.Header().Set("X-Page", strconv.Itoa(page))
				if c.total != "" {
					w.Header().Set("X-Total-Pages", c.total)
				}
				_, _ = io.WriteString(w, "["+c.items(page)+"]")
			})
			agents, err := cl.ListAgents(context.Background(), ProjectRef{Path: "a/b"})
			if err != nil || len(agents) != c.wantIDs || calls.Load() != c.wantCalls {
				t.Errorf("%d agents, %d requests, %v; want %d agents in %d requests", len(agents), calls.Load(), err, c.wantIDs, c.wantCalls)
			}
		})
	}
}
