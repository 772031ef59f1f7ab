package e2e

import (
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

// Item 2: Go strips only Authorization and Cookie on a cross-host redirect.
func TestAttack02CredentialsStayWithTheirHost(t *testing.T) {
	g := newGitLab(t)
	evil := fakegitlab.NewCatcher("[]")
	t.Cleanup(evil.Close)
	// localhost is another host than 127.0.0.1 to Go's redirect rules.
	target := strings.Replace(evil.URL, "127.0.0.1", "localhost", 1)
	for _, status := range []int{301, 302, 307, 308} {
		front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target+r.URL.RequestURI(), status)
		}))
		defer front.Close()
		r := g.run(t, []string{"GITLAB_URL=" + front.URL}, "agent", "list", "--project", "infra/agents")
		wantError(t, r, "redirected to")
		job := g.fake.AddJobToken(g.maintainer, g.project)
		r = g.run(t, []string{"GITLAB_URL=" + front.URL, "GITLAB_TOKEN=", "CI_JOB_TOKEN=" + job}, "agent", "list", "--project", "infra/agents")
		wantError(t, r, "redirected to")
		if strings.Contains(r.stderr, job) {
			t.Errorf("the job token is in the error: %s", r.stderr)
		}
	}
	if got := evil.Credentials(); len(got) != 0 {
		t.Fatalf("another host received credentials: %v", got)
	}

	// KAS's proxy URL from /metadata on a site that is not GitLab's.
	te := newTunnel(t)
	te.fake.SetMetadata(func(m *fakegitlab.Metadata) { m.KAS.ExternalK8sProxyURL = "https://kas.evil.example/k8s-proxy" })
	kc := filepath.Join(t.TempDir(), "config")
	r := te.run(t, nil, kubectl, "gitlab-agent", "kubeconfig", "tun", "--project", "infra/agents", "--kubeconfig", kc)
	wantError(t, r, "another site", "--kas-proxy-url")
	if b, _ := os.ReadFile(kc); strings.Contains(string(b), "evil") {
		t.Fatalf("the kubeconfig sends the credential to the other site:\n%s", b)
	}
}

const tokensRoute = "POST /api/v4/projects/{id}/cluster_agents/{agent_id}/tokens"

// activeTokens lists the active tokens of the agent named name.
func (g *gitlabEnv) activeTokens(name string) []fakegitlab.AgentToken {
	var out []fakegitlab.AgentToken
	for _, a := range g.fake.Agents(g.project) {
		if a.Name != name {
			continue
		}
		for _, tok := range g.fake.AgentTokens(&a) {
			if tok.Status == "active" {
				out = append(out, tok)
			}
		}
	}
	return out
}

