package e2e

// The attack suite of issue 10: each TestAttackNN drives one attack against
// the built plugin, as an attacker or an unlucky user would, and asserts the
// defence. The numbers are the items.

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/capture"

	"github.com/kubectl-gitlab-agent/kubectl-gitlab-agent/test/fakegitlab"
)

// pluginBin is the built plugin; kubectl execs this same file.
func pluginBin() string { return filepath.Join(binDir, "kubectl-gitlab_agent") }

// syncBuffer collects a process's output while tests read it.
type syncBuffer = capture.Buffer

// startProxy starts `proxy` for the tunnel's agent on a free port.
func (te *tunnelEnv) startProxy(t *testing.T) (*syncBuffer, string) {
	t.Helper()
	_, log, addr := startPlugin(t, te.env(), true, "proxy", "tun", "--project", "infra/agents", "--port", "0", "--ca-file", te.caFile)
	// Registered after newTunnel's secret check, so it runs first: the
	// proxy's log is checked for secrets too.
	t.Cleanup(func() { te.outputs.add(log.String()) })
	return log, addr
}

// startPlugin starts the plugin with args in the test environment plus
// extra, and waits for "Starting to serve on ADDR" when serving; it returns
// the process, its stderr and the address.
func startPlugin(t *testing.T, extra []string, serving bool, args ...string) (*exec.Cmd, *syncBuffer, string) {
	t.Helper()
	cmd := exec.Command(pluginBin(), args...)
	cmd.Env = append(append([]string{}, env...), extra...)
	errOut := &syncBuffer{}
	cmd.Stderr = errOut
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	if !serving {
		go func() { _, _ = io.Copy(io.Discard, stdout) }()
		return cmd, errOut, ""
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "Starting to serve on ")
	if err != nil || !ok {
		t.Fatalf("%v did not start: %q %v\n%s", args, line, err, errOut.String())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return cmd, errOut, addr
}

// rawStatus sends req as written (no client cleans its path) to addr and
// returns the answer's status code.
func rawStatus(t *testing.T, addr, req string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", strings.SplitN(req, "\r\n", 2)[0], err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// wsUpgrade is a browser's WebSocket handshake for path from origin.
func wsUpgrade(addr, path, origin string) string {
	h := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
		"Sec-WebSocket-Protocol: base64.channel.k8s.io\r\n"
	if origin != "" {
		h += "Origin: " + origin + "\r\n"
	}
	return h + "\r\n"
}

func get(addr, path string, headers ...string) string {
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nConnection: close\r\n"
	for _, h := range headers {
		req += h + "\r\n"
	}
	return req + "\r\n"
}

// Item 1: a web page can reach the loopback proxy; it must not use it.
func TestAttack01BrowserPagesCannotUseTheProxy(t *testing.T) {
	te := newTunnel(t)
	log, addr := te.startProxy(t)
	watch := "/api/v1/namespaces/default/configmaps?watch=true"
	if code := rawStatus(t, addr, wsUpgrade(addr, watch, "https://evil.example")); code != http.StatusForbidden {
		t.Errorf("cross-origin WebSocket watch: %d, want 403", code)
	}
	if code := rawStatus(t, addr, wsUpgrade(addr, watch, "null")); code != http.StatusForbidden {
		t.Errorf("WebSocket from an opaque origin: %d, want 403", code)
	}
	secrets := "/api/v1/namespaces/default/secrets"
	if code := rawStatus(t, addr, get(addr, secrets, "Origin: https://evil.example")); code != http.StatusForbidden {
		t.Errorf("cross-origin GET: %d, want 403", code)
	}
	if code := rawStatus(t, addr, get(addr, secrets, "Origin: http://localhost:1")); code != http.StatusForbidden {
		t.Errorf("GET from another local origin: %d, want 403", code)
	}
	if code := rawStatus(t, addr, get(addr, secrets, "Sec-Fetch-Site: cross-site", "Sec-Fetch-Mode: no-cors")); code != http.StatusForbidden {
		t.Errorf("no-cors GET from a page (no Origin): %d, want 403", code)
	}
	// From a browser, the proxy's own origin is refused too: a Service
	// proxy path puts the cluster's HTML on it, and a link to that page
	// opened from mail or chat is a navigation with Sec-Fetch-Site: none.
	page := "/api/v1/namespaces/default/services/http:evil:80/proxy/"
	if code := rawStatus(t, addr, get(addr, page, "Sec-Fetch-Site: none", "Sec-Fetch-Mode: navigate", "Sec-Fetch-Dest: document")); code != http.StatusForbidden {
		t.Errorf("a link to a Service proxy page opened in a browser: %d, want 403", code)
	}
	if code := rawStatus(t, addr, get(addr, secrets, "Origin: http://"+addr, "Sec-Fetch-Site: same-origin", "Sec-Fetch-Mode: cors")); code != http.StatusForbidden {
		t.Errorf("that page's fetch(): %d, want 403", code)
	}
	// Clients that are not browsers pass, also with the proxy's own origin
	// and no Sec-Fetch-* (Python's websocket-client sends it: the
	// Kubernetes Python client's exec and port-forward).
	if code := rawStatus(t, addr, get(addr, secrets)); code != http.StatusOK {
		t.Errorf("GET without Origin: %d", code)
	}
	if code := rawStatus(t, addr, get(addr, secrets, "Origin: http://"+addr)); code != http.StatusOK {
		t.Errorf("GET from the proxy's own origin, no Sec-Fetch-*: %d", code)
	}
	if code := rawStatus(t, addr, wsUpgrade(addr, watch, "http://"+addr)); code == http.StatusForbidden {
		t.Errorf("a WebSocket watch with the proxy's own Origin, no Sec-Fetch-*: %d", code)
	}
	if n := strings.Count(log.String(), "browsers may not use the proxy"); n != 7 {
		t.Errorf("%d refusal lines, want one per refused request:\n%s", n, log.String())
	}
}

// Item 3: an encoded or plain ".." must not take the credential outside
// /k8s-proxy/ (on a self-managed GitLab that is GitLab's own API).
func TestAttack03PathTraversalThroughTheProxy(t *testing.T) {
	te := newTunnel(t)
	_, addr := te.startProxy(t)
	for _, p := range []string{
		"/../../api/v4/user",
		"/%2e%2e/%2e%2e/api/v4/user",
		"/api/..%2f..%2f..%2fapi/v4/user",
		"/api/v1/%2E%2E/%2E%2E/%2E%2E/api/v4/user",
		"/api/%252e%252e/%252e%252e/api/v4/user",
		"/api/v1/..;/..;/..;/api/v4/user",
		"/api/v1/..\\..\\..\\api/v4/user",
	} {
		if code := rawStatus(t, addr, get(addr, p)); code != http.StatusBadRequest {
			t.Errorf("GET %s: %d, want 400", p, code)
		}
	}
	if code := rawStatus(t, addr, get(addr, "/api/v1/namespaces/default")); code != http.StatusOK {
		t.Errorf("an ordinary path: %d", code)
	}
	for _, s := range te.kas.Seen() {
		if leavesPrefix(s.RawPath) && s.Authorization {
			t.Errorf("KAS received %s, outside /k8s-proxy/ once cleaned, with the credential", s.RawPath)
		}
	}
}

// leavesPrefix decodes p as often as a chain of servers might and reports
// whether any decoding, cleaned, is outside /k8s-proxy/.
func leavesPrefix(p string) bool {
	for i := 0; i < 3; i++ {
		cleaned := filepathClean(strings.ReplaceAll(strings.ReplaceAll(p, "\\", "/"), ";", "/"))
		if cleaned != "/k8s-proxy" && !strings.HasPrefix(cleaned, "/k8s-proxy/") {
			return true
		}
		next, err := urlUnescape(p)
		if err != nil || next == p {
			return false
		}
		p = next
	}
	return false
}

// Item 9: every refused request minted a PAT (31 for 30) and none was revoked.
func TestAttack09ProxyRenewsAtMostOnceAMinute(t *testing.T) {
	te := newTunnel(t)
	// KAS refuses the user (not in user_access), and GitLab says the
	// token is bad whenever asked: the worst case for renewals.
	te.fake.SetFile(te.project, "main", ".gitlab/agents/tun/config.yaml", []byte("user_access:\n  access_as:\n    agent: {}\n  projects:\n  - id: someone/else\n"))
	te.fake.Inject(faultEvery("GET /api/v4/personal_access_tokens/self", 401))
	log, addr := te.startProxy(t)
	for i := 0; i < 30; i++ {
		if code := rawStatus(t, addr, get(addr, "/api/v1/namespaces/default")); code != http.StatusUnauthorized {
			t.Fatalf("request %d: %d, want KAS's 401", i, code)
		}
	}
	minted, active := te.proxyPATs()
	if minted > 2 || len(active) > 1 {
		t.Errorf("30 refused requests minted %d k8s_proxy tokens, %d still active; want at most 2 and 1", minted, len(active))
	}
	if n := strings.Count(log.String(), "GitLab refused the credential"); n > 2 {
		t.Errorf("%d refusal log lines for 30 requests:\n%s", n, log.String())
	}
}

// Item 16: slow clients held the proxy's connections open (200 for 70 s).
func TestAttack16SlowClientsAreCutOff(t *testing.T) {
	te := newTunnel(t)
	_, addr := te.startProxy(t)
	const n = 200
	conns := make([]net.Conn, 0, n)
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Headers that never end.
		if _, err := io.WriteString(c, "GET /api HTTP/1.1\r\nHost: "+addr+"\r\nX-Slow: "); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := 0
	for _, c := range conns {
		wg.Go(func() {
			_ = c.SetReadDeadline(time.Now().Add(25 * time.Second))
			_, err := io.Copy(io.Discard, c) // returns when the proxy closes it
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				mu.Lock()
				open++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if open > 0 {
		t.Fatalf("%d of %d slow clients still held a connection after 25s", open, n)
	}
	t.Logf("%d slow clients cut off within %s", n, time.Since(start).Round(100*time.Millisecond))
	// And the proxy still serves.
	if code := rawStatus(t, addr, get(addr, "/api/v1/namespaces/default")); code != http.StatusOK {
		t.Errorf("after the slow clients: %d", code)
	}
}

func filepathClean(p string) string { return path.Clean(p) }

func urlUnescape(p string) (string, error) { return url.PathUnescape(p) }

// faultEvery fails every call of route with status.
func faultEvery(route string, status int) fakegitlab.Fault {
	return fakegitlab.Fault{Route: route, Status: status}
}