// Item 4: a create whose answer is lost was retried: two tokens, one orphaned.
func TestAttack04LostAnswersLeaveNoOrphanedToken(t *testing.T) {
	for name, f := range map[string]fakegitlab.Fault{
		"504 after the work":     {Route: tokensRoute, Nth: 1, AfterWork: true, Status: 504},
		"dropped after the work": {Route: tokensRoute, Nth: 1, AfterWork: true, Drop: true},
	} {
		t.Run("token create, "+name, func(t *testing.T) {
			g := newGitLab(t)
			g.fake.AddAgent(g.project, "tok", g.maintainer)
			g.fake.Inject(f)
			file := filepath.Join(t.TempDir(), "token")
			r := g.run(t, nil, "token", "create", "tok", "--name", "ci", "--token-file", file, "--project", "infra/agents")
			wantError(t, r, "anyway", "revoked")
			if n := g.fake.Calls(tokensRoute); n != 1 {
				t.Errorf("the POST was sent %d times", n)
			}
			if act := g.activeTokens("tok"); len(act) != 0 {
				t.Errorf("%d active tokens nobody holds", len(act))
			}
		})
	}
	t.Run("install, 504 after the work", func(t *testing.T) {
		g := newGitLab(t)
		g.fake.Inject(fakegitlab.Fault{Route: tokensRoute, Nth: 1, AfterWork: true, Status: 504})
		r := g.run(t, nil, "install", "lost", "--project", "infra/agents", "--no-wait")
		t.Logf("install → %s", lastLine(r.stderr))
		g.activeTokensHeld(t, "lost")
		if act := g.activeTokens("lost"); len(act) > 1 {
			t.Errorf("%d active tokens after one install", len(act))
		}
	})
	t.Run("Ctrl-C while the POST is in flight", func(t *testing.T) {
		g := newGitLab(t)
		g.fake.AddAgent(g.project, "tok", g.maintainer)
		g.fake.Inject(fakegitlab.Fault{Route: tokensRoute, Nth: 1, AfterWork: true, Latency: 20 * time.Second})
		cmd, errOut, _ := startPlugin(t, []string{"GITLAB_URL=" + g.fake.URL, "GITLAB_TOKEN=" + g.mToken, "CI_JOB_TOKEN="},
			false, "token", "create", "tok", "--name", "ci", "--show-token", "--project", "infra/agents")
		waitFor(t, 10*time.Second, func() bool { return g.fake.Calls(tokensRoute) == 1 })
		time.Sleep(200 * time.Millisecond)
		sent := time.Now()
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
		took := time.Since(sent)
		g.outputs.add(errOut.String())
		if code := cmd.ProcessState.ExitCode(); code != 130 || !strings.Contains(errOut.String(), "revoked") {
			t.Errorf("exit %d after Ctrl-C:\n%s", code, errOut.String())
		}
		if act := g.activeTokens("tok"); len(act) != 0 {
			t.Errorf("%d active tokens after Ctrl-C", len(act))
		}
		t.Logf("ended %s after Ctrl-C: %s", took.Round(time.Millisecond), lastLine(errOut.String()))
	})
	t.Run("k8s_proxy token, 504 after the work", func(t *testing.T) {
		te := newTunnel(t)
		te.fake.Inject(fakegitlab.Fault{Route: "POST /api/v4/user/personal_access_tokens", Nth: 1, AfterWork: true, Status: 504})
		r := te.run(t, nil, pluginBin(), "get-token", "--agent-id", fmt.Sprint(te.agent.ID))
		wantError(t, r, "anyway", "revoked")
		if _, active := te.proxyPATs(); len(active) != 0 {
			t.Errorf("%d k8s_proxy tokens active after a lost answer", len(active))
		}
	})
}

// Item 7: kubectl through KAS needed GITLAB_TOKEN in every shell.
func TestAttack07CachedTokenServesWithoutGitLabCredentials(t *testing.T) {
	te := newTunnel(t)
	first := te.run(t, nil, pluginBin(), "get-token", "--agent-id", fmt.Sprint(te.agent.ID))
	if first.code != 0 {
		t.Fatalf("%+v", first)
	}
	noCreds := []string{"GITLAB_TOKEN=", "GLAB_CONFIG_DIR=" + t.TempDir()}
	again := te.run(t, noCreds, pluginBin(), "get-token", "--agent-id", fmt.Sprint(te.agent.ID))
	if again.code != 0 || again.stdout != first.stdout {
		t.Fatalf("with no GitLab credentials at hand: %+v", again)
	}
	te.outputs.reset() // get-token prints credentials by design

	// No cached token and no credentials: the error names what was tried.
	other := []string{"GITLAB_TOKEN=", "GLAB_CONFIG_DIR=" + t.TempDir(), "XDG_CACHE_HOME=" + t.TempDir()}
	r := te.run(t, other, pluginBin(), "get-token", "--agent-id", fmt.Sprint(te.agent.ID))
	wantError(t, r, "needs GitLab credentials", "GITLAB_TOKEN (not set)", "CI_JOB_TOKEN (not set)", "glab's config")

	// glab's stored token, for exactly this host and port.
	dir := t.TempDir()
	u, _ := url.Parse(te.fake.URL)
	cfg := fmt.Sprintf("hosts:\n  %s:\n    token: %s\n    api_host: %s\n    api_protocol: http\n    git_protocol: ssh\n", u.Hostname(), te.mToken, u.Host)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r = te.run(t, []string{"GITLAB_TOKEN=", "GLAB_CONFIG_DIR=" + dir}, kubectl, "gitlab-agent", "agent", "list", "--project", "infra/agents")
	if r.code != 0 || !strings.Contains(r.stdout, "tun") {
		t.Fatalf("with glab's token: %+v", r)
	}
}

// forwardProxy stands for a network of named hosts: it serves absolute-form
// requests (HTTP_PROXY) for host by forwarding them to routes[host].
func forwardProxy(t *testing.T, routes map[string]string) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target, ok := routes[r.URL.Hostname()]
		if !ok {
			http.Error(w, "no such host", http.StatusBadGateway)
			return
		}
		rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
		rp.ErrorLog = log.New(io.Discard, "", 0)
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// Item 8: an http:// GitLab got the token with no warning.
func TestAttack08CleartextIsNamed(t *testing.T) {
	t.Parallel()
	g := newGitLab(t)
	g.fake.AddAgent(g.project, "clear", g.maintainer)
	u, _ := url.Parse(g.fake.URL)
	fp := forwardProxy(t, map[string]string{"gitlab.example.test": u.Host})
	proxyEnv := []string{"GITLAB_URL=http://gitlab.example.test", "HTTP_PROXY=" + fp.URL, "http_proxy=" + fp.URL, "NO_PROXY=", "no_proxy="}
	r := g.run(t, proxyEnv, "token", "list", "clear", "--project", "infra/agents")
	if r.code != 0 {
		t.Fatalf("%+v", r)
	}
	if n := strings.Count(r.stderr, "warning: the GitLab token goes to gitlab.example.test over plain http"); n != 1 {
		t.Errorf("%d cleartext warnings, want one:\n%s", n, r.stderr)
	}
	// A loopback GitLab is not warned about.
	if r := g.run(t, nil, "agent", "list", "--project", "infra/agents"); strings.Contains(r.stderr, "plain http") {
		t.Errorf("warned about loopback: %s", r.stderr)
	}

	// An https GitLab that advertises an http KAS proxy: refused.
	tg := fakegitlab.NewTLS()
	defer tg.Close()
	p := tg.AddProject("infra/agents")
	m, tok := tg.AddMember(p, "maria", fakegitlab.Maintainer)
	tg.AddAgent(p, "clear", m)
	tg.SetMetadata(func(m *fakegitlab.Metadata) { m.KAS.ExternalK8sProxyURL = "http://kas.example.test/k8s-proxy" })
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tg.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	kc := filepath.Join(t.TempDir(), "config")
	r = runIn(t, runSpec{env: []string{"GITLAB_URL=" + tg.URL, "GITLAB_TOKEN=" + tok, "SSL_CERT_FILE=" + ca, "CI_PROJECT_ID=", "CI_JOB_TOKEN="}},
		kubectl, "gitlab-agent", "kubeconfig", "clear", "--project", "infra/agents", "--kubeconfig", kc)
	wantError(t, r, "plain http", "--kas-proxy-url")
	if strings.Contains(r.stdout+r.stderr, tok) {
		t.Error("the token was printed")
	}
	if _, err := os.Stat(kc); err == nil {
		t.Error("a kubeconfig was written")
	}
}

// Item 11: token and agent names from GitLab reached the terminal raw.
func TestAttack11TerminalEscapesFromGitLab(t *testing.T) {
	t.Parallel()
	g := newGitLab(t)
	nasty := "evil\x1b[2J\x1b]0;pwned\x07\rX\u009b31m\u202e"
	a := g.fake.AddAgent(g.project, "esc", g.maintainer)
	g.fake.AddAgentToken(a, nasty, g.maintainer)
	bad := g.fake.AddAgent(g.project, "bad\x1b[31mname", g.maintainer)
	kc := filepath.Join(t.TempDir(), "config")
	// A context name is made of the agent's name and project path: one
	// that is not a name GitLab allows is refused, in escaped words.
	r := g.run(t, nil, "kubeconfig", itoa(bad.ID), "--project", "infra/agents", "--kubeconfig", kc, "--kas-proxy-url", "https://kas.example.com/k8s-proxy")
	wantError(t, r, `invalid agent name "bad\x1b[31mname"`)
	if i := strings.IndexAny(r.stdout+r.stderr, "\x1b\x07\r\u009b\u202e"); i >= 0 {
		t.Errorf("kubeconfig printed a control character: %q", r.stdout+r.stderr)
	}
	if _, err := os.Stat(kc); err == nil {
		t.Error("a kubeconfig was written for an agent named with escapes")
	}
	for _, args := range [][]string{
		{"token", "list", "esc"},
		{"agent", "list"},
		{"status", "esc"},
		{"token", "list", "esc", "-o", "json"},
	} {
		r := g.run(t, nil, append(args, "--project", "infra/agents")...)
		if r.code != 0 {
			t.Fatalf("%v: %+v", args, r)
		}
		out := r.stdout + r.stderr
		if i := strings.IndexAny(out, "\x1b\x07\r\u009b\u202e"); i >= 0 {
			t.Errorf("%v printed a control character: %q", args, out)
		}
		if !strings.Contains(out, "evil") && args[0] == "token" {
			t.Errorf("%v lost the token's name: %q", args, out)
		}
	}
}

// Item 13: hostile or broken answers from "GitLab".
func TestAttack13HostileAnswers(t *testing.T) {
	t.Parallel()
	g := newGitLab(t)
	list := []string{"agent", "list", "--project", "infra/agents"}
	serve := func(h http.HandlerFunc) string {
		s := httptest.NewServer(h)
		s.Config.ErrorLog = log.New(io.Discard, "", 0)
		t.Cleanup(s.Close)
		return s.URL
	}
	t.Run("an HTML sign-in page", func(t *testing.T) {
		html := serve(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = io.WriteString(w, "<!DOCTYPE html><html><body>Sign in</body></html>")
		})
		r := g.run(t, []string{"GITLAB_URL=" + html}, list...)
		wantError(t, r, "HTML page", "--gitlab-url")
		if strings.Contains(r.stderr, "200 OK") {
			t.Errorf("%s", r.stderr)
		}
	})
	t.Run("an endless answer", func(t *testing.T) {
		var sent int64
		var mu sync.Mutex
		huge := serve(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `[{"name":"`)
			chunk := []byte(strings.Repeat("a", 64<<10))
			for i := 0; i < (800<<20)/len(chunk); i++ { // 800 MB
				n, err := w.Write(chunk)
				mu.Lock()
				sent += int64(n)
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
		cmd, errOut, _ := startPlugin(t, []string{"GITLAB_URL=" + huge, "GITLAB_TOKEN=" + g.mToken}, false, list...)
		_ = cmd.Wait()
		g.outputs.add(errOut.String())
		rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss >> 10 // KiB → MiB on Linux
		if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(errOut.String(), "larger than") {
			t.Errorf("exit %d: %s", cmd.ProcessState.ExitCode(), errOut.String())
		}
		if rss > 300 {
			t.Errorf("peak RSS %d MiB reading a hostile answer", rss)
		}
		mu.Lock()
		t.Logf("peak RSS %d MiB; the server sent %d MiB", rss, sent>>20)
		mu.Unlock()
	})
	t.Run("an error that echoes the token, with escapes, at length", func(t *testing.T) {
		echo := serve(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			msg := "bad token " + r.Header.Get("PRIVATE-TOKEN") + " \x1b]0;pwned\x07\x1b[2J" + strings.Repeat("y", 100000)
			_, _ = fmt.Fprintf(w, `{"message":%q}`, msg)
		})
		r := g.run(t, []string{"GITLAB_URL=" + echo}, list...)
		last := lastLine(r.stderr)
		if r.code != 1 || strings.Contains(r.stderr, g.mToken) || strings.ContainsAny(r.stderr, "\x1b\x07") || len(last) > 1000 {
			t.Errorf("exit %d, %d bytes: %.300q", r.code, len(last), last)
		}
	})
	t.Run("a certificate no one trusts", func(t *testing.T) {
		var mu sync.Mutex
		conns := 0
		s := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		s.Config.ErrorLog = log.New(io.Discard, "", 0)
		s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				mu.Lock()
				conns++
				mu.Unlock()
			}
		}
		s.StartTLS()
		defer s.Close()
		r := g.run(t, []string{"GITLAB_URL=" + s.URL, "SSL_CERT_FILE="}, list...)
		wantError(t, r, "unknown authority", "SSL_CERT_FILE")
		mu.Lock()
		defer mu.Unlock()
		if conns != 1 {
			t.Errorf("%d connections: a trust failure was retried", conns)
		}
	})
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
